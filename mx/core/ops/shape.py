"""Shape ops: reshaping, axis permutation, broadcasting, joining and splitting, padding,
rolling, flipping, triangles and strided views.

Most ops lower to a handful of view primitives (reshape, transpose, broadcast_to, slice,
flip) whose kernels return NumPy views: arrays are immutable and the scheduler never
donates a buffer that has views on it, so sharing memory is safe and saves copies.
"""
from __future__ import annotations

import operator
from functools import reduce

import numpy as np

from mx.core._array import array, broadcast_shapes_pair, make_node, promote_types, shape_str
from mx.core.ops._util import as_array, check_shape, norm_axes, norm_axis, prod
from mx.core.ops.elementwise import astype
from mx.core.primitives import declare

# ---------------------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------------------


def _ints(seq, what: str, op: str) -> tuple:
    """An int or a sequence of ints as a tuple (negative values allowed)."""
    if isinstance(seq, array):
        seq = seq.tolist()
    if isinstance(seq, (list, tuple)):
        try:
            return tuple(operator.index(s) for s in seq)
        except TypeError:
            raise TypeError(f"[{op}] {what} must be a sequence of integers, got {seq!r}.") from None
    try:
        return (operator.index(seq),)
    except TypeError:
        raise TypeError(f"[{op}] {what} must be an int or a sequence of ints, got {seq!r}.") from None


def _int(x, what: str, op: str) -> int:
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"[{op}] {what} must be an integer, got {type(x).__name__}.") from None


def _array_list(arrays, op: str) -> list:
    if isinstance(arrays, array) or not isinstance(arrays, (list, tuple)):
        raise TypeError(f"[{op}] Expected a list or tuple of arrays, got {type(arrays).__name__}.")
    return [as_array(x, op) for x in arrays]


def _row_major_strides(shape) -> tuple:
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


# ---------------------------------------------------------------------------------------
# view primitives
# ---------------------------------------------------------------------------------------
def _reshape_kernel(x, shape):
    return x.reshape(shape)


def _transpose_kernel(x, axes):
    return x.transpose(axes)


def _broadcast_kernel(x, shape):
    return np.broadcast_to(x, shape)


def _slice_kernel(x, index):
    return x[index]


def _flip_kernel(x, axes):
    return np.flip(x, axes)


RESHAPE = declare("reshape", cpu=_reshape_kernel, doc="same elements, new shape")
TRANSPOSE = declare("transpose", cpu=_transpose_kernel, doc="permute axes")
BROADCAST = declare("broadcast_to", cpu=_broadcast_kernel, doc="broadcast to a shape")
SLICE = declare("split_slice", cpu=_slice_kernel, doc="one piece of split or unstack")
FLIP = declare("flip", cpu=_flip_kernel, doc="reverse along axes")


def _reshape(x, shape, stream):
    return make_node(RESHAPE, (x,), {"shape": shape}, shape, x.dtype, stream)


def _transpose(x, axes, stream):
    shape = tuple(x.shape[i] for i in axes)
    return make_node(TRANSPOSE, (x,), {"axes": axes}, shape, x.dtype, stream)


def _slice(x, index, shape, stream):
    return make_node(SLICE, (x,), {"index": index}, shape, x.dtype, stream)


# ---------------------------------------------------------------------------------------
# reshaping
# ---------------------------------------------------------------------------------------
def _infer_shape(shape, size, op, describe):
    """Resolve one -1 in `shape` against `size`; `describe(shown)` words the mismatch."""
    if shape.count(-1) > 1:
        raise ValueError(f"[{op}] Can only infer one dimension." if op == "unflatten"
                         else f"[{op}] Reshape can only infer one dimension.")
    if any(s < -1 for s in shape):
        raise ValueError(describe(shape))
    if -1 not in shape:
        if prod(shape) != size:
            raise ValueError(describe(shape))
        return shape
    known = prod(s for s in shape if s != -1)
    if known == 0:
        # 0 * n == 0 for every n: the missing size is not determined
        what = "an empty axis" if op == "unflatten" else "an empty array"
        raise ValueError(f"[{op}] Cannot infer the shape of {what}.")
    inferred = tuple(size // known if s == -1 else s for s in shape)
    if known * (size // known) != size:
        raise ValueError(describe(inferred))
    return inferred


def reshape(a, /, shape, *, stream=None):
    """The elements of `a` in row-major order laid out in `shape`; one entry may be -1,
    in which case it is inferred from the size of `a`."""
    x = as_array(a, "reshape")
    shape = _ints(shape, "shape", "reshape")
    shape = _infer_shape(
        shape, x.size, "reshape",
        lambda s: f"[reshape] Cannot reshape array of size {x.size} into shape {shape_str(s)}.")
    return _reshape(x, shape, stream)


def flatten(a, /, start_axis=0, end_axis=-1, *, stream=None):
    """Merge the axes from `start_axis` to `end_axis` (inclusive) into one. Negative axes
    count from the end; axes past either end are clamped to the array's range."""
    x = as_array(a, "flatten")
    start = _int(start_axis, "start_axis", "flatten")
    end = _int(end_axis, "end_axis", "flatten")
    nd = x.ndim
    if nd == 0:
        return _reshape(x, (1,), stream)
    start = max(start + nd if start < 0 else start, 0)
    end = min(end + nd if end < 0 else end, nd - 1)
    if start > end:
        raise ValueError("[flatten] start_axis must be less than or equal to end_axis; got "
                         f"start_axis={start_axis} and end_axis={end_axis} for an array with "
                         f"{nd} dimensions.")
    s = x.shape
    return _reshape(x, s[:start] + (prod(s[start:end + 1]),) + s[end + 1:], stream)


def unflatten(a, /, axis, shape, *, stream=None):
    """Split axis `axis` of `a` into the axes `shape` (one entry may be -1)."""
    x = as_array(a, "unflatten")
    ax = norm_axis(axis, x.ndim, "unflatten")
    shape = _ints(shape, "shape", "unflatten")
    if not shape:
        raise ValueError("[unflatten] Shape to unflatten to cannot be empty.")
    n = x.shape[ax]
    shape = _infer_shape(
        shape, n, "unflatten",
        lambda s: f"[unflatten] Cannot unflatten axis {ax} with size {n} into shape {shape_str(s)}.")
    return _reshape(x, x.shape[:ax] + shape + x.shape[ax + 1:], stream)


def squeeze(a, /, axis=None, *, stream=None):
    """`a` without its size-1 axes, or without the axes in `axis` (which must be size 1)."""
    x = as_array(a, "squeeze")
    if axis is None:
        drop = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        drop = set(norm_axes(axis, x.ndim, "squeeze"))
        for i in sorted(drop):
            if x.shape[i] != 1:
                raise ValueError(f"[squeeze] Cannot squeeze axis {i} with size {x.shape[i]} "
                                 "which is not equal to 1.")
    return _reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in drop), stream)


