"""GPU kernels of the scans (cumsum, cumprod, cummax, cummin, logcumsumexp:
shaders/scan.metal) and of the sorts (sort, argsort, partition, argpartition:
shaders/sort.metal).

Each test runs one op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape, for every dtype, along first, middle, last and negative
axes and the flattened array, reversed and exclusive, over odd layouts (empty, size 1, 0-d,
non-contiguous), special values (NaN, infinities, signed zeros), ties and long rows, and
checks that the GPU kernel really ran (no CPU fallback).

Sums and products of floats run in another order on the GPU (a parallel scan) than on the
CPU (left to right), so their inputs here are small multiples of 1/4 (and products of
+-1, 1/2 and 2): every partial result is exact, so the GPU must equal the CPU exactly.
max/min are exact anyway; logcumsumexp is compared within the dtype's tolerance.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, assert_close, both, make, np_dtype, ran_natively

pytestmark = pytest.mark.gpu

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64"]
SCANS = ["cumsum", "cumprod", "cummax", "cummin", "logcumsumexp"]
FLOATS = ("float16", "bfloat16", "float32", "float64")


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups() if k[0] in ("scan", "sort")]
                      + [("unary", "copy")], threads=16)
    return b


def check(fn, *inputs, dtype="float32", what="", native=None, exact=False):
    """fn on the GPU equals fn on the CPU (exactly, signs of zeros included, when
    `exact`); `native` primitives did not fall back."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    if exact:
        assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape, g.dtype,
                                                           c.dtype)
        if g.dtype.kind == "f" or g.dtype.name == "bfloat16":
            gf, cf = g.astype(np.float64), c.astype(np.float64)
            np.testing.assert_array_equal(gf, cf, err_msg=what)
            # zeros keep their signs (NaN's sign bit is not compared)
            num = ~np.isnan(cf)
            np.testing.assert_array_equal(np.signbit(gf[num]), np.signbit(cf[num]),
                                          err_msg=what + " signs")
        else:
            np.testing.assert_array_equal(g, c, err_msg=what)
    else:
        assert_close(g, c, dtype, what)
    if native:
        ran_natively(native, what)


def scan_input(name, dt, shape, rng):
    """Inputs whose sums and products are exact in every float dtype."""
    if dt in FLOATS:
        if name == "cumprod":
            # mostly +-1, so that no partial product of a long row leaves float32's range
            v = rng.choice(np.array([-1.0, 1.0, 0.5, 2.0, -0.5]), shape,
                           p=[0.45, 0.45, 0.04, 0.04, 0.02])
        elif name == "cumsum":
            v = rng.integers(-12, 13, shape) / 4.0
        else:
            v = rng.uniform(-3, 3, shape)
        return np.asarray(v).astype(np_dtype(dt))
    if name == "cumprod" and dt != "bool":
        # small factors so products stay interesting before they wrap
        return (rng.integers(0, 4, shape) - (1 if dt.startswith("int") else 0)).astype(dt)
    return make(dt, shape, rng)


def scan_fn(name, axis, reverse, inclusive):
    op = getattr(mx, name)
    return lambda a, s: op(a, axis=axis, reverse=reverse, inclusive=inclusive, stream=s)


def _layouts(x_np):
    """(label, mx array): contiguous, and non-contiguous views of the same values."""
    out = [("contiguous", arr(x_np))]
    if x_np.ndim >= 2:
        t = arr(np.ascontiguousarray(np.swapaxes(x_np, 0, -1)))
        out.append(("transposed", mx.swapaxes(t, 0, -1, stream=mx.cpu)))
    if x_np.ndim >= 1 and x_np.shape[-1] > 1:
        wide = arr(np.repeat(x_np, 2, axis=-1))
        out.append(("strided", wide[..., ::-2][..., ::-1]))
    return out


