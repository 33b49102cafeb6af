"""Fusion of elementwise chains in mx.compile programs into generated C kernels.

`fuse_program(program, inputs)` runs at the end of `Program.build`. It finds maximal groups
of elementwise steps (unary, binary, select, astype, round) over bool/uint8/int32/int64/
float32/float64 whose intermediate slots are read only inside the group and are not
program outputs, with one output per group and every input of the group either of the
output's full size or of size 1 (other broadcasts end a group). Each group of two or more
steps is replaced by one step running a C kernel rendered by mx.backend.codegen.c and built
by mx.backend.cpu.cbuild: one pass over memory instead of one NumPy call (and temporary
array) per op.

A fused step keeps its original steps: they run through NumPy when the kernel cannot be
used for the arrays of a call (shapeless calls with other shapes that broadcast
differently), and the transformation rules of the fused primitive replay them as ordinary
ops (so grad/vmap of a compiled function still work).

MX_DISABLE_FUSION=1 turns fusion off; without a working C compiler it is off too, with one
warning per process.
"""
from __future__ import annotations

import os
import threading
import warnings

import ml_dtypes
import numpy as np

from mx.backend.codegen import FusedGraph, Input, Node
from mx.backend.codegen import c as cgen
from mx.backend.cpu import cbuild

DTYPES = ("bool", "uint8", "int32", "int64", "float32", "float64")
_NP = {d: np.dtype(d) for d in DTYPES}
# dtypes that only the GPU's fused kernels take (mx/backend/codegen/msl.py): groups of them
# are fused for the GPU; on the CPU such a group runs its steps one by one
HALF_DTYPES = ("float16", "bfloat16")
FUSED_DTYPES = DTYPES + HALF_DTYPES
_NP.update({"float16": np.dtype(np.float16), "bfloat16": np.dtype(ml_dtypes.bfloat16)})
_warned = {"compiler": False, "build": False}
_warn_lock = threading.Lock()
_table = {}
# GNU libgomp's thread pool does not survive fork: a child of a process that ran a
# threaded kernel would hang in its first parallel loop, so it runs them on one thread.
_omp = {"parallel": 1, "used": False}


def _after_fork_in_child():
    if _omp["used"]:
        _omp["parallel"] = 0


os.register_at_fork(after_in_child=_after_fork_in_child)


def enabled():
    """Fusion is on unless MX_DISABLE_FUSION is set (to anything but 0/empty)."""
    return os.environ.get("MX_DISABLE_FUSION", "") in ("", "0")


def _warn_once(kind, message):
    with _warn_lock:
        if _warned[kind]:
            return
        _warned[kind] = True
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _elementwise():
    """id(primitive) -> (kind, rule name) for the fusible primitives (built on first use)."""
    if not _table:
        from mx.core.ops import elementwise as ew
        from mx.core._array import BINARY_RULES
        codes = {v: k for k, v in BINARY_RULES.items()}
        for name, (prim, rule) in ew.UNARY.items():
            if name not in ("stop_gradient", "real", "imag", "conjugate"):
                _table[id(prim)] = ("unary", rule)
        for prim, code in ew.BINARY.values():
            _table[id(prim)] = ("binary", codes[code])
        _table[id(ew.SELECT)] = ("select", None)
        _table[id(ew.ASTYPE)] = ("astype", None)
        _table[id(ew.ROUND)] = ("unary", "same")
    return _table


def _size(shape):
    n = 1
    for d in shape:
        n *= d
    return n


# ---------------------------------------------------------------------------------------
# what is known about each slot at build time
# ---------------------------------------------------------------------------------------
class _Slots:
    """Shape and dtype name per slot where known (program inputs only when `inputs` is
    given; otherwise inferred from the ops that read them where the op fixes it)."""

    def __init__(self, program, inputs):
        self.shape, self.dtype = {}, {}
        if inputs is not None:
            for i, x in enumerate(inputs):
                self.shape[i] = tuple(x.shape)
                self.dtype[i] = x.dtype.name
        self.const = {}
        for s, v in program.consts:
            v = np.asarray(v)
            self.const[s] = v
            self.shape[s] = v.shape
            self.dtype[s] = v.dtype.name if v.dtype.name in FUSED_DTYPES else "?"
        for st in program.steps:
            for s, shp, dt in zip(st.outs, st.shapes, st.dtypes):
                self.shape[s] = tuple(shp)
                self.dtype[s] = dt.name

    def in_dtypes(self, st):
        """The dtype name of each input of an elementwise step, or None where unknown."""
        kind, rule = _elementwise()[id(st.prim)]
        out = st.dtypes[0].name
        known = [self.dtype.get(s) for s in st.ins]
        if kind == "unary":
            guess = "bool" if st.prim.name == "logical_not" else \
                None if rule in ("bool", "real") else out
            known = [known[0] or guess]
        elif kind == "binary":
            guess = "bool" if rule == "logical" else \
                (known[0] or known[1]) if rule == "compare" else out
            known = [k or guess for k in known]
        elif kind == "select":
            known = [known[0] or "bool", known[1] or out, known[2] or out]
        return known


