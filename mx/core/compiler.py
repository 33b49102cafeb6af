"""mx.compile: trace a function once into a program and replay it without its Python body.

A call with a new input signature (tree structure, shapes or, when shapeless, ranks, dtypes
and the values of non-array arguments) traces the function on placeholder arrays. The
traced graph becomes a `Program`: constants are folded at trace time, and the remaining
nodes become a flat list of kernel steps. Later calls build ONE lazy node whose kernel runs
the program (mx/core/_program.pyx), so the result stays lazy and composes with eval,
async_eval and the transforms (whose rules replay the program as ordinary ops).

Implicit state: `inputs=` trees are read on every call, `outputs=` trees are written after
every call, and the global random state is threaded through automatically so random
numbers differ from call to call.
"""
from __future__ import annotations

import collections
import functools
import os
import warnings

from mx.core import _array
from mx.core._array import Primitive, array, inputs_of, make_node, make_nodes
from mx.core._program import Program
from mx.core.primitives import DYNAMIC_GPU_HANDLERS, declare

_ENV_OFF = os.environ.get("MX_DISABLE_COMPILE", os.environ.get("MLX_DISABLE_COMPILE", "")) not in ("", "0")
_state = {"enabled": not _ENV_OFF, "tracing": 0}
MAX_TRACES = 16          # traces kept per compiled function (least recently used dropped)
WARN_AFTER = 8           # retraces before a warning naming the function and the change


def disable_compile():
    """Make mx.compile a no-op: compiled functions run their Python body on every call."""
    _state["enabled"] = False


def enable_compile():
    """Undo disable_compile (the MX_DISABLE_COMPILE environment variable also turns it off)."""
    _state["enabled"] = True


def _placeholder_kernel(*args, **kwargs):
    raise ValueError(
        "[compile] An array created while mx.compile traced a function was evaluated after the "
        "trace (for example one appended to a list the function does not return). Such arrays "
        "are placeholders without data: return it from the function, or list its container in "
        "compile's outputs= argument.")


COMPILE_INPUT = declare("compile_input", cpu=_placeholder_kernel,
                        vjp=lambda p, c, o: [], jvp=lambda p, t, o: o,
                        vmap=lambda i, a, o: (o, None),
                        doc="stands for an input of a function being compiled")


# ---------------------------------------------------------------------------------------
# trees of arguments and of captured state
# ---------------------------------------------------------------------------------------
def _flatten(tree, leaves, sig, shapeless):
    """Array leaves of `tree` into `leaves`; everything that decides the trace into `sig`."""
    if isinstance(tree, array):
        leaves.append(tree)
        sig.append(("A", len(tree.shape) if shapeless else tree.shape, tree.dtype.name))
    elif isinstance(tree, (list, tuple)):
        sig.append((type(tree), len(tree)))
        for x in tree:
            _flatten(x, leaves, sig, shapeless)
    elif isinstance(tree, dict):
        keys = list(tree.keys())
        sig.append((type(tree), tuple(keys)))
        for k in keys:
            _flatten(tree[k], leaves, sig, shapeless)
    else:
        try:
            hash(tree)
            sig.append(("C", type(tree), tree))
        except TypeError:
            sig.append(("O", id(tree)))


def _rebuild(tree, it):
    if isinstance(tree, array):
        return next(it)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*[_rebuild(x, it) for x in tree])
    if isinstance(tree, (list, tuple)):
        return type(tree)([_rebuild(x, it) for x in tree])
    if isinstance(tree, dict):
        return {k: _rebuild(v, it) for k, v in tree.items()}
    return tree


def _assign(tree, it):
    """Write the next values of `it` into the array slots of the (mutable) containers."""
    if isinstance(tree, list):
        for i, x in enumerate(tree):
            if isinstance(x, array):
                tree[i] = next(it)
            else:
                _assign(x, it)
    elif isinstance(tree, dict):
        for k in list(tree.keys()):
            x = tree[k]
            if isinstance(x, array):
                dict.__setitem__(tree, k, next(it)) if type(tree) is not dict else tree.__setitem__(k, next(it))
            else:
                _assign(x, it)
    elif isinstance(tree, tuple):
        for x in tree:
            if isinstance(x, array):
                raise ValueError("[compile] State captured through inputs=/outputs= must be held in "
                                 "lists or dicts, not tuples, so that it can be updated.")
            _assign(x, it)


def _snapshot(trees):
    """(container, copy of its contents) for every list and dict inside `trees`."""
    out, seen, stack = [], set(), list(trees)
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        if isinstance(t, dict):
            seen.add(id(t))
            out.append((t, dict(t)))
            stack.extend(t.values())
        elif isinstance(t, list):
            seen.add(id(t))
            out.append((t, list(t)))
            stack.extend(t)
        elif isinstance(t, tuple):
            stack.extend(t)
    return out


