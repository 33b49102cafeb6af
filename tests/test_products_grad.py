"""vjp, jvp and vmap rules of the product primitives (mx/core/ops/products.py): matmul,
addmm, inner, outer, tensordot, kron and vecdot.

vjp and jvp are checked in float64 against central differences (tests/gradcheck.py);
vmap against a Python loop over the mapped axis followed by mx.stack, with either operand
batched or not and the batch axis first or elsewhere.
"""
import itertools

import numpy as np
import pytest

import mx.core as mx
import mx.core.ops.products as P
from gradcheck import check_grads, check_vmap

F64 = mx.float64
B = 3


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _batched(example, axis, seed):
    """An mx float64 batch of B examples shaped like `example`, batched on `axis` (the
    last axis when the batch has fewer)."""
    x = _rand(B, *np.shape(example), seed=seed)
    axis = min(axis, x.ndim - 1)
    return mx.array(np.moveaxis(x, 0, axis), dtype=F64), axis


def _vmap_all(fun, examples, axes_choices=(0, -1)):
    """check_vmap with every operand batched (at each axis in axes_choices) or not."""
    options = [[None] + [a for a in axes_choices if a is not None] for _ in examples]
    for axes in itertools.product(*options):
        if all(a is None for a in axes):
            continue
        pairs = [(mx.array(e, dtype=F64), None) if a is None else _batched(e, a, k)
                 for k, (e, a) in enumerate(zip(examples, axes))]
        check_vmap(fun, [p[0] for p in pairs], [p[1] for p in pairs])


MATMUL_SHAPES = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)),
                 ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)),
                 ((2, 3), (6, 3, 4)), ((5, 2, 3), (3,))]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_rules(sa, sb):
    a, b = _rand(*sa), _rand(*sb, seed=1)
    check_grads(mx.matmul, [a, b])
    check_grads(lambda x, y: x @ y, [a, b])
    _vmap_all(mx.matmul, [a, b])


def test_matmul_vjp_sums_broadcast_batch_dims():
    a, b = _rand(5, 1, 2, 3), _rand(4, 3, 2, seed=1)
    ct = _rand(5, 4, 2, 2, seed=2)
    _, (ga, gb) = mx.vjp(mx.matmul, [mx.array(a, dtype=F64), mx.array(b, dtype=F64)],
                         [mx.array(ct, dtype=F64)])
    np.testing.assert_allclose(np.asarray(ga), np.sum(ct @ np.swapaxes(b, -1, -2), axis=1,
                                                      keepdims=True), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(gb), np.sum(np.swapaxes(a, -1, -2) @ ct, axis=0),
                               rtol=1e-12)


@pytest.mark.parametrize("alpha,beta", [(1.0, 1.0), (0.7, -1.3), (2.0, 0.0)])
@pytest.mark.parametrize("sa,sb,sc", [((2, 3), (3, 4), (4,)), ((5, 2, 3), (3, 4), (2, 1)),
                                      ((3,), (3, 4), (4,)), ((2, 3), (3,), ())])
def test_addmm_rules(alpha, beta, sa, sb, sc):
    f = lambda c, a, b: mx.addmm(c, a, b, alpha=alpha, beta=beta)   # noqa: E731
    examples = [_rand(*sc, seed=2), _rand(*sa), _rand(*sb, seed=1)]
    check_grads(f, examples)
    _vmap_all(f, examples, axes_choices=(0,))


@pytest.mark.parametrize("sa,sb", [((3,), (3,)), ((2, 3), (3,)), ((2, 4, 3), (5, 3)),
                                   ((3,), (2, 2, 3))])
def test_inner_rules(sa, sb):
    examples = [_rand(*sa), _rand(*sb, seed=1)]
    check_grads(mx.inner, examples)
    _vmap_all(mx.inner, examples)


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (2, 2)), ((), (3,))])
def test_outer_rules(sa, sb):
    examples = [_rand(*sa), _rand(*sb, seed=1)]
    check_grads(mx.outer, examples)
    _vmap_all(mx.outer, examples, axes_choices=(0,) if not sa else (0, -1))


@pytest.mark.parametrize("sa,sb,axes", [
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3, 4), (4, 3, 5), [[1, 2], [1, 0]]),
    ((2, 3), (3, 2), [[0, 1], [1, 0]]),
    ((2, 3), (4,), 0),
    ((4, 3, 2), (2, 5, 4), [[2, 0], [0, 2]]),
])
def test_tensordot_rules(sa, sb, axes):
    f = lambda a, b: mx.tensordot(a, b, axes=axes)   # noqa: E731
    examples = [_rand(*sa), _rand(*sb, seed=1)]
    check_grads(f, examples)
    _vmap_all(f, examples, axes_choices=(0, 2))


@pytest.mark.parametrize("sa,sb", [((3,), (4,)), ((2, 3), (2, 2)), ((2, 3, 2), (3,)),
                                   ((2,), (3, 2, 2))])
