"""Reductions (sum, prod, mean, var, std, median, min, max, all, any, argmin, argmax,
logsumexp, softmax, count_nonzero) and scans (cumsum, cumprod, cummax, cummin,
logcumsumexp).

Output dtypes follow MLX 0.32, read off for all 14 dtypes:

* sum/prod: bool, int8, int16 -> int32; uint8, uint16 -> uint32; every other dtype kept.
  With no axis to reduce (a 0-d input or ``axis=[]``) the input comes back unchanged.
* mean/var/std/median/logsumexp: integers and bool -> float32; var/std of complex64 ->
  float32; other floats (and complex64 for mean/median/logsumexp) kept.
* min/max, cummax/cummin/cumprod: dtype kept; cumsum: bool -> int32, others kept.
* all/any -> bool; argmin/argmax -> uint32; count_nonzero -> int32.
* softmax: over the last axis alone integers give float32; over any other axes the
  result is cast back to the input dtype (so integer softmax truncates), as MLX does.

Kernels call one NumPy reduction with ``dtype=`` and a tuple of axes. float16 and bfloat16
accumulate in float32 and the scheduler casts the result back.
"""
from __future__ import annotations

import builtins
import operator

import numpy as np

from mx.core._array import make_node
from mx.core.dtypes import bool_, complex64, float32, int32, uint32
from mx.core.ops._util import as_array, check_dtype, norm_axes, norm_axis
from mx.core.ops._util import prod as _size
from mx.core.primitives import declare

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_HALF = ("float16", "bfloat16")

# ---------------------------------------------------------------------------------------
# dtype rules
# ---------------------------------------------------------------------------------------
_SUM_DTYPE = {"bool": int32, "int8": int32, "int16": int32, "uint8": uint32, "uint16": uint32}


def _is_inexact(d) -> bool:
    return d.name.startswith(("float", "bfloat", "complex"))


def _sum_dtype(d):
    """The dtype sum/prod give for input dtype d."""
    return _SUM_DTYPE.get(d.name, d)


def _float_dtype(d):
    """d itself when it is floating or complex, else float32 (MLX's at_least_float)."""
    return d if _is_inexact(d) else float32


def _real_float_dtype(d):
    """var/std: like _float_dtype but complex64 gives float32."""
    return float32 if d is complex64 else _float_dtype(d)


def _compute_np(d) -> np.dtype:
    """The NumPy dtype kernels compute in for mx dtype d (halves in float32)."""
    return _F32 if d.name in _HALF else d.np


# ---------------------------------------------------------------------------------------
# argument handling shared by the reductions
# ---------------------------------------------------------------------------------------
def _check_keepdims(keepdims, op):
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"[{op}] keepdims must be a bool, got {type(keepdims).__name__}.")
    return bool(keepdims)


def _reduced_shape(shape, axes, keepdims) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _setup(a, axis, keepdims, op):
    """(array, sorted axes, keepdims, output shape) for a reduction over `axis`."""
    x = as_array(a, op)
    keepdims = _check_keepdims(keepdims, op)
    axes = norm_axes(axis, x.ndim, op)
    return x, axes, keepdims, _reduced_shape(x.shape, axes, keepdims)


def _reject_empty_axis(x, axes, op, what):
    """min/max/median have no identity: reducing over a size-0 axis is an error."""
    for ax in axes:
        if x.shape[ax] == 0:
            raise ValueError(what.format(op=op, ax=ax))


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------
def _sum_kernel(x, axes, keepdims, acc):
    return np.add.reduce(x, axis=axes, dtype=acc, keepdims=keepdims)


def _prod_kernel(x, axes, keepdims, acc):
    return np.multiply.reduce(x, axis=axes, dtype=acc, keepdims=keepdims)


def _max_kernel(x, axes, keepdims):
    return np.maximum.reduce(x, axis=axes, keepdims=keepdims)


def _min_kernel(x, axes, keepdims):
    return np.minimum.reduce(x, axis=axes, keepdims=keepdims)


def _all_kernel(x, axes, keepdims):
    return x.all(axis=axes, keepdims=keepdims)


def _any_kernel(x, axes, keepdims):
    return x.any(axis=axes, keepdims=keepdims)


def _count_nonzero_kernel(x, axes, keepdims):
    if not keepdims and len(axes) == x.ndim:
        return np.count_nonzero(x)  # NumPy's fast whole-array count
    return np.count_nonzero(x, axis=axes, keepdims=keepdims)


def _argmax_kernel(x, axis, keepdims):
    return np.argmax(x, axis=axis, keepdims=keepdims)


def _argmin_kernel(x, axis, keepdims):
    return np.argmin(x, axis=axis, keepdims=keepdims)


def _mean_kernel(x, axes, keepdims, acc, n):
    s = np.add.reduce(x, axis=axes, dtype=acc, keepdims=keepdims)
    if type(s) is np.ndarray:
        return np.true_divide(s, n, out=s)  # 0/0 gives nan for empty axes, as in MLX
    return s / n


def _var_kernel(x, axes, keepdims, acc, n, ddof):
    if x.ndim == 0:  # NumPy reduces 0-d arrays to scalars, which cannot take out=
        return _var_kernel(x.reshape(1), (0,), False, acc, n, ddof).reshape(())
    mu = np.add.reduce(x, axis=axes, dtype=acc, keepdims=True)
    mu /= n
    d = np.subtract(x, mu, dtype=acc)
    if d.dtype.kind == "c":
        sq = np.multiply(d.real, d.real)
        sq += np.multiply(d.imag, d.imag)
    else:
        sq = np.multiply(d, d, out=d)
    v = np.add.reduce(sq, axis=axes, keepdims=keepdims)
    # ddof >= n divides by zero: inf (nan for a zero sum), as in MLX and NumPy
    denom = sq.dtype.type(builtins.max(n - ddof, 0))
    if type(v) is np.ndarray:
        return np.true_divide(v, denom, out=v)
    return v / denom


