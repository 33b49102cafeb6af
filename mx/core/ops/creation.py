"""Array creation: ranges, constant fills, identity-like matrices, coordinate grids and
window functions.

Most creation nodes have no inputs: their primitives build the NumPy result from static
params when the graph is evaluated. `full` with an array value and `meshgrid` take their
arrays as inputs and broadcast them in the kernel.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from mx.core._array import Dtype, array, broadcast_shapes_pair, make_node, shape_str
from mx.core.dtypes import bool_, complex64, float32, float64, int32, int64
from mx.core.ops._util import as_array, check_dtype, check_shape
from mx.core.ops.elementwise import astype
from mx.core.primitives import declare

_INT32_MAX = 2**31 - 1
_INT32_MIN = -2**31
# Dtype.kind codes (see _array.pyx)
_KIND_UINT, _KIND_INT, _KIND_FLOAT = 1, 2, 3


def _is_int(d: Dtype) -> bool:
    return d.kind == _KIND_INT or d.kind == _KIND_UINT


_INT_RANGE = {}


def _int_range(d: Dtype):
    """(min, max) of an integer dtype, cached (np.iinfo is slow on hot paths)."""
    r = _INT_RANGE.get(d.name)
    if r is None:
        info = np.iinfo(d.np)
        r = _INT_RANGE[d.name] = (int(info.min), int(info.max))
    return r


def _check_int_fits(val, d: Dtype, op):
    lo, hi = _int_range(d)
    if not lo <= val <= hi:
        raise ValueError(f"[{op}] Converting {val} to {d.name} would result in overflow.")


def _int_arg(x, name, op):
    """An integer argument (Python or NumPy int; bools and floats refused)."""
    if isinstance(x, (bool, np.bool_)) or isinstance(x, array):
        raise TypeError(f"[{op}] {name} must be an integer, got {type(x).__name__}.")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an integer, got {type(x).__name__}.") from None


def _dtype_or(dtype, default, op):
    return default if dtype is None else check_dtype(dtype, op)


# ---------------------------------------------------------------------------------------
# constant fills
# ---------------------------------------------------------------------------------------
def _zeros_kernel(shape, dtype):
    return np.zeros(shape, dtype.np)


def _ones_kernel(shape, dtype):
    return np.ones(shape, dtype.np)


def _full_kernel(shape, value, dtype):
    return np.full(shape, value, dtype.np)


def _broadcast_copy_kernel(x, shape):
    # a fresh contiguous buffer: broadcast views are read-only and alias their input
    return np.array(np.broadcast_to(x, shape), order="C")


ZEROS = declare("zeros", cpu=_zeros_kernel, doc="an array of zeros")
ONES = declare("ones", cpu=_ones_kernel, doc="an array of ones")
FULL = declare("full", cpu=_full_kernel, doc="an array filled with one scalar value")
FULL_ARRAY = declare("full_array", cpu=_broadcast_copy_kernel,
                     doc="an array filled by broadcasting another array")


def zeros(shape, dtype=float32, *, stream=None):
    """An array of the given shape (int or sequence of ints) filled with zeros."""
    shape = check_shape(shape, "zeros")
    dtype = _dtype_or(dtype, float32, "zeros")
    return make_node(ZEROS, (), {"shape": shape, "dtype": dtype}, shape, dtype, stream)


def ones(shape, dtype=float32, *, stream=None):
    """An array of the given shape (int or sequence of ints) filled with ones."""
    shape = check_shape(shape, "ones")
    dtype = _dtype_or(dtype, float32, "ones")
    return make_node(ONES, (), {"shape": shape, "dtype": dtype}, shape, dtype, stream)


def empty(shape, dtype=float32, *, stream=None):
    """An array of the given shape; as in MLX its contents are zeros (never garbage)."""
    shape = check_shape(shape, "empty")
    dtype = _dtype_or(dtype, float32, "empty")
    return make_node(ZEROS, (), {"shape": shape, "dtype": dtype}, shape, dtype, stream)


def _scalar_fill_dtype(val, dtype: Dtype | None, op: str) -> Dtype:
    """MLX's dtype for a Python scalar fill value given the requested dtype: a bool takes
    the dtype, an int takes it unless it is bool, a float only a real floating dtype, and
    a complex is always complex64."""
    if isinstance(val, bool):
        return bool_ if dtype is None else dtype
    if isinstance(val, int):
        if dtype is None:
            return int32 if _INT32_MIN <= val <= _INT32_MAX else int64
        if dtype is bool_:
            return int32
        if _is_int(dtype):
            _check_int_fits(val, dtype, op)
        return dtype
    if isinstance(val, float):
        return dtype if dtype is not None and dtype.kind == _KIND_FLOAT else float32
    return complex64


def _fill_value(val, dtype: Dtype):
    """`val` as a 0-d NumPy array of `dtype`, converted as C casts do (floats truncate,
    through int64 so that negative values wrap into unsigned types on every platform)."""
    if isinstance(val, complex) and dtype is not complex64:
        val = val.real
    return _float_to(np.asarray(val), dtype)


def _broadcast_into(vshape, shape, op):
    """Check that an array of shape `vshape` broadcasts to exactly `shape`."""
    ok = len(vshape) <= len(shape) and all(
        v == 1 or v == s for v, s in zip(vshape[::-1], shape[::-1]))
    if not ok:
        raise ValueError(f"[{op}] Cannot broadcast array of shape {shape_str(tuple(vshape))} "
                         f"into shape {shape_str(shape)}.")


def full(shape, vals, dtype=None, *, stream=None):
    """An array of the given shape filled with `vals`, a scalar or an array that
    broadcasts to `shape`.

    The dtype follows MLX: with a Python scalar the result takes `dtype` when the value's
    kind allows it (a float fill with an integer dtype stays float32); an mx array keeps
    its own dtype; other array-likes are converted to `dtype`.
    """
    shape = check_shape(shape, "full")
    if dtype is not None:
        check_dtype(dtype, "full")
    if isinstance(vals, (bool, int, float, complex)):
        d = _scalar_fill_dtype(vals, dtype, "full")
        params = {"shape": shape, "value": _fill_value(vals, d), "dtype": d}
        return make_node(FULL, (), params, shape, d, stream)
    if vals is None or isinstance(vals, str):
        raise TypeError(f"[full] vals must be a scalar or an array, got {type(vals).__name__}.")
    v = vals if isinstance(vals, array) else array(vals, dtype)
    _broadcast_into(v.shape, shape, "full")
    return make_node(FULL_ARRAY, (v,), {"shape": shape}, shape, v.dtype, stream)


def _like_source(a, op):
    if not isinstance(a, array):
        raise TypeError(f"[{op}] a must be an mx array, got {type(a).__name__}.")
    return a


def zeros_like(a, /, dtype=None, *, stream=None):
    """Zeros with the shape of `a` and its dtype unless `dtype` is given."""
    a = _like_source(a, "zeros_like")
    return zeros(a.shape, _dtype_or(dtype, a.dtype, "zeros_like"), stream=stream)


def ones_like(a, /, dtype=None, *, stream=None):
    """Ones with the shape of `a` and its dtype unless `dtype` is given."""
    a = _like_source(a, "ones_like")
    return ones(a.shape, _dtype_or(dtype, a.dtype, "ones_like"), stream=stream)


def full_like(a, vals, dtype=None, *, stream=None):
    """An array like `a` (its shape, and its dtype unless `dtype` is given) filled with
    `vals`; an array value is converted to that dtype and broadcast against `a`'s shape."""
    a = _like_source(a, "full_like")
    d = _dtype_or(dtype, a.dtype, "full_like")
    if isinstance(vals, (bool, int, float, complex)):
        if isinstance(vals, int) and not isinstance(vals, bool) and _is_int(d):
            _check_int_fits(vals, d, "full_like")
        params = {"shape": a.shape, "value": _fill_value(vals, d), "dtype": d}
        return make_node(FULL, (), params, a.shape, d, stream)
    if vals is None or isinstance(vals, str):
        raise TypeError(f"[full_like] vals must be a scalar or an array, got {type(vals).__name__}.")
    v = astype(as_array(vals, "full_like"), d, stream=stream)
    shape = broadcast_shapes_pair(a.shape, v.shape, "full_like")
    return make_node(FULL_ARRAY, (v,), {"shape": shape}, shape, d, stream)


