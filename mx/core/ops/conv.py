"""Convolutions: conv1d, conv2d, conv3d, conv_general, conv_transpose1d/2d/3d and convolve.

Layouts are MLX's: inputs are channels-last (N, *spatial, C_in) and weights are
(C_out, *kernel, C_in / groups). Everything is one primitive, conv_general, which also
covers input dilation (the transposed convolutions are conv_general with the stride moved
to the input dilation and a flipped kernel, as in MLX) and padding that may be negative
(cropping) or differ between the low and high side.

The CPU kernel builds the patch matrix one kernel tap at a time (one strided copy per tap,
into a buffer bounded by _CHUNK_ELEMENTS) and makes one BLAS matrix product per chunk of
the batch, batched over the groups. float16 and bfloat16 are computed in float32.
"""
from __future__ import annotations

import itertools
import operator

import numpy as np

from mx.core._array import make_node, promote_types, shape_str
from mx.core.ops._util import as_array, prod
from mx.core.primitives import declare

_HALF = ("float16", "bfloat16")
_F32 = np.dtype(np.float32)
# the patch buffer of one chunk of the batch holds at most this many elements
_CHUNK_ELEMENTS = 1 << 21


# ---------------------------------------------------------------------------------------
# kernel
# ---------------------------------------------------------------------------------------
def _out_size(n, k, stride, lo, hi, kdil, idil):
    """Length of one output axis (n input elements, k kernel taps)."""
    span = (n - 1) * idil + 1  # MLX's extent, also for n == 0
    return (span + lo + hi - kdil * (k - 1) - 1) // stride + 1


def _dilate_pad(x, idil, lo, hi):
    """x (N, *spatial, C) with idil - 1 zeros between elements and lo / hi zeros on each
    side of every spatial axis (a negative pad crops)."""
    if all(v == 1 for v in idil) and all(v == 0 for v in lo) and all(v == 0 for v in hi):
        return x
    spans = [(n - 1) * s + 1 if n > 0 else 0 for n, s in zip(x.shape[1:-1], idil)]
    # place with the non-negative padding, then crop where the padding is negative
    full = [max(l, 0) + sp + max(h, 0) for sp, l, h in zip(spans, lo, hi)]
    out = np.zeros((x.shape[0], *full, x.shape[-1]), x.dtype)
    dst = tuple(slice(max(l, 0), max(l, 0) + sp, s) for l, sp, s in zip(lo, spans, idil))
    out[(slice(None),) + dst] = x
    crop = tuple(slice(max(-l, 0), f - max(-h, 0)) for l, h, f in zip(lo, hi, full))
    if any(l < 0 for l in lo) or any(h < 0 for h in hi):
        out = out[(slice(None),) + crop]
    return out


def _patch_filler(xp, osize, ksize, stride, kdil, groups):
    """A function filling the patch buffer of batch rows [b0, b1): row (b, *o) holds the
    input under every kernel tap, tap-major (then channel) within each group.

    With one group and no kernel dilation on the last axis, the taps along that axis and
    the channels are adjacent in memory, so each copy moves K_last * C contiguous values
    per output position (one copy in all for 1-D); otherwise each tap is one copy."""
    d = len(osize)
    c = xp.shape[-1]
    if groups == 1 and kdil[-1] == 1:
        xp = np.ascontiguousarray(xp)
        # the last spatial axis and the channels as one axis
        flat = xp.reshape(xp.shape[:-2] + (xp.shape[-2] * c,))
        run = ksize[-1] * c
        item = flat.itemsize
        outer = list(itertools.product(*(range(k) for k in ksize[:-1])))

        def fill(patches, b0, b1):
            view = patches.reshape(patches.shape[:1 + d] + (len(outer), run))
            for t, k in enumerate(outer):
                src = flat[(slice(b0, b1),) + tuple(
                    slice(k[i] * kdil[i], k[i] * kdil[i] + (osize[i] - 1) * stride[i] + 1,
                          stride[i]) for i in range(d - 1))]
                win = np.lib.stride_tricks.as_strided(
                    src, src.shape[:-1] + (osize[-1], run),
                    src.strides[:-1] + (stride[-1] * c * item, item), writeable=False)
                view[..., t, :] = win
        return fill

    cg = c // groups
    windows = [tuple(slice(k[i] * kdil[i], k[i] * kdil[i] + (osize[i] - 1) * stride[i] + 1,
                           stride[i]) for i in range(d))
               for k in itertools.product(*(range(s) for s in ksize))]

    def fill(patches, b0, b1):
        view = patches.reshape(patches.shape[:1 + d] + (groups, len(windows), cg))
        for t, win in enumerate(windows):
            src = xp[(slice(b0, b1),) + win]
            view[..., t, :] = src.reshape(src.shape[:-1] + (groups, cg))
    return fill