def _median_kernel(x, axes, keepdims, comp):
    if x.dtype.kind in "biu":
        comp = None  # NumPy's integer median averages the middle pair in float64
    elif x.dtype != comp:
        x = x.astype(comp)
    return np.median(x, axis=axes, keepdims=keepdims)


def _finite_shift(m):
    """The per-slice max used as a shift, with +-inf/nan replaced by 0 so that x - shift
    stays meaningful (logsumexp of all -inf is -inf, with an inf it is inf)."""
    if m.dtype.kind == "c":
        return m
    if type(m) is np.ndarray:
        return np.where(np.isfinite(m), m, m.dtype.type(0))
    return m if np.isfinite(m) else m.dtype.type(0)


def _logsumexp_kernel(x, axes, keepdims, comp):
    m = _finite_shift(np.maximum.reduce(x, axis=axes, keepdims=True).astype(comp, copy=False))
    e = np.subtract(x, m, dtype=comp)
    np.exp(e, out=e)
    s = np.add.reduce(e, axis=axes, keepdims=keepdims)
    if not keepdims:
        m = m.reshape(s.shape) if type(s) is np.ndarray else m.reshape(())
    s = np.log(s)
    s += m
    return s


def _softmax_kernel(x, axes, comp):
    if x.ndim == 0:
        return _softmax_kernel(x.reshape(1), (0,), comp).reshape(())
    m = np.maximum.reduce(x, axis=axes, keepdims=True)
    e = np.subtract(x, m, dtype=comp)
    np.exp(e, out=e)
    e /= np.add.reduce(e, axis=axes, keepdims=True)
    return e


# ---------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------
SUM = declare("sum", cpu=_sum_kernel, doc="sum over axes")
PROD = declare("prod", cpu=_prod_kernel, doc="product over axes")
MAX = declare("max", cpu=_max_kernel, doc="maximum over axes")
MIN = declare("min", cpu=_min_kernel, doc="minimum over axes")
ALL = declare("all", cpu=_all_kernel, doc="logical and over axes")
ANY = declare("any", cpu=_any_kernel, doc="logical or over axes")
COUNT_NONZERO = declare("count_nonzero", cpu=_count_nonzero_kernel, doc="non-zero count over axes")
ARGMAX = declare("argmax", cpu=_argmax_kernel, doc="index of the maximum along an axis")
ARGMIN = declare("argmin", cpu=_argmin_kernel, doc="index of the minimum along an axis")
MEAN = declare("mean", cpu=_mean_kernel, doc="mean over axes")
VAR = declare("var", cpu=_var_kernel, doc="variance over axes")
MEDIAN = declare("median", cpu=_median_kernel, doc="median over axes")
LOGSUMEXP = declare("logsumexp", cpu=_logsumexp_kernel, doc="log(sum(exp(x))) over axes")
SOFTMAX = declare("softmax", cpu=_softmax_kernel, doc="exp(x) / sum(exp(x)) over axes")


# ---------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------
def _accumulating(prim, op, a, axis, keepdims, stream):
    x, axes, keepdims, shape = _setup(a, axis, keepdims, op)
    if not axes:
        return x  # MLX returns the input itself when there is nothing to reduce
    out = _sum_dtype(x.dtype)
    params = {"axes": axes, "keepdims": keepdims, "acc": _compute_np(out)}
    return make_node(prim, (x,), params, shape, out, stream)


def sum(a, /, axis=None, keepdims=False, *, stream=None):
    """Sum of the elements over `axis` (an int, a sequence of ints or None for all axes).

    bool, int8 and int16 inputs sum in int32, uint8 and uint16 in uint32; other dtypes keep
    their own (integers wrap around on overflow)."""
    return _accumulating(SUM, "sum", a, axis, keepdims, stream)


def prod(a, /, axis=None, keepdims=False, *, stream=None):
    """Product of the elements over `axis`; dtypes widen as for sum."""
    return _accumulating(PROD, "prod", a, axis, keepdims, stream)


def _extremum(prim, op, a, axis, keepdims, stream):
    x, axes, keepdims, shape = _setup(a, axis, keepdims, op)
    if not axes:
        return x
    _reject_empty_axis(x, axes, op, "[{op}] Cannot {op} reduce over axis {ax} with size 0.")
    return make_node(prim, (x,), {"axes": axes, "keepdims": keepdims}, shape, x.dtype, stream)


def max(a, /, axis=None, keepdims=False, *, stream=None):
    """Largest element over `axis` (NaN wins; complex numbers compare lexicographically).
    Reducing over an axis of size 0 is an error."""
    return _extremum(MAX, "max", a, axis, keepdims, stream)


def min(a, /, axis=None, keepdims=False, *, stream=None):
    """Smallest element over `axis` (NaN wins; complex numbers compare lexicographically).
    Reducing over an axis of size 0 is an error."""
    return _extremum(MIN, "min", a, axis, keepdims, stream)


def all(a, /, axis=None, keepdims=False, *, stream=None):
    """True where every element over `axis` is non-zero (True over an empty axis)."""
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "all")
    return make_node(ALL, (x,), {"axes": axes, "keepdims": keepdims}, shape, bool_, stream)


