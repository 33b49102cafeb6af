"""Argument checks shared by the op modules."""
from __future__ import annotations

import operator

from mx.core._array import Dtype, array, shape_str, to_array


class AxisError(ValueError, IndexError):
    """An axis outside the array's dimensions (both a ValueError and an IndexError, as
    NumPy's AxisError)."""


def as_array(x, op="array") -> array:
    """`x` as an mx array (Python scalars get their default dtype)."""
    if isinstance(x, array):
        return x
    try:
        return to_array(x)
    except TypeError as e:
        raise TypeError(f"[{op}] {e}") from None


def norm_axis(axis, ndim: int, op: str) -> int:
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"[{op}] axis must be an integer, got {type(axis).__name__}.") from None
    if ax < -ndim or ax >= ndim:
        raise AxisError(f"[{op}] Axis {ax} is out of bounds for array with {ndim} dimensions.")
    return ax + ndim if ax < 0 else ax


def norm_axes(axis, ndim: int, op: str, allow_repeat=False) -> tuple:
    """Axes as a sorted tuple of non-negative ints; None means all axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        axes = tuple(norm_axis(a, ndim, op) for a in axis)
    else:
        axes = (norm_axis(axis, ndim, op),)
    if not allow_repeat and len(set(axes)) != len(axes):
        raise ValueError(f"[{op}] Received duplicate axes {tuple(axis)}.")
    return tuple(sorted(axes))


def check_dtype(dtype, op: str):
    if not isinstance(dtype, Dtype):
        raise TypeError(f"[{op}] dtype must be an mx Dtype such as mx.float32, got {dtype!r}.")
    return dtype


def check_shape(shape, op: str) -> tuple:
    """A shape argument (int or sequence of ints, none negative) as a tuple."""
    if isinstance(shape, array):
        shape = shape.tolist()
    if isinstance(shape, (list, tuple)):
        try:
            shape = tuple(operator.index(s) for s in shape)
        except TypeError:
            raise TypeError(f"[{op}] shape must be a sequence of integers, got {shape!r}.") from None
    else:
        try:
            shape = (operator.index(shape),)
        except TypeError:
            raise TypeError(f"[{op}] shape must be an int or a sequence of ints, got {shape!r}.") from None
    for s in shape:
        if s < 0:
            raise ValueError(f"[{op}] Negative dimensions are not allowed; got shape {shape_str(shape)}.")
    return shape


def prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n
