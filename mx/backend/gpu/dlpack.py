"""DLPack with device type CUDA: zero-copy exchange with PyTorch, CuPy and JAX on the GPU.

mx's arrays live in CUDA managed memory when the GPU backend is active: one address valid on
the host and on the device. So an export is NumPy's own DLPack capsule of the array (NumPy
owns the lifetime: its deleter releases the array) with the device field rewritten from
CPU to CUDA; a consumer that asks for no stream and no device (NumPy) keeps the CPU form of
the same memory. An import of a CUDA tensor whose memory is mx's (an mx array sent out and
back) is a view of that memory; other device memory (PyTorch's own allocations) is not
readable by the host, so it is copied, through the producer's copy to the CPU.
"""
from __future__ import annotations

import ctypes

import ml_dtypes
import numpy as np

CPU, CUDA, CUDA_HOST, CUDA_MANAGED = 1, 2, 3, 13
_INT, _UINT, _FLOAT, _BFLOAT, _COMPLEX, _BOOL = 0, 1, 2, 4, 5, 6

_get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_get_pointer.restype = ctypes.c_void_p
_get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
_get_name = ctypes.pythonapi.PyCapsule_GetName
_get_name.restype = ctypes.c_char_p
_get_name.argtypes = [ctypes.py_object]


class _Device(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class _DataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class _Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", _Device), ("ndim", ctypes.c_int32),
                ("dtype", _DataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


# DLManagedTensorVersioned: version (2 x uint32), manager_ctx, deleter, flags, then the tensor
_VERSIONED_OFFSET = 8 + 8 + 8 + 8


def _tensor_of(capsule):
    name = _get_name(capsule)
    ptr = _get_pointer(capsule, name)
    off = _VERSIONED_OFFSET if name == b"dltensor_versioned" else 0
    return _Tensor.from_address(ptr + off)


def export(data: np.ndarray, stream=None, max_version=None, dl_device=None, copy=None):
    """A DLPack capsule of `data` (in unified memory) for a CUDA consumer, or the CPU form
    for a consumer that names neither a stream nor a device (NumPy)."""
    want_cuda = (dl_device is not None and tuple(dl_device)[0] in (CUDA, CUDA_MANAGED)) or \
        (dl_device is None and stream is not None)
    if dl_device is not None and tuple(dl_device)[0] not in (CPU, CUDA, CUDA_MANAGED):
        raise BufferError(f"[array] Cannot export to DLPack device {tuple(dl_device)}.")
    bf16 = data.dtype == ml_dtypes.bfloat16
    src = data.view(np.uint16) if bf16 else data
    if copy:
        src = src.copy()
    if max_version is None:
        capsule = src.__dlpack__()
    else:
        capsule = src.__dlpack__(max_version=max_version)
    t = _tensor_of(capsule)
    if bf16:
        t.dtype.code = _BFLOAT
    if want_cuda:
        t.device.device_type = CUDA
        t.device.device_id = 0
    return capsule


def _np_dtype(code, bits):
    if code == _BFLOAT and bits == 16:
        return np.dtype(ml_dtypes.bfloat16)
    kind = {_INT: "i", _UINT: "u", _FLOAT: "f", _COMPLEX: "c", _BOOL: "b"}.get(code)
    if kind is None:
        raise TypeError(f"[from_dlpack] Unsupported DLPack dtype code {code}.")
    return np.dtype(f"{kind}{bits // 8}")


class _Owner:
    """Presents device memory that mx's pool owns as a NumPy array, keeping the producer
    alive."""

    def __init__(self, producer, interface):
        self.producer = producer
        self.__array_interface__ = interface


def import_cuda(backend, x):
    """An ndarray over the memory of CUDA tensor `x` when that memory is mx's unified
    memory (no copy), else a host copy made by the producer."""
    capsule = x.__dlpack__()
    t = _tensor_of(capsule)
    dtype = _np_dtype(t.dtype.code, t.dtype.bits)
    if t.dtype.lanes != 1:
        raise TypeError("[from_dlpack] Vector (multi-lane) DLPack dtypes are not supported.")
    ptr = (t.data or 0) + t.byte_offset
    shape = tuple(t.shape[i] for i in range(t.ndim))
    item = dtype.itemsize
    if t.strides:
        strides = tuple(t.strides[i] * item for i in range(t.ndim))
    else:
        strides = None
    buf, _off = backend.shim.find(ptr)
    if buf != backend.ffi.NULL or 0 in shape:
        stored = np.dtype(np.uint16) if dtype == ml_dtypes.bfloat16 else dtype
        interface = {"data": (ptr, False), "shape": shape, "typestr": stored.str,
                     "strides": strides, "version": 3}
        out = np.asarray(_Owner(x, interface))
        return out.view(dtype) if stored != dtype else out
    # device memory the host cannot read: the producer copies it to the CPU
    if dtype == ml_dtypes.bfloat16:
        raise TypeError("[from_dlpack] A bfloat16 tensor in device memory that mx does not "
                        "own cannot be imported (NumPy's DLPack has no bfloat16); convert it "
                        "to float32 first.")
    try:
        host = np.from_dlpack(x, device="cpu", copy=True)
    except (TypeError, BufferError, RuntimeError, ValueError):
        to_cpu = getattr(x, "cpu", None)
        if to_cpu is None:
            raise
        host = np.from_dlpack(to_cpu())
    return np.array(host, copy=True)



class CudaDLPack:
    """The hook mx.core.interop consults (DEVICE_DLPACK) while the CUDA backend is active."""

    importable = (CUDA, CUDA_MANAGED)

    def __init__(self, backend):
        self.backend = backend

    def device(self):
        return (CUDA, 0)

    def export(self, data, stream=None, max_version=None, dl_device=None, copy=None):
        return export(data, stream, max_version, dl_device, copy)

    def import_(self, x):
        return import_cuda(self.backend, x)