# ---------------------------------------------------------------------------------------
# scans
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("name", SCANS)
def test_scans_match_cpu(warm, name, dt):
    rng = np.random.default_rng(hash((name, dt)) % 2**32)
    exact = name != "logcumsumexp"
    x_np = scan_input(name, dt, (3, 4, 5), rng)
    for label, x in _layouts(x_np):
        for axis in (None, 0, 1, 2, -1, -2):
            for reverse, inclusive in itertools.product((False, True), (True, False)):
                check(scan_fn(name, axis, reverse, inclusive), x, dtype=dt, exact=exact,
                      what=f"{name} {dt} {label} axis={axis} reverse={reverse} "
                           f"inclusive={inclusive}", native=[name])
    # empty, size 1, 0-d, and a row of one tile and a half (the threadgroup kernel)
    for shape, axes in [((0,), (None, 0)), ((3, 0), (0, 1, None)), ((0, 4), (0, -1)),
                        ((1,), (0, None)), ((1, 1), (0, 1)), ((), (None,)),
                        ((2, 1500), (1, 0, None)), ((7,), (0, -1))]:
        x = arr(scan_input(name, dt, shape, rng))
        for axis in axes:
            for reverse, inclusive in ((False, True), (True, False)):
                check(scan_fn(name, axis, reverse, inclusive), x, dtype=dt, exact=exact,
                      what=f"{name} {dt} {shape} axis={axis} reverse={reverse} "
                           f"inclusive={inclusive}", native=[name] if x.size else None)


@pytest.mark.parametrize("name", SCANS)
def test_scan_long_rows(warm, name):
    """Rows of 100000 and 20000 (split into blocks, a threadgroup each), rows along a
    strided axis, and many short rows (one thread a row)."""
    rng = np.random.default_rng(7)
    for dt in ("float32", "int32", "float16", "int8"):
        if name == "cumprod" and dt in FLOATS:
            x_np = rng.choice(np.array([1.0, -1.0, 1.0]), 100000).astype(np_dtype(dt))
        elif name == "cumsum" and dt in FLOATS:
            x_np = rng.integers(0, 4, 100000).astype(np_dtype(dt))   # exact partial sums
        elif name == "logcumsumexp":
            x_np = rng.uniform(-3, 3, 100000).astype(np_dtype(dt)) if dt in FLOATS else \
                rng.integers(-5, 5, 100000).astype(dt)
        else:
            x_np = scan_input(name, dt, (100000,), rng)
        x = arr(x_np)
        for reverse, inclusive in itertools.product((False, True), (True, False)):
            fn = scan_fn(name, 0, reverse, inclusive)
            what = f"{name} {dt} 100000 reverse={reverse} inclusive={inclusive}"
            if name == "logcumsumexp":
                # the CPU's left-to-right float32 sum drifts over 100000 steps (6e-5)
                G.reset_counts()
                g, c = both(fn, x)
                assert g.dtype == c.dtype and g.shape == c.shape
                np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64),
                                           rtol=3e-4 if dt != "float16" else 4e-3,
                                           err_msg=what)
                ran_natively([name], what)
            else:
                check(fn, x, dtype=dt, exact=True, what=what, native=[name])
    for shape, axis in [((3, 5000), 0), ((3, 5000), 1), ((5000, 3), 0), ((10000, 40), 1),
                        ((40, 10000), 0), ((9000, 300), 1), ((3, 20000), 1), ((20000, 3), 0),
                        ((600, 9000), 1)]:
        dt = "int32" if name != "logcumsumexp" else "float32"
        x = arr(scan_input(name, dt, shape, rng))
        for reverse, inclusive in ((False, True), (True, False)):
            what = f"{name} {shape} axis={axis} reverse={reverse}"
            if dt == "int32":
                check(scan_fn(name, axis, reverse, inclusive), x, exact=True, what=what,
                      native=[name])
                continue
            G.reset_counts()
            g, c = both(scan_fn(name, axis, reverse, inclusive), x)
            np.testing.assert_allclose(g, c, rtol=1e-4, atol=1e-6, err_msg=what)
            ran_natively([name], what)


