"""mx.fft: discrete Fourier transforms with MLX's API.

Three primitives do the transforms (kernels from numpy.fft, i.e. pocketfft): a complex
transform over some axes (forward or inverse), a real-to-complex one and a complex-to-real
one. Each keeps the sizes of the axes it transforms; zero-padding and truncation to the
requested sizes (n, s) are ordinary pad/split ops in the graph, so the rules stay simple.
Like MLX, results are complex64 (real inputs are promoted; there is no complex128) and the
inverse real transforms return float32.

Gradients follow MLX's convention for complex numbers: the vjp of a linear map is its
conjugate transpose (for fft with norm "backward" that is n * ifft).

stft and istft are compositions (pad, strided frames, window, rfft/fft; overlap-add), so
they are differentiable and batchable through the rules of those ops.
"""
from __future__ import annotations

import operator

import numpy as np

from mx.core._array import make_node, shape_str
from mx.core.dtypes import complex64, float32
from mx.core.ops._util import AxisError, as_array
from mx.core.primitives import declare

_NORMS = ("backward", "ortho", "forward")
# the adjoint of a transform with one normalisation is the opposite transform with this one
_DUAL = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _mx():
    import mx.core as mx
    return mx


# ---------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------
def _fftn_kernel(x, axes, inverse, norm):
    f = np.fft.ifftn if inverse else np.fft.fftn
    return f(x, axes=axes, norm=norm)


def _rfftn_kernel(x, axes, norm):
    return np.fft.rfftn(x, axes=axes, norm=norm)


def _irfftn_kernel(x, axes, n, norm):
    s = [x.shape[a] for a in axes[:-1]] + [n]
    return np.fft.irfftn(x, s=s, axes=axes, norm=norm)


FFTN = declare("fftn", cpu=_fftn_kernel, doc="complex DFT over axes (sizes kept)")
RFFTN = declare("rfftn", cpu=_rfftn_kernel, doc="real-to-complex DFT over axes")
IRFFTN = declare("irfftn", cpu=_irfftn_kernel, doc="complex-to-real inverse DFT over axes")


def _fftn_node(x, axes, inverse, norm, stream=None):
    return make_node(FFTN, (x,), {"axes": axes, "inverse": inverse, "norm": norm}, x.shape,
                     complex64, stream)


def _rfftn_node(x, axes, norm, stream=None):
    shape = list(x.shape)
    shape[axes[-1]] = shape[axes[-1]] // 2 + 1
    return make_node(RFFTN, (x,), {"axes": axes, "norm": norm}, tuple(shape), complex64, stream)


def _irfftn_node(x, axes, n, norm, stream=None):
    shape = list(x.shape)
    shape[axes[-1]] = n
    return make_node(IRFFTN, (x,), {"axes": axes, "n": n, "norm": norm}, tuple(shape), float32,
                     stream)


# ---------------------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------------------
def _check_norm(norm, op):
    if not isinstance(norm, str):
        raise TypeError(f"[{op}] norm must be a string, got {type(norm).__name__}.")
    if norm not in _NORMS:
        raise ValueError(f"[{op}] Invalid norm. Expected one of {{'backward', 'ortho', "
                         f"'forward'}}; got {norm!r}.")
    return norm


def _int(v, name, op):
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"[{op}] {name} must be an integer, got bool.")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an integer, got {type(v).__name__}.") from None


def _axis(ax, nd, op):
    ax = _int(ax, "axis", op)
    if not -nd <= ax < nd:
        raise AxisError(f"[{op}] Axis {ax} is out of bounds for array with {nd} dimensions.")
    return ax % nd


def _size(n, op):
    n = _int(n, "size", op)
    if n <= 0:
        raise ValueError(f"[{op}] Invalid FFT output size requested ({n}).")
    return n


