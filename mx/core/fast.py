"""mx.fast: fused versions of common building blocks of neural networks (rms_norm,
layer_norm, rope, scaled_dot_product_attention, cross_entropy).

Each op is one primitive whose NumPy kernel does the whole computation with as few passes
and temporaries as it can: a normalization reads its input once for the statistics and
writes the output in place; attention is two matrix products with the softmax done in
place on the score buffer (processed in batch blocks so that buffer stays bounded).
float16 and bfloat16 inputs are computed in float32 and rounded once at the end.

The transformation rules are written out by hand with public mx ops (so they can be
differentiated and batched again).
"""
from __future__ import annotations

import numbers
import operator

import numpy as np

from mx.core._array import array, broadcast_shapes_pair, make_node, promote_types, shape_str
from mx.core.dtypes import bfloat16, float32
from mx.core.primitives import declare

_HALF = (np.dtype(np.float16), bfloat16.np)
_FLOAT_NAMES = ("float16", "bfloat16", "float32", "float64")
# scores computed at once in attention; larger problems are processed in batch blocks
_SDPA_BLOCK_BYTES = 64 << 20


def _mx():
    import mx.core as mx
    return mx


def _ct(npd):
    """The NumPy dtype a kernel computes in for inputs of dtype `npd`."""
    return np.dtype(np.float32) if npd in _HALF else np.dtype(npd)


def _is_float(d):
    return d.name in _FLOAT_NAMES


def _check_array(x, op, what):
    if not isinstance(x, array):
        raise TypeError(f"[{op}] {what} must be an array, got {type(x).__name__}.")
    return x


def _check_real(x, op, what):
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"[{op}] {what} must be a float, got {type(x).__name__}.")
    return float(x)


def _cast(x, d, stream):
    return x if x.dtype is d else x.astype(d, stream=stream)


def _up(x):
    """An mx array in float32 when it is half precision (rules compute like kernels)."""
    return x.astype(float32) if x.dtype.np in _HALF else x


# ---------------------------------------------------------------------------------------
# rms_norm and layer_norm
# ---------------------------------------------------------------------------------------
def _rms_norm_kernel(x, *w, eps):
    ct = _ct(x.dtype)
    n = x.shape[-1]
    # the output buffer doubles as the float32 copy of a half-precision input
    out = x.astype(ct) if x.dtype != ct else np.array(x, dtype=ct, copy=True)
    ms = np.asarray(np.vecdot(out, out))[..., None]
    if n:
        ms /= n
    ms += eps
    r = np.sqrt(ms, out=ms)
    np.reciprocal(r, out=r)
    out *= r
    if w:
        out *= w[0].astype(ct, copy=False)
    return out


def _layer_norm_kernel(x, *wb, eps, has_weight, has_bias):
    ct = _ct(x.dtype)
    n = x.shape[-1]
    mean = np.mean(x, axis=-1, keepdims=True, dtype=ct) if n else np.zeros(x.shape[:-1] + (1,), ct)
    out = np.subtract(x, mean, dtype=ct)
    var = np.asarray(np.vecdot(out, out))[..., None]
    if n:
        var /= n
    var += eps
    r = np.sqrt(var, out=var)
    np.reciprocal(r, out=r)
    out *= r
    it = iter(wb)
    if has_weight:
        out *= next(it).astype(ct, copy=False)
    if has_bias:
        out += next(it).astype(ct, copy=False)
    return out


RMS_NORM = declare("rms_norm", cpu=_rms_norm_kernel,
                   doc="x / sqrt(mean(x^2, -1) + eps) * weight")
LAYER_NORM = declare("layer_norm", cpu=_layer_norm_kernel,
                     doc="(x - mean) / sqrt(var + eps) * weight + bias over the last axis")


def _check_norm_param(p, x, op, what):
    _check_array(p, op, what)
    if p.ndim != 1:
        raise ValueError(f"[{op}] {what} must have 1 dimension but has {p.ndim} dimensions.")
    if p.shape[0] != x.shape[-1]:
        raise ValueError(f"[{op}] {what} must have the same size as the last dimension of x "
                         f"but has {p.shape[0]} elements.")
    return p


def _check_norm_input(x, op):
    _check_array(x, op, "x")
    if x.ndim == 0:
        raise ValueError(f"[{op}] Input must have at least 1 dimension but got input with "
                         "0 dimensions.")


def rms_norm(x, weight, eps, *, stream=None):
    """Root-mean-square normalization over the last axis:
    ``x / sqrt(mean(x**2, axis=-1) + eps) * weight``.

    `weight` is a 1-D array as long as x's last axis, or None for no scaling. The result has
    x's dtype promoted with weight's; half-precision inputs are accumulated in float32.
    """
    op = "rms_norm"
    _check_norm_input(x, op)
    eps = _check_real(eps, op, "eps")
    if weight is not None:
        _check_norm_param(weight, x, op, "(*weight)")
        out = promote_types(x.dtype, weight.dtype)
    else:
        out = x.dtype
    if not _is_float(out):
        raise ValueError(f"[{op}] Received unsupported type {out.name}.")
    inputs = (_cast(x, out, stream),) if weight is None else \
        (_cast(x, out, stream), _cast(weight, out, stream))
    return make_node(RMS_NORM, inputs, {"eps": eps}, x.shape, out, stream)


