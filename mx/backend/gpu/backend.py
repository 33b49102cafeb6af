"""The GPU backend: runs graph nodes on the GPU through a shim, or hands them to the CPU.

Memory is unified, so an evaluated array is the same NumPy array whichever device computed
it; what the backend adds is ordering. GPU work is queued on CUDA streams and runs
asynchronously, so:

* before any CPU kernel runs (a CPU-stream op, or a GPU-stream op with no GPU kernel) the
  queued GPU work is waited for: the CPU kernel may read its outputs;
* every evaluation ends by waiting (the scheduler's finish hook), so evaluated arrays can be
  read at once;
* the NumPy arrays a queued kernel reads are kept alive until that wait, so their memory
  cannot be reused (and written by the CPU) while the kernel may still read it;
* work on one mx GPU stream after work on another waits for it (an event), so results never
  race across streams.
"""
from __future__ import annotations

import collections
import threading
import weakref

import numpy as np

from mx.core import devices as _devices

# how many bytes of kernel inputs may be kept alive before the backend waits for the GPU
# (at least; an eighth of the GPU memory pool when that is more)
KEEPALIVE_LIMIT = 1 << 30
_GPU = _devices.DeviceType.gpu
THREADGROUP = 256
# grids of more threads than this use a second dimension (Metal's thread ids are 32-bit)
GRID_X_MAX = 1 << 30


_F64 = np.dtype(np.float64)


def _has_double(node, args):
    return node._dtype.np == _F64 or any(a.dtype == _F64 for a in args)