def _plan(x, s, axes, op):
    """Normalised (axes, sizes) for the n-dimensional transforms, with MLX's rules: axes
    None means all axes and then s must be None too."""
    if x.ndim == 0:
        raise ValueError(f"[{op}] Requires array with at least one dimension.")
    if axes is None:
        if s is not None:
            raise ValueError(f"[{op}] `axes` should not be `None` if `s` is not `None`.")
        axes = tuple(range(x.ndim))
    else:
        if not isinstance(axes, (list, tuple)):
            raise TypeError(f"[{op}] axes must be a sequence of ints, got "
                            f"{type(axes).__name__}.")
        raw = tuple(axes)
        axes = tuple(_axis(a, x.ndim, op) for a in raw)
        if len(set(axes)) != len(axes):
            raise ValueError(f"[{op}] Duplicated axis received {raw}.")
    if s is not None:
        if not isinstance(s, (list, tuple)):
            raise TypeError(f"[{op}] s must be a sequence of ints, got {type(s).__name__}.")
        if len(s) != len(axes):
            raise ValueError(f"[{op}] Shape and axes have different sizes: s={tuple(s)} for "
                             f"axes={axes}.")
        s = tuple(_size(n, op) for n in s)
    return axes, s


def _resize(x, axis, size, stream=None):
    """x zero-padded or truncated to `size` along axis (pad and split are differentiable)."""
    mx = _mx()
    cur = x.shape[axis]
    if cur == size:
        return x
    if cur > size:
        return mx.split(x, [size], axis=axis, stream=stream)[0]
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, size - cur)
    return mx.pad(x, widths, stream=stream)


def _as(x, dtype, stream=None):
    return x if x.dtype is dtype else _mx().astype(x, dtype, stream=stream)


# ---------------------------------------------------------------------------------------
# complex transforms
# ---------------------------------------------------------------------------------------
def _c2c(a, s, axes, norm, inverse, op, stream):
    x = as_array(a, op)
    _check_norm(norm, op)
    axes, s = _plan(x, s, axes, op)
    if not axes:
        return x
    if s is None:
        s = tuple(_size(x.shape[ax], op) for ax in axes)
    for ax, n in zip(axes, s):
        x = _resize(x, ax, n, stream)
    return _fftn_node(_as(x, complex64, stream), axes, inverse, norm, stream)


def _one_axis(x, n, axis, op):
    if x.ndim == 0:
        raise ValueError(f"[{op}] Requires array with at least one dimension.")
    ax = _axis(axis, x.ndim, op)
    return ax, (None if n is None else _size(n, op))


def fft(a, n=None, axis=-1, norm="backward", stream=None):
    """The one-dimensional DFT along `axis`, the axis zero-padded or truncated to `n`."""
    x = as_array(a, "fft")
    ax, n = _one_axis(x, n, axis, "fft")
    return _c2c(x, None if n is None else (n,), (ax,), norm, False, "fft", stream)


def ifft(a, n=None, axis=-1, norm="backward", stream=None):
    """The one-dimensional inverse DFT along `axis`."""
    x = as_array(a, "ifft")
    ax, n = _one_axis(x, n, axis, "ifft")
    return _c2c(x, None if n is None else (n,), (ax,), norm, True, "ifft", stream)


def fft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):  # noqa: B006 (MLX's signature)
    """The two-dimensional DFT over `axes` (default the last two)."""
    return _c2c(a, s, axes, norm, False, "fft2", stream)


def ifft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):  # noqa: B006
    """The two-dimensional inverse DFT over `axes` (default the last two)."""
    return _c2c(a, s, axes, norm, True, "ifft2", stream)


def fftn(a, s=None, axes=None, norm="backward", stream=None):
    """The n-dimensional DFT over `axes` (default all), each padded/truncated to `s`."""
    return _c2c(a, s, axes, norm, False, "fftn", stream)


def ifftn(a, s=None, axes=None, norm="backward", stream=None):
    """The n-dimensional inverse DFT over `axes` (default all)."""
    return _c2c(a, s, axes, norm, True, "ifftn", stream)