def expand_dims(a, /, axis, *, stream=None):
    """`a` with size-1 axes inserted at the positions `axis` of the result."""
    x = as_array(a, "expand_dims")
    naxes = len(axis) if isinstance(axis, (list, tuple)) else 1
    axes = norm_axes(axis, x.ndim + naxes, "expand_dims")
    shape = list(x.shape)
    for ax in axes:
        shape.insert(ax, 1)
    return _reshape(x, tuple(shape), stream)


def atleast_1d(*arys, stream=None):
    """Each input with at least one dimension (0-d becomes shape (1,)). One input gives
    an array, several a list."""
    return _atleast(arys, 1, stream)


def atleast_2d(*arys, stream=None):
    """Each input with at least two dimensions ((N,) becomes (1, N)). One input gives an
    array, several a list."""
    return _atleast(arys, 2, stream)


def atleast_3d(*arys, stream=None):
    """Each input with at least three dimensions ((N,) becomes (1, N, 1) and (M, N)
    becomes (M, N, 1), as in NumPy). One input gives an array, several a list."""
    return _atleast(arys, 3, stream)


def _atleast(arys, n, stream):
    op = f"atleast_{n}d"
    outs = []
    for a in arys:
        x = as_array(a, op)
        s = x.shape
        if len(s) < n:
            if n == 3 and len(s) == 2:
                s = s + (1,)
            elif n == 3:
                s = (1,) + (s or (1,)) + (1,)
            else:
                s = (1,) * (n - len(s)) + s
        outs.append(_reshape(x, s, stream))
    return outs[0] if len(outs) == 1 else outs


# ---------------------------------------------------------------------------------------
# axis permutations
# ---------------------------------------------------------------------------------------
def transpose(a, /, axes=None, *, stream=None):
    """`a` with its axes permuted: output axis i is input axis axes[i]; reversed when
    `axes` is None."""
    x = as_array(a, "transpose")
    nd = x.ndim
    if axes is None:
        perm = tuple(range(nd - 1, -1, -1))
    else:
        axes = _ints(axes, "axes", "transpose")
        if len(axes) != nd:
            raise ValueError(f"[transpose] Received {len(axes)} axes for array with {nd} "
                             "dimensions.")
        perm = tuple(norm_axis(i, nd, "transpose") for i in axes)
        if len(set(perm)) != nd:
            raise ValueError(f"[transpose] Repeat axes not allowed; got axes {axes}.")
    return _transpose(x, perm, stream)


permute_dims = transpose


def swapaxes(a, /, axis1, axis2, *, stream=None):
    """`a` with axes `axis1` and `axis2` exchanged."""
    x = as_array(a, "swapaxes")
    i = norm_axis(axis1, x.ndim, "swapaxes")
    j = norm_axis(axis2, x.ndim, "swapaxes")
    perm = list(range(x.ndim))
    perm[i], perm[j] = j, i
    return _transpose(x, tuple(perm), stream)


def moveaxis(a, /, source, destination, *, stream=None):
    """`a` with axis `source` moved to position `destination`, the others keeping their
    order."""
    x = as_array(a, "moveaxis")
    src = norm_axis(source, x.ndim, "moveaxis")
    dst = norm_axis(destination, x.ndim, "moveaxis")
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    return _transpose(x, tuple(perm), stream)


# ---------------------------------------------------------------------------------------
# broadcasting
# ---------------------------------------------------------------------------------------
def broadcast_shapes(*shapes):
    """The shape that arrays of the given shapes broadcast to (NumPy's rules)."""
    if not shapes:
        raise ValueError("[broadcast_shapes] Must provide at least one shape.")
    shapes = [check_shape(s, "broadcast_shapes") for s in shapes]
    return reduce(lambda s, t: broadcast_shapes_pair(s, t, "broadcast_shapes"), shapes)


def broadcast_to(a, /, shape, *, stream=None):
    """`a` (an array or a scalar) broadcast to `shape`."""
    x = as_array(a, "broadcast_to")
    shape = check_shape(shape, "broadcast_to")
    try:
        ok = broadcast_shapes_pair(x.shape, shape, "broadcast_to") == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"[broadcast_to] Cannot broadcast array of shape {shape_str(x.shape)} "
                         f"into shape {shape_str(shape)}.")
    return make_node(BROADCAST, (x,), {"shape": shape}, shape, x.dtype, stream)


def broadcast_arrays(*arrays, stream=None):
    """The inputs broadcast against one another, as a list."""
    xs = [as_array(a, "broadcast_arrays") for a in arrays]
    if not xs:
        return []
    shape = reduce(lambda s, t: broadcast_shapes_pair(s, t, "broadcast_arrays"),
                   [x.shape for x in xs])
    return [make_node(BROADCAST, (x,), {"shape": shape}, shape, x.dtype, stream) for x in xs]


# ---------------------------------------------------------------------------------------
# joining and splitting
# ---------------------------------------------------------------------------------------
def _concat_kernel(*xs, axis):
    return np.concatenate(xs, axis=axis)


def _stack_kernel(*xs, axis):
    return np.stack(xs, axis=axis)


CONCATENATE = declare("concatenate", cpu=_concat_kernel, doc="join along an existing axis")
STACK = declare("stack", cpu=_stack_kernel, doc="join along a new axis")


