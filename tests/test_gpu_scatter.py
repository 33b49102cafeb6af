"""GPU kernels of the accumulating scatters (scatter_add, scatter_subtract,
scatter_multiply, scatter_divide, scatter_maximum, scatter_minimum, as_strided_add: the
embedding gradient among them), the reductions over every real dtype, var and
count_nonzero.

Each test runs the op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape, and checks that the GPU kernel ran (no CPU fallback).
Scatter values are small integers, so that float results do not depend on the order in
which atomics apply repeated indices (the GPU's order is not the CPU's).
"""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, assert_close, make, np_dtype, variants

pytestmark = pytest.mark.gpu

DTYPES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32", "int64",
          "float16", "bfloat16", "float32", "float64"]
OPS = ["add", "subtract", "multiply", "divide", "maximum", "minimum"]


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups() if k[0] in ("scatter", "reduce")
                       or k in (("unary", "copy"), ("unary", "square"), ("binary", "subtract"),
                                ("binary", "divide"), ("copy", "copy_gg"))], threads=16)
    return b


def small(dt, shape, rng, lo=-4, hi=5):
    """Small integers (positive for unsigned types; no zeros for divisors when lo > 0) in
    dtype dt: float results of these are exact whatever the order of the operations."""
    if dt == "bool":
        return rng.random(shape) > 0.5
    if dt.startswith("uint"):
        lo = max(lo, 0)
    return rng.integers(lo, hi, shape).astype(np_dtype(dt))


def run_both(fn, *inputs):
    """fn(*inputs) on the GPU and on the CPU (the ops take their stream from the default
    device), as NumPy arrays."""
    with mx.stream(mx.gpu):
        g = fn(*inputs)
        mx.eval(g)
    with mx.stream(mx.cpu):
        c = fn(*inputs)
        mx.eval(c)
    return np.asarray(g), np.asarray(c)


def check(fn, *inputs, dtype="float32", what="", native=()):
    G.reset_counts()
    g, c = run_both(fn, *inputs)
    assert_close(g, c, dtype, what)
    fb = G.fallback_counts()
    assert not any(fb.get(n) for n in native), (what, fb)
    runs = G.active_backend().gpu_runs
    assert all(runs[n] for n in native), (what, dict(runs))


def at(op, key):
    return lambda x, v: getattr(x.at[key], op)(v)


def _values(op, dt, shape, rng):
    if op == "divide":          # nonzero divisors (bool: True)
        return np.ones(shape, bool) if dt == "bool" else small(dt, shape, rng, 1, 4)
    if op == "multiply":
        return small(dt, shape, rng, -2, 3)
    return small(dt, shape, rng)


# ---------------------------------------------------------------------------------------
# the six accumulations over every dtype: rows and columns, repeats, negative indices
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_scatter_ops_over_dtypes(warm, op, dt):
    if op == "subtract" and dt == "bool":
        pytest.skip("bool has no subtraction (an error on both devices)")
    rng = np.random.default_rng(OPS.index(op) * 100 + DTYPES.index(dt))
    x_np = small(dt, (6, 6), rng)
    rows = np.array([0, 2, -1, 2, 2, -4], np.int64)       # repeats and negative indices
    for idt in ("int32", "int64", "uint32", "int16", "uint8"):
        idx = arr((rows if idt[0] == "i" else rows % 6).astype(idt))
        for label, x in variants(x_np):
            w = f"{op} {dt} {idt} {label}"
            for key in (idx, (slice(None), idx)):
                kw = w + (" rows" if key is idx else " columns")
                check(at(op, key), x, arr(_values(op, dt, (6, 6), rng)), dtype=dt, what=kw,
                      native=[f"scatter_{op}"])
                # values broadcast along the region's first axis, and a scalar
                check(at(op, key), x, arr(_values(op, dt, (6,), rng)), dtype=dt,
                      what=kw + " broadcast", native=[f"scatter_{op}"])
                check(at(op, key), x, arr(_values(op, dt, (), rng)), dtype=dt,
                      what=kw + " scalar", native=[f"scatter_{op}"])


