"""Python's view of a GPU shim (shim/mx_shim.h) loaded through cffi: errors become
exceptions, handles stay cffi pointers."""
from __future__ import annotations


class ShimError(RuntimeError):
    """A shim call failed; the message is the shim's mx_last_error()."""


class Unavailable(RuntimeError):
    """The shim loaded but found no usable device (no driver, no GPU)."""


def load_cuda():
    """The CUDA shim's cffi module (ffi, lib); ImportError when it was not built."""
    from mx.backend.gpu import _cuda_shim
    return _cuda_shim.ffi, _cuda_shim.lib


class Shim:
    """One opened device of one shim."""

    def __init__(self, ffi, lib, index=0):
        self.ffi = ffi
        self.lib = lib
        count = lib.mx_device_count()
        if count <= 0:
            raise Unavailable(self.error() or "no GPU device")
        self.device_count = count
        self.dev = lib.mx_device_open(index)
        if self.dev == ffi.NULL:
            raise Unavailable(self.error())
        self._offset = ffi.new("uint64_t *")

    # -- errors -------------------------------------------------------------------------
    def error(self) -> str:
        return self.ffi.string(self.lib.mx_last_error()).decode("utf-8", "replace")

    def check(self, rc, what):
        if rc != 0:
            msg = self.error()
            if rc == self.lib.MX_OUT_OF_MEMORY:
                raise MemoryError(f"[gpu] {what}: {msg}")
            raise ShimError(f"[gpu] {what}: {msg}")

    # -- device -------------------------------------------------------------------------
    def info(self) -> dict:
        info = self.ffi.new("mx_device_info *")
        self.check(self.lib.mx_device_get_info(self.dev, info), "device info")
        s = lambda field: self.ffi.string(field).decode("utf-8", "replace")
        return {
            "device_name": s(info.name), "architecture": s(info.architecture),
            "backend": s(info.backend), "versions": s(info.versions),
            "memory_size": int(info.memory_size), "max_buffer_length": int(info.max_buffer_length),
            "max_threads_per_threadgroup": int(info.max_threads_per_threadgroup),
            "multiprocessor_count": int(info.multiprocessor_count), "simd_width": int(info.simd_width),
            "unified_memory": bool(info.unified_memory),
            "concurrent_managed_access": bool(info.concurrent_managed_access),
            "pageable_memory_access": bool(info.pageable_memory_access),
        }

    def memory(self):
        free = self.ffi.new("uint64_t *")
        total = self.ffi.new("uint64_t *")
        self.check(self.lib.mx_device_memory(self.dev, free, total), "device memory")
        return int(free[0]), int(total[0])

    def pool_stats(self):
        r = self.ffi.new("uint64_t *")
        u = self.ffi.new("uint64_t *")
        lim = self.ffi.new("uint64_t *")
        self.lib.mx_pool_stats(r, u, lim)
        return {"reserved": int(r[0]), "in_use": int(u[0]), "limit": int(lim[0])}

    def synchronize(self):
        self.check(self.lib.mx_device_synchronize(self.dev), "synchronize")

    # -- memory -------------------------------------------------------------------------
    def allocator_addresses(self):
        """(alloc, free) C function addresses for mx's NumPy allocator."""
        addr = lambda name: int(self.ffi.cast("uintptr_t", self.ffi.addressof(self.lib, name)))
        return addr("mx_host_alloc"), addr("mx_host_free")

    def find(self, address: int):
        """(buffer, byte offset) of a host address inside one of the shim's buffers, or
        (NULL, 0)."""
        buf = self.lib.mx_buffer_find(self.dev, self.ffi.cast("void *", address), self._offset)
        return buf, int(self._offset[0])

    # -- kernels ------------------------------------------------------------------------
    def library(self, source: str, names, options: str = ""):
        c_names = [self.ffi.new("char[]", n.encode()) for n in names]
        arr = self.ffi.new("const char *[]", c_names)
        lib = self.lib.mx_library_new(self.dev, source.encode(), options.encode(), arr, len(names))
        if lib == self.ffi.NULL:
            raise ShimError(f"[gpu] kernel compilation failed: {self.error()}")
        return lib

    def kernel(self, library, name: str):
        k = self.lib.mx_library_kernel(library, name.encode())
        if k == self.ffi.NULL:
            raise ShimError(f"[gpu] {self.error()}")
        return k

    # -- streams ------------------------------------------------------------------------
    def new_stream(self):
        s = self.lib.mx_stream_new(self.dev)
        if s == self.ffi.NULL:
            raise ShimError(f"[gpu] stream creation failed: {self.error()}")
        return s

    def new_event(self, timing=False):
        e = self.lib.mx_event_new(self.dev, 1 if timing else 0)
        if e == self.ffi.NULL:
            raise ShimError(f"[gpu] event creation failed: {self.error()}")
        return e