def _common_dtype(xs, stream):
    """The inputs cast to their promoted dtype."""
    dt = reduce(promote_types, [x.dtype for x in xs])
    return [astype(x, dt, stream=stream) for x in xs], dt


def concatenate(arrays, axis=0, *, stream=None):
    """The arrays joined along an existing axis (flattened first when `axis` is None);
    all other dimensions must match. Dtypes are promoted."""
    xs = _array_list(arrays, "concatenate")
    if not xs:
        raise ValueError("[concatenate] No arrays provided for concatenation.")
    if axis is None:
        xs = [_reshape(x, (x.size,), stream) for x in xs]
        axis = 0
    nd = xs[0].ndim
    ax = norm_axis(axis, nd, "concatenate")
    for x in xs[1:]:
        if x.ndim != nd:
            raise ValueError("[concatenate] All the input arrays must have the same number of "
                             f"dimensions. However, got arrays with dimensions {nd} and {x.ndim}.")
    rest = xs[0].shape[:ax] + xs[0].shape[ax + 1:]
    if any(x.shape[:ax] + x.shape[ax + 1:] != rest for x in xs[1:]):
        shapes = ", ".join(shape_str(x.shape) for x in xs)
        raise ValueError("[concatenate] All the input array dimensions must match exactly except "
                         f"for the concatenation axis. However, the provided shapes are {shapes}, "
                         f"and the concatenation axis is {axis}.")
    shape = list(xs[0].shape)
    shape[ax] = sum(x.shape[ax] for x in xs)
    xs, dt = _common_dtype(xs, stream)
    return make_node(CONCATENATE, tuple(xs), {"axis": ax}, tuple(shape), dt, stream)


concat = concatenate


def stack(arrays, axis=0, *, stream=None):
    """The arrays (all of one shape) joined along a new axis at position `axis` of the
    result. Dtypes are promoted."""
    xs = _array_list(arrays, "stack")
    if not xs:
        raise ValueError("[stack] No arrays provided for stacking.")
    s0 = xs[0].shape
    for x in xs[1:]:
        if x.shape != s0:
            raise ValueError(f"[stack] All arrays must have the same shape; got {shape_str(s0)} "
                             f"and {shape_str(x.shape)}.")
    ax = norm_axis(0 if axis is None else axis, len(s0) + 1, "stack")
    xs, dt = _common_dtype(xs, stream)
    shape = s0[:ax] + (len(xs),) + s0[ax:]
    return make_node(STACK, tuple(xs), {"axis": ax}, shape, dt, stream)


def unstack(x, /, *, axis=0, stream=None):
    """The sub-arrays of `x` along `axis` (which they lack), as a tuple: the inverse of
    stack."""
    a = as_array(x, "unstack")
    ax = norm_axis(axis, a.ndim, "unstack")
    shape = a.shape[:ax] + a.shape[ax + 1:]
    lead = (slice(None),) * ax
    return tuple(_slice(a, lead + (i,), shape, stream) for i in range(a.shape[ax]))