def _params(st):
    if st.prim.name == "round":
        return (("decimals", int(st.params["decimals"])),)
    return ()


def _literal_args(st, slots):
    """{input position: value} for power exponents that are constant 1, 2 or 3: the kernel
    multiplies instead of calling pow (which does not vectorise)."""
    if st.prim.name != "power" or st.dtypes[0].name not in cgen.FLOATS:
        return {}
    v = slots.const.get(st.ins[1])
    if v is not None and v.size == 1 and float(v.reshape(-1)[0]) in (1.0, 2.0, 3.0):
        return {1: float(v.reshape(-1)[0])}
    return {}


def _fusible(st, slots):
    if len(st.outs) != 1 or id(st.prim) not in _elementwise():
        return False
    out = st.dtypes[0].name
    ins = slots.in_dtypes(st)
    if out not in FUSED_DTYPES or any(d not in FUSED_DTYPES for d in ins):
        return False
    if out in DTYPES and all(d in DTYPES for d in ins):
        return cgen.supports(st.prim.name, ins, out, _params(st))
    from mx.backend.codegen import msl      # half types: only a GPU kernel fuses them
    return msl.supports(st.prim.name, ins, out, _params(st))


# ---------------------------------------------------------------------------------------
# grouping
# ---------------------------------------------------------------------------------------
def find_groups(program, slots):
    """Lists of step indices (ascending), each group of two or more steps fusable into one
    kernel whose output is the last step's."""
    steps = program.steps
    producer, readers = {}, {}
    for i, st in enumerate(steps):
        for s in st.outs:
            producer[s] = i
        for s in st.ins:
            readers.setdefault(s, set()).add(i)
    outputs = set(program.out_slots)
    fusible = [_fusible(st, slots) for st in steps]
    taken = [False] * len(steps)
    groups = []

    def sizes_ok(st, n):
        for s in st.ins:
            shp = slots.shape.get(s)
            if shp is not None and _size(shp) not in (1, n):
                return False
        return True

    for root in range(len(steps) - 1, -1, -1):
        if taken[root] or not fusible[root]:
            continue
        n = _size(steps[root].shapes[0])
        if not sizes_ok(steps[root], n):
            continue
        members = {root}
        stack = list(steps[root].ins)
        while stack:
            s = stack.pop()
            p = producer.get(s)
            if p is None or p in members or taken[p] or not fusible[p] or s in outputs:
                continue
            # every reader must be in the group (another reader may join later and push
            # this slot again)
            if not readers[s] <= members or not sizes_ok(steps[p], n):
                continue
            members.add(p)
            stack.extend(steps[p].ins)
        if len(members) > 1:
            for m in members:
                taken[m] = True
            groups.append(sorted(members))
    return groups


