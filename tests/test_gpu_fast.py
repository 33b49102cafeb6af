"""GPU kernels of mx.fast (mx/backend/gpu/fast.py, shaders/norm.metal) and softmax /
logsumexp over any axes (mx/backend/gpu/rows.py).

Each test runs one op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape, over float16/bfloat16/float32/float64, odd row lengths,
non-contiguous and broadcast inputs, and checks that the GPU kernel really ran (no CPU
fallback).
"""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import fast as gpu_fast
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, assert_close, both, make, ran_natively, tolerance, variants

pytestmark = pytest.mark.gpu

FLOATS = ["float16", "bfloat16", "float32", "float64"]
ROW_LENGTHS = [1, 7, 255, 256, 257, 4097]
# attention goes through two matrix products: the matmul tests' tolerances
MATMUL_RTOL = {"float32": 2e-4, "float16": 1e-2, "bfloat16": 5e-2, "float64": 1e-10}


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups()
                       if k[0] in ("fast", "rows", "copy", "astype")
                       or k == ("unary", "copy")], threads=16)
    return b


def check(fn, *inputs, dtype="float32", what="", native=None, atol=None):
    """fn on the GPU equals fn on the CPU; `native` primitives did not fall back. `atol`
    overrides the dtype's absolute tolerance."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    if atol is None:
        assert_close(g, c, dtype, what)
    else:
        assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape)
        np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64),
                                   rtol=tolerance(dtype)[0], atol=atol, equal_nan=True,
                                   err_msg=what)
    if native:
        ran_natively(native, what)


def check_product(fn, *inputs, dtype, scale, what="", native=None):
    """As check, with the matmul tests' tolerances (relative, and absolute against the
    size of the values summed)."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert g.shape == c.shape and g.dtype == c.dtype, (what, g.shape, c.shape, g.dtype, c.dtype)
    rtol = MATMUL_RTOL[dtype]
    np.testing.assert_allclose(g.astype(np.float64), c.astype(np.float64), rtol=rtol,
                               atol=rtol * scale, equal_nan=True, err_msg=what)
    if native:
        ran_natively(native, what)


def on_cpu(x):
    """Evaluate x on the CPU (inputs are made there, so the GPU sees finished arrays)."""
    mx.eval(x)
    return x


def weights(dt, n, rng):
    """(label, 1-D weight) pairs: contiguous, strided, and broadcast (stride 0)."""
    w_np = make(dt, (n,), rng, 0.5, 2.0)
    out = [("contiguous", arr(w_np))]
    if n > 1:
        out.append(("strided", arr(np.repeat(w_np, 2))[::2]))
        out.append(("broadcast", on_cpu(mx.broadcast_to(arr(w_np[:1]), (n,), stream=mx.cpu))))
    return out


# ---------------------------------------------------------------------------------------
# rms_norm and layer_norm
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_rms_norm(warm, dt):
    rng = np.random.default_rng(0)
    for n in ROW_LENGTHS:
        for shape in [(n,), (3, n), (2, 3, n)]:
            x_np = make(dt, shape, rng)
            for label, x in variants(x_np):
                w = f"{dt} {shape} {label}"
                check(lambda a, s: mx.fast.rms_norm(a, None, 1e-5, stream=s), x, dtype=dt,
                      what=w + " no weight", native=["rms_norm"])
                for wl, wt in weights(dt, n, rng):
                    check(lambda a, b, s: mx.fast.rms_norm(a, b, 1e-5, stream=s), x, wt,
                          dtype=dt, what=f"{w} weight {wl}", native=["rms_norm"])
    x = arr(make(dt, (4, 33), rng))
    for eps in (0.0, 0.5, 1e-6):
        check(lambda a, s: mx.fast.rms_norm(a, None, eps, stream=s), x, dtype=dt,
              what=f"eps {eps}", native=["rms_norm"])