def split(a, /, indices_or_sections, axis=0, *, stream=None):
    """Split `a` along `axis` into that many equal parts (an int, which must divide the
    axis) or at the given indices (a sequence; Python slicing rules apply). Returns a list."""
    x = as_array(a, "split")
    ax = norm_axis(axis, x.ndim, "split")
    n = x.shape[ax]
    if isinstance(indices_or_sections, (list, tuple)) or (
            isinstance(indices_or_sections, array) and indices_or_sections.ndim > 0):
        cuts = list(_ints(indices_or_sections, "indices_or_sections", "split"))
    else:
        k = _int(indices_or_sections, "indices_or_sections", "split")
        if k <= 0:
            raise ValueError(f"[split] num_splits must be positive and non-zero but got {k}.")
        if n % k:
            raise ValueError("[split] Array split does not result in sub arrays with equal size: "
                             f"attempting {k} splits along axis {ax} for shape {shape_str(x.shape)}.")
        cuts = list(range(n // k, n, n // k)) if n else [0] * (k - 1)
    bounds = [None] + cuts + [None]
    lead = (slice(None),) * ax
    outs = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        sl = slice(start, stop)
        shape = x.shape[:ax] + (len(range(*sl.indices(n))),) + x.shape[ax + 1:]
        outs.append(_slice(x, lead + (sl,), shape, stream))
    return outs


# ---------------------------------------------------------------------------------------
# repetition and padding
# ---------------------------------------------------------------------------------------
def _tile_kernel(x, reps):
    return np.tile(x, reps)


def _repeat_kernel(x, repeats, axis):
    return np.repeat(x, repeats, axis)


TILE = declare("tile", cpu=_tile_kernel, doc="repeat the whole array along each axis")
REPEAT = declare("repeat", cpu=_repeat_kernel, doc="repeat each element")


def tile(a, reps, /, *, stream=None):
    """`a` repeated reps[i] times along axis i (NumPy's rules: the shorter of a.shape and
    reps is padded with leading ones)."""
    x = as_array(a, "tile")
    reps = _ints(reps, "reps", "tile")
    if any(r < 0 for r in reps):
        raise ValueError(f"[tile] Negative repetitions are not allowed; got reps {reps}.")
    d = max(x.ndim, len(reps))
    s = (1,) * (d - x.ndim) + x.shape
    r = (1,) * (d - len(reps)) + reps
    shape = tuple(i * j for i, j in zip(s, r))
    return make_node(TILE, (x,), {"reps": r}, shape, x.dtype, stream)


def repeat(array, repeats, axis=None, *, stream=None):
    """Each element of `array` repeated `repeats` times along `axis` (of the flattened
    array when `axis` is None)."""
    x = as_array(array, "repeat")
    n = _int(repeats, "repeats", "repeat")
    if n < 0:
        raise ValueError(f"[repeat] Number of repeats cannot be negative; got {n}.")
    if axis is None:
        shape = (x.size * n,)
        ax = None
    else:
        ax = norm_axis(axis, x.ndim, "repeat")
        shape = x.shape[:ax] + (x.shape[ax] * n,) + x.shape[ax + 1:]
    return make_node(REPEAT, (x,), {"repeats": n, "axis": ax}, shape, x.dtype, stream)


_PAD_MODES = ("constant", "edge", "reflect", "symmetric")


def _pad_kernel(x, value, pad_width, mode):
    if x.ndim == 0:
        return x  # nothing to pad (np.pad refuses an empty pad_width)
    if mode == "constant":
        return np.pad(x, pad_width, mode="constant", constant_values=value[()])
    if x.size == 0:
        # edge padding of an empty axis: nothing to copy, MLX gives zeros
        out = [d + lo + hi for d, (lo, hi) in zip(x.shape, pad_width)]
        return np.zeros(out, x.dtype)
    return np.pad(x, pad_width, mode=mode)


PAD = declare("pad", cpu=_pad_kernel, doc="pad the edges of each axis")


def _pad_widths(pad_width, ndim) -> tuple:
    """pad_width as one (low, high) pair per axis."""
    def pair(p):
        if isinstance(p, (list, tuple)) and len(p) == 2:
            return (_int(p[0], "pad_width", "pad"), _int(p[1], "pad_width", "pad"))
        raise TypeError("[pad] pad_width must be an int, a pair of ints or a sequence of "
                        f"(low, high) pairs, got {pad_width!r}.")

    if not isinstance(pad_width, (list, tuple)):
        w = _int(pad_width, "pad_width", "pad")
        return ((w, w),) * ndim
    if pad_width and all(not isinstance(p, (list, tuple)) for p in pad_width):
        if len(pad_width) == 1:
            w = _int(pad_width[0], "pad_width", "pad")
            return ((w, w),) * ndim
        return (pair(pad_width),) * ndim
    pairs = [pair(p) for p in pad_width]
    if len(pairs) == 1:
        return (pairs[0],) * ndim
    if len(pairs) != ndim:
        raise ValueError(f"[pad] Invalid number of padding sizes ({len(pairs)}) passed to pad "
                         f"with axes of size {ndim}.")
    return tuple(pairs)


def pad(a, pad_width, mode="constant", constant_values=0, *, stream=None):
    """`a` with pad_width[i] = (low, high) elements added before and after axis i.

    pad_width may be an int (the same on every side), a pair (the same for every axis) or
    one pair per axis. Modes: "constant" (constant_values, cast to a's dtype), "edge" (the
    edge values), "reflect" (mirrored without the edge) and "symmetric" (mirrored with it).
    """
    x = as_array(a, "pad")
    widths = _pad_widths(pad_width, x.ndim)
    for ax, (lo, hi) in enumerate(widths):
        for side, w in (("low", lo), ("high", hi)):
            if w < 0:
                raise ValueError(f"[pad] Invalid {side} padding size ({w}) passed to pad for "
                                 f"axis {ax}. Padding sizes must be non-negative.")
    if mode not in _PAD_MODES:
        raise ValueError(f"[pad] Invalid padding mode ({mode}) passed to pad; expected one of "
                         f"{', '.join(_PAD_MODES)}.")
    if mode in ("reflect", "symmetric"):
        for ax, (d, (lo, hi)) in enumerate(zip(x.shape, widths)):
            if d == 0 and lo + hi > 0:
                raise ValueError(f"[pad] Cannot pad empty axis {ax} using mode '{mode}'.")
    value = as_array(constant_values, "pad")
    if value.size != 1:
        raise ValueError("[pad] constant_values must be a scalar or an array of one element; "
                         f"got shape {shape_str(value.shape)}.")
    value = _reshape(astype(value, x.dtype, stream=stream), (), stream)
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    return make_node(PAD, (x, value), {"pad_width": widths, "mode": mode}, shape, x.dtype,
                     stream)


# ---------------------------------------------------------------------------------------
# reordering and masking
# ---------------------------------------------------------------------------------------
def _roll_kernel(x, shift, axis):
    return np.roll(x, shift, axis)


ROLL = declare("roll", cpu=_roll_kernel, doc="rotate elements along axes")


def roll(a, shift, axis=None, *, stream=None):
    """Rotate the elements of `a` by `shift` places along `axis` (of the flattened array,
    shape restored, when `axis` is None). With several axes, `shift` is one int for all
    of them or one per axis."""
    x = as_array(a, "roll")
    shifts = _ints(shift, "shift", "roll")
    if axis is None or not isinstance(axis, (list, tuple)):
        # one axis (or the flattened array): the shifts add up
        total = sum(shifts)
        if axis is None:
            return make_node(ROLL, (x,), {"shift": total, "axis": None}, x.shape, x.dtype, stream)
        axes = (norm_axis(axis, x.ndim, "roll"),)
        shifts = (total,)
    else:
        axes = tuple(norm_axis(i, x.ndim, "roll") for i in axis)
        if not isinstance(shift, (list, tuple)):
            shifts = shifts * len(axes)
        elif len(shifts) < len(axes):
            raise ValueError(f"[roll] At least one shift value per axis is required, "
                             f"{len(shifts)} provided for {len(axes)} axes.")
        shifts = shifts[:len(axes)]
    return make_node(ROLL, (x,), {"shift": shifts, "axis": axes}, x.shape, x.dtype, stream)


def flip(a, /, axis=None, *, stream=None):
    """`a` with the order of its elements reversed along `axis` (all axes when None)."""
    x = as_array(a, "flip")
    axes = tuple(sorted(set(norm_axes(axis, x.ndim, "flip", allow_repeat=True))))
    return make_node(FLIP, (x,), {"axes": axes}, x.shape, x.dtype, stream)


def _tril_kernel(x, k):
    return np.tril(x, k)


def _triu_kernel(x, k):
    return np.triu(x, k)


TRIL = declare("tril", cpu=_tril_kernel, doc="zero above a diagonal")
TRIU = declare("triu", cpu=_triu_kernel, doc="zero below a diagonal")


def _triangle(prim, x, k, stream):
    x = as_array(x, prim.name)
    if x.ndim < 2:
        raise ValueError(f"[{prim.name}] array must be at least 2-D; got shape {shape_str(x.shape)}.")
    return make_node(prim, (x,), {"k": _int(k, "k", prim.name)}, x.shape, x.dtype, stream)


def tril(x, k=0, *, stream=None):
    """`x` with the elements above the k-th diagonal of its last two axes set to zero."""
    return _triangle(TRIL, x, k, stream)


def triu(x, k=0, *, stream=None):
    """`x` with the elements below the k-th diagonal of its last two axes set to zero."""
    return _triangle(TRIU, x, k, stream)


def _diff_kernel(x, n, axis):
    return np.diff(x, n, axis)


DIFF = declare("diff", cpu=_diff_kernel, doc="n-th discrete difference")


def diff(a, /, n=1, axis=-1, *, stream=None):
    """The n-th discrete difference along `axis` (a[i+1] - a[i], applied n times; for
    bool arrays a[i+1] != a[i]). The result keeps a's dtype."""
    x = as_array(a, "diff")
    n = _int(n, "n", "diff")
    if n < 0:
        raise ValueError(f"[diff] Order `n` must be non-negative; got {n}.")
    ax = norm_axis(axis, x.ndim, "diff")
    shape = x.shape[:ax] + (max(x.shape[ax] - n, 0),) + x.shape[ax + 1:]
    return make_node(DIFF, (x,), {"n": n, "axis": ax}, shape, x.dtype, stream)


# ---------------------------------------------------------------------------------------
# memory layout
# ---------------------------------------------------------------------------------------
def _as_strided_kernel(x, shape, strides, offset):
    flat = np.ascontiguousarray(x).reshape(-1)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[offset:], shape, [s * item for s in strides],
                                           writeable=False)


def _contiguous_kernel(x, allow_col_major):
    if allow_col_major and x.flags.f_contiguous:
        return x
    return np.ascontiguousarray(x)


AS_STRIDED = declare("as_strided", cpu=_as_strided_kernel, doc="strided view")
CONTIGUOUS = declare("contiguous", cpu=_contiguous_kernel, doc="row-contiguous copy")


def as_strided(a, /, shape=None, strides=None, offset=0, *, stream=None):
    """A view of the elements of `a` (read in row-major order, whatever its layout) with
    the given shape, strides (in elements, not bytes) and starting offset. Every element
    the view reaches must lie inside `a`."""
    x = as_array(a, "as_strided")
    shape = x.shape if shape is None else check_shape(shape, "as_strided")
    strides = _row_major_strides(shape) if strides is None else _ints(strides, "strides", "as_strided")
    offset = _int(offset, "offset", "as_strided")
    if len(strides) != len(shape):
        raise ValueError(f"[as_strided] shape {shape_str(shape)} and strides "
                         f"{shape_str(strides)} must have the same length.")
    if prod(shape) > 0:
        lo = offset + sum(min(0, (d - 1) * s) for d, s in zip(shape, strides))
        hi = offset + sum(max(0, (d - 1) * s) for d, s in zip(shape, strides))
        if lo < 0 or hi >= x.size:
            raise ValueError(f"[as_strided] A view of shape {shape_str(shape)} with strides "
                             f"{shape_str(strides)} and offset {offset} reaches elements "
                             f"[{lo}, {hi}], outside an array of size {x.size}.")
    params = {"shape": shape, "strides": strides, "offset": offset}
    return make_node(AS_STRIDED, (x,), params, shape, x.dtype, stream)


def contiguous(a, /, allow_col_major=False, *, stream=None):
    """`a` laid out row-contiguously in memory (column-major also accepted when
    `allow_col_major`); copies only when needed. Values are unchanged."""
    x = as_array(a, "contiguous")
    return make_node(CONTIGUOUS, (x,), {"allow_col_major": bool(allow_col_major)}, x.shape,
                     x.dtype, stream)


__all__ = [
    "as_strided", "atleast_1d", "atleast_2d", "atleast_3d", "broadcast_arrays",
    "broadcast_shapes", "broadcast_to", "concat", "concatenate", "contiguous", "diff",
    "expand_dims", "flatten", "flip", "moveaxis", "pad", "permute_dims", "repeat", "reshape",
    "roll", "split", "squeeze", "stack", "swapaxes", "tile", "transpose", "tril", "triu",
    "unflatten", "unstack",
]


# ---------------------------------------------------------------------------------------
# transformation rules (docs/transforms.md)
#
# Every primitive here is linear in its array input, so each jvp applies the primitive to
# the tangent with the same parameters, and each vjp applies the transposed linear map to
# the cotangent. Rules build their results from primitives of this module (and a few
# public mx ops), so they are differentiable and batchable again.
# ---------------------------------------------------------------------------------------
def _mx():
    import mx.core as mx
    return mx


def _strided_index(shape, strides, offset):
    """For each element of an as_strided view, the flat position it reads (int64, shaped
    like the view)."""
    idx = np.full((), offset, np.int64)
    nd = len(shape)
    for k, (d, s) in enumerate(zip(shape, strides)):
        idx = idx + (np.arange(d, dtype=np.int64) * s).reshape((d,) + (1,) * (nd - k - 1))
    return np.broadcast_to(idx, shape)


def _as_strided_add_kernel(ct, in_shape, shape, strides, offset):
    n = prod(in_shape)
    idx = _strided_index(shape, strides, offset).reshape(-1)
    vals = ct.reshape(-1)
    if ct.dtype.kind == "f":
        # bincount sums in float64, which is both fast and at least as precise
        out = np.bincount(idx, weights=vals, minlength=n).astype(ct.dtype)
    else:
        out = np.zeros(n, ct.dtype)
        np.add.at(out, idx, vals)
    return out.reshape(in_shape)


AS_STRIDED_ADD = declare("as_strided_add", cpu=_as_strided_add_kernel,
                         doc="add a strided view's values back into its source (as_strided's "
                             "transpose)")


def _as_strided_add(ct, in_shape, shape, strides, offset):
    params = {"in_shape": in_shape, "shape": shape, "strides": strides, "offset": offset}
    return make_node(AS_STRIDED_ADD, (ct,), params, in_shape, ct.dtype)


def _as_strided_node(x, shape, strides, offset):
    params = {"shape": shape, "strides": strides, "offset": offset}
    return make_node(AS_STRIDED, (x,), params, shape, x.dtype)


def _zero_pad(x, widths):
    """x padded with zeros (one (low, high) pair per axis)."""
    if all(lo == 0 and hi == 0 for lo, hi in widths):
        return x
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    zero = _mx().zeros((), x.dtype)
    return make_node(PAD, (x, zero), {"pad_width": tuple(widths), "mode": "constant"}, shape,
                     x.dtype)


def _pad_axis(x, axis, lo, hi):
    widths = [(0, 0)] * x.ndim
    widths[axis] = (lo, hi)
    return _zero_pad(x, widths)


def _take_range(x, axis, start, stop):
    """x[..., start:stop, ...] along `axis` (a split_slice node, itself differentiable)."""
    if start == 0 and stop == x.shape[axis]:
        return x
    index = (slice(None),) * axis + (slice(start, stop),)
    shape = x.shape[:axis] + (stop - start,) + x.shape[axis + 1:]
    return _slice(x, index, shape, None)


def _zeros_with_axis(x, axis, n):
    return _mx().zeros(x.shape[:axis] + (n,) + x.shape[axis + 1:], x.dtype)


def _place_strided(ct, axis, n, start, step, count):
    """Zeros of length n along `axis` with the entries of ct at start, start+step, ...
    (the transpose of reading x[start::step] along that axis)."""
    if count == 0:
        return _zeros_with_axis(ct, axis, n)
    if step < 0:
        # the same positions read in increasing order
        ct = flip(ct, axis)
        start, step = start + (count - 1) * step, -step
    if step > 1:
        # interleave step-1 zeros after each entry, then drop the trailing ones
        ct = expand_dims(ct, axis + 1)
        ct = _pad_axis(ct, axis + 1, 0, step - 1)
        ct = _reshape(ct, ct.shape[:axis] + (count * step,) + ct.shape[axis + 2:], None)
        ct = _take_range(ct, axis, 0, (count - 1) * step + 1)
    return _pad_axis(ct, axis, start, n - start - ct.shape[axis])


def _embed(ct, index, in_shape):
    """The transpose of basic indexing x[index]: zeros shaped like x holding ct where the
    index reads."""
    # left to right, restoring each indexed axis, so axis i of ct is axis i of x
    for i, item in enumerate(index):
        n = in_shape[i]
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            count = len(range(start, stop, step))
            if not (start == 0 and step == 1 and count == n):
                ct = _place_strided(ct, i, n, start, step, count)
        else:
            k = item + n if item < 0 else item
            ct = _pad_axis(expand_dims(ct, i), i, k, n - k - 1)
    return ct


def _pad_source(n, lo, hi, mode):
    """For each position along a padded axis, the index of x it copies (-1: the constant)."""
    if mode == "constant" or n == 0:
        idx = np.full(lo + n + hi, -1, np.int64)
        idx[lo:lo + n] = np.arange(n)
        return idx
    return np.pad(np.arange(n), (lo, hi), mode=mode)


def _runs(idx):
    """Split the copied positions into maximal runs whose source index moves by a constant
    step of -1, 0 or +1: (first, last, step) triples. A run of one repeated index (step 0,
    summed by the transpose) needs at least three positions, so that reflections, which
    repeat an index only twice, fold back without a reduction."""
    def step_at(q):
        return int(idx[q + 1] - idx[q]) if q + 1 < m and idx[q + 1] >= 0 else None

    runs, p, m = [], 0, len(idx)
    while p < m:
        if idx[p] < 0:
            p += 1
            continue
        q, d = p, None
        while step_at(q) is not None:
            step = step_at(q)
            if step not in (-1, 0, 1) or (d is not None and step != d):
                break
            if d is None and step == 0 and step_at(q + 1) != 0:
                break
            d, q = step, q + 1
        runs.append((p, q, 1 if d is None else d))
        p = q + 1
    return runs


def _pad_axis_transpose(ct, axis, idx, n):
    """Fold the cotangent of one padded axis back onto the n source positions."""
    total = None
    for p, q, d in _runs(idx):
        seg = _take_range(ct, axis, p, q + 1)
        if d == 0:
            seg = _mx().sum(seg, axis=axis, keepdims=True)
            first = int(idx[p])
        elif d < 0:
            seg = flip(seg, axis)
            first = int(idx[q])
        else:
            first = int(idx[p])
        seg = _pad_axis(seg, axis, first, n - first - seg.shape[axis])
        total = seg if total is None else total + seg
    return _zeros_with_axis(ct, axis, n) if total is None else total


def _batch_first(x, axis):
    from mx.core.transforms import move_batch_axis
    return move_batch_axis(x, axis, 0)


def _batch_size(inputs, axes):
    return next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)


