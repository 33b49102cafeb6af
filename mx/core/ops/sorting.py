"""Sorting and selection: sort, argsort, partition, argpartition, topk, searchsorted, unique,
minmax, and the array-API names cumulative_sum / cumulative_prod of the scans.

Ordering follows MLX: sorts are stable, NaN sorts after every number (a complex number
with a NaN in either part counts as NaN, and NaNs keep their input order), and indices are
uint32. Kernels call NumPy's stable sorts; float16 and bfloat16 are ordered through an
exact float32 copy. partition computes its indices first and gathers the values with them,
so the values and the indices of one input always agree (the rules rely on that).
"""
from __future__ import annotations

import operator

import numpy as np

from mx.core._array import array, make_node, make_nodes, promote_types, shape_str, to_array
from mx.core.dtypes import int32, uint32
from mx.core.ops._util import as_array, norm_axis
from mx.core.ops.reduction import cumprod, cumsum
from mx.core.primitives import declare

_HALF = ("float16", "bfloat16")
_F32 = np.dtype(np.float32)

# the array-API spellings are the scans themselves (MLX binds the same functions)
cumulative_sum = cumsum
cumulative_prod = cumprod


# ---------------------------------------------------------------------------------------
# NumPy helpers shared by the kernels
# ---------------------------------------------------------------------------------------
def _orderable(x):
    """x in a dtype NumPy sorts natively: the half floats widen (exactly) to float32."""
    if x.dtype.name in _HALF:
        return x.astype(_F32)
    return x


def _argsort_np(x, axis):
    """Stable argsort along `axis` with every NaN after the numbers, in input order."""
    x = _orderable(x)
    if x.dtype.kind != "c":
        # NumPy's stable sort already places NaN last and keeps ties in order
        return np.argsort(x, axis=axis, kind="stable")
    # complex: lexicographic on (real, imag) for the finite part; NumPy would order
    # R+nanj before nan+Rj, MLX treats both as NaN and keeps them in input order
    nan = np.isnan(x.real) | np.isnan(x.imag)
    re = np.where(nan, 0, x.real)
    im = np.where(nan, 0, x.imag)
    if x.ndim == 0:
        return np.zeros((), np.int64)
    return np.lexsort((im, re, nan), axis=axis)


def _sort_kernel(x, axis):
    if x.dtype.kind == "c":
        return np.take_along_axis(x, _argsort_np(x, axis), axis)
    return np.sort(_orderable(x), axis=axis, kind="stable")


def _argsort_kernel(x, axis):
    return _argsort_np(x, axis)


def _argpartition_kernel(x, kth, axis):
    return np.argpartition(_orderable(x), kth, axis=axis)


def _partition_kernel(x, kth, axis):
    # gathered through the indices so that partition and argpartition agree on ties
    return np.take_along_axis(x, _argpartition_kernel(x, kth, axis), axis)


def _compute_np(d):
    return _F32 if d.name in _HALF else d.np


def _searchsorted_kernel(seq, values, side, dtype, batched):
    ct = _compute_np(dtype)
    seq = seq.astype(ct, copy=False)
    values = values.astype(ct, copy=False)
    if not batched:
        return np.searchsorted(seq, values, side=side)
    # one sorted sequence per example: a loop over the batch axis only
    out = np.empty(values.shape, np.int64)
    for b in range(seq.shape[0]):
        out[b] = np.searchsorted(seq[b], values[b], side=side)
    return out