@pytest.mark.parametrize("dt", FLOATS)
def test_layer_norm(warm, dt):
    rng = np.random.default_rng(1)
    for n in ROW_LENGTHS:
        for shape in [(n,), (3, n), (2, 3, n)]:
            x_np = make(dt, shape, rng)
            for label, x in variants(x_np):
                w = f"{dt} {shape} {label}"
                check(lambda a, s: mx.fast.layer_norm(a, None, None, 1e-5, stream=s), x,
                      dtype=dt, what=w + " plain", native=["layer_norm"])
                for (wl, wt), (bl, bt) in zip(weights(dt, n, rng), weights(dt, n, rng)):
                    ww = f"{w} weight {wl} bias {bl}"
                    check(lambda a, p, q, s: mx.fast.layer_norm(a, p, q, 1e-5, stream=s), x, wt,
                          bt, dtype=dt, what=ww, native=["layer_norm"])
                    check(lambda a, p, s: mx.fast.layer_norm(a, p, None, 1e-5, stream=s), x, wt,
                          dtype=dt, what=ww + " (weight only)", native=["layer_norm"])
                    check(lambda a, q, s: mx.fast.layer_norm(a, None, q, 1e-5, stream=s), x, bt,
                          dtype=dt, what=ww + " (bias only)", native=["layer_norm"])
    # an offset that a one-pass variance would lose (multiples of 1/64: every sum of the
    # mean is exact in float32, whatever its order, so both devices centre the rows alike)
    x = arr((np.round(make("float64", (3, 100), rng) * 64) / 64 + 50).astype(
        make(dt, (1,), rng).dtype))
    check(lambda a, s: mx.fast.layer_norm(a, None, None, 1e-5, stream=s), x, dtype=dt,
          what="offset rows", native=["layer_norm"])
    for eps in (0.0, 0.5):
        check(lambda a, s: mx.fast.layer_norm(a, None, None, eps, stream=s), x, dtype=dt,
              what=f"eps {eps}", native=["layer_norm"])


def test_norms_special_values_and_empty(warm):
    x = np.array([[1, np.nan, 3], [np.inf, 0, 1], [0, 0, 0], [-np.inf, 2, 1]], np.float32)
    w = arr(np.array([1, 2, 3], np.float32))
    check(lambda a, s: mx.fast.rms_norm(a, None, 1e-5, stream=s), arr(x), native=["rms_norm"])
    check(lambda a, b, s: mx.fast.layer_norm(a, b, b, 1e-5, stream=s), arr(x), w,
          native=["layer_norm"])
    e = arr(np.zeros((0, 5), np.float32))
    check(lambda a, s: mx.fast.rms_norm(a, None, 1e-5, stream=s), e)
    check(lambda a, s: mx.fast.layer_norm(a, None, None, 1e-5, stream=s), e)
    z = arr(np.zeros((3, 0), np.float32))
    check(lambda a, s: mx.fast.rms_norm(a, None, 1e-5, stream=s), z)
    check(lambda a, s: mx.fast.layer_norm(a, None, None, 1e-5, stream=s), z)


def test_norms_promote_weight(warm):
    """A weight of another dtype: the op casts both to the promoted type (the cast runs on
    the GPU too) and the kernel sees one dtype."""
    rng = np.random.default_rng(2)
    x = arr(make("float16", (4, 64), rng))
    w = arr(make("float32", (64,), rng))
    check(lambda a, b, s: mx.fast.rms_norm(a, b, 1e-5, stream=s), x, w, native=["rms_norm"])
    check(lambda a, b, s: mx.fast.layer_norm(a, b, b, 1e-5, stream=s), x, w,
          native=["layer_norm"])


# ---------------------------------------------------------------------------------------
# rope
# ---------------------------------------------------------------------------------------
ROPE_SHAPES = [(2, 3, 5, 8), (1, 2, 7, 64), (2, 1, 1, 6), (3, 4, 10), (1, 33, 128)]