def layer_norm(x, weight, bias, eps, *, stream=None):
    """Layer normalization over the last axis: ``(x - mean) / sqrt(var + eps) * weight +
    bias``.

    `weight` and `bias` are 1-D arrays as long as x's last axis, or None. The result has x's
    dtype promoted with weight's (and bias's when weight is given), as in MLX.
    """
    op = "layer_norm"
    _check_norm_input(x, op)
    eps = _check_real(eps, op, "eps")
    if weight is not None:
        _check_norm_param(weight, x, op, "weight")
    if bias is not None:
        _check_norm_param(bias, x, op, "bias")
    out = x.dtype
    if weight is not None:
        out = promote_types(out, weight.dtype)
        if bias is not None:
            out = promote_types(out, bias.dtype)
    if not _is_float(out):
        raise ValueError(f"[{op}] Received unsupported type {out.name}.")
    inputs = [_cast(x, out, stream)]
    if weight is not None:
        inputs.append(_cast(weight, out, stream))
    if bias is not None:
        inputs.append(_cast(bias, out, stream))
    params = {"eps": eps, "has_weight": weight is not None, "has_bias": bias is not None}
    return make_node(LAYER_NORM, tuple(inputs), params, x.shape, out, stream)


def _sum_to_last(t):
    """Sum over every axis but the last (a cotangent for a 1-D weight or bias)."""
    return t if t.ndim == 1 else _mx().sum(t, axis=tuple(range(t.ndim - 1)))


def _rms_norm_vjp(primals, ct, out, eps):
    mx = _mx()
    x = _up(primals[0])
    g = _up(ct)
    r = mx.rsqrt(mx.mean(x * x, axis=-1, keepdims=True) + eps)
    gw = g * _up(primals[1]) if len(primals) > 1 else g
    dx = r * gw - x * (r * r * r) * mx.mean(gw * x, axis=-1, keepdims=True)
    res = [dx]
    if len(primals) > 1:
        res.append(_sum_to_last(g * x * r))
    return res


def _rms_norm_jvp(primals, tangents, out, eps):
    mx = _mx()
    x = _up(primals[0])
    r = mx.rsqrt(mx.mean(x * x, axis=-1, keepdims=True) + eps)
    tx = tangents[0]
    res = None
    if tx is not None:
        tx = _up(tx)
        res = tx * r - x * (r * r * r) * mx.mean(x * tx, axis=-1, keepdims=True)
        if len(primals) > 1:
            res = res * _up(primals[1])
    if len(primals) > 1 and tangents[1] is not None:
        t = x * r * _up(tangents[1])
        res = t if res is None else res + t
    return res.astype(out.dtype)


def _layer_norm_parts(x, eps):
    mx = _mx()
    mu = mx.mean(x, axis=-1, keepdims=True)
    xc = x - mu
    r = mx.rsqrt(mx.mean(xc * xc, axis=-1, keepdims=True) + eps)
    return xc * r, r


def _layer_norm_vjp(primals, ct, out, eps, has_weight, has_bias):
    mx = _mx()
    x = _up(primals[0])
    g = _up(ct)
    xhat, r = _layer_norm_parts(x, eps)
    gw = g * _up(primals[1]) if has_weight else g
    dx = r * (gw - mx.mean(gw, axis=-1, keepdims=True)
              - xhat * mx.mean(gw * xhat, axis=-1, keepdims=True))
    res = [dx]
    if has_weight:
        res.append(_sum_to_last(g * xhat))
    if has_bias:
        res.append(_sum_to_last(g))
    return res


def _layer_norm_jvp(primals, tangents, out, eps, has_weight, has_bias):
    mx = _mx()
    x = _up(primals[0])
    xhat, r = _layer_norm_parts(x, eps)
    res = None
    tx = tangents[0]
    k = 1
    w = None
    if has_weight:
        w = _up(primals[k])
        tw = tangents[k]
        k += 1
        if tw is not None:
            res = xhat * _up(tw)
    if tx is not None:
        tx = _up(tx)
        d = r * (tx - mx.mean(tx, axis=-1, keepdims=True)
                 - xhat * mx.mean(xhat * tx, axis=-1, keepdims=True))
        if w is not None:
            d = d * w
        res = d if res is None else res + d
    if has_bias and tangents[k] is not None:
        tb = _up(tangents[k])
        res = mx.broadcast_to(tb, out.shape) if res is None else res + tb
    return res.astype(out.dtype)


def _batch_param(p, axis, ndim):
    """A batched 1-D parameter (batch axis `axis`) shaped to broadcast against a batched
    input of `ndim` dimensions whose batch axis is 0."""
    mx = _mx()
    p = mx.moveaxis(p, axis, 0) if axis != 0 else p
    return mx.reshape(p, (p.shape[0],) + (1,) * (ndim - 2) + (p.shape[1],))


def _rms_norm_vmap(inputs, axes, out, eps):
    mx = _mx()
    x, ax = inputs[0], axes[0]
    if ax is None:
        size = inputs[1].shape[axes[1]]
        x = mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape)
    else:
        x = mx.moveaxis(x, ax, 0)
    if len(inputs) == 1 or axes[1] is None:
        return rms_norm(x, inputs[1] if len(inputs) > 1 else None, eps), 0
    w = _batch_param(inputs[1], axes[1], x.ndim)
    return (rms_norm(x, None, eps) * w).astype(out.dtype), 0