# ---------------------------------------------------------------------------------------
# the fused kernel
# ---------------------------------------------------------------------------------------
class FusedKernel:
    """Runs one group: the compiled C function for the leaf shapes/dtypes of a call (built
    on first sight of a new combination), or the original NumPy steps when the arrays do
    not fit (a leaf neither of the output's size nor of size 1, or no compiler)."""

    def __init__(self, members, leaves, literals, consts):
        self.members = members          # original Steps, in order
        self.leaves = leaves            # input slots of the fused step
        self.literals = literals        # {(member index, input position): value}
        self.consts = consts            # {slot: ndarray} for slots used only as literals
        self.root = members[-1].outs[0]
        self.specs = {}                 # leaf (shape, dtype) key -> _Spec or None
        self.lock = threading.Lock()

    # --- graphs -------------------------------------------------------------------------
    def graph(self, dtypes, scalars):
        """The FusedGraph for leaves of these dtype names / scalar flags."""
        ref = {s: ("in", k) for k, s in enumerate(self.leaves)}
        nodes = []
        for j, st in enumerate(self.members):
            args = []
            for pos, s in enumerate(st.ins):
                lit = self.literals.get((j, pos))
                args.append(("lit", lit, st.dtypes[0].name) if lit is not None else ref[s])
            nodes.append(Node(st.prim.name, st.dtypes[0].name, tuple(args), _params(st)))
            ref[st.outs[0]] = ("node", j)
        inputs = tuple(Input(d, sc) for d, sc in zip(dtypes, scalars))
        return FusedGraph(inputs, tuple(nodes))

    def plan(self, shapes, dtypes):
        """(graph, out shape, n) for leaves of these shapes and numpy dtypes, or None when
        the kernel cannot handle them."""
        names = []
        for d in dtypes:
            d = np.dtype(d)
            if d.name not in FUSED_DTYPES or d != _NP[d.name]:
                return None
            names.append(d.name)
        try:
            # constants inlined as literals (size 1) may still add leading axes
            out_shape = np.broadcast_shapes(*shapes, *[c.shape for c in self.consts.values()])
        except ValueError:
            return None
        n = _size(out_shape)
        sizes = [_size(s) for s in shapes]
        if any(z not in (1, n) for z in sizes):
            return None
        scalars = [z == 1 and n != 1 for z in sizes]
        if n == 1:
            scalars = [True] * len(sizes)
        return self.graph(names, scalars), tuple(out_shape), n

    def install(self, key, graph, out_shape, n, mod, fname):
        self.specs[key] = _Spec(mod, fname, graph, out_shape, n)

    # --- running ------------------------------------------------------------------------
    def __call__(self, *args):
        key = tuple([(a.shape, a.dtype) for a in args])
        spec = self.specs.get(key, _MISSING)
        if spec is _MISSING:
            spec = self._specialise(args, key)
        if spec is None:
            return self.numpy(*args)
        return spec.run(args)

    def _specialise(self, args, key):
        with self.lock:
            spec = self.specs.get(key, _MISSING)
            if spec is not _MISSING:
                return spec
            spec = None
            planned = self.plan([a.shape for a in args], [a.dtype for a in args])
            if planned is not None and not _c_types(planned[0]):
                planned = None              # half types: the steps one by one on the CPU
            if planned is not None and cbuild.toolchain() is not None:
                graph, out_shape, n = planned
                try:
                    cdef, source = cgen.render_module([(graph, "mxk0")])
                    mod = cbuild.load(cdef, source)
                    spec = _Spec(mod, "mxk0", graph, out_shape, n)
                except Exception as e:    # a failed build leaves NumPy in charge
                    _warn_once("build", f"[compile] A fused kernel failed to build ({e}); "
                                        "the ops run unfused.")
            self.specs[key] = spec
            return spec

    def numpy(self, *args):
        """The group's original steps through their NumPy kernels."""
        env = dict(self.consts)
        env.update(zip(self.leaves, args))
        for st in self.members:
            ins = [env[s] for s in st.ins]
            out = st.kernel(*ins) if st.params is None else st.kernel(*ins, **st.params)
            out = np.asarray(out)
            if out.dtype != st.np_dtypes[0]:
                out = out.astype(st.np_dtypes[0])
            env[st.outs[0]] = out
        return env[self.root]

    def replay(self, xs):
        """The group as ordinary lazy ops on mx arrays `xs` (one per leaf)."""
        from mx.core._array import make_node, wrap
        env = {s: wrap(v) for s, v in self.consts.items()}
        env.update(zip(self.leaves, xs))
        for st in self.members:
            ins = tuple(env[s] for s in st.ins)
            env[st.outs[0]] = make_node(st.prim, ins, st.params, st.shapes[0], st.dtypes[0])
        return env[self.root]


_MISSING = object()


def _c_types(graph):
    """Whether the C renderer takes every dtype of `graph` (not the GPU-only half types)."""
    return all(x.dtype in DTYPES for x in graph.inputs) and \
        all(n.dtype in DTYPES for n in graph.nodes)


class _Spec:
    """A compiled kernel bound to one combination of leaf shapes and dtypes."""
    __slots__ = ("fn", "from_buffer", "in_types", "out_type", "shape", "dtype", "n", "graph")

    def __init__(self, mod, fname, graph, out_shape, n):
        ffi = mod.ffi
        self.fn = getattr(mod.lib, fname)
        self.from_buffer = ffi.from_buffer
        self.in_types = [ffi.typeof(cgen.CTYPES[x.dtype] + "[]") for x in graph.inputs]
        self.out_type = ffi.typeof(cgen.CTYPES[graph.out_dtype] + "[]")
        self.shape = out_shape
        self.dtype = _NP[graph.out_dtype]
        self.n = n
        self.graph = graph

    def run(self, args):
        out = np.empty(self.shape, self.dtype)
        if self.n == 0:
            return out
        fb = self.from_buffer
        ptrs = []
        for t, a in zip(self.in_types, args):
            try:
                ptrs.append(fb(t, a))
            except (ValueError, BufferError, TypeError):   # not C-contiguous
                ptrs.append(fb(t, np.ascontiguousarray(a)))
        if self.n > cgen.PARALLEL_MIN:
            _omp["used"] = True
        self.fn(self.n, _omp["parallel"], *ptrs, fb(self.out_type, out, require_writable=True))
        return out