def _batched_or_broadcast(x, axis, size):
    """x with a leading batch axis: moved there, or (unbatched) broadcast along it."""
    if axis is not None:
        return _batch_first(x, axis)
    return broadcast_to(expand_dims(x, 0), (size,) + x.shape)


def _same_op_jvp(prim):
    """jvp of a primitive linear in its only input: the primitive applied to the tangent."""
    def jvp_rule(primals, tangents, out, **params):
        t = tangents[0]
        return make_node(prim, (t,), params or None, out.shape, t.dtype)
    return jvp_rule


def _is_inexact(d):
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


# --- view primitives ---------------------------------------------------------------------
def _install_view_rules():
    from mx.core.transforms import unbroadcast

    RESHAPE.vjp = lambda primals, ct, out, shape: [_reshape(ct, primals[0].shape, None)]
    RESHAPE.vmap = lambda inputs, axes, out, shape: (
        _reshape(_batch_first(inputs[0], axes[0]), (inputs[0].shape[axes[0]],) + shape, None), 0)

    def transpose_vjp(primals, ct, out, axes):
        inverse = [0] * len(axes)
        for i, a in enumerate(axes):
            inverse[a] = i
        return [_transpose(ct, tuple(inverse), None)]

    TRANSPOSE.vjp = transpose_vjp
    TRANSPOSE.vmap = lambda inputs, axes_, out, axes: (
        _transpose(_batch_first(inputs[0], axes_[0]), (0,) + tuple(a + 1 for a in axes), None), 0)

    BROADCAST.vjp = lambda primals, ct, out, shape: [unbroadcast(ct, primals[0].shape)]

    def broadcast_vmap(inputs, axes, out, shape):
        x = _batch_first(inputs[0], axes[0])
        size = x.shape[0]
        # align the example's axes with the right end of the target shape
        x = _reshape(x, (size,) + (1,) * (len(shape) - (x.ndim - 1)) + x.shape[1:], None)
        return broadcast_to(x, (size,) + shape), 0

    BROADCAST.vmap = broadcast_vmap

    SLICE.vjp = lambda primals, ct, out, index: [_embed(ct, index, primals[0].shape)]

    def slice_vmap(inputs, axes, out, index):
        x = _batch_first(inputs[0], axes[0])
        return _slice(x, (slice(None),) + tuple(index), x.shape[:1] + out.shape, None), 0

    SLICE.vmap = slice_vmap

    FLIP.vjp = lambda primals, ct, out, axes: [flip(ct, axes) if axes else ct]
    FLIP.vmap = lambda inputs, axes_, out, axes: (
        make_node(FLIP, (_batch_first(inputs[0], axes_[0]),), {"axes": tuple(a + 1 for a in axes)},
                  inputs[0].shape[axes_[0]:axes_[0] + 1] + out.shape, out.dtype), 0)

    for prim in (RESHAPE, TRANSPOSE, BROADCAST, SLICE, FLIP):
        prim.jvp = _same_op_jvp(prim)


