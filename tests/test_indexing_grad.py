"""vjp, jvp and vmap rules of the indexing primitives (mx/core/ops/indexing.py) and the
creation primitives (mx/core/ops/creation.py).

vjp and jvp are checked in float64 against central differences (tests/gradcheck.py): the
jvp must match the difference quotient along a random tangent, and the vjp must satisfy
<ct, J t> = <J^T ct, t> for a random cotangent. vmap is checked against a Python loop over
the mapped axis followed by mx.stack, for every combination of batched and unbatched
operands (index arrays included).
"""
import itertools

import numpy as np
import pytest

import mx.core as mx
import mx.core.ops.creation as C
import mx.core.ops.indexing as X
from gradcheck import check_grads, check_vmap

F64 = mx.float64
B = 3  # examples in every vmap


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _arr(x):
    x = np.asarray(x)
    return mx.array(x, dtype=F64) if x.dtype.kind == "f" else mx.array(x)


def _vmap_all(fun, examples, axes=None, seed=0):
    """check_vmap over every batched/unbatched combination of the inputs (at least one
    batched). `examples` are NumPy arrays of one example each; a batch of B is drawn
    around each (floats random, integers the example tiled)."""
    rng = np.random.default_rng(seed)
    batches = []
    for e in examples:
        e = np.asarray(e)
        if e.dtype.kind == "f":
            batches.append(rng.standard_normal((B,) + e.shape))
        else:
            batches.append(np.stack([np.roll(e, k) for k in range(B)]))
    for mask in itertools.product([False, True], repeat=len(examples)):
        if axes is not None and tuple(mask) not in axes or not any(mask):
            continue
        args = [_arr(b) if m else _arr(e) for b, e, m in zip(batches, examples, mask)]
        check_vmap(fun, args, [0 if m else None for m in mask])


# ---------------------------------------------------------------------------------------
# a[idx] with a static (basic) key: the `index` primitive
# ---------------------------------------------------------------------------------------
BASIC_KEYS = {
    "int": 1,
    "slice": np.s_[1:3],
    "steps": np.s_[::-2, 1, 4:0:-3],
    "none_ellipsis": np.s_[None, ..., 2, None],
    "true": np.s_[0, :, True],        # a bool is advanced: separated from the int it leads
    "false": np.s_[False, 1:],
    "empty": np.s_[2:2],
}


@pytest.mark.parametrize("name", sorted(BASIC_KEYS))
def test_index_rules(name):
    key = BASIC_KEYS[name]
    check_grads(lambda a: a[key], [_rand(4, 5, 6)])
    xb = _rand(B, 4, 5, 6, seed=1)
    check_vmap(lambda a: a[key], [_arr(xb)], 0)
    check_vmap(lambda a: a[key], [_arr(np.moveaxis(xb, 0, 2))], 2)


def test_index_of_zero_d_examples():
    check_vmap(lambda a: a[None], [_arr(_rand(B))], 0)
    check_vmap(lambda a: a[...], [_arr(_rand(B))], 0)
    check_grads(lambda a: a[None, ...], [_rand()])


# ---------------------------------------------------------------------------------------
# gathers: a[idx] with index arrays
# ---------------------------------------------------------------------------------------
IDX = np.array([[0, 2], [2, -1], [3, 0]])          # repeated and negative indices
GATHER_KEYS = {
    "first": lambda a, i: a[i],
    "middle": lambda a, i: a[:, i % 5],
    "middle_int": lambda a, i: a[:, i % 5, 1],
    "separated": lambda a, i: a[i, :, 2],           # the int splits them: index dims first
    "separated_arrays": lambda a, i: a[i, ..., mx.array([[1], [4], [0]])],
    "last": lambda a, i: a[..., i % 6],
    "newaxes": lambda a, i: a[None, i, None, 1:3],
    "bool": lambda a, i: a[i, True],
    "two_arrays": lambda a, i: a[i, i % 5],
}


