"""Positional encodings: rotary (RoPE), sinusoidal and ALiBi."""
from __future__ import annotations

import math
from typing import Optional

import mx.core as mx
from mx.nn.layers.base import Module


def rope(x, dims, traditional, base, scale, offset):
    """mx.fast.rope, or the same rotation from plain ops: position p = (offset + t) * scale
    of row t (axis -2) turns feature pair i of the first `dims` features by
    p * base ** (-2i / dims). Pairs are (2i, 2i + 1) when traditional, else
    (i, i + dims / 2)."""
    fast = getattr(mx.fast, "rope", None)
    if fast is not None:
        return fast(x, dims, traditional=traditional, base=base, scale=scale, offset=offset)
    half = dims // 2
    length = x.shape[-2]
    positions = (mx.arange(length, dtype=mx.float32) + offset) * scale
    inv_freq = mx.exp(-mx.arange(half, dtype=mx.float32) * (math.log(base) / half))
    theta = positions[:, None] * inv_freq[None, :]
    cos, sin = mx.cos(theta), mx.sin(theta)
    rotated, rest = x[..., :dims], x[..., dims:]
    if traditional:
        a, b = rotated[..., 0::2], rotated[..., 1::2]
        ra, rb = a * cos - b * sin, a * sin + b * cos
        out = mx.stack([ra, rb], axis=-1).reshape(*rotated.shape)
    else:
        a, b = rotated[..., :half], rotated[..., half:]
        out = mx.concatenate([a * cos - b * sin, a * sin + b * cos], axis=-1)
    out = out.astype(x.dtype)
    return out if dims == x.shape[-1] else mx.concatenate([out, rest], axis=-1)


class RoPE(Module):
    """Rotary positional encoding of the first `dims` features of inputs whose axis -2 is
    the sequence. `traditional` rotates consecutive pairs instead of the two halves;
    `base` sets the frequencies and `scale` multiplies the positions."""

    def __init__(self, dims: int, traditional: bool = False, base: float = 10000,
                 scale: float = 1.0):
        super().__init__()
        self.dims = dims
        self.traditional = traditional
        self.base = base
        self.scale = scale

    def _extra_repr(self):
        return f"{self.dims}, traditional={self.traditional}"

    def __call__(self, x, offset: int = 0):
        return rope(x, self.dims, self.traditional, self.base, self.scale, offset)


class SinusoidalPositionalEncoding(Module):
    """Maps positions x to ``[sin(x * s), cos(x * s)]`` (cos first with `cos_first`), the
    dims / 2 frequencies s spaced geometrically from max_freq down to min_freq (times 2 pi
    with `full_turns`), all multiplied by `scale` (default sqrt(2 / dims))."""

    def __init__(self, dims: int, min_freq: float = 0.0001, max_freq: float = 1,
                 scale: Optional[float] = None, cos_first: bool = False,
                 full_turns: bool = False):
        super().__init__()
        if dims <= 0 or dims % 2 != 0:
            raise ValueError(f"[SinusoidalPositionalEncoding] dims must be positive and even "
                             f"but got {dims}.")
        half = dims // 2
        # fraction of the way from min_freq (0) to max_freq (1), in log space
        t = mx.array([1.0]) if half == 1 else 1 - mx.arange(0, half) / (half - 1)
        lo, hi = math.log(min_freq), math.log(max_freq)
        self._sigmas = mx.exp(t * (hi - lo) + lo)
        if full_turns:
            self._sigmas = self._sigmas * (2 * math.pi)
        self.scale = scale if scale is not None else (2 / dims) ** 0.5
        self.cos_first = cos_first

    def __call__(self, x):
        y = x[..., None] * self._sigmas
        parts = [mx.cos(y), mx.sin(y)] if self.cos_first else [mx.sin(y), mx.cos(y)]
        y = mx.concatenate(parts, axis=-1)
        return y * self.scale if self.scale != 1 else y


class ALiBi(Module):
    """Attention with linear biases: adds ``-slope_h * |i - j|`` to the attention scores of
    head h, query i and key j (scores shaped (B, heads, queries, keys))."""

    @staticmethod
    def create_alibi_matrix(q_sequence_length: int, k_sequence_length: int, num_heads: int,
                            offset: int = 0, dtype: mx.Dtype = mx.float32) -> mx.array:
        """The (1, num_heads, q_sequence_length - offset, k_sequence_length) bias."""
        q = mx.arange(offset, q_sequence_length)
        k = mx.arange(0, k_sequence_length)
        distance = -mx.abs(mx.expand_dims(q[:, None] - k[None, :], axis=(0, 1)))
        slopes = ALiBi.create_alibi_slope(num_heads=num_heads, dtype=dtype)
        return (distance * slopes).astype(dtype)

    @staticmethod
    def create_alibi_slope(num_heads: int, dtype: mx.Dtype = mx.float32) -> mx.array:
        """The per-head slopes, shape (num_heads, 1, 1): a geometric sequence for a power of
        two heads, interleaved with the next power's for other counts."""
        def slopes(n):
            if math.log2(n).is_integer():
                first = 2 ** (-(2 ** -(math.log2(n) - 3)))
                return [first * first**i for i in range(n)]
            p = 2 ** math.floor(math.log2(n))
            return slopes(p) + slopes(2 * p)[0::2][: n - p]

        return mx.expand_dims(mx.array(slopes(num_heads), dtype=dtype), axis=(-1, -2))

    def __call__(self, attention_scores: mx.array, offset: int = 0,
                 mask: Optional[mx.array] = None) -> mx.array:
        bias = ALiBi.create_alibi_matrix(
            q_sequence_length=attention_scores.shape[-2] + offset,
            k_sequence_length=attention_scores.shape[-1],
            num_heads=attention_scores.shape[1], offset=offset, dtype=attention_scores.dtype)
        if mask is not None:
            bias = bias + mask
        return attention_scores + bias