def _layer_norm_vmap(inputs, axes, out, eps, has_weight, has_bias):
    mx = _mx()
    size = next(i.shape[a] for i, a in zip(inputs, axes) if a is not None)
    x, ax = inputs[0], axes[0]
    x = mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape) if ax is None else \
        mx.moveaxis(x, ax, 0)
    params = list(zip(inputs[1:], axes[1:]))
    w = params.pop(0) if has_weight else None
    b = params.pop(0) if has_bias else None
    if all(p is None or p[1] is None for p in (w, b)):
        return layer_norm(x, None if w is None else w[0], None if b is None else b[0], eps), 0
    res = layer_norm(x, None, None, eps)
    if w is not None:
        res = res * (w[0] if w[1] is None else _batch_param(w[0], w[1], x.ndim))
    if b is not None:
        res = res + (b[0] if b[1] is None else _batch_param(b[0], b[1], x.ndim))
    return res.astype(out.dtype), 0


# ---------------------------------------------------------------------------------------
# rope
# ---------------------------------------------------------------------------------------
def _rope_angles(shape, dims, base, scale, offset, freqs):
    """theta = (offset + t) * scale / freq in float64: shape (T, dims/2), or
    (B, 1, ..., T, dims/2) for a vector of offsets (one per batch entry)."""
    half = dims // 2
    if freqs is None:
        inv = np.exp(-np.arange(half, dtype=np.float64) * (np.log(base) / half))
    else:
        inv = 1.0 / freqs.astype(np.float64)
    pos = np.arange(shape[-2], dtype=np.float64)
    off = np.asarray(offset, dtype=np.float64)
    if off.ndim == 1:
        pos = off.reshape((-1,) + (1,) * (len(shape) - 2)) + pos
    else:
        pos = pos + off
    return (pos * scale)[..., None] * inv


def _rope_kernel(a, *rest, dims, traditional, base, scale, offset, has_offset, has_freqs):
    ct = _ct(a.dtype)
    it = iter(rest)
    off = next(it) if has_offset else offset
    freqs = next(it) if has_freqs else None
    theta = _rope_angles(a.shape, dims, base, scale, off, freqs)
    c = np.cos(theta).astype(ct)
    s = np.sin(theta).astype(ct)
    del theta
    out = np.empty(a.shape, ct)
    half = dims // 2
    if dims < a.shape[-1]:
        out[..., dims:] = a[..., dims:]
    if traditional:
        x1, x2, o1, o2 = a[..., 0:dims:2], a[..., 1:dims:2], out[..., 0:dims:2], out[..., 1:dims:2]
    else:
        x1, x2, o1, o2 = a[..., :half], a[..., half:dims], out[..., :half], out[..., half:dims]
    # o1 = x1 cos - x2 sin, o2 = x1 sin + x2 cos, written into the output with one temporary
    tmp = np.multiply(x2, s, dtype=ct)
    np.multiply(x1, c, out=o1)
    o1 -= tmp
    np.multiply(x2, c, out=tmp)
    np.multiply(x1, s, out=o2)
    o2 += tmp
    return out


ROPE = declare("rope", cpu=_rope_kernel, doc="rotary positional encoding of the last axis")


def _check_rope_offset(offset, a, op):
    if isinstance(offset, array):
        if offset.dtype.name not in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                     "uint32", "uint64"):
            raise ValueError(f"[{op}] offset must be an integer but got type "
                             f"{'float32' if offset.dtype.name == 'bool' else offset.dtype.name}.")
        if offset.ndim > 1:
            raise ValueError(f"[{op}] offset must have at most one dimension but has shape "
                             f"{shape_str(offset.shape)}.")
        if offset.ndim == 1 and offset.shape[0] != a.shape[0]:
            raise ValueError(f"[{op}] offset must be a scalar or vector with {a.shape[0]} "
                             f"elements but has shape {shape_str(offset.shape)}.")
        return offset
    if isinstance(offset, (bool, float, np.floating)):
        raise ValueError(f"[{op}] offset must be an integer but got type float32.")
    try:
        return operator.index(offset)
    except TypeError:
        raise TypeError(f"[{op}] offset must be an int or an integer array, got "
                        f"{type(offset).__name__}.") from None


