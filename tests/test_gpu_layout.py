"""GPU kernels of the remaining elementwise primitives (logical_xor, round, trunc,
nan_to_num), the creation and layout primitives of mx/backend/gpu/layout.py (eye, tri,
tril, triu, linspace, windows, diagonal, diag, trace, roll, repeat, tile, meshgrid, diff,
kron, dynamic_slice) and the products beyond matmul (inner, outer, tensordot, vecdot,
einsum, gather_mm, segmented_mm).

Each test runs one op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape, over dtypes and odd layouts (empty, size 1, 0-d,
non-contiguous, broadcast), and checks that the GPU kernel really ran (no CPU fallback).
"""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, assert_close, both, make, np_dtype, ran_natively, variants

pytestmark = pytest.mark.gpu

DTYPES = ["bool", "uint8", "int8", "int32", "int64", "uint64", "float16", "bfloat16", "float32",
          "float64"]
FLOATS = ["float16", "bfloat16", "float32", "float64"]


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    keys = [k for k in K.groups() if k[0] in ("layout", "astype")]
    keys += [("unary", "trunc"), ("unary", "copy"), ("binary", "logical_xor"),
             ("copy", "copy_gg"), ("binary", "subtract"), ("binary", "multiply"),
             ("binary", "not_equal"), ("binary", "remainder"), ("gather", "take_axis")]
    b.kernels.warm_up([k for k in keys if k in K.groups()], threads=16)
    return b


def check(fn, *inputs, dtype="float32", what="", native=None):
    """fn on the GPU equals fn on the CPU (within the dtype's tolerance); `native`
    primitives did not fall back."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert_close(g, c, dtype, what)
    if native:
        ran_natively(native, what)


def same(fn, *inputs, what="", native=None):
    """fn on the GPU equals fn on the CPU exactly (NaN where NaN)."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape, g.dtype, c.dtype)
    if c.dtype.kind == "f" or c.dtype.name == "bfloat16":
        gf, cf = g.astype(np.float64), c.astype(np.float64)
        ok = (gf == cf) | (np.isnan(gf) & np.isnan(cf))
        assert ok.all(), (what, g[~ok][:8], c[~ok][:8])
    else:
        np.testing.assert_array_equal(g, c, err_msg=what)
    if native:
        ran_natively(native, what)