@pytest.mark.parametrize("dt", FLOATS)
def test_rope(warm, dt):
    rng = np.random.default_rng(3)
    for shape in ROPE_SHAPES:
        D = shape[-1]
        x_np = make(dt, shape, rng)
        for label, x in variants(x_np):
            for dims in sorted({D, D - 2 if D > 2 else D, 2}):
                for trad in (False, True):
                    for base, scale, offset in [(10000.0, 1.0, 0), (500.0, 0.5, 7),
                                                (10000.0, 2.0, 1000)]:
                        w = f"{dt} {shape} {label} dims={dims} trad={trad} {base} {scale} {offset}"
                        # float64: CUDA's sin/cos of angles up to ~2000 differ from the
                        # C library's by an ulp, which cancellation makes ~1e-14 absolute
                        check(lambda a, s: mx.fast.rope(a, dims, traditional=trad, base=base,
                                                        scale=scale, offset=offset, stream=s),
                              x, dtype=dt, what=w, native=["rope"],
                              atol=1e-12 if dt == "float64" else None)


@pytest.mark.parametrize("dt", FLOATS)
def test_rope_array_offsets_and_freqs(warm, dt):
    rng = np.random.default_rng(4)
    shape = (3, 2, 6, 10)
    x_np = make(dt, shape, rng)
    for label, x in variants(x_np):
        for odt in ("int32", "int64", "uint8", "int16", "uint64"):
            scalar = arr(np.array(5, odt))
            vector = arr(np.array([0, 3, 100], odt))
            for off, ol in ((scalar, "scalar array"), (vector, "per-entry vector"),
                            (arr(np.repeat(np.array([1, 2, 4], odt), 2))[::2], "strided")):
                w = f"{dt} {label} offset {odt} {ol}"
                check(lambda a, o, s: mx.fast.rope(a, 8, traditional=False, base=10000.0,
                                                   scale=1.0, offset=o, stream=s),
                      x, off, dtype=dt, what=w, native=["rope"])
        for fdt in ("float32", "float16", "float64"):
            freqs = arr(rng.uniform(1.0, 100.0, (4,)).astype(fdt))
            for trad in (False, True):
                w = f"{dt} {label} freqs {fdt} trad={trad}"
                check(lambda a, f, s: mx.fast.rope(a, 8, traditional=trad, base=None,
                                                   scale=0.7, offset=3, freqs=f, stream=s),
                      x, freqs, dtype=dt, what=w, native=["rope"])
                check(lambda a, f, o, s: mx.fast.rope(a, 8, traditional=trad, base=None,
                                                      scale=1.0, offset=o, freqs=f, stream=s),
                      x, freqs, arr(np.array([2, 0, 9], np.int32)), dtype=dt,
                      what=w + " vector offset", native=["rope"])


def test_rope_empty(warm):
    for shape in [(0, 2, 3, 4), (2, 0, 3, 4), (2, 2, 0, 4)]:
        x = arr(np.zeros(shape, np.float32))
        check(lambda a, s: mx.fast.rope(a, 4, traditional=False, base=10000.0, scale=1.0,
                                        offset=0, stream=s), x, what=f"{shape}")


# ---------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_cross_entropy(warm, dt):
    rng = np.random.default_rng(5)
    for n in ROW_LENGTHS:
        for lead in [(), (5,), (2, 3)]:
            x_np = make(dt, lead + (n,), rng, -5, 5)
            t_np = rng.integers(-n, n, lead)
            for label, x in variants(x_np):
                for tdt in ("int32", "int64", "uint8", "int16", "uint32"):
                    t = t_np if not tdt.startswith("u") else np.abs(t_np) % n
                    if tdt == "uint8" and n > 255:
                        continue
                    tg = arr(np.asarray(t).astype(tdt))
                    w = f"{dt} {lead + (n,)} {label} targets {tdt}"
                    check(lambda a, b, s: mx.fast.cross_entropy(a, b, stream=s), x, tg,
                          what=w, native=["cross_entropy"])


