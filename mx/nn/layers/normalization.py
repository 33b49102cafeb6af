"""Normalisation layers: LayerNorm, RMSNorm, GroupNorm, InstanceNorm, BatchNorm."""
from __future__ import annotations

from typing import Tuple

import mx.core as mx
from mx.nn.layers.base import Module

_LOW_PRECISION = (mx.float16, mx.bfloat16)


def _f32(x):
    # statistics of half precision inputs are accumulated in float32
    return x.astype(mx.float32) if x.dtype in _LOW_PRECISION else x


def layer_norm(x, weight, bias, eps):
    """mx.fast.layer_norm over the last axis, or the same computation from plain ops."""
    fast = getattr(mx.fast, "layer_norm", None)
    if fast is not None:
        return fast(x, weight, bias, eps)
    xf = _f32(x)
    mean = mx.mean(xf, axis=-1, keepdims=True)
    var = mx.var(xf, axis=-1, keepdims=True)
    y = ((xf - mean) * mx.rsqrt(var + eps)).astype(x.dtype)
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


def rms_norm(x, weight, eps):
    """mx.fast.rms_norm over the last axis, or the same computation from plain ops."""
    fast = getattr(mx.fast, "rms_norm", None)
    if fast is not None:
        return fast(x, weight, eps)
    xf = _f32(x)
    y = (xf * mx.rsqrt(mx.mean(mx.square(xf), axis=-1, keepdims=True) + eps)).astype(x.dtype)
    return y if weight is None else y * weight


def _check_eps(name, eps):
    if eps <= 0.0:
        raise ValueError(f"[{name}] 'eps' must be positive but got {eps}.")


