"""Indexing: ``a[idx]``, ``a[idx] = v``, ``a.at[idx].add(v)`` and the gather/scatter ops
(take, take_along_axis, put_along_axis, slice, slice_update, diagonal, diag, trace).

An index expression is parsed once, at op time, into a static key (a tuple of ints,
slices, None, Ellipsis and bools for the kernel to apply with NumPy) plus the index
arrays, which become node inputs and are put back into the key by the kernel. Boolean
masks are index arrays too; they are evaluated at op time, as the result's shape depends
on how many elements they select. NumPy computes the values; this module reproduces
NumPy's shape rules so that every node knows its shape before it runs. A key without index
arrays yields a NumPy view, so ``a[1:, 0]`` costs one node and no copy.

Updates never touch their input's buffer unless the scheduler donates it (the input is
dying and nobody else holds it): then the update is done in place.
"""
from __future__ import annotations

import operator

import numpy as np

from mx.core import _array
from mx.core._array import (array, broadcast_shapes_pair, make_node, shape_str, to_array,
                            wrap)
from mx.core.primitives import declare
from mx.core.ops._util import AxisError, as_array, check_dtype, norm_axis

__all__ = ["take", "take_along_axis", "put_along_axis", "slice", "slice_update",
           "diagonal", "diag", "trace"]

_slice = slice  # the builtin, shadowed by the public op `slice` below


class _IndexTypeError(IndexError, ValueError):
    """A malformed index: an IndexError as in NumPy, and a ValueError as in MLX."""


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------
def _fill(key, slots, arrays):
    """The static key with the index arrays put back at their slots."""
    if not slots:
        return key
    k = list(key)
    for pos, arr in zip(slots, arrays):
        k[pos] = arr
    return tuple(k)


def _cast(v, npdtype):
    """Values cast to the destination dtype the way MLX does (complex drops its
    imaginary part)."""
    if v.dtype == npdtype:
        return v
    if v.dtype.kind == "c" and npdtype.kind != "c":
        v = v.real
    return v.astype(npdtype)


def _fresh(x, out):
    """The buffer an update writes into: the donated input itself, else a copy."""
    return out if out is x else x.copy()


def _reraise(e, op):
    raise IndexError(f"[{op}] {e}") from None


def _index_kernel(x, key):
    return x[key]


def _gather_kernel(x, *arrays, key, slots):
    try:
        return x[_fill(key, slots, arrays)]
    except IndexError as e:
        _reraise(e, "gather")


def _scatter_kernel(x, v, *arrays, key, slots, out=None):
    res = _fresh(x, out)
    try:
        res[_fill(key, slots, arrays)] = _cast(v, res.dtype)
    except IndexError as e:
        _reraise(e, "scatter")
    return res


def _accumulate(ufunc, x, v, arrays, key, slots, vshape, out):
    res = _fresh(x, out)
    k = _fill(key, slots, arrays)
    if vshape is not None:
        v = v.reshape(vshape)
    exact = ufunc is not np.divide or res.dtype.kind in "fc" or res.dtype.name == "bfloat16"
    target = res if exact else res.astype(np.float64)
    v = _cast(v, target.dtype)
    try:
        with np.errstate(all="ignore"):
            if not slots and not any(type(i) is bool for i in k):
                # a basic key selects each element once: update the view in place
                view = target[k if Ellipsis in k else k + (Ellipsis,)]
                ufunc(view, v, out=view)
            else:
                ufunc.at(target, k, v)
    except IndexError as e:
        _reraise(e, "scatter")
    if not exact:
        # integer division truncates toward zero, as C's
        with np.errstate(all="ignore"):
            res[...] = target.astype(res.dtype)
    return res


def _acc_kernel(ufunc):
    def kernel(x, v, *arrays, key, slots, vshape, out=None):
        return _accumulate(ufunc, x, v, arrays, key, slots, vshape, out)
    return kernel


INDEX = declare("index", cpu=_index_kernel,
                doc="x[key] for a static key of ints, slices, None and bools (a NumPy view)")
GATHER = declare("gather", cpu=_gather_kernel,
                 doc="x[key] with integer index arrays as inputs (NumPy advanced indexing)")
SCATTER = declare("scatter", cpu=_scatter_kernel, donates=True,
                  doc="a copy of x with x[key] = v (repeated indices: one of them wins)")