# --- joining -----------------------------------------------------------------------------
def _install_join_rules():
    def concat_vjp(primals, ct, out, axis):
        cuts, acc = [], 0
        for x in primals[:-1]:
            acc += x.shape[axis]
            cuts.append(acc)
        return split(ct, cuts, axis) if cuts else [ct]

    def join_jvp(prim):
        def jvp_rule(primals, tangents, out, axis):
            mx = _mx()
            ts = tuple(mx.zeros(p.shape, out.dtype) if t is None else t.astype(out.dtype)
                       for p, t in zip(primals, tangents))
            return make_node(prim, ts, {"axis": axis}, out.shape, out.dtype)
        return jvp_rule

    def join_vmap(prim):
        def vmap_rule(inputs, axes, out, axis):
            size = _batch_size(inputs, axes)
            xs = tuple(_batched_or_broadcast(x, a, size) for x, a in zip(inputs, axes))
            return make_node(prim, xs, {"axis": axis + 1}, (size,) + out.shape, out.dtype), 0
        return vmap_rule

    CONCATENATE.vjp = concat_vjp
    STACK.vjp = lambda primals, ct, out, axis: list(unstack(ct, axis=axis))
    for prim in (CONCATENATE, STACK):
        prim.jvp = join_jvp(prim)
        prim.vmap = join_vmap(prim)


