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


# ---------------------------------------------------------------------------------------
# transformation rules (vjp, jvp, vmap; see docs/transforms.md)
# ---------------------------------------------------------------------------------------
# Gathers transpose to scatter-adds into zeros (repeated indices accumulate, as np.add.at)
# and scatters transpose to gathers. Under vmap an index key gains an entry for the batch
# axis: a full slice when only the array is batched, else an arange that pairs every
# example with its own indices.
def _mx():
    import mx.core as mx
    return mx


def _inexact(d):
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


def _is_mask(a):
    return a.dtype.name == "bool"


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _batch_first(x, axis):
    from mx.core.transforms import move_batch_axis
    return move_batch_axis(x, axis, 0)


def _core_shape(x, axis):
    """The shape of one example of `x` (batched on `axis`, or not batched)."""
    return x.shape if axis is None else x.shape[:axis] + x.shape[axis + 1:]


def _batch_size(inputs, axes):
    return next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)


def _batched(x, axis, size):
    """x with a leading batch axis: moved there, or (unbatched) broadcast along it (a
    read-only view; the update kernels copy their input before writing)."""
    if axis is not None:
        return _batch_first(x, axis)
    mx = _mx()
    return mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape)


class _Layout:
    """Where ``x[key]`` puts its dimensions. `shape` is the indexed region's shape. The
    advanced entries' broadcast shape (rank `r`) comes after the first `p` dimensions of
    the region when those entries are adjacent in the key, first otherwise (NumPy's rule,
    as in _parse)."""
    __slots__ = ("shape", "adjacent", "p", "r")

    def __init__(self, shape, adjacent, p, r):
        self.shape = shape
        self.adjacent = adjacent
        self.p = p
        self.r = r

    def front_shape(self):
        """The region's shape with the advanced block moved first."""
        s, p, r = self.shape, self.p, self.r
        return s[p:p + r] + s[:p] + s[p + r:] if self.adjacent else s

    def _perm(self, lead, to_front):
        p, r, n = self.p, self.r, len(self.shape)
        if not self.adjacent or p == 0 or r == 0:
            return None
        if to_front:
            core = list(range(p, p + r)) + list(range(p)) + list(range(p + r, n))
        else:
            core = list(range(r, r + p)) + list(range(r)) + list(range(p + r, n))
        return tuple(range(lead)) + tuple(lead + c for c in core)

    def to_front(self, t, lead):
        """t (lead dims, then the region in its own order) with the advanced block first."""
        perm = self._perm(lead, True)
        return t if perm is None else _mx().transpose(t, perm)

    def from_front(self, t, lead):
        """The inverse of to_front."""
        perm = self._perm(lead, False)
        return t if perm is None else _mx().transpose(t, perm)


def _index_info(a, axis=None):
    """(dimensions an index array consumes, shape it contributes) for one example."""
    if _is_mask(a):
        if axis is not None:
            raise ValueError("[vmap] Cannot vmap an index by a batched boolean mask: the "
                             "number of selected elements would differ between examples.")
        return a.ndim, (int(np.count_nonzero(np.asarray(a))),)
    return 1, _core_shape(a, axis)


def _layout(shape, key, slots, infos):
    """The _Layout of x[key] for an x of `shape`, the index arrays at `slots` being
    described by `infos` (see _index_info)."""
    slot_info = dict(zip(slots, infos))
    advanced = bool(slots) or any(type(k) is bool for k in key)
    used = 0
    for pos, k in enumerate(key):
        if pos in slot_info:
            used += slot_info[pos][0]
        elif type(k) is int or type(k) is _slice:
            used += 1
    ndim = len(shape)
    parts, adv_shapes, dim = [], [], 0
    for pos, k in enumerate(key):
        if pos in slot_info:
            consumed, contributed = slot_info[pos]
            parts.append(None)
            adv_shapes.append(contributed)
            dim += consumed
        elif k is None:
            parts.append((1,))
        elif k is Ellipsis:
            span = ndim - used
            parts.append(tuple(shape[dim:dim + span]))
            dim += span
        elif type(k) is bool:
            parts.append(None)
            adv_shapes.append((1,) if k else (0,))
        elif type(k) is _slice:
            parts.append((len(range(*k.indices(shape[dim]))),))
            dim += 1
        else:  # an int: advanced when the key has arrays or bools, else it drops the axis
            parts.append(None if advanced else ())
            if advanced:
                adv_shapes.append(())
            dim += 1
    rest = tuple(shape[dim:])
    if not advanced:
        return _Layout(_concat(parts) + rest, True, 0, 0)
    bshape = tuple(np.broadcast_shapes(*adv_shapes))
    pos = [i for i, p in enumerate(parts) if p is None]
    if pos[-1] - pos[0] + 1 == len(pos):
        pre = _concat(parts[:pos[0]])
        return _Layout(pre + bshape + _concat(parts[pos[-1] + 1:]) + rest, True, len(pre),
                       len(bshape))
    return _Layout(bshape + _concat(parts) + rest, False, 0, len(bshape))