def test_kron_rules(sa, sb):
    examples = [_rand(*sa), _rand(*sb, seed=1)]
    check_grads(mx.kron, examples)
    _vmap_all(mx.kron, examples)


@pytest.mark.parametrize("sa,sb,axis", [((3,), (3,), -1), ((2, 3), (3,), -1),
                                        ((3, 1, 4), (3, 2, 1), 0), ((2, 5), (3, 1, 5), -1)])
def test_vecdot_rules(sa, sb, axis):
    f = lambda a, b: mx.vecdot(a, b, axis=axis)   # noqa: E731
    examples = [_rand(*sa), _rand(*sb, seed=1)]
    check_grads(f, examples)
    _vmap_all(f, examples)


def test_vecdot_complex_vjp_conjugates_a():
    a = mx.array(np.array([1 + 2j, 3 - 1j], np.complex64))
    b = mx.array(np.array([2 - 1j, 1j], np.complex64))
    _, (ga, gb) = mx.vjp(mx.vecdot, [a, b], [mx.array(np.complex64(1))])
    # out = sum(conj(a) * b): b's cotangent is conj(a), a's is conj(b)
    np.testing.assert_allclose(np.asarray(gb), np.conj(np.asarray(a)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ga), np.conj(np.asarray(b)), rtol=1e-6)


@pytest.mark.parametrize("op", [mx.outer, mx.kron, mx.vecdot])
def test_integer_products_have_no_gradient(op):
    a, b = mx.array([1, 2, 3]), mx.array([4, 5, 6])
    _, grads = mx.vjp(op, [a, b], [mx.ones(op(a, b).shape, op(a, b).dtype)])
    for g in grads:
        assert not np.any(np.asarray(g))
    _, (t,) = mx.jvp(op, [a, b], [mx.ones((3,), mx.int32), mx.ones((3,), mx.int32)])
    assert not np.any(np.asarray(t))


def test_grad_of_grad_of_matmul():
    f = lambda a, b: mx.sum(mx.sin(mx.matmul(a, b)))   # noqa: E731
    g = mx.grad(f, argnums=(0, 1))
    check_grads(lambda a, b: list(g(a, b)), [_rand(2, 3), _rand(4, 3, 2, seed=1)],
                rtol=1e-4, atol=1e-5)
    f1 = lambda a, b: mx.sum(mx.matmul(a, b) ** 3)   # noqa: E731
    g1 = mx.grad(f1, argnums=(0, 1))
    check_grads(lambda a, b: list(g1(a, b)), [_rand(3), _rand(3, 2, seed=1)],
                rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["addmm", "inner", "tensordot", "kron", "vecdot", "outer"])
def test_grad_of_grad_of_products(name):
    f = {
        "addmm": lambda a, b: mx.sum(mx.addmm(a[0], a, b.T, 0.5, 2.0) ** 3),
        "inner": lambda a, b: mx.sum(mx.inner(a, b) ** 3),
        "tensordot": lambda a, b: mx.sum(mx.tensordot(a, b, [[1], [1]]) ** 3),
        "kron": lambda a, b: mx.sum(mx.kron(a, b) ** 3),
        "vecdot": lambda a, b: mx.sum(mx.vecdot(a, b) ** 3),
        "outer": lambda a, b: mx.sum(mx.outer(a, b) ** 3),
    }[name]
    g = mx.grad(f, argnums=(0, 1))
    check_grads(lambda a, b: list(g(a, b)), [_rand(3, 3), _rand(3, 3, seed=1)],
                rtol=1e-4, atol=1e-5)


def test_vmap_of_grad_of_matmul():
    g = mx.grad(lambda a, b: mx.sum(mx.sin(a @ b)), argnums=1)
    check_vmap(g, [_batched(_rand(2, 3), 0, 0)[0], mx.array(_rand(4, 3, 2), dtype=F64)],
               [0, None])
    check_vmap(g, [_batched(_rand(2, 3), 0, 0)[0], _batched(_rand(3, 2), 2, 1)[0]], [0, 2])


def test_every_product_primitive_has_its_rules():
    prims = [P.MATMUL, P.ADDMM, P.INNER, P.OUTER, P.TENSORDOT, P.KRON, P.VECDOT]
    missing = [(p.name, rule) for p in prims for rule in ("vjp", "jvp", "vmap")
               if getattr(p, rule) is None]
    assert not missing, missing


def test_gradient_of_a_transposed_weight_is_contiguous():
    # nn.Linear computes x @ W.T: W's gradient should come back C-contiguous (fast
    # elementwise optimizer updates), and equal to ct.T @ x
    x = mx.array(np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32))
    w = mx.array(np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32))
    g = mx.grad(lambda w_: (x @ w_.T).sum())(w)
    mx.eval(g)
    assert np.asarray(g).flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(np.asarray(g), np.ones((5, 4), np.float32).T @ np.asarray(x), rtol=1e-5)
