"""vjp, jvp and vmap rules of the reductions and scans (mx/core/ops/reduction.py):
finite differences in float64 over many axis/keepdims settings, vmap against a Python loop,
second derivatives, MLX's behaviour at ties and zeros, and rule completeness."""
import re
from pathlib import Path

import numpy as np
import pytest

import mx.core as mx
from mx.core.ops import reduction
from mx.core.primitives import REGISTRY
from gradcheck import check_grads, check_vmap

SHAPE = (3, 4, 5)
AXES = [None, 0, -1, (0, 2), (1,), [2, 0, 1]]


def _distinct(shape=SHAPE, lo=-1.0, hi=1.0, seed=0):
    """Uniform values with no ties (max, min, median and cummax are smooth there)."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    vals = np.linspace(lo, hi, n) + rng.uniform(0, 0.1 * (hi - lo) / n, n)
    return rng.permutation(vals).reshape(shape)


def _f64(a):
    return mx.array(np.asarray(a), dtype=mx.float64)


# ---------------------------------------------------------------------------------------
# finite differences: reductions over axes
# ---------------------------------------------------------------------------------------
def _signed_half_ones(shape, seed=1):
    # magnitudes in [0.5, 1.5] with random signs: products stay moderate
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


AXIS_OPS = {
    "sum": (lambda x, **kw: mx.sum(x, **kw), _distinct()),
    "prod": (lambda x, **kw: mx.prod(x, **kw), _signed_half_ones(SHAPE)),
    "mean": (lambda x, **kw: mx.mean(x, **kw), _distinct()),
    "max": (lambda x, **kw: mx.max(x, **kw), _distinct()),
    "min": (lambda x, **kw: mx.min(x, **kw), _distinct(seed=3)),
    "var": (lambda x, **kw: mx.var(x, **kw), _distinct()),
    "var_ddof1": (lambda x, **kw: mx.var(x, ddof=1, **kw), _distinct(seed=4)),
    "median": (lambda x, **kw: mx.median(x, **kw), _distinct(seed=5)),
    "logsumexp": (lambda x, **kw: mx.logsumexp(x, **kw), _distinct(lo=-2, hi=2)),
}


@pytest.mark.parametrize("name", sorted(AXIS_OPS))
@pytest.mark.parametrize("keepdims", [False, True])
def test_reduction_finite_differences(name, keepdims):
    fn, data = AXIS_OPS[name]
    for axis in AXES:
        check_grads(lambda x: fn(x, axis=axis, keepdims=keepdims), [data])


@pytest.mark.parametrize("shape, axis", [((6,), None), ((5,), 0), ((2, 7), 1), ((4, 3), 0),
                                         ((2, 3, 4), (0, 2))])
def test_median_even_and_odd_counts(shape, axis):
    check_grads(lambda x: mx.median(x, axis=axis), [_distinct(shape, seed=7)])


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2), (1, 2)])
def test_softmax_finite_differences(axis):
    check_grads(lambda x: mx.softmax(x, axis=axis), [_distinct(lo=-2, hi=2)])


def test_prod_with_zeros_finite_differences():
    # prod is multilinear, so central differences are exact even at zeros: one zero in a
    # slice, two zeros in a slice, and a slice without zeros
    x = _signed_half_ones((3, 4))
    x[1, 2] = 0.0
    x[2, 0] = x[2, 3] = 0.0
    for axis in [None, 0, 1]:
        for keepdims in (False, True):
            check_grads(lambda a: mx.prod(a, axis=axis, keepdims=keepdims), [x])


def test_prod_gradient_at_zeros_is_finite():
    g = mx.grad(lambda a: mx.prod(a))(mx.array([1.0, 0.0, 3.0]))
    assert g.tolist() == [0.0, 3.0, 0.0]
    g = mx.grad(lambda a: mx.prod(a))(mx.array([1.0, 0.0, 0.0]))
    assert g.tolist() == [0.0, 0.0, 0.0]
    _, t = mx.jvp(mx.prod, [mx.array([2.0, 0.0, 2.0, 1.0])], [mx.array([1.0, 2.0, 3.0, 4.0])])
    assert t[0].item() == 8.0


# ---------------------------------------------------------------------------------------
# finite differences: scans
# ---------------------------------------------------------------------------------------
def _scan_fn(op, axis, reverse, inclusive):
    fn = getattr(mx, op)

    def f(x):
        y = fn(x, axis=axis, reverse=reverse, inclusive=inclusive)
        # an exclusive max/min/logsumexp scan starts at +-inf, where differences are nan
        return mx.where(mx.isinf(y), mx.zeros_like(y), y) if not inclusive else y

    return f


SCAN_DATA = {
    "cumsum": _distinct((3, 4, 5)),
    "cumprod": _signed_half_ones((3, 4, 5), seed=2),
    "cummax": _distinct((3, 4, 5), seed=8),
    "cummin": _distinct((3, 4, 5), seed=9),
    "logcumsumexp": _distinct((3, 4, 5), lo=-3, hi=3, seed=10),
}


@pytest.mark.parametrize("op", sorted(SCAN_DATA))
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("inclusive", [True, False])
def test_scan_finite_differences(op, reverse, inclusive):
    for axis in [None, 0, 1, -1]:
        check_grads(_scan_fn(op, axis, reverse, inclusive), [SCAN_DATA[op]])


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("inclusive", [True, False])
def test_cumprod_with_zeros_finite_differences(reverse, inclusive):
    x = _signed_half_ones((4, 6), seed=11)
    x[0, 2] = 0.0                 # one zero
    x[1, 1] = x[1, 4] = 0.0       # two zeros
    x[2, 0] = x[2, 5] = 0.0       # zeros at both ends
    for axis in [None, 1, 0]:
        check_grads(_scan_fn("cumprod", axis, reverse, inclusive), [x])


def test_logcumsumexp_rules_do_not_overflow():
    x = np.array([-1000.0, 0.0, 1000.0, -5.0, 999.0])
    ct = np.array([1.0, -2.0, 0.5, 3.0, -1.0])
    t = np.array([0.3, -1.0, 2.0, 0.0, 1.5])
    for reverse in (False, True):
        xs = x[::-1] if reverse else x
        y = np.logaddexp.accumulate(xs)
        # J[j, i] = exp(x_i - y_j) for i <= j in scan order: every exponent is <= 0
        jac = np.exp(np.tril(xs[None, :] - y[:, None]) - np.triu(np.full((5, 5), np.inf), 1))
        if reverse:
            jac = jac[::-1, ::-1]
        _, (g,) = mx.vjp(lambda a: mx.logcumsumexp(a, reverse=reverse), [_f64(x)], [_f64(ct)])
        np.testing.assert_allclose(np.array(g), ct @ jac, rtol=1e-12, atol=1e-300)
        _, (tt,) = mx.jvp(lambda a: mx.logcumsumexp(a, reverse=reverse), [_f64(x)], [_f64(t)])
        np.testing.assert_allclose(np.array(tt), jac @ t, rtol=1e-12, atol=1e-300)


def test_logsumexp_and_softmax_gradients_do_not_overflow():
    x = mx.array([1000.0, 1000.0, -1000.0])
    g = mx.grad(lambda a: mx.logsumexp(a))(x)  # float32: logsumexp is only 6e-5 exact here
    np.testing.assert_allclose(np.array(g), [0.5, 0.5, 0.0], atol=1e-4)
    g = mx.grad(lambda a: (mx.softmax(a) * mx.array([1.0, 0.0, 0.0])).sum())(x)
    np.testing.assert_allclose(np.array(g), [0.25, -0.25, 0.0], atol=1e-7)


# ---------------------------------------------------------------------------------------
# MLX's behaviour at ties and zeros (values read off MLX 0.32)
# ---------------------------------------------------------------------------------------
def test_max_min_split_ties_like_mlx():
    assert mx.grad(lambda x: x.max())(mx.array([1.0, 3.0, 3.0])).tolist() == [0.0, 0.5, 0.5]
    assert mx.grad(lambda x: x.min())(mx.array([1.0, 1.0, 3.0])).tolist() == [0.5, 0.5, 0.0]
    g = mx.grad(lambda x: x.max(axis=1).sum())(mx.array([[1.0, 3.0, 3.0], [4.0, 4.0, 4.0]]))
    np.testing.assert_allclose(np.array(g), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_max_min_jvp_takes_first_extremum_like_mlx():
    x = mx.array([[1.0, 3.0, 3.0], [4.0, 4.0, 2.0]])
    t = mx.array([[1.0, 2.0, 5.0], [7.0, 8.0, 9.0]])
    assert mx.jvp(lambda a: a.max(axis=1), [x], [t])[1][0].tolist() == [2.0, 7.0]
    assert mx.jvp(lambda a: a.max(), [x], [t])[1][0].item() == 7.0
    assert mx.jvp(lambda a: a.min(axis=0), [x], [t])[1][0].tolist() == [1.0, 2.0, 9.0]
    # several non-adjacent axes are searched in row-major order
    x3 = mx.array(np.array([[[5.0, 1.0], [2.0, 5.0]], [[0.0, 5.0], [5.0, 3.0]]]))
    t3 = mx.array(np.arange(8.0).reshape(2, 2, 2))
    got = mx.jvp(lambda a: a.max(axis=(0, 2)), [x3], [t3])[1][0]
    assert got.tolist() == [0.0, 3.0]


def test_median_ties_follow_stable_sort_like_mlx():
    grad = mx.grad(lambda x: mx.median(x))
    assert grad(mx.array([1.0, 2.0, 3.0, 4.0])).tolist() == [0.0, 0.5, 0.5, 0.0]
    assert grad(mx.array([2.0, 2.0, 2.0, 1.0])).tolist() == [0.5, 0.5, 0.0, 0.0]
    assert grad(mx.array([1.0, 2.0, 2.0])).tolist() == [0.0, 1.0, 0.0]
    t = mx.jvp(mx.median, [mx.array([2.0, 2.0, 2.0, 1.0])], [mx.array([1.0, 2.0, 3.0, 4.0])])[1]
    assert t[0].item() == 1.5


SCAN_CT = [1.0, 2.0, 3.0, 4.0, 5.0]
MLX_SCAN_VJPS = [
    # op, input, {reverse, inclusive} -> vjp of [1, 2, 3, 4, 5]
    ("cummax", [1, 3, 2, 3, 5], {}, [1, 5, 0, 4, 5]),
    ("cummax", [5, 3, 3, 1, 0], {}, [15, 0, 0, 0, 0]),
    ("cummin", [3, 1, 2, 1, 0], {}, [1, 5, 0, 4, 5]),
    ("cumprod", [1, 0, 2, 3, 0], {}, [1, 32, 0, 0, 0]),
    ("cummax", [1, 3, 2, 3, 5], {"reverse": True}, [0, 0, 0, 0, 15]),
    ("cummax", [5, 3, 3, 1, 0], {"reverse": True}, [1, 2, 3, 4, 5]),
    ("cummin", [3, 1, 2, 1, 0], {"reverse": True}, [0, 0, 0, 0, 15]),
    ("cumprod", [1, 0, 2, 3, 0], {"reverse": True}, [0, 0, 0, 0, 35]),
    ("cummax", [1, 3, 2, 3, 5], {"inclusive": False}, [2, 7, 0, 5, 0]),
    ("cummax", [5, 3, 3, 1, 0], {"inclusive": False}, [14, 0, 0, 0, 0]),
    ("cummin", [3, 1, 2, 1, 0], {"inclusive": False}, [2, 7, 0, 5, 0]),
    ("cumprod", [1, 0, 2, 3, 0], {"inclusive": False}, [2, 41, 0, 0, 0]),
    ("cummax", [1, 3, 2, 3, 5], {"reverse": True, "inclusive": False}, [0, 0, 0, 0, 10]),
    ("cummax", [5, 3, 3, 1, 0], {"reverse": True, "inclusive": False}, [0, 1, 2, 3, 4]),
    ("cummin", [3, 1, 2, 1, 0], {"reverse": True, "inclusive": False}, [0, 0, 0, 0, 10]),
    ("cumprod", [1, 0, 2, 3, 0], {"reverse": True, "inclusive": False}, [0, 0, 0, 0, 25]),
]


@pytest.mark.parametrize("op, x, kw, want", MLX_SCAN_VJPS)
def test_scan_vjp_at_ties_and_zeros_like_mlx(op, x, kw, want):
    fn = getattr(mx, op)
    _, (g,) = mx.vjp(lambda a: fn(a, **kw), [mx.array(x, dtype=mx.float32)],
                     [mx.array(SCAN_CT)])
    assert g.tolist() == want


def test_cummax_jvp_is_the_transpose_of_its_vjp_at_ties():
    x = mx.array([[1.0, 3.0, 2.0, 3.0, 5.0], [5.0, 3.0, 3.0, 1.0, 0.0]])
    rng = np.random.default_rng(0)
    t, c = mx.array(rng.standard_normal((2, 5))), mx.array(rng.standard_normal((2, 5)))
    for kw in [{}, {"reverse": True}, {"inclusive": False}, {"reverse": True, "inclusive": False}]:
        for op in (mx.cummax, mx.cummin):
            f = lambda a: op(a, axis=1, **kw)
            jt = mx.jvp(f, [x], [t])[1][0]
            fin = np.isfinite(np.array(f(x)))
            lhs = float(np.sum(np.where(fin, np.array(jt) * np.array(c), 0)))
            # outputs at the exclusive scan's start have no source: mask their cotangent
            vc = mx.vjp(f, [x], [mx.where(mx.array(fin), c, 0.0)])[1][0]
            assert lhs == pytest.approx(float(np.sum(np.array(vc) * np.array(t))), rel=1e-5)


# ---------------------------------------------------------------------------------------
# non-differentiable primitives and integer inputs
# ---------------------------------------------------------------------------------------
NONDIFF = {
    "all": lambda x: mx.all(x > 0, axis=1, keepdims=True),
    "any": lambda x: mx.any(x, axis=(0, 2), keepdims=True),
    "count_nonzero": lambda x: mx.count_nonzero(x > 0, axis=-1, keepdims=True),
    "argmax": lambda x: mx.argmax(x, axis=1, keepdims=True),
    "argmin": lambda x: mx.argmin(x, keepdims=True),
}


@pytest.mark.parametrize("name", sorted(NONDIFF))
def test_nondifferentiable_rules(name):
    prim = REGISTRY[name]
    x = _f64(_distinct())
    node = NONDIFF[name](x)
    assert node._prim is prim
    ct = mx.ones(node.shape, node.dtype)
    assert prim.vjp(list(node._inputs), ct, node, **node._params) == [None]
    _, (t,) = mx.jvp(NONDIFF[name], [x], [mx.ones_like(x)])
    assert t.shape == node.shape and t.dtype == node.dtype
    assert not np.any(np.array(t))
    # d/da sum(a * f(a)) is f(a) broadcast: f contributes nothing of its own
    g = mx.grad(lambda a: mx.sum(a * NONDIFF[name](a).astype(a.dtype)))(x)
    want = np.broadcast_to(np.array(node).astype(np.float64), SHAPE)
    np.testing.assert_array_equal(np.array(g), want)


def test_integer_inputs_get_no_gradient():
    xi = mx.array([[1, 2], [3, 4]], dtype=mx.int32)
    for fn in (mx.sum, mx.prod, mx.max, mx.mean, mx.cumsum, mx.logsumexp, mx.median):
        _, (g,) = mx.vjp(lambda a: fn(a), [xi], [mx.ones(fn(xi).shape, fn(xi).dtype)])
        assert g.dtype == mx.int32 and g.tolist() == [[0, 0], [0, 0]]


def test_cotangent_dtype_follows_the_input():
    for dt in (mx.float16, mx.bfloat16, mx.float32):
        x = mx.array([[1.0, 2.0], [3.0, 5.0]], dtype=dt)
        for fn in (mx.sum, mx.mean, mx.max, mx.logsumexp, mx.var, mx.median):
            g = mx.grad(lambda a: fn(a, axis=0).sum())(x)
            assert g.dtype == dt and g.shape == x.shape


# ---------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------
def _check_vmap(fun, x, in_axes):
    check_vmap(fun, [x], in_axes=in_axes)
    got = mx.vmap(fun, in_axes=in_axes)(x)
    one = fun(mx.take(x, 0, axis=in_axes))
    assert got.dtype == one.dtype


VMAP_AXES = [None, 0, -1, (0, 1)]
VMAP_OPS = {
    "sum": mx.sum, "prod": mx.prod, "mean": mx.mean, "max": mx.max, "min": mx.min,
    "var": lambda x, **kw: mx.var(x, ddof=1, **kw), "median": mx.median,
    "logsumexp": mx.logsumexp, "all": lambda x, **kw: mx.all(x > 0, **kw),
    "any": lambda x, **kw: mx.any(x > 0.5, **kw), "count_nonzero": mx.count_nonzero,
}


@pytest.mark.parametrize("name", sorted(VMAP_OPS))
@pytest.mark.parametrize("in_axes", [0, 1, 2])
def test_reduction_vmap(name, in_axes):
    fn = VMAP_OPS[name]
    x = _f64(_distinct(seed=12))
    for axis in VMAP_AXES:
        for keepdims in (False, True):
            _check_vmap(lambda a: fn(a, axis=axis, keepdims=keepdims), x, in_axes)


@pytest.mark.parametrize("op", ["argmax", "argmin"])
@pytest.mark.parametrize("in_axes", [0, 2])
def test_arg_reduction_vmap(op, in_axes):
    fn = getattr(mx, op)
    x = _f64(_distinct(seed=13))
    for axis in (None, 0, 1, -1):
        for keepdims in (False, True):
            _check_vmap(lambda a: fn(a, axis=axis, keepdims=keepdims), x, in_axes)


@pytest.mark.parametrize("in_axes", [0, 1])
def test_softmax_vmap(in_axes):
    x = _f64(_distinct(seed=14))
    for axis in (None, 0, -1, (0, 1)):
        _check_vmap(lambda a: mx.softmax(a, axis=axis), x, in_axes)
    xi = mx.array(np.arange(24).reshape(2, 3, 4) % 5, dtype=mx.int32)
    for axis in (-1, 0):  # integer softmax: float32 over the last axis, int32 otherwise
        _check_vmap(lambda a: mx.softmax(a, axis=axis), xi, in_axes)


@pytest.mark.parametrize("op", ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"])
@pytest.mark.parametrize("in_axes", [0, 2])
def test_scan_vmap(op, in_axes):
    fn = getattr(mx, op)
    x = _f64(_signed_half_ones(SHAPE, seed=15))
    for axis in (None, 0, -1):
        for reverse in (False, True):
            for inclusive in (True, False):
                _check_vmap(lambda a: fn(a, axis=axis, reverse=reverse, inclusive=inclusive),
                            x, in_axes)


def test_vmap_keeps_scan_output_dtypes():
    xb = mx.array(np.array([[True, False, True], [False, True, True]]))
    got = mx.vmap(lambda a: mx.cumsum(a))(xb)
    assert got.dtype == mx.int32 and got.tolist() == [[1, 1, 2], [0, 1, 2]]


def test_vmap_of_grad_through_reductions():
    x = _f64(_distinct((4, 3), seed=16))
    f = lambda a: mx.logsumexp(a) + mx.max(a) * mx.prod(a) + mx.median(a) + mx.cumsum(a).sum()
    got = mx.vmap(mx.grad(f))(x)
    want = mx.stack([mx.grad(f)(x[i]) for i in range(4)])
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# second derivatives
# ---------------------------------------------------------------------------------------
W = _f64(np.random.default_rng(20).standard_normal(SHAPE))
SECOND_ORDER = {
    "sum": lambda x: mx.sum(mx.sum(x * x, axis=1) ** 3),
    "sum_keepdims": lambda x: mx.sum(mx.sum(mx.sin(x), axis=(0, 2), keepdims=True) * x),
    "mean": lambda x: mx.sum(mx.mean(x ** 3, axis=(0, 2)) ** 2),
    "logsumexp": lambda x: mx.sum(mx.logsumexp(x, axis=1, keepdims=True)
                                  * mx.logsumexp(2 * x, axis=(0, 2), keepdims=True)),
    "softmax": lambda x: mx.sum(mx.softmax(x, axis=-1) * W),
    "softmax_axes": lambda x: mx.sum(mx.softmax(x * x, axis=(0, 1)) * W),
    "prod": lambda x: mx.sum(mx.prod(x, axis=2) * mx.sum(W, axis=2)),
    "var": lambda x: mx.sum(mx.var(x, axis=1) ** 2),
    "cumsum": lambda x: mx.sum(mx.cumsum(x * x, axis=1, reverse=True) * W),
    "cumprod": lambda x: mx.sum(mx.cumprod(x, axis=2) * W),
    "logcumsumexp": lambda x: mx.sum(mx.logcumsumexp(x, axis=0) * W),
    "logcumsumexp_exclusive": lambda x: mx.sum(_scan_fn("logcumsumexp", 0, True, False)(x) * W),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_grad_of_grad(name):
    f = SECOND_ORDER[name]
    x = _signed_half_ones(SHAPE, seed=21) if name in ("prod", "cumprod") else _distinct(seed=22)
    # jvp and vjp of grad(f) against central differences of grad(f)
    check_grads(mx.grad(f), [x], rtol=1e-4, atol=1e-6)


def test_second_derivative_values():
    x = mx.array([0.1, -0.3, 0.5], dtype=mx.float64)
    # d2/dx2 of logsumexp is diag(p) - p p^T; summed against ones it vanishes
    h = mx.grad(lambda a: mx.sum(mx.grad(lambda b: mx.logsumexp(b))(a)))(x)
    np.testing.assert_allclose(np.array(h), 0.0, atol=1e-12)
    e0 = mx.array([1.0, 0.0, 0.0], dtype=mx.float64)
    h = mx.grad(lambda a: mx.sum(mx.grad(lambda b: mx.logsumexp(b))(a) * e0))(x)
    p = np.exp(np.array(x)) / np.exp(np.array(x)).sum()
    np.testing.assert_allclose(np.array(h), np.eye(3)[0] * p[0] - p[0] * p, rtol=1e-12)
    # mean(x)^2 has Hessian 2/n^2 everywhere
    h = mx.grad(lambda a: mx.sum(mx.grad(lambda b: mx.mean(b) ** 2)(a)))(x)
    np.testing.assert_allclose(np.array(h), np.full(3, 2 / 3), rtol=1e-12)


# ---------------------------------------------------------------------------------------
# completeness
# ---------------------------------------------------------------------------------------
def _declared_in_reduction():
    """Names of the primitives reduction.py declares: every registry entry whose kernel
    lives in that module, cross-checked against the declare(...) calls in its source."""
    names = {n for n, p in REGISTRY.items()
             if getattr(p.cpu, "__module__", None) == reduction.__name__}
    src = Path(reduction.__file__).read_text()
    literal = set(re.findall(r'declare\(\s*"([a-z_]+)"', src))
    assert literal <= names
    assert {p.name for p in reduction.SCANS.values()} <= names
    return names


def test_every_reduction_primitive_has_all_three_rules():
    names = _declared_in_reduction()
    assert {"sum", "prod", "mean", "var", "median", "max", "min", "all", "any", "argmax",
            "argmin", "logsumexp", "softmax", "count_nonzero", "cumsum", "cumprod", "cummax",
            "cummin", "logcumsumexp"} <= names
    missing = [(n, r) for n in sorted(names) for r in ("vjp", "jvp", "vmap")
               if getattr(REGISTRY[n], r) is None]
    assert not missing, missing