def any(a, /, axis=None, keepdims=False, *, stream=None):
    """True where some element over `axis` is non-zero (False over an empty axis)."""
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "any")
    return make_node(ANY, (x,), {"axes": axes, "keepdims": keepdims}, shape, bool_, stream)


def count_nonzero(a, /, axis=None, *, keepdims=False, stream=None):
    """How many elements over `axis` are non-zero, as int32."""
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "count_nonzero")
    params = {"axes": axes, "keepdims": keepdims}
    return make_node(COUNT_NONZERO, (x,), params, shape, int32, stream)


def _arg_extremum(prim, op, a, axis, keepdims, stream):
    x = as_array(a, op)
    keepdims = _check_keepdims(keepdims, op)
    if axis is None:
        ax = None
        shape = (1,) * x.ndim if keepdims else ()
    else:
        ax = norm_axis(axis, x.ndim, op)
        shape = _reduced_shape(x.shape, (ax,), keepdims)
    if x.size == 0:
        raise ValueError(f"[{op}] Cannot {op} reduce zero size array.")
    return make_node(prim, (x,), {"axis": ax, "keepdims": keepdims}, shape, uint32, stream)


def argmax(a, /, axis=None, keepdims=False, *, stream=None):
    """Index (uint32) of the first largest element along `axis`, or of the flattened
    array when axis is None. NaN counts as the largest."""
    return _arg_extremum(ARGMAX, "argmax", a, axis, keepdims, stream)


def argmin(a, /, axis=None, keepdims=False, *, stream=None):
    """Index (uint32) of the first smallest element along `axis`, or of the flattened
    array when axis is None. NaN counts as the smallest."""
    return _arg_extremum(ARGMIN, "argmin", a, axis, keepdims, stream)


def _mean_params(x, axes, keepdims, out):
    # integers accumulate in float64 so that large sums stay exact before the float32 cast
    acc = _F64 if not _is_inexact(x.dtype) else _compute_np(out)
    return {"axes": axes, "keepdims": keepdims, "acc": acc,
            "n": _size(x.shape[i] for i in axes)}


def mean(a, /, axis=None, keepdims=False, *, stream=None):
    """Arithmetic mean over `axis`; integer and bool inputs give float32. The mean over an
    empty axis is NaN."""
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "mean")
    out = _float_dtype(x.dtype)
    return make_node(MEAN, (x,), _mean_params(x, axes, keepdims, out), shape, out, stream)


def _check_ddof(ddof, op):
    try:
        return operator.index(ddof)
    except TypeError:
        raise TypeError(f"[{op}] ddof must be an integer, got {type(ddof).__name__}.") from None


def _var_node(op, a, axis, keepdims, ddof, stream):
    x, axes, keepdims, shape = _setup(a, axis, keepdims, op)
    ddof = _check_ddof(ddof, op)
    params = _mean_params(x, axes, keepdims, _float_dtype(x.dtype))
    params["ddof"] = ddof
    return make_node(VAR, (x,), params, shape, _real_float_dtype(x.dtype), stream)