@pytest.mark.parametrize("name", sorted(GATHER_KEYS))
def test_gather_rules(name):
    f = GATHER_KEYS[name]
    check_grads(lambda a: f(a, mx.array(IDX)), [_rand(4, 5, 6)])
    _vmap_all(f, [_rand(4, 5, 6), IDX])


def test_gather_vjp_accumulates_repeated_indices():
    x = mx.array(np.zeros(4), dtype=F64)
    idx = mx.array([1, 1, 3, 1, -1])
    _, (g,) = mx.vjp(lambda a: a[idx], [x], [mx.array([1.0, 2, 3, 4, 5], dtype=F64)])
    want = np.zeros(4)
    np.add.at(want, np.array([1, 1, 3, 1, -1]), [1.0, 2, 3, 4, 5])
    np.testing.assert_array_equal(np.asarray(g), want)


def test_gather_with_a_mask():
    mask = mx.array([True, False, True, True])
    check_grads(lambda a: a[mask], [_rand(4, 5)])
    check_grads(lambda a: a[1:, mask[1:]], [_rand(4, 3)])
    check_vmap(lambda a: a[mask], [_arr(_rand(B, 4, 5))], 0)
    check_vmap(lambda a: a[:, mask], [_arr(_rand(2, B, 4))], 1)


def test_gather_with_a_batched_mask_is_refused():
    with pytest.raises(ValueError, match=r"\[vmap\]"):
        mx.vmap(lambda a: a[a > 0])(mx.array(_rand(B, 4)))


def test_integer_gather_has_no_gradient():
    x = mx.array(np.arange(5))
    _, (g,) = mx.vjp(lambda a: a[mx.array([0, 0])], [x], [mx.array([1, 1])])
    np.testing.assert_array_equal(np.asarray(g), np.zeros(5))
    _, (t,) = mx.jvp(lambda a: a[mx.array([0, 0])], [x], [mx.array(np.ones(5, np.int32))])
    np.testing.assert_array_equal(np.asarray(t), np.zeros(2))


# ---------------------------------------------------------------------------------------
# scatters: a[idx] = v and a.at[idx].op(v)
# ---------------------------------------------------------------------------------------
REP = np.array([0, 2, 2, 3, 0])
UPDATE_KEYS = {   # key builder (from an index array), value shape for a (4, 5, 6) array
    "basic": (lambda i: (1, slice(None), 2), (5,)),
    "basic_broadcast": (lambda i: np.s_[1:3], (1, 6)),
    "surplus_ones": (lambda i: 0, (1, 1, 5, 6)),
    "repeated": (lambda i: i, (5, 5, 6)),
    "repeated_broadcast": (lambda i: (i, 1), (1,)),
    "middle": (lambda i: (slice(None), i), (4, 5, 6)),
    "separated": (lambda i: (i, slice(None), i % 3), (5, 5)),
    "mask": (lambda i: mx.array([True, False, True, True]), (3, 5, 6)),
}


def _setter(key):
    def f(a, v, i):
        b = a * 1
        b[key(i)] = v
        return b
    return f


def _updater(op, key):
    return lambda a, v, i: getattr(a.at[key(i)], op)(v)


UPDATE_OPS = ["set", "add", "subtract", "multiply", "divide", "maximum", "minimum"]


@pytest.mark.parametrize("op", UPDATE_OPS)
@pytest.mark.parametrize("name", sorted(UPDATE_KEYS))
def test_update_rules(op, name):
    key, vshape = UPDATE_KEYS[name]
    f = _setter(key) if op == "set" else _updater(op, key)
    idx = mx.array(REP)
    x, v = _rand(4, 5, 6), _rand(*vshape, seed=1)
    if op == "divide":
        v = np.sign(v) * (np.abs(v) + 0.5)   # away from zero
    check_grads(lambda a, u: f(a, u, idx), [x, v])
    _vmap_all(f, [x, v, REP])


