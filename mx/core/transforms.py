"""Function transforms over the lazy graph: vjp, jvp, grad, value_and_grad, vmap,
custom_function and checkpoint.

A transform calls the user's function on fresh leaf arrays and walks the graph the call
built. While it traces, eval keeps graphs (the scheduler's keep_graph), so a function that
evaluates or prints along the way is still differentiable. Each primitive's rules live in its
declaration (docs/transforms.md gives the contract).
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from mx.core import _array
from mx.core._array import array, inputs_of, make_node, make_nodes, wrap
from mx.core._program import graph_order
from mx.core._scheduler import keep_graph
from mx.core.primitives import declare

# ---------------------------------------------------------------------------------------
# small helpers shared with the rules
# ---------------------------------------------------------------------------------------


def _ops():
    import mx.core as mx
    return mx


def unbroadcast(ct, shape):
    """Sum a cotangent that was broadcast from `shape` back to `shape`."""
    mx = _ops()
    shape = tuple(shape)
    if ct.shape == shape:
        return ct
    extra = ct.ndim - len(shape)
    axes = list(range(extra))
    for i, s in enumerate(shape):
        if s == 1 and ct.shape[extra + i] != 1:
            axes.append(extra + i)
    out = mx.sum(ct, axis=axes, keepdims=True) if axes else ct
    if extra:
        out = mx.reshape(out, shape)
    elif out.shape != shape:
        out = mx.reshape(out, shape)
    return out


def move_batch_axis(x, axis, to=0):
    """`x` with its batch axis moved from `axis` to `to`."""
    if axis == to:
        return x
    return _ops().moveaxis(x, axis, to)


def broadcast_batch(inputs, axes):
    """Move every batch axis to 0; unbatched inputs gain a leading axis of size 1 after
    padding to the batched rank, so elementwise ops broadcast per example."""
    mx = _ops()
    nd = max((x.ndim - (0 if a is None else 1)) for x, a in zip(inputs, axes))
    out = []
    for x, a in zip(inputs, axes):
        if a is None:
            x = mx.reshape(x, (1,) * (nd - x.ndim + 1) + x.shape)
        else:
            x = move_batch_axis(x, a, 0)
            core = x.ndim - 1
            if core < nd:
                x = mx.reshape(x, (x.shape[0],) + (1,) * (nd - core) + x.shape[1:])
        out.append(x)
    return out


class _Tracing:
    """While inside, eval keeps the graph it evaluates."""

    def __enter__(self):
        keep_graph(1)

    def __exit__(self, *exc):
        keep_graph(-1)
        return False


_IDENTITY = declare(
    "transform_leaf", cpu=lambda x: x,
    vjp=lambda primals, ct, out: [ct],
    jvp=lambda primals, tangents, out: tangents[0],
    vmap=lambda inputs, axes, out: (inputs[0], axes[0]),
    doc="a fresh identity standing for a transform's input")


def _leaf(x):
    """A new array object standing for `x`: the transform's handle on one input."""
    if not isinstance(x, array):
        x = _array.to_array(x)
    # always a node on top of x, so that an enclosing transform (grad of grad) still sees
    # the path from its own input through this one
    return make_node(_IDENTITY, (x,), None, x.shape, x.dtype)


def _graph_order(outputs, stop):
    """Nodes reachable from outputs, inputs first; the walk stops at arrays in `stop`."""
    return graph_order(list(outputs), stop)


def _depends(order, leaf_ids, through_stop_gradient=False):
    """Ids of the nodes in `order` that depend on the leaves. Differentiation stops at
    stop_gradient; batching (vmap) goes through it."""
    dep = set(leaf_ids)
    for node in order:
        if id(node) in dep or node._prim is None:
            continue
        if node._prim.name == "stop_gradient" and not through_stop_gradient:
            continue
        if any(id(i) in dep for i in inputs_of(node)):
            dep.add(id(node))
    return dep


def _zeros_like(x):
    # built from the shape alone: no dependency on (or computation of) x
    return _ops().zeros(x.shape, x.dtype)


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