def _unique_kernel(a, fill=None, *, size, batched):
    """values, first index, inverse and counts of the flat array `a` (rows of `a` when
    batched), size entries each."""
    if not batched:
        a = a[None]
        fill = None if fill is None else np.asarray(fill)[None]
    rows, n = a.shape
    values = np.empty((rows, size), a.dtype)
    index = np.zeros((rows, size), np.int64)
    counts = np.zeros((rows, size), np.int64)
    inverse = np.zeros((rows, n), np.int64)
    if n:
        order = _argsort_np(a, -1)
        s = np.take_along_axis(a, order, -1)
        new = np.ones((rows, n), bool)
        # NaN != NaN, so every NaN starts a group of its own (as in MLX)
        new[:, 1:] = s[:, 1:] != s[:, :-1]
        group = np.cumsum(new, axis=-1) - 1
        r, c = np.nonzero(new & (group < size))
        g = group[r, c]
        values[r, g] = s[r, c]
        index[r, g] = order[r, c]  # the sort is stable: the group's first is the first seen
        keep = group < size
        flat = (np.arange(rows)[:, None] * size + group)[keep]
        counts = np.bincount(flat, minlength=rows * size).reshape(rows, size)
        if size:
            np.put_along_axis(inverse, order, np.minimum(group, size - 1), -1)
            pad = counts == 0
            # padding points at the first unique element: values[i] == a[index[i]]
            index = np.where(pad, index[:, :1], index)
            filler = values[:, :1] if fill is None else np.broadcast_to(fill, (rows,))[:, None]
            values = np.where(pad, filler, values).astype(a.dtype, copy=False)
    elif size:
        values[...] = np.broadcast_to(fill, (rows,))[:, None]
    if not batched:
        return values[0], index[0], inverse[0], counts[0]
    return values, index, inverse, counts


SORT = declare("sort", cpu=_sort_kernel, doc="stable sort along an axis, NaN last")
ARGSORT = declare("argsort", cpu=_argsort_kernel, doc="indices of a stable sort along an axis")
PARTITION = declare("partition", cpu=_partition_kernel,
                    doc="the kth element in its sorted place, smaller ones before it")
ARGPARTITION = declare("argpartition", cpu=_argpartition_kernel,
                       doc="indices that partition an axis around its kth element")
SEARCHSORTED = declare("searchsorted", cpu=_searchsorted_kernel,
                       doc="insertion indices of values into a sorted 1-D sequence")
UNIQUE = declare("unique", cpu=_unique_kernel, nout=4,
                 doc="sorted unique values, first indices, inverse and counts (fixed size)")


# ---------------------------------------------------------------------------------------
# argument handling
# ---------------------------------------------------------------------------------------
def _int_arg(v, name, op):
    if isinstance(v, (bool, np.bool_)):
        raise TypeError(f"[{op}] {name} must be an integer, got bool.")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an integer, got {type(v).__name__}.") from None


def _along(a, axis, op, stream):
    """(array, non-negative axis): axis None flattens the array first."""
    x = as_array(a, op)
    if axis is None:
        from mx.core.ops.shape import reshape
        return reshape(x, (x.size,), stream=stream), 0
    return x, norm_axis(axis, x.ndim, op)


def _is_inexact(d) -> bool:
    return d.name.startswith(("float", "bfloat", "complex"))


# ---------------------------------------------------------------------------------------
# public ops
# ---------------------------------------------------------------------------------------
def sort(a, /, axis=-1, *, stream=None):
    """A sorted copy of `a` along `axis` (the flattened array when axis is None).

    The sort is stable and NaN values come last."""
    x, ax = _along(a, axis, "sort", stream)
    return make_node(SORT, (x,), {"axis": ax}, x.shape, x.dtype, stream)


def argsort(a, /, axis=-1, *, stream=None):
    """The uint32 indices that sort `a` along `axis` (the flattened array when axis is
    None); stable, with NaN values last."""
    x, ax = _along(a, axis, "argsort", stream)
    return make_node(ARGSORT, (x,), {"axis": ax}, x.shape, uint32, stream)


def _kth(kth, x, ax, axis, op):
    k = _int_arg(kth, "kth", op)
    n = x.shape[ax]
    if k < -n or k >= n:
        raise ValueError(f"[{op}] Received invalid kth {k} along axis {axis} for array with "
                         f"shape: {shape_str(x.shape)}")
    return k + n if k < 0 else k


def partition(a, /, kth, axis=-1, *, stream=None):
    """A copy of `a` whose element `kth` along `axis` is where a full sort would put it,
    with no larger element before it and no smaller one after it (the order within each
    side is unspecified). axis None partitions the flattened array."""
    x, ax = _along(a, axis, "partition", stream)
    k = _kth(kth, x, ax, 0 if axis is None else axis, "partition")
    return make_node(PARTITION, (x,), {"kth": k, "axis": ax}, x.shape, x.dtype, stream)