def _layout_of(shape, key, slots, arrays):
    return _layout(shape, key, slots, [_index_info(a) for a in arrays])


def _gather_node(x, key, slots, arrays, shape):
    """x[key] (index arrays at slots) as an index or gather node of the given shape."""
    if slots:
        return make_node(GATHER, (x, *arrays), {"key": key, "slots": slots}, shape, x.dtype)
    return make_node(INDEX, (x,), {"key": key}, shape, x.dtype)


def _scatter_node(x, v, key, slots, arrays):
    return make_node(SCATTER, (x, v, *arrays), {"key": key, "slots": slots}, x.shape, x.dtype)


def _acc_node(name, x, v, key, slots, arrays, vshape=None):
    params = {"key": key, "slots": slots, "vshape": vshape}
    return make_node(SCATTER_ACC[name], (x, v, *arrays), params, x.shape, x.dtype)


def _sum_to(g, shape):
    """A cotangent of an update's region summed back to the update's own shape (which
    may carry surplus leading 1s)."""
    from mx.core.transforms import unbroadcast
    shape = tuple(shape)
    if len(shape) > g.ndim:
        return _mx().reshape(unbroadcast(g, shape[len(shape) - g.ndim:]), shape)
    return unbroadcast(g, shape)


def _winners(shape, key, slots, arrays, region):
    """Where a scatter with repeated indices keeps the written value: True at the region
    positions whose write is the one that lands (NumPy's assignment order decides; an id
    scattered the same way tells which)."""
    mx = _mx()
    n = _prod(region)
    d = mx.int32 if n < 2**31 else mx.int64
    ids = mx.reshape(mx.arange(n, dtype=d), region)
    filled = _scatter_node(mx.full(shape, -1, d), ids, key, slots, arrays)
    return _gather_node(filled, key, slots, arrays, region) == ids


def _has_int_arrays(arrays):
    return any(not _is_mask(a) for a in arrays)


# --- vmap of index keys --------------------------------------------------------------------
def _batched_key(size, lay, key, slots, arrays, arr_axes):
    """The key, slots and index arrays indexing a batch-first x, every example with its
    own indices: an arange leads, the batched index arrays get the batch as their first
    axis (the region, batch first, is then in the layout's front order)."""
    mx = _mx()
    r = lay.r
    ar = mx.reshape(mx.arange(size, dtype=mx.int32), (size,) + (1,) * r)
    out = [ar]
    for a, ax in zip(arrays, arr_axes):
        if ax is not None:
            a = _batch_first(a, ax)
            core = a.shape[1:]
            a = mx.reshape(a, (size,) + (1,) * (r - len(core)) + core)
        out.append(a)
    return (0,) + tuple(key), (0,) + tuple(s + 1 for s in slots), out


def _vmap_gather(x, ax, key, slots, arrays, arr_axes):
    """x[key] per example: (result, its batch axis)."""
    size = _batch_size([x, *arrays], [ax, *arr_axes])
    core = _core_shape(x, ax)
    lay = _layout(core, key, slots, [_index_info(a, aa) for a, aa in zip(arrays, arr_axes)])
    if all(aa is None for aa in arr_axes):
        xb = _batch_first(x, ax)
        key2 = (_slice(None),) + tuple(key)
        slots2 = tuple(s + 1 for s in slots)
        r, region = lay.r, lay.shape
        if lay.adjacent:
            return _gather_node(xb, key2, slots2, arrays, (size,) + region), 0
        return _gather_node(xb, key2, slots2, arrays, region[:r] + (size,) + region[r:]), r
    xb = _batched(x, ax, size)
    key2, slots2, arrays2 = _batched_key(size, lay, key, slots, arrays, arr_axes)
    res = _gather_node(xb, key2, slots2, arrays2, (size,) + lay.front_shape())
    return lay.from_front(res, 1), 0


def _update_node(name, x, v, key, slots, arrays):
    """The update `name` ("set" or a SCATTER_ACC name) of x at key by v."""
    if name == "set":
        return _scatter_node(x, v, key, slots, arrays)
    return _acc_node(name, x, v, key, slots, arrays)