# ---------------------------------------------------------------------------------------
# ranges
# ---------------------------------------------------------------------------------------
def _arange_kernel(start, step, size, dtype):
    if size == 0:
        return np.zeros(0, dtype.np)
    if isinstance(start, int):
        end = start + size * step
        if step != 0:
            lo, hi = _int_range(dtype)
            if lo <= min(start, end) and max(start, end) <= hi:
                return np.arange(start, end, step, dtype=dtype.np)
        # int64 arithmetic, then a wrapping cast (MLX's integer overflow behaviour)
        out = np.arange(size, dtype=np.int64)
        out *= step
        out += start
        return out.astype(dtype.np)
    if size == 1:  # an infinite step would turn 0 * step into nan
        return np.full(1, start, dtype.np)
    # start + i*step in double (complex for complex64), rounded once to the dtype
    wide = np.complex128 if isinstance(start, complex) else np.float64
    out = np.arange(size, dtype=wide)
    out *= step
    out += start
    return out.astype(dtype.np)


ARANGE = declare("arange", cpu=_arange_kernel, doc="evenly spaced values in [start, stop)")


def _range_value(x, name):
    """An arange bound as a Python int or float (NumPy scalars accepted)."""
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral) and not isinstance(x, array):
        return operator.index(x)
    if isinstance(x, numbers.Real) and not isinstance(x, array):
        return float(x)
    raise TypeError(f"[arange] {name} must be an int or a float, got {type(x).__name__}.")