def argpartition(a, /, kth, axis=-1, *, stream=None):
    """The uint32 indices that partition `a` around its `kth` element along `axis` (see
    partition)."""
    x, ax = _along(a, axis, "argpartition", stream)
    k = _kth(kth, x, ax, 0 if axis is None else axis, "argpartition")
    return make_node(ARGPARTITION, (x,), {"kth": k, "axis": ax}, x.shape, uint32, stream)


def topk(a, /, k, axis=-1, *, stream=None):
    """The `k` largest elements of `a` along `axis` (of the flattened array when axis is
    None), in no particular order. NaN counts as larger than every number."""
    from mx.core.ops.shape import split
    x, ax = _along(a, axis, "topk", stream)
    k = _int_arg(k, "k", "topk")
    n = x.shape[ax]
    if k < 0 or k > n:
        raise ValueError(f"[topk] Received invalid k={k} along axis "
                         f"{0 if axis is None else axis} for array with shape: "
                         f"{shape_str(x.shape)}")
    if k == 0:
        return split(x, [n], axis=ax, stream=stream)[1]
    # the last k entries of a partition around n - k are the k largest
    part = partition(x, n - k, axis=ax, stream=stream)
    return split(part, [n - k], axis=ax, stream=stream)[1]


def searchsorted(sorted_sequence, values, /, side="left", *, stream=None):
    """Indices (uint32, shaped like `values`) where `values` would be inserted into the
    1-D ascending `sorted_sequence` to keep it sorted: with side 'left' the count of
    elements strictly smaller than the value, with 'right' the count of elements smaller
    or equal. Both inputs are compared in their promoted dtype."""
    seq = as_array(sorted_sequence, "searchsorted")
    vals = as_array(values, "searchsorted") if isinstance(values, array) else \
        _scalar_like(values, seq, "searchsorted")
    if side not in ("left", "right"):
        raise ValueError(f"[searchsorted] Invalid side {side!r}. Expected 'left' or 'right'.")
    if seq.ndim != 1:
        raise ValueError(f"[searchsorted] The sorted sequence must be 1-D but has {seq.ndim} "
                         "dimensions.")
    d = promote_types(seq.dtype, vals.dtype)
    params = {"side": side, "dtype": d, "batched": False}
    return make_node(SEARCHSORTED, (seq, vals), params, vals.shape, uint32, stream)


def _scalar_like(v, like, op):
    try:
        return to_array(v, like.dtype)
    except TypeError as e:
        raise TypeError(f"[{op}] {e}") from None


def _fill_array(fill_value, x):
    """fill_value as a 0-d array of x's dtype (it must hold exactly one element)."""
    from mx.core.ops.elementwise import astype
    from mx.core.ops.shape import reshape
    f = fill_value if isinstance(fill_value, array) else _scalar_like(fill_value, x, "unique")
    if f.size != 1:
        raise ValueError(f"[unique] Fill value must have one element, but got shape "
                         f"{shape_str(f.shape)}.")
    if f.shape != ():
        f = reshape(f, ())
    return f if f.dtype is x.dtype else astype(f, x.dtype)


def unique(a, /, size, return_index=False, return_inverse=False, return_counts=False,
           fill_value=None, *, stream=None):
    """The sorted unique elements of the flattened `a`, always `size` of them.

    Past the last unique element the output holds `fill_value` (default: the smallest
    unique element) with count 0; with more unique elements than `size` the smallest
    `size` are kept and `inverse` points the dropped ones at the last entry. Each NaN is
    its own unique element. The optional outputs, in this order: index (uint32) of the
    first occurrence of each value in the flattened `a` (the first unique element's for
    the padding), inverse (uint32, shaped like `a`) rebuilding `a` from the values, and
    counts (int32)."""
    from mx.core.ops.shape import reshape
    x = as_array(a, "unique")
    size = _int_arg(size, "size", "unique")
    if size < 0:
        raise ValueError(f"[unique] Received negative size {size}.")
    if x.size == 0 and size > 0 and fill_value is None:
        raise ValueError("[unique] A fill value is required for an empty input with a "
                         "non-zero size.")
    flat = reshape(x, (x.size,), stream=stream)
    inputs = (flat,) if fill_value is None else (flat, _fill_array(fill_value, x))
    outs = make_nodes(UNIQUE, inputs, {"size": size, "batched": False},
                      [(size,), (size,), (x.size,), (size,)],
                      [x.dtype, uint32, uint32, int32], stream)
    values, index, inverse, counts = outs
    if not (return_index or return_inverse or return_counts):
        return values
    result = [values]
    if return_index:
        result.append(index)
    if return_inverse:
        result.append(reshape(inverse, x.shape, stream=stream))
    if return_counts:
        result.append(counts)
    return tuple(result)