# --- repetition and padding --------------------------------------------------------------
def _install_repeat_rules():
    mx = _mx()

    def tile_vjp(primals, ct, out, reps):
        x = primals[0]
        s = (1,) * (len(reps) - x.ndim) + x.shape
        # out axis i is (reps[i], s[i]) row-major: sum over the repetition halves
        split_shape = tuple(v for r, d in zip(reps, s) for v in (r, d))
        summed = mx.sum(_reshape(ct, split_shape, None), axis=tuple(range(0, 2 * len(s), 2)))
        return [_reshape(summed, x.shape, None)]

    def tile_vmap(inputs, axes, out, reps):
        x = _batch_first(inputs[0], axes[0])
        core = x.shape[1:]
        x = _reshape(x, x.shape[:1] + (1,) * (len(reps) - len(core)) + core, None)
        return make_node(TILE, (x,), {"reps": (1,) + tuple(reps)}, x.shape[:1] + out.shape,
                         out.dtype), 0

    TILE.vjp = tile_vjp
    TILE.vmap = tile_vmap

    def repeat_vjp(primals, ct, out, repeats, axis):
        x = primals[0]
        if axis is None:
            summed = mx.sum(_reshape(ct, (x.size, repeats), None), axis=1)
            return [_reshape(summed, x.shape, None)]
        shape = x.shape[:axis] + (x.shape[axis], repeats) + x.shape[axis + 1:]
        return [mx.sum(_reshape(ct, shape, None), axis=axis + 1)]

    def repeat_vmap(inputs, axes, out, repeats, axis):
        x = _batch_first(inputs[0], axes[0])
        size = x.shape[0]
        if axis is None:
            x = _reshape(x, (size, prod(x.shape[1:])), None)
            axis = 0
        return make_node(REPEAT, (x,), {"repeats": repeats, "axis": axis + 1},
                         (size,) + out.shape, out.dtype), 0

    REPEAT.vjp = repeat_vjp
    REPEAT.vmap = repeat_vmap
    for prim in (TILE, REPEAT):
        prim.jvp = _same_op_jvp(prim)
    _install_pad_rules()


def _install_pad_rules():
    mx = _mx()

    def pad_vjp(primals, ct, out, pad_width, mode):
        x, value = primals
        if x.ndim == 0:
            # a 0-d array is returned as it is
            return [ct, mx.zeros((), value.dtype) if _is_inexact(value.dtype) else None]
        if x.size == 0:
            gx = mx.zeros(x.shape, ct.dtype)
        else:
            gx = ct
            for axis, (n, (lo, hi)) in enumerate(zip(x.shape, pad_width)):
                if lo or hi:
                    gx = _pad_axis_transpose(gx, axis, _pad_source(n, lo, hi, mode), n)
        if mode != "constant" or not _is_inexact(value.dtype):
            return [gx, None]
        # the constant fills every position that is not a copy of x
        return [gx, mx.sum(ct) - mx.sum(gx)]

    def pad_jvp(primals, tangents, out, pad_width, mode):
        x, value = primals
        tx, tv = tangents
        tx = mx.zeros(x.shape, out.dtype) if tx is None else tx
        tv = mx.zeros((), out.dtype) if tv is None else tv
        return make_node(PAD, (tx, tv), {"pad_width": pad_width, "mode": mode}, out.shape,
                         out.dtype)

    def pad_vmap(inputs, axes, out, pad_width, mode):
        (x, value), (ax, av) = inputs, axes
        size = _batch_size(inputs, axes)
        x = _batched_or_broadcast(x, ax, size)
        params = {"pad_width": ((0, 0),) + tuple(pad_width), "mode": mode}
        shape = (size,) + out.shape
        if av is None:
            return make_node(PAD, (x, value), params, shape, out.dtype), 0
        padded = make_node(PAD, (x, mx.zeros((), out.dtype)), params, shape, out.dtype)
        if mode != "constant":
            return padded, 0
        # a constant per example: fill the positions that hold no copy of x
        core = x.shape[1:]
        inside = np.pad(np.ones(core, bool), pad_width, constant_values=False) if core else \
            np.ones((), bool)
        fill = _reshape(_batch_first(value, av), (size,) + (1,) * len(core), None)
        return mx.where(array(inside), padded, fill), 0

    PAD.vjp = pad_vjp
    PAD.jvp = pad_jvp
    PAD.vmap = pad_vmap