def _mask_only(key, slots, arrays):
    """Whether the key is a single boolean mask, ``x[mask]``."""
    return len(key) == 1 and slots == (0,) and _is_mask(arrays[0])


def _masked_update(name, x, v, mask):
    """The update `name` of x by v where `mask` holds, as elementwise ops (v and mask
    broadcast against x; a mask selects every position once, so no accumulation)."""
    mx = _mx()
    v = v.astype(x.dtype) if v.dtype != x.dtype else v
    if name == "set":
        new = v
    elif name == "divide" and not _inexact(x.dtype):
        new = mx.divide(x, v).astype(x.dtype)   # truncates toward zero, as the kernel
    else:
        new = getattr(mx, name)(x, v)
    return mx.where(mask, new, x)


def _mask_equivalent(name, x, v, mask):
    """A function of (x, v) equal to the single-valued update `name` at a boolean mask
    that leads x's axes, for differentiating it with elementwise ops (no mask read)."""
    mx = _mx()
    m = mx.reshape(mask, mask.shape + (1,) * (x.ndim - mask.ndim))
    return lambda x_, v_: _masked_update(name, x_, mx.reshape(v_, ()), m)


def _vmap_scatter(name, x, ax, v, av, key, slots, arrays, arr_axes):
    """The update `name` of x at key by v per example. Returns (result, 0)."""
    mx = _mx()
    size = _batch_size([x, v, *arrays], [ax, av, *arr_axes])
    if any(aa is not None and _is_mask(a) for a, aa in zip(arrays, arr_axes)):
        return _vmap_masked(name, x, ax, v, av, key, slots, arrays, arr_axes, size), 0

    core = _core_shape(x, ax)
    lay = _layout(core, key, slots, [_index_info(a, aa) for a, aa in zip(arrays, arr_axes)])
    region = lay.shape
    vcore = _core_shape(v, av)
    if len(vcore) > len(region):
        vcore = vcore[len(vcore) - len(region):]   # surplus leading 1s (checked at op time)
    vb = _batch_first(v, av) if av is not None else v
    vb = mx.reshape(vb, (size if av is not None else 1,)
                    + (1,) * (len(region) - len(vcore)) + vcore)
    xb = _batched(x, ax, size)
    if all(aa is None for aa in arr_axes):
        key2 = (_slice(None),) + tuple(key)
        slots2 = tuple(s + 1 for s in slots)
        if not lay.adjacent:
            vb = mx.moveaxis(vb, 0, lay.r)
        return _update_node(name, xb, vb, key2, slots2, arrays), 0
    key2, slots2, arrays2 = _batched_key(size, lay, key, slots, arrays, arr_axes)
    return _update_node(name, xb, lay.to_front(vb, 1), key2, slots2, arrays2), 0


def _masked_vjp(name, primals, ct):
    """vjp of a single-valued update at a boolean mask (the mask need not be read)."""
    mx = _mx()
    x, v, mask = primals
    _, (gx, gv) = mx.vjp(_mask_equivalent(name, x, v, mask), [x, v], [ct])
    return [gx if _inexact(x.dtype) else None, gv if _inexact(v.dtype) else None, None]


def _masked_jvp(name, primals, tangents, out):
    mx = _mx()
    x, v, mask = primals
    tx, tv = tangents[:2]
    tx = mx.zeros(x.shape, out.dtype) if tx is None else tx
    tv = mx.zeros(v.shape, v.dtype) if tv is None or not _inexact(v.dtype) else tv
    return mx.jvp(_mask_equivalent(name, x, v, mask), [x, v], [tx, tv])[1][0]


def _vmap_masked(name, x, ax, v, av, key, slots, arrays, arr_axes, size):
    """An update at a boolean mask that differs between examples: possible (as where)
    when the mask is the whole key and each example updates with a single value."""
    mx = _mx()
    vcore = _core_shape(v, av)
    if not _mask_only(key, slots, arrays) or _prod(vcore) != 1:
        raise ValueError("[vmap] An update at a batched boolean mask must index with the "
                         "mask alone and write a single value per example (the number of "
                         "selected elements differs between examples).")
    xcore = _core_shape(x, ax)
    mask = _batch_first(arrays[0], arr_axes[0])
    mask = mx.reshape(mask, mask.shape + (1,) * (len(xcore) - (mask.ndim - 1)))
    vb = _batch_first(v, av) if av is not None else v
    vb = mx.reshape(vb, (size if av is not None else 1,) + (1,) * len(xcore))
    xb = _batch_first(x, ax) if ax is not None else mx.expand_dims(x, 0)
    return _masked_update(name, xb, vb, mask)