def test_set_gradient_goes_to_the_write_that_lands():
    idx = np.array([1, 1, 3, 1])
    x = mx.array(np.zeros(4), dtype=F64)
    v = mx.array([1.0, 2, 3, 4], dtype=F64)
    ref = np.zeros(4)
    ref[idx] = np.asarray(v)

    def f(a, u):
        b = a * 1
        b[mx.array(idx)] = u
        return b

    out, (gx, gv) = mx.vjp(f, [x, v], [mx.array([10.0, 20, 30, 40], dtype=F64)])
    np.testing.assert_array_equal(np.asarray(out[0]), ref)
    np.testing.assert_array_equal(np.asarray(gx), [10, 0, 30, 0])
    lands = ref[idx] == np.asarray(v)      # which of the repeated writes survived
    np.testing.assert_array_equal(np.asarray(gv), np.where(lands, [20, 20, 40, 20], 0))


def test_scatter_multiply_with_zero_values_and_repeats():
    idx = np.array([0, 2, 2, 0, 0])
    v = _rand(5, 3, seed=2)
    v[0, 0] = 0              # one zero among three writes
    v[1, 1] = v[2, 1] = 0    # two zeros at one position
    x = _rand(4, 3, seed=3)
    w = _rand(4, 3, seed=4)
    g = mx.grad(lambda u: mx.sum(mx.array(x, dtype=F64).at[mx.array(idx)].multiply(u)
                                 * mx.array(w, dtype=F64)))(mx.array(v, dtype=F64))
    want = np.zeros_like(v)
    for j, i in enumerate(idx):
        others = np.prod([v[k] for k in range(5) if idx[k] == i and k != j], axis=0)
        want[j] = w[i] * x[i] * others
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-12, atol=1e-12)
    check_grads(lambda a, u: a.at[mx.array(idx)].multiply(u), [x, v])


def test_scatter_maximum_ties_share_the_cotangent():
    x = mx.array([1.0, 2.0], dtype=F64)
    v = mx.array([1.0, 1.0], dtype=F64)
    _, (gx, gv) = mx.vjp(lambda a, u: a.at[mx.array([0, 0])].maximum(u), [x, v],
                         [mx.array([3.0, 5.0], dtype=F64)])
    np.testing.assert_allclose(np.asarray(gx), [1.0, 5.0])
    np.testing.assert_allclose(np.asarray(gv), [1.0, 1.0])


@pytest.mark.parametrize("op", UPDATE_OPS)
def test_update_at_a_computed_mask(op):
    # a single value written where a computed (lazy) mask holds: the rules do not read
    # the mask, and vmap turns the update into a where
    def f(a, v):
        key = a[:, 0] > 0
        if op == "set":
            b = a * 1
            b[key] = v
            return b
        return getattr(a.at[key], op)(v)

    x, v = _rand(4, 5), _rand(1, 1, seed=1) + 2.0
    check_grads(f, [x, v])
    check_vmap(f, [_arr(_rand(B, 4, 5)), _arr(_rand(B, 1, 1) + 2.0)], [0, 0])
    check_vmap(f, [_arr(_rand(B, 4, 5)), _arr(v)], [0, None])
    check_vmap(mx.grad(lambda a, u: mx.sum(f(a, u) ** 2)), [_arr(_rand(B, 4, 5)), _arr(v)],
               [0, None])


def test_integer_update_at_a_batched_mask():
    x = np.array([[3, 5, -7, 1], [4, -3, 9, 0]])

    def f(a):
        b = a * 1
        b[a > 2] = 7
        return b

    check_vmap(f, [mx.array(x)], 0)
    got = mx.vmap(lambda a: a.at[a > 2].divide(2))(mx.array(x))
    np.testing.assert_array_equal(np.asarray(got), [[1, 2, -7, 1], [2, -3, 4, 0]])


def test_update_at_a_batched_mask_needs_the_mask_alone():
    with pytest.raises(ValueError, match=r"\[vmap\] An update at a batched boolean mask"):
        mx.vmap(lambda a: a.at[a[:, 0] > 0, 1].add(1.0))(mx.array(_rand(B, 4, 5)))