# ---------------------------------------------------------------------------------------
# reverse mode
# ---------------------------------------------------------------------------------------
def _backprop(outputs, cotangents, leaves):
    leaf_ids = {id(x) for x in leaves}
    order = _graph_order(outputs, leaf_ids)
    dep = _depends(order, leaf_ids)
    cts = {}
    for o, c in zip(outputs, cotangents):
        if id(o) in dep:
            cts[id(o)] = _add(cts.get(id(o)), c)
    done_groups = set()
    # a multi-output primitive runs its vjp once, at the sibling that comes first in the
    # forward order, so that the cotangents of all its outputs have arrived
    first = {}
    for pos, node in enumerate(order):
        if node._siblings is not None:
            first.setdefault(id(node._siblings), pos)
    for pos in range(len(order) - 1, -1, -1):
        node = order[pos]
        key = id(node)
        if key in leaf_ids or key not in dep or node._prim is None:
            continue
        prim = node._prim
        sibs = node._siblings
        if sibs is not None:
            gkey = id(sibs)
            if gkey in done_groups or first[gkey] != pos:
                continue
            done_groups.add(gkey)
            group_cts = [cts.get(id(s)) for s in sibs]
            if all(c is None for c in group_cts):
                continue
            ct = [c if c is not None else _zeros_like(s) for c, s in zip(group_cts, sibs)]
            out = list(sibs)
        else:
            ct = cts.get(key)
            if ct is None:
                continue
            out = node
        if prim.vjp is None:
            raise ValueError(f"[vjp] Primitive '{prim.name}' has no vjp rule: it cannot be "
                             "differentiated.")
        params = node._params or {}
        ins = inputs_of(node)
        in_cts = prim.vjp(list(ins), ct, out, **params)
        for inp, c in zip(ins, in_cts):
            if c is None or id(inp) not in dep:
                continue
            if c.shape != inp.shape:
                c = unbroadcast(c, inp.shape)
            if c.dtype != inp.dtype and _is_inexact(inp.dtype):
                c = c.astype(inp.dtype)
            cts[id(inp)] = _add(cts.get(id(inp)), c)
    return [cts.get(id(x)) if cts.get(id(x)) is not None else _zeros_like(x) for x in leaves]


def _is_inexact(d):
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


def _as_list(x, what):
    if isinstance(x, array):
        return [x], True
    if isinstance(x, (list, tuple)) and all(isinstance(v, array) for v in x):
        return list(x), False
    raise TypeError(f"[{what}] Expected an array or a list/tuple of arrays.")


def vjp(fun, primals, cotangents):
    """Compute fun's outputs at `primals` and the vector-Jacobian product of `cotangents`
    with them. Returns (outputs, input cotangents), both lists."""
    primals, _ = _as_list(primals, "vjp")
    cotangents, _ = _as_list(cotangents, "vjp")
    leaves = [_leaf(p) for p in primals]
    with _Tracing():
        outs = fun(*leaves)
    outs, _ = _as_list(outs, "vjp")
    if len(cotangents) != len(outs):
        raise ValueError(f"[vjp] Got {len(cotangents)} cotangents for {len(outs)} outputs.")
    for o, c in zip(outs, cotangents):
        if o.shape != c.shape:
            raise ValueError(f"[vjp] Cotangent shape {c.shape} does not match output shape {o.shape}.")
    grads = _backprop(outs, cotangents, leaves)
    return outs, grads