# --- index, gather, scatter ------------------------------------------------------------------
def _install_index_rules():
    mx = _mx()

    def index_vjp(primals, ct, out, /, key):
        x = primals[0]
        if not _inexact(x.dtype):
            return [None]
        # a basic key reads every element at most once: a plain scatter places ct
        return [_scatter_node(mx.zeros(x.shape, ct.dtype), ct, key, (), [])]

    INDEX.vjp = index_vjp
    INDEX.jvp = lambda primals, tangents, out, /, key: _gather_node(
        tangents[0], key, (), [], out.shape)
    INDEX.vmap = lambda inputs, axes, out, /, key: _vmap_gather(
        inputs[0], axes[0], key, (), [], [])

    def gather_vjp(primals, ct, out, /, key, slots):
        x, *arrays = primals
        nones = [None] * len(arrays)
        if not _inexact(x.dtype):
            return [None] + nones
        return [_acc_node("add", mx.zeros(x.shape, ct.dtype), ct, key, slots, arrays)] + nones

    def gather_jvp(primals, tangents, out, /, key, slots):
        return _gather_node(tangents[0], key, slots, primals[1:], out.shape)

    def gather_vmap(inputs, axes, out, /, key, slots):
        return _vmap_gather(inputs[0], axes[0], key, slots, inputs[1:], axes[1:])

    GATHER.vjp = gather_vjp
    GATHER.jvp = gather_jvp
    GATHER.vmap = gather_vmap

    def scatter_vjp(primals, ct, out, /, key, slots):
        x, v, *arrays = primals
        nones = [None] * len(arrays)
        if not _inexact(out.dtype):
            return [None, None] + nones
        if _mask_only(key, slots, arrays) and v.size == 1:
            return _masked_vjp("set", primals, ct)
        # the written positions no longer depend on x
        gx = _scatter_node(ct, mx.zeros((), ct.dtype), key, slots, arrays)
        gv = None
        if _inexact(v.dtype):
            region = _layout_of(x.shape, key, slots, arrays).shape
            g = _gather_node(ct, key, slots, arrays, region)
            if _has_int_arrays(arrays):
                # of repeated indices only the write that lands gets the cotangent
                g = mx.where(_winners(x.shape, key, slots, arrays, region), g, 0)
            gv = _sum_to(g, v.shape)
        return [gx, gv] + nones

    def scatter_jvp(primals, tangents, out, /, key, slots):
        x, v, *arrays = primals
        tx, tv = tangents[:2]
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        if _mask_only(key, slots, arrays) and v.size == 1:
            return _masked_jvp("set", primals, tangents, out)
        tx = mx.zeros(x.shape, out.dtype) if tx is None else tx
        tv = mx.zeros((), out.dtype) if tv is None or not _inexact(v.dtype) else tv
        return _scatter_node(tx, tv, key, slots, arrays)

    def scatter_vmap(inputs, axes, out, /, key, slots):
        x, v, *arrays = inputs
        return _vmap_scatter("set", x, axes[0], v, axes[1], key, slots, arrays, axes[2:])

    SCATTER.vjp = scatter_vjp
    SCATTER.jvp = scatter_jvp
    SCATTER.vmap = scatter_vmap
    for name in SCATTER_ACC:
        _install_acc_rules(name)