@pytest.mark.parametrize("dt", ["int8", "uint8", "int16", "float16", "bfloat16", "bool"])
def test_sub_word_types_leave_their_neighbours(warm, dt):
    """1- and 2-byte elements are swapped in their 32-bit word: every other element is
    updated (many times) and the ones between must keep their values."""
    rng = np.random.default_rng(3)
    x_np = small(dt, (37,), rng)
    idx = arr(np.tile(np.arange(0, 37, 2, dtype=np.int32), 20))
    for op in ("add", "maximum", "minimum", "multiply"):
        v = arr(np.ones(idx.size, bool) if dt == "bool" and op != "add"
                else small(dt, (idx.size,), rng, 0, 2))
        check(at(op, idx), arr(x_np), v, dtype=dt, what=f"{op} {dt}", native=[f"scatter_{op}"])


def test_heavy_repeats(warm):
    """Many updates of few positions (contention on the atomics): sums stay exact where the
    dtype holds them exactly."""
    rng = np.random.default_rng(4)
    for dt, n in (("float32", 100000), ("int32", 100000), ("int64", 100000),
                  ("float64", 100000), ("float16", 2000), ("bfloat16", 250), ("uint8", 5000),
                  ("int16", 5000), ("bool", 5000)):
        idx = arr(rng.integers(0, 3, (n,)).astype(np.int32))
        x = arr(np.zeros((3, 4), np.dtype(np_dtype(dt))))
        v = arr(np.ones((n, 4), np.dtype(np_dtype(dt))))
        check(at("add", idx), x, v, dtype=dt, what=f"add {dt} {n}", native=["scatter_add"])
        if dt != "bool":
            check(at("subtract", idx), x, v, dtype=dt, what=f"subtract {dt} {n}",
                  native=["scatter_subtract"])
        vm = arr(small(dt, (n, 4), rng))
        check(at("maximum", idx), x, vm, dtype=dt, what=f"max {dt}", native=["scatter_maximum"])
        check(at("minimum", idx), x, vm, dtype=dt, what=f"min {dt}", native=["scatter_minimum"])


def test_wrapping_nan_and_division(warm):
    # integer sums and products wrap as on the CPU
    check(at("add", arr(np.zeros(300, np.int32))), arr(np.array([250, 3], np.uint8)),
          arr(np.ones(300, np.uint8)), dtype="uint8", what="uint8 wraps", native=["scatter_add"])
    check(at("multiply", arr(np.zeros(40, np.int32))), arr(np.array([3, 3], np.int8)),
          arr(np.full(40, 3, np.int8)), dtype="int8", what="int8 product wraps",
          native=["scatter_multiply"])
    check(at("subtract", arr(np.zeros(3, np.int32))), arr(np.array([1, 3], np.uint32)),
          arr(np.full(3, 2, np.uint32)), dtype="uint32", what="uint32 below 0",
          native=["scatter_subtract"])
    # NaN wins in maximum and minimum, whatever the order
    for dt in ("float32", "float16", "bfloat16", "float64"):
        x = arr(np.array([1.0, 2.0, np.nan], np.dtype(np_dtype(dt))))
        v = arr(np.array([np.nan, 0.5, 5, -np.inf, 1.0], np.dtype(np_dtype(dt))))
        idx = arr(np.array([0, 0, 1, 1, 2], np.int32))
        for op in ("maximum", "minimum", "add", "multiply"):
            check(at(op, idx), x, v, dtype=dt, what=f"{op} {dt} nan", native=[f"scatter_{op}"])
    # subnormals and signed zeros add exactly (the hardware's float atomic add would flush
    # subnormals to zero): compared bit for bit
    x = arr(np.array([1e-39, 0.0, 1.0, -0.0, 1e-39, 3e-38], np.float32))
    idx = arr(np.array([0, 0, 1, 2, 3, 4, 5], np.int32))
    v = arr(np.array([1e-39, 2e-39, 1e-45, 1e-39, 0.0, 1.0, -2e-38], np.float32))
    for op in ("add", "subtract"):
        g, c = run_both(at(op, idx), x, v)
        np.testing.assert_array_equal(g.view(np.uint32), c.view(np.uint32), err_msg=op)
    # integer and bool division divides in float64 and truncates toward zero
    x = arr(np.array([7, -7, 100, 9], np.int32))
    idx = arr(np.array([0, 1, 2, 2, 3], np.int32))
    check(at("divide", idx), x, arr(np.array([2, 2, 3, -3, 4], np.int32)), dtype="int32",
          what="int divide", native=["scatter_divide"])
    check(at("divide", idx), x, arr(np.array([2.5, -0.5, 3.0, 0.25, 4.0], np.float32)),
          dtype="int32", what="int divide by floats", native=["scatter_divide"])
    check(at("divide", idx), arr(np.array([True, False, True, False])),
          arr(np.array([2.0, 0.0, 0.5, 3.0, 0.0], np.float32)), dtype="bool",
          what="bool divide (0/0 is nan: True)", native=["scatter_divide"])