# ---------------------------------------------------------------------------------------
# real transforms
# ---------------------------------------------------------------------------------------
def _r2c(a, s, axes, norm, op, stream):
    x = as_array(a, op)
    _check_norm(norm, op)
    axes, s = _plan(x, s, axes, op)
    if not axes:
        return x
    if s is None:
        s = tuple(_size(x.shape[ax], op) for ax in axes)
    # complex input is silently cast to real (as MLX does)
    x = _as(x, float32, stream)
    for ax, n in zip(axes, s):
        x = _resize(x, ax, n, stream)
    return _rfftn_node(x, axes, norm, stream)


def _c2r(a, s, axes, norm, op, stream):
    x = as_array(a, op)
    _check_norm(norm, op)
    axes, s = _plan(x, s, axes, op)
    if not axes:
        return x
    if s is None:
        s = tuple(x.shape[ax] for ax in axes[:-1]) + (2 * (x.shape[axes[-1]] - 1),)
        s = tuple(_size(n, op) for n in s)
    x = _as(x, complex64, stream)
    for ax, n in zip(axes[:-1], s[:-1]):
        x = _resize(x, ax, n, stream)
    x = _resize(x, axes[-1], s[-1] // 2 + 1, stream)
    return _irfftn_node(x, axes, s[-1], norm, stream)


def rfft(a, n=None, axis=-1, norm="backward", stream=None):
    """The DFT of real input along `axis`: the n // 2 + 1 non-negative frequencies."""
    x = as_array(a, "rfft")
    ax, n = _one_axis(x, n, axis, "rfft")
    return _r2c(x, None if n is None else (n,), (ax,), norm, "rfft", stream)


def irfft(a, n=None, axis=-1, norm="backward", stream=None):
    """The inverse of rfft: a real signal of length `n` (default 2 * (m - 1) for m input
    frequencies) along `axis`."""
    x = as_array(a, "irfft")
    ax, n = _one_axis(x, n, axis, "irfft")
    return _c2r(x, None if n is None else (n,), (ax,), norm, "irfft", stream)


def rfft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):  # noqa: B006
    """The two-dimensional DFT of real input; the last of `axes` is the halved one."""
    return _r2c(a, s, axes, norm, "rfft2", stream)


def irfft2(a, s=None, axes=[-2, -1], norm="backward", stream=None):  # noqa: B006
    """The inverse of rfft2 (real output; `s` gives the output sizes)."""
    return _c2r(a, s, axes, norm, "irfft2", stream)


def rfftn(a, s=None, axes=None, norm="backward", stream=None):
    """The n-dimensional DFT of real input; the last of `axes` is the halved one."""
    return _r2c(a, s, axes, norm, "rfftn", stream)


def irfftn(a, s=None, axes=None, norm="backward", stream=None):
    """The inverse of rfftn (real output; `s` gives the output sizes)."""
    return _c2r(a, s, axes, norm, "irfftn", stream)


# ---------------------------------------------------------------------------------------
# frequencies and shifts
# ---------------------------------------------------------------------------------------
def _freq_args(n, d, op):
    n = _int(n, "n", op)
    if n <= 0:
        raise ValueError(f"[{op}] `n` must be greater than 0; got {n}.")
    if not hasattr(d, "shape") and d == 0:
        raise ValueError(f"[{op}] `d` must be non-zero.")
    return n


def _scaled(freqs, d, stream):
    mx = _mx()
    if hasattr(d, "shape"):
        return mx.astype(mx.divide(mx.array(freqs.astype(np.float32)), d, stream=stream), float32)
    return mx.array((freqs / float(d)).astype(np.float32))


def fftfreq(n, d=1.0, stream=None):
    """The sample frequencies of an n-point DFT with sample spacing d (float32):
    [0, 1, ..., (n-1)//2, -(n//2), ..., -1] / (n * d)."""
    n = _freq_args(n, d, "fftfreq")
    return _scaled(np.fft.fftfreq(n), d, stream)