def _restore(snapshot):
    for container, contents in snapshot:
        if isinstance(container, dict):
            dict.clear(container)
            dict.update(container, contents)
        else:
            container[:] = contents


def _contains(tree, target):
    stack = [tree]
    while stack:
        t = stack.pop()
        if t is target:
            return True
        if isinstance(t, (list, tuple)):
            stack.extend(t)
        elif isinstance(t, dict):
            stack.extend(t.values())
    return False


def _state_leaves(tree):
    leaves, sig = [], []
    _flatten(tree, leaves, sig, False)
    return leaves, sig


def _random_state():
    from mx.core import random
    st = getattr(random, "state", None)
    return st if isinstance(st, list) else None


# ---------------------------------------------------------------------------------------
# tracing into a program
# ---------------------------------------------------------------------------------------
class _Trace:
    __slots__ = ("program", "out_tree", "n_out", "state_out_sig", "state_same", "shapes", "dtypes",
                 "in_shapes", "shape_static", "calls")


def _trace(fun, args, kwargs, arg_leaves, state_trees, shapeless):
    """Run fun on placeholders; return a _Trace holding the program."""
    placeholders = [make_node(COMPILE_INPUT, (), None, x.shape, x.dtype) for x in arg_leaves]
    it = iter(placeholders)
    ph_args = _rebuild(list(args), it)
    ph_kwargs = _rebuild(dict(kwargs), it)
    # captured state: swap placeholders into the user's containers for the trace; should
    # the trace fail, every container gets back exactly what it held
    snapshot = _snapshot(state_trees)
    state_ph = []
    for tree in state_trees:
        leaves, _ = _state_leaves(tree)
        phs = [make_node(COMPILE_INPUT, (), None, x.shape, x.dtype) for x in leaves]
        state_ph.extend(phs)
        _assign(tree, iter(phs))
    _state["tracing"] += 1
    try:
        out = fun(*ph_args, **ph_kwargs)
        # what the function left in the captured containers is an output too
        state_out = []
        state_out_sig = []
        for tree in state_trees:
            leaves, sig = _state_leaves(tree)
            state_out.extend(leaves)
            state_out_sig.append(sig)
    except BaseException:
        _restore(snapshot)
        raise
    finally:
        _state["tracing"] -= 1
    out_leaves, _ = _state_leaves(out)
    # state the function left untouched is not an output: its current value stays put
    ph_pos = {id(p): i for i, p in enumerate(state_ph)}
    state_same = [ph_pos.get(id(x), -1) for x in state_out]
    all_outs = out_leaves + [x for x, same in zip(state_out, state_same) if same < 0]
    inputs = placeholders + state_ph
    tr = _Trace()
    tr.program = Program.build(all_outs, inputs, getattr(fun, "__name__", "fun"))
    tr.out_tree = out
    tr.n_out = len(out_leaves)
    tr.state_out_sig = state_out_sig
    tr.state_same = state_same
    tr.shapes = [o.shape for o in all_outs]
    tr.dtypes = [o.dtype for o in all_outs]
    tr.in_shapes = [x.shape for x in inputs]
    tr.shape_static = tr.program.shape_static
    tr.calls = 0
    return tr


def _program_primitive(tr, name):
    """The primitive of one trace: its kernel runs the program; its transformation rules
    replay the program as ordinary (differentiable, batchable) ops."""
    prog = tr.program

    def vjp_rule(primals, cts, outs):
        from mx.core.transforms import vjp
        return vjp(lambda *xs: prog.replay(list(xs)), list(primals), list(cts))[1]

    def jvp_rule(primals, tangents, outs):
        from mx.core.transforms import jvp
        mx = _mx()
        tans = [t if t is not None else mx.zeros(p.shape, p.dtype) for p, t in zip(primals, tangents)]
        return jvp(lambda *xs: prog.replay(list(xs)), list(primals), tans)[1]

    def vmap_rule(inputs, axes, outs):
        from mx.core.transforms import vmap
        res = vmap(lambda *xs: prog.replay(list(xs)), in_axes=tuple(axes))(*inputs)
        return list(res), [0] * len(res)

    factory = DYNAMIC_GPU_HANDLERS.get("compiled")
    gpu = factory(prog, tr.in_shapes) if factory is not None else None
    return Primitive(f"compiled({name})", None, prog.run, gpu=gpu, vjp=vjp_rule, jvp=jvp_rule,
                     vmap=vmap_rule, nout=len(tr.shapes))