# ---------------------------------------------------------------------------------------
# take, take_along_axis, put_along_axis
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_take_rules(axis):
    idx = np.array([[0, 3], [3, -2]])
    f = lambda a, i: mx.take(a, i, axis=axis)   # noqa: E731
    check_grads(lambda a: f(a, mx.array(idx)), [_rand(4, 5)])
    _vmap_all(f, [_rand(4, 5), idx])
    check_grads(lambda a: mx.take(a, 2, axis=axis), [_rand(4, 5)])


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_take_along_axis_rules(axis):
    idx = np.array([1, 1, 7, 0]) if axis is None else \
        np.array([[[0, 3, 3, 1]], [[2, 2, 2, 2]], [[1, 0, 1, 0]]]).reshape(
            (3, 1, 4) if axis == 0 else (1, 3, 4))
    shape = (4, 3, 4) if axis == 0 else (3, 4, 4) if axis == 1 else (3, 4)
    f = lambda a, i: mx.take_along_axis(a, i, axis=axis)   # noqa: E731
    check_grads(lambda a: f(a, mx.array(idx)), [_rand(*shape)])
    _vmap_all(f, [_rand(*shape), idx])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_take_along_axis_one_index_per_line(axis):
    # (the vjp writes the cotangent with put_along_axis: each position is read at most once)
    shape = (3, 4, 5)
    ishape = list(shape)
    ishape[axis] = 1
    n = shape[axis]
    idx = np.random.default_rng(3).integers(-n, n, ishape)
    check_grads(lambda a: mx.take_along_axis(a, mx.array(idx), axis=axis), [_rand(*shape)])
    # and the gradient is the one-hot scatter of the cotangent, as NumPy computes it
    x = mx.array(_rand(*shape))
    g = mx.grad(lambda a: mx.sum(mx.take_along_axis(a, mx.array(idx), axis=axis) * 3.0))(x)
    want = np.zeros(shape)
    np.put_along_axis(want, np.where(idx < 0, idx + n, idx), 3.0, axis=axis)
    np.testing.assert_array_equal(np.asarray(g), want)


def test_take_along_axis_vjp_through_broadcast_dimension():
    # x has size 1 where the indices have 3: the three rows add into x's one row
    f = lambda a: mx.take_along_axis(a, mx.array([[0, 2], [1, 1], [2, 2]]), axis=1)  # noqa: E731
    check_grads(f, [_rand(1, 3)])


@pytest.mark.parametrize("axis", [None, 1])
@pytest.mark.parametrize("vshape", ["full", "broadcast"])
def test_put_along_axis_rules(axis, vshape):
    if axis is None:
        idx, shape = np.array([3, 3, 7, 1]), (3, 4)
        v = _rand(4) if vshape == "full" else _rand(1, 1)
    else:
        idx, shape = np.array([[[0, 0, 1, 4]], [[3, 3, 3, 1]], [[1, 2, 3, 4]]]), (3, 5, 4)
        v = _rand(3, 1, 4) if vshape == "full" else _rand(1, 4)
    f = lambda a, i, u: mx.put_along_axis(a, i, u, axis=axis)   # noqa: E731
    check_grads(lambda a, u: f(a, mx.array(idx), u), [_rand(*shape), v])
    _vmap_all(f, [_rand(*shape), idx, v])


# ---------------------------------------------------------------------------------------
# slice and slice_update with starts computed at run time
# ---------------------------------------------------------------------------------------
def _lazy(values):
    # a computed start (not known at op time) makes the dynamic primitives
    return mx.array(values) * 1