def test_cross_entropy_special_values(warm):
    x = np.array([[1, np.nan, 3], [np.inf, 0, 1], [-np.inf, -np.inf, -np.inf], [-np.inf, 2, 1],
                  [1000, -1000, 0], [0, 1, 2], [0, 1, 2]], np.float32)
    t = np.array([0, 1, 2, 0, 1, 3, -4], np.int64)      # the last two are out of range: NaN
    check(lambda a, b, s: mx.fast.cross_entropy(a, b, stream=s), arr(x), arr(t),
          native=["cross_entropy"])
    # uint64 targets beyond int64 wrap as NumPy's cast does (2**64 - 1 is -1: the last class)
    check(lambda a, b, s: mx.fast.cross_entropy(a, b, stream=s), arr(x[:2]),
          arr(np.array([2**64 - 1, 1], np.uint64)), native=["cross_entropy"])
    # a transposed target array
    tt = arr(np.array([[0, 1], [2, 0], [1, 1]], np.int32))
    xx = arr(make("float32", (2, 3, 3), np.random.default_rng(6)))
    check(lambda a, b, s: mx.fast.cross_entropy(a, mx.swapaxes(b, 0, 1, stream=s), stream=s),
          xx, tt, native=["cross_entropy"])
    check(lambda a, b, s: mx.fast.cross_entropy(a, b, stream=s),
          arr(np.zeros((0, 4), np.float32)), arr(np.zeros((0,), np.int32)))


# ---------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------------------
# (B, N_q, T_q, D), (B, N_kv, T_kv), D_v
SDPA_SHAPES = [((2, 4, 5, 8), (2, 2, 6), 3),       # grouped-query attention, 2 heads a kv head
               ((2, 3, 7, 16), (2, 3, 7), 16),     # multi-head
               ((1, 8, 1, 64), (1, 2, 33), 64),    # one query (decoding), 4 heads a kv head
               ((1, 2, 6, 4), (1, 1, 4), 5),       # more queries than keys: causal rows see none
               ((2, 2, 3, 1), (2, 1, 300), 2),     # long rows
               ((1, 1, 1, 2), (1, 1, 1), 1)]


def _qkv(dt, shapes, rng, layout="contiguous"):
    (B, nq, tq, d), (_, nk, tk), dv = shapes
    q = make(dt, (B, nq, tq, d), rng, -1, 1)
    k = make(dt, (B, nk, tk, d), rng, -1, 1)
    v = make(dt, (B, nk, tk, dv), rng, -1, 1)
    if layout == "contiguous":
        return arr(q), arr(k), arr(v)
    # (B, T, N, D) arrays seen as (B, N, T, D): the layout a model's projections give
    return tuple(on_cpu(mx.swapaxes(arr(np.ascontiguousarray(np.swapaxes(a, 1, 2))), 1, 2,
                                    stream=mx.cpu)) for a in (q, k, v))


def _masks(dt, shapes, rng):
    """(label, mask) of every kind: None, causal, boolean and additive, broadcast."""
    (B, nq, tq, d), (_, nk, tk), dv = shapes
    out = [("none", None), ("causal", "causal")]
    full = rng.random((B, nq, tq, tk)) > 0.3
    full[0, 0, 0] = False                                   # a row that sees no key
    out.append(("bool (B,N,Tq,Tk)", arr(full)))
    out.append(("bool (Tq,Tk)", arr(rng.random((tq, tk)) > 0.5)))
    out.append(("bool (N,1,Tk)", arr(rng.random((nq, 1, tk)) > 0.2)))
    out.append(("additive (Tq,Tk)", arr(make(dt, (tq, tk), rng, -2, 2))))
    out.append(("additive (1,N,1,Tk)", arr(make(dt, (1, nq, 1, tk), rng, -2, 2))))
    out.append(("additive (B,1,Tq,Tk) transposed",
                on_cpu(mx.swapaxes(arr(make(dt, (B, 1, tk, tq), rng, -2, 2)), 2, 3,
                                   stream=mx.cpu))))
    return out