def rope(a, dims, *, traditional, base, scale, offset, freqs=None, stream=None):
    """Rotary positional encoding of the first `dims` features of `a` (shape (B, *, T, D)).

    Position t of the sequence axis (-2) rotates feature pair i by the angle
    ``(offset + t) * scale / freq_i``, with ``freq_i = base ** (2i / dims)`` unless `freqs`
    gives them (exactly one of `base` and `freqs` is None). `traditional` pairs consecutive
    features (0,1), (2,3)...; otherwise feature i pairs with i + dims/2. `offset` is an int,
    a scalar integer array, or a vector with one offset per batch entry (axis 0).
    """
    op = "rope"
    _check_array(a, op, "a")
    if a.ndim < 3:
        raise ValueError(f"[{op}] Input must have at least 3 dimensions but got input with "
                         f"{a.ndim} dimensions.")
    if not _is_float(a.dtype):
        raise ValueError(f"[{op}] Input must be a floating type but got {a.dtype.name}.")
    if isinstance(dims, bool) or not isinstance(dims, numbers.Integral):
        raise TypeError(f"[{op}] dims must be an int, got {type(dims).__name__}.")
    dims = int(dims)
    if dims <= 0:
        raise ValueError(f"[{op}] dims must be positive but got {dims}.")
    if dims % 2:
        raise ValueError(f"[{op}] dims must be even but got {dims}.")
    if dims > a.shape[-1]:
        raise ValueError(f"[{op}] dims must not exceed the input's last dimension "
                         f"({a.shape[-1]}) but got {dims}.")
    if base is None and freqs is None:
        raise ValueError(f"[{op}] Neither base nor freqs has a value.")
    if base is not None and freqs is not None:
        raise ValueError(f"[{op}] Only one of base or freqs can have a value.")
    if base is not None:
        base = _check_real(base, op, "base")
    scale = _check_real(scale, op, "scale")
    traditional = bool(traditional)
    offset = _check_rope_offset(offset, a, op)
    inputs = [a]
    if isinstance(offset, array):
        inputs.append(offset)
    if freqs is not None:
        _check_array(freqs, op, "freqs")
        if freqs.ndim != 1 or freqs.shape[0] != dims // 2:
            raise ValueError(f"[{op}] freqs must be one dimensional with size {dims // 2} but "
                             f"got shape {shape_str(freqs.shape)}.")
        if not _is_float(freqs.dtype):
            freqs = freqs.astype(float32, stream=stream)
        inputs.append(freqs)
    params = {"dims": dims, "traditional": traditional, "base": base, "scale": scale,
              "offset": None if isinstance(offset, array) else offset,
              "has_offset": isinstance(offset, array), "has_freqs": freqs is not None}
    return make_node(ROPE, tuple(inputs), params, a.shape, a.dtype, stream)


def _rope_split(primals, params):
    """(offset, freqs) of a rope node: the int or array offset and the freqs array."""
    k = 1
    off = params["offset"]
    if params["has_offset"]:
        off = primals[k]
        k += 1
    freqs = primals[k] if params["has_freqs"] else None
    return off, freqs


def _rope_call(x, params, off, freqs, scale=None):
    return rope(x, params["dims"], traditional=params["traditional"], base=params["base"],
                scale=params["scale"] if scale is None else scale, offset=off, freqs=freqs)


def _rope_pairs(y, params):
    """The two halves of each rotated pair of y's last axis."""
    d = params["dims"]
    if params["traditional"]:
        return y[..., 0:d:2], y[..., 1:d:2]
    return y[..., :d // 2], y[..., d // 2:d]


def _rope_positions(x, off, scale):
    """(offset + t) * scale shaped to broadcast against x's pair components."""
    mx = _mx()
    pos = mx.arange(x.shape[-2]).astype(float32)
    if isinstance(off, array):
        o = off.astype(float32)
        if o.ndim == 1:
            o = mx.reshape(o, (-1,) + (1,) * (x.ndim - 2))
        pos = o + pos
    else:
        pos = pos + float(off)
    return mx.expand_dims(pos * scale, -1)


def _rope_vjp(primals, ct, out, **params):
    mx = _mx()
    off, freqs = _rope_split(primals, params)
    # rope is a rotation: its transpose rotates by the opposite angle
    res = [_rope_call(ct, params, off, freqs, scale=-params["scale"])]
    if params["has_offset"]:
        res.append(None)
    if params["has_freqs"]:
        g1, g2 = _rope_pairs(_up(ct), params)
        o1, o2 = _rope_pairs(_up(out), params)
        pos = _rope_positions(out, off, params["scale"]).astype(g1.dtype)
        f = _up(freqs)
        # d out / d theta = (-o2, o1); d theta / d freq = -pos / freq^2
        dtheta = (g2 * o1 - g1 * o2) * pos
        red = mx.sum(dtheta, axis=tuple(range(dtheta.ndim - 1)))
        res.append(-red / (f * f))
    return res


def _rope_jvp(primals, tangents, out, **params):
    mx = _mx()
    off, freqs = _rope_split(primals, params)
    res = None
    if tangents[0] is not None:
        res = _rope_call(tangents[0], params, off, freqs)
    if params["has_freqs"] and tangents[-1] is not None:
        f = _up(freqs)
        o1, o2 = _rope_pairs(_up(out), params)
        pos = _rope_positions(out, off, params["scale"]).astype(o1.dtype)
        dtheta = -pos * _up(tangents[-1]) / (f * f)
        d1, d2 = -o2 * dtheta, o1 * dtheta
        d = params["dims"]
        if params["traditional"]:
            rot = mx.reshape(mx.stack([d1, d2], axis=-1), d1.shape[:-1] + (d,))
        else:
            rot = mx.concatenate([d1, d2], axis=-1)
        if d < out.shape[-1]:
            rot = mx.concatenate([rot, mx.zeros(out.shape[:-1] + (out.shape[-1] - d,),
                                                rot.dtype)], axis=-1)
        rot = rot.astype(out.dtype)
        res = rot if res is None else res + rot
    return res


def _rope_vmap(inputs, axes, out, **params):
    mx = _mx()
    size = next(i.shape[a] for i, a in zip(inputs, axes) if a is not None)
    x, ax = inputs[0], axes[0]
    k = 1
    off, off_ax = params["offset"], None
    if params["has_offset"]:
        off, off_ax = inputs[k], axes[k]
        k += 1
    freqs, f_ax = (inputs[k], axes[k]) if params["has_freqs"] else (None, None)
    if f_ax is not None:
        # per-example frequencies: one call per example
        outs = []
        for i in range(size):
            xi = x if ax is None else mx.take(x, i, axis=ax)
            oi = off if off_ax is None else mx.take(off, i, axis=off_ax)
            outs.append(_rope_call(xi, params, oi, mx.take(freqs, i, axis=f_ax)))
        return mx.stack(outs), 0
    if off_ax is None:
        # the batch axis goes after B so that per-B offsets still meet axis 0
        if ax is None:
            x = mx.broadcast_to(mx.expand_dims(x, 1), (x.shape[0], size) + x.shape[1:])
        else:
            x = mx.moveaxis(x, ax, 1)
        return _rope_call(x, params, off, freqs), 1
    # per-example offsets: merge the example axis into B, one offset per merged entry
    x = mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape) if ax is None else \
        mx.moveaxis(x, ax, 0)
    o = mx.moveaxis(off, off_ax, 0)
    o = mx.broadcast_to(o if o.ndim == 2 else mx.expand_dims(o, 1), (size, x.shape[1]))
    merged = mx.reshape(x, (size * x.shape[1],) + x.shape[2:])
    res = _rope_call(merged, params, mx.reshape(o, (-1,)), freqs)
    return mx.reshape(res, x.shape), 0


