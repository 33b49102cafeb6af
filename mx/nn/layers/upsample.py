"""Spatial upsampling (nearest, linear and cubic interpolation) of channels-last inputs."""
from __future__ import annotations

from math import ceil
from typing import Literal, Tuple, Union

import mx.core as mx
from mx.nn.layers.base import Module


def _source_positions(n, scale, align_corners):
    """Where each of the int(scale * n) outputs samples the input axis of length n."""
    m = int(scale * n)
    out = mx.arange(m, dtype=mx.float32)
    if align_corners:
        return out * ((n - 1) / max(m - 1, 1))
    step = 1 / scale
    # half-pixel centres: output pixel i's centre maps to input coordinate (i+.5)/s - .5
    return out * step - ((m - 1) * step - n + 1) / 2


def _linear_taps(n, scale, align_corners):
    pos = mx.clip(_source_positions(n, scale, align_corners), 0, n - 1)
    left, right = mx.floor(pos), mx.ceil(pos)
    w = pos - left
    return [(left, 1 - w), (right, w)]


def _cubic_weight(dist, a, near):
    if near:  # |d| <= 1
        return ((a + 2.0) * dist - (a + 3.0)) * dist * dist + 1
    return (((dist - 5) * dist + 8) * dist - 4) * a  # 1 < |d| <= 2


def _cubic_taps(n, scale, align_corners):
    pos = _source_positions(n, scale, align_corners)
    l1 = mx.floor(pos)
    r1 = mx.floor(pos + 1)
    taps = []
    for idx, near in ((l1, True), (r1, True), (l1 - 1, False), (r1 + 1, False)):
        # OpenCV's kernel (a = -0.75); the weights use the unclipped taps
        taps.append((mx.clip(idx, 0, n - 1), _cubic_weight(mx.abs(pos - idx), -0.75, near)))
    return taps


def _triangle(d):
    return mx.maximum(1.0 - d, 0.0)


def _keys_cubic(d):
    # PIL's cubic kernel (a = -0.5), used when antialiasing
    return mx.where(d <= 1.0, _cubic_weight(d, -0.5, True),
                    mx.where(d <= 2.0, _cubic_weight(d, -0.5, False), 0.0))


def _antialiased_taps(kernel, radius):
    def taps_fn(n, scale, align_corners):
        pos = _source_positions(n, scale, align_corners)
        # when shrinking, the kernel widens by 1/scale to act as a low-pass filter
        widen = 1.0 / scale if scale < 1 else 1.0
        count = ceil(radius * widen) + 1
        base = mx.floor(pos)
        idxs, ws = [], []
        for k in range(-count + 1, count):
            idx = base + k
            w = kernel(mx.abs(pos - idx) / widen)
            ws.append(mx.where((idx >= 0) & (idx < n), w, 0.0))
            idxs.append(idx)
        total = ws[0]
        for w in ws[1:]:
            total = total + w
        total = mx.where(total > 0, total, 1.0)
        return [(mx.clip(i, 0, n - 1), w / total) for i, w in zip(idxs, ws)]
    return taps_fn


def _interpolate(x, scale_factor, taps_fn, align_corners):
    """Separable interpolation: each spatial axis in turn is replaced by weighted sums of
    gathered input rows (a product of 1-d weights over the axes is the n-d kernel)."""
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    for axis, s in zip(range(1, dims + 1), scale_factor):
        n = x.shape[axis]
        shape = [1] * x.ndim
        shape[axis] = -1
        total = None
        for idx, w in taps_fn(n, s, align_corners):
            term = mx.take(x, idx.astype(mx.uint32), axis=axis) * w.reshape(shape)
            total = term if total is None else total + term
        x = total
    return x


