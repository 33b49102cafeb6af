"""The GPU kernel of a compiled program (mx.compile's `compiled(name)` primitive).

A Program (mx/core/_program.pyx) is a list of steps over numbered slots. On a GPU stream the
program runs here, step by step, as the scheduler would run the same nodes: a step whose
primitive has a GPU kernel queues it (fused elementwise steps included, see fused.py); a
step without one waits for the queued GPU work and runs its CPU kernel over the same
unified memory. Outputs are NumPy arrays, as Program.run gives; nothing is donated.

Everything per step (its handler, the node-like object the handler reads, the slots to
release) is worked out once, at a program's first GPU call; a call then is one loop over
the steps.

mx.core stays device-free: `install()` puts `make_handler` into
mx.core.primitives.DYNAMIC_GPU_HANDLERS, which mx/core/compiler.py consults when it makes a
program's primitive.
"""
from __future__ import annotations

import numpy as np

_ndarray = np.ndarray
_asarray = np.asarray


_F64 = np.dtype(np.float64)


def _has_double(np_dtypes, args):
    return any(d == _F64 for d in np_dtypes) or any(a.dtype == _F64 for a in args)


class StepNode:
    """What a GPU handler reads of a node: output shape, dtype, params and stream (of the
    step's first output; multi-output handlers return a sequence)."""
    __slots__ = ("_shape", "_dtype", "_params", "_stream", "_prim")

    def __init__(self, shape, dtype, params, stream, prim=None):
        self._shape = tuple(shape)
        self._dtype = dtype
        self._params = params
        self._stream = stream
        self._prim = prim


class StepRunner:
    """Runs a list of Steps on the GPU backend: each step's GPU handler where it has one
    that accepts the arrays, otherwise (after waiting for the GPU) its CPU kernel.

    n_in: slots 0..n_in-1 are the inputs; consts: (slot, array) pairs; out_slots: the
    slots returned; frees: whether to release slots after their last reader (as the
    program's plan says); gpu: when given, constants outside unified memory (made before
    the backend loaded, cached scalars) are copied into it here, once, instead of at every
    kernel launch that reads them."""

    def __init__(self, steps, n_slots, n_in, consts, out_slots, frees=True, gpu=None):
        self.n_in = n_in
        self.out_slots = tuple(out_slots)
        template = [None] * n_slots
        for s, v in consts:
            if gpu is not None and isinstance(v, _ndarray):
                staged = gpu.operand(v)
                if staged is not None:
                    v = staged[2]
            template[s] = v
        self.template = template
        self.stream = None
        self.nodes = []
        plan = []
        for st in steps:
            node = StepNode(st.shapes[0], st.dtypes[0], st.params, None, st.prim)
            self.nodes.append(node)
            plan.append((st.prim.gpu, node, st.kernel, st.params, st.ins, st.outs,
                         st.np_dtypes, tuple(st.frees) if frees else (), st.prim.name))
        self.plan = plan

    def run(self, gpu, inputs, stream_index, stream):
        """The output arrays (a tuple), computed from `inputs` (one per input slot)."""
        if stream is not self.stream:
            for node in self.nodes:
                node._stream = stream
            self.stream = stream
        slots = list(self.template)
        slots[:self.n_in] = inputs
        gpu_runs = gpu.gpu_runs
        fallbacks = gpu.fallbacks
        metal = getattr(gpu, "kind", None) == "metal"
        for handler, node, kernel, params, ins, outs, np_dtypes, frees, name in self.plan:
            args = [slots[s] for s in ins]
            out = None
            if metal and handler is not None and _has_double(np_dtypes, args):
                handler = None                  # Metal has no double
            if handler is not None:
                out = handler(gpu, node, args, stream_index)
            if out is not None:
                gpu_runs[name] += 1
                if len(outs) == 1:
                    if out.dtype != np_dtypes[0]:   # not expected of a GPU kernel
                        gpu.synchronize()
                        out = out.astype(np_dtypes[0])
                    slots[outs[0]] = out
                else:
                    for i in range(len(outs)):
                        o = out[i]
                        if o.dtype != np_dtypes[i]:
                            gpu.synchronize()
                            o = o.astype(np_dtypes[i])
                        slots[outs[i]] = o
            else:
                fallbacks[name] += 1
                gpu.synchronize()
                out = kernel(*args) if params is None else kernel(*args, **params)
                if len(outs) == 1:
                    if type(out) is not _ndarray:
                        out = _asarray(out)
                    if out.dtype != np_dtypes[0]:
                        out = out.astype(np_dtypes[0])
                    slots[outs[0]] = out
                else:
                    for i in range(len(outs)):
                        o = out[i]
                        if type(o) is not _ndarray:
                            o = _asarray(o)
                        if o.dtype != np_dtypes[i]:
                            o = o.astype(np_dtypes[i])
                        slots[outs[i]] = o
            args = out = None
            for s in frees:
                slots[s] = None
        return tuple([slots[s] for s in self.out_slots])


def make_handler(prog, in_shapes=None):
    """The GPU handler of program `prog`'s primitive: (gpu, node, args, stream index) ->
    tuple of outputs, or None (the CPU kernel, prog.run, then runs). `in_shapes`: the
    traced input shapes; a call with other shapes (a shapeless function) is left to the
    CPU, since the steps' shapes are the traced ones."""
    state = {"runner": None}
    in_shapes = None if in_shapes is None else [tuple(s) for s in in_shapes]

    def handler(gpu, node, args, stream_index):
        if in_shapes is not None and [a.shape for a in args] != in_shapes:
            return None
        runner = state["runner"]
        if runner is None:
            runner = state["runner"] = StepRunner(prog.steps, prog.n_slots, prog.n_in,
                                                  prog.consts, prog.out_slots, gpu=gpu)
        return runner.run(gpu, args, stream_index, node._stream)

    handler.__name__ = f"gpu_compiled_{getattr(prog, 'name', 'fun')}"
    return handler


def install():
    """Let mx.compile's programs and fused steps made from now on run on the GPU."""
    from mx.backend.gpu import fused
    from mx.core.primitives import DYNAMIC_GPU_HANDLERS
    DYNAMIC_GPU_HANDLERS["compiled"] = make_handler
    fused.install()


__all__ = ["StepNode", "StepRunner", "install", "make_handler"]
