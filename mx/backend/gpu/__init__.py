"""The GPU backend over the shims of shim/ (CUDA now; Metal's shim plugs in the same way).

`load()` runs when mx.core is imported (from mx.core.cuda): it loads the CUDA shim, and when
the shim finds a device it registers the GPU with mx.core.devices, backs mx's allocator with
the shim's unified memory, installs the scheduler's dispatch hook and makes mx.gpu the
default device (as MLX does). Without a GPU nothing changes and `unavailable_reason()` says
why. Environment: MX_GPU=0 keeps the backend off; MX_DEFAULT_DEVICE=cpu loads it but keeps
the CPU as the default device.
"""
from __future__ import annotations

import os

_backend = None
_reason = "not loaded yet"
_loaded = False


def load():
    """Bring the GPU backend up if this machine has a GPU (idempotent)."""
    global _backend, _reason, _loaded
    if _loaded:
        return _backend
    _loaded = True
    if os.environ.get("MX_GPU", "1") == "0":
        _reason = "disabled by MX_GPU=0"
        return None
    import sys
    from mx.backend.gpu import shim as _shim
    if sys.platform == "darwin":
        from mx.backend.gpu import metal as _metal
        kind, loader = "metal", _metal.load_metal
    else:
        kind, loader = "cuda", _shim.load_cuda
    try:
        ffi, lib = loader()
    except ImportError as e:
        _reason = f"the {kind} shim is not built ({e})"
        return None
    try:
        s = _shim.Shim(ffi, lib)
    except _shim.Unavailable as e:
        _reason = str(e)
        return None
    from mx.backend.gpu.backend import Backend
    b = Backend(s, kind)
    if kind == "metal":
        b.kernels = _metal.MetalKernelCache(s)
    _activate(b)
    _backend = b
    _reason = ""
    return b


def _activate(b):
    from mx.core import _memory, _scheduler, devices
    from mx.core.primitives import REGISTRY
    devices.register_backend(devices.DeviceType.gpu, b)
    for name, handler in handlers().items():
        prim = REGISTRY.get(name)
        if prim is not None:
            prim.gpu = handler
    _memory.set_backing_allocator(*b.shim.allocator_addresses())
    _scheduler.set_dispatch(b.dispatch, b.finish)
    from mx.backend.gpu import program
    program.install()                   # mx.compile's programs and fused kernels on the GPU
    from mx.backend.gpu.dlpack import CudaDLPack
    from mx.core import interop
    interop.DEVICE_DLPACK = CudaDLPack(b)
    if os.environ.get("MX_DEFAULT_DEVICE", "gpu") != "cpu":
        devices.set_default_device(devices.gpu)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forked_child)


def _forked_child():
    """CUDA does not survive fork: a forked child computes on the CPU, in ordinary memory
    (arrays the parent made in GPU memory are not readable there)."""
    global _backend, _reason
    from mx.core import _memory, _scheduler, devices
    if _backend is None:
        return
    _scheduler.set_dispatch(None)
    _memory.set_backing_allocator(0, 0)
    from mx.core import interop
    interop.DEVICE_DLPACK = None
    _backend.forked = True
    devices.set_default_device(devices.cpu)
    _backend = None
    _reason = "a forked child process (CUDA does not survive fork)"


def handlers():
    """{primitive name: GPU kernel handler} of every GPU-native primitive."""
    from mx.backend.gpu import copies, elementwise, indexing, matmul, reduce, rows
    out = elementwise.handlers()
    out.update(matmul.handlers())
    out.update(reduce.handlers())
    out.update(reduce.arg_handlers())
    out.update(copies.handlers())
    out.update(indexing.handlers())
    out.update(rows.handlers())
    from mx.backend.gpu import scatter, stats
    out.update(scatter.handlers())
    out.update(stats.handlers())
    from mx.backend.gpu import scan, sort
    out.update(scan.handlers())
    out.update(sort.handlers())
    from mx.backend.gpu import fast
    out.update(fast.handlers())
    from mx.backend.gpu import layout
    out.update(layout.handlers())
    from mx.backend.gpu import conv
    out.update(conv.handlers())
    from mx.backend.gpu import misc, random as gpu_random
    out.update(gpu_random.handlers())
    out.update(misc.handlers())
    return out


def native_primitives():
    """Names of the primitives with a GPU kernel (whatever this machine has)."""
    return sorted(handlers())


def active_backend():
    """The active GPU backend (a backend.Backend), or None."""
    return _backend


def is_available() -> bool:
    return _backend is not None


def cuda_available() -> bool:
    return _backend is not None and _backend.kind == "cuda"


def metal_available() -> bool:
    return _backend is not None and _backend.kind == "metal"


def unavailable_reason() -> str:
    """Why there is no GPU backend ('' when there is one)."""
    return _reason


def fallback_counts() -> dict:
    """{primitive name: times it ran on the CPU although its stream was a GPU stream}."""
    return dict(_backend.fallbacks) if _backend is not None else {}


def reset_counts():
    if _backend is not None:
        _backend.fallbacks.clear()
        _backend.gpu_runs.clear()


def synchronize():
    """Wait for all queued GPU work."""
    if _backend is not None:
        _backend.synchronize()