def upsample_nearest(x: mx.array, scale_factor: Tuple):
    """Nearest-neighbour upsampling; integer factors repeat each element."""
    dims = x.ndim - 2
    if dims != len(scale_factor):
        raise ValueError("A scale needs to be provided for each spatial dimension")
    if tuple(map(int, scale_factor)) == tuple(scale_factor):
        for axis, s in zip(range(1, dims + 1), scale_factor):
            x = mx.repeat(x, int(s), axis=axis)
        return x
    index = [slice(None)]
    for i, (n, s) in enumerate(zip(x.shape[1:-1], scale_factor)):
        m = int(s * n)
        pos = mx.arange(m, dtype=mx.float32)
        if m > n:
            pos = mx.round((pos + 0.5) * (n / m) - 0.5)
        else:
            pos = pos * (n / m)
        shape = [1] * dims
        shape[i] = -1
        index.append(pos.astype(mx.uint32).reshape(shape))
    return x[tuple(index)]


def _check_antialias(align_corners, antialias):
    if antialias and align_corners:
        raise ValueError("[Upsample] antialias=True with align_corners=True is not supported. "
                         "Use align_corners=False for antialiased interpolation.")


def upsample_linear(x: mx.array, scale_factor: Tuple, align_corners: bool = False,
                    antialias: bool = False):
    """(Bi/tri-)linear interpolation; `antialias` filters with a widened triangle kernel
    when shrinking."""
    _check_antialias(align_corners, antialias)
    taps = _antialiased_taps(_triangle, 1.0) if antialias else _linear_taps
    return _interpolate(x, scale_factor, taps, align_corners)


def upsample_cubic(x: mx.array, scale_factor: Tuple, align_corners: bool = False,
                   antialias: bool = False):
    """Cubic interpolation (a = -0.75, or the a = -0.5 antialiased kernel)."""
    _check_antialias(align_corners, antialias)
    taps = _antialiased_taps(_keys_cubic, 2.0) if antialias else _cubic_taps
    return _interpolate(x, scale_factor, taps, align_corners)


class Upsample(Module):
    """Upsamples the spatial axes (1 .. ndim - 2) of channels-last inputs by
    `scale_factor` (one number or one per spatial axis) with "nearest", "linear" or
    "cubic" interpolation; `align_corners` maps the corner pixels onto each other and
    `antialias` low-pass filters when shrinking (not with "nearest")."""

    def __init__(self, scale_factor: Union[float, Tuple],
                 mode: Literal["nearest", "linear", "cubic"] = "nearest",
                 align_corners: bool = False, antialias: bool = False):
        super().__init__()
        if mode not in ["nearest", "linear", "cubic"]:
            raise ValueError(f"[Upsample] Got unsupported upsampling algorithm: {mode}")
        if antialias and mode == "nearest":
            raise ValueError("[Upsample] Antialiasing is not supported for nearest neighbor "
                             "upsampling")
        if isinstance(scale_factor, (list, tuple)):
            scale_factor = tuple(map(float, scale_factor))
        else:
            scale_factor = float(scale_factor)
        _check_antialias(align_corners, antialias)
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.antialias = antialias

    def _extra_repr(self) -> str:
        text = (f"scale_factor={self.scale_factor}, mode={self.mode!r}, "
                f"align_corners={self.align_corners}")
        return text + (", antialias=True" if self.antialias else "")

    def __call__(self, x: mx.array) -> mx.array:
        dims = x.ndim - 2
        if dims <= 0:
            raise ValueError(f"[Upsample] The input should have at least 1 spatial dimension "
                             f"which means it should be at least 3D but {x.ndim}D was provided")
        scale = self.scale_factor
        if isinstance(scale, tuple):
            if len(scale) != dims:
                raise ValueError(f"[Upsample] One scale per spatial dimension is required but "
                                 f"scale_factor={scale} and the number of spatial dimensions "
                                 f"were {dims}")
        else:
            scale = (scale,) * dims
        if self.mode == "nearest":
            return upsample_nearest(x, scale)
        if self.mode == "linear":
            return upsample_linear(x, scale, self.align_corners, self.antialias)
        return upsample_cubic(x, scale, self.align_corners, self.antialias)