def rfftfreq(n, d=1.0, stream=None):
    """The sample frequencies of rfft's output: [0, 1, ..., n//2] / (n * d) (float32)."""
    n = _freq_args(n, d, "rfftfreq")
    return _scaled(np.fft.rfftfreq(n), d, stream)


def _shift(a, axes, op, inverse, stream):
    mx = _mx()
    x = as_array(a, op)
    if axes is None:
        axes = list(range(x.ndim))
    elif not isinstance(axes, (list, tuple)):
        axes = [axes]
    total = {}
    for raw in axes:
        r = _int(raw, "axis", op)
        if not -x.ndim <= r < x.ndim:
            raise AxisError(f"[{op}] Invalid axis {r} for array with {x.ndim} dimensions.")
        ax = r % x.ndim
        step = x.shape[ax] // 2
        # repeated axes shift repeatedly, as MLX does
        total[ax] = total.get(ax, 0) + (-step if inverse else step)
    if not total:
        return x
    return mx.roll(x, list(total.values()), axis=list(total.keys()), stream=stream)


def fftshift(a, axes=None, stream=None):
    """Move the zero-frequency term to the centre: roll each of `axes` (default all) by
    half its size."""
    return _shift(a, axes, "fftshift", False, stream)


def ifftshift(a, axes=None, stream=None):
    """The inverse of fftshift (differs from it on odd-sized axes)."""
    return _shift(a, axes, "ifftshift", True, stream)


# ---------------------------------------------------------------------------------------
# short-time transforms
# ---------------------------------------------------------------------------------------
_PAD_MODES = ("reflect", "constant", "edge")


def _positive(v, name, op):
    v = _int(v, name, op)
    if v <= 0:
        raise ValueError(f"[{op}] {name} must be positive; got {v}.")
    return v


def _window(window, win_length, n_fft, op, stream):
    """The analysis window centred and zero-padded to n_fft (rectangular of win_length by
    default; a given window's own length wins over win_length)."""
    mx = _mx()
    if window is not None:
        w = as_array(window, op)
        if w.ndim != 1:
            raise ValueError(f"[{op}] window must be a one-dimensional array; got shape "
                             f"{shape_str(w.shape)}.")
        w = _as(w, float32, stream)
        wl = w.shape[0]
    else:
        wl = n_fft if win_length is None else _int(win_length, "win_length", op)
        if wl < 0:
            raise ValueError(f"[{op}] win_length must be non-negative; got {wl}.")
        w = None
    if wl > n_fft:
        raise ValueError(f"[{op}] window length must not exceed n_fft ({wl} > {n_fft}).")
    left = (n_fft - wl) // 2
    if w is None:
        full = np.zeros(n_fft, np.float32)
        full[left:left + wl] = 1.0
        return mx.array(full)
    if wl == n_fft:
        return w
    return mx.pad(w, [(left, n_fft - wl - left)], stream=stream)


def _row_major(shape):
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc)
        acc *= d
    return tuple(reversed(strides))