def _mx():
    import mx.core as mx
    return mx


class _Compiled:
    """A compiled function: a cache of traces keyed by the input signature."""

    def __init__(self, fun, inputs, outputs, shapeless):
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._inputs = inputs
        self._outputs = outputs
        self._shapeless = shapeless
        self._cache = collections.OrderedDict()
        self._traces = 0
        self._warned = False
        self._last_sig = None

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return functools.partial(self, obj)

    def _state_trees(self):
        trees = []
        if self._inputs is not None:
            trees.append(self._inputs)
        if self._outputs is not None and self._outputs is not self._inputs:
            trees.append(self._outputs)
        rs = _random_state()
        if rs is not None and not any(_contains(t, rs) for t in trees):
            trees.append(rs)
        return trees

    def __call__(self, *args, **kwargs):
        if not _state["enabled"]:
            return self._fun(*args, **kwargs)
        if _state["tracing"]:
            # inside an enclosing trace the body inlines into the outer program
            return self._fun(*args, **kwargs)
        leaves, sig = [], []
        _flatten((args, kwargs), leaves, sig, self._shapeless)
        state_trees = self._state_trees()
        state_leaves, state_sig = [], []
        for tree in state_trees:
            _flatten(tree, state_leaves, state_sig, self._shapeless)
        key = (tuple(sig), tuple(state_sig))
        tr = self._cache.get(key)
        all_in = leaves + state_leaves
        if tr is not None and self._shapeless and tr.shape_static and \
                [x.shape for x in all_in] != tr.in_shapes:
            tr = None    # shapes matter to this program (reshape targets...): trace again
        if tr is None:
            tr = self._new_trace(key, args, kwargs, leaves, state_trees, sig)
        else:
            self._cache.move_to_end(key)
        return self._run(tr, all_in, len(leaves), state_trees)

    def _new_trace(self, key, args, kwargs, leaves, state_trees, sig):
        tr = _trace(self._fun, args, kwargs, leaves, state_trees, self._shapeless)
        tr_prim = _program_primitive(tr, getattr(self._fun, "__name__", "fun"))
        tr.program.primitive = tr_prim
        self._traces += 1
        if self._traces > WARN_AFTER and not self._warned:
            self._warned = True
            what = _describe_change(self._last_sig, sig)
            warnings.warn(f"[compile] {getattr(self._fun, '__qualname__', self._fun)} was traced "
                          f"{self._traces} times: {what}. Each new input signature (shapes, dtypes, "
                          "Python scalars) retraces; pass arrays instead of changing Python "
                          "numbers, or use shapeless=True.", stacklevel=3)
        self._last_sig = sig
        self._cache[key] = tr
        while len(self._cache) > MAX_TRACES:
            self._cache.popitem(last=False)
        return tr

    def _run(self, tr, all_in, n_args, state_trees):
        shapes = tr.shapes
        if self._shapeless and [x.shape for x in all_in] != tr.in_shapes:
            outs = tr.program.eager(all_in)
        else:
            outs = list(make_nodes(tr.program.primitive, tuple(all_in), None, shapes, tr.dtypes))
        changed = iter(outs[tr.n_out:])
        values = [next(changed) if same < 0 else all_in[n_args + same] for same in tr.state_same]
        it = iter(values)
        for tree in state_trees:
            _assign(tree, it)
        return _rebuild(tr.out_tree, iter(outs[:tr.n_out]))


def _describe_change(old, new):
    if old is None:
        return "its input signature changed"
    for a, b in zip(old, new):
        if a != b:
            if a[0] == "A" and b[0] == "A":
                return f"an array argument changed from shape {a[1]} {a[2]} to {b[1]} {b[2]}"
            if a[0] == "C":
                return f"a Python argument changed from {a[2]!r} to {b[2]!r}"
            return f"the argument structure changed ({a} -> {b})"
    return "the number of arguments changed"


def compile(fun=None, inputs=None, outputs=None, shapeless=False):
    """Return a compiled version of `fun`: traced once per input signature into a program
    that later calls replay without running fun's Python body.

    inputs / outputs: trees (lists, dicts, Modules) of arrays that fun reads / writes besides
    its arguments and return value; they are re-read and written back on every call.
    shapeless: reuse a trace for inputs whose shapes (not ranks or dtypes) changed."""
    if fun is None:
        return functools.partial(compile, inputs=inputs, outputs=outputs, shapeless=shapeless)
    if not callable(fun):
        raise TypeError("[compile] Expected a callable.")
    return _Compiled(fun, inputs, outputs, shapeless)


__all__ = ["compile", "disable_compile", "enable_compile"]