def _acc_vjp_jvp(name):
    """(vjp, jvp) of the accumulating scatter `name` (x updated at key by v)."""
    mx = _mx()

    def setup(primals, out, key, slots, vshape):
        x, v, *arrays = primals
        dt = out.dtype
        region = _layout_of(x.shape, key, slots, arrays).shape
        vv = mx.reshape(v, vshape) if vshape is not None else v
        # the update values as the kernel applies them: cast, one per region position
        vb = mx.broadcast_to(vv.astype(dt) if vv.dtype != dt else vv, region)

        def gather(t):
            return _gather_node(t, key, slots, arrays, region)

        def acc(op, base, vals):
            return _acc_node(op, base, vals, key, slots, arrays)

        return x, v, arrays, dt, region, vb, gather, acc

    def factors(x, vb, dt, gather, acc, repeats):
        """M: the product of the values at each position; others (when positions may
        repeat, else None): for each value, the product of the other values at its
        position."""
        M = acc("multiply", mx.ones(x.shape, dt), vb)
        if not repeats:
            return M, None
        zero = vb == 0
        safe = mx.where(zero, 1, vb)
        nonzero_prod = gather(acc("multiply", mx.ones(x.shape, dt), safe))
        zeros_count = gather(acc("add", mx.zeros(x.shape, dt), zero.astype(dt)))
        # a zero value's partner product is that of the nonzero others, unless another
        # value at its position is zero too
        others = mx.where(zero, mx.where(zeros_count == 1, nonzero_prod, 0),
                          gather(M) / safe)
        return M, others

    def extremal(x, out, vb, dt, gather, acc):
        """Which of x and the values attain the result (ties share the cotangent)."""
        win_x = (x == out).astype(dt)
        win_v = (vb == gather(out)).astype(dt)
        count = mx.maximum(win_x + acc("add", mx.zeros(x.shape, dt), win_v), 1)
        return win_x, win_v, count

    def vjp_rule(primals, ct, out, /, key, slots, vshape):
        x, v, *arrays = primals
        none = [None] * len(primals)
        if not _inexact(out.dtype):
            return none
        if _mask_only(key, slots, arrays) and v.size == 1:
            return _masked_vjp(name, primals, ct)
        x, v, arrays, dt, region, vb, gather, acc = setup(primals, out, key, slots, vshape)
        if name in ("add", "subtract"):
            gx, gvr = ct, gather(ct)
            if name == "subtract":
                gvr = -gvr
        elif name == "multiply":
            M, others = factors(x, vb, dt, gather, acc, _has_int_arrays(arrays))
            gx = ct * M
            gvr = gather(ct * x)
            if others is not None:
                gvr = gvr * others
        elif name == "divide":
            M, _ = factors(x, vb, dt, gather, acc, False)
            gx = ct / M
            gvr = -gather(ct * out) / vb
        else:  # maximum, minimum
            win_x, win_v, count = extremal(x, out, vb, dt, gather, acc)
            gx = ct * win_x / count
            gvr = gather(ct / count) * win_v
        gv = _sum_to(gvr, v.shape) if _inexact(v.dtype) else None
        return [gx, gv] + none[2:]

    def jvp_rule(primals, tangents, out, /, key, slots, vshape):
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        if _mask_only(key, slots, primals[2:]) and primals[1].size == 1:
            return _masked_jvp(name, primals, tangents, out)
        x, v, arrays, dt, region, vb, gather, acc = setup(primals, out, key, slots, vshape)
        tx, tv = tangents[:2]
        tx = mx.zeros(x.shape, dt) if tx is None else tx
        if tv is None or not _inexact(v.dtype):
            tv = mx.zeros(v.shape, dt)
        tvv = mx.reshape(tv, vshape) if vshape is not None else tv
        tvb = mx.broadcast_to(tvv.astype(dt) if tvv.dtype != dt else tvv, region)
        zeros = mx.zeros(x.shape, dt)
        if name in ("add", "subtract"):
            return acc(name, tx, tvb)
        if name == "multiply":
            M, others = factors(x, vb, dt, gather, acc, _has_int_arrays(arrays))
            return tx * M + x * acc("add", zeros, tvb if others is None else tvb * others)
        if name == "divide":
            M, _ = factors(x, vb, dt, gather, acc, False)
            return tx / M - out * acc("add", zeros, tvb / vb)
        win_x, win_v, count = extremal(x, out, vb, dt, gather, acc)
        return (tx * win_x + acc("add", zeros, tvb * win_v)) / count

    return vjp_rule, jvp_rule


def _install_acc_rules(name):
    prim = SCATTER_ACC[name]
    prim.vjp, prim.jvp = _acc_vjp_jvp(name)

    def vmap_rule(inputs, axes, out, /, key, slots, vshape):
        x, v, *arrays = inputs
        return _vmap_scatter(name, x, axes[0], v, axes[1], key, slots, arrays, axes[2:])

    prim.vmap = vmap_rule


# --- take, take_along_axis, put_along_axis ---------------------------------------------------
def _take_key(axis):
    """The index key of take along `axis` (its index array at the last slot)."""
    return (_slice(None),) * axis + (0,), (axis,)


