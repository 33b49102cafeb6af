"""mx.fast (mx/core/fast.py): each fused op against a plain composition of mx ops (or a
NumPy reference for rope) over shapes and dtypes, MLX's dtype rules and error messages,
finite-difference gradients in float64, vmap against a Python loop, and the memory the
fused attention kernel needs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core import fast as fast_mod
from mx.core.primitives import REGISTRY
from gradcheck import check_grads, check_vmap

F = mx.fast
TOL = {"float32": (1e-5, 1e-5), "float64": (1e-12, 1e-12), "float16": (2e-3, 2e-3),
       "bfloat16": (1.6e-2, 1.6e-2)}
DTYPES = ["float32", "float16", "bfloat16", "float64"]


def _rng(seed=0):
    return np.random.default_rng(seed)


def _arr(shape, dtype="float32", seed=0, scale=1.0):
    data = _rng(seed).standard_normal(shape) * scale
    return mx.array(data, dtype=getattr(mx, dtype))


def _np64(x):
    return np.asarray(x.astype(mx.float64) if x.dtype != mx.bool_ else x).astype(np.float64)


def _close(got, want, dtype=None):
    dtype = dtype or got.dtype.name
    rtol, atol = TOL[dtype]
    assert got.dtype.name == dtype, (got.dtype, dtype)
    want = want if isinstance(want, np.ndarray) else _np64(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(_np64(got), want, rtol=rtol, atol=atol, equal_nan=True)


def _up(x):
    return x.astype(mx.float32) if x.dtype in (mx.float16, mx.bfloat16) else x


# ---------------------------------------------------------------------------------------
# plain compositions of mx ops (the references)
# ---------------------------------------------------------------------------------------
def rms_norm_ref(x, w, eps):
    out_dtype = x.dtype if w is None else mx.result_type(x, w)
    xf = _up(x.astype(out_dtype))
    y = xf * mx.rsqrt(mx.mean(xf * xf, axis=-1, keepdims=True) + eps)
    if w is not None:
        y = y * _up(w.astype(out_dtype))
    return y.astype(out_dtype)


def layer_norm_ref(x, w, b, eps):
    out_dtype = x.dtype
    if w is not None:
        out_dtype = mx.result_type(x, w) if b is None else mx.result_type(x, w, b)
    xf = _up(x.astype(out_dtype))
    mu = mx.mean(xf, axis=-1, keepdims=True)
    y = (xf - mu) * mx.rsqrt(mx.var(xf, axis=-1, keepdims=True) + eps)
    if w is not None:
        y = y * _up(w.astype(out_dtype))
    if b is not None:
        y = y + _up(b.astype(out_dtype))
    return y.astype(out_dtype)


def sdpa_ref(q, k, v, scale, mask=None, sinks=None):
    """Attention from matmul/softmax with the kv heads tiled for the query heads."""
    out_dtype = mx.result_type(q, k, v)
    q, k, v = (_up(x.astype(out_dtype)) for x in (q, k, v))
    g = q.shape[1] // k.shape[1]
    if g > 1:
        k = mx.repeat(k, g, axis=1)
        v = mx.repeat(v, g, axis=1)
    s = (q * scale) @ mx.swapaxes(k, -1, -2)
    tq, tk = q.shape[2], k.shape[2]
    lowest = float(np.finfo(np.float64 if s.dtype == mx.float64 else np.float32).min)
    if isinstance(mask, str):
        keep = mx.arange(tk)[None, :] <= mx.arange(tq)[:, None] + (tk - tq)
        s = mx.where(keep, s, mx.array(lowest, s.dtype))
    elif mask is not None and mask.dtype == mx.bool_:
        s = mx.where(mask, s, mx.array(lowest, s.dtype))
    elif mask is not None:
        s = s + mask.astype(s.dtype)
    if sinks is not None:
        sk = mx.broadcast_to(mx.reshape(sinks.astype(s.dtype), (1, -1, 1, 1)),
                             s.shape[:-1] + (1,))
        p = mx.softmax(mx.concatenate([sk, s], axis=-1), axis=-1, precise=True)[..., 1:]
    else:
        p = mx.softmax(s, axis=-1, precise=True)
    return (p @ v).astype(out_dtype)


def cross_entropy_ref(logits, targets):
    x = logits.astype(mx.float32)
    picked = mx.take_along_axis(x, mx.expand_dims(targets, -1), axis=-1)[..., 0]
    return mx.logsumexp(x, axis=-1) - picked


def rope_np(x, dims, traditional, base, scale, offset, freqs=None):
    """Rotary encoding in float64 NumPy, written from the definition."""
    x = np.asarray(x, dtype=np.float64)
    half = dims // 2
    inv = 1.0 / (base ** (np.arange(0, dims, 2) / dims)) if freqs is None else \
        1.0 / np.asarray(freqs, np.float64)
    off = np.asarray(offset, np.float64)
    t = np.arange(x.shape[-2])
    pos = off.reshape((-1,) + (1,) * (x.ndim - 2)) + t if off.ndim == 1 else off + t
    theta = (pos * scale)[..., None] * inv
    c, s = np.cos(theta), np.sin(theta)
    out = x.copy()
    idx1 = np.arange(0, dims, 2) if traditional else np.arange(half)
    idx2 = idx1 + 1 if traditional else np.arange(half, dims)
    x1, x2 = x[..., idx1], x[..., idx2]
    out[..., idx1] = x1 * c - x2 * s
    out[..., idx2] = x1 * s + x2 * c
    return out


# ---------------------------------------------------------------------------------------
# rms_norm and layer_norm
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 16), (2, 3, 33)])
def test_rms_norm_matches_composition(dtype, shape):
    x = _arr(shape, dtype, scale=3.0)
    w = _arr(shape[-1:], dtype, seed=1)
    for weight in (None, w):
        got = F.rms_norm(x, weight, 1e-5)
        _close(got, rms_norm_ref(x, weight, 1e-5).astype(mx.float64), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (3, 16), (2, 3, 33)])
def test_layer_norm_matches_composition(dtype, shape):
    x = _arr(shape, dtype, scale=3.0) + 2.0
    w = _arr(shape[-1:], dtype, seed=1)
    b = _arr(shape[-1:], dtype, seed=2)
    for weight in (None, w):
        for bias in (None, b):
            got = F.layer_norm(x, weight, bias, 1e-5)
            _close(got, layer_norm_ref(x, weight, bias, 1e-5).astype(mx.float64), dtype)


def test_norms_half_precision_accumulate_in_float32():
    # sums of squares overflow float16 (60000^2): MLX accumulates in float32 and so do we
    x = mx.array([[60000.0, 60000.0, 1.0]], dtype=mx.float16)
    np.testing.assert_allclose(np.asarray(F.rms_norm(x, None, 1e-5)).astype(np.float64),
                               [[1.2247, 1.2247, 2.04e-05]], rtol=2e-3)
    np.testing.assert_allclose(np.asarray(F.layer_norm(x, None, None, 1e-5)).astype(np.float64),
                               [[0.7071, 0.7071, -1.4142]], rtol=2e-3)


def test_norm_output_dtypes_follow_mlx():
    x16 = mx.ones((2, 4), dtype=mx.float16)
    w32 = mx.ones((4,))
    assert F.rms_norm(x16, None, 1e-5).dtype == mx.float16
    assert F.rms_norm(x16, w32, 1e-5).dtype == mx.float32
    assert F.rms_norm(mx.ones((2, 4)), mx.ones((4,), dtype=mx.int32), 1e-5).dtype == mx.float32
    assert F.rms_norm(mx.ones((2, 4), dtype=mx.int32), w32, 1e-5).dtype == mx.float32
    # layer_norm: the bias takes part in the promotion only together with a weight
    assert F.layer_norm(x16, None, w32, 1e-5).dtype == mx.float16
    assert F.layer_norm(x16, x16[0], w32, 1e-5).dtype == mx.float32
    assert F.layer_norm(x16, w32, w32.astype(mx.float64), 1e-5).dtype == mx.float64


def test_norms_on_empty_and_zero_inputs():
    assert F.rms_norm(mx.ones((0, 4)), None, 1e-5).shape == (0, 4)
    assert F.layer_norm(mx.ones((2, 0)), None, None, 1e-5).shape == (2, 0)
    assert np.isnan(np.asarray(F.rms_norm(mx.zeros((1, 4)), None, 0.0))).all()


def test_norms_are_lazy_and_validate_at_call():
    x = mx.ones((2, 4))
    y = F.rms_norm(x, None, 1e-5)
    assert y._prim is not None and y._prim.name == "rms_norm"
    assert F.layer_norm(x, None, None, 1e-5)._prim.name == "layer_norm"


NORM_ERRORS = [
    (lambda: F.rms_norm(mx.ones((2, 3)), mx.ones((4,)), 1e-5), ValueError,
     r"\[rms_norm\] \(\*weight\) must have the same size as the last dimension of x but has 4"),
    (lambda: F.rms_norm(mx.ones((2, 3)), mx.ones((1, 3)), 1e-5), ValueError,
     r"\[rms_norm\] \(\*weight\) must have 1 dimension but has 2 dimensions"),
    (lambda: F.rms_norm(mx.ones(()), None, 1e-5), ValueError,
     r"\[rms_norm\] Input must have at least 1 dimension but got input with 0"),
    (lambda: F.rms_norm(mx.ones((2,), dtype=mx.int32), None, 1e-5), ValueError,
     r"\[rms_norm\] Received unsupported type int32"),
    (lambda: F.rms_norm(mx.ones((2,), dtype=mx.complex64), None, 1e-5), ValueError,
     r"\[rms_norm\] Received unsupported type complex64"),
    (lambda: F.rms_norm([1.0, 2.0], None, 1e-5), TypeError, r"\[rms_norm\] x must be an array"),
    (lambda: F.rms_norm(mx.ones((2,)), 2.0, 1e-5), TypeError, r"\[rms_norm\] \(\*weight\) must"),
    (lambda: F.rms_norm(mx.ones((2,)), None, "a"), TypeError, r"\[rms_norm\] eps must be a float"),
    (lambda: F.layer_norm(mx.ones((2, 3)), None, mx.ones((2,)), 1e-5), ValueError,
     r"\[layer_norm\] bias must have the same size as the last dimension of x but has 2"),
    (lambda: F.layer_norm(mx.ones((2, 3)), mx.ones(()), None, 1e-5), ValueError,
     r"\[layer_norm\] weight must have 1 dimension but has 0 dimensions"),
    (lambda: F.layer_norm(mx.ones(()), None, None, 1e-5), ValueError,
     r"\[layer_norm\] Input must have at least 1 dimension"),
    (lambda: F.layer_norm(mx.ones((3,), dtype=mx.int32), None, None, 1e-5), ValueError,
     r"\[layer_norm\] Received unsupported type int32"),
]


@pytest.mark.parametrize("case", range(len(NORM_ERRORS)))
def test_norm_errors(case):
    fn, exc, msg = NORM_ERRORS[case]
    with pytest.raises(exc, match=msg):
        fn()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=3), st.floats(1e-6, 1.0),
       st.booleans())
def test_norms_property(shape, eps, with_weight):
    x = _arr(tuple(shape), seed=len(shape))
    w = _arr(tuple(shape[-1:]), seed=9) if with_weight else None
    _close(F.rms_norm(x, w, eps), rms_norm_ref(x, w, eps).astype(mx.float64))
    _close(F.layer_norm(x, w, w, eps), layer_norm_ref(x, w, w, eps).astype(mx.float64))


# ---------------------------------------------------------------------------------------
# rope
# ---------------------------------------------------------------------------------------
ROPE_OFFSETS = [0, 3, -2, "scalar_array", "vector"]


def _offset(kind, batch):
    if kind == "scalar_array":
        return mx.array(5), 5
    if kind == "vector":
        vals = np.arange(batch) * 3 + 1
        return mx.array(vals), vals
    return kind, kind


@pytest.mark.parametrize("traditional", [False, True])
@pytest.mark.parametrize("dims", [8, 4])
@pytest.mark.parametrize("offset", ROPE_OFFSETS)
def test_rope_matches_numpy(traditional, dims, offset):
    x = _arr((2, 3, 5, 8), seed=3)
    off, off_np = _offset(offset, 2)
    for scale in (1.0, 0.25):
        got = F.rope(x, dims, traditional=traditional, base=500.0, scale=scale, offset=off)
        _close(got, rope_np(np.asarray(x), dims, traditional, 500.0, scale, off_np))


@pytest.mark.parametrize("traditional", [False, True])
def test_rope_with_freqs_and_higher_rank(traditional):
    x = _arr((2, 2, 3, 4, 10), seed=4)
    freqs = mx.array(_rng(5).uniform(1, 20, 3).astype(np.float32))
    got = F.rope(x, 6, traditional=traditional, base=None, scale=1.5, offset=mx.array([2, 9]),
                 freqs=freqs)
    _close(got, rope_np(np.asarray(x), 6, traditional, None, 1.5, np.array([2, 9]),
                        np.asarray(freqs)))
    # integer frequencies are accepted (as float32)
    got = F.rope(x, 6, traditional=traditional, base=None, scale=1.0, offset=0,
                 freqs=mx.array([1, 2, 4]))
    _close(got, rope_np(np.asarray(x), 6, traditional, None, 1.0, 0, np.array([1, 2, 4])))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_rope_dtypes(dtype):
    x = _arr((1, 2, 40, 8), dtype, seed=6)
    got = F.rope(x, 8, traditional=False, base=10000.0, scale=1.0, offset=1000)
    assert got.dtype.name == dtype
    _close(got, rope_np(_np64(x), 8, False, 10000.0, 1.0, 1000), dtype)


def test_rope_large_positions_are_computed_in_double():
    # angles of ~1e6 radians keep their accuracy (MLX computes them in float32)
    x = _arr((1, 1, 4, 8), "float64", seed=7)
    got = F.rope(x, 8, traditional=False, base=10000.0, scale=1.0, offset=10 ** 6)
    np.testing.assert_allclose(np.asarray(got), rope_np(np.asarray(x), 8, False, 1e4, 1.0, 10 ** 6),
                               rtol=1e-9, atol=1e-9)


ROPE_KW = dict(traditional=False, base=10000.0, scale=1.0, offset=0)
ROPE_ERRORS = [
    (lambda: F.rope(mx.ones((5, 8)), 8, **ROPE_KW), ValueError,
     r"\[rope\] Input must have at least 3 dimensions but got input with 2 dimensions"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 5, **ROPE_KW), ValueError,
     r"\[rope\] dims must be even but got 5"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 10, **ROPE_KW), ValueError,
     r"\[rope\] dims must not exceed the input's last dimension \(8\) but got 10"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 0, **ROPE_KW), ValueError,
     r"\[rope\] dims must be positive but got 0"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 8.0, **ROPE_KW), TypeError,
     r"\[rope\] dims must be an int"),
    (lambda: F.rope(mx.ones((1, 5, 8), dtype=mx.int32), 8, **ROPE_KW), ValueError,
     r"\[rope\] Input must be a floating type but got int32"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 8, traditional=False, base=None, scale=1.0, offset=0),
     ValueError, r"\[rope\] Neither base nor freqs has a value"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 8, traditional=False, base=1.0, scale=1.0, offset=0,
                    freqs=mx.ones((4,))), ValueError,
     r"\[rope\] Only one of base or freqs can have a value"),
    (lambda: F.rope(mx.ones((1, 5, 8)), 8, traditional=False, base=None, scale=1.0, offset=0,
                    freqs=mx.ones((3,))), ValueError,
     r"\[rope\] freqs must be one dimensional with size 4 but got shape \(3\)"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, traditional=False, base=1e4, scale=1.0,
                    offset=mx.array([1, 2, 3])), ValueError,
     r"\[rope\] offset must be a scalar or vector with 2 elements but has shape \(3\)"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, traditional=False, base=1e4, scale=1.0,
                    offset=mx.array([[1, 2]])), ValueError,
     r"\[rope\] offset must have at most one dimension but has shape \(1,2\)"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, traditional=False, base=1e4, scale=1.0,
                    offset=mx.array(2.5)), ValueError,
     r"\[rope\] offset must be an integer but got type float32"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, traditional=False, base=1e4, scale=1.0, offset=2.5),
     ValueError, r"\[rope\] offset must be an integer"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, traditional=False, base=1e4, scale=1.0, offset="a"),
     TypeError, r"\[rope\] offset must be an int or an integer array"),
    (lambda: F.rope(mx.ones((2, 5, 8)), 8, base=1e4, scale=1.0, offset=0), TypeError,
     r"traditional"),
]


@pytest.mark.parametrize("case", range(len(ROPE_ERRORS)))
def test_rope_errors(case):
    fn, exc, msg = ROPE_ERRORS[case]
    with pytest.raises(exc, match=msg):
        fn()


# ---------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------------------
def _qkv(b=2, nq=4, nk=2, tq=3, tk=5, d=8, dv=6, dtype="float32", seed=0):
    return (_arr((b, nq, tq, d), dtype, seed), _arr((b, nk, tk, d), dtype, seed + 1),
            _arr((b, nk, tk, dv), dtype, seed + 2))


@pytest.mark.parametrize("heads", [(4, 4), (4, 2), (6, 1)])
@pytest.mark.parametrize("tq,tk", [(3, 5), (5, 5), (1, 7), (7, 4)])
def test_sdpa_matches_composition(heads, tq, tk):
    q, k, v = _qkv(nq=heads[0], nk=heads[1], tq=tq, tk=tk)
    for mask in (None, "causal"):
        _close(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mask),
               sdpa_ref(q, k, v, 0.3, mask).astype(mx.float64))


@pytest.mark.parametrize("mshape", [(3, 5), (5,), (), (1, 1, 3, 5), (2, 1, 1, 5), (2, 4, 3, 5),
                                    (4, 1, 5)])
def test_sdpa_array_masks(mshape):
    q, k, v = _qkv()
    rng = _rng(3)
    bool_mask = mx.array(rng.random(mshape) > 0.3)
    add_mask = mx.array(rng.standard_normal(mshape).astype(np.float32))
    int_mask = mx.array(rng.integers(-3, 3, mshape).astype(np.int32))
    for m in (bool_mask, add_mask, int_mask):
        _close(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=m),
               sdpa_ref(q, k, v, 0.3, m).astype(mx.float64))


def test_sdpa_sinks():
    q, k, v = _qkv()
    sinks = _arr((4,), seed=8)
    for mask in (None, "causal", mx.array(_rng(1).random((3, 5)) > 0.5)):
        _close(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mask, sinks=sinks),
               sdpa_ref(q, k, v, 0.3, mask, sinks).astype(mx.float64))
    # integer sinks promote to the output type
    _close(F.scaled_dot_product_attention(q, k, v, scale=0.3, sinks=mx.array([0, 1, 2, 3])),
           sdpa_ref(q, k, v, 0.3, None, mx.array([0.0, 1, 2, 3])).astype(mx.float64))


def test_sdpa_fully_masked_rows_follow_mlx():
    q, k, v = _qkv(b=1, nq=1, nk=1)
    keep = np.zeros((3, 5), bool)
    keep[1] = True
    mean_v = np.asarray(v)[0, 0].mean(axis=0)
    out = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mx.array(keep)))
    # a boolean mask that hides every key: uniform attention (the mean of the values)
    np.testing.assert_allclose(out[0, 0, 0], mean_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 2], mean_v, rtol=1e-5, atol=1e-6)
    # ... but a sink then takes all the weight
    out = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=mx.array(keep),
                                                    sinks=mx.zeros((1,))))
    np.testing.assert_array_equal(out[0, 0, 0], 0.0)
    # an additive -inf mask over a whole row gives nan, as in MLX
    add = mx.array(np.where(keep, 0.0, -np.inf).astype(np.float32))
    out = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=add))
    assert np.isnan(out[0, 0, 0]).all() and np.isfinite(out[0, 0, 1]).all()
    # causal with more queries than keys: the first queries see no key
    q7 = _arr((1, 1, 7, 8), seed=5)
    out = np.asarray(F.scaled_dot_product_attention(q7, k, v, scale=0.3, mask="causal"))
    np.testing.assert_allclose(out[0, 0, 0], mean_v, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[0, 0, 1], mean_v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_sdpa_dtypes(dtype):
    q, k, v = _qkv(dtype=dtype)
    m = mx.array(_rng(2).standard_normal((3, 5)), dtype=getattr(mx, dtype))
    got = F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=m)
    _close(got, sdpa_ref(q, k, v, 0.3, m).astype(mx.float64), dtype)
    if dtype != "float64":
        # the kernel computes halves in float32: as a float32 evaluation rounded once
        q32, k32, v32, m32 = (x.astype(mx.float32) for x in (q, k, v, m))
        _close(got, sdpa_ref(q32, k32, v32, 0.3, m32).astype(mx.float64), dtype)


def test_sdpa_mixed_dtypes_promote():
    q, k, v = _qkv()
    out = F.scaled_dot_product_attention(q.astype(mx.float16), k, v, scale=0.3)
    assert out.dtype == mx.float32
    _close(out, sdpa_ref(q.astype(mx.float16), k, v, 0.3).astype(mx.float64))


def test_fast_ops_accept_stream_and_force_fused():
    q, k, v = _qkv()
    want = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3))
    got = F.scaled_dot_product_attention(q, k, v, scale=0.3, force_fused=True, stream=mx.cpu)
    np.testing.assert_array_equal(np.asarray(got), want)
    x = _arr((2, 3, 4))
    for out in (F.rms_norm(x, None, 1e-5, stream=mx.cpu),
                F.layer_norm(x, None, None, 1e-5, stream=mx.cpu),
                F.rope(x, 4, traditional=False, base=10.0, scale=1.0, offset=0, stream=mx.cpu),
                F.cross_entropy(x, mx.zeros((2, 3), mx.int32), stream=mx.cpu)):
        mx.eval(out)
    with pytest.raises(TypeError, match="stream"):
        F.rms_norm(x, None, 1e-5, stream="cpu")


def test_sdpa_empty_sequences():
    q, k, v = _qkv(tk=0)
    np.testing.assert_array_equal(np.asarray(F.scaled_dot_product_attention(q, k, v, scale=1.0)),
                                  0.0)
    q, k, v = _qkv(tq=0)
    assert F.scaled_dot_product_attention(q, k, v, scale=1.0).shape == (2, 4, 0, 6)


def test_sdpa_blocks_match_one_pass(monkeypatch):
    q, k, v = _qkv(b=5, tq=6, tk=9)
    m = mx.array(_rng(4).random((5, 1, 6, 9)) > 0.4)
    sinks = _arr((4,), seed=3)
    whole = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=m, sinks=sinks))
    # a tiny block budget: one batch entry per block
    monkeypatch.setattr(fast_mod, "_SDPA_BLOCK_BYTES", 16)
    blocked = np.asarray(F.scaled_dot_product_attention(q, k, v, scale=0.3, mask=m, sinks=sinks))
    np.testing.assert_array_equal(blocked, whole)


def test_sdpa_memory_is_bounded():
    # fused: one float32 score buffer per block, no softmax temporaries of its size
    b, n, t, d = 4, 8, 256, 32
    q, k, v = (_arr((b, n, t, d), seed=s) for s in range(3))
    mx.eval(q, k, v)
    scores = b * n * t * t * 4
    mx.reset_peak_memory()
    base = mx.get_active_memory()
    mx.eval(F.scaled_dot_product_attention(q, k, v, scale=0.2, mask="causal"))
    used = mx.get_peak_memory() - base
    assert used < 1.5 * scores, (used, scores)


SDPA_ERRORS = [
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0, mask="foo"), ValueError,
     r"invalid mask option 'foo'. Must be 'causal', or an array"),
    (lambda q, k, v: F.scaled_dot_product_attention(q[0], k[0], v[0], scale=1.0), ValueError,
     r"input with shape \(4,3,8\) expected to be rank 4"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k[:1], v[:1], scale=1.0), ValueError,
     r"mismatching batch dimension for input with shape \(1,2,5,8\)"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k[..., :7], v, scale=1.0), ValueError,
     r"query, keys expected to have matching last dimension; found query shape \(2,4,3,8\) for "
     r"keys shape \(2,2,5,7\)"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v[:, :1], scale=1.0), ValueError,
     r"keys, values expected to have matching n_kv_heads; found keys with n_heads 2 for values "
     r"with n_heads 1"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v[:, :, :4], scale=1.0), ValueError,
     r"keys, values expected to have matching sequence length"),
    (lambda q, k, v: F.scaled_dot_product_attention(q[:, :3], k, v, scale=1.0), ValueError,
     r"n_heads must be a multiple of n_kv_heads, found n_heads 3 for n_kv_heads 2"),
    (lambda q, k, v: F.scaled_dot_product_attention(*(x.astype(mx.int32) for x in (q, k, v)),
                                                    scale=1.0), ValueError,
     r"Received unsupported type int32"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0,
                                                    mask=mx.ones((1, 1, 1, 3, 5), mx.bool_)),
     ValueError, r"the mask with shape \(1,1,1,3,5\) expected to have at most rank 4"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0,
                                                    mask=mx.ones((4, 5), mx.bool_)),
     ValueError, r"\[scaled_dot_product_attention\] Shapes \(4,5\) and \(2,4,3,5\) cannot be "
                 r"broadcast"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0,
                                                    mask=mx.ones((2, 2, 3, 5), mx.bool_)),
     ValueError, r"Shapes \(2,2,3,5\) and \(2,4,3,5\) cannot be broadcast"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0,
                                                    mask=mx.ones((3, 5), mx.float64)),
     ValueError, r"Mask type must promote to output type float32"),
    (lambda q, k, v: F.scaled_dot_product_attention(
        *(x.astype(mx.float16) for x in (q, k, v)), scale=1.0, mask=mx.ones((3, 5))),
     ValueError, r"Mask type must promote to output type float16"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0, sinks=mx.ones((2,))),
     ValueError, r"Received invalid shape for sinks \(2\)"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0,
                                                    sinks=mx.ones((4,), mx.complex64)),
     ValueError, r"Type of sinks must promote to output type float32"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale="a"), TypeError,
     r"scale must be a float"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=1.0, mask=[[True]]),
     TypeError, r"mask must be an array"),
    (lambda q, k, v: F.scaled_dot_product_attention(q, k, v), TypeError, r"scale"),
]


@pytest.mark.parametrize("case", range(len(SDPA_ERRORS)))
def test_sdpa_errors(case):
    fn, exc, msg = SDPA_ERRORS[case]
    q, k, v = _qkv()
    with pytest.raises(exc, match=msg):
        fn(q, k, v)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2), st.sampled_from([(1, 1), (2, 1), (4, 2), (3, 3)]), st.integers(1, 5),
       st.integers(1, 6), st.sampled_from([None, "causal", "bool", "add"]), st.booleans())
def test_sdpa_property(b, heads, tq, tk, mask_kind, with_sinks):
    q, k, v = _qkv(b=b, nq=heads[0], nk=heads[1], tq=tq, tk=tk, d=4, dv=3, seed=tq * 7 + tk)
    rng = _rng(tq + tk)
    mask = mask_kind
    if mask_kind == "bool":
        mask = mx.array(rng.random((tq, tk)) > 0.3)
    elif mask_kind == "add":
        mask = mx.array(rng.standard_normal((b, 1, tq, tk)).astype(np.float32))
    sinks = _arr((heads[0],), seed=2) if with_sinks else None
    _close(F.scaled_dot_product_attention(q, k, v, scale=0.5, mask=mask, sinks=sinks),
           sdpa_ref(q, k, v, 0.5, mask, sinks).astype(mx.float64))


# ---------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(7,), (4, 10), (2, 3, 5)])
def test_cross_entropy_matches_composition(dtype, shape):
    logits = _arr(shape, dtype, scale=3.0)
    targets = mx.array(_rng(1).integers(0, shape[-1], shape[:-1]).astype(np.int32))
    got = F.cross_entropy(logits, targets)
    assert got.dtype == mx.float32 and got.shape == shape[:-1]
    # computed in float32 (float64 for float64 logits), whatever the logits' precision
    want = cross_entropy_ref(logits.astype(mx.float64), targets)
    _close(got, want.astype(mx.float64), "float32")


def test_cross_entropy_targets():
    logits = mx.array([[1.0, 2.0, 3.0], [0.0, 0.0, 5.0]])
    want = np.asarray(cross_entropy_ref(logits, mx.array([0, 2])))
    for dt in (mx.uint8, mx.int16, mx.int64, mx.uint64):
        np.testing.assert_allclose(np.asarray(F.cross_entropy(logits, mx.array([0, 2], dt))), want,
                                   rtol=1e-5)
    # negative indices count from the end; out-of-range ones give nan
    np.testing.assert_allclose(np.asarray(F.cross_entropy(logits, mx.array([-3, -1]))), want,
                               rtol=1e-5)
    got = np.asarray(F.cross_entropy(logits, mx.array([3, -4])))
    assert np.isnan(got).all()
    # large logits stay finite (shifted by the max)
    np.testing.assert_allclose(np.asarray(F.cross_entropy(mx.array([[1000.0, 0.0]]),
                                                          mx.array([1]))), [1000.0])
    assert F.cross_entropy(mx.ones((0, 3)), mx.zeros((0,), mx.int32)).shape == (0,)


CE_ERRORS = [
    (lambda: F.cross_entropy(mx.ones((2, 3)), mx.array([0.0, 2.0])), ValueError,
     r"\[cross_entropy\] targets must be integer class indices but got float32"),
    (lambda: F.cross_entropy(mx.ones((2, 3)), mx.array([True, False])), ValueError,
     r"targets must be integer class indices but got bool"),
    (lambda: F.cross_entropy(mx.ones((2, 3)), mx.array([0, 1, 2])), ValueError,
     r"targets shape \(3\) does not match logits shape \(2,3\) with the last axis removed"),
    (lambda: F.cross_entropy(mx.ones(()), mx.array(0)), ValueError,
     r"logits must have at least 1 dimension but got input with 0 dimensions"),
    (lambda: F.cross_entropy(mx.ones((2, 3), mx.int32), mx.array([0, 1])), ValueError,
     r"Received unsupported logits type int32"),
    (lambda: F.cross_entropy(mx.ones((2, 0)), mx.array([0, 0])), ValueError,
     r"logits must have at least one class"),
    (lambda: F.cross_entropy(mx.ones((2, 3)), [0, 1]), TypeError, r"targets must be an array"),
]


@pytest.mark.parametrize("case", range(len(CE_ERRORS)))
def test_cross_entropy_errors(case):
    fn, exc, msg = CE_ERRORS[case]
    with pytest.raises(exc, match=msg):
        fn()


# ---------------------------------------------------------------------------------------
# gradients (float64 finite differences)
# ---------------------------------------------------------------------------------------
def _f64(shape, seed, scale=1.0, shift=0.0):
    return mx.array(_rng(seed).standard_normal(shape) * scale + shift, dtype=mx.float64)


def test_rms_norm_grads():
    x, w = _f64((3, 5), 0), _f64((5,), 1)
    check_grads(lambda x, w: F.rms_norm(x, w, 1e-3), [x, w])
    check_grads(lambda x: F.rms_norm(x, None, 1e-3), [x])


def test_layer_norm_grads():
    x, w, b = _f64((2, 3, 6), 0, shift=0.5), _f64((6,), 1), _f64((6,), 2)
    check_grads(lambda x, w, b: F.layer_norm(x, w, b, 1e-3), [x, w, b])
    check_grads(lambda x, b: F.layer_norm(x, None, b, 1e-3), [x, b])
    check_grads(lambda x: F.layer_norm(x, None, None, 1e-3), [x])


@pytest.mark.parametrize("traditional", [False, True])
def test_rope_grads(traditional):
    x = _f64((2, 2, 4, 6), 0)
    kw = dict(traditional=traditional, scale=0.7)
    check_grads(lambda x: F.rope(x, 4, base=100.0, offset=3, **kw), [x])
    check_grads(lambda x: F.rope(x, 6, base=100.0, offset=mx.array([1, 4]), **kw), [x])
    freqs = mx.array([1.5, 4.0], dtype=mx.float64)
    check_grads(lambda x, f: F.rope(x, 4, base=None, offset=mx.array([2, 0]), freqs=f, **kw),
                [x, freqs])


@pytest.mark.parametrize("mask_kind", [None, "causal", "bool", "add"])
@pytest.mark.parametrize("sinks", [False, True])
def test_sdpa_grads(mask_kind, sinks):
    q, k, v = _f64((1, 4, 3, 4), 0), _f64((1, 2, 5, 4), 1), _f64((1, 2, 5, 3), 2)
    s = _f64((4,), 3)
    extra = []
    if mask_kind == "bool":
        keep = mx.array(_rng(4).random((3, 5)) > 0.4)
    elif mask_kind == "add":
        extra.append(_f64((1, 4, 1, 5), 5))
    if sinks:
        extra.append(s)

    def f(q, k, v, *rest):
        rest = list(rest)
        mask = mask_kind
        if mask_kind == "bool":
            mask = keep
        elif mask_kind == "add":
            mask = rest.pop(0)
        return F.scaled_dot_product_attention(q, k, v, scale=0.6, mask=mask,
                                              sinks=rest.pop(0) if sinks else None)

    check_grads(f, [q, k, v] + extra)


def test_cross_entropy_grads_match_softmax_minus_onehot():
    logits = _f64((3, 5), 0)
    targets = mx.array([4, 0, -2])
    p = np.exp(np.asarray(logits))
    p /= p.sum(-1, keepdims=True)
    onehot = np.eye(5)[[4, 0, 3]]
    ct = np.array([0.5, -1.0, 2.0])
    _, (g,) = mx.vjp(lambda x: F.cross_entropy(x, targets), [logits], [mx.array(ct, mx.float32)])
    assert g.dtype == mx.float64 and g.shape == (3, 5)
    np.testing.assert_allclose(np.asarray(g), ct[:, None] * (p - onehot), rtol=1e-6, atol=1e-7)
    t = _rng(1).standard_normal((3, 5))
    _, (jv,) = mx.jvp(lambda x: F.cross_entropy(x, targets), [logits], [mx.array(t, mx.float64)])
    np.testing.assert_allclose(np.asarray(jv), ((p - onehot) * t).sum(-1), rtol=1e-5)
    # through mx.grad, in half precision too
    g16 = mx.grad(lambda x: F.cross_entropy(x, targets).sum())(logits.astype(mx.float16))
    assert g16.dtype == mx.float16
    np.testing.assert_allclose(np.asarray(g16).astype(np.float64), p - onehot, atol=2e-3)


def test_grads_keep_half_precision_dtypes():
    x = _arr((2, 8), "bfloat16")
    w = _arr((8,), "float16", seed=1)
    gx, gw = mx.grad(lambda x, w: F.rms_norm(x, w, 1e-5).sum(), argnums=(0, 1))(x, w)
    assert gx.dtype == mx.bfloat16 and gw.dtype == mx.float16
    q, k, v = _qkv(dtype="float16")
    gq = mx.grad(lambda q: F.scaled_dot_product_attention(q, k, v, scale=0.3).sum())(q)
    assert gq.dtype == mx.float16 and gq.shape == q.shape
    want = mx.grad(lambda q: sdpa_ref(q, k, v, 0.3).sum())(q.astype(mx.float32))
    np.testing.assert_allclose(np.asarray(gq).astype(np.float64), np.asarray(want), atol=5e-3)


def test_second_derivative_of_rms_norm():
    x = _f64((2, 4), 0)

    def gsum(x):
        return mx.grad(lambda y: (F.rms_norm(y, None, 1e-3) ** 2 * mx.arange(4)).sum())(x).sum()

    check_grads(gsum, [x], rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------
def test_norms_vmap():
    x, w, b = _arr((3, 2, 5)), _arr((3, 5), seed=1), _arr((5,), seed=2)
    check_vmap(lambda x: F.rms_norm(x, None, 1e-5), [x])
    check_vmap(lambda x, w: F.rms_norm(x, w, 1e-5), [x, w], in_axes=[0, 0])
    check_vmap(lambda x, w: F.rms_norm(x, w, 1e-5), [x, b], in_axes=[0, None])
    check_vmap(lambda x, w: F.rms_norm(x, w, 1e-5), [x[0], w], in_axes=[None, 0])
    check_vmap(lambda x: F.layer_norm(x, b, b, 1e-5), [mx.moveaxis(x, 0, 2)], in_axes=2)
    check_vmap(lambda x, w, b: F.layer_norm(x, w, b, 1e-5), [x, w, b], in_axes=[0, 0, None])
    check_vmap(lambda x, b: F.layer_norm(x, None, b, 1e-5), [mx.moveaxis(x, 0, 1), w],
               in_axes=[1, 0])


def test_rope_vmap():
    x = _arr((3, 2, 4, 6))
    kw = dict(traditional=False, base=100.0, scale=1.0)
    check_vmap(lambda x: F.rope(x, 4, offset=2, **kw), [x])
    check_vmap(lambda x: F.rope(x, 4, offset=mx.array([1, 5, 2]), **kw), [x], in_axes=1)
    off = mx.array([[0, 1], [2, 3], [4, 5]])
    check_vmap(lambda x, o: F.rope(x, 4, offset=o, **kw), [x, off], in_axes=[0, 0])
    check_vmap(lambda x, o: F.rope(x, 4, offset=o, **kw), [x[0], mx.array([3, 7, 1])],
               in_axes=[None, 0])
    freqs = mx.array(_rng(0).uniform(1, 5, (3, 2)).astype(np.float32))
    check_vmap(lambda x, f: F.rope(x, 4, traditional=True, base=None, scale=1.0, offset=1,
                                   freqs=f), [x, freqs], in_axes=[0, 0])


@pytest.mark.parametrize("mask_kind", [None, "causal", "bool", "add", "add_batched"])
def test_sdpa_vmap(mask_kind):
    V = 3
    q = _arr((V, 2, 4, 3, 4))
    k = _arr((V, 2, 2, 5, 4), seed=1)
    v = _arr((2, 2, 5, 3), seed=2)
    sinks = _arr((V, 4), seed=3)
    rng = _rng(5)
    masks = {"bool": mx.array(rng.random((2, 4, 3, 5)) > 0.3),
             "add": mx.array(rng.standard_normal((3, 5)).astype(np.float32)),
             "add_batched": mx.array(rng.standard_normal((V, 1, 5)).astype(np.float32))}

    def f(q, k, v, s, m):
        mask = mask_kind if m is None else m
        return F.scaled_dot_product_attention(q, k, v, scale=0.5, mask=mask, sinks=s)

    m = masks.get(mask_kind)
    m_axis = 0 if mask_kind == "add_batched" else None
    if m is None:
        check_vmap(lambda q, k, v, s: f(q, k, v, s, None), [q, k, v, sinks],
                   in_axes=[0, 0, None, 0], atol=1e-5)
    else:
        check_vmap(f, [q, k, v, sinks, m], in_axes=[0, 0, None, 0, m_axis], atol=1e-5)
    # the mapped axis elsewhere, and kv shared
    shared = mask_kind if m is None else m if m_axis is None else m[0]
    check_vmap(lambda q: F.scaled_dot_product_attention(q, k[0], v, scale=0.5, mask=shared),
               [mx.moveaxis(q, 0, 3)], in_axes=3, atol=1e-5)


def test_cross_entropy_vmap():
    logits = _arr((3, 4, 6))
    targets = mx.array(_rng(0).integers(0, 6, (3, 4)))
    check_vmap(F.cross_entropy, [logits, targets])
    check_vmap(F.cross_entropy, [logits, targets[0]], in_axes=[0, None])
    check_vmap(F.cross_entropy, [logits[0], mx.swapaxes(targets, 0, 1)], in_axes=[None, 1])


def test_grad_of_vmapped_rms_norm():
    x = _f64((3, 4), 0)
    check_grads(lambda x: mx.vmap(lambda r: F.rms_norm(r, None, 1e-3))(x), [x])


def test_every_fast_primitive_has_rules():
    names = ["rms_norm", "layer_norm", "rope", "scaled_dot_product_attention", "cross_entropy"]
    for n in names:
        p = REGISTRY[n]
        assert p.vjp is not None and p.jvp is not None and p.vmap is not None, n


def test_fast_namespace():
    assert set(F.__all__) == {"rms_norm", "layer_norm", "rope", "scaled_dot_product_attention",
                              "cross_entropy"}