def stft(x, n_fft=2048, hop_length=None, win_length=None, window=None, center=True,
         pad_mode="reflect", norm="backward", onesided=None, stream=None):
    """The short-time Fourier transform of the last axis of x: frames of n_fft samples
    every hop_length (default n_fft // 4), multiplied by the window and transformed.
    Returns complex64 of shape (..., n_freq, n_frames); n_freq is n_fft // 2 + 1 when
    onesided (the default for real input) and n_fft otherwise. With center the signal is
    first padded by n_fft // 2 on both sides using pad_mode."""
    mx = _mx()
    op = "stft"
    sig = as_array(x, op)
    if sig.ndim < 1:
        raise ValueError(f"[{op}] Input must have at least one dimension.")
    n_fft = _positive(n_fft, "n_fft", op)
    hop = n_fft // 4 if hop_length is None else _int(hop_length, "hop_length", op)
    if hop <= 0:
        raise ValueError(f"[{op}] hop_length must be positive; got {hop}.")
    _check_norm(norm, op)
    if pad_mode not in _PAD_MODES:
        raise ValueError(f"[{op}] Invalid pad_mode {pad_mode!r}; expected one of 'reflect', "
                         "'constant' or 'edge'.")
    w = _window(window, win_length, n_fft, op, stream)
    is_complex = sig.dtype is complex64
    if onesided is None:
        onesided = not is_complex
    real = onesided  # complex input with onesided=True is cast to real, as in MLX
    sig = _as(sig, float32 if real else complex64, stream)
    if center:
        p = n_fft // 2
        sig = mx.pad(sig, [(0, 0)] * (sig.ndim - 1) + [(p, p)], mode=pad_mode, stream=stream)
    length = sig.shape[-1]
    if length < n_fft:
        raise ValueError(f"[{op}] Input is too short for the given n_fft ({length} samples "
                         f"after padding, n_fft={n_fft}).")
    n_frames = 1 + (length - n_fft) // hop
    batch = sig.shape[:-1]
    frames = mx.as_strided(sig, batch + (n_frames, n_fft),
                           _row_major(sig.shape)[:-1] + (hop, 1), stream=stream)
    frames = frames * w
    spec = rfft(frames, axis=-1, norm=norm, stream=stream) if real else \
        fft(frames, axis=-1, norm=norm, stream=stream)
    return mx.swapaxes(spec, -1, -2, stream=stream)


# window-envelope values at or below this count as zero (no frame covers the sample)
_ENVELOPE_EPS = 1e-11


def istft(stft_matrix, n_fft=None, hop_length=None, win_length=None, window=None,
          center=True, norm="backward", onesided=None, length=None, stream=None):
    """The inverse of stft: inverse-transform each frame, window it, overlap-add and divide
    by the summed squared window. n_fft defaults to 2 * (n_freq - 1) when onesided (the
    default) and n_freq otherwise; `length` trims or zero-pads the result. Returns float32
    of shape (..., samples)."""
    mx = _mx()
    from mx.core.ops.shape import _as_strided_add  # as_strided's transpose: overlap-add
    op = "istft"
    spec = as_array(stft_matrix, op)
    if spec.ndim < 2:
        raise ValueError(f"[{op}] Input must have at least two dimensions (freq, frames).")
    if onesided is None:
        onesided = True
    n_freq, n_frames = spec.shape[-2:]
    if n_fft is None:
        n_fft = 2 * (n_freq - 1) if onesided else n_freq
    n_fft = _positive(n_fft, "n_fft", op)
    hop = n_fft // 4 if hop_length is None else _int(hop_length, "hop_length", op)
    if hop <= 0:
        raise ValueError(f"[{op}] hop_length must be positive; got {hop}.")
    _check_norm(norm, op)
    if n_frames == 0:
        raise ValueError(f"[{op}] The input has no frames (shape {shape_str(spec.shape)}).")
    w = _window(window, win_length, n_fft, op, stream)
    frames = mx.swapaxes(_as(spec, complex64, stream), -1, -2, stream=stream)
    if onesided:
        frames = irfft(frames, n=n_fft, axis=-1, norm=norm, stream=stream)
    else:
        frames = mx.real(ifft(frames, n=n_fft, axis=-1, norm=norm, stream=stream))
    frames = frames * w
    total = n_fft + hop * (n_frames - 1)
    batch = frames.shape[:-2]
    shape = batch + (n_frames, n_fft)
    sig = _as_strided_add(frames, batch + (total,), shape,
                          _row_major(batch + (total,))[:-1] + (hop, 1), 0)
    env = _as_strided_add(mx.broadcast_to(mx.square(w), (n_frames, n_fft)), (total,),
                          (n_frames, n_fft), (hop, 1), 0)
    covered = env > _ENVELOPE_EPS
    sig = mx.where(covered, sig / mx.where(covered, env, 1.0), 0.0)
    start = n_fft // 2 if center else 0
    if length is None:
        stop = total - n_fft // 2 if center else total
    else:
        stop = start + max(_int(length, "length", op), 0)
    stop_in = min(stop, total)
    if start > 0 or stop_in < total:
        sig = mx.split(sig, [start, max(stop_in, start)], axis=-1, stream=stream)[1]
    want = stop - start
    if sig.shape[-1] < want:
        sig = mx.pad(sig, [(0, 0)] * (sig.ndim - 1) + [(0, want - sig.shape[-1])],
                     stream=stream)
    return sig


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def _shift_axes(axes):
    return tuple(a + 1 for a in axes)


