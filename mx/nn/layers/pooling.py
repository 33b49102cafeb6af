"""Max and average pooling over 1, 2 or 3 spatial dimensions (channels last)."""
from __future__ import annotations

from typing import Optional, Tuple, Union

import mx.core as mx
from mx.nn.layers.base import Module


def _as_list(x, n, msg):
    if isinstance(x, (list, tuple)):
        if len(x) != n:
            raise ValueError(msg)
        return list(x)
    if not isinstance(x, int):
        raise ValueError(msg)
    return [x] * n


def _window_slices(x, axis, window, stride):
    """The `window` strided views of `axis` whose element-wise combination pools it."""
    size = x.shape[axis]
    out = (size - window) // stride + 1
    if out <= 0:
        raise ValueError(f"The pooling window ({window}) is larger than the padded input "
                         f"({size}) along axis {axis}.")
    lead = (slice(None),) * axis
    return [x[lead + (slice(j, j + stride * (out - 1) + 1, stride),)] for j in range(window)]


def _pool(x, windows, strides, reduce):
    """Pools the spatial axes 1..n of x one axis at a time; max and mean are separable
    (mean because every window holds the same number of elements, padding included)."""
    if x.ndim < 3:
        raise ValueError(f"To extract sliding windows at least 1 spatial dimension (3 total) "
                         f"is needed but the input only has {x.ndim} dimensions.")
    spatial = x.ndim - 2
    if not spatial == len(windows) == len(strides):
        raise ValueError(
            f"To extract sliding windows the window shapes and strides must have the same "
            f"number of spatial dimensions as the signal but the signal has {spatial} dims "
            f"and the window shape has {len(windows)} and strides have {len(strides)}.")
    for i, (w, s) in enumerate(zip(windows, strides)):
        parts = _window_slices(x, i + 1, w, s)
        if reduce == "max":
            y = parts[0]
            for p in parts[1:]:
                y = mx.maximum(y, p)
        else:
            y = parts[0]
            for p in parts[1:]:
                y = y + p
            y = y / w
        x = y
    return x


class _Pool(Module):
    def __init__(self, reduce, padding_value, ndim, kernel_size, stride, padding):
        super().__init__()
        name = type(self).__name__
        noun = "1 integer" if ndim == 1 else f"{ndim} integers"
        msg = "[{}] '{}' must be an integer or a tuple containing " + noun
        kernel_size = _as_list(kernel_size, ndim, msg.format(name, "kernel_size"))
        stride = (kernel_size if stride is None
                  else _as_list(stride, ndim, msg.format(name, "stride")))
        padding = _as_list(padding, ndim, msg.format(name, "padding"))
        for what, values in (("kernel_size", kernel_size), ("stride", stride)):
            if any(v <= 0 for v in values):
                raise ValueError(f"[{name}] '{what}' must be positive but got {tuple(values)}.")
        if any(p < 0 for p in padding):
            raise ValueError(f"[{name}] 'padding' must be non-negative but got "
                             f"{tuple(padding)}.")
        self._reduce = reduce
        self._kernel_size = kernel_size
        self._stride = stride
        self._padding = [(p, p) for p in padding]
        self._padding_value = padding_value

    def _extra_repr(self):
        return (f"kernel_size={tuple(self._kernel_size)}, stride={tuple(self._stride)}, "
                f"padding={tuple(p for p, _ in self._padding)}")

    def __call__(self, x):
        if any(p > 0 for p, _ in self._padding):
            x = mx.pad(x, [(0, 0)] + self._padding + [(0, 0)],
                       constant_values=self._padding_value)
        return _pool(x, self._kernel_size, self._stride, self._reduce)


class MaxPool1d(_Pool):
    """1-d max pooling over inputs (N, L, C): the maximum of each window of `kernel_size`
    taken every `stride` (default kernel_size) steps, after padding both ends with -inf."""

    def __init__(self, kernel_size: Union[int, Tuple[int]],
                 stride: Optional[Union[int, Tuple[int]]] = None,
                 padding: Union[int, Tuple[int]] = 0):
        super().__init__("max", -float("inf"), 1, kernel_size, stride, padding)


class AvgPool1d(_Pool):
    """1-d average pooling over inputs (N, L, C), zero padding counted in the average."""

    def __init__(self, kernel_size: Union[int, Tuple[int]],
                 stride: Optional[Union[int, Tuple[int]]] = None,
                 padding: Union[int, Tuple[int]] = 0):
        super().__init__("mean", 0, 1, kernel_size, stride, padding)


class MaxPool2d(_Pool):
    """2-d max pooling over inputs (N, H, W, C); sizes are ints or (height, width) pairs."""

    def __init__(self, kernel_size: Union[int, Tuple[int, int]],
                 stride: Optional[Union[int, Tuple[int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int]]] = 0):
        super().__init__("max", -float("inf"), 2, kernel_size, stride, padding)


class AvgPool2d(_Pool):
    """2-d average pooling over inputs (N, H, W, C)."""

    def __init__(self, kernel_size: Union[int, Tuple[int, int]],
                 stride: Optional[Union[int, Tuple[int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int]]] = 0):
        super().__init__("mean", 0, 2, kernel_size, stride, padding)


class MaxPool3d(_Pool):
    """3-d max pooling over inputs (N, D, H, W, C)."""

    def __init__(self, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Optional[Union[int, Tuple[int, int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = 0):
        super().__init__("max", -float("inf"), 3, kernel_size, stride, padding)


class AvgPool3d(_Pool):
    """3-d average pooling over inputs (N, D, H, W, C)."""

    def __init__(self, kernel_size: Union[int, Tuple[int, int, int]],
                 stride: Optional[Union[int, Tuple[int, int, int]]] = None,
                 padding: Optional[Union[int, Tuple[int, int, int]]] = 0):
        super().__init__("mean", 0, 3, kernel_size, stride, padding)