def test_slice_with_a_computed_start():
    f = lambda a: mx.slice(a, _lazy([1, 2]), (0, 2), (2, 5, 3))   # noqa: E731
    assert f(mx.array(_rand(4, 5, 6)))._prim.name == "dynamic_slice"
    check_grads(f, [_rand(4, 5, 6)])
    check_grads(lambda a: mx.slice(a, mx.array([1, 2]), (0, 2), (2, 5, 3)), [_rand(4, 5, 6)])
    g = lambda a, s: mx.slice(a, s, (0, 2), (2, 5, 3))   # noqa: E731
    _vmap_all(g, [_rand(4, 5, 6), np.array([1, 2])])
    check_vmap(g, [_arr(_rand(4, 5, B, 6)), mx.array([[0, 2], [1, 1], [2, 0]]).T], [2, 1])
    check_vmap(lambda a, s: mx.slice(a, s, (), (2, 5)), [_arr(_rand(B, 4, 5)), mx.array(
        np.zeros((B, 0), np.int32))], [0, 0])


@pytest.mark.parametrize("ushape", [(2, 5, 3), (1, 3), (3,)])
def test_slice_update_with_a_computed_start(ushape):
    f = lambda a, u: mx.slice_update(a, u, _lazy([1, 2]), (0, 2))   # noqa: E731
    assert f(mx.array(_rand(4, 5, 6)), mx.array(_rand(*ushape)))._prim.name == "slice_update"
    check_grads(f, [_rand(4, 5, 6), _rand(*ushape)])
    g = lambda a, u, s: mx.slice_update(a, u, s, (0, 2))   # noqa: E731
    _vmap_all(g, [_rand(4, 5, 6), _rand(*ushape), np.array([1, 2])])


def test_grad_of_grad_through_dynamic_slices():
    def f(a, b):
        piece = mx.slice(b, _lazy([1]), (1,), (4, 2)) ** 2
        return mx.sum(mx.slice_update(a, piece, _lazy([0, 1]), (0, 1)) ** 2)

    g = mx.grad(f, argnums=(0, 1))
    check_grads(lambda a, b: list(g(a, b)), [_rand(5, 4), _rand(4, 4)], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# diagonal, diag, trace
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset,axis1,axis2", [(0, 0, 1), (1, 2, 0), (-1, 0, 2), (-2, 1, 2),
                                                (7, 0, 2)])
def test_diagonal_and_trace_rules(offset, axis1, axis2):
    f = lambda a: mx.diagonal(a, offset, axis1, axis2)   # noqa: E731
    t = lambda a: mx.trace(a, offset, axis1, axis2)   # noqa: E731
    for fun in (f, t):
        check_grads(fun, [_rand(4, 5, 6)])
        check_vmap(fun, [_arr(_rand(B, 4, 5, 6))], 0)
        check_vmap(fun, [_arr(_rand(4, B, 5, 6))], 1)


@pytest.mark.parametrize("k", [0, 2, -1])
def test_diag_rules(k):
    check_grads(lambda a: mx.diag(a, k), [_rand(4)])
    check_grads(lambda a: mx.diag(a, k), [_rand(4, 5)])
    check_vmap(lambda a: mx.diag(a, k), [_arr(_rand(B, 4))], 0)
    check_vmap(lambda a: mx.diag(a, k), [_arr(_rand(4, B))], 1)
    check_vmap(lambda a: mx.diag(a, k), [_arr(_rand(B, 4, 5))], 0)


def test_integer_trace_has_no_gradient():
    x = mx.array(np.arange(9).reshape(3, 3))
    _, (g,) = mx.vjp(mx.trace, [x], [mx.array(1)])
    np.testing.assert_array_equal(np.asarray(g), np.zeros((3, 3)))
    check_grads(lambda a: mx.trace(a, dtype=mx.float64), [_rand(3, 3)])