# ---------------------------------------------------------------------------------------
# forward mode
# ---------------------------------------------------------------------------------------
def jvp(fun, primals, tangents):
    """Compute fun's outputs at `primals` and the Jacobian-vector product with `tangents`.
    Returns (outputs, output tangents), both lists."""
    primals, _ = _as_list(primals, "jvp")
    tangents, _ = _as_list(tangents, "jvp")
    if len(primals) != len(tangents):
        raise ValueError(f"[jvp] Got {len(tangents)} tangents for {len(primals)} primals.")
    for p, t in zip(primals, tangents):
        if p.shape != t.shape:
            raise ValueError(f"[jvp] Tangent shape {t.shape} does not match primal shape {p.shape}.")
    leaves = [_leaf(p) for p in primals]
    with _Tracing():
        outs = fun(*leaves)
    outs, _ = _as_list(outs, "jvp")
    leaf_ids = {id(x) for x in leaves}
    order = _graph_order(outs, leaf_ids)
    dep = _depends(order, leaf_ids)
    tan = {id(x): t for x, t in zip(leaves, tangents)}
    done_groups = set()
    for node in order:
        key = id(node)
        if key in leaf_ids or key not in dep or node._prim is None:
            continue
        sibs = node._siblings
        if sibs is not None and id(sibs) in done_groups:
            continue
        prim = node._prim
        if prim.jvp is None:
            raise ValueError(f"[jvp] Primitive '{prim.name}' has no jvp rule.")
        ins = inputs_of(node)
        in_t = [tan.get(id(i)) if id(i) in dep else None for i in ins]
        if all(t is None for t in in_t):
            continue
        params = node._params or {}
        if sibs is not None:
            done_groups.add(id(sibs))
            outs_t = prim.jvp(list(ins), in_t, list(sibs), **params)
            for s, t in zip(sibs, outs_t):
                tan[id(s)] = t
        else:
            tan[key] = prim.jvp(list(ins), in_t, node, **params)
    return outs, [tan.get(id(o)) if tan.get(id(o)) is not None else _zeros_like(o) for o in outs]


# ---------------------------------------------------------------------------------------
# grad and value_and_grad
# ---------------------------------------------------------------------------------------
def _flatten(tree, out):
    """Leaves of a pytree (arrays and Python numbers) in order, and a rebuilder."""
    if isinstance(tree, array):
        out.append(tree)
        return lambda it: next(it)
    if isinstance(tree, (bool,)) or tree is None or isinstance(tree, str):
        return lambda it: tree
    if isinstance(tree, (int, float, complex)):
        out.append(tree)
        return lambda it: next(it)
    if isinstance(tree, dict):
        keys = list(tree.keys())
        subs = [_flatten(tree[k], out) for k in keys]
        ctor = type(tree)

        def rebuild_dict(it):
            vals = {k: s(it) for k, s in zip(keys, subs)}
            try:
                return ctor(vals)
            except TypeError:
                return vals
        return rebuild_dict
    if isinstance(tree, (list, tuple)):
        subs = [_flatten(v, out) for v in tree]
        if isinstance(tree, tuple) and hasattr(tree, "_fields"):
            return lambda it: type(tree)(*[s(it) for s in subs])
        ctor = type(tree)
        return lambda it: ctor([s(it) for s in subs])
    # anything else (a NumPy array, say) would silently get itself back as its "gradient"
    raise ValueError("[tree_flatten] The argument should contain only arrays")


def _to_diff_array(x):
    if isinstance(x, array):
        return x
    # Python numbers become float arrays (weakly typed like any Python scalar)
    return _array.to_array(float(x) if isinstance(x, (bool, int)) else x)


def _normalise_argnums(argnums, argnames):
    if isinstance(argnames, str):
        argnames = [argnames]
    argnames = list(argnames)
    if argnums is None:
        argnums = [] if argnames else [0]
    elif isinstance(argnums, int):
        argnums = [argnums]
    else:
        argnums = list(argnums)
    for a in argnums:
        if not isinstance(a, int):
            raise TypeError(f"[value_and_grad] argnums must be ints, got {a!r}.")
    if len(set(argnums)) != len(argnums):
        raise ValueError(f"[value_and_grad] Repeated argnums {argnums}.")
    return argnums, argnames


def _bind_arguments(fun, args, kwargs, argnums, argnames):
    """Let an argnum be passed by keyword and an argname positionally (bind through the
    signature when it is available)."""
    args = list(args)
    kwargs = dict(kwargs)
    try:
        sig = inspect.signature(fun)
        params = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    for n in argnums:
        if n >= len(args) and n < len(params) and params[n].name in kwargs:
            while len(args) < n:
                p = params[len(args)]
                if p.name in kwargs:
                    args.append(kwargs.pop(p.name))
                elif p.default is not p.empty:
                    args.append(p.default)
                else:
                    break
            if len(args) == n:
                args.append(kwargs.pop(params[n].name))
    for name in argnames:
        if name not in kwargs:
            for i, p in enumerate(params):
                if p.name == name and i < len(args):
                    kwargs[name] = args[i]
                    args = args[:i] + args[i + 1:] if i == len(args) - 1 else args
                    break
    return args, kwargs