def _arange_length(start, stop, step):
    """MLX's element count: ceil((stop - start) / step), exact for integers."""
    if all(isinstance(v, int) for v in (start, stop, step)):
        return max(-((start - stop) // step), 0)
    delta = stop - start
    if math.isinf(step) and math.isfinite(delta):
        # one element when the (infinite) step points the way from start to stop
        return 1 if delta != 0 and (delta > 0) == (step > 0) else 0
    real = delta / step
    if math.isnan(real) or math.isinf(real):
        raise ValueError("[arange] Cannot compute length.")
    return max(math.ceil(real), 0)


def _arange_dtype(values):
    if any(isinstance(v, float) for v in values):
        return float32
    if all(isinstance(v, bool) for v in values):
        return bool_
    if all(_INT32_MIN <= v <= _INT32_MAX for v in values):
        return int32
    return int64


def arange(start=None, stop=None, step=None, dtype=None, *, stream=None):
    """Values from `start` (default 0) up to but excluding `stop`, `step` apart
    (default 1).

    Called as ``arange(stop)`` or ``arange(start, stop, step)``. Without `dtype` the
    result is float32 if any argument is a float, else int32 (int64 when a value does not
    fit). As in MLX and NumPy the increment actually used is
    ``dtype(start + step) - dtype(start)``.
    """
    if stop is None:
        if start is None:
            raise TypeError("[arange] Missing the stop argument.")
        start, stop = None, start
    # the default dtype comes from the arguments actually passed
    given = [_range_value(v, name) for v, name in ((start, "start"), (stop, "stop"), (step, "step"))
             if v is not None]
    start = 0 if start is None else _range_value(start, "start")
    stop = _range_value(stop, "stop")
    step = 1 if step is None else _range_value(step, "step")
    dtype = _arange_dtype(given) if dtype is None else check_dtype(dtype, "arange")
    if dtype is bool_:
        raise ValueError("[arange] bool not supported for arange.")
    if step == 0:
        raise ValueError("[arange] step must be nonzero.")
    for v in given:
        if isinstance(v, int) and not -2**63 <= v < 2**63:
            raise OverflowError(f"[arange] {v} does not fit in a 64-bit integer.")
    size = _arange_length(start, stop, step)
    if size > _INT32_MAX:
        raise ValueError("[arange] Maximum size exceeded.")
    first, incr = _arange_start_step(start, step, dtype)
    params = {"start": first, "step": incr, "size": size, "dtype": dtype}
    return make_node(ARANGE, (), params, (size,), dtype, stream)


def _arange_start_step(start, step, dtype):
    """The first value and the increment dtype(start + step) - dtype(start), both as
    Python numbers carrying the dtype's rounding."""
    if _is_int(dtype):
        # C's float-to-int conversion truncates toward zero
        s0 = math.trunc(start)
        return s0, math.trunc(start + step) - s0
    npd = dtype.np
    with np.errstate(all="ignore"):
        s0 = np.asarray(start).astype(npd)
        incr = (np.asarray(start + step).astype(npd) - s0).astype(npd)
    if dtype is complex64:
        return complex(s0), complex(incr)
    return float(s0), float(incr)


def _linspace_kernel(start, stop, num, endpoint, dtype):
    # MLX interpolates t in [0, 1] as (1 - t) * start + t * stop, in float32 unless
    # the output is float64
    cdt = np.float64 if dtype is float64 else np.float32
    t = np.arange(num, dtype=cdt)
    div = num - 1 if endpoint else num
    if div > 0:
        t /= cdt(div)
    out = (cdt(1) - t) * cdt(start)
    out += t * cdt(stop)
    return _float_to(out, dtype)


def _float_to(x, dtype):
    """Cast `x` to `dtype`, converting floats through int64 for integer dtypes so that
    negative values wrap into unsigned types as C casts do."""
    with np.errstate(all="ignore"):
        if _is_int(dtype) and x.dtype.kind == "f":
            return x.astype(np.int64).astype(dtype.np)
        return x.astype(dtype.np)


LINSPACE = declare("linspace", cpu=_linspace_kernel, doc="evenly spaced values in [start, stop]")


def _real_scalar(x, name, op):
    if isinstance(x, array):
        if x.size != 1 or x.dtype is complex64:
            raise TypeError(f"[{op}] {name} must be a real scalar, got an array of shape "
                            f"{shape_str(x.shape)} and dtype {x.dtype.name}.")
        return float(x.item())
    if isinstance(x, numbers.Real):
        return float(x)
    raise TypeError(f"[{op}] {name} must be a real scalar, got {type(x).__name__}.")


def linspace(start, stop, num=50, endpoint=True, dtype=float32, stream=None):
    """`num` evenly spaced values from `start` to `stop` (`stop` included unless
    `endpoint` is False)."""
    start = _real_scalar(start, "start", "linspace")
    stop = _real_scalar(stop, "stop", "linspace")
    num = _int_arg(num, "num", "linspace")
    if num < 0:
        raise ValueError(f"[linspace] number of samples, {num}, must be non-negative.")
    dtype = _dtype_or(dtype, float32, "linspace")
    params = {"start": start, "stop": stop, "num": num, "endpoint": bool(endpoint), "dtype": dtype}
    return make_node(LINSPACE, (), params, (num,), dtype, stream)


# ---------------------------------------------------------------------------------------
# matrices
# ---------------------------------------------------------------------------------------
def _eye_kernel(n, m, k, dtype):
    return np.eye(n, m, k, dtype=dtype.np)


def _tri_kernel(n, m, k, dtype):
    return np.tri(n, m, k, dtype=dtype.np)


EYE = declare("eye", cpu=_eye_kernel, doc="ones on the k-th diagonal")
TRI = declare("tri", cpu=_tri_kernel, doc="ones at and below the k-th diagonal")


def eye(n, m=None, k=0, dtype=float32, *, stream=None):
    """An n x m matrix (m defaults to n) with ones on the k-th diagonal and zeros
    elsewhere; k > 0 is above the main diagonal."""
    return _eye("eye", n, m, k, dtype, stream)


def identity(n, dtype=float32, *, stream=None):
    """The n x n identity matrix."""
    return _eye("identity", n, None, 0, dtype, stream)


def _eye(op, n, m, k, dtype, stream):
    n = _int_arg(n, "n", op)
    m = n if m is None else _int_arg(m, "m", op)
    k = _int_arg(k, "k", op)
    if n < 0 or m < 0:
        raise ValueError(f"[{op}] N and M must be non-negative integers; got N={n}, M={m}.")
    dtype = _dtype_or(dtype, float32, op)
    return make_node(EYE, (), {"n": n, "m": m, "k": k, "dtype": dtype}, (n, m), dtype, stream)


def tri(n, m=None, k=0, dtype=None, *, stream=None):
    """An n x m matrix (m defaults to n) with ones at and below the k-th diagonal.
    Negative sizes give an empty matrix, as in MLX."""
    n = max(_int_arg(n, "n", "tri"), 0)
    m = n if m is None else max(_int_arg(m, "m", "tri"), 0)
    k = _int_arg(k, "k", "tri")
    dtype = _dtype_or(dtype, float32, "tri")
    return make_node(TRI, (), {"n": n, "m": m, "k": k, "dtype": dtype}, (n, m), dtype, stream)


# ---------------------------------------------------------------------------------------
# coordinate grids
# ---------------------------------------------------------------------------------------
def _grid_kernel(x, view, shape):
    v = x.reshape(view)
    if view == shape:
        return v.copy()
    return np.array(np.broadcast_to(v, shape), order="C")


GRID = declare("meshgrid", cpu=_grid_kernel, doc="one coordinate array of a grid")


def meshgrid(*arrays, sparse=False, indexing="xy", stream=None):
    """Coordinate grids from 1-D coordinate arrays (other inputs are flattened).

    With ``indexing='xy'`` (Cartesian) the first two output axes are swapped relative to
    ``'ij'`` (matrix) indexing. With ``sparse=True`` each output keeps size 1 on every
    axis but its own instead of being broadcast to the full grid.
    """
    if not isinstance(sparse, (bool, np.bool_)):
        raise TypeError(f"[meshgrid] sparse must be a bool, got {type(sparse).__name__}.")
    if indexing not in ("xy", "ij"):
        raise ValueError("[meshgrid] Invalid indexing value. Valid values are 'xy' and 'ij'.")
    xs = [as_array(x, "meshgrid") for x in arrays]
    nd = len(xs)
    sizes = [x.size for x in xs]
    if indexing == "xy" and nd > 1:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    full_shape = tuple(sizes)
    out = []
    for i, x in enumerate(xs):
        axis = i
        if indexing == "xy" and nd > 1 and i < 2:
            axis = 1 - i
        view = tuple(x.size if j == axis else 1 for j in range(nd))
        shape = view if sparse else full_shape
        out.append(make_node(GRID, (x,), {"view": view, "shape": shape}, shape, x.dtype, stream))
    return tuple(out)


# ---------------------------------------------------------------------------------------
# windows
# ---------------------------------------------------------------------------------------
_WINDOWS = {"hanning": np.hanning, "hamming": np.hamming, "blackman": np.blackman,
            "bartlett": np.bartlett}


def _window_kernel(kind, M):
    return _WINDOWS[kind](M).astype(np.float32)


WINDOW = declare("window", cpu=_window_kernel, doc="a tapering window (float32)")


def _window(kind, M, stream):
    M = _int_arg(M, "M", kind)
    size = max(M, 0)
    return make_node(WINDOW, (), {"kind": kind, "M": size}, (size,), float32, stream)


def hanning(M, *, stream=None):
    """The Hanning window of M points, 0.5 - 0.5*cos(2*pi*n/(M-1)) (float32; empty for
    M < 1, [1.0] for M == 1)."""
    return _window("hanning", M, stream)


def hamming(M, *, stream=None):
    """The Hamming window of M points, 0.54 - 0.46*cos(2*pi*n/(M-1)) (float32)."""
    return _window("hamming", M, stream)


def blackman(M, *, stream=None):
    """The Blackman window of M points, 0.42 - 0.5*cos(2*pi*n/(M-1))
    + 0.08*cos(4*pi*n/(M-1)) (float32)."""
    return _window("blackman", M, stream)


def bartlett(M, *, stream=None):
    """The Bartlett (triangular) window of M points, 1 - |2n/(M-1) - 1| (float32)."""
    return _window("bartlett", M, stream)


__all__ = ["arange", "linspace", "zeros", "ones", "empty", "full", "zeros_like", "ones_like",
           "full_like", "eye", "identity", "tri", "meshgrid", "hanning", "hamming",
           "blackman", "bartlett"]


# ---------------------------------------------------------------------------------------
# transformation rules (vjp, jvp, vmap; see docs/transforms.md)
# ---------------------------------------------------------------------------------------
def _inexact(d: Dtype) -> bool:
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


def _install_constant_rules(prim):
    """A primitive without inputs: nothing to differentiate, and nothing a vmap can batch
    (the engines never reach it; the rules only make the contract complete)."""
    prim.vjp = lambda primals, ct, out, /, **params: []
    prim.jvp = lambda primals, tangents, out, /, **params: zeros(out.shape, out.dtype)
    prim.vmap = lambda inputs, axes, out, /, **params: (
        make_node(prim, (), params, out.shape, out.dtype), None)


def _install_broadcast_rules():
    from mx.core.transforms import move_batch_axis, unbroadcast

    import mx.core as mx

    def full_vjp(primals, ct, out, /, shape):
        v = primals[0]
        return [unbroadcast(ct, v.shape) if _inexact(v.dtype) else None]

    def full_jvp(primals, tangents, out, /, shape):
        if not _inexact(out.dtype):
            return zeros(out.shape, out.dtype)
        t = tangents[0]
        return make_node(FULL_ARRAY, (t,), {"shape": shape}, shape, t.dtype)

    def full_vmap(inputs, axes, out, /, shape):
        v = move_batch_axis(inputs[0], axes[0], 0)
        size, core = v.shape[0], v.shape[1:]
        # the example's axes line up with the right end of the target shape
        v = mx.reshape(v, (size,) + (1,) * (len(shape) - len(core)) + core)
        return make_node(FULL_ARRAY, (v,), {"shape": (size,) + shape}, (size,) + shape,
                         v.dtype), 0

    FULL_ARRAY.vjp = full_vjp
    FULL_ARRAY.jvp = full_jvp
    FULL_ARRAY.vmap = full_vmap

    def grid_vjp(primals, ct, out, /, view, shape):
        x = primals[0]
        if not _inexact(x.dtype):
            return [None]
        return [mx.reshape(unbroadcast(ct, view), x.shape)]

    def grid_jvp(primals, tangents, out, /, view, shape):
        if not _inexact(out.dtype):
            return zeros(out.shape, out.dtype)
        t = tangents[0]
        return make_node(GRID, (t,), {"view": view, "shape": shape}, shape, t.dtype)

    def grid_vmap(inputs, axes, out, /, view, shape):
        # batch first, each example's elements stay in order: the kernel's reshape to the
        # batched view keeps them apart
        x = move_batch_axis(inputs[0], axes[0], 0)
        size = x.shape[0]
        params = {"view": (size,) + view, "shape": (size,) + shape}
        return make_node(GRID, (x,), params, (size,) + shape, x.dtype), 0

    GRID.vjp = grid_vjp
    GRID.jvp = grid_jvp
    GRID.vmap = grid_vmap


def install_rules():
    """Set vjp, jvp and vmap on every primitive of this module (called by mx.core)."""
    for prim in (ZEROS, ONES, FULL, ARANGE, LINSPACE, EYE, TRI, WINDOW):
        _install_constant_rules(prim)
    _install_broadcast_rules()