# ---------------------------------------------------------------------------------------
# index keys: NumPy's placement of the index block, ints, slices, None, Ellipsis
# ---------------------------------------------------------------------------------------
def _keys():
    i1 = arr(np.array([4, -5, 0, 4], np.int64))
    ju = arr(np.array([1, 1, 5, 0], np.uint32))
    j16 = arr(np.array([2, 0, -2, 2], np.int16))
    i2 = arr(np.array([[0, 3], [-1, 3]], np.int32))
    return {
        "one array": (i1,),
        "adjacent pair": (i1, ju),
        "adjacent pair after a slice": (slice(None), i1, ju),
        "pair separated by a slice": (i1, slice(1, 4), ju),
        "int and array separated": (0, slice(None), j16),
        "int and array adjacent": (slice(None), 2, j16),
        "int then array": (1, i1),
        "2-d index": (i2,),
        "2-d index last": (Ellipsis, i2),
        "ellipsis then array": (Ellipsis, j16),
        "ellipsis between arrays": (i1, Ellipsis, j16),
        "empty ellipsis between arrays": (i1, slice(None), Ellipsis, j16),
        "None first": (None, i1, slice(2, None)),
        "None between arrays": (i1, None, ju),
        "reversed slice": (slice(None, None, -1), ju),
        "strided slice": (slice(4, 0, -2), slice(None), j16),
        "three arrays": (i1, ju, j16),
        "broadcast arrays of two dtypes": (i2[:, :1], slice(None), arr(np.array([0, 5], np.int64))),
        "basic key": (slice(1, 3), 2),
        "basic key with an ellipsis": (Ellipsis, slice(0, 6, 2)),
        "non-contiguous index": (arr(np.array([0, 9, 1, 9, 1, 9, -1], np.int32))[::2],),
        "empty index": (arr(np.zeros((0,), np.int32)),),
    }


def _region(x_np, key):
    return x_np[tuple(np.asarray(k) if isinstance(k, mx.array) else k for k in key)].shape


@pytest.mark.parametrize("name", list(_keys()))
def test_index_keys(warm, name):
    key = _keys()[name]
    rng = np.random.default_rng(len(name))
    x_np = small("float32", (5, 6, 7), rng)
    region = _region(x_np, key)
    for label, x in variants(x_np):
        for op in ("add", "maximum", "multiply"):
            w = f"{name} {op} {label}"
            v = _values(op, "float32", region, rng)
            check(at(op, key), x, arr(v), what=w, native=[f"scatter_{op}"])
            check(at(op, key), x, arr(np.float32(2)), what=w + " scalar", native=[f"scatter_{op}"])
            if region:
                check(at(op, key), x, arr(_values(op, "float32", region[-1:], rng)),
                      what=w + " last axis", native=[f"scatter_{op}"])
            # surplus leading 1s on the values
            check(at(op, key), x, arr(v.reshape((1, 1) + region)), what=w + " leading 1s",
                  native=[f"scatter_{op}"])
            # non-contiguous values
            if len(region) >= 2:
                vt = arr(np.ascontiguousarray(np.swapaxes(v, -1, -2)))
                check(at(op, key), x, mx.swapaxes(vt, -1, -2, stream=mx.cpu),
                      what=w + " transposed values", native=[f"scatter_{op}"])