def test_scan_special_values(warm):
    nan, inf = np.nan, np.inf
    rows = np.array([[1, nan, 3, 2, -inf, 5], [-inf, -inf, 1, nan, 2, inf],
                     [inf, inf, -1, -2, 0, 0], [0.0, -0.0, 0.0, -0.0, -0.0, 0.0],
                     [-0.0, -0.0, -0.0, -0.0, -0.0, -0.0], [nan, nan, 1, 2, 3, 4]])
    for dt in FLOATS:
        x = arr(rows.astype(np_dtype(dt)))
        for name in ("cummax", "cummin", "cumsum", "cumprod"):
            for axis in (1, 0, None):
                for reverse, inclusive in itertools.product((False, True), (True, False)):
                    check(scan_fn(name, axis, reverse, inclusive), x, dtype=dt, exact=True,
                          what=f"{name} {dt} axis={axis} reverse={reverse} "
                               f"inclusive={inclusive}", native=[name])
        for axis in (1, 0):
            for reverse, inclusive in itertools.product((False, True), (True, False)):
                check(scan_fn("logcumsumexp", axis, reverse, inclusive), x, dtype=dt,
                      what=f"logcumsumexp {dt} axis={axis}", native=["logcumsumexp"])
    # NaN in a long row: everything after it is NaN, in one threadgroup and in blocks
    for size in (5000, 50000):
        long = (np.arange(size) % 7 - 3).astype(np.float32)     # exact partial sums
        long[1234] = nan
        for name in ("cummax", "cummin", "cumsum"):
            for reverse in (False, True):
                check(scan_fn(name, 0, reverse, True), arr(long), exact=True, native=[name],
                      what=f"{name} NaN in a row of {size} reverse={reverse}")


def test_scan_integers_wrap_and_dtypes(warm):
    cases = [(np.array([100, 100, 100, -128], np.int8), ("cumsum", "cumprod")),
             (np.array([200, 100, 255], np.uint8), ("cumsum", "cumprod")),
             (np.array([2**31 - 1, 1, 2**30, 2**30], np.int32), ("cumsum", "cumprod")),
             (np.array([2**62, 2**62, 3, -5], np.int64), ("cumsum", "cumprod")),
             (np.array([2**63, 2**63, 7], np.uint64), ("cumsum", "cumprod")),
             (np.array([True, False, True, True]), tuple(SCANS)),
             (np.array([-128, 127, 5, -3], np.int8), ("cummax", "cummin"))]
    for x_np, names in cases:
        for name in names:
            for reverse, inclusive in itertools.product((False, True), (True, False)):
                check(scan_fn(name, 0, reverse, inclusive), arr(x_np), exact=name != "logcumsumexp",
                      dtype=x_np.dtype.name, native=[name],
                      what=f"{name} {x_np.dtype} reverse={reverse} inclusive={inclusive}")
    # dtype= casts first (an astype node), then the scan
    x = arr(np.array([1.5, 2.25, -3.0], np.float32))
    check(lambda a, s: mx.cumsum(a, dtype=mx.float16, stream=s), x, exact=True,
          native=["cumsum"])
    check(lambda a, s: mx.cumprod(a, dtype=mx.int32, stream=s), x, exact=True,
          native=["cumprod"])
    g = mx.cumsum(mx.array([True, True, False]), stream=mx.gpu)
    assert g.dtype == mx.int32 and g.tolist() == [1, 2, 2]