def _install_take_rules():
    mx = _mx()

    def take_vjp(primals, ct, out, /, axis):
        x, idx = primals
        if not _inexact(x.dtype):
            return [None, None]
        if axis is None:
            flat = _acc_node("add", mx.zeros((x.size,), ct.dtype), ct, (0,), (0,), [idx])
            return [mx.reshape(flat, x.shape), None]
        key, slots = _take_key(axis)
        return [_acc_node("add", mx.zeros(x.shape, ct.dtype), ct, key, slots, [idx]), None]

    def take_vmap(inputs, axes, out, /, axis):
        (x, idx), (ax, ai) = inputs, axes
        if axis is None:
            if ax is not None:
                x = _batch_first(x, ax)
                x, ax = mx.reshape(x, (x.shape[0], _prod(x.shape[1:]))), 0
            else:
                x = mx.reshape(x, (x.size,))
            axis = 0
        key, slots = _take_key(axis)
        return _vmap_gather(x, ax, key, slots, [idx], [ai])

    TAKE.vjp = take_vjp
    TAKE.jvp = lambda primals, tangents, out, /, axis: take(tangents[0], primals[1], axis)
    TAKE.vmap = take_vmap

    def take_along_vjp(primals, ct, out, /, axis):
        x, idx = primals
        if not _inexact(x.dtype):
            return [None, None]
        if axis is None:
            flat = _acc_node("add", mx.zeros((x.size,), ct.dtype), ct, (0,), (0,), [idx])
            return [mx.reshape(flat, x.shape), None]
        if idx.shape[axis] == 1 and all(idx.shape[d] == n for d, n in enumerate(x.shape)
                                        if d != axis):
            # one index per line along the axis (a loss picking each row's target): no
            # position is read twice, so writing the cotangent is the sum (and a put, not a
            # scatter-add, has a GPU kernel)
            return [put_along_axis(mx.zeros(x.shape, ct.dtype), idx, ct, axis=axis), None]
        # the positions read: idx along the axis, the coordinate itself on the others
        # (0 where x has size 1 and was broadcast), so repeats add up
        key, slots, arrays = [], [], []
        nd = x.ndim
        for d, n in enumerate(x.shape):
            if d == axis:
                slots.append(d)
                key.append(0)
                arrays.append(idx)
            elif n == 1:
                key.append(0)
            else:
                slots.append(d)
                key.append(0)
                view = (1,) * d + (n,) + (1,) * (nd - d - 1)
                arrays.append(mx.reshape(mx.arange(n, dtype=mx.int32), view))
        g = _acc_node("add", mx.zeros(x.shape, ct.dtype), ct, tuple(key), tuple(slots), arrays)
        return [g, None]

    def take_along_vmap(inputs, axes, out, /, axis):
        (x, idx), (ax, ai) = inputs, axes
        xb = _batch_first(x, ax) if ax is not None else mx.expand_dims(x, 0)
        ib = _batch_first(idx, ai) if ai is not None else mx.expand_dims(idx, 0)
        if axis is None:
            xb = mx.reshape(xb, (xb.shape[0], _prod(xb.shape[1:])))
            return take_along_axis(xb, ib, axis=1), 0
        return take_along_axis(xb, ib, axis=axis + 1), 0

    TAKE_ALONG_AXIS.vjp = take_along_vjp
    TAKE_ALONG_AXIS.jvp = lambda primals, tangents, out, /, axis: take_along_axis(
        tangents[0], primals[1], axis)
    TAKE_ALONG_AXIS.vmap = take_along_vmap

    def put_along_vjp(primals, ct, out, /, axis):
        x, idx, v = primals
        if not _inexact(out.dtype):
            return [None, None, None]
        gx = put_along_axis(ct, idx, mx.zeros((), ct.dtype), axis)
        gv = None
        if _inexact(v.dtype):
            g = take_along_axis(ct, idx, axis)
            n = g.size
            d = mx.int32 if n < 2**31 else mx.int64
            ids = mx.reshape(mx.arange(n, dtype=d), g.shape)
            filled = put_along_axis(mx.full(x.shape, -1, d), idx, ids, axis)
            landed = take_along_axis(filled, idx, axis) == ids
            gv = _sum_to(mx.where(landed, g, 0), v.shape)
        return [gx, None, gv]

    def put_along_jvp(primals, tangents, out, /, axis):
        x, idx, v = primals
        tx, _, tv = tangents
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        tx = mx.zeros(x.shape, out.dtype) if tx is None else tx
        tv = mx.zeros((), out.dtype) if tv is None or not _inexact(v.dtype) else tv
        return put_along_axis(tx, idx, tv, axis)

    def put_along_vmap(inputs, axes, out, /, axis):
        (x, idx, v), (ax, ai, av) = inputs, axes
        size = _batch_size(inputs, axes)
        core = _core_shape(x, ax)
        xb = _batched(x, ax, size)
        ib = _batch_first(idx, ai) if ai is not None else mx.expand_dims(idx, 0)
        if axis is None:
            xb = mx.reshape(xb, (size, _prod(core)))
            region = ib.shape[1:]
        else:
            others = core[:axis] + (1,) + core[axis + 1:]
            region = tuple(np.broadcast_shapes(others, ib.shape[1:]))
        vcore = _core_shape(v, av)
        if len(vcore) > len(region):
            vcore = vcore[len(vcore) - len(region):]
        vb = _batch_first(v, av) if av is not None else v
        vb = mx.reshape(vb, (size if av is not None else 1,)
                        + (1,) * (len(region) - len(vcore)) + vcore)
        if axis is None:
            return mx.reshape(put_along_axis(xb, ib, vb, axis=1), (size,) + core), 0
        return put_along_axis(xb, ib, vb, axis=axis + 1), 0

    PUT_ALONG_AXIS.vjp = put_along_vjp
    PUT_ALONG_AXIS.jvp = put_along_jvp
    PUT_ALONG_AXIS.vmap = put_along_vmap