def _conv_kernel(x, w, stride, pad_lo, pad_hi, kernel_dilation, input_dilation, groups,
                 flip):
    ct = np.result_type(*(_F32 if a.dtype.name in _HALF else a.dtype for a in (x, w)))
    x = x.astype(ct, copy=False)
    w = w.astype(ct, copy=False)
    d = x.ndim - 2
    n, c_in, c_out = x.shape[0], x.shape[-1], w.shape[0]
    ksize = w.shape[1:-1]
    osize = tuple(_out_size(x.shape[1 + i], ksize[i], stride[i], pad_lo[i], pad_hi[i],
                            kernel_dilation[i], input_dilation[i]) for i in range(d))
    out = np.zeros((n, *osize, c_out), ct)
    taps = prod(ksize)
    if out.size == 0 or taps == 0 or c_in == 0:
        return out  # nothing to sum: zeros
    xp = _dilate_pad(x, input_dilation, pad_lo, pad_hi)
    if flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * d]
    g = groups
    cg, cog = c_in // g, c_out // g
    # weights as (G, taps * Cg, Cog), tap-major to match the patch columns
    wm = w.reshape(g, cog, taps, cg).transpose(0, 2, 3, 1).reshape(g, taps * cg, cog)
    rows = prod(osize)
    chunk = max(1, _CHUNK_ELEMENTS // max(1, rows * taps * c_in))
    fill = _patch_filler(xp, osize, ksize, stride, kernel_dilation, g)
    flat_out = out.reshape(n, rows, g, cog)
    patches = np.empty((min(chunk, n) * rows, g, taps * cg), ct)
    for b0 in range(0, n, chunk):
        b1 = min(n, b0 + chunk)
        m = (b1 - b0) * rows
        pm = patches[:m]
        fill(pm.reshape((b1 - b0, *osize, g * taps * cg)), b0, b1)
        if g == 1:
            np.matmul(pm[:, 0], wm[0], out=flat_out[b0:b1].reshape(m, cog))
        else:
            flat_out[b0:b1] = np.matmul(pm.transpose(1, 0, 2), wm).transpose(1, 0, 2) \
                .reshape(b1 - b0, rows, g, cog)
    return out


CONV = declare("conv_general", cpu=_conv_kernel,
               doc="N-d cross-correlation (channels last) with strides, padding, dilations, "
                   "groups and an optional kernel flip")


# ---------------------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------------------
def _ints(v, d, what, op):
    """An int as a d-tuple, or a sequence of ints as a tuple (its length is checked by the
    caller)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"[{op}] {what} must be an int or a sequence of ints, got bool.")
    try:
        return (operator.index(v),) * d
    except TypeError:
        pass
    try:
        vals = tuple(operator.index(i) for i in v)
    except TypeError:
        raise TypeError(f"[{op}] {what} must be an int or a sequence of ints, got "
                        f"{v!r}.") from None
    return vals


def _expand(vals, d, default):
    if len(vals) == 0:
        return (default,) * d
    if len(vals) == 1:
        return vals * d
    return vals


def _padding(padding, d, op):
    """(low, high) padding tuples from an int, a sequence of ints or a pair of
    sequences."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        lo = _expand(_ints(padding[0], d, "padding", op), d, 0)
        hi = _expand(_ints(padding[1], d, "padding", op), d, 0)
    else:
        lo = hi = _expand(_ints(padding, d, "padding", op), d, 0)
    if len(lo) != d or len(hi) != d:
        raise ValueError(f"[conv] Invalid padding {shape_str(lo)} | {shape_str(hi)} for "
                         f"{d}D convolution.")
    return lo, hi


def _float_input(x):
    return x.dtype.name in ("float16", "bfloat16", "float32", "float64")


def _conv(x, w, stride, pad_lo, pad_hi, kdil, idil, groups, flip, stream):
    """Checks shared by every convolution, then the conv_general node (parameters already
    d-tuples)."""
    d = x.ndim - 2
    if not _float_input(x):
        raise ValueError(f"[conv] Invalid input array with type {x.dtype.name}. Convolution "
                         "currently only supports floating point types")
    if w.ndim != x.ndim:
        raise ValueError(f"[conv] Invalid weight array with {w.ndim} dimensions for {d}D "
                         f"convolution. Expected an array with {d + 2} dimensions following "
                         "the format [C_out, ..., C_in].")
    for vals, what in ((stride, "strides"), (pad_lo, "padding"), (kdil, "kernel dilation"),
                       (idil, "input dilation")):
        if len(vals) != d:
            if what == "padding":
                raise ValueError(f"[conv] Invalid padding {shape_str(pad_lo)} | "
                                 f"{shape_str(pad_hi)} for {d}D convolution.")
            raise ValueError(f"[conv] Invalid {what} {shape_str(vals)} for {d}D convolution.")
    if isinstance(groups, (bool, np.bool_)):
        raise TypeError("[conv] groups must be an integer, got bool.")
    try:
        groups = operator.index(groups)
    except TypeError:
        raise TypeError(f"[conv] groups must be an integer, got {type(groups).__name__}.") \
            from None
    if groups < 1:
        raise ValueError(f"[conv] groups must be a positive integer, got {groups}.")
    c_in, c_out, c_w = x.shape[-1], w.shape[0], w.shape[-1]
    if c_in % groups:
        raise ValueError("[conv] The input channels must be divisible by the number of "
                         f"groups. Got input with shape {shape_str(x.shape)} and {groups} "
                         "groups.")
    if groups > 1 and c_out % groups:
        raise ValueError("[conv] If groups > 1, the output channels must be divisible by the "
                         f"number of groups. Got {c_out} output channels and {groups} groups.")
    if c_w * groups != c_in:
        if groups > 1:
            raise ValueError(f"[conv] Given groups={groups} and weights of shape "
                             f"{shape_str(w.shape)}, expected to have {c_w * groups} input "
                             f"channels but got {c_in} input channels instead.")
        raise ValueError("[conv] Expect the input channels in the input and weight array to "
                         f"match but got shapes - input: {shape_str(x.shape)} and weight: "
                         f"{shape_str(w.shape)}")
    if any(s < 1 for s in stride):
        raise ValueError(f"[conv] Stride sizes must be positive. Got strides {shape_str(stride)}.")
    if any(s < 1 for s in kdil):
        raise ValueError("[conv] Kernel dilation sizes must be positive. Got kernel dilation "
                         f"{shape_str(kdil)}.")
    if any(s < 1 for s in idil):
        raise ValueError("[conv] Input dilation sizes must be positive. Got input dilation "
                         f"{shape_str(idil)}.")
    # as in MLX, a negative padding removes input elements (before the input dilation)
    if any(p < 0 for p in pad_lo + pad_hi):
        for i in range(d):
            start, stop = max(-pad_lo[i], 0), x.shape[1 + i] - max(-pad_hi[i], 0)
            if start or stop != x.shape[1 + i]:
                x = _crop(x, 1 + i, start, max(stop, start))
        pad_lo = tuple(max(p, 0) for p in pad_lo)
        pad_hi = tuple(max(p, 0) for p in pad_hi)
    for i in range(d):
        n, k = x.shape[1 + i], w.shape[1 + i]
        span = (n - 1) * idil[i] + 1
        if span + pad_lo[i] + pad_hi[i] - (kdil[i] * (k - 1) + 1) < 0:
            raise ValueError("[conv] Spatial dimensions of input after padding cannot be "
                             f"smaller than weight spatial dimensions. Got error at axis "
                             f"{i + 1} for input with shape {shape_str(x.shape)}, padding low "
                             f"{shape_str(pad_lo)}, padding high {shape_str(pad_hi)}, and "
                             f"weight of shape {shape_str(w.shape)}.")
    params = {"stride": stride, "pad_lo": pad_lo, "pad_hi": pad_hi, "kernel_dilation": kdil,
              "input_dilation": idil, "groups": groups, "flip": bool(flip)}
    return _conv_node(x, w, params, stream)


def _crop(x, axis, start, stop):
    """x[start:stop] along axis (through split, whose slices have transformation rules)."""
    from mx.core.ops.shape import split
    return split(x, [start, stop], axis=axis)[1]


def _conv_node(x, w, p, stream=None):
    """The conv_general node for checked arguments. Its padding acts on the dilated input
    and may be negative (cropping dilated positions): the rules need that form."""
    d = x.ndim - 2
    osize = tuple(_out_size(x.shape[1 + i], w.shape[1 + i], p["stride"][i], p["pad_lo"][i],
                            p["pad_hi"][i], p["kernel_dilation"][i], p["input_dilation"][i])
                  for i in range(d))
    out_dtype = promote_types(x.dtype, w.dtype)
    return make_node(CONV, (x, w), p, (x.shape[0], *osize, w.shape[0]), out_dtype, stream)


def _check_input(x, d, op):
    if x.ndim != d + 2:
        raise ValueError(f"[{op}] Invalid input array with {x.ndim} dimensions for {d}D "
                         f"convolution. Expected an array with {d + 2} dimensions following "
                         "the format [N, ..., C_in].")


def _fixed(v, d, what, op):
    """An int or a sequence of exactly d ints (conv1d/2d/3d arguments)."""
    vals = _ints(v, d, what, op)
    if len(vals) != d:
        raise ValueError(f"[{op}] {what} must be an int or a sequence of {d} ints, got "
                         f"{v!r}.")
    return vals


def _convnd(op, d, input, weight, stride, padding, dilation, groups, stream):
    x = as_array(input, op)
    w = as_array(weight, op)
    _check_input(x, d, op)
    pad = _fixed(padding, d, "padding", op)
    return _conv(x, w, _fixed(stride, d, "stride", op), pad, pad,
                 _fixed(dilation, d, "dilation", op), (1,) * d, groups, False, stream)


# ---------------------------------------------------------------------------------------
# public ops
# ---------------------------------------------------------------------------------------
def conv1d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """1-D cross-correlation of `input` (N, L, C_in) with `weight` (C_out, K, C_in/groups):
    output (N, L_out, C_out). `padding` zeros go on both sides; `dilation` spaces the kernel
    taps; `groups` splits the channels into independent convolutions."""
    return _convnd("conv1d", 1, input, weight, stride, padding, dilation, groups, stream)


def conv2d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """2-D cross-correlation of `input` (N, H, W, C_in) with `weight`
    (C_out, KH, KW, C_in/groups). stride, padding and dilation are ints or pairs."""
    return _convnd("conv2d", 2, input, weight, stride, padding, dilation, groups, stream)


def conv3d(input, weight, /, stride=1, padding=0, dilation=1, groups=1, *, stream=None):
    """3-D cross-correlation of `input` (N, D, H, W, C_in) with `weight`
    (C_out, KD, KH, KW, C_in/groups). stride, padding and dilation are ints or triples."""
    return _convnd("conv3d", 3, input, weight, stride, padding, dilation, groups, stream)


def conv_general(input, weight, /, stride=1, padding=0, kernel_dilation=1, input_dilation=1,
                 groups=1, flip=False, *, stream=None):
    """General convolution of `input` (N, *spatial, C_in) with `weight`
    (C_out, *kernel, C_in/groups) over 1 to 3 spatial axes.

    stride, kernel_dilation and input_dilation are an int or one value per axis (a single
    value applies to all). padding is the same, or a pair (low, high) of such sequences;
    negative padding crops. input_dilation inserts zeros between input elements. With
    `flip` the kernel is reversed along its spatial axes (a true convolution); otherwise it
    is a cross-correlation."""
    x = as_array(input, "conv_general")
    w = as_array(weight, "conv_general")
    if x.ndim < 3 or x.ndim > 5:
        raise ValueError("[conv] Only works for inputs with 1-3 spatial dimensions. The inputs "
                         "must be in the format [N, ..., C_in]")
    d = x.ndim - 2
    if not isinstance(flip, (bool, np.bool_)):
        raise TypeError(f"[conv_general] flip must be a bool, got {type(flip).__name__}.")
    stride = _expand(_ints(stride, d, "stride", "conv_general"), d, 1)
    kdil = _expand(_ints(kernel_dilation, d, "kernel_dilation", "conv_general"), d, 1)
    idil = _expand(_ints(input_dilation, d, "input_dilation", "conv_general"), d, 1)
    lo, hi = _padding(padding, d, "conv_general")
    return _conv(x, w, stride, lo, hi, kdil, idil, groups, flip, stream)


def _conv_transpose(op, d, input, weight, stride, padding, dilation, output_padding, groups,
                    stream):
    """The gradient of a convolution with respect to its input, applied forward: stride
    becomes input dilation, the kernel is flipped and the padding is complemented."""
    x = as_array(input, op)
    w = as_array(weight, op)
    _check_input(x, d, op)
    if w.ndim != d + 2:
        raise ValueError(f"[conv] Invalid weight array with {w.ndim} dimensions for {d}D "
                         f"convolution. Expected an array with {d + 2} dimensions following "
                         "the format [C_out, ..., C_in].")
    stride = _fixed(stride, d, "stride", op)
    pad = _fixed(padding, d, "padding", op)
    dil = _fixed(dilation, d, "dilation", op)
    opad = _fixed(output_padding, d, "output_padding", op)
    ksize = w.shape[1:-1]
    lo = tuple(dil[i] * (ksize[i] - 1) - pad[i] for i in range(d))
    hi = tuple(lo[i] + opad[i] for i in range(d))
    return _conv(x, w, (1,) * d, lo, hi, dil, stride, groups, True, stream)


def conv_transpose1d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """1-D transposed convolution of `input` (N, L, C_in) with `weight`
    (C_out, K, C_in/groups): output length (L - 1) * stride - 2 * padding
    + dilation * (K - 1) + output_padding + 1."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, stride, padding, dilation,
                           output_padding, groups, stream)


def conv_transpose2d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """2-D transposed convolution of `input` (N, H, W, C_in) with `weight`
    (C_out, KH, KW, C_in/groups); per-axis parameters are ints or pairs."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, stride, padding, dilation,
                           output_padding, groups, stream)


