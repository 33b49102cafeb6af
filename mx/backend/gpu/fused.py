"""The GPU kernel of a fused elementwise step (mx.compile, mx/backend/cpu/fusion.py).

A fused step's FusedKernel describes its group of ops as a backend-neutral FusedGraph for the
leaf shapes and dtypes of a call; mx/backend/codegen/msl.py renders that graph as one kernel
of the shaders' MSL subset, translate.py makes it CUDA and the shim compiles it (and caches
the binary on disk). Kernels are cached in memory per graph (which fixes dtypes and which
inputs are scalars), launch data per leaf shapes and dtypes.

When the graph has an op without a GPU rendering (msl raises Unsupported) or the leaves do
not fit one kernel, the group's member steps run one by one as the program's steps do
(program.StepRunner: GPU kernels where they exist).
"""
from __future__ import annotations

import struct
import threading
import warnings

import numpy as np

from mx.backend.codegen import msl
from mx.backend.codegen.c import Unsupported
from mx.backend.gpu import elementwise as E
from mx.backend.gpu import translate

THREADGROUP = 256
GRID_X_MAX = 1 << 30            # as Backend.launch: larger grids use a second dimension
_MISSING = object()
_CPU = object()                 # a leaf combination left to the CPU kernel
_U64 = struct.Struct("<Q")
_kernels = {}                   # (id(shim), graph) -> compiled kernel handle, or None
_lock = threading.Lock()
_warned = [False]
_FAST_MAX_ARRAYS = 8            # buffers the backend's C launcher takes (_launch.pyx)
_NOT_UNIFIED = -5               # MX_NOT_UNIFIED: an array outside the shim's memory
WIDE_ABOVE = 1 << 16            # elements from which a launch checks for the wide-load kernel


def compiled_kernel(gpu, graph):
    """The shim's kernel handles (any alignment, wide loads) for `graph`, compiled on first
    use into one library, or None when the graph cannot be rendered or compiled (or is
    float64 on Metal, which has no double)."""
    key = (id(gpu.shim), graph)
    k = _kernels.get(key, _MISSING)
    if k is not _MISSING:
        return k
    with _lock:
        k = _kernels.get(key, _MISSING)
        if k is not _MISSING:
            return k
        k = source = None
        metal = getattr(gpu, "kind", "cuda") == "metal"
        try:
            name = msl.kernel_name(graph)
            vname = msl.vector_name(name)
            text = msl.render_kernel(graph, name)
            # the second kernel's includes are already there
            vtext = msl.render_kernel(graph, vname, vector=True).split("using namespace metal;", 1)[1]
            if metal and "float64" in [x.dtype for x in graph.inputs] + [n.dtype for n in graph.nodes]:
                raise Unsupported("float64 on Metal")
            text = text + vtext
            source = translate.metal_source_text(text) if metal else translate.cuda_source_text(text)
        except Unsupported:
            pass
        if source is not None:
            try:
                lib = gpu.shim.library(source, [name, vname])
                k = (gpu.shim.kernel(lib, name), gpu.shim.kernel(lib, vname))
            except Exception as e:   # a bug in the renderer: the ops run one by one
                if not _warned[0]:
                    _warned[0] = True
                    warnings.warn(f"[compile] A fused GPU kernel failed to compile ({e}); its "
                                  "ops run one by one.", RuntimeWarning, stacklevel=2)
        _kernels[key] = k
        return k