SCATTER_ACC = {
    name: declare(f"scatter_{name}", cpu=_acc_kernel(uf), donates=True,
                  doc=f"a copy of x with {name} applied at key, accumulating repeats")
    for name, uf in (("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                     ("divide", np.divide), ("maximum", np.maximum), ("minimum", np.minimum))
}


# ---------------------------------------------------------------------------------------
# parsing an index expression
# ---------------------------------------------------------------------------------------
_BAD_INDEX = ("only integers, slices (`:`), ellipsis (`...`), None (`newaxis`) and "
              "integer or boolean arrays are valid indices")

# entry kinds
_INT, _SLICE, _NONE, _ELLIPSIS, _BOOL, _ARRAY, _MASK, _LAZY_MASK = range(8)


def _integral(dtype):
    return dtype.name[:3] == "int" or dtype.name[:4] == "uint"


def _evaluated(x):
    return x._data is not None and x._pending is None


def _np_index(data, op):
    """A NumPy index array (from a list, tuple or ndarray) as an entry."""
    k = data.dtype.kind
    if k == "b":
        if data.ndim == 0:
            return (_BOOL, bool(data), 0)
        return (_MASK, data, data.ndim)
    if k not in "iu":
        if data.size == 0 and k == "f":
            # NumPy reads an empty list as an empty integer index
            data = data.astype(np.intp)
        else:
            raise _IndexTypeError(f"[{op}] {_BAD_INDEX}; got an array of dtype {data.dtype}.")
    if data.ndim == 0:
        return (_INT, int(data), 1)
    return (_ARRAY, data, 1)


def _classify(it, op, lazy_masks):
    """(kind, value, number of array dimensions the entry consumes)."""
    t = type(it)
    if t is int:
        return (_INT, it, 1)
    if t is _slice:
        return (_SLICE, it, 1)
    if it is None:
        return (_NONE, None, 0)
    if it is Ellipsis:
        return (_ELLIPSIS, None, 0)
    if t is bool or t is np.bool_:
        return (_BOOL, bool(it), 0)
    if isinstance(it, array):
        kind = it.dtype.name
        if kind == "bool":
            if it.ndim == 0:
                return (_BOOL, bool(np.asarray(it)), 0)
            if lazy_masks and not _evaluated(it):
                return (_LAZY_MASK, it, it.ndim)
            np.asarray(it)   # the result's shape depends on the mask: evaluate it now
            return (_MASK, it, it.ndim)
        if not _integral(it.dtype):
            raise _IndexTypeError(f"[{op}] {_BAD_INDEX}; got an array of dtype {kind}.")
        if it.ndim == 0 and _evaluated(it):
            return (_INT, int(it._data), 1)
        return (_ARRAY, it, 1)
    if isinstance(it, np.ndarray):
        return _np_index(it, op)
    if isinstance(it, (list, tuple)):
        try:
            data = np.asarray(it)
        except (ValueError, TypeError):
            data = None
        if data is None or data.dtype.kind in "OUSV":
            raise _IndexTypeError(f"[{op}] {_BAD_INDEX}; got a list that is not a regular "
                                  "array of integers or bools.")
        return _np_index(data, op)
    if isinstance(it, np.generic) and it.dtype.kind in "iu":
        return (_INT, int(it), 1)
    if not isinstance(it, (float, complex, str, np.generic)):
        try:
            return (_INT, operator.index(it), 1)
        except TypeError:
            pass
    raise _IndexTypeError(f"[{op}] {_BAD_INDEX}; got {type(it).__name__}.")


def _out_of_bounds(i, axis, n, op):
    return IndexError(f"[{op}] index {i} is out of bounds for axis {axis} with size {n}")


def _norm_slice(s, n, op):
    """The slice with plain int (or None) fields, and its length on an axis of size n."""
    try:
        length = len(range(*s.indices(n)))
    except TypeError:
        raise _IndexTypeError(f"[{op}] slice indices must be integers or None; got "
                              f"{s!r}.") from None
    except ValueError:
        raise ValueError(f"[{op}] slice step cannot be zero") from None
    start, stop, step = s.start, s.stop, s.step
    if not ((start is None or type(start) is int) and (stop is None or type(stop) is int)
            and (step is None or type(step) is int)):
        s = _slice(*(None if f is None else operator.index(f) for f in (start, stop, step)))
    return s, length


def _check_array_bounds(data, axis, n, op):
    size = data.size
    if size == 0:
        return
    if size <= 256:
        # NumPy reductions cost microseconds of overhead; small arrays are faster as lists
        flat = data.ravel().tolist()
        hi, lo = max(flat), min(flat)
    else:
        hi = int(data.max())
        lo = int(data.min()) if data.dtype.kind == "i" else 0
    if hi >= n:
        raise _out_of_bounds(hi, axis, n, op)
    if lo < -n:
        raise _out_of_bounds(lo, axis, n, op)


# index arrays up to this size are checked at op time; larger ones by the kernel
_CHECK_LIMIT = 1 << 20


class _Index:
    """A parsed index expression: the kernel key, its index arrays and the shape of
    ``a[idx]`` (None when a lazy boolean mask makes it data dependent)."""
    __slots__ = ("key", "slots", "arrays", "shape")

    def __init__(self, key, slots, arrays, shape):
        self.key = key
        self.slots = slots
        self.arrays = arrays
        self.shape = shape


def _broadcast_index_shapes(shapes, op):
    out = shapes[0]
    try:
        for sh in shapes[1:]:
            if sh != out:
                out = broadcast_shapes_pair(out, sh)
        return out
    except ValueError:
        shown = " ".join(shape_str(tuple(s)) for s in shapes)
        raise _IndexTypeError(f"[{op}] shape mismatch: indexing arrays could not be broadcast "
                              f"together with shapes {shown}") from None


def _concat(parts):
    out = ()
    for p in parts:
        if p is not None:
            out += p
    return out


def _parse(shape, idx, op, lazy_masks=False):
    items = idx if type(idx) is tuple else (idx,)
    entries = []
    used = 0
    has_ellipsis = False
    for it in items:
        e = _classify(it, op, lazy_masks)
        if e[0] == _ELLIPSIS:
            if has_ellipsis:
                raise _IndexTypeError(f"[{op}] an index can only have a single ellipsis ('...')")
            has_ellipsis = True
        used += e[2]
        entries.append(e)
    ndim = len(shape)
    if used > ndim:
        raise _IndexTypeError(f"[{op}] Too many indices for array with {ndim} dimensions: "
                              f"{used} were indexed.")

    key = []
    slots = []
    arrays = []
    parts = []          # per entry: the dimensions it yields, or None for an advanced one
    adv_shapes = []     # broadcast shapes of the advanced entries (None: unknown)
    advanced = False
    dim = 0
    for kind, v, k in entries:
        if kind == _INT:
            n = shape[dim]
            if v < -n or v >= n:
                raise _out_of_bounds(v, dim, n, op)
            key.append(v + n if v < 0 else v)
            parts.append(None)
            adv_shapes.append(())
            dim += 1
        elif kind == _SLICE:
            s, length = _norm_slice(v, shape[dim], op)
            key.append(s)
            parts.append((length,))
            dim += 1
        elif kind == _NONE:
            key.append(None)
            parts.append((1,))
        elif kind == _ELLIPSIS:
            # one part even when it spans no axis: NumPy counts it as separating
            # advanced indices all the same
            span = ndim - used
            key.append(Ellipsis)
            parts.append(shape[dim:dim + span])
            dim += span
        elif kind == _BOOL:
            key.append(v)
            parts.append(None)
            adv_shapes.append((1,) if v else (0,))
            advanced = True
        elif kind == _ARRAY:
            n = shape[dim]
            if isinstance(v, np.ndarray):
                _check_array_bounds(v, dim, n, op)
                v = wrap(np.array(v, copy=True))
            elif _evaluated(v) and v.size <= _CHECK_LIMIT:
                _check_array_bounds(v._data, dim, n, op)
            slots.append(len(key))
            key.append(0)
            arrays.append(v)
            parts.append(None)
            adv_shapes.append(v.shape)
            advanced = True
            dim += 1
        else:  # boolean masks, consuming k dimensions
            covered = shape[dim:dim + k]
            mshape = v.shape
            for j in range(k):
                # NumPy lets an empty mask axis stand against an axis of any size
                if mshape[j] != covered[j] and mshape[j] != 0:
                    raise _IndexTypeError(
                        f"[{op}] boolean index did not match indexed array along axis "
                        f"{dim + j}; size of axis is {covered[j]} but size of corresponding "
                        f"boolean axis is {mshape[j]}")
            # the mask goes to NumPy as it is (its boolean indexing is faster than with
            # the equivalent nonzero() arrays); it selects count_nonzero elements
            slots.append(len(key))
            key.append(0)
            parts.append(None)
            if kind == _MASK:
                data = np.asarray(v)
                arrays.append(v if isinstance(v, array) else wrap(np.array(data, copy=True)))
                adv_shapes.append((int(np.count_nonzero(data)),))
            else:
                arrays.append(v)
                adv_shapes.append(None)
            advanced = True
            dim += k

    rest = shape[dim:]
    if not advanced:
        return _Index(tuple(key), (), [], _concat(parts) + rest)
    if any(s is None for s in adv_shapes):
        return _Index(tuple(key), tuple(slots), arrays, None)
    bshape = _broadcast_index_shapes(adv_shapes, op)
    pos = [i for i, p in enumerate(parts) if p is None]
    if pos[-1] - pos[0] + 1 == len(pos):
        # adjacent advanced indices: their broadcast shape replaces them in place
        out = _concat(parts[:pos[0]]) + bshape + _concat(parts[pos[-1] + 1:])
    else:
        # separated by a slice, None or Ellipsis: NumPy puts the broadcast shape first
        out = bshape + _concat(parts)
    return _Index(tuple(key), tuple(slots), arrays, out + rest)


def _parse_basic(shape, items, op):
    """A tuple of ints, slices, None and at most one Ellipsis, in one pass; None when the
    tuple holds anything else."""
    used = 0
    for it in items:
        t = type(it)
        if t is int or t is _slice:
            used += 1
        elif it is not None and it is not Ellipsis:
            return None
    ndim = len(shape)
    if used > ndim:
        return None  # the general parser reports it
    key = []
    out = []
    dim = 0
    seen_ellipsis = False
    for it in items:
        t = type(it)
        if t is int:
            n = shape[dim]
            if it < -n or it >= n:
                raise _out_of_bounds(it, dim, n, op)
            key.append(it + n if it < 0 else it)
            dim += 1
        elif t is _slice:
            sl, length = _norm_slice(it, shape[dim], op)
            key.append(sl)
            out.append(length)
            dim += 1
        elif it is None:
            key.append(None)
            out.append(1)
        else:
            if seen_ellipsis:
                return None
            seen_ellipsis = True
            span = ndim - used
            key.append(Ellipsis)
            out.extend(shape[dim:dim + span])
            dim += span
    return _Index(tuple(key), (), [], tuple(out) + shape[dim:])


def _parse_fast(shape, idx, op):
    """The common basic cases first; anything else goes to the general parser."""
    t = type(idx)
    if t is int and shape:
        n = shape[0]
        if idx < -n or idx >= n:
            raise _out_of_bounds(idx, 0, n, op)
        return _Index((idx + n if idx < 0 else idx,), (), [], shape[1:])
    if t is _slice and shape:
        s, length = _norm_slice(idx, shape[0], op)
        return _Index((s,), (), [], (length,) + shape[1:])
    if t is tuple:
        ix = _parse_basic(shape, idx, op)
        if ix is not None:
            return ix
    return _parse(shape, idx, op, False)


# ---------------------------------------------------------------------------------------
# a[idx], a[idx] = v, a.at[idx]
# ---------------------------------------------------------------------------------------
def _stable(a):
    """The input a new node should hold for `a`: an evaluated array is cloned (sharing its
    buffer) so that a later ``a[...] = v``, which rebinds `a`, leaves this node's view of
    the old value intact."""
    if a._data is not None:
        return a.__copy__()
    return a


def _node(prim, inputs, params, shape, dtype, stream=None):
    return make_node(prim, tuple(map(_stable, inputs)), params, shape, dtype, stream)


def getitem(a, idx):
    """``a[idx]`` with NumPy's indexing rules (basic, advanced and boolean-mask)."""
    ix = _parse_fast(a._shape, idx, "getitem")
    if not ix.arrays:
        return make_node(INDEX, (_stable(a),), {"key": ix.key}, ix.shape, a._dtype)
    return make_node(GATHER, (_stable(a), *map(_stable, ix.arrays)),
                     {"key": ix.key, "slots": ix.slots}, ix.shape, a._dtype)


def _value(val, dtype, op):
    """An update value as an array; it is cast to the destination dtype by the kernel, so
    NumPy inputs keep their precision until then."""
    if isinstance(val, array):
        return val
    if type(val) in (bool, int, float, complex):
        return to_array(val, dtype)
    try:
        data = np.asarray(val)
    except (ValueError, TypeError) as e:
        raise ValueError(f"[{op}] Cannot use {type(val).__name__} as update values: {e}") from None
    if data.dtype.kind in "OUSVMm":
        raise ValueError(f"[{op}] Cannot use values of type {type(val).__name__} "
                         f"(NumPy dtype {data.dtype}) as update values.")
    d = _array.dtype_from_numpy(data.dtype)
    return wrap(np.array(data, dtype=d.np, copy=True), d)


def _target_shape(vshape, target, op):
    """Check that values of shape `vshape` broadcast into `target`; returns the value
    shape with surplus leading 1s dropped, or None when none were."""
    extra = len(vshape) - len(target)
    if extra > 0:
        if any(d != 1 for d in vshape[:extra]):
            raise ValueError(f"[{op}] Cannot broadcast array of shape {shape_str(vshape)} "
                             f"into shape {shape_str(target)}.")
        stripped = vshape[extra:]
    else:
        stripped = vshape
    for v, t in zip(reversed(stripped), reversed(target)):
        if v != t and v != 1:
            raise ValueError(f"[{op}] Cannot broadcast array of shape {shape_str(vshape)} "
                             f"into shape {shape_str(target)}.")
    return stripped if extra > 0 else None


def _update_index(a, idx, v, op):
    """Parse `idx` for an update of `a` by `v` and check that `v` fits; returns the index
    and the shape `v` must be reshaped to (None: as it is). A lazy boolean mask stays lazy
    when `v` has one element, which fits however many elements the mask selects."""
    if v.size == 1 and _has_lazy_mask(idx):
        ix = _parse(a._shape, idx, op, lazy_masks=True)
        if ix.shape is None:
            return ix, (() if v.ndim else None)
    else:
        ix = _parse_fast(a._shape, idx, op)
    return ix, _target_shape(v.shape, ix.shape, op)


def _has_lazy_mask(idx):
    for it in (idx if type(idx) is tuple else (idx,)):
        if isinstance(it, array) and it._dtype.name == "bool" and not _evaluated(it):
            return True
    return False


def setitem(a, idx, val):
    """A new array equal to `a` with ``a[idx] = val`` applied (values broadcast to the
    indexed shape and cast to a's dtype; with repeated indices one write wins)."""
    # (operands built from `a` before the assignment read its old value: the array keeps
    # a version history for them, see array.__setitem__)
    v = _value(val, a._dtype, "setitem")
    ix, _ = _update_index(a, idx, v, "setitem")
    return make_node(SCATTER, (a, _stable(v), *map(_stable, ix.arrays)),
                     {"key": ix.key, "slots": ix.slots}, a._shape, a._dtype)


class ArrayAt:
    """The object behind ``a.at``: ``a.at[idx].add(v)`` returns a new array where `v` is
    added at `idx`; unlike ``a[idx] += v``, repeated indices all contribute."""

    __slots__ = ("_a", "_idx", "_has_idx")

    def __init__(self, a, idx=None, has_idx=False):
        self._a = a
        self._idx = idx
        self._has_idx = has_idx

    def __getitem__(self, idx):
        return ArrayAt(self._a, idx, True)

    def __repr__(self):
        return f"ArrayAt(shape={shape_str(self._a.shape)}, dtype={self._a.dtype.name})"

    def _apply(self, name, value):
        if not self._has_idx:
            raise ValueError("[ArrayAt] Must give indices to array.at (e.g. `x.at[0].add(4)`).")
        a = self._a
        op = f"scatter_{name}"
        if name == "subtract" and a.dtype.name == "bool":
            raise ValueError(f"[{op}] Subtraction is not supported for bool arrays.")
        v = _value(value, a.dtype, op)
        ix, vshape = _update_index(a, self._idx, v, op)
        params = {"key": ix.key, "slots": ix.slots, "vshape": vshape}
        inputs = (_stable(a), _stable(v), *map(_stable, ix.arrays))
        return make_node(SCATTER_ACC[name], inputs, params, a.shape, a.dtype)

    def add(self, value):
        """`a` with `value` added at the indices (repeats accumulate)."""
        return self._apply("add", value)

    def subtract(self, value):
        """`a` with `value` subtracted at the indices (repeats accumulate)."""
        return self._apply("subtract", value)

    def multiply(self, value):
        """`a` multiplied by `value` at the indices (repeats accumulate)."""
        return self._apply("multiply", value)

    def divide(self, value):
        """`a` divided by `value` at the indices (repeats accumulate; integer arrays
        truncate toward zero)."""
        return self._apply("divide", value)

    def maximum(self, value):
        """The elementwise maximum of `a` and `value` at the indices."""
        return self._apply("maximum", value)

    def minimum(self, value):
        """The elementwise minimum of `a` and `value` at the indices."""
        return self._apply("minimum", value)


# ---------------------------------------------------------------------------------------
# take, take_along_axis, put_along_axis
# ---------------------------------------------------------------------------------------
def _index_array(indices, op):
    """Integer indices as an array (Python and NumPy ints become 0-d arrays)."""
    if isinstance(indices, (int, np.integer)) and not isinstance(indices, (bool, np.bool_)):
        return wrap(np.asarray(indices))
    x = as_array(indices, op)
    if x.size == 0 and isinstance(indices, (list, tuple)):
        return wrap(np.zeros(x.shape, dtype=np.int32))   # [] reads as float otherwise
    if not _integral(x.dtype):
        raise ValueError(f"[{op}] Got indices with invalid dtype {x.dtype.name}. "
                         "Indices must be integral.")
    return x


def _check_known_bounds(x, axis, n, op):
    """Bounds-check indices whose values are already known (and not huge)."""
    if _evaluated(x) and x.size <= _CHECK_LIMIT:
        _check_array_bounds(x._data, axis, n, op)


def _take_kernel(x, idx, axis):
    try:
        return np.take(x, idx, axis=axis)
    except IndexError as e:
        _reraise(e, "take")


TAKE = declare("take", cpu=_take_kernel, doc="np.take: elements at indices along an axis")


def take(a, /, indices, axis=None, *, stream=None):
    """Elements of `a` at `indices` along `axis`; with no axis, `a` is read as flattened.

    ``take(a, i, axis=1)`` is ``a[:, i]``: the axis is replaced by the shape of `indices`.
    Negative indices count from the end; out-of-range ones raise IndexError.
    """
    x = as_array(a, "take")
    idx = _index_array(indices, "take")
    if axis is None:
        _check_known_bounds(idx, 0, x.size, "take")
        shape = idx.shape
    else:
        axis = norm_axis(axis, x.ndim, "take")
        _check_known_bounds(idx, axis, x.shape[axis], "take")
        shape = x.shape[:axis] + idx.shape + x.shape[axis + 1:]
    return _node(TAKE, (x, idx), {"axis": axis}, shape, x.dtype, stream)


def _along_axis_shape(x, idx, axis, op):
    """Check `idx` against `x` for the along-axis ops; returns (axis, indexed shape)."""
    if axis is None:
        if idx.ndim != 1:
            raise ValueError(f"[{op}] Indices of dimension {idx.ndim} does not match array "
                             "of dimension 1.")
        _check_known_bounds(idx, 0, x.size, op)
        return None, idx.shape
    axis = norm_axis(axis, x.ndim, op)
    if idx.ndim != x.ndim:
        raise ValueError(f"[{op}] Indices of dimension {idx.ndim} does not match array of "
                         f"dimension {x.ndim}.")
    others = x.shape[:axis] + (1,) + x.shape[axis + 1:]
    try:
        shape = tuple(np.broadcast_shapes(others, idx.shape))
    except ValueError:
        raise ValueError(f"[{op}] Indices of shape {shape_str(idx.shape)} cannot be broadcast "
                         f"with array of shape {shape_str(x.shape)} outside axis {axis}.") from None
    _check_known_bounds(idx, axis, x.shape[axis], op)
    return axis, shape


def _take_along_axis_kernel(x, idx, axis):
    try:
        if axis is None:
            return np.take_along_axis(x.reshape(-1), idx, axis=0)
        return np.take_along_axis(x, idx, axis=axis)
    except IndexError as e:
        _reraise(e, "take_along_axis")


TAKE_ALONG_AXIS = declare("take_along_axis", cpu=_take_along_axis_kernel,
                          doc="np.take_along_axis: gather with per-position indices")


def take_along_axis(a, /, indices, axis=-1, *, stream=None):
    """Values of `a` at `indices` along `axis`, matching positions on the other axes.

    `indices` has as many dimensions as `a` and broadcasts with it outside `axis`. With
    ``axis=None`` `a` is read as flattened and `indices` must be 1-D.
    """
    x = as_array(a, "take_along_axis")
    idx = _index_array(indices, "take_along_axis")
    axis, shape = _along_axis_shape(x, idx, axis, "take_along_axis")
    return _node(TAKE_ALONG_AXIS, (x, idx), {"axis": axis}, shape, x.dtype, stream)


def _put_along_axis_kernel(x, idx, v, axis, out=None):
    res = _fresh(x, out)
    v = _cast(v, res.dtype)
    try:
        if axis is None:
            np.put_along_axis(res.reshape(-1), idx, v, axis=0)
        else:
            np.put_along_axis(res, idx, v, axis=axis)
    except IndexError as e:
        _reraise(e, "put_along_axis")
    return res


PUT_ALONG_AXIS = declare("put_along_axis", cpu=_put_along_axis_kernel, donates=True,
                         doc="np.put_along_axis on a copy: scatter with per-position indices")


def put_along_axis(a, /, indices, values, axis=None, *, stream=None):
    """A copy of `a` with `values` written at `indices` along `axis`.

    `indices` is laid out as for take_along_axis; `values` broadcasts to the indexed shape
    and is cast to a's dtype. With ``axis=None`` `a` is treated as flattened.
    """
    x = as_array(a, "put_along_axis")
    idx = _index_array(indices, "put_along_axis")
    v = _value(values, x.dtype, "put_along_axis")
    axis, shape = _along_axis_shape(x, idx, axis, "put_along_axis")
    _target_shape(v.shape, shape, "put_along_axis")
    return _node(PUT_ALONG_AXIS, (x, idx, v), {"axis": axis}, x.shape, x.dtype, stream)


# ---------------------------------------------------------------------------------------
# slice, slice_update (start indices may be computed: dynamic slicing)
# ---------------------------------------------------------------------------------------
def _slice_axes(x, start_indices, axes, op):
    """Validated (start array, axes tuple); the start array is integral, 0-D or 1-D and
    holds one entry per axis."""
    if isinstance(start_indices, (int, np.integer)) and not isinstance(start_indices, bool):
        start = wrap(np.asarray(start_indices))
    else:
        start = as_array(start_indices, op)
    if not _integral(start.dtype):
        raise ValueError(f"[{op}] Start indices must be integers, got type {start.dtype.name}.")
    if start.ndim > 1:
        raise ValueError(f"[{op}] array of starting indices must be zero or one dimensional "
                         f"but has dimension {start.ndim}.")
    try:
        axes = tuple(operator.index(ax) for ax in axes)
    except TypeError:
        raise TypeError(f"[{op}] axes must be a sequence of integers, got {axes!r}.") from None
    norm = []
    for ax in axes:
        if ax < -x.ndim or ax >= x.ndim:
            raise AxisError(f"[{op}] Invalid axis {ax} for array with dimension {x.ndim}.")
        norm.append(ax % x.ndim)
    if len(set(norm)) != len(norm):
        raise ValueError(f"[{op}] Repeat axes not allowed.")
    if start.size != len(norm):
        raise ValueError(f"[{op}] Number of starting indices {start.size} does not match "
                         f"number of axes {len(norm)}.")
    return start, tuple(norm)


def _static_key(starts, axes, sizes, shape, op):
    """Slices for starts known at op time (or at run time, in the kernels)."""
    key = [_slice(0, s) for s in sizes]
    for ax, st in zip(axes, starts):
        if st < 0 or st + sizes[ax] > shape[ax]:
            raise IndexError(f"[{op}] Start index {st} on axis {ax} leaves no room for a "
                             f"slice of size {sizes[ax]} in a dimension of size {shape[ax]}.")
        key[ax] = _slice(st, st + sizes[ax])
    return tuple(key)


def _dynamic_slice_kernel(x, start, axes, sizes):
    key = _static_key(np.reshape(start, -1).tolist(), axes, sizes, x.shape, "slice")
    return x[key]


DYNAMIC_SLICE = declare("dynamic_slice", cpu=_dynamic_slice_kernel,
                        doc="x[start:start+size] on some axes, start read at run time")


def slice(a, start_indices, axes, slice_size, *, stream=None):
    """The sub-array of `a` of shape `slice_size` starting at `start_indices` on `axes`
    (at 0 on the other axes). `start_indices` may be a computed array: the slice is then
    placed when the graph runs. A slice that does not fit raises IndexError."""
    x = as_array(a, "slice")
    start, axes = _slice_axes(x, start_indices, axes, "slice")
    try:
        sizes = tuple(operator.index(s) for s in slice_size)
    except TypeError:
        raise TypeError(f"[slice] slice_size must be a sequence of integers, got "
                        f"{slice_size!r}.") from None
    if len(sizes) != x.ndim:
        raise ValueError(f"[slice] Invalid slice size for array with {x.ndim} dimensions.")
    if any(s < 0 or s > d for s, d in zip(sizes, x.shape)):
        raise ValueError(f"[slice] Invalid slice size {shape_str(sizes)} for array with shape "
                         f"{shape_str(x.shape)}.")
    if _evaluated(start):
        key = _static_key(np.reshape(start._data, -1).tolist(), axes, sizes, x.shape, "slice")
        return make_node(INDEX, (_stable(x),), {"key": key}, sizes, x.dtype, stream)
    return _node(DYNAMIC_SLICE, (x, start), {"axes": axes, "sizes": sizes}, sizes,
                     x.dtype, stream)


def _slice_update_kernel(x, update, start, axes, sizes, out=None):
    key = _static_key(np.reshape(start, -1).tolist(), axes, sizes, x.shape, "slice_update")
    res = _fresh(x, out)
    res[key] = _cast(update, res.dtype)
    return res


SLICE_UPDATE = declare("slice_update", cpu=_slice_update_kernel, donates=True,
                       doc="a copy of x with a slice (start read at run time) overwritten")


def slice_update(a, update, start_indices, axes, *, stream=None):
    """A copy of `a` with `update` written into the slice starting at `start_indices` on
    `axes`. The slice spans the whole of the other axes; on `axes` it has the size of
    `update`, which broadcasts into it and is cast to a's dtype."""
    x = as_array(a, "slice_update")
    start, axes = _slice_axes(x, start_indices, axes, "slice_update")
    u = _value(update, x.dtype, "slice_update")
    if u.ndim > x.ndim:
        raise ValueError(f"[slice_update] The update of shape {shape_str(u.shape)} has more "
                         f"dimensions than the array of shape {shape_str(x.shape)}.")
    ushape = (1,) * (x.ndim - u.ndim) + u.shape
    sizes = tuple(ushape[d] if d in axes else x.shape[d] for d in range(x.ndim))
    if any(s > d for s, d in zip(sizes, x.shape)):
        raise ValueError(f"[slice_update] Update of shape {shape_str(u.shape)} does not fit "
                         f"in array of shape {shape_str(x.shape)} on axes {axes}.")
    for us, s in zip(ushape, sizes):
        if us != s and us != 1:
            raise ValueError(f"[slice_update] Shapes {shape_str(u.shape)} and "
                             f"{shape_str(sizes)} cannot be broadcast.")
    if _evaluated(start):
        key = _static_key(np.reshape(start._data, -1).tolist(), axes, sizes, x.shape,
                          "slice_update")
        return _node(SCATTER, (x, u), {"key": key, "slots": ()}, x.shape, x.dtype, stream)
    return _node(SLICE_UPDATE, (x, u, start), {"axes": axes, "sizes": sizes}, x.shape,
                     x.dtype, stream)


# ---------------------------------------------------------------------------------------
# diagonal, diag, trace
# ---------------------------------------------------------------------------------------
def _diag_axes(x, offset, axis1, axis2, op):
    """Validated (offset, axis1, axis2, diagonal length)."""
    if x.ndim < 2:
        raise ValueError(f"[{op}] Array must have at least two dimensions, but got "
                         f"{x.ndim} dimensions.")
    offset = operator.index(offset)
    axes = []
    for name, ax in (("axis1", axis1), ("axis2", axis2)):
        ax = operator.index(ax)
        if ax < -x.ndim or ax >= x.ndim:
            raise AxisError(f"[{op}] Invalid {name} {ax} for array with {x.ndim} dimensions.")
        axes.append(ax % x.ndim)
    ax1, ax2 = axes
    if ax1 == ax2:
        raise ValueError(f"[{op}] axis1 and axis2 cannot be the same axis")
    n1, n2 = x.shape[ax1], x.shape[ax2]
    length = min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2)
    return offset, ax1, ax2, max(0, length)


def _diagonal_kernel(x, offset, axis1, axis2):
    return np.diagonal(x, offset, axis1, axis2)


DIAGONAL = declare("diagonal", cpu=_diagonal_kernel,
                   doc="np.diagonal: the diagonals of the 2-D slices on two axes (a view)")


def diagonal(a, offset=0, axis1=0, axis2=1, stream=None):
    """The diagonal at `offset` of the 2-D sub-arrays spanned by `axis1` and `axis2`.

    Both axes are removed and the diagonal becomes the last axis.
    """
    x = as_array(a, "diagonal")
    offset, ax1, ax2, length = _diag_axes(x, offset, axis1, axis2, "diagonal")
    shape = tuple(d for i, d in enumerate(x.shape) if i != ax1 and i != ax2) + (length,)
    return make_node(DIAGONAL, (_stable(x),), {"offset": offset, "axis1": ax1, "axis2": ax2},
                     shape, x.dtype, stream)


def _diag_matrix_kernel(x, k):
    return np.diag(x, k)


DIAG_MATRIX = declare("diag_matrix", cpu=_diag_matrix_kernel,
                      doc="np.diag of a 1-D array: a square matrix with it on diagonal k")


def diag(a, /, k=0, *, stream=None):
    """The k-th diagonal of a 2-D array, or the square matrix holding a 1-D array on its
    k-th diagonal (zeros elsewhere)."""
    x = as_array(a, "diag")
    k = operator.index(k)
    if x.ndim == 1:
        n = x.shape[0] + (k if k >= 0 else -k)
        return _node(DIAG_MATRIX, (x,), {"k": k}, (n, n), x.dtype, stream)
    if x.ndim == 2:
        return diagonal(x, k, 0, 1, stream=stream)
    raise ValueError(f"[diag] array must be 1-D or 2-D, got array with {x.ndim} dimensions.")


def _sum_dtype(d):
    """MLX's sum result dtype: small integers and bool widen to 32 bits."""
    if d.name in ("bool", "int8", "int16"):
        return _array._dtype_by_name("int32")
    if d.name in ("uint8", "uint16"):
        return _array._dtype_by_name("uint32")
    return d


def _trace_kernel(x, offset, axis1, axis2, dtype):
    d = np.diagonal(x, offset, axis1, axis2)
    if d.dtype != dtype.np:
        d = _cast(d, dtype.np)
    # accumulate half floats in float32 and integers in 64 bits, then narrow
    kind = d.dtype.kind
    acc = np.float32 if kind == "f" and d.dtype.itemsize < 4 or d.dtype.name == "bfloat16" \
        else (np.int64 if kind in "ib" else (np.uint64 if kind == "u" else None))
    out = np.sum(d, axis=-1, dtype=acc)
    return np.asarray(out).astype(_sum_dtype(dtype).np)


TRACE = declare("trace", cpu=_trace_kernel, doc="the sum of a diagonal")


def trace(a, /, offset=0, axis1=0, axis2=1, dtype=None, *, stream=None):
    """The sum along the diagonal at `offset` of the 2-D sub-arrays on `axis1`/`axis2`.

    The diagonal is cast to `dtype` (default: a's) and summed with MLX's sum rules, so
    bool and small integers give int32 (uint32 for small unsigned ones).
    """
    x = as_array(a, "trace")
    if dtype is not None:
        check_dtype(dtype, "trace")
    offset, ax1, ax2, _ = _diag_axes(x, offset, axis1, axis2, "trace")
    d = x.dtype if dtype is None else dtype
    shape = tuple(s for i, s in enumerate(x.shape) if i != ax1 and i != ax2)
    return _node(TRACE, (x,), {"offset": offset, "axis1": ax1, "axis2": ax2, "dtype": d},
                     shape, _sum_dtype(d), stream)