def value_and_grad(fun, argnums=None, argnames=[]):  # noqa: B006 (MLX's signature)
    """A function returning (fun's value, gradient of it) with respect to the arguments in
    argnums (default 0) and the keyword arguments in argnames. `fun` returns a scalar or a
    tuple whose first element is the scalar loss; arguments may be trees of arrays."""
    if not callable(fun):
        raise TypeError("[value_and_grad] fun must be callable.")
    argnums, argnames = _normalise_argnums(argnums, argnames)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        args, kwargs = _bind_arguments(fun, args, kwargs, argnums, argnames)
        for n in argnums:
            if n >= len(args):
                raise ValueError(f"[value_and_grad] Can't compute the gradient of argument index "
                                 f"{n} because the function is called with only {len(args)} "
                                 "positional arguments.")
        for name in argnames:
            if name not in kwargs:
                raise ValueError(f"[value_and_grad] Can't compute the gradient of keyword argument "
                                 f"'{name}' because it was not passed.")
        leaves, rebuilders = [], []
        for n in argnums:
            flat = []
            rebuilders.append(_flatten(args[n], flat))
            leaves.append(flat)
        for name in argnames:
            flat = []
            rebuilders.append(_flatten(kwargs[name], flat))
            leaves.append(flat)
        flat_all = [_leaf(_to_diff_array(x)) for group in leaves for x in group]
        aux = {}

        def inner(*flat_leaves):
            it = iter(flat_leaves)
            new_args = list(args)
            new_kwargs = dict(kwargs)
            for k, n in enumerate(argnums):
                new_args[n] = rebuilders[k](it)
            for k, name in enumerate(argnames):
                new_kwargs[name] = rebuilders[len(argnums) + k](it)
            out = fun(*new_args, **new_kwargs)
            if isinstance(out, (tuple, list)):
                if not out or not isinstance(out[0], array):
                    raise ValueError("[value_and_grad] The function must return a scalar array or a "
                                     "tuple whose first element is a scalar array.")
                aux["value"] = out
                loss = out[0]
            elif isinstance(out, array):
                aux["value"] = out
                loss = out
            else:
                raise ValueError("[value_and_grad] The function must return a scalar array or a "
                                 f"tuple with a scalar array first; it returned {type(out).__name__}.")
            if loss.size != 1:
                raise ValueError(f"[value_and_grad] The function must return a scalar loss; got an "
                                 f"output of shape {_array.shape_str(loss.shape)}.")
            return [loss]

        if not flat_all:
            value = fun(*args, **kwargs)
            grads_flat = []
        else:
            with _Tracing():
                outs = inner(*flat_all)
            loss = outs[0]
            grads_flat = _backprop([loss], [_ops().ones(loss.shape, loss.dtype)], flat_all)
            value = aux["value"]
        it = iter(grads_flat)
        pos = tuple(rebuilders[k](it) for k in range(len(argnums)))
        named = {name: rebuilders[len(argnums) + k](it) for k, name in enumerate(argnames)}
        # MLX: one argnum gives its tree, several a tuple, none None (when argnames are
        # given); any argnames add a {name: grad} dict
        positional = None if not argnums else pos[0] if len(argnums) == 1 else pos
        return value, ((positional, named) if argnames else positional)

    return wrapped


def grad(fun, argnums=None, argnames=[]):  # noqa: B006 (MLX's signature)
    """A function computing the gradient of `fun` (see value_and_grad for the arguments)."""
    vg = value_and_grad(fun, argnums, argnames)

    @functools.wraps(fun)
    def wrapped(*args, **kwargs):
        return vg(*args, **kwargs)[1]

    return wrapped


