"""Parameter initializers (MLX's mlx.nn.init): each factory returns a function that takes
an array and returns a new array of its shape."""

import math
from typing import Callable, Literal

import numpy as _np

import mx.core as mx


def constant(value: float, dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Fill with `value`."""
    def initializer(a: mx.array) -> mx.array:
        return mx.full(a.shape, value, dtype=dtype)
    return initializer


def normal(mean: float = 0.0, std: float = 1.0,
           dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Samples of N(mean, std ** 2)."""
    def initializer(a: mx.array) -> mx.array:
        return mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
    return initializer


def uniform(low: float = 0.0, high: float = 1.0,
            dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Samples of U(low, high)."""
    def initializer(a: mx.array) -> mx.array:
        return mx.random.uniform(low, high, a.shape, dtype=dtype)
    return initializer


def identity(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """The identity matrix (the input must be square)."""
    def initializer(arr: mx.array) -> mx.array:
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
            raise ValueError(f"The input array must be a square matrix but got shape "
                             f"{arr.shape}.")
        return mx.eye(n=arr.shape[0], dtype=dtype)
    return initializer


def _fans(x):
    """(fan_in, fan_out) of a weight (out, *receptive field, in)."""
    if x.ndim < 2:
        raise ValueError("Glorot / He initialization requires at least 2 dimensional input but "
                         f"input with {x.ndim} dimensions.")
    receptive = math.prod(x.shape[1:-1])
    return x.shape[-1] * receptive, x.shape[0] * receptive


def _fan(a, mode):
    fan_in, fan_out = _fans(a)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"Invalid mode: {mode}. Valid modes are: fan_in, fan_out")


def glorot_normal(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array, float], mx.array]:
    """Glorot (Xavier) normal: std = gain * sqrt(2 / (fan_in + fan_out))."""
    def initializer(a: mx.array, gain: float = 1.0) -> mx.array:
        fan_in, fan_out = _fans(a)
        std = gain * math.sqrt(2.0 / (fan_in + fan_out))
        return mx.random.normal(shape=a.shape, scale=std, dtype=dtype)
    return initializer


def glorot_uniform(dtype: mx.Dtype = mx.float32) -> Callable[[mx.array, float], mx.array]:
    """Glorot (Xavier) uniform on [-limit, limit], limit = gain * sqrt(6 / (fan_in +
    fan_out))."""
    def initializer(a: mx.array, gain: float = 1.0) -> mx.array:
        fan_in, fan_out = _fans(a)
        limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
        return mx.random.uniform(-limit, limit, a.shape, dtype=dtype)
    return initializer


def he_normal(dtype: mx.Dtype = mx.float32) -> Callable[
        [mx.array, Literal["fan_in", "fan_out"], float], mx.array]:
    """He (Kaiming) normal: std = gain / sqrt(fan), fan chosen by `mode`."""
    def initializer(a: mx.array, mode: Literal["fan_in", "fan_out"] = "fan_in",
                    gain: float = 1.0) -> mx.array:
        std = gain / math.sqrt(_fan(a, mode))
        return mx.random.normal(shape=a.shape, scale=std, dtype=dtype)
    return initializer


def he_uniform(dtype: mx.Dtype = mx.float32) -> Callable[
        [mx.array, Literal["fan_in", "fan_out"], float], mx.array]:
    """He (Kaiming) uniform on [-limit, limit], limit = gain * sqrt(3 / fan)."""
    def initializer(a: mx.array, mode: Literal["fan_in", "fan_out"] = "fan_in",
                    gain: float = 1.0) -> mx.array:
        limit = gain * math.sqrt(3.0 / _fan(a, mode))
        return mx.random.uniform(-limit, limit, a.shape, dtype=dtype)
    return initializer


def sparse(sparsity: float, mean: float = 0.0, std: float = 1.0,
           dtype: mx.Dtype = mx.float32) -> Callable[[mx.array], mx.array]:
    """Normal samples with ceil(sparsity * columns) randomly chosen entries of every row
    set to zero (2-d inputs only)."""
    def initializer(a: mx.array) -> mx.array:
        if a.ndim != 2:
            raise ValueError("Only tensors with 2 dimensions are supported")
        rows, cols = a.shape
        zeros = int(math.ceil(sparsity * cols))
        order = mx.argsort(mx.random.uniform(shape=a.shape), axis=1)
        out = mx.random.normal(shape=a.shape, scale=std, loc=mean, dtype=dtype)
        out[mx.arange(rows).reshape(rows, 1), order[:, :zeros]] = 0
        return out
    return initializer


def _qr(m):
    qr = getattr(mx.linalg, "qr", None)
    if qr is not None:
        return qr(m, stream=mx.cpu)
    q, r = _np.linalg.qr(_np.array(m))
    return mx.array(q), mx.array(r)


def orthogonal(gain: float = 1.0, dtype: mx.Dtype = mx.float32) -> Callable[[mx.array],
                                                                            mx.array]:
    """A (semi-)orthogonal matrix times `gain`, from the QR decomposition of a square
    normal matrix (signs fixed by R's diagonal)."""
    def initializer(a: mx.array) -> mx.array:
        if a.ndim != 2:
            raise ValueError(f"Orthogonal initialization requires a 2D array but got a "
                             f"{a.ndim}D array.")
        rows, cols = a.shape
        n = max(rows, cols)
        q, r = _qr(mx.random.normal(shape=(n, n)))
        q = q * mx.sign(mx.diag(r))
        return (q[:rows, :cols] * gain).astype(dtype)
    return initializer