def test_scan_gradients(warm):
    x = mx.array(np.random.default_rng(3).uniform(0.5, 1.5, (4, 6)).astype(np.float32))

    def loss(t):
        return mx.sum(mx.cumsum(t, axis=1) * mx.cumprod(t, axis=0, reverse=True)
                      + mx.logcumsumexp(t, axis=-1))

    g = mx.grad(loss)(x)
    with mx.stream(mx.cpu):
        c = mx.grad(loss)(x)
    np.testing.assert_allclose(np.asarray(g), np.asarray(c), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------
# sorts
# ---------------------------------------------------------------------------------------
def sort_input(dt, shape, rng, special=True):
    """Random values with many ties, and for floats NaN, infinities and signed zeros."""
    if dt == "bool":
        return rng.random(shape) > 0.5
    if dt in FLOATS:
        v = rng.integers(-6, 7, shape) / 2.0
        if special and v.size > 3:
            f = v.reshape(-1)
            f[::5] = np.nan
            f[1::7] = -0.0
            f[2::9] = 0.0
            f[3::11] = np.inf
            f[4::13] = -np.inf
        return v.astype(np_dtype(dt))
    info = np.iinfo(dt)
    v = np.asarray(rng.integers(0, 8, shape))
    out = np.array(v - 3 if info.min < 0 else v).astype(dt)
    out[v == 0] = info.min
    out[v == 7] = info.max
    return out


def sort_fn(name, axis):
    op = getattr(mx, name)
    return lambda a, s: op(a, axis=axis, stream=s)


@pytest.mark.parametrize("dt", DTYPES)
def test_sort_and_argsort_match_cpu(warm, dt):
    rng = np.random.default_rng(11)
    x_np = sort_input(dt, (4, 5, 6), rng)
    for label, x in _layouts(x_np):
        for axis in (None, 0, 1, 2, -1, -3):
            for name in ("sort", "argsort"):
                check(sort_fn(name, axis), x, dtype=dt, exact=True, native=[name],
                      what=f"{name} {dt} {label} axis={axis}")
    for shape, axes in [((0,), (0, None)), ((3, 0), (0, 1)), ((1,), (0,)), ((), (None,)),
                        ((2, 1), (0, 1)), ((5,), (0, -1)), ((3, 1000), (1, 0)),
                        ((2, 2048), (1,)), ((2, 300, 3), (1,))]:
        x = arr(sort_input(dt, shape, rng))
        for axis in axes:
            for name in ("sort", "argsort"):
                check(sort_fn(name, axis), x, dtype=dt, exact=True,
                      native=[name] if x.size else None, what=f"{name} {dt} {shape} axis={axis}")


@pytest.mark.parametrize("dt", ["float32", "int32", "float16", "bool", "uint64", "float64"])
def test_sort_long_rows(warm, dt):
    """Rows longer than a tile (2048): sorted tiles, then merge passes."""
    rng = np.random.default_rng(12)
    for shape, axis in [((2049,), 0), ((5000,), 0), ((4096,), -1), ((100000,), 0),
                        ((3, 9000), 1), ((9000, 3), 0), ((2, 3000, 2), 1)]:
        x_np = sort_input(dt, shape, rng)
        for label, x in (("contiguous", arr(x_np)), ("flipped", arr(x_np)[::-1])):
            for name in ("sort", "argsort"):
                check(sort_fn(name, axis), x, dtype=dt, exact=True, native=[name],
                      what=f"{name} {dt} {shape} {label} axis={axis}")
    # distinct values: a permutation sorts back to arange
    perm = rng.permutation(70000).astype(np.int32)
    g = mx.argsort(mx.array(perm), stream=mx.gpu)
    s = mx.sort(mx.array(perm), stream=mx.gpu)
    np.testing.assert_array_equal(np.asarray(s), np.arange(70000))
    np.testing.assert_array_equal(perm[np.asarray(g)], np.arange(70000))


def test_argsort_ties_are_stable(warm):
    x = np.array([[3, 1, 3, 1, 2, 2, 1, 3], [0, 0, 0, 0, 0, 0, 0, 0]], np.int32)
    check(sort_fn("argsort", -1), arr(x), exact=True, native=["argsort"])
    f = np.array([np.nan, 1.0, -0.0, np.nan, 0.0, 1.0, -np.inf, np.nan, 0.0], np.float32)
    check(sort_fn("argsort", 0), arr(f), exact=True, native=["argsort"])
    g = np.asarray(mx.argsort(arr(f), stream=mx.gpu))
    assert g.dtype == np.uint32 and g.tolist() == [6, 2, 4, 8, 1, 5, 0, 3, 7]


def _check_partition(vals, idx, x, kth, axis):
    """vals (partition) and idx (argpartition) of x around kth along axis: the kth
    element is the sorted one, none larger before it, none smaller after it, the values
    are a permutation of the row and agree with the indices."""
    x = np.asarray(x).astype(np.float64)
    srt = np.sort(x, axis=axis)
    v = np.moveaxis(np.asarray(vals).astype(np.float64), axis, -1)
    s = np.moveaxis(srt, axis, -1)
    np.testing.assert_array_equal(v[..., kth], s[..., kth])
    np.testing.assert_array_equal(np.sort(v, axis=-1), s)
    k = v[..., kth:kth + 1]
    before, after = v[..., :kth], v[..., kth + 1:]
    # NaN sorts last: nothing larger (or NaN, unless the kth is NaN) before the kth, nothing
    # smaller after it (and only NaN after a NaN)
    assert not np.any(before > k) and not np.any(after < k)
    assert not np.any(np.isnan(before) & ~np.isnan(k))
    assert np.isnan(after[np.broadcast_to(np.isnan(k), after.shape)]).all()
    gathered = np.take_along_axis(x, np.asarray(idx).astype(np.int64), axis)
    np.testing.assert_array_equal(gathered, np.asarray(vals).astype(np.float64))


@pytest.mark.parametrize("dt", ["float32", "int32", "float16", "bfloat16", "uint8", "bool",
                                "float64", "int64"])
def test_partition_and_argpartition(warm, dt):
    rng = np.random.default_rng(13)
    for shape, axis, kths in [((9,), 0, (0, 4, 8, -1)), ((4, 7), 1, (0, 3, 6)),
                              ((6, 5), 0, (2, -1)), ((3, 3000), 1, (0, 1500, 2999)),
                              ((2, 4, 5), -2, (1,))]:
        x_np = sort_input(dt, shape, rng)
        x = arr(x_np)
        for kth in kths:
            G.reset_counts()
            v = mx.partition(x, kth, axis=axis, stream=mx.gpu)
            i = mx.argpartition(x, kth, axis=axis, stream=mx.gpu)
            mx.eval(v, i)
            ran_natively(["partition", "argpartition"], f"{dt} {shape} kth={kth}")
            assert v.dtype == x.dtype and i.dtype == mx.uint32 and v.shape == x.shape
            ax = axis % len(shape)
            _check_partition(v, i, x_np, kth % shape[ax], ax)
    # topk: the same set of values as on the CPU
    x = arr(sort_input(dt, (5, 40), rng, special=False))
    for k in (1, 7, 40):
        g, c = both(lambda a, s: mx.topk(a, k, axis=-1, stream=s), x)
        np.testing.assert_array_equal(np.sort(g.astype(np.float64), -1),
                                      np.sort(c.astype(np.float64), -1))


def test_sort_gradients(warm):
    x = mx.array(np.random.default_rng(4).permutation(24).reshape(4, 6).astype(np.float32))
    w = mx.array(np.arange(24, dtype=np.float32).reshape(4, 6))

    def loss(t):
        return mx.sum(mx.sort(t, axis=0) * w) + mx.sum(mx.partition(t, 2, axis=1) * w)

    g = mx.grad(loss)(x)
    with mx.stream(mx.cpu):
        c = mx.grad(loss)(x)
    # partition's order within each side may differ from the CPU's: only the sort term and
    # the kth column's weights are comparable, so compare the sort part exactly
    gs = mx.grad(lambda t: mx.sum(mx.sort(t, axis=0) * w))(x)
    with mx.stream(mx.cpu):
        cs = mx.grad(lambda t: mx.sum(mx.sort(t, axis=0) * w))(x)
    np.testing.assert_array_equal(np.asarray(gs), np.asarray(cs))
    assert np.asarray(g).shape == np.asarray(c).shape
    np.testing.assert_allclose(np.asarray(g).sum(), np.asarray(c).sum(), rtol=1e-6)