def test_values_of_another_dtype_and_odd_shapes(warm):
    rng = np.random.default_rng(5)
    idx = arr(np.array([0, 2, 2], np.int32))
    x = arr(small("int32", (4, 3), rng))
    # values are cast to the destination's dtype first (floats truncate)
    check(at("add", idx), x, arr(np.array([[1.5], [2.7], [-3.2]], np.float32)), dtype="int32",
          what="float values into int32", native=["scatter_add"])
    check(at("add", idx), arr(small("float16", (4, 3), rng)), arr(small("int64", (3, 3), rng)),
          dtype="float16", what="int64 values into float16", native=["scatter_add"])
    # 0-d destination, empty destination, empty update
    check(at("add", ()), arr(np.float32(3)), arr(np.float32(2)), what="0-d",
          native=["scatter_add"])
    check(at("maximum", arr(np.array([], np.int32))), arr(np.zeros((0, 3), np.float32)),
          arr(np.float32(2)), what="empty destination", native=["scatter_maximum"])
    check(at("add", arr(np.array([], np.int32))), arr(small("float32", (4, 3), rng)),
          arr(np.float32(2)), what="empty update", native=["scatter_add"])
    check(at("add", (slice(2, 2),)), arr(small("float32", (4, 3), rng)), arr(np.float32(2)),
          what="empty slice", native=["scatter_add"])
    # a size-1 destination axis, and a broadcast (stride 0) destination
    check(at("add", arr(np.array([0, 0, -1], np.int32))), arr(np.ones((1, 3), np.float32)),
          arr(np.ones((3, 3), np.float32)), what="size-1 axis", native=["scatter_add"])
    xb = mx.broadcast_to(arr(np.arange(3, dtype=np.float32)), (4, 3))
    check(at("add", idx), xb, arr(np.ones((3, 3), np.float32)), what="broadcast destination",
          native=["scatter_add"])


def test_out_of_range_indices_raise(warm):
    def lazy(values):       # indices the op cannot check when it is built
        return mx.add(arr(np.array(values, np.int32)), 0, stream=mx.gpu)

    with pytest.raises(IndexError, match=r"\[scatter\].*size 3"):
        mx.eval(mx.zeros((3, 2)).at[lazy([0, 3])].add(1.0))
    with pytest.raises(IndexError, match=r"\[scatter\]"):
        mx.eval(mx.zeros((3, 2)).at[:, lazy([-3])].maximum(1.0))
    with pytest.raises(IndexError, match=r"\[scatter\]"):
        mx.eval(mx.zeros((3, 2), mx.int8).at[lazy([1]), lazy([5])].multiply(2))
    # negative indices in range are fine, and the backend is usable afterwards
    got = mx.zeros((3, 2)).at[lazy([-3, -1, -1])].add(1.0)
    np.testing.assert_array_equal(np.asarray(got), [[1, 1], [0, 0], [2, 2]])


# ---------------------------------------------------------------------------------------
# gradients: an embedding's (a gather's), take's, as_strided's
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("idt", ["int32", "int64"])
def test_embedding_gradient(warm, idt):
    """nn.Embedding's gradient: scatter_add of the (B, D) cotangent rows into (V, D)."""
    rng = np.random.default_rng(6)
    for (v, d), ishape in (((50, 8), (4, 7)), ((1000, 64), (32, 16)), ((30000, 256), (512,))):
        table = arr(rng.standard_normal((v, d)).astype(np.float32))
        ids = arr(rng.integers(0, min(v, 100), ishape).astype(idt))     # many repeats
        weights = arr(rng.standard_normal(ishape + (d,)).astype(np.float32))

        def grad(t):
            return mx.grad(lambda w: mx.sum(w[ids] * weights))(t)

        G.reset_counts()
        g, c = run_both(grad, table)
        np.testing.assert_allclose(g, c, rtol=1e-5, atol=1e-5)
        assert not G.fallback_counts().get("scatter_add"), G.fallback_counts()
        assert G.active_backend().gpu_runs["scatter_add"] == 1
    # through the module
    import mx.nn as nn
    emb = nn.Embedding(20, 4)
    ids = arr(np.array([[1, 3, 1], [19, 0, 1]], idt))
    step = nn.value_and_grad(emb, lambda: mx.sum(emb(ids) ** 2))
    G.reset_counts()
    with mx.stream(mx.gpu):
        g = np.asarray(step()[1]["weight"])
    with mx.stream(mx.cpu):
        c = np.asarray(step()[1]["weight"])
    np.testing.assert_allclose(g, c, rtol=1e-6, atol=1e-7)
    assert G.active_backend().gpu_runs["scatter_add"] == 1