# --- dynamic slice and slice_update ----------------------------------------------------------
def _per_example_slices(size, starts, axes, sizes):
    """Index arrays reading, for every example b, the block of shape `sizes` that starts
    at starts[b] on `axes` (at 0 elsewhere): one array per axis, batch first."""
    mx = _mx()
    nd = len(sizes)
    starts = mx.reshape(starts, (size, len(axes)))
    out = []
    for d, n in enumerate(sizes):
        view = (1,) + (1,) * d + (n,) + (1,) * (nd - d - 1)
        coord = mx.reshape(mx.arange(n, dtype=starts.dtype), view)
        if d in axes:
            k = axes.index(d)
            first = mx.reshape(starts[:, k], (size,) + (1,) * nd)
            coord = coord + first
        out.append(coord)
    return out


def _install_slice_rules():
    mx = _mx()

    def dynamic_slice_vjp(primals, ct, out, /, axes, sizes):
        x, start = primals
        if not _inexact(x.dtype):
            return [None, None]
        return [slice_update(mx.zeros(x.shape, ct.dtype), ct, start, axes), None]

    def dynamic_slice_vmap(inputs, axes_, out, /, axes, sizes):
        (x, start), (ax, ast) = inputs, axes_
        size = _batch_size(inputs, axes_)
        if ast is None or not axes:
            if ax is None:   # only a start for no axis is batched: nothing depends on it
                return slice(x, mx.zeros((0,), mx.int32), (), sizes), None
            if ast is not None:
                start = mx.zeros((0,), mx.int32)
            xb = _batch_first(x, ax)
            return slice(xb, start, tuple(a + 1 for a in axes), (size,) + tuple(sizes)), 0
        coords = _per_example_slices(size, _batch_first(start, ast), axes, sizes)
        if ax is None:
            return getitem(x, tuple(coords)), 0
        ar = mx.reshape(mx.arange(size, dtype=mx.int32), (size,) + (1,) * len(sizes))
        return getitem(_batch_first(x, ax), (ar, *coords)), 0

    DYNAMIC_SLICE.vjp = dynamic_slice_vjp
    DYNAMIC_SLICE.jvp = lambda primals, tangents, out, /, axes, sizes: slice(
        tangents[0], primals[1], axes, sizes)
    DYNAMIC_SLICE.vmap = dynamic_slice_vmap

    def slice_update_vjp(primals, ct, out, /, axes, sizes):
        x, u, start = primals
        if not _inexact(out.dtype):
            return [None, None, None]
        gx = slice_update(ct, mx.zeros(sizes, ct.dtype), start, axes)
        gu = _sum_to(slice(ct, start, axes, sizes), u.shape) if _inexact(u.dtype) else None
        return [gx, gu, None]

    def slice_update_jvp(primals, tangents, out, /, axes, sizes):
        x, u, start = primals
        tx, tu, _ = tangents
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        tx = mx.zeros(x.shape, out.dtype) if tx is None else tx
        # (the update's shape sets the slice's extent on `axes`: a zero update is full size)
        tu = mx.zeros(sizes, out.dtype) if tu is None or not _inexact(u.dtype) else tu
        return slice_update(tx, tu, start, axes)

    def slice_update_vmap(inputs, axes_, out, /, axes, sizes):
        (x, u, start), (ax, au, ast) = inputs, axes_
        size = _batch_size(inputs, axes_)
        nd = len(sizes)
        xb = _batched(x, ax, size)
        ucore = _core_shape(u, au)
        upad = (1,) * (nd - len(ucore)) + ucore
        ub = _batch_first(u, au) if au is not None else u
        ub = mx.reshape(ub, (size if au is not None else 1,) + upad)
        if ast is None or not axes:
            if ast is not None:
                start = mx.zeros((0,), mx.int32)
            return slice_update(xb, ub, start, tuple(a + 1 for a in axes)), 0
        coords = _per_example_slices(size, _batch_first(start, ast), axes, sizes)
        ar = mx.reshape(mx.arange(size, dtype=mx.int32), (size,) + (1,) * nd)
        return setitem(xb, (ar, *coords), ub), 0

    SLICE_UPDATE.vjp = slice_update_vjp
    SLICE_UPDATE.jvp = slice_update_jvp
    SLICE_UPDATE.vmap = slice_update_vmap