@pytest.mark.parametrize("dt", FLOATS)
def test_sdpa(warm, dt):
    rng = np.random.default_rng(7)
    for shapes in SDPA_SHAPES:
        d = shapes[0][3]
        for layout in ("contiguous", "transposed"):
            q, k, v = _qkv(dt, shapes, rng, layout)
            for ml, mask in _masks(dt, shapes, rng):
                for sinks in (None, arr(make(dt, (shapes[0][1],), rng, -1, 1))):
                    w = f"{dt} {shapes} {layout} mask {ml} sinks {sinks is not None}"

                    def f(a, b, c, s, mask=mask, sinks=sinks):
                        return mx.fast.scaled_dot_product_attention(
                            a, b, c, scale=d ** -0.5, mask=mask, sinks=sinks, stream=s)
                    check_product(f, q, k, v, dtype=dt, scale=1.0, what=w,
                                  native=["scaled_dot_product_attention"])


def test_sdpa_special_values_and_empty(warm):
    rng = np.random.default_rng(8)
    q, k, v = _qkv("float32", ((1, 2, 3, 4), (1, 1, 5), 2), rng)
    m = np.zeros((3, 5), np.float32)
    m[1] = -np.inf                                  # a row of -inf: NaN, as on the CPU
    m[2, :2] = -np.inf
    check_product(lambda a, b, c, mm, s: mx.fast.scaled_dot_product_attention(
        a, b, c, scale=1.0, mask=mm, stream=s), q, k, v, arr(m), dtype="float32", scale=1.0,
        native=["scaled_dot_product_attention"])
    # large scores (exact in float32, whatever the order of the sums): the shift by the
    # row's maximum keeps them finite
    big = arr(np.full((1, 2, 3, 4), 1e4, np.float32))
    kk = arr(rng.integers(-1, 2, (1, 1, 5, 4)).astype(np.float32))
    check_product(lambda a, b, c, s: mx.fast.scaled_dot_product_attention(
        a, b, c, scale=1.0, mask="causal", stream=s), big, kk, v, dtype="float32", scale=1.0,
        native=["scaled_dot_product_attention"])
    # no keys: zeros; no queries or no value features: empty
    for qs, ks, dv in [((1, 2, 3, 4), (1, 1, 0), 2), ((1, 2, 0, 4), (1, 1, 5), 2),
                       ((1, 2, 3, 4), (1, 1, 5), 0), ((1, 2, 3, 0), (1, 1, 5), 2)]:
        a, b, c = _qkv("float32", (qs, ks, dv), rng)
        check(lambda a, b, c, s: mx.fast.scaled_dot_product_attention(
            a, b, c, scale=0.5, mask="causal", stream=s), a, b, c, what=f"{qs} {ks} {dv}")


def test_sdpa_in_blocks(warm, monkeypatch):
    """Problems larger than the score budget go in blocks of batch entries or of kv heads:
    the same results."""
    rng = np.random.default_rng(9)
    shapes = ((3, 6, 5, 8), (3, 3, 7), 4)
    q, k, v = _qkv("float32", shapes, rng)
    one_head = 2 * 5 * 7 * 4                         # g * T_q * T_kv floats
    for budget in (one_head * 3 * 2, one_head * 2, one_head, 1):
        monkeypatch.setattr(gpu_fast, "SDPA_BLOCK_BYTES", budget)
        for ml, mask in _masks("float32", shapes, rng):
            for sinks in (None, arr(make("float32", (6,), rng))):
                def f(a, b, c, s, mask=mask, sinks=sinks):
                    return mx.fast.scaled_dot_product_attention(a, b, c, scale=0.3, mask=mask,
                                                                sinks=sinks, stream=s)
                check_product(f, q, k, v, dtype="float32", scale=1.0,
                              what=f"budget {budget} mask {ml} sinks {sinks is not None}",
                              native=["scaled_dot_product_attention"])


# ---------------------------------------------------------------------------------------
# softmax and logsumexp over any axes
# ---------------------------------------------------------------------------------------
AXES_CASES = [((3, 4, 5), [0, 1, (0, 2), (0, 1), (1, 2), None, -1, (0, 1, 2)]),
              ((7,), [0, None]),
              ((2, 1, 3), [0, 1, (0, 2)]),
              ((4097, 3), [0, None]),
              ((3, 257, 2), [1, (0, 1)]),
              ((2, 3, 4, 5), [(1, 3), (0, 2), 2])]