# --- reordering, masking, differences, layout ---------------------------------------------
def _install_misc_rules():
    def roll_vjp(primals, ct, out, shift, axis):
        back = -shift if axis is None else tuple(-s for s in shift)
        return [make_node(ROLL, (ct,), {"shift": back, "axis": axis}, ct.shape, ct.dtype)]

    def roll_vmap(inputs, axes, out, shift, axis):
        x = _batch_first(inputs[0], axes[0])
        size = x.shape[0]
        if axis is None:
            flat = _reshape(x, (size, prod(out.shape)), None)
            rolled = make_node(ROLL, (flat,), {"shift": (shift,), "axis": (1,)}, flat.shape,
                               flat.dtype)
            return _reshape(rolled, x.shape, None), 0
        params = {"shift": shift, "axis": tuple(a + 1 for a in axis)}
        return make_node(ROLL, (x,), params, x.shape, x.dtype), 0

    ROLL.vjp = roll_vjp
    ROLL.vmap = roll_vmap

    for prim in (TRIL, TRIU):
        prim.vjp = lambda primals, ct, out, k, _p=prim: [
            make_node(_p, (ct,), {"k": k}, ct.shape, ct.dtype)]
        # the triangle is taken over the last two axes, which a leading batch axis keeps
        prim.vmap = lambda inputs, axes, out, k, _p=prim: (
            make_node(_p, (_batch_first(inputs[0], axes[0]),), {"k": k},
                      inputs[0].shape[axes[0]:axes[0] + 1] + out.shape, out.dtype), 0)

    def diff_vjp(primals, ct, out, n, axis):
        x = primals[0]
        if not _is_inexact(x.dtype):
            return [None]  # bool diff is "not equal": no gradient
        if n == 0:
            return [ct]
        if out.shape[axis] == 0:
            return [_mx().zeros(x.shape, ct.dtype)]
        # the transpose of one difference is minus the difference of the zero-padded
        # cotangent, so n of them are (-1)^n diff(pad(ct, n on both sides), n)
        padded = _pad_axis(ct, axis, n, n)
        res = make_node(DIFF, (padded,), {"n": n, "axis": axis}, x.shape, ct.dtype)
        return [-res if n % 2 else res]

    def diff_jvp(primals, tangents, out, n, axis):
        if not _is_inexact(out.dtype):
            return _mx().zeros(out.shape, out.dtype)
        t = tangents[0]
        return make_node(DIFF, (t,), {"n": n, "axis": axis}, out.shape, t.dtype)

    def diff_vmap(inputs, axes, out, n, axis):
        x = _batch_first(inputs[0], axes[0])
        return make_node(DIFF, (x,), {"n": n, "axis": axis + 1}, x.shape[:1] + out.shape,
                         out.dtype), 0

    DIFF.vjp = diff_vjp
    DIFF.jvp = diff_jvp
    DIFF.vmap = diff_vmap

    CONTIGUOUS.vjp = lambda primals, ct, out, allow_col_major: [ct]
    CONTIGUOUS.vmap = lambda inputs, axes, out, allow_col_major: (
        make_node(CONTIGUOUS, (inputs[0],), {"allow_col_major": allow_col_major},
                  inputs[0].shape, inputs[0].dtype), axes[0])
    for prim in (ROLL, TRIL, TRIU, CONTIGUOUS):
        prim.jvp = _same_op_jvp(prim)
    _install_strided_rules()


def _install_strided_rules():
    # as_strided reads flat positions of x; its transpose adds the cotangent back at those
    # positions, and the transpose of that is as_strided again
    AS_STRIDED.vjp = lambda primals, ct, out, shape, strides, offset: [
        _as_strided_add(ct, primals[0].shape, shape, strides, offset)]
    AS_STRIDED_ADD.vjp = lambda primals, ct, out, in_shape, shape, strides, offset: [
        _as_strided_node(ct, shape, strides, offset)]

    def as_strided_vmap(inputs, axes, out, shape, strides, offset):
        # with the batch axis first, example b starts at flat position b * (example size)
        x = _batch_first(inputs[0], axes[0])
        size, n = x.shape[0], prod(x.shape[1:])
        return _as_strided_node(x, (size,) + shape, (n,) + strides, offset), 0

    def as_strided_add_vmap(inputs, axes, out, in_shape, shape, strides, offset):
        ct = _batch_first(inputs[0], axes[0])
        size = ct.shape[0]
        return _as_strided_add(ct, (size,) + in_shape, (size,) + shape,
                               (prod(in_shape),) + strides, offset), 0

    AS_STRIDED.vmap = as_strided_vmap
    AS_STRIDED_ADD.vmap = as_strided_add_vmap
    for prim in (AS_STRIDED, AS_STRIDED_ADD):
        prim.jvp = _same_op_jvp(prim)


def install_rules():
    """Set vjp, jvp and vmap on every primitive of this module (called by mx.core)."""
    _install_view_rules()
    _install_join_rules()
    _install_repeat_rules()
    _install_misc_rules()