# ---------------------------------------------------------------------------------------
# vmap
# ---------------------------------------------------------------------------------------
def _placeholder_kernel(*args, **kwargs):
    raise ValueError("[vmap] A value inside a vmapped function was evaluated; vmap traces the "
                     "function with placeholders, so it may not read array values (item(), "
                     "printing, eval).")


_PLACEHOLDER = declare("vmap_placeholder", cpu=_placeholder_kernel,
                       doc="stands for one example of a vmapped input while tracing")


def _tree_leaves_with_axes(tree, axes, what):
    """Pair each array leaf of `tree` with its axis from the prefix tree `axes`."""
    out = []

    def walk(t, a):
        if isinstance(t, array):
            if not (a is None or isinstance(a, int)):
                raise ValueError(f"[vmap] {what} for an array must be an int or None, got {a!r}.")
            out.append((t, a))
            return
        if isinstance(t, (list, tuple)):
            if isinstance(a, (list, tuple)):
                if len(a) != len(t):
                    raise ValueError(f"[vmap] {what} has {len(a)} entries for {len(t)} arguments.")
                for x, ax in zip(t, a):
                    walk(x, ax)
            else:
                for x in t:
                    walk(x, a)
            return
        if isinstance(t, dict):
            for k, v in t.items():
                walk(v, a[k] if isinstance(a, dict) else a)
            return
        if a is not None and not isinstance(a, (list, tuple, dict)):
            raise ValueError(f"[vmap] {what} maps a non-array argument of type {type(t).__name__}.")

    walk(tree, axes)
    return out


def _replace_leaves(tree, mapping):
    if isinstance(tree, array):
        return mapping.get(id(tree), tree)
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return type(tree)(*[_replace_leaves(x, mapping) for x in tree])
    if isinstance(tree, (list, tuple)):
        return type(tree)(_replace_leaves(x, mapping) for x in tree)
    if isinstance(tree, dict):
        return {k: _replace_leaves(v, mapping) for k, v in tree.items()}
    return tree


def _vmap_graph(outputs, placeholders):
    """Replay the traced graph with each primitive's vmap rule. `placeholders` maps id of a
    placeholder to (batched array, axis). Returns {id(output): (array, axis or None)}."""
    values = dict(placeholders)
    order = _graph_order(outputs, set(placeholders))
    dep = _depends(order, set(placeholders), through_stop_gradient=True)
    done = set()
    for node in order:
        key = id(node)
        if key in values or key not in dep or node._prim is None:
            continue
        sibs = node._siblings
        if sibs is not None and id(sibs) in done:
            continue
        prim = node._prim
        if prim.vmap is None:
            raise ValueError(f"[vmap] Primitive '{prim.name}' has no vmap rule.")
        ins, axes = [], []
        for i in inputs_of(node):
            v = values.get(id(i))
            if v is None:
                ins.append(i)
                axes.append(None)
            else:
                ins.append(v[0])
                axes.append(v[1])
        params = node._params or {}
        if sibs is not None:
            done.add(id(sibs))
            outs, out_axes = prim.vmap(ins, axes, list(sibs), **params)
            for s, o, a in zip(sibs, outs, out_axes):
                values[id(s)] = (o, a)
        else:
            out, ax = prim.vmap(ins, axes, node, **params)
            values[key] = (out, ax)
    return values


