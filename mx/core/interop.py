"""Exchange with other array libraries through DLPack."""
from __future__ import annotations

import numpy as np

from mx.core._array import array, wrap


def from_dlpack(x) -> array:
    """An mx array viewing the memory of `x`, any object with __dlpack__ (NumPy, PyTorch,
    JAX, CuPy on the CPU). The memory is shared, not copied."""
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"[from_dlpack] Expected an object with __dlpack__, got {type(x).__name__}.")
    try:
        data = np.from_dlpack(x)
    except (BufferError, RuntimeError, TypeError) as e:
        raise ValueError(f"[from_dlpack] Cannot import this tensor on the CPU: {e}") from None
    if data.dtype.kind == "c" and data.dtype.itemsize == 16:
        raise TypeError("[from_dlpack] complex128 has no mx dtype.")
    if not data.flags.c_contiguous:
        data = np.asarray(data, order="C")
    return wrap(data)


__all__ = ["from_dlpack"]