# ---------------------------------------------------------------------------------------
# grad of grad, vmap of grad
# ---------------------------------------------------------------------------------------
HIGHER = {
    "gather": lambda a, b: mx.sum(mx.sin(a[mx.array([0, 2, 2, 1])] * b[:, mx.array([1, 1, 0, 2])])),
    "take": lambda a, b: mx.sum(mx.take(a, mx.array([0, 2, 2, 1]), axis=1) ** 3 * b[:3]),
    "take_along": lambda a, b: mx.sum(
        mx.take_along_axis(a, mx.array([[0, 2, 2]]), axis=1) ** 2 * b[:3, :3]),
    "scatter_add": lambda a, b: mx.sum(mx.sin(a.at[mx.array([0, 2, 2, 1])].add(b)) ** 2),
    "scatter_multiply": lambda a, b: mx.sum(
        mx.sin(a.at[mx.array([0, 2, 2, 1])].multiply(b))),
    "scatter_maximum": lambda a, b: mx.sum(
        mx.sin(a.at[mx.array([0, 2, 2, 1])].maximum(b)) * a[:, :1]),
    "diagonal": lambda a, b: mx.sum(mx.diagonal(a * b[:3], 1) ** 3) + mx.trace(a ** 2),
}


@pytest.mark.parametrize("name", sorted(HIGHER))
def test_grad_of_grad(name):
    g = mx.grad(HIGHER[name], argnums=(0, 1))
    check_grads(lambda a, b: list(g(a, b)), [_rand(3, 4), _rand(4, 4, seed=1)],
                rtol=1e-4, atol=1e-5)


def test_vmap_of_grad_of_a_gather():
    g = mx.grad(HIGHER["gather"])
    check_vmap(g, [_arr(_rand(B, 3, 4)), _arr(_rand(4, 4))], [0, None])
    check_vmap(g, [_arr(_rand(B, 3, 4)), _arr(_rand(B, 4, 4))], [0, 0])


# ---------------------------------------------------------------------------------------
# creation primitives
# ---------------------------------------------------------------------------------------
def test_full_with_an_array_value():
    check_grads(lambda v: mx.full((3, 4, 5), v), [_rand(4, 1)])
    check_grads(lambda v: mx.full_like(mx.zeros((3, 4), F64), v), [_rand(4)])
    check_vmap(lambda v: mx.full((3, 4, 5), v), [_arr(_rand(B, 4, 1))], 0)
    check_vmap(lambda v: mx.full((3, 4, 5), v), [_arr(_rand(5, B))], 1)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_rules(sparse, indexing):
    f = lambda a, b, c: mx.meshgrid(a, b, c, sparse=sparse, indexing=indexing)   # noqa: E731
    check_grads(f, [_rand(3), _rand(2, 2), _rand(1)])
    _vmap_all(f, [_rand(3), _rand(2, 2), _rand(1)])


def test_constant_creation_rules():
    out = mx.arange(5.0)
    prim = out._prim
    assert prim.vjp([], mx.ones((5,)), out, **out._params) == []
    t = prim.jvp([], [], out, **out._params)
    assert t.shape == (5,) and not np.any(np.asarray(t))
    node, axis = prim.vmap([], [], out, **out._params)
    assert axis is None
    np.testing.assert_array_equal(np.asarray(node), np.arange(5.0))
    # constants inside transformed functions
    check_grads(lambda a: a * mx.arange(4.0).astype(F64) + mx.eye(4, dtype=F64)
                + mx.linspace(0, 1, 4, dtype=F64) * mx.tri(4, dtype=F64), [_rand(4, 4)])
    check_vmap(lambda a: a + mx.ones(4) + mx.hanning(4) + mx.full((4,), 2.0), [_arr(_rand(B, 4))])


def test_every_indexing_and_creation_primitive_has_its_rules():
    prims = [X.INDEX, X.GATHER, X.SCATTER, *X.SCATTER_ACC.values(), X.TAKE,
             X.TAKE_ALONG_AXIS, X.PUT_ALONG_AXIS, X.DYNAMIC_SLICE, X.SLICE_UPDATE, X.DIAGONAL,
             X.DIAG_MATRIX, X.TRACE, C.ZEROS, C.ONES, C.FULL, C.FULL_ARRAY, C.ARANGE,
             C.LINSPACE, C.EYE, C.TRI, C.GRID, C.WINDOW]
    missing = [(p.name, rule) for p in prims for rule in ("vjp", "jvp", "vmap")
               if getattr(p, rule) is None]
    assert not missing, missing
