"""Convolution and transposed-convolution layers (channels last: NLC, NHWC, NDHWC)."""
from __future__ import annotations

import math
from typing import Union

import mx.core as mx
from mx.nn.layers.base import Module


def _tuple(v, n):
    return (v,) * n if isinstance(v, int) else v


def _init_weight(layer, in_channels, out_channels, kernel_size, groups, bias):
    """weight (out, *kernel, in / groups) from U(-k, k), k = 1/sqrt(fan_in); zero bias."""
    fan_in = in_channels // groups * math.prod(kernel_size)
    k = math.sqrt(1 / fan_in)
    layer.weight = mx.random.uniform(low=-k, high=k,
                                     shape=(out_channels, *kernel_size, in_channels // groups))
    if bias:
        layer.bias = mx.zeros((out_channels,))


def _check_groups(in_channels, groups):
    if in_channels % groups != 0:
        raise ValueError(f"The number of input channels ({in_channels}) must be divisible by "
                         f"the number of groups ({groups})")


def _add_bias(layer, y):
    return y + layer.bias if "bias" in layer else y


class Conv1d(Module):
    """1-d convolution over inputs of shape (N, L, C_in); `weight` has shape
    (out_channels, kernel_size, in_channels / groups), U(-k, k) with
    k = 1/sqrt(in_channels / groups * kernel_size), and `bias` starts at zero."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        _check_groups(in_channels, groups)
        _init_weight(self, in_channels, out_channels, (kernel_size,), groups, bias)
        self.padding = padding
        self.dilation = dilation
        self.stride = stride
        self.groups = groups

    def _extra_repr(self):
        return (f"{self.weight.shape[-1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={'bias' in self}")

    def __call__(self, x):
        return _add_bias(self, mx.conv1d(x, self.weight, self.stride, self.padding,
                                         self.dilation, self.groups))


class Conv2d(Module):
    """2-d convolution over inputs of shape (N, H, W, C_in); kernel_size, stride and padding
    are ints or pairs. `weight` has shape (out_channels, kH, kW, in_channels / groups)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, groups: int = 1, bias: bool = True):
        super().__init__()
        _check_groups(in_channels, groups)
        kernel_size, stride, padding = (_tuple(v, 2) for v in (kernel_size, stride, padding))
        _init_weight(self, in_channels, out_channels, kernel_size, groups, bias)
        self.padding = padding
        self.stride = stride
        self.dilation = dilation
        self.groups = groups

    def _extra_repr(self):
        return (f"{self.weight.shape[-1] * self.groups}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1:3]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, groups={self.groups}, "
                f"bias={'bias' in self}")

    def __call__(self, x):
        return _add_bias(self, mx.conv2d(x, self.weight, self.stride, self.padding,
                                         self.dilation, self.groups))


class Conv3d(Module):
    """3-d convolution over inputs of shape (N, D, H, W, C_in); `weight` has shape
    (out_channels, kD, kH, kW, in_channels)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, bias: bool = True):
        super().__init__()
        kernel_size, stride, padding = (_tuple(v, 3) for v in (kernel_size, stride, padding))
        _init_weight(self, in_channels, out_channels, kernel_size, 1, bias)
        self.padding = padding
        self.stride = stride
        self.dilation = dilation

    def _extra_repr(self):
        return (f"{self.weight.shape[-1]}, {self.weight.shape[0]}, "
                f"kernel_size={self.weight.shape[1:4]}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, bias={'bias' in self}")

    def __call__(self, x):
        return _add_bias(self, mx.conv3d(x, self.weight, self.stride, self.padding,
                                         self.dilation))


class _ConvTransposeNd(Module):
    """Shared body of the transposed convolutions: `weight` (out_channels, *kernel,
    in_channels) from U(-k, k), k = 1/sqrt(in_channels * prod(kernel)), zero `bias`."""

    _nd = 0

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, output_padding=0, bias=True):
        super().__init__()
        n = self._nd
        if n > 1:
            kernel_size, stride, padding, output_padding = (
                _tuple(v, n) for v in (kernel_size, stride, padding, output_padding))
        else:
            kernel_size = (kernel_size,)
        _init_weight(self, in_channels, out_channels, kernel_size, 1, bias)
        self.padding = padding
        self.dilation = dilation
        self.stride = stride
        self.output_padding = output_padding

    def _extra_repr(self):
        ks = self.weight.shape[1] if self._nd == 1 else self.weight.shape[1:1 + self._nd]
        return (f"{self.weight.shape[-1]}, {self.weight.shape[0]}, kernel_size={ks}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"output_padding={self.output_padding}, bias={'bias' in self}")

    def _conv(self):
        return (None, mx.conv_transpose1d, mx.conv_transpose2d, mx.conv_transpose3d)[self._nd]

    def __call__(self, x):
        y = self._conv()(x, self.weight, self.stride, self.padding, self.dilation,
                         self.output_padding)
        return _add_bias(self, y)


class ConvTranspose1d(_ConvTransposeNd):
    """1-d transposed convolution over inputs of shape (N, L, C_in); `weight` has shape
    (out_channels, kernel_size, in_channels)."""

    _nd = 1

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, output_padding: int = 0,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, bias)


class ConvTranspose2d(_ConvTransposeNd):
    """2-d transposed convolution over inputs of shape (N, H, W, C_in); `weight` has shape
    (out_channels, kH, kW, in_channels)."""

    _nd = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, bias)


class ConvTranspose3d(_ConvTransposeNd):
    """3-d transposed convolution over inputs of shape (N, D, H, W, C_in); `weight` has
    shape (out_channels, kD, kH, kW, in_channels)."""

    _nd = 3

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Union[int, tuple],
                 stride: Union[int, tuple] = 1, padding: Union[int, tuple] = 0,
                 dilation: Union[int, tuple] = 1, output_padding: Union[int, tuple] = 0,
                 bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, bias)
