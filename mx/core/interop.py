"""Exchange with other array libraries through DLPack."""
from __future__ import annotations

import numpy as np

from mx.core._array import array, wrap

# Set by a GPU backend whose memory is unified (mx.backend.gpu): an object with
# device() -> (DLPack device type, id), export(data, stream, max_version, dl_device, copy)
# -> capsule, and import_(x) -> ndarray for tensors on that device.
DEVICE_DLPACK = None


def dlpack_device():
    """The DLPack device of mx arrays: the GPU's when a GPU backend shares its memory with
    the host (CUDA), else the CPU (1, 0)."""
    return DEVICE_DLPACK.device() if DEVICE_DLPACK is not None else (1, 0)


def to_dlpack(data, stream=None, max_version=None, dl_device=None, copy=None):
    """The DLPack capsule of an evaluated array's NumPy data."""
    if DEVICE_DLPACK is not None:
        return DEVICE_DLPACK.export(data, stream, max_version, dl_device, copy)
    if max_version is None:
        return data.__dlpack__(stream=stream)
    return data.__dlpack__(stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)


def from_dlpack(x) -> array:
    """An mx array viewing the memory of `x`, any object with __dlpack__ (NumPy, PyTorch,
    JAX, CuPy). The memory is shared, not copied, for CPU tensors and, with a CUDA GPU,
    for tensors in mx's own unified memory (an mx array sent out and back); other GPU
    memory is copied."""
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"[from_dlpack] Expected an object with __dlpack__, got {type(x).__name__}.")
    device = x.__dlpack_device__()[0] if hasattr(x, "__dlpack_device__") else 1
    if DEVICE_DLPACK is not None and device != 1 and device in DEVICE_DLPACK.importable:
        data = DEVICE_DLPACK.import_(x)
        if not data.flags.c_contiguous:
            data = np.asarray(data, order="C")
        return wrap(data)
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