# --- diagonal, diag, trace ---------------------------------------------------------------------
def _embed_diagonal(d, n1, n2, offset):
    """Matrices of shape (n1, n2) (after d's leading axes) holding the last axis of `d` on
    their diagonal at `offset`, zeros elsewhere (the transpose of np.diagonal)."""
    mx = _mx()
    length = d.shape[-1]
    if offset >= 0:
        mask = mx.eye(length, n2, offset, dtype=mx.bool_)
        m = mx.where(mask, mx.expand_dims(d, -1), 0)
        widths = [(0, 0)] * (m.ndim - 2) + [(0, n1 - length), (0, 0)]
    else:
        mask = mx.eye(n1, length, offset, dtype=mx.bool_)
        m = mx.where(mask, mx.expand_dims(d, -2), 0)
        widths = [(0, 0)] * (m.ndim - 1) + [(0, n2 - length)]
    if any(hi for _, hi in widths):
        m = mx.pad(m, widths)
    return m


def _diagonal_transpose(d, shape, offset, axis1, axis2):
    """The array of `shape` that is zero but for `d` on its diagonal (axis1, axis2)."""
    m = _embed_diagonal(d, shape[axis1], shape[axis2], offset)
    nd = len(shape)
    rest = iter(range(nd - 2))
    perm = [nd - 2 if i == axis1 else nd - 1 if i == axis2 else next(rest) for i in range(nd)]
    return _mx().transpose(m, perm)


def _install_diagonal_rules():
    mx = _mx()

    def diagonal_vjp(primals, ct, out, /, offset, axis1, axis2):
        x = primals[0]
        if not _inexact(x.dtype):
            return [None]
        return [_diagonal_transpose(ct, x.shape, offset, axis1, axis2)]

    DIAGONAL.vjp = diagonal_vjp
    DIAGONAL.jvp = lambda primals, tangents, out, /, offset, axis1, axis2: diagonal(
        tangents[0], offset, axis1, axis2)
    DIAGONAL.vmap = lambda inputs, axes, out, /, offset, axis1, axis2: (
        diagonal(_batch_first(inputs[0], axes[0]), offset, axis1 + 1, axis2 + 1), 0)

    DIAG_MATRIX.vjp = lambda primals, ct, out, /, k: [
        diagonal(ct, k) if _inexact(primals[0].dtype) else None]
    DIAG_MATRIX.jvp = lambda primals, tangents, out, /, k: diag(tangents[0], k)
    DIAG_MATRIX.vmap = lambda inputs, axes, out, /, k: (
        _embed_diagonal(_batch_first(inputs[0], axes[0]), out.shape[0], out.shape[1], k), 0)

    def trace_vjp(primals, ct, out, /, offset, axis1, axis2, dtype):
        x = primals[0]
        if not (_inexact(x.dtype) and _inexact(out.dtype)):
            return [None]
        n1, n2 = x.shape[axis1], x.shape[axis2]
        length = max(0, min(n1, n2 - offset) if offset >= 0 else min(n1 + offset, n2))
        d = mx.broadcast_to(mx.expand_dims(ct, -1), ct.shape + (length,))
        return [_diagonal_transpose(d, x.shape, offset, axis1, axis2)]

    def trace_jvp(primals, tangents, out, /, offset, axis1, axis2, dtype):
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        return trace(tangents[0], offset, axis1, axis2, dtype)

    TRACE.vjp = trace_vjp
    TRACE.jvp = trace_jvp
    TRACE.vmap = lambda inputs, axes, out, /, offset, axis1, axis2, dtype: (
        trace(_batch_first(inputs[0], axes[0]), offset, axis1 + 1, axis2 + 1, dtype), 0)


def _zero_for_integers(rule):
    """A jvp that gives integer outputs a zero tangent (their vjps give no gradient)."""
    def jvp_rule(primals, tangents, out, /, **params):
        if not _inexact(out.dtype):
            return _mx().zeros(out.shape, out.dtype)
        return rule(primals, tangents, out, **params)
    return jvp_rule


def install_rules():
    """Set vjp, jvp and vmap on every primitive of this module (called by mx.core)."""
    _install_index_rules()
    _install_take_rules()
    _install_slice_rules()
    _install_diagonal_rules()
    for prim in (INDEX, GATHER, TAKE, TAKE_ALONG_AXIS, DYNAMIC_SLICE, DIAGONAL, DIAG_MATRIX):
        prim.jvp = _zero_for_integers(prim.jvp)