def close_sums(fn, *inputs, scale=1.0, n=1, what="", native=None):
    """fn on the GPU equals fn on the CPU up to the rounding of a sum of n terms of size
    `scale` accumulated in another order (integers exactly)."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape, g.dtype, c.dtype)
    if c.dtype.kind in "biu":
        np.testing.assert_array_equal(g, c, err_msg=what)
    else:
        rtol = {"float16": 1e-2, "bfloat16": 5e-2, "float32": 2e-5, "float64": 1e-12}[c.dtype.name]
        np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64), rtol=rtol,
                                   atol=rtol * scale * max(n, 1), equal_nan=True, err_msg=what)
    if native:
        ran_natively(native, what)


def mxd(name):
    return mx.bool_ if name == "bool" else getattr(mx, name)


# ---------------------------------------------------------------------------------------
# elementwise
# ---------------------------------------------------------------------------------------
SPECIAL = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.5, 0.125, 0.375, 1.235, 2.675, 1e-3, -7.45,
           123.456, 1234.5, -65.25, np.inf, -np.inf, np.nan]


def _floats(dt, rng, shape=(3, 7)):
    x = np.concatenate([np.array(SPECIAL), rng.uniform(-50, 50, 21 * 3)]).astype(np.float64)
    x = x[:int(np.prod(shape))].reshape(shape) if np.prod(shape) <= x.size else \
        np.resize(x, shape)
    with np.errstate(over="ignore"):
        return x.astype(np_dtype(dt))


@pytest.mark.parametrize("dt", DTYPES)
def test_trunc(warm, dt):
    rng = np.random.default_rng(0)
    x_np = _floats(dt, rng) if dt in FLOATS else make(dt, (3, 7), rng)
    for label, x in variants(x_np):
        same(lambda a, s: mx.trunc(a, stream=s), x, what=f"{dt} {label}", native=["trunc"])
    same(lambda a, s: mx.trunc(a, stream=s), arr(x_np[0, 0]), what="0-d")
    same(lambda a, s: mx.trunc(a, stream=s), arr(x_np[:0]), what="empty")


@pytest.mark.parametrize("dt", ["bool", "int32", "float32"])
def test_logical_xor(warm, dt):
    rng = np.random.default_rng(1)
    a_np, b_np = make(dt, (4, 5), rng), make(dt, (4, 5), rng)
    if dt != "bool":
        a_np[0, :3] = 0
        b_np[0, 1:4] = 0
    for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
        same(lambda p, q, s: mx.logical_xor(p, q, stream=s), a, b, what=f"{dt} {la} {lb}",
             native=["logical_xor"])
        same(lambda p, q, s: mx.logical_xor(p[:, :1], q[:1], stream=s), a, b,
             what=f"{dt} broadcast", native=["logical_xor"])
        same(lambda p, s: mx.logical_xor(p, True, stream=s), a, what=f"{dt} scalar",
             native=["logical_xor"])


@pytest.mark.parametrize("dt", FLOATS)
def test_round_floats(warm, dt):
    rng = np.random.default_rng(2)
    x_np = _floats(dt, rng, (5, 9))
    for decimals in (-400, -40, -3, -2, -1, 0, 1, 2, 3, 5, 6, 40, 400):
        for label, x in variants(x_np):
            same(lambda a, s: mx.round(a, decimals, stream=s), x, what=f"{dt} {decimals} {label}",
                 native=["round"])
    same(lambda a, s: mx.round(a, 1, stream=s), arr(x_np[1, 2]), what="0-d")
    same(lambda a, s: mx.round(a, 1, stream=s), arr(x_np[:0]), what="empty")


@pytest.mark.parametrize("dt", ["uint8", "int8", "int16", "int32", "int64", "uint64"])
def test_round_integers(warm, dt):
    # only decimals < 0 make a node for integers; values whose rounding stays in range
    x_np = np.array([0, 1, 4, 5, 6, 14, 15, 16, 25, 35, 45, 50, 55, 99, 105, 115, 125],
                    np.int64)
    if not dt.startswith("u"):
        x_np = np.concatenate([x_np, -x_np])
    x_np = x_np.astype(dt)
    for decimals in (-1, -2, -3, -19, -30):
        for label, x in variants(x_np):
            same(lambda a, s: mx.round(a, decimals, stream=s), x,
                 what=f"{dt} {decimals} {label}", native=["round"])


@pytest.mark.parametrize("dt", FLOATS)
def test_nan_to_num(warm, dt):
    rng = np.random.default_rng(3)
    x_np = _floats(dt, rng, (4, 6))
    native = None if dt == "bfloat16" else ["nan_to_num"]     # bfloat16: the CPU kernel
    for label, x in variants(x_np):
        w = f"{dt} {label}"
        same(lambda a, s: mx.nan_to_num(a, stream=s), x, what=w, native=native)
        same(lambda a, s: mx.nan_to_num(a, nan=-1.5, posinf=1e4, neginf=-2.0, stream=s), x,
             what=w + " custom", native=native)
        # values that do not fit the dtype become infinite, as NumPy converts them
        same(lambda a, s: mx.nan_to_num(a, nan=7.0, posinf=1e300, neginf=-1e300, stream=s), x,
             what=w + " overflowing", native=native)
    same(lambda a, s: mx.nan_to_num(a, stream=s), arr(x_np[0, -1]), what="0-d")
    same(lambda a, s: mx.nan_to_num(a, stream=s), arr(x_np[:0]), what="empty")


# ---------------------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_eye_and_tri(warm, dt):
    d = mxd(dt)
    for n, m in [(0, 0), (1, 1), (3, 3), (3, 5), (5, 3), (0, 4), (4, 0)]:
        for k in (-7, -2, -1, 0, 1, 3, 9):
            w = f"{dt} {n}x{m} k={k}"
            same(lambda s: mx.eye(n, m, k, dtype=d, stream=s), what=w,
                 native=["eye"] if n * m else None)
            same(lambda s: mx.tri(n, m, k, dtype=d, stream=s), what=w,
                 native=["tri"] if n * m else None)
    same(lambda s: mx.identity(4, dtype=d, stream=s), native=["eye"])
    same(lambda s: mx.eye(3, k=2**62, dtype=d, stream=s), what="huge k")
    same(lambda s: mx.tri(3, 4, k=-2**62, dtype=d, stream=s), what="huge negative k")


@pytest.mark.parametrize("dt", DTYPES)
def test_tril_triu(warm, dt):
    rng = np.random.default_rng(4)
    for shape in [(3, 5), (5, 3), (2, 4, 3), (1, 1), (2, 0, 3), (3, 2, 2, 4)]:
        x_np = make(dt, shape, rng)
        for label, x in variants(x_np):
            for k in (-5, -1, 0, 1, 4):
                w = f"{dt} {shape} {label} k={k}"
                same(lambda a, s: mx.tril(a, k, stream=s), x, what=w,
                     native=["tril"] if x_np.size else None)
                same(lambda a, s: mx.triu(a, k, stream=s), x, what=w,
                     native=["triu"] if x_np.size else None)
    x = arr(make(dt, (4, 1), rng))
    same(lambda a, s: mx.tril(mx.broadcast_to(a, (4, 5), stream=s), stream=s), x,
         what="broadcast input", native=["tril"])


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64", "int32", "int8",
                                "uint8", "int64", "uint64", "bool"])
def test_linspace(warm, dt):
    d = mxd(dt)
    cases = [(0, 1, 5, True), (0, 1, 5, False), (-3.5, 7.25, 11, True), (-5, 5, 11, True),
             (0, 10, 11, True), (2.5, -2.5, 7, False), (1e3, 1e3 + 1, 33, True), (0, 1, 1, True),
             (0, 1, 1, False), (4, 9, 0, True), (-100, 300, 1001, True), (0.1, 0.7, 4, True)]
    for start, stop, num, endpoint in cases:
        w = f"{dt} {start} {stop} {num} {endpoint}"
        fn = lambda s: mx.linspace(start, stop, num, endpoint=endpoint, dtype=d, stream=s)
        if dt in FLOATS:
            check(fn, dtype=dt, what=w, native=["linspace"] if num else None)
        else:
            same(fn, what=w, native=["linspace"] if num else None)


@pytest.mark.parametrize("kind", ["hanning", "hamming", "blackman", "bartlett"])
def test_windows(warm, kind):
    fn = getattr(mx, kind)
    for M in (-2, 0, 1, 2, 3, 8, 51, 1000):
        check(lambda s: fn(M, stream=s), what=f"{kind} {M}",
              native=["window"] if M > 0 else None)


# ---------------------------------------------------------------------------------------
# diagonals
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_diagonal_and_diag(warm, dt):
    rng = np.random.default_rng(5)
    x_np = make(dt, (4, 6, 5), rng)
    for label, x in variants(x_np):
        for offset, a1, a2 in [(0, 0, 1), (2, 0, 1), (-3, 0, 1), (1, 1, 2), (-1, 2, 0),
                               (0, -1, -2), (9, 0, 1)]:
            same(lambda a, s: mx.diagonal(a, offset, a1, a2, stream=s) + 0
                 if dt != "bool" else mx.diagonal(a, offset, a1, a2, stream=s), x,
                 what=f"{dt} {label} {offset} {a1} {a2}", native=["diagonal"])
    v_np = make(dt, (5,), rng)
    for label, v in variants(v_np):
        for k in (-3, -1, 0, 2):
            same(lambda a, s: mx.diag(a, k, stream=s), v, what=f"{dt} diag {label} {k}",
                 native=["diag_matrix"])
    same(lambda a, s: mx.diag(a, 2, stream=s), arr(v_np[:0]), what="diag of empty")
    same(lambda a, s: mx.diag(a, 1, stream=s), arr(make(dt, (3, 4), rng)),
         what="diag of a matrix")


@pytest.mark.parametrize("dt", DTYPES)
def test_trace(warm, dt):
    rng = np.random.default_rng(6)
    for shape in [(4, 4), (3, 7), (7, 3), (2, 5, 5), (300, 300), (1, 1), (0, 3), (3, 4, 0)]:
        x_np = make(dt, shape, rng)
        for label, x in variants(x_np):
            for offset, a1, a2 in [(0, 0, 1), (1, 0, 1), (-2, 0, 1), (0, -1, -2), (1, 2, 0)]:
                if a1 >= len(shape) or a2 >= len(shape):
                    continue
                close_sums(lambda a, s: mx.trace(a, offset, a1, a2, stream=s), x, scale=3.0,
                           n=max(shape), what=f"{dt} {shape} {label} {offset} {a1} {a2}",
                           native=["trace"])
    x = arr(make(dt, (5, 5), rng))
    for out_dt in ("int8", "int32", "uint16", "float32", "float16", "bool"):
        close_sums(lambda a, s: mx.trace(a, dtype=mxd(out_dt), stream=s), x, scale=3.0, n=5,
                   what=f"{dt} as {out_dt}", native=["trace"])


def test_trace_wraps_as_the_cpu(warm):
    x = arr(np.full((300, 300), 100, np.int8))
    same(lambda a, s: mx.trace(a, stream=s), x, native=["trace"])                  # int32
    same(lambda a, s: mx.trace(a, dtype=mx.int8, stream=s), x, native=["trace"])   # int32
    y = arr(np.full((3, 3), 2**31 - 5, np.int32))
    same(lambda a, s: mx.trace(a, stream=s), y, native=["trace"])                  # wraps


# ---------------------------------------------------------------------------------------
# roll, repeat, tile, meshgrid, diff, kron, dynamic_slice
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_roll(warm, dt):
    rng = np.random.default_rng(7)
    x_np = make(dt, (3, 4, 5), rng)
    cases = [(1, None), (-7, None), (61, None), (2, 0), (-1, 1), (13, -1), ((1, -2), (0, 2)),
             ((3, 3, -1), (1, 1, 2)), (2, (0, 1, 2)), ((0, 0), (0, 1)), ((5, -9), (2, 0))]
    for label, x in variants(x_np):
        for shift, axis in cases:
            same(lambda a, s: mx.roll(a, shift, axis, stream=s), x,
                 what=f"{dt} {label} {shift} {axis}", native=["roll"])
    same(lambda a, s: mx.roll(a, 3, stream=s), arr(x_np[0, 0, 0]), what="0-d")
    same(lambda a, s: mx.roll(a, 3, 1, stream=s), arr(x_np[:, :0]), what="empty")
    same(lambda a, s: mx.roll(a, (1, 2), (0, 1), stream=s), arr(x_np[:1, :1]), what="size 1")


@pytest.mark.parametrize("dt", DTYPES)
def test_repeat_tile(warm, dt):
    rng = np.random.default_rng(8)
    x_np = make(dt, (3, 4), rng)
    for label, x in variants(x_np):
        w = f"{dt} {label}"
        for n, axis in [(2, None), (3, 0), (1, 1), (0, 1), (4, -1)]:
            same(lambda a, s: mx.repeat(a, n, axis, stream=s), x, what=f"{w} repeat {n} {axis}",
                 native=["repeat"] if n else None)
        for reps in [(2,), (2, 1), (1, 3), (2, 1, 3), (3, 2, 2, 2), (0, 2), 3]:
            same(lambda a, s: mx.tile(a, reps, stream=s), x, what=f"{w} tile {reps}",
                 native=["tile"] if reps != (0, 2) else None)
    same(lambda a, s: mx.repeat(a, 3, stream=s), arr(x_np[0, 0]), what="repeat 0-d")
    same(lambda a, s: mx.tile(a, (2, 3), stream=s), arr(x_np[0, 0]), what="tile 0-d")
    same(lambda a, s: mx.tile(a, (2, 2), stream=s), arr(x_np[:, :0]), what="tile empty")


@pytest.mark.parametrize("dt", DTYPES)
def test_meshgrid(warm, dt):
    rng = np.random.default_rng(9)
    a_np, b_np, c_np = make(dt, (3,), rng), make(dt, (4,), rng), make(dt, (2, 1), rng)
    for indexing in ("xy", "ij"):
        for sparse in (False, True):
            for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
                def fn(p, q, r, s):
                    return mx.meshgrid(p, q, r, sparse=sparse, indexing=indexing, stream=s)
                G.reset_counts()
                gs = fn(a, b, arr(c_np), mx.gpu)
                cs = fn(a, b, arr(c_np), mx.cpu)
                mx.eval(gs, cs)
                for g, c in zip(gs, cs):
                    g, c = np.asarray(g), np.asarray(c)
                    assert g.shape == c.shape and g.dtype == c.dtype
                    np.testing.assert_array_equal(g, c, err_msg=f"{dt} {indexing} {sparse}")
                ran_natively(["meshgrid"], f"{dt} {indexing} {sparse} {la} {lb}")


@pytest.mark.parametrize("dt", DTYPES)
def test_diff(warm, dt):
    rng = np.random.default_rng(10)
    x_np = make(dt, (4, 6), rng)
    for label, x in variants(x_np):
        for n, axis in [(1, -1), (2, 0), (3, 1), (4, 0), (7, 1), (0, 0)]:
            fn = lambda a, s: mx.diff(a, n, axis, stream=s)
            native = ["diff"] if n else None
            if dt in ("float16", "bfloat16"):
                check(fn, x, dtype=dt, what=f"{dt} {label} {n} {axis}", native=native)
            else:
                same(fn, x, what=f"{dt} {label} {n} {axis}", native=native)


@pytest.mark.parametrize("dt", DTYPES)
def test_kron_and_outer(warm, dt):
    rng = np.random.default_rng(11)
    for sa, sb in [((2, 3), (3, 2)), ((2,), (3, 2)), ((2, 1, 3), (2, 2)), ((1,), (1,)),
                   ((3,), (4,)), ((2, 2, 2, 2), (2, 1, 2, 1))]:
        a_np, b_np = make(dt, sa, rng), make(dt, sb, rng)
        for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
            w = f"{dt} {sa} {sb} {la} {lb}"
            same(lambda p, q, s: mx.kron(p, q, stream=s), a, b, what=w, native=["kron"])
            same(lambda p, q, s: mx.outer(p, q, stream=s), a, b, what=w, native=["outer"])
    same(lambda p, q, s: mx.outer(p, q, stream=s), arr(make(dt, (0,), rng)),
         arr(make(dt, (3,), rng)), what="outer of empty")


@pytest.mark.parametrize("dt", ["float32", "int32", "bool", "bfloat16"])
def test_dynamic_slice(warm, dt):
    rng = np.random.default_rng(12)
    x = arr(make(dt, (5, 6, 3), rng))
    # start indices computed lazily: the dynamic_slice primitive (read on the host)
    same(lambda a, s: mx.slice(a, mx.add(mx.array([1, 2]), 0, stream=s), (0, 1), (3, 2, 3),
                               stream=s) if dt == "bool" else
         mx.slice(a, mx.add(mx.array([1, 2]), 0, stream=s), (0, 1), (3, 2, 3), stream=s) + 0,
         x, native=["dynamic_slice"])
    same(lambda a, s: mx.slice(a, mx.add(mx.array([3]), 0, stream=s), (2,), (5, 6, 0),
                               stream=s), x, what="empty slice")
    for s in (mx.gpu, mx.cpu):
        with pytest.raises(IndexError):
            mx.eval(mx.slice(x, mx.add(mx.array([4]), 0, stream=s), (0,), (3, 6, 3), stream=s))


# ---------------------------------------------------------------------------------------
# products
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_inner_tensordot(warm, dt):
    rng = np.random.default_rng(13)
    for sa, sb in [((5,), (5,)), ((3, 5), (5,)), ((2, 3, 5), (4, 5)), ((1, 7), (3, 7)),
                   ((0, 4), (3, 4)), ((3, 0), (2, 0)), ((64, 33), (17, 33))]:
        a_np, b_np = make(dt, sa, rng, -1, 1), make(dt, sb, rng, -1, 1)
        for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
            close_sums(lambda p, q, s: mx.inner(p, q, stream=s), a, b, n=sa[-1],
                       what=f"inner {dt} {sa} {sb} {la} {lb}", native=["inner"])
    cases = [((3, 4, 5), (4, 5, 2), 2), ((3, 4), (4, 5), 1), ((3, 4), (5, 6), 0),
             ((3, 4, 5), (5, 3, 2), ([0, 2], [1, 0])), ((2, 3, 4), (4, 3, 2), ([1, 2], [1, 0])),
             ((4, 5), (4, 5), ([0, 1], [0, 1])), ((2, 0, 3), (3, 0), ([1, 2], [1, 0]))]
    for sa, sb, axes in cases:
        a_np, b_np = make(dt, sa, rng, -1, 1), make(dt, sb, rng, -1, 1)
        for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
            close_sums(lambda p, q, s: mx.tensordot(p, q, axes, stream=s), a, b, n=20,
                       what=f"tensordot {dt} {sa} {sb} {axes} {la} {lb}",
                       native=["tensordot"])


@pytest.mark.parametrize("dt", DTYPES)
def test_vecdot(warm, dt):
    rng = np.random.default_rng(14)
    for sa, sb, axis in [((5,), (5,), -1), ((3, 5), (5,), -1), ((3, 1, 5), (4, 5), -1),
                         ((5, 3), (5, 3), 0), ((4, 3, 2), (4, 3, 2), 1), ((3, 0), (3, 0), -1),
                         ((2, 700), (700,), -1), ((0, 4), (4,), -1)]:
        a_np, b_np = make(dt, sa, rng, -1, 1), make(dt, sb, rng, -1, 1)
        for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)):
            close_sums(lambda p, q, s: mx.vecdot(p, q, axis=axis, stream=s), a, b,
                       n=sa[axis], what=f"{dt} {sa} {sb} {axis} {la} {lb}", native=["vecdot"])
    # integer products wrap in the operands' dtype, the sum widens
    a = arr(np.full((40,), 100, np.int8))
    same(lambda p, s: mx.vecdot(p, p, stream=s), a, native=["vecdot"])


EINSUMS = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 5, 8), (2, 3, 6, 8)]),
    ("bhqk,bhkd->bhqd", [(2, 3, 5, 6), (2, 3, 6, 8)]),
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("ij,jk->ki", [(3, 4), (4, 5)]),
    ("bij,bjk->ibk", [(2, 3, 4), (2, 4, 5)]),
    ("i,i->", [(7,), (7,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("bij,jk->bik", [(2, 3, 4), (4, 5)]),
    ("bij,bjk->bik", [(1, 3, 4), (2, 4, 5)]),
    ("...ij,...jk->...ik", [(2, 2, 3, 4), (2, 4, 5)]),
    ("abc,cd->abd", [(2, 3, 4), (4, 0)]),
    ("ij,jk->ik", [(3, 0), (0, 5)]),
    ("ij->ji", [(3, 4)]),
    ("abc->cab", [(2, 3, 4)]),
]


@pytest.mark.parametrize("dt", FLOATS)
def test_einsum(warm, dt):
    rng = np.random.default_rng(15)
    for subs, shapes in EINSUMS:
        xs = [make(dt, s, rng, -1, 1) for s in shapes]
        for k in range(2 if len(xs) == 2 else 1):
            ins = [arr(x) for x in xs]
            if k:       # non-contiguous operands
                ins = [variants(x)[-1][1] for x in xs]
            close_sums(lambda *a: mx.einsum(subs, *a[:-1], stream=a[-1]), *ins,
                       n=max(max(s) for s in shapes), what=f"{dt} {subs} {k}",
                       native=["einsum"])


def test_einsum_mixed_dtypes_and_fallbacks(warm):
    rng = np.random.default_rng(16)
    a = arr(make("float16", (3, 4), rng, -1, 1))
    b = arr(make("int8", (4, 5), rng))
    close_sums(lambda p, q, s: mx.einsum("ij,jk->ik", p, q, stream=s), a, b, scale=50, n=4,
               native=["einsum"])
    # an integer transpose (one operand): the copy kernel
    same(lambda p, s: mx.einsum("ij->ji", p, stream=s), arr(make("int32", (3, 4), rng)),
         native=["einsum"])
    # not one gemm: run on the CPU, same results
    for subs, shapes in [("ii->i", [(4, 4)]), ("ij->", [(3, 4)]), ("ij,jk,kl->il",
                                                                   [(2, 3), (3, 4), (4, 5)]),
                         ("ij,jk->i", [(3, 4), (4, 5)])]:
        xs = [arr(make("float32", s, rng, -1, 1)) for s in shapes]
        close_sums(lambda *a: mx.einsum(subs, *a[:-1], stream=a[-1]), *xs, n=5, what=subs)


@pytest.mark.parametrize("dt", FLOATS)
def test_gather_mm(warm, dt):
    rng = np.random.default_rng(17)
    a = arr(make(dt, (4, 3, 5), rng, -1, 1))
    b = arr(make(dt, (2, 5, 6), rng, -1, 1))
    for li, ri in [([0, 3, 1], [1, 0, 1]), ([[2], [0]], [1, 0, 1]), ([5, -1, -6], [2, 3, -3])]:
        for it in ("int32", "uint32", "int64", "int16"):
            if it.startswith("u") and min(np.min(li), np.min(ri)) < 0:
                continue
            lhs = arr(np.array(li, it))
            rhs = arr(np.array(ri, it))
            close_sums(lambda p, q, x, y, s: mx.gather_mm(p, q, x, y, stream=s), a, b, lhs, rhs,
                       n=5, what=f"{dt} {li} {ri} {it}", native=["gather_mm"])
    close_sums(lambda p, q, x, s: mx.gather_mm(p, q, x, stream=s), a, arr(make(dt, (5, 6), rng)),
               arr(np.array([3, 3, 0], np.uint32)), n=5, what="lhs only", native=["gather_mm"])


@pytest.mark.parametrize("dt", FLOATS)
def test_segmented_mm(warm, dt):
    rng = np.random.default_rng(18)
    a = arr(make(dt, (3, 10), rng, -1, 1))
    b = arr(make(dt, (10, 4), rng, -1, 1))
    for segs in ([[0, 4], [4, 10]], [[0, 10]], [[2, 2], [7, 3], [-5, 3], [8, 99]],
                 [[[0, 5], [5, 10]], [[1, 2], [3, 9]]]):
        seg = arr(np.array(segs, np.int32))
        close_sums(lambda p, q, g, s: mx.segmented_mm(p, q, g, stream=s), a, b, seg, n=10,
                   what=f"{dt} {segs}", native=["segmented_mm"])
    # segment bounds computed on the GPU (read once its work is done)
    close_sums(lambda p, q, s: mx.segmented_mm(p, q, mx.add(mx.array([[0, 3], [3, 8]]), 1,
                                                            stream=s), stream=s), a, b, n=10,
               native=["segmented_mm"])
    # an infinity in a row of b outside the segment: the zeroed columns of a multiply it
    # too, NaN on both devices (0 * inf)
    b_np = make(dt, (10, 4), rng, -1, 1)
    b_np[9, 0] = np.inf
    close_sums(lambda p, q, g, s: mx.segmented_mm(p, q, g, stream=s), a, arr(b_np),
               arr(np.array([[0, 5]], np.int32)), n=10, what="inf outside")