def test_take_gradient(warm):
    rng = np.random.default_rng(7)
    x = arr(small("float32", (4, 5), rng))
    idx = arr(np.array([1, 1, 3, -1], np.int32))
    check(lambda a: mx.grad(lambda w: mx.sum(mx.take(w, idx, axis=1) ** 2))(a), x,
          what="take axis=1", native=["scatter_add"])
    check(lambda a: mx.grad(lambda w: mx.sum(mx.take(w, idx) ** 2))(a), x,
          what="take flat", native=["scatter_add"])


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64", "int32", "uint8",
                                "bool"])
def test_as_strided_add(warm, dt):
    from mx.core.ops.shape import _as_strided_add
    rng = np.random.default_rng(8)
    x = arr(small(dt, (12,), rng, 0, 5))
    for shape, strides, off in (((4, 5), (2, 1), 1), ((3, 3), (-3, 1), 9), ((2, 6), (0, 2), 0),
                                ((0, 3), (1, 1), 0), ((12,), (1,), 0)):
        def f(a, shape=shape, strides=strides, off=off):
            return _as_strided_add(mx.as_strided(a, shape, strides, off), (12,), shape,
                                   strides, off)
        check(f, x, dtype=dt, what=f"{dt} {shape} {strides} {off}", native=["as_strided_add"])
    if dt in ("float32", "float64"):
        check(lambda a: mx.grad(lambda w: mx.sum(mx.as_strided(w, (5, 4), (2, 1)) ** 2))(a),
              x, dtype=dt, what="as_strided's gradient", native=["as_strided_add"])


def test_vmap_of_a_scatter(warm):
    idx = arr(np.array([[0, 2, 2], [1, 1, 0]], np.int32))

    def f(x, v):
        return mx.vmap(lambda a, b, i: a.at[i].add(b))(x, v, idx)

    check(f, arr(np.zeros((2, 3, 4), np.float32)), arr(np.ones((2, 3, 4), np.float32)),
          what="vmap", native=["scatter_add"])


def test_metal_groups_have_no_64_bit_atomics():
    """Metal has no 64-bit compare-and-swap: its scatter groups hold no 64-bit element type
    (the handlers refuse those there)."""
    metal = K.groups(K.METAL_TYPES)
    for name in K.SCATTER:
        insts = metal[("scatter", name)][1]
        wide = ("scatter_acc<int64_t,", "scatter_acc<uint64_t,", "scatter_acc<double,")
        assert insts and not any(i.startswith(wide) for i in insts), name
        cuda = K.groups()[("scatter", name)][1]
        assert any(i.startswith(wide) for i in cuda), name


# ---------------------------------------------------------------------------------------
# reductions over every real dtype; var, std and count_nonzero
# ---------------------------------------------------------------------------------------
def _reduce_data(dt, shape, rng):
    x = make(dt, shape, rng)
    if dt not in ("bool",):
        zeros = rng.random(shape) < 0.25
        x = np.where(zeros, np.zeros((), x.dtype), x).astype(x.dtype)
    return x


@pytest.mark.parametrize("dt", DTYPES)
def test_reductions_of_every_dtype(warm, dt):
    rng = np.random.default_rng(9 + DTYPES.index(dt))
    for shape, axes in (((3, 5), 1), ((3, 5), None), ((2, 3, 4), (0, 2)), ((7,), 0),
                        ((3, 0), 1), ((2, 9000), 1), ((9000, 2), 0)):
        x_np = _reduce_data(dt, shape, rng)
        for label, x in variants(x_np):
            for name in ("sum", "prod", "max", "min", "mean", "all", "any", "count_nonzero"):
                if name in ("max", "min") and 0 in shape:
                    continue
                if name == "prod" and x_np.size > 100 and dt in K.FLOATS:
                    continue                # (products of thousands of floats overflow)
                for kd in (False, True):
                    w = f"{name} {dt} {shape} axis={axes} keepdims={kd} {label}"
                    fn = getattr(mx, name)
                    g, c = run_both(lambda a: fn(a, axis=axes, keepdims=kd), x)
                    assert g.shape == c.shape and g.dtype == c.dtype, (w, g.dtype, c.dtype)
                    if c.dtype.kind in "biu":
                        np.testing.assert_array_equal(g, c, err_msg=w)
                    else:
                        # sums in another order: a few ulp of the sum of magnitudes
                        n = x_np.size // max(c.size, 1)
                        rtol = {"float16": 3e-3, "bfloat16": 2.4e-2,
                                "float64": 1e-12}.get(c.dtype.name, 1e-5)
                        atol = 1e-12 * n if dt == "float64" else 1e-6 * max(n, 1)
                        np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64),
                                                   rtol=rtol, atol=atol, equal_nan=True,
                                                   err_msg=w)
    G.reset_counts()
    x = arr(_reduce_data(dt, (4, 6), rng))
    mx.eval([getattr(mx, n)(x, axis=1) for n in ("sum", "prod", "max", "min", "mean", "all",
                                                  "any", "count_nonzero", "var")])
    assert not G.fallback_counts(), G.fallback_counts()