def vmap(fun, in_axes=0, out_axes=0):
    """Vectorize `fun` over an axis of its inputs: in_axes (an int, None, or a tree prefix of
    the arguments) says which axis of each input is mapped; out_axes where the mapped axis
    goes in the outputs."""
    if not callable(fun):
        raise TypeError("[vmap] fun must be callable.")

    @functools.wraps(fun)
    def wrapped(*args):
        axes_tree = in_axes if isinstance(in_axes, (list, tuple)) and not isinstance(in_axes, int) else in_axes
        if isinstance(in_axes, (list, tuple)):
            if len(in_axes) != len(args):
                raise ValueError(f"[vmap] in_axes has {len(in_axes)} entries but the function got "
                                 f"{len(args)} arguments.")
            pairs = _tree_leaves_with_axes(list(args), list(in_axes), "in_axes")
        else:
            pairs = _tree_leaves_with_axes(list(args), axes_tree, "in_axes")
        size = None
        mapping, placeholders = {}, {}
        for x, a in pairs:
            if a is None:
                continue
            if x.ndim == 0:
                raise ValueError("[vmap] Cannot vmap over a 0-d array (in_axes names an axis of a scalar).")
            ax = a + x.ndim if a < 0 else a
            if not 0 <= ax < x.ndim:
                raise ValueError(f"[vmap] in_axes {a} is out of range for an input of shape {x.shape}.")
            if size is None:
                size = x.shape[ax]
            elif x.shape[ax] != size:
                raise ValueError(f"[vmap] Inconsistent sizes of the mapped axis: {size} and "
                                 f"{x.shape[ax]} (input of shape {x.shape}).")
            if id(x) in mapping:
                if placeholders[id(mapping[id(x)])][1] != ax:
                    raise ValueError("[vmap] The same array is passed twice with different in_axes.")
                continue
            shape = x.shape[:ax] + x.shape[ax + 1:]
            ph = make_node(_PLACEHOLDER, (), None, shape, x.dtype)
            mapping[id(x)] = ph      # (ph stays referenced here, so ids stay unique)
            placeholders[id(ph)] = (x, ax)
        if size is None:
            raise ValueError("[vmap] At least one input must be mapped (in_axes not all None).")
        traced_args = _replace_leaves(list(args), mapping)
        out = fun(*traced_args)
        out_leaves = _tree_leaves_with_axes(out, out_axes, "out_axes")
        values = _vmap_graph([o for o, _ in out_leaves], placeholders)
        result = {}
        mx = _ops()
        for o, oa in out_leaves:
            v = values.get(id(o))
            if v is None or v[1] is None:
                base = o if v is None else v[0]
                if oa is None:
                    result[id(o)] = base
                    continue
                b = mx.broadcast_to(mx.expand_dims(base, 0), (size,) + base.shape)
                result[id(o)] = move_batch_axis(b, 0, oa if oa >= 0 else oa + b.ndim)
            else:
                if oa is None:
                    raise ValueError("[vmap] out_axes is None for an output that depends on a mapped input.")
                arr, ax = v
                dest = oa if oa >= 0 else oa + arr.ndim
                result[id(o)] = move_batch_axis(arr, ax, dest)
        return _replace_leaves(out, result)

    return wrapped


# ---------------------------------------------------------------------------------------
# custom_function and checkpoint
# ---------------------------------------------------------------------------------------
def _trace_shapes(fun, args):
    """Output shapes and dtypes of fun(*args) without computing anything."""
    phs = [make_node(_PLACEHOLDER, (), None, a.shape, a.dtype) for a in args]
    out = fun(*phs)
    single = isinstance(out, array)
    outs = [out] if single else list(out)
    return [o.shape for o in outs], [o.dtype for o in outs], single