# ---------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------------------
def _sdpa_kernel(q, k, v, *rest, scale, mask_mode, has_sinks):
    ct = _ct(np.result_type(q.dtype, k.dtype, v.dtype))
    it = iter(rest)
    mask = next(it) if mask_mode in ("bool", "add") else None
    sinks = next(it) if has_sinks else None
    q, k, v = (x.astype(ct, copy=False) for x in (q, k, v))
    B, nq, tq, d = q.shape
    nk, tk, dv = k.shape[1], k.shape[2], v.shape[3]
    g = nq // nk
    out = np.zeros((B, nq, tq, dv), ct)
    if tk == 0 or tq == 0 or B == 0 or nq == 0:
        return out
    fill = None
    if mask_mode == "causal":
        # lower-right aligned: query i sees keys j <= i + tk - tq
        fill = ~np.tri(tq, tk, tk - tq, dtype=bool)
    elif mask_mode == "bool":
        fill = ~mask
    elif mask_mode == "add":
        mask = mask.astype(ct, copy=False)
    if fill is not None:
        fill = fill.reshape((1,) * (4 - fill.ndim) + fill.shape)
    elif mask is not None:
        mask = mask.reshape((1,) * (4 - mask.ndim) + mask.shape)
    lowest = np.finfo(ct).min
    if sinks is not None:
        sinks = sinks.astype(ct, copy=False).reshape(1, nq, 1, 1)
    step = max(1, _SDPA_BLOCK_BYTES // max(1, nq * tq * tk * ct.itemsize))
    for b0 in range(0, B, step):
        b1 = min(B, b0 + step)
        nb = b1 - b0
        s = np.matmul(q[b0:b1].reshape(nb, nk, g * tq, d), k[b0:b1].swapaxes(-1, -2))
        s *= scale
        s4 = s.reshape(nb, nq, tq, tk)
        if fill is not None:
            np.copyto(s4, lowest, where=fill if fill.shape[0] == 1 else fill[b0:b1])
        elif mask is not None:
            s4 += mask if mask.shape[0] == 1 else mask[b0:b1]
        m = s4.max(axis=-1, keepdims=True)
        if sinks is not None:
            np.maximum(m, sinks, out=m)
        s4 -= m
        np.exp(s4, out=s4)
        denom = s4.sum(axis=-1, keepdims=True)
        if sinks is not None:
            m -= sinks
            np.negative(m, out=m)
            denom += np.exp(m, out=m)
        ob = out[b0:b1]
        np.matmul(s, v[b0:b1], out=ob.reshape(nb, nk, g * tq, dv))
        ob /= denom
    return out


SDPA = declare("scaled_dot_product_attention", cpu=_sdpa_kernel,
               doc="softmax(scale * q @ k^T + mask) @ v with grouped kv heads")


def _sdpa_check_inputs(q, k, v, op):
    for x in (q, k, v):
        if x.ndim != 4:
            raise ValueError(f"[{op}] input with shape {shape_str(x.shape)} expected to be "
                             "rank 4")
    for x in (k, v):
        if x.shape[0] != q.shape[0]:
            raise ValueError(f"[{op}] mismatching batch dimension for input with shape "
                             f"{shape_str(x.shape)}.")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"[{op}] query, keys expected to have matching last dimension; found "
                         f"query shape {shape_str(q.shape)} for keys shape "
                         f"{shape_str(k.shape)}.")
    if k.shape[1] != v.shape[1]:
        raise ValueError(f"[{op}] keys, values expected to have matching n_kv_heads; found keys "
                         f"with n_heads {k.shape[1]} for values with n_heads {v.shape[1]}.")
    if k.shape[2] != v.shape[2]:
        raise ValueError(f"[{op}] keys, values expected to have matching sequence length; found "
                         f"keys shape {shape_str(k.shape)} for values shape "
                         f"{shape_str(v.shape)}.")
    if k.shape[1] == 0 or q.shape[1] % k.shape[1]:
        raise ValueError(f"[{op}] n_heads must be a multiple of n_kv_heads, found n_heads "
                         f"{q.shape[1]} for n_kv_heads {k.shape[1]}.")