def var(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Variance over `axis`: the mean squared deviation from the mean, divided by N - ddof
    instead of N when ddof is given. Integers give float32; complex64 gives float32 (the
    mean of |x - mean|**2). ddof >= N gives inf (nan when all deviations are zero)."""
    return _var_node("var", a, axis, keepdims, ddof, stream)


def std(a, /, axis=None, keepdims=False, ddof=0, *, stream=None):
    """Standard deviation over `axis`: the square root of var(a, axis, keepdims, ddof)."""
    from mx.core.ops.elementwise import sqrt
    return sqrt(_var_node("std", a, axis, keepdims, ddof, stream), stream=stream)


def median(a, /, axis=None, keepdims=False, *, stream=None):
    """Median over `axis` (the mean of the two middle values for an even count). Integers
    and bool give float32; a NaN in a slice makes its median NaN. An axis of size 0 is an
    error."""
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "median")
    _reject_empty_axis(x, axes, "median", "[{op}] Cannot take median along empty axis.")
    out = _float_dtype(x.dtype)
    params = {"axes": axes, "keepdims": keepdims, "comp": _compute_np(out)}
    return make_node(MEDIAN, (x,), params, shape, out, stream)


def logsumexp(a, /, axis=None, keepdims=False, *, stream=None):
    """log(sum(exp(a))) over `axis`, computed without overflow by shifting by the maximum.
    Integers give float32. Slices of all -inf give -inf; a +inf gives +inf."""
    from mx.core.ops.elementwise import astype
    x, axes, keepdims, shape = _setup(a, axis, keepdims, "logsumexp")
    if x.size == 0:
        raise ValueError("[logsumexp] Received empty array.")
    out = _float_dtype(x.dtype)
    if not axes:
        return astype(x, out, stream=stream)  # logsumexp of one element is the element
    params = {"axes": axes, "keepdims": keepdims, "comp": _compute_np(out)}
    return make_node(LOGSUMEXP, (x,), params, shape, out, stream)


def softmax(a, /, axis=None, *, precise=False, stream=None):
    """exp(a) / sum(exp(a)) over `axis` (None: all axes), shifted by the maximum so that
    large inputs do not overflow.

    Over the last axis alone integer inputs give float32; over any other axes the result
    has the input's dtype, as in MLX. float16/bfloat16 always accumulate in float32 here,
    so `precise` (MLX's switch for that) changes nothing but is accepted."""
    x = as_array(a, "softmax")
    if x.size == 0:
        return x
    if x.ndim == 0 and axis is not None and axis != [] and axis != ():
        raise ValueError("[softmax] Received non-empty axes for array with 0 dimensions.")
    axes = norm_axes(axis, x.ndim, "softmax")
    last_only = len(axes) == 1 and axes[0] == x.ndim - 1
    out = _float_dtype(x.dtype) if last_only else x.dtype
    comp = _compute_np(_float_dtype(x.dtype))
    return make_node(SOFTMAX, (x,), {"axes": axes, "comp": comp}, x.shape, out, stream)


# ---------------------------------------------------------------------------------------
# scans
# ---------------------------------------------------------------------------------------
def _ufunc_scan(ufunc):
    def accumulate(src, axis, out):
        ufunc.accumulate(src, axis=axis, dtype=out.dtype, out=out)
    return accumulate


def _complex_logaddexp_scan(src, axis, out):
    # NumPy's logaddexp has no complex loop: shift every slice by its largest real part,
    # sum the exponentials in complex128 and take the log
    c = np.maximum.reduce(src.real, axis=axis, keepdims=True).astype(_F64)
    c = np.where(np.isfinite(c), c, 0.0)
    e = np.exp(np.subtract(src, c, dtype=np.complex128))
    np.add.accumulate(e, axis=axis, out=e)
    np.log(e, out=e)
    e += c
    # the log's branch cut puts the imaginary part in (-pi, pi]; move it by whole turns
    # next to that of the dominant term so far (so one element scans to itself)
    lead = np.maximum.accumulate(src, axis=axis).imag.astype(_F64)
    turns = np.round((lead - e.imag) / (2 * np.pi))
    turns[~np.isfinite(turns)] = 0
    e.imag += 2 * np.pi * turns
    out[...] = e


def _scan_identity(kind, dt):
    """The value an exclusive scan starts with."""
    if kind == "sum":
        return 0
    if kind == "prod":
        return 1
    if kind == "logsumexp":
        return -np.inf
    big = kind == "min"
    if dt.kind == "b":
        return big
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return info.max if big else info.min
    inf = np.inf if big else -np.inf
    return complex(inf, inf) if dt.kind == "c" else inf


_SCAN_FNS = {"sum": _ufunc_scan(np.add), "prod": _ufunc_scan(np.multiply),
             "max": _ufunc_scan(np.maximum), "min": _ufunc_scan(np.minimum),
             "logsumexp": _ufunc_scan(np.logaddexp)}


def _scan_kernel(x, axis, reverse, inclusive, kind, acc):
    if axis is None:
        x = x.reshape(-1)
        axis = 0
    out = np.empty(x.shape, acc)
    n = x.shape[axis]
    if n == 0:
        return out
    fn = _complex_logaddexp_scan if kind == "logsumexp" and acc.kind == "c" else _SCAN_FNS[kind]
    lead = (slice(None),) * axis
    src, dst = x, out
    if reverse:  # scan flipped views; out is written in place through its flipped view
        flip = lead + (slice(None, None, -1),)
        src, dst = x[flip], out[flip]
    if inclusive:
        fn(src, axis, dst)
    else:
        dst[lead + (0,)] = _scan_identity(kind, acc)
        fn(src[lead + (slice(0, n - 1),)], axis, dst[lead + (slice(1, None),)])
    return out


SCANS = {kind: declare(name, cpu=_scan_kernel, doc=f"{kind} scan along an axis")
         for kind, name in [("sum", "cumsum"), ("prod", "cumprod"), ("max", "cummax"),
                            ("min", "cummin"), ("logsumexp", "logcumsumexp")]}


def _scan(kind, op, a, axis, reverse, inclusive, stream, dtype=None):
    x = as_array(a, op)
    if dtype is not None:
        from mx.core.ops.elementwise import astype
        x = astype(x, check_dtype(dtype, op), stream=stream)
    if axis is None:
        shape = (x.size,)
    else:
        axis = norm_axis(axis, x.ndim, op)
        shape = x.shape
    if kind == "sum":
        out = int32 if x.dtype is bool_ else x.dtype
    elif kind == "logsumexp":
        out = _float_dtype(x.dtype)
    else:
        out = x.dtype
    params = {"axis": axis, "reverse": bool(reverse), "inclusive": bool(inclusive),
              "kind": kind, "acc": _compute_np(out)}
    return make_node(SCANS[kind], (x,), params, shape, out, stream)


def cumsum(a, /, axis=None, *, reverse=False, inclusive=True, dtype=None, stream=None):
    """Running sum along `axis` (None: over the flattened array). `reverse` scans from the
    end; `inclusive=False` shifts by one so element i excludes a[i] (starting at 0). bool
    gives int32; `dtype` casts the input first."""
    return _scan("sum", "cumsum", a, axis, reverse, inclusive, stream, dtype)


def cumprod(a, /, axis=None, *, reverse=False, inclusive=True, dtype=None, stream=None):
    """Running product along `axis` (None: flattened); the exclusive scan starts at 1.
    `dtype` casts the input first."""
    return _scan("prod", "cumprod", a, axis, reverse, inclusive, stream, dtype)


def cummax(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    """Running maximum along `axis` (None: flattened); NaN propagates. The exclusive scan
    starts at the dtype's lowest value (-inf for floats)."""
    return _scan("max", "cummax", a, axis, reverse, inclusive, stream)


def cummin(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    """Running minimum along `axis` (None: flattened); NaN propagates. The exclusive scan
    starts at the dtype's highest value (inf for floats)."""
    return _scan("min", "cummin", a, axis, reverse, inclusive, stream)


def logcumsumexp(a, /, axis=None, *, reverse=False, inclusive=True, stream=None):
    """Running log(sum(exp(a))) along `axis` (None: flattened), computed stably with
    logaddexp. Integers give float32; the exclusive scan starts at -inf."""
    return _scan("logsumexp", "logcumsumexp", a, axis, reverse, inclusive, stream)


__all__ = ["sum", "prod", "mean", "var", "std", "median", "min", "max", "all", "any",
           "argmin", "argmax", "logsumexp", "softmax", "count_nonzero", "cumsum", "cumprod",
           "cummax", "cummin", "logcumsumexp"]


# ---------------------------------------------------------------------------------------
# transformation rules (vjp, jvp, vmap); docs/transforms.md gives the contract
# ---------------------------------------------------------------------------------------
# Rules are written with public mx ops so that what they build is itself differentiable
# (grad of grad) and batchable. Integer and bool inputs get no gradient: vjp returns None
# and jvp a zero tangent.
def _mx():
    import mx.core as mx
    return mx


def _zero_tangent(out):
    return _mx().zeros(out.shape, out.dtype)


def _keep(v, shape, axes, keepdims):
    """`v` (shaped like a reduction's output) reshaped to the keepdims=True layout, so that
    it broadcasts against the reduction's input."""
    if keepdims:
        return v
    return _mx().reshape(v, _reduced_shape(shape, axes, True))


def _spread(ct, x, axes, keepdims):
    """The cotangent of a reduction broadcast back over the reduced axes."""
    return _mx().broadcast_to(_keep(ct, x.shape, axes, keepdims), x.shape)


def _reduced_last(x, axes):
    """`x` with its kept axes first (in order) and the reduced axes flattened into one last
    axis, plus the function undoing it for an array of the same layout."""
    mx = _mx()
    kept = [i for i in range(x.ndim) if i not in axes]
    perm = kept + list(axes)
    kept_shape = tuple(x.shape[i] for i in kept)
    moved_shape = tuple(x.shape[i] for i in perm)
    flat = kept_shape + (_size(x.shape[i] for i in axes),)
    identity = perm == list(range(x.ndim))
    y = x if identity else mx.transpose(x, perm)
    y = mx.reshape(y, flat)

    def restore(v):
        v = mx.reshape(v, moved_shape)
        if identity:
            return v
        inverse = [0] * len(perm)
        for i, p in enumerate(perm):
            inverse[p] = i
        return mx.transpose(v, inverse)

    return y, restore


def _nondifferentiable(prim):
    prim.vjp = lambda primals, ct, out, **_: [None]
    prim.jvp = lambda primals, tangents, out, **_: _zero_tangent(out)


def _reduction_vmap(prim):
    """Batch a reduction over `axes` by putting the batch axis first and shifting every
    reduced axis past it."""
    from mx.core.transforms import move_batch_axis

    def rule(inputs, batch_axes, out, /, **params):  # params has its own "axes"
        x = move_batch_axis(inputs[0], batch_axes[0], 0)
        params = dict(params)
        params["axes"] = tuple(a + 1 for a in params["axes"])
        return make_node(prim, (x,), params, (x.shape[0],) + out.shape, out.dtype, None), 0

    prim.vmap = rule


def _arg_vmap(prim):
    """argmin/argmax: axis=None reduces each example's flattened elements."""
    from mx.core.transforms import move_batch_axis
    mx = _mx()

    def rule(inputs, axes, out, axis, keepdims):
        x = move_batch_axis(inputs[0], axes[0], 0)
        b = x.shape[0]
        if axis is not None:
            params = {"axis": axis + 1, "keepdims": keepdims}
            return make_node(prim, (x,), params, (b,) + out.shape, out.dtype, None), 0
        flat = mx.reshape(x, (b, _size(x.shape[1:])))
        res = make_node(prim, (flat,), {"axis": 1, "keepdims": keepdims},
                        (b, 1) if keepdims else (b,), out.dtype, None)
        return (mx.reshape(res, (b,) + out.shape) if keepdims else res), 0

    prim.vmap = rule


def _scan_vmap(prim):
    """Scans: axis=None scans each example's flattened elements."""
    from mx.core.transforms import move_batch_axis
    mx = _mx()

    def rule(inputs, axes, out, axis, **params):
        x = move_batch_axis(inputs[0], axes[0], 0)
        b = x.shape[0]
        if axis is None:
            x = mx.reshape(x, (b, _size(x.shape[1:])))
            axis = 0
        return make_node(prim, (x,), dict(params, axis=axis + 1), (b,) + out.shape,
                         out.dtype, None), 0

    prim.vmap = rule


# -- sum, mean, prod --------------------------------------------------------------------
def _sum_vjp(primals, ct, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_spread(ct, x, axes, keepdims)]


def _sum_jvp(primals, tangents, out, axes, keepdims, **_):
    if not _is_inexact(primals[0].dtype):
        return _zero_tangent(out)
    return _mx().sum(tangents[0], axis=list(axes), keepdims=keepdims)


def _mean_vjp(primals, ct, out, axes, keepdims, n, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_spread(ct / n, x, axes, keepdims)]


def _mean_jvp(primals, tangents, out, axes, keepdims, **_):
    if not _is_inexact(primals[0].dtype):
        return _zero_tangent(out)
    return _mx().mean(tangents[0], axis=list(axes), keepdims=keepdims)


def _prod_partials(x, axes):
    """d prod / d x_i: the product of the other elements. Without a zero in the slice it
    is prod / x_i; with exactly one zero only that element has a non-zero partial (the
    product of the others); with two or more zeros every partial is zero. No division by
    zero happens, so one zero gives no NaN."""
    mx = _mx()
    zero = x == 0
    count = mx.sum(zero, axis=list(axes), keepdims=True)
    safe = mx.where(zero, mx.ones(x.shape, x.dtype), x)
    others = mx.prod(safe, axis=list(axes), keepdims=True)  # product of the non-zeros
    lone_zero = mx.where(zero & (count == 1), others, mx.zeros((), x.dtype))
    return mx.where(count == 0, others / safe, lone_zero)


def _prod_vjp(primals, ct, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_keep(ct, x.shape, axes, keepdims) * _prod_partials(x, axes)]


def _prod_jvp(primals, tangents, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return _zero_tangent(out)
    return _mx().sum(tangents[0] * _prod_partials(x, axes), axis=list(axes), keepdims=keepdims)


# -- max, min ---------------------------------------------------------------------------
def _extremum_rules(prim, pick):
    """max/min: the vjp splits the cotangent evenly among the elements equal to the result
    (as MLX does); the jvp takes the tangent of the first extremal element in row-major
    order over the reduced axes (also as MLX does)."""

    def vjp(primals, ct, out, axes, keepdims):
        mx = _mx()
        x = primals[0]
        if not _is_inexact(x.dtype):
            return [None]
        hit = x == _keep(out, x.shape, axes, keepdims)
        share = hit.astype(ct.dtype) / mx.sum(hit, axis=list(axes), keepdims=True)
        return [_keep(ct, x.shape, axes, keepdims) * share]

    def jvp(primals, tangents, out, axes, keepdims):
        mx = _mx()
        x = primals[0]
        if not _is_inexact(x.dtype):
            return _zero_tangent(out)
        xr, _ = _reduced_last(x, axes)
        tr, _ = _reduced_last(tangents[0], axes)
        idx = pick(xr, axis=-1, keepdims=True)
        return mx.reshape(mx.take_along_axis(tr, idx, axis=-1), out.shape)

    prim.vjp = vjp
    prim.jvp = jvp


# -- var, median, logsumexp, softmax ----------------------------------------------------
def _var_factor(x, axes, n, ddof):
    """d var / d x_i = 2 (x_i - mean) / (N - ddof)."""
    mx = _mx()
    centred = x - mx.mean(x, axis=list(axes), keepdims=True)
    # ddof >= N: the variance itself is inf (or nan), and so is its derivative
    return centred * (2.0 / (n - ddof) if n > ddof else np.inf)


def _var_vjp(primals, ct, out, axes, keepdims, n, ddof, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_keep(ct, x.shape, axes, keepdims) * _var_factor(x, axes, n, ddof)]


def _var_jvp(primals, tangents, out, axes, keepdims, n, ddof, **_):
    mx = _mx()
    x = primals[0]
    if not _is_inexact(x.dtype):
        return _zero_tangent(out)
    factor = _var_factor(x, axes, n, ddof)
    t = tangents[0]
    if x.dtype is complex64:  # var is real: d|z|^2 = 2 Re(conj(z) dz)
        terms = mx.real(mx.conjugate(factor) * t)
    else:
        terms = factor * t
    return mx.sum(terms, axis=list(axes), keepdims=keepdims)


def _median_weights(x, out, axes, keepdims):
    """How much each element contributes to its slice's median: 1 for the element at the
    middle sorted position (odd count), 1/2 for each of the two middle ones (even count).
    Ties are ranked by position (row-major over the reduced axes), as a stable sort would,
    so the weights match MLX's sort-based median."""
    mx = _mx()
    n = _size(x.shape[i] for i in axes)
    lo, hi = (n - 1) // 2, n // 2
    xr, restore = _reduced_last(x, axes)
    m = mx.reshape(_keep(out, x.shape, axes, keepdims), xr.shape[:-1] + (1,)).astype(xr.dtype)
    inf = mx.array(np.inf, dtype=xr.dtype)
    below = mx.where(xr < m, xr, -inf)
    above = mx.where(xr > m, xr, inf)
    # the two middle values: the largest element <= m and the smallest >= m, unless
    # rounding made m equal to one of them (then the other side's strict bound is used)
    a = mx.max(mx.where(xr <= m, xr, -inf), axis=-1, keepdims=True)
    a = mx.where(mx.sum(xr < a, axis=-1, keepdims=True) > lo, mx.max(below, axis=-1, keepdims=True), a)
    b = mx.min(mx.where(xr >= m, xr, inf), axis=-1, keepdims=True)
    b = mx.where(mx.sum(xr <= b, axis=-1, keepdims=True) <= hi, mx.min(above, axis=-1, keepdims=True), b)

    def at_rank(v, rank):
        tie = xr == v
        order = mx.sum(xr < v, axis=-1, keepdims=True) + mx.cumsum(tie, axis=-1, inclusive=False)
        return tie & (order == rank)

    w = at_rank(a, lo).astype(x.dtype) * 0.5 + at_rank(b, hi).astype(x.dtype) * 0.5
    return restore(w)


def _median_vjp(primals, ct, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_keep(ct, x.shape, axes, keepdims) * _median_weights(x, out, axes, keepdims)]


def _median_jvp(primals, tangents, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return _zero_tangent(out)
    w = _median_weights(x, out, axes, keepdims)
    return _mx().sum(tangents[0] * w, axis=list(axes), keepdims=keepdims)


def _lse_weights(x, out, axes, keepdims):
    """softmax(x) over axes, from logsumexp's own output."""
    return _mx().exp(x - _keep(out, x.shape, axes, keepdims))


def _logsumexp_vjp(primals, ct, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return [None]
    return [_keep(ct, x.shape, axes, keepdims) * _lse_weights(x, out, axes, keepdims)]


def _logsumexp_jvp(primals, tangents, out, axes, keepdims, **_):
    x = primals[0]
    if not _is_inexact(x.dtype):
        return _zero_tangent(out)
    w = _lse_weights(x, out, axes, keepdims)
    return _mx().sum(tangents[0] * w, axis=list(axes), keepdims=keepdims)


def _softmax_vjp(primals, ct, out, axes, **_):
    if not _is_inexact(primals[0].dtype):
        return [None]
    mx = _mx()
    return [out * (ct - mx.sum(ct * out, axis=list(axes), keepdims=True))]


def _softmax_jvp(primals, tangents, out, axes, **_):
    if not _is_inexact(primals[0].dtype):
        return _zero_tangent(out)
    mx = _mx()
    t = tangents[0]
    return out * (t - mx.sum(t * out, axis=list(axes), keepdims=True))


# -- scans ------------------------------------------------------------------------------
# A scan with axis=None runs over the flattened input; the rules work on that 1-D view
# and reshape the input cotangent back. `reverse` and `inclusive` carry over: the vjp of
# a scan runs the matching scan in the other direction.
def _scan_view(x, axis):
    if axis is None:
        return _mx().reshape(x, (x.size,)), 0
    return x, axis


def _scan_rules(prim, vjp_core, jvp_core):
    def vjp(primals, ct, out, axis, reverse, inclusive, kind, acc):
        x = primals[0]
        if not _is_inexact(x.dtype):
            return [None]
        if x.size == 0:
            return [_mx().zeros(x.shape, x.dtype)]
        xv, ax = _scan_view(x, axis)
        g = vjp_core(xv, ct, out, ax, reverse, inclusive)
        return [_mx().reshape(g, x.shape) if axis is None else g]

    def jvp(primals, tangents, out, axis, reverse, inclusive, kind, acc):
        x = primals[0]
        if not _is_inexact(x.dtype) or x.size == 0:
            return _zero_tangent(out)
        xv, ax = _scan_view(x, axis)
        tv, _ = _scan_view(tangents[0], axis)
        return jvp_core(xv, tv, out, ax, reverse, inclusive)

    prim.vjp = vjp
    prim.jvp = jvp


def _cumsum_vjp(x, ct, y, ax, rev, incl):
    return _mx().cumsum(ct, axis=ax, reverse=not rev, inclusive=incl)


def _cumsum_jvp(x, t, y, ax, rev, incl):
    return _mx().cumsum(t, axis=ax, reverse=rev, inclusive=incl)


def _cumprod_zeros(x, ax, rev, incl):
    """Where the zeros are, for the cumprod rules: the first zero in scan order, the
    positions before it, x with that first zero replaced by one, and the cumprod of that."""
    mx = _mx()
    zero = x == 0
    seen = mx.cumsum(zero, axis=ax, reverse=rev)  # zeros at or before i in scan order
    first = zero & (seen == 1)
    ones = mx.ones(x.shape, x.dtype)
    x1 = mx.where(first, ones, x)
    y1 = mx.cumprod(x1, axis=ax, reverse=rev, inclusive=incl)
    return zero, seen == 0, first, y1


def _cumprod_vjp(x, ct, y, ax, rev, incl):
    # g_i = sum over outputs j that contain x_i of ct_j * (y_j / x_i). Before the first
    # zero that division is safe. At the first zero the partial is the product with that
    # zero set to one (y1); after it every partial contains the first zero.
    mx = _mx()
    _, before, first, y1 = _cumprod_zeros(x, ax, rev, incl)
    back = dict(axis=ax, reverse=not rev, inclusive=incl)
    ones = mx.ones(x.shape, x.dtype)
    early = mx.cumsum(ct * y, **back) / mx.where(before, x, ones)
    at_first = mx.where(first, mx.cumsum(ct * y1, **back), mx.zeros((), x.dtype))
    return mx.where(before, early, at_first)


def _cumprod_jvp(x, t, y, ax, rev, incl):
    # outputs whose window holds no zero: y_j * sum t_i / x_i; the others keep only the
    # first zero's term t_z * y1_j (which is zero when a second zero is in the window)
    mx = _mx()
    zero, _, first, y1 = _cumprod_zeros(x, ax, rev, incl)
    clean = mx.cumsum(zero, axis=ax, reverse=rev, inclusive=incl) == 0
    safe = mx.where(zero, mx.ones(x.shape, x.dtype), x)
    t_first = mx.sum(mx.where(first, t, mx.zeros((), t.dtype)), axis=ax, keepdims=True)
    return mx.where(clean, y * mx.cumsum(t / safe, axis=ax, reverse=rev, inclusive=incl),
                    t_first * y1)


def _extreme_scan_heads(x, y, ax, kind, incl):
    """Positions where the running extremum takes the value of x itself (x_i equals the
    inclusive scan at i), and the index along the scan axis, shaped to broadcast."""
    mx = _mx()
    if incl:
        head = x == y
    else:  # y is the running extremum of the earlier elements
        head = x >= y if kind == "max" else x <= y
    n = x.shape[ax]
    idx = mx.reshape(mx.arange(n, dtype=int32), tuple(n if i == ax else 1 for i in range(x.ndim)))
    return head, idx, n


def _cumext_vjp(kind):
    # Output j takes its value (and its cotangent) from the latest head at or before j in
    # scan order (strictly before for an exclusive scan), as MLX does. Each head thus
    # collects the cotangents of a contiguous block of outputs, which two cumsums and a
    # gather at the next head give without a scatter.
    def rule(x, ct, y, ax, rev, incl):
        mx = _mx()
        head, idx, n = _extreme_scan_heads(x, y, ax, kind, incl)
        if not rev:
            nxt = mx.minimum(mx.cummin(mx.where(head, idx, n), axis=ax, reverse=True,
                                       inclusive=False), n)
            total = mx.cumsum(ct, axis=ax, reverse=True)
            after = mx.cumsum(ct, axis=ax, reverse=True, inclusive=False)
            if incl:
                block = total - mx.take_along_axis(after, nxt - 1, axis=ax)
            else:
                block = after - mx.take_along_axis(after, mx.minimum(nxt, n - 1), axis=ax)
        else:
            nxt = mx.maximum(mx.cummax(mx.where(head, idx, -1), axis=ax, inclusive=False), -1)
            total = mx.cumsum(ct, axis=ax)
            after = mx.cumsum(ct, axis=ax, inclusive=False)
            if incl:
                block = total - mx.take_along_axis(after, nxt + 1, axis=ax)
            else:
                block = after - mx.take_along_axis(after, mx.maximum(nxt, 0), axis=ax)
        return mx.where(head, block, mx.zeros((), block.dtype))

    return rule


def _cumext_jvp(kind):
    def rule(x, t, y, ax, rev, incl):
        mx = _mx()
        head, idx, n = _extreme_scan_heads(x, y, ax, kind, incl)
        if not rev:
            src = mx.cummax(mx.where(head, idx, -1), axis=ax, inclusive=incl)
        else:
            src = mx.cummin(mx.where(head, idx, n), axis=ax, reverse=True, inclusive=incl)
        valid = (src >= 0) & (src < n)
        picked = mx.take_along_axis(t, mx.clip(src, 0, n - 1), axis=ax)
        return mx.where(valid, picked, mx.zeros((), t.dtype))

    return rule


def _signed_logs(v):
    """log of the positive and of the negative parts of v (-inf where a part is zero),
    built so that their derivatives stay finite."""
    mx = _mx()
    ones = mx.ones(v.shape, v.dtype)
    ninf = mx.array(-np.inf, dtype=v.dtype)
    pos = mx.where(v > 0, mx.log(mx.where(v > 0, v, ones)), ninf)
    neg = mx.where(v < 0, mx.log(mx.where(v < 0, -v, ones)), ninf)
    return pos, neg


def _finite_or_zero(y):
    """y with -inf (an empty or all -inf window) replaced by 0; those outputs take no
    part in the sums below, so this only keeps inf - inf out of them."""
    mx = _mx()
    return mx.where(y == -np.inf, mx.zeros((), y.dtype), y)


def _logcumsumexp_vjp(x, ct, y, ax, rev, incl):
    # g_i = sum over windows j holding i of ct_j exp(x_i - y_j), evaluated in log space
    # with the positive and negative cotangents apart so that nothing overflows
    mx = _mx()
    back = dict(axis=ax, reverse=not rev, inclusive=incl)
    if x.dtype is complex64:
        return mx.exp(x) * mx.cumsum(ct * mx.exp(-y), **back)
    ys = _finite_or_zero(y)
    pos, neg = _signed_logs(ct)
    return (mx.exp(x + mx.logcumsumexp(pos - ys, **back))
            - mx.exp(x + mx.logcumsumexp(neg - ys, **back)))


def _logcumsumexp_jvp(x, t, y, ax, rev, incl):
    mx = _mx()
    fwd = dict(axis=ax, reverse=rev, inclusive=incl)
    if x.dtype is complex64:
        return mx.exp(-y) * mx.cumsum(t * mx.exp(x), **fwd)
    ys = _finite_or_zero(y)
    pos, neg = _signed_logs(t)
    return (mx.exp(mx.logcumsumexp(x + pos, **fwd) - ys)
            - mx.exp(mx.logcumsumexp(x + neg, **fwd) - ys))


def install_rules():
    """Set vjp, jvp and vmap on every primitive this module declares."""
    mx = _mx()
    SUM.vjp, SUM.jvp = _sum_vjp, _sum_jvp
    MEAN.vjp, MEAN.jvp = _mean_vjp, _mean_jvp
    PROD.vjp, PROD.jvp = _prod_vjp, _prod_jvp
    _extremum_rules(MAX, mx.argmax)
    _extremum_rules(MIN, mx.argmin)
    VAR.vjp, VAR.jvp = _var_vjp, _var_jvp
    MEDIAN.vjp, MEDIAN.jvp = _median_vjp, _median_jvp
    LOGSUMEXP.vjp, LOGSUMEXP.jvp = _logsumexp_vjp, _logsumexp_jvp
    SOFTMAX.vjp, SOFTMAX.jvp = _softmax_vjp, _softmax_jvp
    for prim in (ALL, ANY, COUNT_NONZERO, ARGMAX, ARGMIN):
        _nondifferentiable(prim)
    for prim in (SUM, PROD, MAX, MIN, ALL, ANY, COUNT_NONZERO, MEAN, VAR, MEDIAN,
                 LOGSUMEXP, SOFTMAX):
        _reduction_vmap(prim)
    _arg_vmap(ARGMAX)
    _arg_vmap(ARGMIN)
    _scan_rules(SCANS["sum"], _cumsum_vjp, _cumsum_jvp)
    _scan_rules(SCANS["prod"], _cumprod_vjp, _cumprod_jvp)
    _scan_rules(SCANS["max"], _cumext_vjp("max"), _cumext_jvp("max"))
    _scan_rules(SCANS["min"], _cumext_vjp("min"), _cumext_jvp("min"))
    _scan_rules(SCANS["logsumexp"], _logcumsumexp_vjp, _logcumsumexp_jvp)
    for prim in SCANS.values():
        _scan_vmap(prim)