class custom_function:
    """Wrap a function so that its vjp, jvp and vmap can be given by hand:

        @mx.custom_function
        def f(x, y): ...

        @f.vjp
        def f_vjp(primals, cotangents, outputs): ...   # returns one cotangent per primal
    """

    def __init__(self, fun):
        if not callable(fun):
            raise TypeError("[custom_function] Expected a callable.")
        functools.update_wrapper(self, fun)
        self._fun = fun
        self._vjp = None
        self._jvp = None
        self._vmap = None

    def vjp(self, f):
        self._vjp = f
        return f

    def jvp(self, f):
        self._jvp = f
        return f

    def vmap(self, f):
        self._vmap = f
        return f

    def __call__(self, *args):
        args = [_array.to_array(a) if not isinstance(a, array) else a for a in args]
        fun = self._fun
        shapes, dtypes, single = _trace_shapes(fun, args)
        me = self

        def cpu(*np_args):
            outs = fun(*[wrap(np.asarray(a)) for a in np_args])
            outs = [outs] if isinstance(outs, array) else list(outs)
            return tuple(o._eval_data() for o in outs)

        def vjp_rule(primals, cts, outputs):
            if me._vjp is not None:
                if single:
                    res = me._vjp(tuple(primals), cts[0], outputs[0])
                else:
                    res = me._vjp(tuple(primals), list(cts), list(outputs))
                return list(res) if isinstance(res, (list, tuple)) else [res]
            return vjp(fun, primals, cts)[1]

        def jvp_rule(primals, tangents, outputs):
            if me._jvp is not None:
                res = me._jvp(tuple(primals), [t if t is not None else _zeros_like(p)
                                               for p, t in zip(primals, tangents)])
                return list(res) if isinstance(res, (list, tuple)) else [res]
            return jvp(fun, primals, [t if t is not None else _zeros_like(p)
                                      for p, t in zip(primals, tangents)])[1]

        def vmap_rule(inputs, axes, outputs):
            if me._vmap is not None:
                res, out_axes = me._vmap(inputs, axes)
                res = [res] if isinstance(res, array) else list(res)
                out_axes = [out_axes] * len(res) if isinstance(out_axes, int) else list(out_axes)
                return res, out_axes
            ins = [move_batch_axis(x, a, 0) if a is not None else x for x, a in zip(inputs, axes)]
            res = vmap(fun, in_axes=[0 if a is not None else None for a in axes])(*ins)
            res = [res] if isinstance(res, array) else list(res)
            return res, [0] * len(res)

        prim = _array.Primitive(f"custom_function({getattr(fun, '__name__', 'f')})", None, cpu,
                                vjp=vjp_rule, jvp=jvp_rule, vmap=vmap_rule, nout=len(shapes))
        outs = make_nodes(prim, tuple(args), None, shapes, dtypes)
        return outs[0] if single else list(outs)


def checkpoint(fun):
    """`fun`, but its intermediate values are not kept for the backward pass: the vjp
    recomputes them from the inputs (less memory, one more forward pass)."""
    cf = custom_function(fun)

    @cf.vjp
    def _recompute(primals, cotangents, outputs):
        return vjp(fun, primals, cotangents)[1]

    @functools.wraps(fun)
    def wrapped(*args):
        return cf(*args)

    return wrapped


__all__ = ["vjp", "jvp", "grad", "value_and_grad", "vmap", "custom_function", "checkpoint"]


# ---------------------------------------------------------------------------------------
# depends
# ---------------------------------------------------------------------------------------
def _depends_kernel(*arrays, n):
    return tuple(arrays[:n]) if n > 1 else arrays[0]


def _depends_vjp(primals, ct, out, n):
    cts = ct if isinstance(ct, list) else [ct]
    return list(cts[:n]) + [None] * (len(primals) - n)


def _depends_jvp(primals, tangents, out, n):
    mx = _ops()
    outs = out if isinstance(out, list) else [out]
    res = [t if t is not None else mx.zeros(o.shape, o.dtype) for t, o in zip(tangents[:n], outs)]
    return res if isinstance(out, list) else res[0]


def _depends_vmap(inputs, axes, out, n):
    res = depends(list(inputs[:n]), list(inputs[n:]))
    return (res, list(axes[:n])) if isinstance(out, list) else (res[0], axes[0])


_DEPENDS = declare("depends", cpu=_depends_kernel, vjp=_depends_vjp, jvp=_depends_jvp,
                   vmap=_depends_vmap, doc="identity on inputs that also waits for dependencies")


def depends(inputs, dependencies):
    """Arrays equal to `inputs` that are evaluated only after `dependencies` (an array or a
    sequence of arrays each); returns an array or a list like `inputs`."""
    single = isinstance(inputs, array)
    ins = [inputs] if single else list(inputs)
    deps = [dependencies] if isinstance(dependencies, array) else list(dependencies)
    for x in ins + deps:
        if not isinstance(x, array):
            raise TypeError(f"[depends] Expected arrays, got {type(x).__name__}.")
    if not ins:
        return []
    n = len(ins)
    if n == 1:
        out = make_node(_DEPENDS, tuple(ins + deps), {"n": 1}, ins[0].shape, ins[0].dtype)
        return out if single else [out]
    return list(make_nodes(_DEPENDS, tuple(ins + deps), {"n": n}, [x.shape for x in ins],
                           [x.dtype for x in ins]))


__all__.append("depends")