@pytest.mark.parametrize("dt", FLOATS)
def test_softmax_logsumexp_over_any_axes(warm, dt):
    rng = np.random.default_rng(10)
    for shape, axes in AXES_CASES:
        x_np = make(dt, shape, rng, -10, 10)
        for label, x in variants(x_np):
            for ax in axes:
                w = f"{dt} {shape} {label} axis={ax}"
                check(lambda a, s: mx.softmax(a, axis=ax, stream=s), x, dtype=dt, what=w,
                      native=["softmax"])
                for keep in (False, True):
                    check(lambda a, s: mx.logsumexp(a, axis=ax, keepdims=keep, stream=s), x,
                          dtype=dt, what=f"{w} keepdims={keep}", native=["logsumexp"])


def test_softmax_logsumexp_other_axes_special_values(warm):
    x = np.array([[0, -np.inf, 1, np.nan, 1000], [-np.inf, -np.inf, 0, 0, 1000],
                  [np.inf, -np.inf, 1, 1, -1000]], np.float32)
    for ax in (0, None):
        check(lambda a, s: mx.softmax(a, axis=ax, stream=s), arr(x), native=["softmax"])
        check(lambda a, s: mx.logsumexp(a, axis=ax, stream=s), arr(x), native=["logsumexp"])
    # a 0-d softmax, and softmax over no axes
    check(lambda a, s: mx.softmax(a, stream=s), arr(np.array(2.5, np.float32)),
          native=["softmax"])
    check(lambda a, s: mx.softmax(a, axis=[], stream=s), arr(x), native=["softmax"])


# ---------------------------------------------------------------------------------------
# gradients: the rules of the fast ops run on the GPU too
# ---------------------------------------------------------------------------------------
def test_gradients_of_fast_ops_on_the_gpu(warm):
    rng = np.random.default_rng(11)
    x = arr(make("float32", (2, 4, 5, 8), rng, -1, 1))
    k = arr(make("float32", (2, 2, 6, 8), rng, -1, 1))
    w = arr(make("float32", (8,), rng, 0.5, 1.5))
    tg = arr(rng.integers(0, 8, (2, 4, 5)).astype(np.int32))
    freqs = arr(rng.uniform(1, 10, (4,)).astype(np.float32))
    cases = {
        "rms_norm": lambda a, b: mx.sum(mx.fast.rms_norm(a, b, 1e-5) ** 2),
        "layer_norm": lambda a, b: mx.sum(mx.fast.layer_norm(a, b, b, 1e-5) ** 2),
        "rope": lambda a, b: mx.sum(mx.fast.rope(a, 8, traditional=False, base=10000.0,
                                                 scale=1.0, offset=3) * b),
        "rope freqs": lambda a, b: mx.sum(mx.fast.rope(a, 8, traditional=True, base=None,
                                                       scale=1.0, offset=3, freqs=freqs) * b),
        "sdpa": lambda a, b: mx.sum(mx.fast.scaled_dot_product_attention(
            a, k, k * b, scale=0.3, mask="causal") ** 2),
        "cross_entropy": lambda a, b: mx.sum(mx.fast.cross_entropy(a * b, tg)),
        "softmax axis 1": lambda a, b: mx.sum(mx.softmax(a * b, axis=1) ** 2),
    }
    for name, f in cases.items():
        G.reset_counts()
        with mx.stream(mx.gpu):
            vg, gg = mx.value_and_grad(f, argnums=(0, 1))(x, w)
            mx.eval(vg, gg)
        fb = G.fallback_counts()
        with mx.stream(mx.cpu):
            vc, gc = mx.value_and_grad(f, argnums=(0, 1))(x, w)
            mx.eval(vc, gc)
        np.testing.assert_allclose(np.asarray(vg), np.asarray(vc), rtol=2e-4, err_msg=name)
        for a, b in zip(gg, gc):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=1e-4,
                                       err_msg=name)
        assert not fb, (name, fb)