def minmax(a, /, axis=None, keepdims=False, *, stream=None):
    """(min, max) of `a` over `axis`, as two separate reductions would give them."""
    from mx.core.ops.reduction import max as _max, min as _min
    return (_min(a, axis=axis, keepdims=keepdims, stream=stream),
            _max(a, axis=axis, keepdims=keepdims, stream=stream))


__all__ = ["sort", "argsort", "partition", "argpartition", "topk", "searchsorted", "unique",
           "minmax", "cumulative_sum", "cumulative_prod"]


# ---------------------------------------------------------------------------------------
# transformation rules (docs/transforms.md)
# ---------------------------------------------------------------------------------------
# sort and partition permute their input along one axis: the tangent is gathered with the
# permutation and the cotangent scattered back with it. The index outputs are piecewise
# constant, so they get zero tangents and no gradient.
def _mx():
    import mx.core as mx
    return mx


def _zeros_like_out(out):
    return _mx().zeros(out.shape, out.dtype)


def _install_permutation_rules(prim, index_of):
    """Rules of a values primitive whose output is x gathered by index_of(x, **params)."""
    def vjp(primals, ct, out, axis, **kw):
        x = primals[0]
        if not _is_inexact(x.dtype):
            return [None]
        mx = _mx()
        idx = index_of(x, axis=axis, **kw)
        return [mx.put_along_axis(mx.zeros(x.shape, ct.dtype), idx, ct, axis=axis)]

    def jvp(primals, tangents, out, axis, **kw):
        x, t = primals[0], tangents[0]
        if t is None or not _is_inexact(x.dtype):
            return _zeros_like_out(out)
        return _mx().take_along_axis(t, index_of(x, axis=axis, **kw), axis=axis)

    def vmap(inputs, axes, out, axis, **kw):
        from mx.core.transforms import move_batch_axis
        x = move_batch_axis(inputs[0], axes[0], 0)
        params = dict(kw, axis=axis + 1)
        return make_node(prim, (x,), params, x.shape, out.dtype), 0

    prim.vjp, prim.jvp, prim.vmap = vjp, jvp, vmap


def _install_index_rules(prim):
    """Rules of a primitive with an integer output: no gradient, zero tangent."""
    def vmap(inputs, axes, out, axis, **kw):
        from mx.core.transforms import move_batch_axis
        x = move_batch_axis(inputs[0], axes[0], 0)
        return make_node(prim, (x,), dict(kw, axis=axis + 1), x.shape, out.dtype), 0

    prim.vjp = lambda primals, ct, out, **kw: [None]
    prim.jvp = lambda primals, tangents, out, **kw: _zeros_like_out(out)
    prim.vmap = vmap


def _install_searchsorted_rules():
    def vmap(inputs, axes, out, side, dtype, batched):
        from mx.core.transforms import move_batch_axis
        seq, vals = inputs
        aseq, avals = axes
        if aseq is None:
            # one shared sequence: the batch axis of values is just one more axis
            return make_node(SEARCHSORTED, (seq, vals), {"side": side, "dtype": dtype,
                                                         "batched": False},
                             vals.shape, uint32), avals
        mx = _mx()
        seq = move_batch_axis(seq, aseq, 0)
        size = seq.shape[0]
        if avals is None:
            vals = mx.broadcast_to(vals, (size,) + vals.shape)
        else:
            vals = move_batch_axis(vals, avals, 0)
        return make_node(SEARCHSORTED, (seq, vals), {"side": side, "dtype": dtype,
                                                     "batched": True},
                         vals.shape, uint32), 0

    SEARCHSORTED.vjp = lambda primals, ct, out, **kw: [None, None]
    SEARCHSORTED.jvp = lambda primals, tangents, out, **kw: _zeros_like_out(out)
    SEARCHSORTED.vmap = vmap


