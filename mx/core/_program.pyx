# cython: language_level=3
"""A traced graph as a flat program: kernel steps over numbered slots.

Built once per trace by mx.compile: nodes that do not depend on the inputs are evaluated
at build time (constant folding), common subexpressions are merged, identity steps
(stop_gradient, a no-op cast) are removed, and each remaining node becomes a step. Running
the program is a tight loop over steps; a slot is released right after its last reader,
and a step whose kernel accepts out= writes into an input slot that dies there (decided
once, at build time).
"""
from mx.core._array cimport array, Primitive, resolve_input

import numpy as _np

from mx.core._array import inputs_of, make_node, make_nodes, wrap

cdef object ndarray = _np.ndarray
cdef object np_asarray = _np.asarray

# steps that pass their input through unchanged
_IDENTITY_PRIMS = {"stop_gradient", "transform_leaf"}


def graph_order(list outputs, stop):
    """Nodes reachable from `outputs` through their primitives (evaluated or not), inputs
    before consumers, without recursion; the walk does not go past arrays whose id is in
    `stop`."""
    order, seen = [], set()
    stack = [(o, False) for o in reversed(outputs)]
    while stack:
        node, expanded = stack.pop()
        k = id(node)
        if expanded:
            order.append(node)
            continue
        if k in seen:
            continue
        seen.add(k)
        stack.append((node, True))
        if k in stop or (<array>node)._prim is None:
            continue
        for inp in reversed(inputs_of(node)):
            if id(inp) not in seen:
                stack.append((inp, False))
    return order


cdef class Step:
    cdef public object prim          # Primitive
    cdef public object kernel
    cdef public tuple ins            # input slot numbers
    cdef public object params        # dict or None
    cdef public tuple outs           # output slot numbers
    cdef public tuple np_dtypes      # numpy dtype per output
    cdef public tuple shapes         # traced shape per output
    cdef public tuple dtypes         # mx Dtype per output
    cdef public tuple frees          # slots to release after this step
    cdef public int donor            # input position whose buffer becomes the output, or -1