class InstanceNorm(Module):
    """Normalises each channel of each example over the spatial axes of an (N, ..., C)
    input; with `affine`, `weight` (ones) and `bias` (zeros) of shape (dims,) follow."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = False):
        super().__init__()
        _check_eps("InstanceNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            self.bias = mx.zeros((dims,))
        self.dims = dims
        self.eps = eps

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim < 3:
            raise ValueError(f"InstanceNorm expects inputs with at least 3 dimensions (N, ..., C) "
                             f"but the input has {x.ndim} dimensions.")
        n, c = x.shape[0], x.shape[-1]
        spatial = x.shape[1:-1]
        # (N, C, prod(spatial)) so that layer_norm's last axis is the spatial one
        per_channel = mx.transpose(x, (0, x.ndim - 1, *range(1, x.ndim - 1))).reshape(n, c, -1)
        y = layer_norm(per_channel, None, None, self.eps).reshape(n, c, *spatial)
        y = mx.transpose(y, (0, *range(2, len(spatial) + 2), 1))
        return self.weight * y + self.bias if "weight" in self else y


class LayerNorm(Module):
    """Normalises the last axis to zero mean and unit variance, then (with `affine`)
    multiplies by `weight` (ones) and adds `bias` (zeros, unless bias=False)."""

    def __init__(self, dims: int, eps: float = 1e-5, affine: bool = True, bias: bool = True):
        super().__init__()
        _check_eps("LayerNorm", eps)
        if affine:
            self.weight = mx.ones((dims,))
            if bias:
                self.bias = mx.zeros((dims,))
        self.eps = eps
        self.dims = dims

    def _extra_repr(self):
        return f"{self.dims}, eps={self.eps}, affine={'weight' in self}"

    def __call__(self, x):
        return layer_norm(x, self.get("weight"), self.get("bias"), self.eps)


class RMSNorm(Module):
    """Divides the last axis by its root mean square (accumulated in float32) and
    multiplies by `weight` (ones, shape (dims,))."""

    def __init__(self, dims: int, eps: float = 1e-5):
        super().__init__()
        _check_eps("RMSNorm", eps)
        self.weight = mx.ones((dims,))
        self.eps = eps

    def _extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}"

    def __call__(self, x):
        return rms_norm(x, self["weight"], self.eps)


class GroupNorm(Module):
    """Splits the feature (last) axis into `num_groups` groups and normalises each group
    over it and the spatial axes (all but the first). Without `pytorch_compatible` a group
    is every num_groups-th feature (MLX's grouping); with it, a run of consecutive
    features (PyTorch's)."""

    def __init__(self, num_groups: int, dims: int, eps: float = 1e-5, affine: bool = True,
                 pytorch_compatible: bool = False):
        super().__init__()
        _check_eps("GroupNorm", eps)
        if num_groups <= 0:
            raise ValueError(f"The number of groups ({num_groups}) must be a positive integer.")
        if dims <= 0:
            raise ValueError(f"The number of features ({dims}) must be a positive integer.")
        if dims % num_groups != 0:
            raise ValueError(f"The number of features ({dims}) must be evenly divisible by the "
                             f"number of groups ({num_groups}).")
        if affine:
            self.bias = mx.zeros((dims,))
            self.weight = mx.ones((dims,))
        self.num_groups = num_groups
        self.dims = dims
        self.eps = eps
        self.pytorch_compatible = pytorch_compatible

    def _extra_repr(self):
        return (f"{self.num_groups}, {self.dims}, eps={self.eps}, "
                f"affine={'weight' in self}, pytorch_compatible={self.pytorch_compatible}")

    def _torch_groups(self, x):
        g = self.num_groups
        batch, *rest, dims = x.shape
        size = dims // g
        y = x.reshape(batch, -1, g, size).transpose(0, 2, 1, 3).reshape(batch, g, -1)
        y = layer_norm(y, None, None, self.eps)
        return y.reshape(batch, g, -1, size).transpose(0, 2, 1, 3).reshape(batch, *rest, dims)

    def _strided_groups(self, x):
        batch, *rest, dims = x.shape
        y = x.reshape(batch, -1, self.num_groups)
        mean = mx.mean(y, axis=1, keepdims=True)
        var = mx.var(y, axis=1, keepdims=True)
        y = (y - mean) * mx.rsqrt(var + self.eps)
        return y.reshape(batch, *rest, dims)

    def __call__(self, x):
        y = self._torch_groups(x) if self.pytorch_compatible else self._strided_groups(x)
        return self.weight * y + self.bias if "weight" in self else y


class BatchNorm(Module):
    """Normalises each feature (last axis) over the batch and spatial axes of an NC, NLC
    or NHWC input. In training the batch statistics are used and, with
    `track_running_stats`, folded into `running_mean` / `running_var` (unbiased variance)
    with `momentum`; in evaluation the running statistics are used. The running
    statistics are parameters that stay frozen."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        _check_eps("BatchNorm", eps)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = mx.ones((num_features,))
            self.bias = mx.zeros((num_features,))
        if track_running_stats:
            self.running_mean = mx.zeros((num_features,))
            self.running_var = mx.ones((num_features,))
            self.freeze(keys=["running_mean", "running_var"], recurse=False)

    def unfreeze(self, *args, **kwargs):
        """Like Module.unfreeze, but running_mean and running_var stay frozen."""
        super().unfreeze(*args, **kwargs)
        self.freeze(keys=["running_mean", "running_var"], recurse=False)
        return self

    def _extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={'weight' in self}, track_running_stats={self.track_running_stats}")

    @staticmethod
    def _stats(x: mx.array, ddof: int = 0) -> Tuple[mx.array, mx.array]:
        axes = tuple(range(x.ndim - 1))
        return mx.mean(x, axis=axes), mx.var(x, axis=axes, ddof=ddof)

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim < 2 or x.ndim > 4:
            raise ValueError(
                f"Expected input tensor to have 2, 3 or 4 dimensions, but got {x.ndim}")
        if self.training:
            count = 1
            for s in x.shape[:-1]:
                count *= s
            if count == 1:
                raise ValueError("BatchNorm training requires more than one value per channel.")
        mean, var = self._stats(x)
        if self.track_running_stats:
            if self.training:
                mu = self.momentum
                _, unbiased = self._stats(x, ddof=1)
                self.running_mean = (1 - mu) * self.running_mean + mu * mean
                self.running_var = (1 - mu) * self.running_var + mu * unbiased
            else:
                mean, var = self.running_mean, self.running_var
        y = (x - mean) * mx.rsqrt(var + self.eps)
        return self.weight * y + self.bias if "weight" in self else y