def conv_transpose3d(input, weight, /, stride=1, padding=0, dilation=1, output_padding=0,
                     groups=1, *, stream=None):
    """3-D transposed convolution of `input` (N, D, H, W, C_in) with `weight`
    (C_out, KD, KH, KW, C_in/groups); per-axis parameters are ints or triples."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, stride, padding, dilation,
                           output_padding, groups, stream)


def convolve(a, v, /, mode="full", *, stream=None):
    """The discrete convolution of the 1-D arrays `a` and `v` (the kernel is flipped, as in
    signal processing). mode 'full' gives every overlap (length n + m - 1), 'same' the
    centre part as long as the longer input, 'valid' only full overlaps
    (length max(n, m) - min(n, m) + 1). The shorter array acts as the kernel."""
    from mx.core.ops.shape import reshape
    x = as_array(a, "convolve")
    k = as_array(v, "convolve")
    if mode not in ("full", "same", "valid"):
        raise ValueError("[convolve] Invalid mode.")
    if x.ndim != 1 or k.ndim != 1:
        raise ValueError("[convolve] Inputs must be 1D.")
    if x.size == 0 or k.size == 0:
        raise ValueError("[convolve] Inputs cannot be empty.")
    if k.size > x.size:
        x, k = k, x
    n, m = x.size, k.size
    if mode == "full":
        lo = hi = m - 1
    elif mode == "same":
        lo = m // 2
        hi = m - 1 - lo
    else:
        lo = hi = 0
    out = _conv(reshape(x, (1, n, 1), stream=stream), reshape(k, (1, m, 1), stream=stream),
                (1,), (lo,), (hi,), (1,), (1,), 1, True, stream)
    return reshape(out, (out.shape[1],), stream=stream)


__all__ = ["conv1d", "conv2d", "conv3d", "conv_general", "conv_transpose1d",
           "conv_transpose2d", "conv_transpose3d", "convolve"]


# ---------------------------------------------------------------------------------------
# transformation rules (docs/transforms.md)
# ---------------------------------------------------------------------------------------
def _mx():
    import mx.core as mx
    return mx


def _is_inexact(d) -> bool:
    return d.name.startswith(("float", "bfloat", "complex"))


def _node(x, w, p):
    return _conv_node(x, w, p)


def _params(stride, pad_lo, pad_hi, kdil, idil, groups, flip):
    return {"stride": tuple(stride), "pad_lo": tuple(pad_lo), "pad_hi": tuple(pad_hi),
            "kernel_dilation": tuple(kdil), "input_dilation": tuple(idil), "groups": groups,
            "flip": flip}


def _input_grad(ct, x, w, p):
    """d(loss)/dx: a convolution of the cotangent with the kernel's channels swapped per
    group and flipped, the forward stride as input dilation and the forward input dilation
    as stride."""
    mx = _mx()
    d = x.ndim - 2
    g = p["groups"]
    c_out, ksize, cg = w.shape[0], w.shape[1:-1], w.shape[-1]
    cog = c_out // g
    # (G*Cog, K, Cg) -> (G*Cg, K, Cog)
    wt = mx.reshape(w, (g, cog, *ksize, cg))
    wt = mx.transpose(wt, (0, d + 2, *range(2, d + 2), 1))
    wt = mx.reshape(wt, (g * cg, *ksize, cog))
    lo, hi = [], []
    for i in range(d):
        n, k, o = x.shape[1 + i], ksize[i], ct.shape[1 + i]
        span = (n - 1) * p["input_dilation"][i] + 1
        ct_span = (o - 1) * p["stride"][i] + 1
        lo.append(p["kernel_dilation"][i] * (k - 1) - p["pad_lo"][i])
        hi.append(span - ct_span + p["pad_lo"][i])
    gx = _node(ct, wt, _params(p["input_dilation"], lo, hi, p["kernel_dilation"], p["stride"],
                               g, not p["flip"]))
    return gx.astype(x.dtype) if gx.dtype is not x.dtype else gx


def _weight_grad(ct, x, w, p):
    """d(loss)/dw: the input and the cotangent correlated over the batch (the batch becomes
    the channel axis, the group-local input channels the batch), kernel dilation and
    stride trading places."""
    mx = _mx()
    d = x.ndim - 2
    g = p["groups"]
    n, c_in = x.shape[0], x.shape[-1]
    cg = c_in // g
    # x (N, *S, G*Cg) -> (Cg, *S, G*N)
    xs = mx.reshape(x, (n, *x.shape[1:-1], g, cg))
    xs = mx.transpose(xs, (d + 2, *range(1, d + 1), d + 1, 0))
    xs = mx.reshape(xs, (cg, *x.shape[1:-1], g * n))
    # ct (N, *O, C_out) -> (C_out, *O, N)
    cs = mx.transpose(ct, (d + 1, *range(1, d + 1), 0))
    hi = []
    for i in range(d):
        L, k, o = x.shape[1 + i], w.shape[1 + i], ct.shape[1 + i]
        s, kd = p["stride"][i], p["kernel_dilation"][i]
        padded = (L - 1) * p["input_dilation"][i] + 1 + p["pad_lo"][i] + p["pad_hi"][i]
        # the forward may leave input elements past the last window unread: crop them so
        # that exactly K kernel positions come out
        excess = padded - s * (o - 1) - 1 - kd * (k - 1)
        hi.append(p["pad_hi"][i] - excess)
    r = _node(xs, cs, _params(p["kernel_dilation"], p["pad_lo"], hi, p["stride"],
                              p["input_dilation"], g, False))
    # (Cg, *K, C_out) -> (C_out, *K, Cg)
    gw = mx.transpose(r, (d + 1, *range(1, d + 1), 0))
    if p["flip"]:
        gw = mx.flip(gw, axis=tuple(range(1, d + 1)))
    return gw.astype(w.dtype) if gw.dtype is not w.dtype else gw


def _conv_vjp(primals, ct, out, **p):
    x, w = primals
    if x.shape[0] == 0 or 0 in out.shape:
        zeros = _mx().zeros
        return [zeros(x.shape, x.dtype) if _is_inexact(x.dtype) else None,
                zeros(w.shape, w.dtype) if _is_inexact(w.dtype) else None]
    gx = _input_grad(ct, x, w, p) if _is_inexact(x.dtype) else None
    gw = _weight_grad(ct, x, w, p) if _is_inexact(w.dtype) else None
    return [gx, gw]


def _conv_jvp(primals, tangents, out, **p):
    # bilinear: d(x * w) = dx * w + x * dw
    mx = _mx()
    x, w = primals
    tx, tw = tangents
    res = None
    if tx is not None and _is_inexact(x.dtype):
        res = _node(tx, w, p)
    if tw is not None and _is_inexact(w.dtype):
        term = _node(x, tw, p)
        res = term if res is None else res + term
    if res is None:
        return mx.zeros(out.shape, out.dtype)
    return res.astype(out.dtype) if res.dtype is not out.dtype else res


def _conv_vmap(inputs, axes, out, **p):
    from mx.core.transforms import move_batch_axis
    mx = _mx()
    x, w = inputs
    ax, aw = axes
    d = len(p["stride"])
    if aw is None:
        # batch folds into N
        x = move_batch_axis(x, ax, 0)
        b, n = x.shape[0], x.shape[1]
        y = _node(mx.reshape(x, (b * n, *x.shape[2:])), w, p)
        return mx.reshape(y, (b, n, *y.shape[1:])), 0
    # batched weights: one group per (example, group), channels of the examples side by side
    w = move_batch_axis(w, aw, 0)
    b = w.shape[0]
    if ax is None:
        x = mx.broadcast_to(x, (b, *x.shape))
    else:
        x = move_batch_axis(x, ax, 0)
    n, c_in = x.shape[1], x.shape[-1]
    # (B, N, *S, C) -> (N, *S, B, C) -> (N, *S, B*C)
    xs = mx.transpose(x, (1, *range(2, d + 2), 0, d + 2))
    xs = mx.reshape(xs, (n, *x.shape[2:-1], b * c_in))
    ws = mx.reshape(w, (b * w.shape[1], *w.shape[2:]))
    q = dict(p, groups=p["groups"] * b)
    y = _node(xs, ws, q)
    c_out = w.shape[1]
    y = mx.reshape(y, (n, *y.shape[1:-1], b, c_out))
    return mx.moveaxis(y, d + 1, 0), 0


def install_rules():
    CONV.vjp = _conv_vjp
    CONV.jvp = _conv_jvp
    CONV.vmap = _conv_vmap