def _irfft_weights(n, m):
    """Bins of a half spectrum that stand for two bins of the full one (all but the zero
    and Nyquist frequencies) weigh 2 in irfft's adjoint."""
    w = np.ones(m, np.float32)
    w[1:(n - 1) // 2 + 1] = 2.0
    return _mx().array(w.astype(np.complex64))


def install_rules():
    from mx.core.transforms import move_batch_axis

    def fftn_vjp(primals, ct, out, axes, inverse, norm):
        return [_fftn_node(ct, axes, not inverse, _DUAL[norm])]

    def fftn_jvp(primals, tangents, out, axes, inverse, norm):
        return _fftn_node(_as(tangents[0], complex64), axes, inverse, norm)

    def fftn_vmap(inputs, axes_, out, axes, inverse, norm):
        x = move_batch_axis(inputs[0], axes_[0], 0)
        return _fftn_node(x, _shift_axes(axes), inverse, norm), 0

    FFTN.vjp, FFTN.jvp, FFTN.vmap = fftn_vjp, fftn_jvp, fftn_vmap

    def rfftn_vjp(primals, ct, out, axes, norm):
        mx = _mx()
        last = axes[-1]
        n = primals[0].shape[last]
        full = _resize(ct, last, n)
        return [mx.real(_fftn_node(full, axes, True, _DUAL[norm]))]

    def rfftn_jvp(primals, tangents, out, axes, norm):
        return _rfftn_node(_as(tangents[0], float32), axes, norm)

    def rfftn_vmap(inputs, axes_, out, axes, norm):
        x = move_batch_axis(inputs[0], axes_[0], 0)
        return _rfftn_node(x, _shift_axes(axes), norm), 0

    RFFTN.vjp, RFFTN.jvp, RFFTN.vmap = rfftn_vjp, rfftn_jvp, rfftn_vmap

    def irfftn_vjp(primals, ct, out, axes, n, norm):
        mx = _mx()
        last = axes[-1]
        m = primals[0].shape[last]
        g = _rfftn_node(_as(ct, float32), axes, _DUAL[norm])
        shape = [1] * g.ndim
        shape[last] = m
        return [g * mx.reshape(_irfft_weights(n, m), shape)]

    def irfftn_jvp(primals, tangents, out, axes, n, norm):
        return _irfftn_node(_as(tangents[0], complex64), axes, n, norm)

    def irfftn_vmap(inputs, axes_, out, axes, n, norm):
        x = move_batch_axis(inputs[0], axes_[0], 0)
        return _irfftn_node(x, _shift_axes(axes), n, norm), 0

    IRFFTN.vjp, IRFFTN.jvp, IRFFTN.vmap = irfftn_vjp, irfftn_jvp, irfftn_vmap


__all__ = ["fft", "ifft", "fft2", "ifft2", "fftn", "ifftn", "rfft", "irfft", "rfft2", "irfft2",
           "rfftn", "irfftn", "fftfreq", "rfftfreq", "fftshift", "ifftshift", "stft", "istft"]