class Launch:
    """One fused kernel bound to one combination of leaf shapes and dtypes: its launch
    arguments are laid out once and only the buffers change from call to call.

    The backend's C launcher (gpu.fast: one call with the arrays' data pointers and n, the
    layout of the contiguous elementwise kernels, which the fused kernel shares) is used
    when the backend has one; otherwise mx_dispatch through cffi."""

    def __init__(self, gpu, kernels, graph, out_shape, n, np_dtype):
        ffi = gpu.ffi
        kernel, vkernel = kernels
        self.kernel = kernel
        self.name = msl.kernel_name(graph)
        self.shape = out_shape
        self.dtype = np_dtype
        self.n = n
        self.scalars = tuple(x.scalar for x in graph.inputs)
        self.n_in = len(graph.inputs)
        self.fast = getattr(gpu, "fast", None) if self.n_in + 1 <= _FAST_MAX_ARRAYS else None
        # the arrays whose alignment picks the kernel: non-scalar inputs and the output
        self.mask = sum(1 << j for j, sc in enumerate(self.scalars) if not sc) | (1 << self.n_in)
        self.kernel_addr = int(ffi.cast("uintptr_t", kernel))
        # wide loads pay off on large arrays only (the alignment check costs a small launch)
        self.vector_addr = int(ffi.cast("uintptr_t", vkernel)) if n >= WIDE_ABOVE else 0
        self.nargs = self.n_in + 2
        self.args = ffi.new("mx_arg[]", self.nargs)
        self.size = ffi.from_buffer(_U64.pack(n))
        last = self.args[self.n_in + 1]
        last.bytes = self.size
        last.nbytes = 8
        threads = max(1, -(-n // E.WORK))
        if threads <= GRID_X_MAX:
            self.grid = ffi.new("uint64_t[3]", [threads, 1, 1])
        else:
            self.grid = ffi.new("uint64_t[3]", [GRID_X_MAX, -(-threads // GRID_X_MAX), 1])
        self.tg = ffi.new("uint32_t[3]", [THREADGROUP, 1, 1])

    def run(self, gpu, args, stream):
        """Queue the kernel over `args` (the leaves); the output array, or None."""
        out = np.empty(self.shape, self.dtype)      # unified memory: mx's allocator
        written = getattr(gpu, "_written", None)
        if written is not None:
            written.add(id(out))
        if self.n == 0:
            return out
        inputs = []
        for j, a in enumerate(args):
            if not self.scalars[j] and not a.flags.c_contiguous:
                # a GPU copy: a CPU one would read GPU results that may not be written yet
                a = E.run_unary(gpu, "unary", "copy", "Identity", a, a.dtype, a.shape, stream)
                if a is None:
                    return None
            inputs.append(a)
        if self.fast is not None:
            arrays = (*inputs, out)
            saddr = gpu._stream_address(stream)
            kaddr = self.kernel_addr
            if self.vector_addr and self.fast.aligned(arrays, self.mask, E.WORK):
                kaddr = self.vector_addr
            rc = self.fast.elementwise(kaddr, saddr, self.n, E.WORK, arrays)
            if rc == 0:
                _queued(gpu, inputs)
                return out
            if rc != _NOT_UNIFIED:
                gpu.shim.check(rc, self.name)
        # through cffi (the kernel for any alignment), staging inputs that are outside
        # unified memory
        made = gpu.operand(out)
        if made is None or made[2] is not out:
            return None
        obuf, ooff = made[0], made[1]
        s = gpu.stream_for(stream)
        cargs = self.args
        held = []
        for j, a in enumerate(inputs):
            src = gpu.operand(a)
            if src is None:
                return None
            buf, off, a = src
            cargs[j].buffer = buf
            cargs[j].offset = off
            held.append(a)
        o = cargs[self.n_in]
        o.buffer = obuf
        o.offset = ooff
        gpu.shim.check(gpu.lib.mx_dispatch(self.kernel, s, self.grid, self.tg, cargs,
                                           self.nargs, 0), self.name)
        _queued(gpu, held)
        return out


def _queued(gpu, arrays):
    queued = getattr(gpu, "queued", None)
    if queued is not None:
        queued(*arrays)
    else:
        gpu._pending = True
        gpu.keep(*arrays)


def make_handler(fk):
    """The GPU handler of a fused step whose CPU kernel is FusedKernel `fk`:
    (gpu, node, args, stream index) -> output array or None."""
    launches = {}                 # leaf (shape, dtype) key -> Launch, or None: one by one
    members = []                  # [StepRunner], built when first needed

    def one_by_one(gpu, node, args, stream):
        if not members:
            from mx.backend.gpu.program import StepRunner
            env = {s: k for k, s in enumerate(fk.leaves)}
            n_slots = len(env)
            consts = []
            for s, v in fk.consts.items():
                env[s] = n_slots
                consts.append((n_slots, v))
                n_slots += 1
            steps = []
            for st in fk.members:
                for s in st.outs:
                    if s not in env:
                        env[s] = n_slots
                        n_slots += 1
                steps.append(_Renumbered(st, env))
            members.append(StepRunner(steps, n_slots, len(fk.leaves), consts,
                                      [env[fk.root]], frees=False, gpu=gpu))
        return members[0].run(gpu, args, stream, node._stream)[0]

    def handler(gpu, node, args, stream):
        key = tuple([(a.shape, a.dtype) for a in args])
        launch = launches.get(key, _MISSING)
        if launch is _MISSING:
            launch = None
            planned = fk.plan([a.shape for a in args], [a.dtype for a in args])
            if planned is None or planned[1] != tuple(node._shape):
                # leaves other than the traced ones: the members' shapes do not hold, and
                # the CPU kernel (FusedKernel) handles any shapes
                launch = _CPU
            else:
                graph, out_shape, n = planned
                kernel = compiled_kernel(gpu, graph)
                if kernel is not None:
                    launch = Launch(gpu, kernel, graph, out_shape, n, node._dtype.np)
            launches[key] = launch
        if launch is _CPU:
            return None
        if launch is not None:
            out = launch.run(gpu, args, stream)
            if out is not None:
                return out
        return one_by_one(gpu, node, args, stream)

    handler.__name__ = "gpu_fused"
    return handler


class _Renumbered:
    """A member step with its slots renumbered for a StepRunner of the group alone."""
    __slots__ = ("prim", "kernel", "ins", "params", "outs", "np_dtypes", "shapes", "dtypes",
                 "frees")

    def __init__(self, st, env):
        self.prim = st.prim
        self.kernel = st.kernel
        self.params = st.params
        self.ins = tuple(env[s] for s in st.ins)
        self.outs = tuple(env[s] for s in st.outs)
        self.np_dtypes = st.np_dtypes
        self.shapes = st.shapes
        self.dtypes = st.dtypes
        self.frees = ()


def install():
    """Give fused steps made from now on (mx/backend/cpu/fusion.py) this GPU handler."""
    from mx.core.primitives import DYNAMIC_GPU_HANDLERS
    DYNAMIC_GPU_HANDLERS["fused"] = make_handler


__all__ = ["Launch", "compiled_kernel", "install", "make_handler"]