cdef class Program:
    cdef public list steps
    cdef public int n_in
    cdef public list consts          # (slot, numpy array)
    cdef public list out_slots
    cdef public int n_slots
    cdef public bint shape_static
    cdef public object primitive
    cdef public str name

    @staticmethod
    def build(list outputs, list inputs, str name="fun"):
        cdef Program p = Program()
        p.name = name
        p.n_in = len(inputs)
        p.steps = []
        p.consts = []
        p.shape_static = False
        slot = {}
        for i, x in enumerate(inputs):
            slot[id(x)] = i
        input_ids = set(slot)
        order = graph_order(outputs, input_ids)
        dep = set(input_ids)
        for node in order:
            if id(node) in dep or (<array>node)._prim is None:
                continue
            if any(id(i) in dep for i in inputs_of(node)):
                dep.add(id(node))
        # constants: everything reached that does not depend on an input, evaluated now
        const_nodes = [n for n in order if id(n) not in dep]
        if const_nodes:
            from mx.core._scheduler import eval_arrays
            eval_arrays(const_nodes)
        n_slots = p.n_in
        for n in const_nodes:
            if id(n) not in slot:
                slot[id(n)] = n_slots
                p.consts.append((n_slots, (<array>n)._data))
                n_slots += 1
        # steps, merging repeats of the same primitive on the same inputs
        seen_steps = {}
        done_groups = set()
        for node in order:
            k = id(node)
            if k not in dep or k in input_ids:
                continue
            sibs = (<array>node)._siblings
            if sibs is not None:
                if id(sibs) in done_groups:
                    continue
                done_groups.add(id(sibs))
                group = list(sibs)
            else:
                group = [node]
            prim = (<array>node)._prim
            ins = tuple(slot[id(i)] for i in inputs_of(node))
            params = (<array>node)._params
            if prim.name in _IDENTITY_PRIMS and len(group) == 1:
                slot[k] = ins[0]
                continue
            if prim.name == "astype" and len(ins) == 1 and params["dtype"] is inputs_of(node)[0].dtype:
                slot[k] = ins[0]
                continue
            try:
                cse_key = (id(prim), ins, _freeze(params), (<array>node)._index)
            except TypeError:
                cse_key = None
            if cse_key is not None and cse_key in seen_steps and sibs is None:
                slot[k] = seen_steps[cse_key]
                continue
            st = Step()
            st.prim = prim
            st.kernel = prim.cpu
            st.ins = ins
            st.params = params
            outs = []
            for g in group:
                slot[id(g)] = n_slots
                outs.append(n_slots)
                n_slots += 1
            st.outs = tuple(outs)
            st.np_dtypes = tuple((<array>g)._dtype.np for g in group)
            st.dtypes = tuple((<array>g)._dtype for g in group)
            st.shapes = tuple((<array>g)._shape for g in group)
            st.donor = -1
            if cse_key is not None and sibs is None:
                seen_steps[cse_key] = outs[0]
            if len(ins) == 0 or (params is not None and ("shape" in params or "shapes" in params)):
                p.shape_static = True
            p.steps.append(st)
        p.n_slots = n_slots
        p.out_slots = [slot[id(o)] for o in outputs]
        from mx.backend.cpu.fusion import fuse_program
        fuse_program(p, inputs)
        p._plan_lifetimes()
        return p

    def _plan_lifetimes(self):
        cdef Step st
        keep = set(range(self.n_in)) | {s for s, _ in self.consts} | set(self.out_slots)
        last = {}
        for i, st in enumerate(self.steps):
            for s in st.ins:
                last[s] = i
        frees = [[] for _ in self.steps]
        for s, i in last.items():
            if s not in keep:
                frees[i].append(s)
        for i, st in enumerate(self.steps):
            st.frees = tuple(frees[i])
            if st.prim.donates and len(st.outs) == 1:
                for j, s in enumerate(st.ins):
                    if s in st.frees and st.ins.count(s) == 1 and \
                            all(self._shape_of(t) == st.shapes[0] for t in st.ins) and \
                            self._dtype_of(s) is st.dtypes[0] and st.dtypes[0].name != "bool":
                        st.donor = j
                        break

    def _shape_of(self, int s):
        cdef Step st
        for st in self.steps:
            if s in st.outs:
                return st.shapes[st.outs.index(s)]
        return None

    def _dtype_of(self, int s):
        cdef Step st
        for st in self.steps:
            if s in st.outs:
                return st.dtypes[st.outs.index(s)]
        return None

    def run(self, *inputs):
        """Execute on NumPy inputs; a tuple of NumPy outputs."""
        cdef list slots = [None] * self.n_slots
        cdef Py_ssize_t i
        cdef Step st
        cdef object out, kernel, params
        for i in range(self.n_in):
            slots[i] = inputs[i]
        for s, v in self.consts:
            slots[s] = v
        for st in self.steps:
            args = [slots[s] for s in st.ins]
            kernel = st.kernel
            params = st.params
            if st.donor >= 0 and args[st.donor].shape == st.shapes[0]:
                if params is None:
                    out = kernel(*args, out=args[st.donor])
                else:
                    out = kernel(*args, out=args[st.donor], **params)
            elif params is None:
                out = kernel(*args)
            else:
                out = kernel(*args, **params)
            if len(st.outs) == 1:
                if type(out) is not ndarray:
                    out = np_asarray(out)
                if out.dtype != st.np_dtypes[0]:
                    out = out.astype(st.np_dtypes[0])
                slots[st.outs[0]] = out
            else:
                for i in range(len(st.outs)):
                    o = out[i]
                    if type(o) is not ndarray:
                        o = np_asarray(o)
                    if o.dtype != st.np_dtypes[i]:
                        o = o.astype(st.np_dtypes[i])
                    slots[st.outs[i]] = o
            args = None
            for s in st.frees:
                slots[s] = None
        return tuple([slots[s] for s in self.out_slots])

    def replay(self, list inputs):
        """The program as ordinary lazy ops on `inputs` (for the transforms)."""
        cdef list slots = [None] * self.n_slots
        cdef Step st
        for i in range(self.n_in):
            slots[i] = inputs[i]
        for s, v in self.consts:
            slots[s] = wrap(v)
        for st in self.steps:
            ins = tuple(slots[s] for s in st.ins)
            if len(st.outs) == 1:
                slots[st.outs[0]] = make_node(st.prim, ins, st.params, st.shapes[0], st.dtypes[0])
            else:
                outs = make_nodes(st.prim, ins, st.params, list(st.shapes), list(st.dtypes))
                for s, o in zip(st.outs, outs):
                    slots[s] = o
        return [slots[s] for s in self.out_slots]

    def eager(self, list inputs):
        """Run now on evaluated inputs of any shapes (shapeless calls); evaluated outputs."""
        from mx.core._scheduler import eval_arrays
        eval_arrays(inputs)
        outs = self.run(*[(<array>x)._data for x in inputs])
        return [wrap(o) for o in outs]


def _freeze(params):
    if params is None:
        return None
    items = []
    for k in sorted(params):
        v = params[k]
        if isinstance(v, list):
            v = tuple(v)
        elif isinstance(v, _np.ndarray):
            v = (v.shape, v.dtype.str, v.tobytes())
        hash(v)
        items.append((k, v))
    return tuple(items)