def scaled_dot_product_attention(q, k, v, *, scale, mask=None, sinks=None, force_fused=False,
                                 stream=None):
    """Multi-head attention ``softmax(scale * q @ k.T + mask) @ v``, the softmax in float32.

    q has shape (B, N_q, T_q, D), k (B, N_kv, T_kv, D) and v (B, N_kv, T_kv, D_v); N_q must
    be a multiple of N_kv (grouped-query attention: each kv head serves N_q / N_kv query
    heads, without tiling k and v). `mask` is None, "causal" (lower-right aligned: the last
    query sees every key), a boolean array (True = attend) or an additive array, of rank at
    most 4 and broadcastable to (B, N_q, T_q, T_kv). `sinks` (N_q,) adds one extra logit per
    head that takes part in the softmax but carries no value. A query that may attend to no
    key under a boolean or causal mask averages all values, as in MLX. `force_fused` is
    accepted for compatibility (the CPU kernel is always fused).
    """
    op = "scaled_dot_product_attention"
    for name, x in (("q", q), ("k", k), ("v", v)):
        _check_array(x, op, name)
    scale = _check_real(scale, op, "scale")
    _sdpa_check_inputs(q, k, v, op)
    out = promote_types(promote_types(q.dtype, k.dtype), v.dtype)
    if not _is_float(out):
        raise ValueError(f"[{op}] Received unsupported type {out.name}.")
    B, nq, tq, _ = q.shape
    tk = k.shape[2]
    inputs = [_cast(q, out, stream), _cast(k, out, stream), _cast(v, out, stream)]
    mode = "none"
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"[{op}] invalid mask option '{mask}'. Must be 'causal', or an "
                             "array.")
        mode = "causal"
    elif mask is not None:
        _check_array(mask, op, "mask")
        if mask.ndim > 4:
            raise ValueError(f"[{op}] the mask with shape {shape_str(mask.shape)} expected to "
                             "have at most rank 4.")
        full = (B, nq, tq, tk)
        if broadcast_shapes_pair(mask.shape, full, op) != full:
            raise ValueError(f"[{op}] Shapes {shape_str(mask.shape)} and {shape_str(full)} "
                             "cannot be broadcast.")
        if mask.dtype.name == "bool":
            mode = "bool"
        else:
            if promote_types(mask.dtype, out) is not out:
                raise ValueError(f"[{op}] Mask type must promote to output type {out.name}.")
            mode = "add"
            mask = _cast(mask, out, stream)
        inputs.append(mask)
    if sinks is not None:
        _check_array(sinks, op, "sinks")
        if sinks.shape != (nq,):
            raise ValueError(f"[{op}] Received invalid shape for sinks "
                             f"{shape_str(sinks.shape)}.")
        if promote_types(sinks.dtype, out) is not out:
            raise ValueError(f"[{op}] Type of sinks must promote to output type {out.name}.")
        inputs.append(_cast(sinks, out, stream))
    params = {"scale": scale, "mask_mode": mode, "has_sinks": sinks is not None}
    shape = (B, nq, tq, v.shape[3])
    return make_node(SDPA, tuple(inputs), params, shape, out, stream)


def _sdpa_unpack(primals, mask_mode, has_sinks):
    q, k, v = (_up(x) for x in primals[:3])
    rest = list(primals[3:])
    mask = rest.pop(0) if mask_mode in ("bool", "add") else None
    sinks = _up(rest.pop(0)) if has_sinks else None
    return q, k, v, mask, sinks