class Backend:
    """Registered with mx.core.devices as the GPU backend (is_available, device_count,
    info) and installed as the scheduler's dispatch hook."""

    def __init__(self, shim, kind):
        from mx.backend.gpu.kernels import KernelCache
        self.shim = shim
        self.kind = kind                        # "cuda" or "metal"
        self.ffi = shim.ffi
        self.lib = shim.lib
        self.kernels = KernelCache(shim)
        self.fallbacks = collections.Counter()  # primitive name -> CPU runs on a GPU stream
        self.gpu_runs = collections.Counter()   # primitive name -> GPU kernel runs
        self._lock = threading.RLock()
        self._streams = {}                      # mx stream index -> shim stream
        self._last_stream = None
        self._event = None
        self._pending = False
        self._keep = {}                         # id -> array read by queued kernels
        self._keep_bytes = 0
        self._keep_limit = max(KEEPALIVE_LIMIT, shim.pool_stats()["limit"] // 8)
        self._staged = {}                       # id(host array) -> (weakref, staged copy)
        self._written = set()                   # ids of arrays queued kernels write
        self._checks = []                       # (op, int32 flag array) of index checks
        self._info = None
        self.forked = False                     # set in a forked child: no GPU there
        from mx.backend.gpu._launch import Launcher
        self.fast = Launcher(int(self.ffi.cast("uintptr_t", self.ffi.addressof(self.lib, "mx_launch"))),
                             THREADGROUP)
        self._kernel_addr = {}                  # instance name -> mx_kernel* as an int
        self._fast_index = None                 # the stream index of _fast_addr
        self._fast_addr = 0

    # -- the devices API ------------------------------------------------------------------
    def is_available(self):
        return not self.forked

    def device_count(self):
        return self.shim.device_count

    def info(self, index=0):
        if self._info is None:
            self._info = self.shim.info()
        info = dict(self._info)
        pool = self.shim.pool_stats()
        info["max_recommended_working_set_size"] = pool["limit"]
        info["resource_limit"] = 0
        return info

    # -- streams and ordering -------------------------------------------------------------
    def stream_for(self, index):
        s = self._streams.get(index)
        if s is None:
            s = self._streams[index] = self.shim.new_stream()
        self._fast_index = None
        if self._last_stream is not None and self._last_stream != s and self._pending:
            if self._event is None:
                self._event = self.shim.new_event()
            self.shim.check(self.lib.mx_event_record(self._event, self._last_stream), "event record")
            self.shim.check(self.lib.mx_stream_wait_event(s, self._event), "stream wait")
        self._last_stream = s
        return s

    def _stream_address(self, index):
        if index == self._fast_index and self._last_stream is not None:
            return self._fast_addr
        s = self.stream_for(index)
        self._fast_index = index
        self._fast_addr = int(self.ffi.cast("uintptr_t", s))
        return self._fast_addr

    def launch_arrays(self, kind, name, inst, n, stream_index, arrays, work=1):
        """The hot path: queue a kernel whose arguments are the data of `arrays` (NumPy
        arrays laid out as the kernel expects) and the element count n. Arrays outside
        unified memory are staged (as `operand` does) and the launch retried. Returns the
        arrays actually passed (to keep alive)."""
        k = self._kernel_addr.get(inst)
        if k is None:
            k = self._kernel_addr[inst] = int(self.ffi.cast("uintptr_t",
                                                            self.kernels.get(kind, name, inst)))
        if self._last_stream is not None and stream_index == self._fast_index:
            addr = self._fast_addr
        else:
            addr = self._stream_address(stream_index)
        staged = self._staged
        if staged:
            # inputs outside unified memory seen before (cached scalar constants made before
            # the backend came up): their staged copies, without a failed launch first
            subst = None
            for i in range(len(arrays) - 1):
                hit = staged.get(id(arrays[i]))
                if hit is not None and hit[0]() is arrays[i]:
                    if subst is None:
                        subst = list(arrays)
                    subst[i] = hit[1]
            if subst is not None:
                arrays = tuple(subst)
        rc = self.fast.elementwise(k, addr, n, work, arrays)
        if rc == -5:                            # MX_NOT_UNIFIED
            staged = []
            for x in arrays:
                op = self.operand(x)
                if op is None:
                    return None
                staged.append(op[2])
            if staged[-1] is not arrays[-1]:    # the output must be written where it is
                return None
            arrays = tuple(staged)
            rc = self.fast.elementwise(k, addr, n, work, arrays)
        if rc:
            self.shim.check(rc, inst)
        self._pending = True
        return arrays

    def keep_sent(self, sent, out):
        """keep() for the hot path: the inputs of a launch_arrays kernel (all but its
        last array, the output `out`, which is recorded as written)."""
        k = self._keep
        for a in sent[:-1]:
            if id(a) not in k:
                k[id(a)] = a
                self._keep_bytes += a.nbytes
        self._written.add(id(out))
        if self._keep_bytes > self._keep_limit:
            self.synchronize()

    def synchronize(self):
        """Wait for all queued GPU work and release what it kept alive."""
        with self._lock:
            if self._pending:
                self.shim.synchronize()
            self._pending = False
            self._keep.clear()
            self._keep_bytes = 0
            self._written.clear()
            if self._checks:
                checks, self._checks = self._checks, []
                for op, flag, n in checks:
                    if flag[0]:
                        raise IndexError(f"[{op}] An index is out of bounds for an axis of "
                                         f"size {n}.")

    def finish(self):
        if self._pending or self._checks:
            self.synchronize()
        self._written.clear()

    def keep(self, *arrays):
        """Hold the input arrays of a queued kernel until the next wait."""
        for a in arrays:
            if id(a) not in self._keep:
                self._keep[id(a)] = a
                self._keep_bytes += a.nbytes
        if self._keep_bytes > self._keep_limit:
            self.synchronize()

    # -- dispatch -------------------------------------------------------------------------
    def dispatch(self, node, prim, args):
        """The scheduler's hook: the output of `node` computed on the GPU, or None to run
        the CPU kernel (after waiting for queued GPU work)."""
        s = node._stream
        if s is None:
            dev = _devices._state.device
            stream = _devices.default_stream(dev) if dev.type is _GPU else None
        elif isinstance(s, _devices.Stream):
            stream = s if s.device.type is _GPU else None
        else:
            kind = s.type if isinstance(s, _devices.Device) else s
            stream = _devices.default_stream(_devices.gpu) if kind is _GPU else None
        if stream is not None:
            handler = prim.gpu
            if handler is not None and self.kind == "metal" and _has_double(node, args):
                handler = None                  # Metal has no double
            if handler is not None:
                out = handler(self, node, args, stream.index)
                if out is not None:
                    self.gpu_runs[prim.name] += 1
                    return out
            self.fallbacks[prim.name] += 1
        if self._pending:
            self.synchronize()
        return None

    # -- helpers for kernels --------------------------------------------------------------
    def operand(self, x):
        """(buffer, byte offset, array) for a kernel input; an array outside the shim's
        memory (made before the backend loaded, or a cached scalar) is copied into it once
        (small ones are remembered, keyed by the source array)."""
        buf, off = self.shim.find(x.__array_interface__["data"][0])
        if buf != self.ffi.NULL:
            return buf, off, x
        key = id(x)
        hit = self._staged.get(key)
        if hit is not None and hit[0]() is x:
            y = hit[1]
        else:
            y = np.array(x, copy=True, order="C")   # mx's allocator is active: unified memory
            if x.size <= 64:
                try:
                    self._staged[key] = (weakref.ref(x, lambda _r, k=key: self._staged.pop(k, None)), y)
                except TypeError:
                    pass
        buf, off = self.shim.find(y.__array_interface__["data"][0])
        if buf == self.ffi.NULL:
            return None
        return buf, off, y

    def output(self, shape, dtype):
        """A new array for a kernel to write and its (buffer, offset), or None."""
        out = np.empty(shape, dtype)
        buf, off = self.shim.find(out.__array_interface__["data"][0])
        if buf == self.ffi.NULL:
            return None
        self._written.add(id(out))
        return out, buf, off

    def written(self, x) -> bool:
        """Whether x (or the array it views) may still be written by queued GPU work."""
        if not self._pending:
            return False
        return id(x) in self._written or (x.base is not None and id(x.base) in self._written)

    def error_flag(self, op, n):
        """(buffer, offset) of a zeroed int32 that a kernel sets when it meets an index out
        of range of an axis of size n; the next wait raises IndexError naming `op`."""
        made = self.output((1,), np.int32)
        if made is None:
            return None
        flag, buf, off = made
        flag[0] = 0
        self._checks.append((op, flag, n))
        return buf, off

    def launch(self, kind, name, inst, n, stream_index, buffers, constants=(), work=1):
        """Queue kernel `inst` of compile group (kind, name) over n elements, `work` of
        them a thread (the contiguous kernels' MX_WORK). `buffers` are (buffer, offset)
        pairs, `constants` bytes objects, in the kernel's parameter order (buffers
        first)."""
        n = -(-n // work)
        kernel = self.kernels.get(kind, name, inst)
        stream = self.stream_for(stream_index)
        nargs = len(buffers) + len(constants)
        args = self.ffi.new("mx_arg[]", nargs)
        for i, (buf, off) in enumerate(buffers):
            args[i].buffer = buf
            args[i].offset = off
        held = []
        for j, c in enumerate(constants):
            cbuf = self.ffi.from_buffer(c)
            held.append(cbuf)
            a = args[len(buffers) + j]
            a.bytes = cbuf
            a.nbytes = len(c)
        if n <= GRID_X_MAX:
            grid = self.ffi.new("uint64_t[3]", [n, 1, 1])
        else:
            grid = self.ffi.new("uint64_t[3]", [GRID_X_MAX, -(-n // GRID_X_MAX), 1])
        tg = self.ffi.new("uint32_t[3]", [THREADGROUP, 1, 1])
        self.shim.check(self.lib.mx_dispatch(kernel, stream, grid, tg, args, nargs, 0), inst)
        self._pending = True

    def native_stream(self, stream_index):
        """The address of the native queue (a CUstream) of mx GPU stream `stream_index`,
        ordered after the work already queued (for libraries such as NCCL that queue their
        own work; call `queued()` after queuing)."""
        s = self.stream_for(stream_index)
        return int(self.ffi.cast("uintptr_t", self.lib.mx_stream_native(s)))

    def queued(self, *arrays):
        """Record that work was queued outside the shim (see native_stream); `arrays` are
        kept alive until the next wait."""
        self._pending = True
        self.keep(*arrays)

    def gemm(self, stream_index, desc):
        stream = self.stream_for(stream_index)
        self.shim.check(self.lib.mx_gemm(stream, desc), "matmul")
        self._pending = True