def _fused_primitive(kernel, names):
    """A primitive for the fused step; its rules replay the original ops."""
    from mx.core._array import Primitive

    def vjp_rule(primals, ct, out):
        from mx.core.transforms import vjp
        return vjp(lambda *xs: [kernel.replay(xs)], list(primals), [ct])[1]

    def jvp_rule(primals, tangents, out):
        import mx.core as mx
        from mx.core.transforms import jvp
        tans = [t if t is not None else mx.zeros(p.shape, p.dtype)
                for p, t in zip(primals, tangents)]
        return jvp(lambda *xs: [kernel.replay(xs)], list(primals), tans)[1][0]

    def vmap_rule(inputs, axes, out):
        from mx.core.transforms import vmap
        return vmap(lambda *xs: kernel.replay(xs), in_axes=tuple(axes))(*inputs), 0

    from mx.core.primitives import DYNAMIC_GPU_HANDLERS
    factory = DYNAMIC_GPU_HANDLERS.get("fused")
    gpu = factory(kernel) if factory is not None else None
    return Primitive(f"fused({','.join(names)})", None, kernel, gpu=gpu, vjp=vjp_rule,
                     jvp=jvp_rule, vmap=vmap_rule, nout=1, donates=False,
                     doc="elementwise ops fused into one generated C kernel")


# ---------------------------------------------------------------------------------------
# the pass
# ---------------------------------------------------------------------------------------
def fuse_program(program, inputs=None) -> None:
    """Rewrite program.steps in place, replacing fusable elementwise groups by fused
    steps, and re-plan slot lifetimes. `inputs`: the traced input arrays (their shapes and
    dtypes let kernels be built now; without them, on the first call)."""
    if not enabled() or not program.steps:
        return
    try:
        _fuse(program, inputs)
    except Exception as e:     # never let an optimisation break mx.compile
        _warn_once("build", f"[compile] Kernel fusion failed ({type(e).__name__}: {e}); "
                            "the program runs unfused.")


def _fuse(program, inputs):
    slots = _Slots(program, inputs)
    groups = find_groups(program, slots)
    if not groups:
        return
    if cbuild.toolchain() is None:
        _warn_once("compiler", "[compile] No working C compiler (or cffi) was found: "
                               "mx.compile runs without fusing elementwise ops into kernels.")
        return
    from mx.core._program import Step
    steps = program.steps
    kernels = []
    for group in groups:
        members = [steps[i] for i in group]
        literals, lit_slots = {}, set()
        for j, st in enumerate(members):
            for pos, v in _literal_args(st, slots).items():
                literals[(j, pos)] = v
                lit_slots.add(st.ins[pos])
        inside = {st.outs[0] for st in members}
        leaves = []
        for j, st in enumerate(members):
            for pos, s in enumerate(st.ins):
                if s not in inside and (j, pos) not in literals and s not in leaves:
                    leaves.append(s)
        consts = {s: slots.const[s] for s in lit_slots if s not in leaves}
        kernels.append(FusedKernel(members, tuple(leaves), literals, consts))
    if not _prebuild(kernels, slots):
        return
    replace = {}
    for group, kernel in zip(groups, kernels):
        root = kernel.members[-1]
        st = Step()
        st.prim = _fused_primitive(kernel, [m.prim.name for m in kernel.members])
        st.kernel = kernel
        st.ins = kernel.leaves
        st.params = None
        st.outs = root.outs
        st.np_dtypes = root.np_dtypes
        st.shapes = root.shapes
        st.dtypes = root.dtypes
        st.frees = ()
        st.donor = -1
        replace[group[-1]] = st
        for i in group[:-1]:
            replace[i] = None
    program.steps = [replace.get(i, st) for i, st in enumerate(steps) if replace.get(i, st) is not None]
    program._plan_lifetimes()


def _prebuild(kernels, slots):
    """Build, in one C module, the kernels whose leaf shapes and dtypes are known now.
    False when that build fails (the program then stays unfused)."""
    todo = []
    for k in kernels:
        shapes = [slots.shape.get(s) for s in k.leaves]
        dtypes = [slots.dtype.get(s) for s in k.leaves]
        if any(s is None for s in shapes) or any(d not in DTYPES for d in dtypes):
            continue
        planned = k.plan(shapes, [_NP[d] for d in dtypes])
        if planned is None or not _c_types(planned[0]):
            continue
        key = tuple((tuple(s), _NP[d]) for s, d in zip(shapes, dtypes))
        todo.append((k, key, planned))
    if not todo:
        return True
    try:
        cdef, source = cgen.render_module([(p[0], f"mxk{i}") for i, (_, _, p) in enumerate(todo)])
        mod = cbuild.load(cdef, source)
    except Exception as e:
        _warn_once("build", f"[compile] Fused kernels failed to build ({e}); the ops run unfused.")
        return False
    for i, (k, key, (graph, out_shape, n)) in enumerate(todo):
        k.install(key, graph, out_shape, n, mod, f"mxk{i}")
    return True


__all__ = ["FusedKernel", "enabled", "find_groups", "fuse_program"]
