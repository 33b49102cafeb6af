"""Reductions and scans against NumPy, with MLX's dtype rules and error messages."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from oracle import DTYPE_NAMES, assert_same, mx_dtype, np_dtype

RNG = np.random.default_rng(1234)

INTS = [n for n in DTYPE_NAMES if "int" in n]
HALVES = ("float16", "bfloat16")


def make(name, shape, rng=RNG):
    """A NumPy array of dtype `name` with values every op handles exactly (small ints)."""
    if name == "bool":
        x = rng.random(shape) > 0.5
    elif name.startswith("uint"):
        x = rng.integers(0, 6, shape)
    elif "int" in name:
        x = rng.integers(-5, 6, shape)
    elif name == "complex64":
        x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    else:
        x = rng.standard_normal(shape)
    return np.asarray(x).astype(np_dtype(name))


def to_mx(x):
    return mx.array(x, dtype=mx_dtype(x.dtype.name))


def wide(x):
    """x in float64 (complex128 for complex), the precision references are computed in."""
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


# ---------------------------------------------------------------------------------------
# MLX's output dtypes, read off MLX 0.32 for every input dtype (reducing a 2-d array)
# ---------------------------------------------------------------------------------------
_SUMLIKE = {"bool": "int32", "int8": "int32", "int16": "int32", "uint8": "uint32",
            "uint16": "uint32"}
_ATLEAST_FLOAT = {n: "float32" for n in DTYPE_NAMES if n == "bool" or "int" in n}

MLX_DTYPES = {
    "sum": {n: _SUMLIKE.get(n, n) for n in DTYPE_NAMES},
    "prod": {n: _SUMLIKE.get(n, n) for n in DTYPE_NAMES},
    "mean": {n: _ATLEAST_FLOAT.get(n, n) for n in DTYPE_NAMES},
    "median": {n: _ATLEAST_FLOAT.get(n, n) for n in DTYPE_NAMES},
    "logsumexp": {n: _ATLEAST_FLOAT.get(n, n) for n in DTYPE_NAMES},
    "var": {n: _ATLEAST_FLOAT.get(n, "float32" if n == "complex64" else n) for n in DTYPE_NAMES},
    "std": {n: _ATLEAST_FLOAT.get(n, "float32" if n == "complex64" else n) for n in DTYPE_NAMES},
    "max": {n: n for n in DTYPE_NAMES},
    "min": {n: n for n in DTYPE_NAMES},
    "all": {n: "bool" for n in DTYPE_NAMES},
    "any": {n: "bool" for n in DTYPE_NAMES},
    "argmax": {n: "uint32" for n in DTYPE_NAMES},
    "argmin": {n: "uint32" for n in DTYPE_NAMES},
    "count_nonzero": {n: "int32" for n in DTYPE_NAMES},
    "cumsum": {n: "int32" if n == "bool" else n for n in DTYPE_NAMES},
    "cumprod": {n: n for n in DTYPE_NAMES},
    "cummax": {n: n for n in DTYPE_NAMES},
    "cummin": {n: n for n in DTYPE_NAMES},
    "logcumsumexp": {n: _ATLEAST_FLOAT.get(n, n) for n in DTYPE_NAMES},
}


def test_dtype_table_spot_checks():
    # a few entries typed out by hand, so that a slip in building the table shows up
    assert MLX_DTYPES["sum"]["bool"] == "int32"
    assert MLX_DTYPES["sum"]["uint16"] == "uint32"
    assert MLX_DTYPES["sum"]["int64"] == "int64"
    assert MLX_DTYPES["prod"]["uint64"] == "uint64"
    assert MLX_DTYPES["mean"]["uint64"] == "float32"
    assert MLX_DTYPES["mean"]["complex64"] == "complex64"
    assert MLX_DTYPES["var"]["complex64"] == "float32"
    assert MLX_DTYPES["median"]["float16"] == "float16"
    assert MLX_DTYPES["cumsum"]["int8"] == "int8"


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("op", sorted(MLX_DTYPES))
def test_mlx_output_dtype(op, name):
    a = to_mx(make(name, (2, 3)))
    out = getattr(mx, op)(a)
    assert out.dtype.name == MLX_DTYPES[op][name]
    # evaluated, the kernel's result comes back cast to the declared dtype
    assert np.asarray(out).dtype == np_dtype(MLX_DTYPES[op][name])


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_softmax_dtype_depends_on_axes(name):
    a = to_mx(make(name, (2, 3)))
    floaty = MLX_DTYPES["mean"][name]
    assert np.asarray(mx.softmax(a, axis=-1)).dtype == np_dtype(floaty)
    assert np.asarray(mx.softmax(a, axis=0)).dtype == np_dtype(name)
    assert mx.softmax(a, axis=-1).dtype.name == floaty
    assert mx.softmax(a, axis=1).dtype.name == floaty
    assert mx.softmax(a, axis=(1,)).dtype.name == floaty
    # anything but the last axis alone keeps the input dtype (MLX casts back)
    assert mx.softmax(a, axis=0).dtype.name == name
    assert mx.softmax(a).dtype.name == name
    assert mx.softmax(a, axis=(0, 1)).dtype.name == name
    assert mx.softmax(to_mx(make(name, (4,)))).dtype.name == floaty


@pytest.mark.parametrize("op", ["sum", "prod", "max", "min"])
@pytest.mark.parametrize("name", ["bool", "int8", "uint16", "float16"])
def test_nothing_to_reduce_returns_input(op, name):
    # MLX returns the input itself (dtype included) when no axis is reduced
    x = make(name, (2, 3))
    a = to_mx(x)
    out = getattr(mx, op)(a, axis=[])
    assert out.dtype.name == name
    assert_same(out, x)
    s = to_mx(np.asarray(x[0, 0]))
    assert getattr(mx, op)(s).dtype.name == name
    assert getattr(mx, op)(s, keepdims=True).shape == ()


# ---------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------
def _axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        return tuple(a % ndim for a in axis)
    return (axis % ndim,)


def _np_logsumexp(x, axis, keepdims):
    # complex: shift by the (lexicographic) maximum as MLX does, which fixes the branch of
    # the imaginary part
    x = wide(x)
    m = np.max(x, axis=axis, keepdims=True)
    if x.dtype.kind != "c":
        m = np.where(np.isfinite(m), m, 0)
    s = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return s if keepdims else np.squeeze(s, axis=axis)


def _np_softmax(x, axis):
    x = wide(x)
    m = np.max(x.real if x.dtype.kind == "c" else x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


def np_reduce(op, x, axis, keepdims, ddof=0):
    """What `op` should give, computed by NumPy in a wide dtype."""
    name = x.dtype.name
    ax = _axes(axis, x.ndim)
    out = MLX_DTYPES[op][name]
    if op in ("sum", "prod"):
        acc = np.float32 if name in HALVES else np_dtype(out)
        f = np.sum if op == "sum" else np.prod
        return f(x, axis=ax, keepdims=keepdims, dtype=acc)
    if op in ("max", "min"):
        f = np.max if op == "max" else np.min
        return f(x.astype(np.float32) if name == "bfloat16" else x, axis=ax, keepdims=keepdims)
    if op in ("all", "any"):
        return getattr(np, op)(x.astype(np.float32) if name == "bfloat16" else x, axis=ax,
                               keepdims=keepdims)
    if op == "count_nonzero":
        return np.count_nonzero(x, axis=ax, keepdims=keepdims)
    if op == "mean":
        return np.mean(wide(x), axis=ax, keepdims=keepdims)
    if op == "var":
        return np.var(wide(x), axis=ax, keepdims=keepdims, ddof=ddof)
    if op == "std":
        return np.std(wide(x), axis=ax, keepdims=keepdims, ddof=ddof)
    if op == "median":
        return np.median(wide(x), axis=ax, keepdims=keepdims)
    if op == "logsumexp":
        return _np_logsumexp(x, ax, keepdims)
    raise AssertionError(op)


REDUCTIONS = ["sum", "prod", "mean", "var", "std", "median", "max", "min", "all", "any",
              "logsumexp", "count_nonzero"]
AXES = [None, 0, -1, (0, 2), [1, 2], (2, 0), ()]


def _expected_dtype(op, name, axis):
    if op in ("sum", "prod", "max", "min") and axis == ():
        return name
    return MLX_DTYPES[op][name]


def _tolerance(op, name):
    if name in HALVES:
        return dict(rtol=2e-2, atol=2e-2)
    if op == "prod" and name in ("float32", "complex64"):
        return dict(rtol=1e-4, atol=1e-6)
    return {}


def _call(op, a, axis, keepdims, **kw):
    if op == "count_nonzero":
        return mx.count_nonzero(a, axis=axis, keepdims=keepdims)
    return getattr(mx, op)(a, axis, keepdims, **kw)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("op", REDUCTIONS)
def test_reduction_matches_numpy(op, name, axis, keepdims):
    x = make(name, (3, 4, 5))
    got = _call(op, to_mx(x), axis, keepdims)
    want = np_reduce(op, x, axis, keepdims)
    assert_same(got, want, dtype=_expected_dtype(op, name, axis), **_tolerance(op, name))


@pytest.mark.parametrize("ddof", [0, 1, 2, -1])
@pytest.mark.parametrize("name", ["int16", "float16", "bfloat16", "float32", "float64", "complex64"])
@pytest.mark.parametrize("op", ["var", "std"])
def test_var_std_ddof(op, name, ddof):
    x = make(name, (4, 6))
    for axis in (None, 0, 1):
        got = getattr(mx, op)(to_mx(x), axis=axis, ddof=ddof)
        want = np_reduce(op, x, axis, False, ddof=ddof)
        assert_same(got, want, dtype=MLX_DTYPES[op][name], **_tolerance(op, name))


def test_var_ddof_at_least_n_gives_inf_or_nan():
    a = mx.array([1.0, 2.0, 3.0])
    assert np.isposinf(mx.var(a, ddof=3).item())
    assert np.isposinf(mx.var(a, ddof=5).item())
    assert math.isnan(mx.var(mx.array([1.0, 1.0, 1.0]), ddof=3).item())


def test_var_of_complex_is_mean_squared_modulus():
    out = mx.var(mx.array([1 + 2j, 3 - 1j]))
    assert out.dtype == mx.float32 and out.item() == pytest.approx(3.25)
    assert mx.std(mx.array([1 + 2j, 3 - 1j])).item() == pytest.approx(math.sqrt(3.25))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, 2])
@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_argmax_argmin_match_numpy(op, name, axis, keepdims):
    x = make(name, (3, 4, 5))
    got = getattr(mx, op)(to_mx(x), axis=axis, keepdims=keepdims)
    ref = x.astype(np.float32) if name == "bfloat16" else x  # same values, same order
    want = getattr(np, op)(ref, axis=axis, keepdims=keepdims)
    assert_same(got, want.astype(np.uint32), dtype="uint32")


@pytest.mark.parametrize("name", ["int32", "float16", "float32", "complex64"])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1), [1, 2], ()], ids=str)
def test_softmax_matches_numpy(name, axis):
    x = make(name, (2, 3, 4))
    got = mx.softmax(to_mx(x), axis=axis)
    want = _np_softmax(x, _axes(axis, 3))
    out = MLX_DTYPES["mean"][name] if _axes(axis, 3) == (2,) else name
    if out != name or name not in INTS:
        assert_same(got, want, dtype=out, **_tolerance("softmax", name))
    else:  # integer softmax over other axes truncates, as MLX's cast back does
        assert_same(got, want.astype(np_dtype(name)), dtype=name)


def test_softmax_precise_flag_accepted():
    x = make("float16", (3, 7))
    for precise in (False, True):
        got = mx.softmax(to_mx(x), axis=1, precise=precise)
        assert_same(got, _np_softmax(x, 1), dtype="float16", rtol=1e-2, atol=1e-3)


# ---------------------------------------------------------------------------------------
# hypothesis: random shapes and axis subsets
# ---------------------------------------------------------------------------------------
@st.composite
def shape_and_axes(draw, min_dims=0):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=4)))
    ndim = len(shape)
    kind = draw(st.sampled_from(["none", "int", "list", "tuple"]))
    if kind == "none" or ndim == 0:
        return shape, None
    if kind == "int":
        return shape, draw(st.integers(-ndim, ndim - 1))
    axes = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    axes = [a - ndim if draw(st.booleans()) else a for a in axes]  # mix negative axes in
    return shape, axes if kind == "list" else tuple(axes)


@settings(max_examples=80, deadline=None)
@given(sa=shape_and_axes(), op=st.sampled_from(REDUCTIONS), keepdims=st.booleans(),
       name=st.sampled_from(["int32", "uint8", "float32", "bool"]), seed=st.integers(0, 2**16))
def test_reduction_property(sa, op, keepdims, name, seed):
    shape, axis = sa
    x = make(name, shape, np.random.default_rng(seed))
    got = _call(op, to_mx(x), axis, keepdims)
    want = np_reduce(op, x, axis, keepdims)
    dtype = _expected_dtype(op, name, () if _axes(axis, x.ndim) == () else axis)
    assert_same(got, want, dtype=dtype, **_tolerance(op, name))


@settings(max_examples=60, deadline=None)
@given(sa=shape_and_axes(min_dims=1), seed=st.integers(0, 2**16))
def test_softmax_property_sums_to_one(sa, seed):
    shape, axis = sa
    x = make("float32", shape, np.random.default_rng(seed)) * 30
    got = mx.softmax(to_mx(x), axis=axis)
    ax = _axes(axis, len(shape))
    assert_same(got, _np_softmax(x, ax), dtype="float32", rtol=1e-5, atol=1e-6)
    if ax:
        np.testing.assert_allclose(np.sum(np.asarray(got), axis=ax), 1.0, rtol=1e-5)


# ---------------------------------------------------------------------------------------
# scans
# ---------------------------------------------------------------------------------------
def _identity(kind, dt):
    if kind == "cumsum":
        return 0
    if kind == "cumprod":
        return 1
    if kind == "logcumsumexp":
        return -np.inf
    big = kind == "cummin"
    if dt.kind == "b":
        return big
    if dt.kind in "iu":
        return np.iinfo(dt).max if big else np.iinfo(dt).min
    return np.inf if big else -np.inf


_NP_SCAN = {
    "cumsum": lambda x, ax, dt: np.cumsum(x, axis=ax, dtype=dt),
    "cumprod": lambda x, ax, dt: np.cumprod(x, axis=ax, dtype=dt),
    "cummax": lambda x, ax, dt: np.maximum.accumulate(x, axis=ax).astype(dt),
    "cummin": lambda x, ax, dt: np.minimum.accumulate(x, axis=ax).astype(dt),
    "logcumsumexp": lambda x, ax, dt: np.logaddexp.accumulate(x.astype(dt), axis=ax),
}


def np_scan(kind, x, axis, reverse, inclusive):
    """The scan composed from NumPy pieces: flatten, flip, accumulate, shift."""
    name = x.dtype.name
    out = np_dtype(MLX_DTYPES[kind][name])
    dt = np.dtype(np.float64) if name in HALVES or kind == "logcumsumexp" else out
    if name == "bfloat16":
        x = x.astype(np.float32)
    if axis is None:
        x, axis = x.reshape(-1), 0
    if reverse:
        x = np.flip(x, axis)
    y = _NP_SCAN[kind](x, axis, dt)
    if not inclusive:
        first = np.full_like(np.take(y, [0], axis=axis), _identity(kind, y.dtype))
        y = np.concatenate([first, np.take(y, np.arange(y.shape[axis] - 1), axis=axis)], axis)
    if reverse:
        y = np.flip(y, axis)
    return y


SCANS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "complex64"])
@pytest.mark.parametrize("kind", SCANS)
def test_scan_matches_numpy(kind, name, axis, reverse, inclusive):
    x = make(name, (3, 4))
    got = getattr(mx, kind)(to_mx(x), axis, reverse=reverse, inclusive=inclusive)
    want = np_scan(kind, x, axis, reverse, inclusive)
    assert_same(got, want, dtype=MLX_DTYPES[kind][name], **_tolerance(kind, name))


@pytest.mark.parametrize("inclusive", [True, False])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("kind", ["cumsum", "cumprod", "cummax", "cummin"])
def test_complex_scans(kind, reverse, inclusive):
    x = make("complex64", (3, 4))
    got = getattr(mx, kind)(to_mx(x), 1, reverse=reverse, inclusive=inclusive)
    want = np_scan(kind, x, 1, reverse, inclusive)
    if not inclusive and kind in ("cummax", "cummin"):
        # the exclusive start is (-+inf, -+inf), which NumPy's full_like above cannot spell
        edge = (slice(None), -1 if reverse else 0)
        inf = np.inf if kind == "cummin" else -np.inf
        np.testing.assert_array_equal(np.asarray(got)[edge], np.full(3, complex(inf, inf)))
        inner = (slice(None), slice(0, -1) if reverse else slice(1, None))
        assert_same(mx.array(np.asarray(got)[inner]), want[inner], dtype="complex64")
    else:
        assert_same(got, want, dtype="complex64", rtol=1e-5, atol=1e-5)


def test_complex_logcumsumexp():
    x = (RNG.standard_normal((2, 5)) + 0.5j * RNG.standard_normal((2, 5))).astype(np.complex64)
    got = mx.logcumsumexp(to_mx(x), axis=1)
    want = np.log(np.cumsum(np.exp(x.astype(np.complex128)), axis=1))
    # equal up to whole turns of the imaginary part (the log's branch)
    g = np.asarray(got)
    np.testing.assert_allclose(np.exp(g), np.exp(want), rtol=1e-4)
    np.testing.assert_allclose(g.real, want.real, rtol=1e-5, atol=1e-5)
    # one element scans to itself, imaginary part included
    one = mx.array([1 + 4j, 2 + 0j])
    assert np.asarray(mx.logcumsumexp(one))[0] == pytest.approx(1 + 4j)
    ex = np.asarray(mx.logcumsumexp(one, inclusive=False))
    assert np.isneginf(ex[0].real) and ex[1] == pytest.approx(1 + 4j)


@settings(max_examples=60, deadline=None)
@given(sa=shape_and_axes(min_dims=1), kind=st.sampled_from(SCANS), reverse=st.booleans(),
       inclusive=st.booleans(), name=st.sampled_from(["int32", "float32", "uint8"]),
       seed=st.integers(0, 2**16))
def test_scan_property(sa, kind, reverse, inclusive, name, seed):
    shape, axis = sa
    if isinstance(axis, (list, tuple)):
        axis = axis[0] if axis else None
    x = make(name, shape, np.random.default_rng(seed))
    got = getattr(mx, kind)(to_mx(x), axis=axis, reverse=reverse, inclusive=inclusive)
    want = np_scan(kind, x, axis, reverse, inclusive)
    assert_same(got, want, dtype=MLX_DTYPES[kind][name], rtol=1e-5, atol=1e-5)


def test_scan_examples_from_mlx():
    a = mx.array([1.0, 2.0, 3.0])
    assert mx.cumsum(a, inclusive=False).tolist() == [0, 1, 3]
    assert mx.cumsum(a, reverse=True).tolist() == [6, 5, 3]
    assert mx.cumsum(a, reverse=True, inclusive=False).tolist() == [5, 3, 0]
    assert mx.cumprod(a, reverse=True, inclusive=False).tolist() == [6, 3, 1]
    assert mx.cummax(a, inclusive=False).tolist() == [-np.inf, 1, 2]
    assert mx.cummin(a, inclusive=False).tolist() == [np.inf, 1, 1]
    assert mx.cummax(mx.array([1, 2, 3]), inclusive=False).tolist() == [-2**31, 1, 2]
    assert mx.cummin(mx.array([1, 2, 3], mx.int8), inclusive=False).tolist() == [127, 1, 1]
    assert mx.cummax(mx.array([1, 2, 3], mx.uint8), inclusive=False).tolist() == [0, 1, 2]
    assert mx.cumprod(mx.array([True, False, True]), inclusive=False).tolist() == [True, True, False]
    assert mx.cumsum(mx.array([True, False, True]), inclusive=False).tolist() == [0, 1, 1]
    # wrap-around in the input's own dtype
    assert mx.cumsum(mx.array([200, 100], mx.uint8)).tolist() == [200, 44]
    assert mx.cumsum(mx.array([[1, 2], [3, 4]])).tolist() == [1, 3, 6, 10]
    assert mx.cumsum(mx.array([[1, 2], [3, 4]]), reverse=True).tolist() == [10, 9, 7, 4]


def test_scan_dtype_argument():
    a = mx.array([200, 100], mx.uint8)
    out = mx.cumsum(a, dtype=mx.int32)
    assert out.dtype == mx.int32 and out.tolist() == [200, 300]
    assert mx.cumsum(mx.array([1.5, 100.0]), dtype=mx.int32).tolist() == [1, 101]
    out = mx.cumsum(mx.array([1, 2, 3], mx.float16), dtype=mx.bool_)
    assert out.dtype == mx.int32 and out.tolist() == [1, 2, 3]
    out = mx.cumprod(mx.array([1.5, 100.0]), dtype=mx.float16)
    assert out.dtype == mx.float16 and out.tolist() == [1.5, 150.0]


def test_scan_shapes():
    assert mx.cumsum(mx.array(3.0)).shape == (1,)
    assert mx.cumsum(mx.ones((2, 3))).shape == (6,)
    assert mx.cumsum(mx.ones((2, 3)), axis=1).shape == (2, 3)
    for kind in SCANS:
        e = getattr(mx, kind)(mx.zeros((0, 3)), axis=0, inclusive=False)
        assert e.shape == (0, 3) and np.asarray(e).shape == (0, 3)


# ---------------------------------------------------------------------------------------
# numerical behaviour
# ---------------------------------------------------------------------------------------
INF = float("inf")
NAN = float("nan")


def test_logsumexp_stable_for_large_and_infinite_inputs():
    assert mx.logsumexp(mx.array([1000.0, 1000.0])).item() == pytest.approx(1000 + math.log(2))
    assert mx.logsumexp(mx.array([-1000.0, -1000.0])).item() == pytest.approx(-1000 + math.log(2))
    assert mx.logsumexp(mx.array([1000.0, 0.0], mx.float16)).item() == pytest.approx(1000, rel=1e-3)
    assert mx.logsumexp(mx.array([-INF, -INF])).item() == -INF
    assert mx.logsumexp(mx.array([-INF, 0.0])).item() == 0.0
    assert mx.logsumexp(mx.array([INF, 1.0])).item() == INF
    assert mx.logsumexp(mx.array([INF, -INF])).item() == INF
    assert mx.logsumexp(mx.array([INF, INF])).item() == INF
    assert math.isnan(mx.logsumexp(mx.array([NAN, 1.0])).item())
    rows = mx.logsumexp(mx.array([[INF, 1.0], [-INF, -INF], [3.0, 3.0]]), axis=1)
    np.testing.assert_allclose(np.asarray(rows), [INF, -INF, 3 + math.log(2)], rtol=1e-6)


def test_softmax_stable_for_large_and_infinite_inputs():
    np.testing.assert_allclose(np.asarray(mx.softmax(mx.array([1000.0, 0.0]))), [1, 0])
    np.testing.assert_allclose(np.asarray(mx.softmax(mx.array([-1000.0, -1000.0]))), [0.5, 0.5])
    np.testing.assert_allclose(np.asarray(mx.softmax(mx.array([-INF, 0.0]))), [0, 1])
    h = mx.softmax(mx.array([1000.0, 999.0], mx.float16))  # exp(1000) overflows float16
    np.testing.assert_allclose(np.asarray(h).astype(np.float32), [0.731, 0.269], atol=1e-3)
    # as in MLX: all -inf, or a +inf, has no defined softmax
    assert np.isnan(np.asarray(mx.softmax(mx.array([-INF, -INF])))).all()
    assert np.isnan(np.asarray(mx.softmax(mx.array([INF, 0.0])))).all()


def test_logcumsumexp_stable():
    out = np.asarray(mx.logcumsumexp(mx.array([1000.0, 1000.0, -INF])))
    np.testing.assert_allclose(out, [1000, 1000 + math.log(2), 1000 + math.log(2)])
    out = np.asarray(mx.logcumsumexp(mx.array([-INF, -INF, 1.0])))
    assert out.tolist() == [-INF, -INF, 1.0]
    out = np.asarray(mx.logcumsumexp(mx.array([1.0, 2.0, 3.0]), reverse=True, inclusive=False))
    np.testing.assert_allclose(out, [np.logaddexp(2, 3), 3, -INF])


def test_nan_handling():
    a = mx.array([1.0, NAN, 3.0])
    assert math.isnan(mx.max(a).item()) and math.isnan(mx.min(a).item())
    assert mx.argmax(a).item() == 1 and mx.argmin(a).item() == 1
    assert mx.argmax(mx.array([NAN, 1.0, NAN])).item() == 0
    assert math.isnan(mx.median(a).item())
    assert np.isnan(np.asarray(mx.cummax(a))[1:]).all()
    assert mx.all(mx.array([1.0, NAN])).item() is True
    assert mx.count_nonzero(mx.array([1.0, 0.0, NAN])).item() == 2


def test_complex_order_is_lexicographic():
    a = mx.array([1 + 2j, 3 - 1j, 3 + 0j])
    assert mx.max(a).item() == 3 + 0j
    assert mx.argmax(a).item() == 2
    b = mx.array([1 + 2j, 1 - 1j, 3 + 0j])
    assert mx.min(b).item() == 1 - 1j
    assert mx.argmin(b).item() == 1
    assert mx.median(mx.array([1 + 2j, 3 - 1j, 2 + 0j])).item() == 2 + 0j


def test_integer_accumulation_rules():
    assert mx.sum(mx.array([200, 200], mx.uint8)).item() == 400
    assert mx.sum(mx.array([-100, -100], mx.int8)).item() == -200
    assert mx.prod(mx.array([100, 100], mx.int8)).item() == 10000
    assert mx.sum(mx.array([2**31 - 1, 1], mx.int32)).item() == -2**31  # int32 wraps
    assert mx.sum(mx.array([2**32 - 1, 1], mx.uint32)).item() == 0
    assert mx.prod(mx.array([True, False])).item() == 0
    assert mx.median(mx.array([1, 4], mx.int32)).item() == 2.5
    assert mx.median(mx.array([True, False])).item() == 0.5


def test_half_precision_accumulates_in_float32():
    ones = mx.ones((10000,), mx.float16)
    assert mx.sum(ones).item() == 10000  # a float16 accumulator stalls at 2048
    assert mx.mean(ones).item() == 1
    assert mx.sum(mx.array([60000.0, 60000.0, -60000.0], mx.float16)).item() == 60000
    assert mx.cumsum(ones).tolist()[-1] == 10000
    b = mx.ones((1000,), mx.bfloat16)
    assert mx.sum(b).item() == 1000  # a bfloat16 accumulator stalls at 256
    assert mx.var(mx.array([1.0, 2.0], mx.float16)).item() == 0.25


def test_empty_reductions():
    e = mx.zeros((0, 3))
    assert mx.sum(e).item() == 0 and mx.sum(e, axis=0).tolist() == [0, 0, 0]
    assert mx.prod(e).item() == 1 and mx.prod(e, axis=0).tolist() == [1, 1, 1]
    assert mx.sum(e, axis=1).shape == (0,)
    assert math.isnan(mx.mean(e).item())
    assert np.isnan(np.asarray(mx.var(e, axis=0))).all()
    assert mx.all(e).item() is True and mx.any(e).item() is False
    assert mx.count_nonzero(e).item() == 0
    assert mx.max(e, axis=1).shape == (0,)  # nothing reduced over the empty axis
    assert mx.max(mx.zeros((3, 0)), axis=0).shape == (0,)
    assert mx.max(mx.zeros((2, 0, 3)), axis=(0, 2)).shape == (0,)
    assert mx.median(mx.zeros((0, 3)), axis=1).shape == (0,)
    assert mx.softmax(e).shape == (0, 3)


def test_zero_dim_inputs():
    s = mx.array(3.0)
    assert mx.sum(s).item() == 3 and mx.sum(s, axis=()).shape == ()
    assert mx.mean(mx.array(3, mx.int8)).dtype == mx.float32
    assert mx.var(s).item() == 0 and mx.var(mx.array(3)).dtype == mx.float32
    assert mx.median(s).item() == 3
    assert mx.logsumexp(s).item() == 3 and mx.logsumexp(mx.array(3)).dtype == mx.float32
    assert mx.argmax(s).item() == 0 and mx.argmax(s).shape == ()
    assert mx.softmax(s).item() == 1
    assert mx.softmax(mx.array(3)).dtype == mx.int32
    assert mx.count_nonzero(mx.array(3)).item() == 1
    assert mx.all(mx.array(3, mx.int8)).item() is True


def test_keepdims_shapes():
    a = mx.ones((2, 3, 4))
    assert mx.sum(a, keepdims=True).shape == (1, 1, 1)
    assert mx.sum(a, axis=(0, 2), keepdims=True).shape == (1, 3, 1)
    assert mx.sum(a, axis=[-1, 0]).shape == (3,)
    assert mx.argmax(a, keepdims=True).shape == (1, 1, 1)
    assert mx.argmax(a, axis=1, keepdims=True).shape == (2, 1, 4)
    assert mx.median(a, axis=(0, 1), keepdims=True).shape == (1, 1, 4)
    assert mx.count_nonzero(a, axis=1, keepdims=True).shape == (2, 1, 4)
    assert mx.count_nonzero(a, 1).shape == (2, 4)  # axis may be given positionally
    assert mx.sum(a, axis=np.int64(1)).shape == (2, 4)


def test_mean_of_integers_does_not_wrap():
    a = mx.array([2**31 - 1, 2**31 - 1], mx.int32)
    assert mx.mean(a).item() == pytest.approx(2**31 - 1)


def test_kernels_do_not_mutate_inputs():
    x = make("float32", (4, 5))
    a = to_mx(x)
    for f in (lambda t: mx.var(t, axis=0), lambda t: mx.softmax(t, axis=1),
              lambda t: mx.logsumexp(t, axis=1), lambda t: mx.median(t, axis=1),
              lambda t: mx.cumsum(t, axis=1, reverse=True, inclusive=False),
              lambda t: mx.logcumsumexp(t, reverse=True), lambda t: mx.mean(t)):
        mx.eval(f(a))
        np.testing.assert_array_equal(np.asarray(a), x)


def test_lazy_until_evaluated():
    a = mx.ones((3, 3))
    out = mx.sum(a, axis=0) * 2
    assert out.shape == (3,) and out.dtype == mx.float32
    assert out.tolist() == [6, 6, 6]


# ---------------------------------------------------------------------------------------
# array methods
# ---------------------------------------------------------------------------------------
def test_array_methods():
    x = make("float32", (3, 4))
    a = to_mx(x)
    assert_same(a.sum(axis=1, keepdims=True), x.sum(axis=1, keepdims=True))
    assert_same(a.sum(), x.sum())
    assert_same(a.prod(0), x.prod(0), rtol=1e-5)
    assert_same(a.mean(axis=(0, 1)), x.mean())
    assert_same(a.var(axis=0, ddof=1), x.var(axis=0, ddof=1))
    assert_same(a.std(1, True), x.std(1, keepdims=True))
    assert_same(a.max(axis=0), x.max(axis=0))
    assert_same(a.min(), x.min())
    assert_same(a.argmax(), np.uint32(x.argmax()), dtype="uint32")
    assert_same(a.argmin(axis=0, keepdims=True), x.argmin(0, keepdims=True).astype(np.uint32))
    assert_same(a.all(axis=1), x.all(axis=1))
    assert_same(a.any(), x.any())
    assert_same(a.logsumexp(axis=1), _np_logsumexp(x, (1,), False), dtype="float32")
    assert_same(a.cumsum(reverse=True), np.cumsum(x.ravel()[::-1])[::-1])
    assert_same(a.cumsum(1, inclusive=False),
                np.concatenate([np.zeros((3, 1), np.float32), np.cumsum(x, 1)[:, :-1]], 1))
    assert_same(a.cumprod(axis=0), np.cumprod(x, axis=0))
    assert_same(a.cummax(axis=1), np.maximum.accumulate(x, axis=1))
    assert_same(a.cummin(axis=1, reverse=True), np.minimum.accumulate(x[:, ::-1], 1)[:, ::-1])
    assert_same(a.logcumsumexp(axis=0), np.logaddexp.accumulate(x, axis=0))


def test_signatures_match_mlx():
    import inspect
    plain = ["a", "axis", "keepdims", "stream"]
    for op in ("sum", "prod", "mean", "median", "min", "max", "all", "any", "argmin",
               "argmax", "logsumexp"):
        params = inspect.signature(getattr(mx, op)).parameters
        assert list(params) == plain, op
        assert params["axis"].default is None and params["keepdims"].default is False
        assert params["stream"].kind is inspect.Parameter.KEYWORD_ONLY
    for op in ("var", "std"):
        assert list(inspect.signature(getattr(mx, op)).parameters) == plain[:3] + ["ddof", "stream"]
    sm = inspect.signature(mx.softmax).parameters
    assert list(sm) == ["a", "axis", "precise", "stream"] and sm["precise"].default is False
    cn = inspect.signature(mx.count_nonzero).parameters
    assert cn["keepdims"].kind is inspect.Parameter.KEYWORD_ONLY
    for op in SCANS:
        params = inspect.signature(getattr(mx, op)).parameters
        assert params["reverse"].default is False and params["inclusive"].default is True
        assert params["reverse"].kind is inspect.Parameter.KEYWORD_ONLY
    assert "dtype" in inspect.signature(mx.cumsum).parameters
    assert "dtype" in inspect.signature(mx.cumprod).parameters


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
ALL_OPS = REDUCTIONS + ["argmax", "argmin"]


@pytest.mark.parametrize("op", ALL_OPS + ["softmax"] + SCANS)
def test_axis_out_of_range(op):
    a = mx.ones((2, 3))
    f = getattr(mx, op)
    for bad in (2, -3):
        with pytest.raises(mx.AxisError, match=rf"^\[{op}\] Axis {bad} is out of bounds for array with 2 dimensions"):
            f(a, axis=bad)
    with pytest.raises(IndexError, match=rf"\[{op}\]"):
        f(a, axis=5)
    if op not in ("argmax", "argmin") + tuple(SCANS):
        with pytest.raises(mx.AxisError, match=rf"\[{op}\] Axis 7"):
            f(a, axis=(0, 7))


@pytest.mark.parametrize("op", REDUCTIONS + ["softmax"])
def test_duplicate_axes(op):
    f = getattr(mx, op)
    with pytest.raises(ValueError, match=rf"^\[{op}\] Received duplicate axes \(0, 0\)"):
        f(mx.ones((2, 3)), axis=(0, 0))
    with pytest.raises(ValueError, match=rf"^\[{op}\] Received duplicate axes \(0, -2\)"):
        f(mx.ones((2, 3)), axis=[0, -2])


@pytest.mark.parametrize("op", ALL_OPS + ["softmax"] + SCANS)
def test_axis_type_errors(op):
    with pytest.raises(TypeError, match=rf"^\[{op}\] axis must be an integer, got float"):
        getattr(mx, op)(mx.ones((2, 3)), axis=1.0)


@pytest.mark.parametrize("op", ["argmax", "argmin"] + SCANS)
def test_single_axis_ops_reject_axis_lists(op):
    with pytest.raises(TypeError, match=rf"^\[{op}\] axis must be an integer, got list"):
        getattr(mx, op)(mx.ones((2, 3)), axis=[0])


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_over_empty_axis(op):
    with pytest.raises(ValueError, match=rf"^\[{op}\] Cannot {op} reduce over axis 0 with size 0\."):
        getattr(mx, op)(mx.zeros((0, 3)))
    with pytest.raises(ValueError, match=rf"^\[{op}\] Cannot {op} reduce over axis 1 with size 0\."):
        getattr(mx, op)(mx.zeros((3, 0)), axis=1)
    with pytest.raises(ValueError, match=rf"axis 1 with size 0"):
        getattr(mx, op)(mx.zeros((2, 0, 3)), axis=(1, 2))


@pytest.mark.parametrize("op", ["argmax", "argmin"])
def test_arg_of_empty(op):
    for axis in (None, 1):
        with pytest.raises(ValueError, match=rf"^\[{op}\] Cannot {op} reduce zero size array\."):
            getattr(mx, op)(mx.zeros((0, 3)), axis=axis)


def test_median_and_logsumexp_of_empty():
    with pytest.raises(ValueError, match=r"^\[median\] Cannot take median along empty axis\."):
        mx.median(mx.zeros((3, 0)), axis=1)
    with pytest.raises(ValueError, match=r"^\[median\] Cannot take median along empty axis\."):
        mx.median(mx.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"^\[logsumexp\] Received empty array\."):
        mx.logsumexp(mx.zeros((3, 0)), axis=0)


def test_argument_type_errors():
    a = mx.ones((2, 3))
    with pytest.raises(TypeError, match=r"^\[var\] ddof must be an integer, got float"):
        mx.var(a, ddof=1.5)
    with pytest.raises(TypeError, match=r"^\[std\] ddof must be an integer, got str"):
        mx.std(a, ddof="1")
    with pytest.raises(TypeError, match=r"^\[sum\] keepdims must be a bool, got int"):
        mx.sum(a, keepdims=1)
    with pytest.raises(TypeError, match=r"^\[cumsum\] dtype must be an mx Dtype"):
        mx.cumsum(a, dtype="float32")
    with pytest.raises(ValueError, match=r"^\[softmax\] Received non-empty axes for array with 0 dimensions"):
        mx.softmax(mx.array(1.0), axis=0)
    with pytest.raises(mx.AxisError, match=r"^\[sum\] Axis 0 is out of bounds for array with 0 dimensions"):
        mx.sum(mx.array(1.0), axis=0)
    with pytest.raises(mx.AxisError, match=r"^\[cumsum\] Axis 0 is out of bounds for array with 0 dimensions"):
        mx.cumsum(mx.array(1.0), axis=0)