def test_integer_means_are_exact(warm):
    """Integer means sum exactly (the CPU sums in float64) and divide once: a float32 sum
    would round these."""
    x = arr(np.array([[2**24 + 1, 2**24 + 3, 1], [2**31 - 1, 2**31 - 1, 2**31 - 1]], np.int32))
    for axis in (None, 1):
        g, c = run_both(lambda a: mx.mean(a, axis=axis), x)
        np.testing.assert_array_equal(g, c)
    big = arr(np.full((3, 5000), 2**30 + 7, np.uint32))
    g, c = run_both(lambda a: mx.mean(a, axis=1), big)
    np.testing.assert_array_equal(g, c)
    g, c = run_both(lambda a: mx.mean(a), arr(np.array([2**62, 2**62, 5], np.int64)))
    np.testing.assert_array_equal(g, c)


@pytest.mark.parametrize("dt", DTYPES)
def test_var_and_std(warm, dt):
    rng = np.random.default_rng(10 + DTYPES.index(dt))
    for shape, axes in (((3, 5), 1), ((3, 5), None), ((2, 3, 4), (0, 2)), ((), None), ((7,), 0),
                        ((3, 0), 1), ((0, 3), 1), ((2, 9000), 1)):
        x_np = make(dt, shape, rng)
        n = int(np.prod([shape[a] for a in (range(len(shape)) if axes is None
                                             else np.atleast_1d(axes))]))
        for label, x in variants(x_np):
            for ddof in sorted({0, 1, n, n + 1}):
                for kd in (False, True):
                    w = f"var {dt} {shape} axis={axes} ddof={ddof} keepdims={kd} {label}"
                    check(lambda a: mx.var(a, axis=axes, ddof=ddof, keepdims=kd), x,
                          dtype=dt if dt in K.FLOATS else "float32", what=w, native=["var"])
            check(lambda a: mx.std(a, axis=axes), x, dtype=dt if dt in K.FLOATS else "float32",
                  what=f"std {dt} {shape} {label}", native=["var"])


def test_var_of_special_values(warm):
    vals = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 2.0], [3.0, 3.0, 3.0],
                     [1e30, -1e30, 0.0]], np.float64)
    for dt in ("float32", "float16", "bfloat16", "float64"):
        with np.errstate(over="ignore"):
            x = arr(vals.astype(np_dtype(dt)))
        for axis in (None, 0, 1):
            check(lambda a: mx.var(a, axis=axis), x, dtype=dt, what=f"{dt} axis={axis}",
                  native=["var"])


@pytest.mark.parametrize("dt", DTYPES)
def test_count_nonzero(warm, dt):
    rng = np.random.default_rng(11)
    x_np = _reduce_data(dt, (4, 5, 6), rng)
    if dt in K.FLOATS:
        x_np[0, 0, :3] = [np.nan, -0.0, np.inf]
    for label, x in variants(x_np):
        for axis in (None, 0, (1, 2), -1):
            for kd in (False, True):
                check(lambda a: mx.count_nonzero(a, axis=axis, keepdims=kd), x, dtype="int32",
                      what=f"{dt} axis={axis} keepdims={kd} {label}", native=["count_nonzero"])
    check(lambda a: mx.count_nonzero(a), arr(np.zeros((0, 3), np.dtype(np_dtype(dt)))),
          dtype="int32", what="empty", native=["count_nonzero"])
    check(lambda a: mx.count_nonzero(a), arr(np.asarray(x_np[0, 0, 1])), dtype="int32",
          what="0-d", native=["count_nonzero"])