def _install_unique_rules():
    # values[i] = a[index[i]] where counts[i] > 0; the padding is fill_value when given,
    # else a[index[0]] (index points the padding at the first unique element)
    def vjp(primals, cts, outs, size, batched):
        mx = _mx()
        a = primals[0]
        has_fill = len(primals) == 2
        ct = cts[0]
        values, index, _, counts = outs
        if not _is_inexact(a.dtype):
            return [None] * len(primals)
        mask = counts > 0 if has_fill else None
        kept = ct if mask is None else mx.where(mask, ct, mx.zeros_like(ct))
        if a.size == 0:
            ga = mx.zeros(a.shape, a.dtype)
        elif batched:
            ga = _scatter_add_rows(mx.zeros(a.shape, ct.dtype), index, kept)
        else:
            ga = mx.zeros(a.shape, ct.dtype).at[index].add(kept)
        grads = [ga.astype(a.dtype)]
        if has_fill:
            rest = mx.where(mask, mx.zeros_like(ct), ct)
            grads.append(mx.sum(rest, axis=-1).astype(primals[1].dtype))
        return grads

    def jvp(primals, tangents, outs, size, batched):
        mx = _mx()
        a = primals[0]
        has_fill = len(primals) == 2
        values, index, inverse, counts = outs
        zeros = [mx.zeros(o.shape, o.dtype) for o in outs[1:]]
        if not _is_inexact(a.dtype):
            return [mx.zeros(values.shape, values.dtype)] + zeros
        ta = tangents[0]
        tf = tangents[1] if has_fill else None
        if ta is None or a.size == 0:
            tv = mx.zeros(values.shape, values.dtype)
        else:
            tv = mx.take_along_axis(ta, index, axis=-1) if batched else mx.take(ta, index)
        if has_fill:
            if tf is None:
                tf = mx.zeros(primals[1].shape, values.dtype)
            if batched:
                tf = mx.expand_dims(tf, -1) if tf.ndim else tf
            tv = mx.where(counts > 0, tv, tf)
        return [tv] + zeros

    def vmap(inputs, axes, outs, size, batched):
        from mx.core.transforms import move_batch_axis
        mx = _mx()
        bsize = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        a = inputs[0]
        a = mx.broadcast_to(a, (bsize,) + a.shape) if axes[0] is None else \
            move_batch_axis(a, axes[0], 0)
        new = [a]
        if len(inputs) == 2:
            f = inputs[1]
            f = mx.broadcast_to(f, (bsize,)) if axes[1] is None else move_batch_axis(f, axes[1], 0)
            new.append(f)
        n = a.shape[1]
        res = make_nodes(UNIQUE, tuple(new), {"size": size, "batched": True},
                         [(bsize, size), (bsize, size), (bsize, n), (bsize, size)],
                         [a.dtype, uint32, uint32, int32], None)
        return list(res), [0, 0, 0, 0]

    UNIQUE.vjp, UNIQUE.jvp, UNIQUE.vmap = vjp, jvp, vmap


def _scatter_add_rows(target, index, values):
    """target (rows, n) with values (rows, size) added at index (rows, size) along the last
    axis, repeated indices accumulating."""
    mx = _mx()
    rows = target.shape[0]
    r = mx.broadcast_to(mx.expand_dims(mx.arange(rows), -1), index.shape)
    return target.at[r, index].add(values)


def install_rules():
    _install_permutation_rules(SORT, lambda x, axis: argsort(x, axis=axis))
    _install_permutation_rules(PARTITION, lambda x, axis, kth: argpartition(x, kth, axis=axis))
    _install_index_rules(ARGSORT)
    _install_index_rules(ARGPARTITION)
    _install_searchsorted_rules()
    _install_unique_rules()