def _sdpa_probs(q, k, mask, sinks, scale, mask_mode):
    """The attention weights (B, N_q, T_q, T_kv) and the sinks' weights (B, N_q, T_q, 1)
    or None, from public ops (the kernel's computation, for the rules)."""
    mx = _mx()
    B, nq, tq, d = q.shape
    nk, tk = k.shape[1], k.shape[2]
    qg = mx.reshape(q, (B, nk, (nq // nk) * tq, d))
    s = mx.reshape(mx.matmul(qg, mx.swapaxes(k, -1, -2)) * scale, (B, nq, tq, tk))
    if mask_mode in ("bool", "causal"):
        if mask_mode == "causal":
            keep = mx.arange(tk)[None, :] <= mx.arange(tq)[:, None] + (tk - tq)
        else:
            keep = mask
        s = mx.where(keep, s, mx.array(float(np.finfo(s.dtype.np).min), s.dtype))
    elif mask_mode == "add":
        s = s + mask.astype(s.dtype)
    if sinks is None:
        return mx.softmax(s, axis=-1, precise=True), None
    sk = mx.broadcast_to(mx.reshape(sinks.astype(s.dtype), (1, nq, 1, 1)), (B, nq, tq, 1))
    p = mx.softmax(mx.concatenate([sk, s], axis=-1), axis=-1, precise=True)
    return p[..., 1:], p[..., :1]


def _grouped(x, nk):
    """(B, N_q, T, X) -> (B, N_kv, G * T, X): query heads grouped by their kv head."""
    B, nq, t, d = x.shape
    return _mx().reshape(x, (B, nk, (nq // nk) * t, d))


def _sdpa_vjp(primals, ct, out, scale, mask_mode, has_sinks):
    mx = _mx()
    from mx.core.transforms import unbroadcast
    q, k, v, mask, sinks = _sdpa_unpack(primals, mask_mode, has_sinks)
    nk = k.shape[1]
    p, psink = _sdpa_probs(q, k, mask, sinks, scale, mask_mode)
    g = _up(ct)
    pg, gg = _grouped(p, nk), _grouped(g, nk)
    dv = mx.matmul(mx.swapaxes(pg, -1, -2), gg)
    dp = mx.reshape(mx.matmul(gg, mx.swapaxes(v, -1, -2)), p.shape)
    rowdot = mx.sum(dp * p, axis=-1, keepdims=True)
    ds = p * (dp - rowdot)
    dsg = _grouped(ds, nk)
    dq = mx.reshape(mx.matmul(dsg, k), q.shape) * scale
    dk = mx.matmul(mx.swapaxes(dsg, -1, -2), _grouped(q, nk)) * scale
    res = [dq, dk, dv]
    if mask_mode == "bool":
        res.append(None)
    elif mask_mode == "add":
        res.append(unbroadcast(ds, mask.shape))
    if has_sinks:
        res.append(mx.sum(-psink * rowdot, axis=(0, 2, 3)))
    return res


def _sdpa_jvp(primals, tangents, out, scale, mask_mode, has_sinks):
    mx = _mx()
    q, k, v, mask, sinks = _sdpa_unpack(primals, mask_mode, has_sinks)
    nk = k.shape[1]
    tq_, tk_, tv_ = tangents[:3]
    rest = list(tangents[3:])
    tmask = rest.pop(0) if mask_mode in ("bool", "add") else None
    tsinks = rest.pop(0) if has_sinks else None
    p, psink = _sdpa_probs(q, k, mask, sinks, scale, mask_mode)
    ds = None
    if tq_ is not None:
        ds = mx.matmul(_grouped(_up(tq_), nk), mx.swapaxes(k, -1, -2))
    if tk_ is not None:
        t = mx.matmul(_grouped(q, nk), mx.swapaxes(_up(tk_), -1, -2))
        ds = t if ds is None else ds + t
    if ds is not None:
        ds = mx.reshape(ds, p.shape) * scale
    if mask_mode == "add" and tmask is not None:
        tm = _up(tmask)
        ds = mx.broadcast_to(tm, p.shape) if ds is None else ds + tm
    res = None
    if ds is not None or tsinks is not None:
        rowdot = 0.0
        if ds is not None:
            rowdot = mx.sum(p * ds, axis=-1, keepdims=True)
        if tsinks is not None:
            rowdot = rowdot + psink * mx.reshape(_up(tsinks), (1, -1, 1, 1))
        dp = p * ((ds if ds is not None else 0.0) - rowdot)
        res = mx.reshape(mx.matmul(_grouped(dp, nk), v), out.shape)
    if tv_ is not None:
        t = mx.reshape(mx.matmul(_grouped(p, nk), _up(tv_)), out.shape)
        res = t if res is None else res + t
    return res.astype(out.dtype)


def _sdpa_vmap(inputs, axes, out, scale, mask_mode, has_sinks):
    """The mapped axis joins the head axis: (V, B, N, T, D) -> (B, V * N, T, D). Query head
    v * N_q + h then meets kv head v * N_kv + h // G, its own example's."""
    mx = _mx()
    size = next(i.shape[a] for i, a in zip(inputs, axes) if a is not None)

    def front(x, a):
        if a is None:
            return mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape)
        return mx.moveaxis(x, a, 0)

    def into_heads(x):
        x = mx.moveaxis(x, 0, 1)
        return mx.reshape(x, (x.shape[0], size * x.shape[2]) + x.shape[3:])

    q, k, v = (into_heads(front(x, a)) for x, a in zip(inputs[:3], axes[:3]))
    nq = out.shape[1]
    rest = list(zip(inputs[3:], axes[3:]))
    mask = "causal" if mask_mode == "causal" else None
    if mask_mode in ("bool", "add"):
        m, ma = rest.pop(0)
        core = m.ndim - (0 if ma is None else 1)
        if ma is None:
            m = mx.reshape(m, (1,) * (4 - core) + m.shape)
            if m.shape[1] != 1:
                m = mx.broadcast_to(mx.expand_dims(m, 0), (size,) + m.shape)
                m = into_heads(m)
        else:
            m = mx.moveaxis(m, ma, 0)
            m = mx.reshape(m, (size,) + (1,) * (4 - core) + m.shape[1:])
            m = mx.broadcast_to(m, (size, m.shape[1], nq) + m.shape[3:])
            m = into_heads(m)
        mask = m
    sinks = None
    if has_sinks:
        s, sa = rest.pop(0)
        sinks = mx.reshape(front(s, sa), (-1,))
    res = scaled_dot_product_attention(q, k, v, scale=scale, mask=mask, sinks=sinks)
    B, _, tq, dv = res.shape
    return mx.reshape(res, (B, size, nq, tq, dv)), 1


# ---------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------
def _cross_entropy_kernel(logits, targets):
    ct = np.float64 if logits.dtype == np.float64 else np.float32
    n = logits.shape[-1]
    m = logits.max(axis=-1, keepdims=True).astype(ct)
    shifted = np.subtract(logits, m, dtype=ct)
    t = targets.astype(np.int64)
    bad = (t < -n) | (t >= n)
    t = np.where(t < 0, t + n, t)
    if bad.any():
        t[bad] = 0
    picked = np.take_along_axis(shifted, t[..., None], axis=-1)[..., 0]
    np.exp(shifted, out=shifted)
    loss = np.log(shifted.sum(axis=-1))
    loss -= picked
    if bad.any():
        loss[bad] = np.nan
    return loss


CROSS_ENTROPY = declare("cross_entropy", cpu=_cross_entropy_kernel,
                        doc="logsumexp(logits, -1) - logits[..., target]")


def cross_entropy(logits, targets, *, stream=None):
    """The cross-entropy loss ``logsumexp(logits, axis=-1) - logits[..., targets]`` for class
    indices `targets` (logits' shape without the last axis), in float32, computed in one
    pass over the logits. Negative indices count from the end; an index outside
    [-C, C) gives nan.
    """
    op = "cross_entropy"
    _check_array(logits, op, "logits")
    _check_array(targets, op, "targets")
    if logits.ndim == 0:
        raise ValueError(f"[{op}] logits must have at least 1 dimension but got input with 0 "
                         "dimensions.")
    if not _is_float(logits.dtype):
        raise ValueError(f"[{op}] Received unsupported logits type {logits.dtype.name}.")
    if targets.dtype.name not in ("int8", "int16", "int32", "int64", "uint8", "uint16",
                                  "uint32", "uint64"):
        raise ValueError(f"[{op}] targets must be integer class indices but got "
                         f"{targets.dtype.name}.")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"[{op}] targets shape {shape_str(targets.shape)} does not match "
                         f"logits shape {shape_str(logits.shape)} with the last axis removed.")
    if logits.shape[-1] == 0:
        raise ValueError(f"[{op}] logits must have at least one class; got shape "
                         f"{shape_str(logits.shape)}.")
    return make_node(CROSS_ENTROPY, (logits, targets), None, targets.shape, float32, stream)


def _ce_grad_factor(logits, targets):
    """softmax(logits) - onehot(targets), the derivative of the loss by the logits."""
    mx = _mx()
    x = logits.astype(float32) if logits.dtype.name != "float64" else logits
    n = logits.shape[-1]
    t = targets.astype(mx.int64) if targets.dtype.name == "uint64" else targets
    t = mx.where(t < 0, t + n, t)
    onehot = (mx.arange(n) == mx.expand_dims(t, -1)).astype(x.dtype)
    return mx.softmax(x, axis=-1, precise=True) - onehot


def _ce_vjp(primals, ct, out):
    mx = _mx()
    f = _ce_grad_factor(*primals)
    return [mx.expand_dims(ct.astype(f.dtype), -1) * f, None]


def _ce_jvp(primals, tangents, out):
    mx = _mx()
    if tangents[0] is None:
        return mx.zeros(out.shape, out.dtype)
    f = _ce_grad_factor(*primals)
    return mx.sum(tangents[0].astype(f.dtype) * f, axis=-1).astype(out.dtype)


def _ce_vmap(inputs, axes, out):
    mx = _mx()
    size = next(i.shape[a] for i, a in zip(inputs, axes) if a is not None)
    moved = []
    for x, a in zip(inputs, axes):
        if a is None:
            x = mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape)
        else:
            x = mx.moveaxis(x, a, 0)
        moved.append(x)
    return cross_entropy(*moved), 0


# ---------------------------------------------------------------------------------------
# rules
# ---------------------------------------------------------------------------------------
def install_rules():
    RMS_NORM.vjp = _rms_norm_vjp
    RMS_NORM.jvp = _rms_norm_jvp
    RMS_NORM.vmap = _rms_norm_vmap
    LAYER_NORM.vjp = _layer_norm_vjp
    LAYER_NORM.jvp = _layer_norm_jvp
    LAYER_NORM.vmap = _layer_norm_vmap
    ROPE.vjp = _rope_vjp
    ROPE.jvp = _rope_jvp
    ROPE.vmap = _rope_vmap
    SDPA.vjp = _sdpa_vjp
    SDPA.jvp = _sdpa_jvp
    SDPA.vmap = _sdpa_vmap
    CROSS_ENTROPY.vjp = _ce_vjp
    CROSS_ENTROPY.jvp = _ce_jvp
    CROSS_ENTROPY.vmap = _ce_vmap


__all__ = ["rms_norm", "layer_norm", "rope", "scaled_dot_product_attention", "cross_entropy"]
