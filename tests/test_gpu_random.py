"""GPU kernels of random_bits (mx.random's Threefry-2x32), view, hadamard_transform,
searchsorted and median (mx/backend/gpu/random.py, mx/backend/gpu/misc.py).

Each test runs one op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape (random bits bit for bit: a seed must give the same numbers
on either device), over dtypes and odd layouts, and checks that the GPU kernel really ran.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K
from mx.core.random import _bits_np

from test_gpu import HAS_GPU, arr, assert_close, both, make, mx_dtype, np_dtype, ran_natively, variants

pytestmark = pytest.mark.gpu

FLOATS = ["float16", "bfloat16", "float32", "float64"]


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups() if k[0] in ("random", "misc", "sort")]
                      + [("unary", "copy")], threads=16)
    return b


def check(fn, *inputs, dtype="float32", what="", native=None):
    """fn on the GPU equals fn on the CPU; `native` primitives did not fall back."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert_close(g, c, dtype, what)
    if native:
        ran_natively(native, what)
    return g, c


def check_bytes(fn, *inputs, what="", native=None):
    """fn on the GPU gives the CPU's shape, dtype and bytes."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape, g.dtype, c.dtype)
    assert np.ascontiguousarray(g).tobytes() == np.ascontiguousarray(c).tobytes(), what
    if native:
        ran_natively(native, what)


# ---------------------------------------------------------------------------------------
# random_bits
# ---------------------------------------------------------------------------------------
SEEDS = [0, 1, 42, 2 ** 32 + 7, 2 ** 64 - 1, 12345678901234567]
SHAPES = [(), (0,), (1,), (2,), (3,), (5,), (7,), (4, 5), (3, 4, 5), (2, 0), (1001,)]


@pytest.mark.parametrize("width", [1, 2, 4])
def test_bits_match_cpu(warm, width):
    for seed in SEEDS:
        k = mx.random.key(seed)
        for shape in SHAPES:
            w = f"seed={seed} shape={shape} width={width}"
            check_bytes(lambda s: mx.random.bits(shape, width, key=k, stream=s), what=w,
                        native=["random_bits"] if math.prod(shape) else None)
            g = np.asarray(mx.random.bits(shape, width, key=k, stream=mx.gpu))
            want = _bits_np(np.asarray(k), shape, width)
            assert g.dtype == want.dtype and np.array_equal(g, want), w


@pytest.mark.parametrize("width", [1, 2, 4])
def test_bits_large(warm, width):
    k = mx.random.key(7)
    for n in ((1 << 20) + 3, 3 * (1 << 18) + 1):
        check_bytes(lambda s: mx.random.bits((n,), width, key=k, stream=s),
                    what=f"n={n} width={width}", native=["random_bits"])


def test_bits_key_layouts(warm):
    # a key that is a strided view (a column pair of a transposed array)
    raw = np.array([[5, 9, 2 ** 31 + 3], [17, 2 ** 32 - 1, 0]], np.uint32)
    keys = mx.transpose(mx.array(raw), stream=mx.cpu)        # (3, 2), not contiguous
    for i in range(3):
        check_bytes(lambda s: mx.random.bits((3, 7), 2, key=keys[i], stream=s),
                    what=f"strided key {i}", native=["random_bits"])
    # a computed key (split on the GPU feeding bits on the GPU)
    k = mx.random.key(3)
    check_bytes(lambda s: mx.random.bits((9,), 4, key=mx.random.split(k, 3, stream=s)[2],
                                         stream=s), what="split key", native=["random_bits"])
    check_bytes(lambda s: mx.random.split(k, 5, stream=s), what="split",
                native=["random_bits"])


@pytest.mark.parametrize("width", [1, 2, 4])
def test_bits_batched_keys(warm, width):
    # vmap over keys: one node over a (*batch, 2) key array
    keys = mx.random.split(mx.random.key(11), 6)
    mx.eval(keys)
    for shape in [(), (3,), (2, 5), (7,)]:
        G.reset_counts()
        g = mx.vmap(lambda kk: mx.random.bits(shape, width, key=kk))(keys)
        mx.eval(g)
        ran_natively(["random_bits"], f"vmap {shape}")
        want = _bits_np(np.asarray(keys), shape, width)
        g = np.asarray(g)
        assert g.shape == want.shape and g.dtype == want.dtype
        assert np.array_equal(g, want), (shape, width)
        # per key, as separate calls on the CPU
        for i in range(6):
            one = np.asarray(mx.random.bits(shape, width, key=keys[i], stream=mx.cpu))
            assert np.array_equal(g[i], one)
        # keys with two batch axes (nested vmap)
    keys2 = mx.reshape(keys, (2, 3, 2))
    G.reset_counts()
    g = mx.vmap(mx.vmap(lambda kk: mx.random.bits((5,), width, key=kk)))(keys2)
    mx.eval(g)
    want = _bits_np(np.asarray(keys2), (5,), width)
    assert np.array_equal(np.asarray(g), want)


def test_samplers_end_to_end(warm):
    k = mx.random.key(1234)
    for dt in ("float16", "bfloat16", "float32"):
        check(lambda s: mx.random.uniform(shape=(50, 7), dtype=mx_dtype(dt), key=k, stream=s),
              dtype=dt, what=f"uniform {dt}", native=["random_bits"])
        check(lambda s: mx.random.uniform(-2.0, 5.0, shape=(33,), dtype=mx_dtype(dt), key=k,
                                          stream=s), dtype=dt, what=f"uniform range {dt}",
              native=["random_bits"])
        check(lambda s: mx.random.normal(shape=(40, 3), dtype=mx_dtype(dt), key=k, stream=s),
              dtype=dt, what=f"normal {dt}", native=["random_bits"])
    check(lambda s: mx.random.normal(shape=(40, 3), loc=1.5, scale=0.5, key=k, stream=s),
          what="normal loc scale", native=["random_bits"])
    check(lambda s: mx.view(mx.random.normal(shape=(10,), dtype=mx.complex64, key=k,
                                             stream=s), mx.float32, stream=s),
          dtype="float32", what="normal complex64", native=["random_bits"])
    check(lambda s: mx.random.randint(-5, 17, shape=(100,), key=k, stream=s), what="randint",
          native=["random_bits"])
    check(lambda s: mx.random.randint(0, 256, shape=(4, 25), dtype=mx.uint8, key=k, stream=s),
          what="randint uint8", native=["random_bits"])
    check(lambda s: mx.random.bernoulli(0.3, shape=(200,), key=k, stream=s), what="bernoulli",
          native=["random_bits"])
    p = mx.array(np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
    check(lambda s: mx.random.bernoulli(p, key=k, stream=s), what="bernoulli array p",
          native=["random_bits"])
    logits = arr(np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32))
    check(lambda s: mx.random.categorical(logits, key=k, stream=s), what="categorical",
          native=["random_bits"])
    check(lambda s: mx.random.categorical(logits, num_samples=8, key=k, stream=s),
          what="categorical num_samples", native=["random_bits"])
    check(lambda s: mx.random.gumbel(shape=(30,), key=k, stream=s), what="gumbel",
          native=["random_bits"])
    check(lambda s: mx.random.laplace(shape=(30,), key=k, stream=s), what="laplace",
          native=["random_bits"])
    check(lambda s: mx.random.truncated_normal(-1.0, 2.0, shape=(30,), key=k, stream=s),
          what="truncated_normal", native=["random_bits"])
    check(lambda s: mx.random.permutation(20, key=k, stream=s), what="permutation",
          native=["random_bits"])


def test_global_seed_reproduces_on_gpu(warm):
    mx.random.seed(77)
    g = np.asarray(mx.random.uniform(shape=(64,), stream=mx.gpu))
    mx.random.seed(77)
    c = np.asarray(mx.random.uniform(shape=(64,), stream=mx.cpu))
    assert_close(g, c, "float32", "seeded uniform")


# ---------------------------------------------------------------------------------------
# view
# ---------------------------------------------------------------------------------------
VIEW_TYPES = ["bool", "uint8", "int16", "uint32", "int32", "int64", "float16", "bfloat16",
              "float32", "float64"]


@pytest.mark.parametrize("src", VIEW_TYPES)
def test_view_match_cpu(warm, src):
    rng = np.random.default_rng(3)
    x_np = make(src, (3, 8), rng)
    for label, x in variants(x_np) + [("sliced", arr(make(src, (3, 16), rng))[:, ::2])]:
        for dst in VIEW_TYPES:
            check_bytes(lambda a, s: mx.view(a, mx_dtype(dst), stream=s), x,
                        what=f"{src} -> {dst} {label}", native=["view"])
    x3 = arr(make(src, (2, 3, 4), rng))
    check_bytes(lambda a, s: mx.view(a, mx.uint8, stream=s), x3, what=f"{src} 3-d",
                native=["view"])
    check_bytes(lambda a, s: mx.view(mx.transpose(a, (1, 0, 2), stream=s), mx.uint8,
                                     stream=s), x3, what=f"{src} 3-d transposed",
                native=["view"])
    e = arr(make(src, (0, 8), rng))
    check_bytes(lambda a, s: mx.view(a, mx.uint8, stream=s), e, what=f"{src} empty",
                native=["view"])


def test_view_0d_and_complex(warm):
    x = arr(np.array(1.5, np.float32))
    for dst in ("int32", "uint32", "float32"):
        check_bytes(lambda a, s: mx.view(a, mx_dtype(dst), stream=s), x, what=f"0-d {dst}",
                    native=["view"])
    f = arr(np.arange(12, dtype=np.float32).reshape(3, 4))
    check_bytes(lambda a, s: mx.view(a, mx.complex64, stream=s), f, what="to complex64",
                native=["view"])
    check_bytes(lambda a, s: mx.view(mx.transpose(a, stream=s), mx.complex64, stream=s),
                arr(np.arange(12, dtype=np.float32).reshape(4, 3)),
                what="transposed to complex64", native=["view"])
    c = arr(np.arange(6, dtype=np.float32).view(np.complex64).reshape(3, 1))
    check_bytes(lambda a, s: mx.view(a, mx.float32, stream=s), c, what="from complex64",
                native=["view"])
    # the view of a GPU result (a queued kernel's output) reads it after the kernel
    check_bytes(lambda a, s: mx.view(mx.add(a, 1.0, stream=s), mx.int32, stream=s), f,
                what="view of a computed array", native=["view"])


# ---------------------------------------------------------------------------------------
# hadamard_transform
# ---------------------------------------------------------------------------------------
HADAMARD_SIZES = [1, 2, 4, 64, 256, 1024, 4096, 12, 24, 12 * 256, 20, 80, 28, 56]


@pytest.mark.parametrize("dt", FLOATS + ["int32"])
def test_hadamard_match_cpu(warm, dt):
    rng = np.random.default_rng(4)
    out = dt if dt in FLOATS else "float32"
    for n in HADAMARD_SIZES:
        x_np = make(dt, (3, n), rng, -2.0, 2.0)
        for label, x in variants(x_np):
            w = f"{dt} n={n} {label}"
            check(lambda a, s: mx.hadamard_transform(a, stream=s), x, dtype=out, what=w,
                  native=["hadamard_transform"])
            check(lambda a, s: mx.hadamard_transform(a, scale=0.25, stream=s), x, dtype=out,
                  what=w + " scale", native=["hadamard_transform"])
    for shape in [(16,), (2, 3, 40), (1, 1)]:
        check(lambda a, s: mx.hadamard_transform(a, stream=s), arr(make(dt, shape, rng)),
              dtype=out, what=f"{dt} {shape}", native=["hadamard_transform"])
    check(lambda a, s: mx.hadamard_transform(a, stream=s), arr(make(dt, (), rng)), dtype=out,
          what=f"{dt} 0-d", native=["hadamard_transform"])


def test_hadamard_long_rows_fall_back(warm):
    x = arr(np.random.default_rng(5).standard_normal((2, 8192)).astype(np.float32))
    check(lambda a, s: mx.hadamard_transform(a, stream=s), x, what="8192 (CPU)")


def test_hadamard_grad(warm):
    x = arr(np.random.default_rng(6).standard_normal((2, 24)).astype(np.float32))
    c = arr(np.random.default_rng(7).standard_normal((2, 24)).astype(np.float32))

    def fn(a, s):
        return mx.grad(lambda z: mx.sum(mx.hadamard_transform(z, stream=s) * c, stream=s))(a)
    check(fn, x, what="grad")


# ---------------------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------------------
def _sorted_seq(dt, n, rng):
    if dt == "bool":
        return np.sort(rng.random(n) > 0.5)
    if dt in ("float16", "bfloat16", "float32", "float64"):
        v = rng.integers(-4, 5, n).astype(np.float64)
        if n > 4:
            v[rng.integers(0, n, 2)] = np.nan
            v[0] = -0.0
            v[1] = -np.inf
        v = np.sort(v)
        return v.astype(np_dtype(dt))
    return np.sort(rng.integers(0, 12, n)).astype(dt)


def _values(dt, shape, rng):
    if dt == "bool":
        return rng.random(shape) > 0.5
    if dt in ("float16", "bfloat16", "float32", "float64"):
        v = rng.integers(-5, 6, shape).astype(np.float64)
        flat = v.reshape(-1)
        special = [np.nan, 0.0, -0.0, np.inf, -np.inf, 2.5]
        flat[:min(len(special), flat.size)] = special[:flat.size]
        return v.astype(np_dtype(dt))
    return rng.integers(0, 14, shape).astype(dt)


@pytest.mark.parametrize("dt", ["bool", "uint8", "int32", "int64", "float16", "bfloat16",
                                "float32", "float64"])
def test_searchsorted_match_cpu(warm, dt):
    rng = np.random.default_rng(8)
    for n in (1, 2, 7, 64, 1000):
        seq_np = _sorted_seq(dt, n, rng)
        vals_np = _values(dt, (6, 5), rng)
        for (ls, seq), (lv, vals) in zip(variants(seq_np) * 2, variants(vals_np) * 2):
            for side in ("left", "right"):
                w = f"{dt} n={n} {ls} {lv} {side}"
                check(lambda q, v, s: mx.searchsorted(q, v, side=side, stream=s), seq, vals,
                      what=w, native=["searchsorted"])
        scalar = _values(dt, (), rng).item()
        check(lambda q, s: mx.searchsorted(q, scalar, stream=s), arr(seq_np),
              what=f"{dt} scalar {scalar}", native=["searchsorted"])


def test_searchsorted_mixed_dtypes_and_edges(warm):
    rng = np.random.default_rng(9)
    seq_i = arr(np.array([1, 2, 2, 5, 9], np.int32))
    vals_f = arr(np.array([[0.5, 2.0, 2.5], [9.0, 10.0, -1.0]], np.float32))
    for side in ("left", "right"):
        check(lambda q, v, s: mx.searchsorted(q, v, side=side, stream=s), seq_i, vals_f,
              what=f"int32 seq, float32 values {side}", native=["searchsorted"])
        seq_h = arr(np.array([-1, 0, 0.5, 3], np.float16))
        check(lambda q, v, s: mx.searchsorted(q, v, side=side, stream=s), seq_h, vals_f,
              what=f"float16 seq, float32 values {side}", native=["searchsorted"])
    empty = arr(np.zeros(0, np.float32))
    check(lambda q, v, s: mx.searchsorted(q, v, stream=s), empty, vals_f, what="empty seq",
          native=["searchsorted"])
    check(lambda q, v, s: mx.searchsorted(q, v, stream=s), seq_i, arr(np.zeros((0, 3), np.int32)),
          what="empty values")
    big = arr(np.sort(rng.standard_normal(100000)).astype(np.float32))
    check(lambda q, v, s: mx.searchsorted(q, v, side="right", stream=s), big,
          arr(rng.standard_normal((50, 40)).astype(np.float32)), what="long seq",
          native=["searchsorted"])


def test_searchsorted_batched(warm):
    # vmap over a batch of sequences: one batched node
    rng = np.random.default_rng(10)
    seqs = arr(np.sort(rng.integers(0, 20, (4, 9)), axis=1).astype(np.int32))
    vals = arr(rng.integers(-1, 22, (4, 6)).astype(np.int32))
    for side in ("left", "right"):
        G.reset_counts()
        g = mx.vmap(lambda q, v: mx.searchsorted(q, v, side=side))(seqs, vals)
        mx.eval(g)
        ran_natively(["searchsorted"], f"vmap {side}")
        for b in range(4):
            c = mx.searchsorted(seqs[b], vals[b], side=side, stream=mx.cpu)
            assert_close(np.asarray(g)[b], np.asarray(c), "uint32", f"vmap row {b} {side}")


# ---------------------------------------------------------------------------------------
# median
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", ["bool", "uint8", "int32", "int64", "float16", "bfloat16",
                                "float32", "float64"])
def test_median_match_cpu(warm, dt):
    rng = np.random.default_rng(11)
    x_np = make(dt, (4, 6, 5), rng)
    out = dt if dt in FLOATS else "float32"
    for label, x in variants(x_np):
        for axis in (None, 0, 1, 2, -1, (0, 2), (1, 2), (0, 1, 2)):
            for keepdims in (False, True):
                check(lambda a, s: mx.median(a, axis=axis, keepdims=keepdims, stream=s), x,
                      dtype=out, what=f"{dt} {label} axis={axis} keepdims={keepdims}",
                      native=["median"])
    odd = arr(make(dt, (3, 7), rng))
    check(lambda a, s: mx.median(a, axis=1, stream=s), odd, dtype=out, what=f"{dt} odd",
          native=["median"])
    check(lambda a, s: mx.median(a, stream=s), arr(make(dt, (), rng)), dtype=out,
          what=f"{dt} 0-d")
    long = arr(make(dt, (3, 5001), rng))            # rows longer than a sort tile
    check(lambda a, s: mx.median(a, axis=1, stream=s), long, dtype=out, what=f"{dt} long",
          native=["median"])
    check(lambda a, s: mx.median(a, axis=0, stream=s), arr(make(dt, (4, 0), rng)), dtype=out,
          what=f"{dt} no rows")


@pytest.mark.parametrize("dt", ["float16", "float32", "float64"])
def test_median_nan_inf(warm, dt):
    x_np = np.array([[1.0, np.nan, 3.0, 2.0],
                     [np.inf, -np.inf, 1.0, 2.0],
                     [np.inf, -np.inf, 0.0, np.inf],
                     [-0.0, 0.0, -0.0, 5.0],
                     [6e4, 6e4, 1.0, 6.5e4]]).astype(np_dtype(dt))
    for label, x in variants(x_np):
        check(lambda a, s: mx.median(a, axis=1, stream=s), x, dtype=dt, what=f"{dt} {label}",
              native=["median"])
        check(lambda a, s: mx.median(a, axis=0, stream=s), x, dtype=dt,
              what=f"{dt} {label} axis 0", native=["median"])
