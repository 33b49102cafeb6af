"""Products: matmul (and the `@` operator), addmm, inner, outer, tensordot, kron, vecdot.

Kernels hand contiguous inputs straight to NumPy (BLAS for floating types). float16 and
bfloat16 have no BLAS routine, so they are multiplied in float32 and the scheduler casts
the result back. Inputs are cast to the result dtype in the graph (astype nodes, only when
needed), so every product primitive sees operands of one dtype.
"""
from __future__ import annotations

import operator

import numpy as np

from mx.core._array import broadcast_shapes_pair, make_node, promote_types, shape_str
from mx.core.dtypes import bfloat16, bool_, int8, int16, int32, uint8, uint16, uint32
from mx.core.ops._util import as_array, norm_axis
from mx.core.ops.elementwise import astype, multiply
from mx.core.primitives import declare

_HALF = (np.dtype(np.float16), bfloat16.np)
_KIND_FLOAT = 3  # Dtype.kind of floating types; complex is 4 (see _array.pyx)


def _up(x):
    """float16/bfloat16 operands computed in float32 (no half-precision BLAS)."""
    return x.astype(np.float32) if x.dtype in _HALF else x


def _inexact_dtype(op, *xs):
    """The promoted dtype of the operands, which must be floating or complex."""
    d = xs[0].dtype
    for x in xs[1:]:
        d = promote_types(d, x.dtype)
    if d.kind < _KIND_FLOAT:
        names = " and ".join(x.dtype.name for x in xs) if len(xs) == 2 else \
            ", ".join(x.dtype.name for x in xs[:-1]) + " and " + xs[-1].dtype.name
        raise ValueError(f"[{op}] Only inexact types are supported but {names} were provided "
                         f"which results in {d.name}, which is not a floating point type.")
    return d


def _cast(x, d, stream):
    return x if x.dtype is d else astype(x, d, stream=stream)


# ---------------------------------------------------------------------------------------
# matmul and addmm
# ---------------------------------------------------------------------------------------
def _matmul_kernel(a, b):
    return np.matmul(_up(a), _up(b))


def _addmm_kernel(c, a, b, alpha, beta):
    out = np.matmul(_up(a), _up(b))
    if not isinstance(out, np.ndarray):  # 1-D @ 1-D gives a NumPy scalar
        out = np.asarray(out)
    if alpha != 1.0:
        out *= out.dtype.type(alpha)
    if beta != 0.0:
        cc = _up(c)
        out += cc if beta == 1.0 else cc * cc.dtype.type(beta)
    return out


MATMUL = declare("matmul", cpu=_matmul_kernel, doc="matrix product (batched, broadcasting)")
ADDMM = declare("addmm", cpu=_addmm_kernel, doc="alpha * (a @ b) + beta * c")


def _matmul_shape(op, sa, sb):
    """The result shape of a @ b with NumPy's rules for 1-D operands and batch
    broadcasting."""
    if len(sa) == 0 or len(sb) == 0:
        raise ValueError(f"[{op}] Got 0 dimension input. Inputs must have at least one dimension.")
    ma = (1,) + sa if len(sa) == 1 else sa
    mb = sb + (1,) if len(sb) == 1 else sb
    if ma[-1] != mb[-2]:
        raise ValueError(f"[{op}] Last dimension of first input with shape {shape_str(ma)} must "
                         f"match second to last dimension of second input with shape "
                         f"{shape_str(mb)}.")
    batch = broadcast_shapes_pair(ma[:-2], mb[:-2], op)
    out = batch
    if len(sa) > 1:
        out += (ma[-2],)
    if len(sb) > 1:
        out += (mb[-1],)
    return out


def matmul(a, b, /, *, stream=None):
    """The matrix product of `a` and `b`.

    1-D operands are promoted to matrices (a row for `a`, a column for `b`) and the added
    axis is removed from the result; leading (batch) axes broadcast. Integer and bool
    operands are refused unless the other operand makes the result floating.
    """
    x = as_array(a, "matmul")
    y = as_array(b, "matmul")
    shape = _matmul_shape("matmul", x.shape, y.shape)
    d = _inexact_dtype("matmul", x, y)
    return make_node(MATMUL, (_cast(x, d, stream), _cast(y, d, stream)), None, shape, d, stream)


def _float_param(v, name, op):
    if isinstance(v, (str, bytes)) or v is None:
        raise TypeError(f"[{op}] {name} must be a real number, got {type(v).__name__}.")
    try:
        return float(v)
    except (TypeError, ValueError):
        raise TypeError(f"[{op}] {name} must be a real number, got {type(v).__name__}.") from None


def addmm(c, a, b, /, alpha=1.0, beta=1.0, *, stream=None):
    """``alpha * (a @ b) + beta * c``, with `c` broadcasting to the shape of the product."""
    z = as_array(c, "addmm")
    x = as_array(a, "addmm")
    y = as_array(b, "addmm")
    alpha = _float_param(alpha, "alpha", "addmm")
    beta = _float_param(beta, "beta", "addmm")
    shape = _matmul_shape("addmm", x.shape, y.shape)
    if broadcast_shapes_pair(z.shape, shape, "addmm") != shape:
        raise ValueError(f"[addmm] input c with shape {shape_str(z.shape)} must broadcast to "
                         f"the output shape {shape_str(shape)}.")
    d = _inexact_dtype("addmm", z, x, y)
    inputs = (_cast(z, d, stream), _cast(x, d, stream), _cast(y, d, stream))
    return make_node(ADDMM, inputs, {"alpha": alpha, "beta": beta}, shape, d, stream)


# ---------------------------------------------------------------------------------------
# inner, outer, tensordot, kron
# ---------------------------------------------------------------------------------------
def _inner_kernel(a, b):
    return np.inner(_up(a), _up(b))


def _outer_kernel(a, b):
    return np.multiply.outer(a.reshape(-1), b.reshape(-1))


def _tensordot_kernel(a, b, axes_a, axes_b):
    return np.tensordot(_up(a), _up(b), axes=(list(axes_a), list(axes_b)))


def _kron_kernel(a, b):
    return np.kron(a, b)


INNER = declare("inner", cpu=_inner_kernel, doc="sum product over the last axes")
OUTER = declare("outer", cpu=_outer_kernel, doc="outer product of the flattened inputs")
TENSORDOT = declare("tensordot", cpu=_tensordot_kernel, doc="sum product over given axes")
KRON = declare("kron", cpu=_kron_kernel, doc="Kronecker product")


def inner(a, b, /, *, stream=None):
    """The inner product: for 1-D inputs the dot product, otherwise the sum product
    over the last axes (shape ``a.shape[:-1] + b.shape[:-1]``); a 0-d input multiplies."""
    x = as_array(a, "inner")
    y = as_array(b, "inner")
    if x.ndim == 0 or y.ndim == 0:
        return multiply(x, y, stream=stream)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"[inner] a and b must have the same last dimension; got shapes "
                         f"{shape_str(x.shape)} and {shape_str(y.shape)}.")
    d = _inexact_dtype("inner", x, y)
    shape = x.shape[:-1] + y.shape[:-1]
    return make_node(INNER, (_cast(x, d, stream), _cast(y, d, stream)), None, shape, d, stream)


def outer(a, b, /, *, stream=None):
    """The outer product of `a` and `b` flattened to 1-D: shape ``(a.size, b.size)``."""
    x = as_array(a, "outer")
    y = as_array(b, "outer")
    d = promote_types(x.dtype, y.dtype)
    shape = (x.size, y.size)
    return make_node(OUTER, (_cast(x, d, stream), _cast(y, d, stream)), None, shape, d, stream)


def _tensordot_axes(axes, nda, ndb):
    """The contracted axes of a and b as two tuples of non-negative ints."""
    if isinstance(axes, (list, tuple)):
        if len(axes) != 2:
            raise ValueError("[tensordot] axes must be a list of two lists.")
        pair = []
        for ax, nd in zip(axes, (nda, ndb)):
            seq = ax if isinstance(ax, (list, tuple)) else [ax]
            pair.append(tuple(norm_axis(i, nd, "tensordot") for i in seq))
        ax_a, ax_b = pair
        if len(ax_a) != len(ax_b):
            raise ValueError(f"[tensordot] axes must have the same size; got {len(ax_a)} axes "
                             f"for a and {len(ax_b)} for b.")
        for s in (ax_a, ax_b):
            if len(set(s)) != len(s):
                raise ValueError(f"[tensordot] Received duplicate axes {s}.")
        return ax_a, ax_b
    if isinstance(axes, (bool, np.bool_)):
        raise TypeError("[tensordot] axes must be an int or a list of two lists, got bool.")
    try:
        n = operator.index(axes)
    except TypeError:
        raise TypeError(f"[tensordot] axes must be an int or a list of two lists, got "
                        f"{type(axes).__name__}.") from None
    if n < 0:
        raise ValueError(f"[tensordot] axis must be greater or equal to 0; got {n}.")
    if n > nda or n > ndb:
        raise ValueError(f"[tensordot] axis must be at most the number of dimensions of a and "
                         f"b; got {n} for arrays with {nda} and {ndb} dimensions.")
    return tuple(range(nda - n, nda)), tuple(range(n))


def tensordot(a, b, /, axes=2, *, stream=None):
    """The sum product of `a` and `b` over the given axes: an int n contracts the last n
    axes of `a` with the first n of `b`; a pair of lists names the axes explicitly. The
    result has a's free axes followed by b's."""
    x = as_array(a, "tensordot")
    y = as_array(b, "tensordot")
    ax_a, ax_b = _tensordot_axes(axes, x.ndim, y.ndim)
    if any(x.shape[i] != y.shape[j] for i, j in zip(ax_a, ax_b)):
        raise ValueError(f"[tensordot] a and b must have the same shape on the contracted axes; "
                         f"got shapes {shape_str(x.shape)} and {shape_str(y.shape)} with axes "
                         f"{list(ax_a)} and {list(ax_b)}.")
    d = _inexact_dtype("tensordot", x, y)
    shape = tuple(s for i, s in enumerate(x.shape) if i not in ax_a) + \
        tuple(s for i, s in enumerate(y.shape) if i not in ax_b)
    return make_node(TENSORDOT, (_cast(x, d, stream), _cast(y, d, stream)),
                     {"axes_a": ax_a, "axes_b": ax_b}, shape, d, stream)


def kron(a, b, *, stream=None):
    """The Kronecker product: blocks ``a[i, j] * b`` laid out in a's shape (the inputs are
    padded with leading size-1 axes to the same number of dimensions)."""
    x = as_array(a, "kron")
    y = as_array(b, "kron")
    if x.size == 0 or y.size == 0:
        raise ValueError(f"[kron] Input arrays cannot be empty; got shapes {shape_str(x.shape)} "
                         f"and {shape_str(y.shape)}.")
    d = promote_types(x.dtype, y.dtype)
    nd = max(x.ndim, y.ndim)
    sa = (1,) * (nd - x.ndim) + x.shape
    sb = (1,) * (nd - y.ndim) + y.shape
    shape = tuple(p * q for p, q in zip(sa, sb))
    return make_node(KRON, (_cast(x, d, stream), _cast(y, d, stream)), None, shape, d, stream)


# ---------------------------------------------------------------------------------------
# vecdot
# ---------------------------------------------------------------------------------------
_SUM_DTYPE = {bool_: int32, int8: int32, int16: int32, uint8: uint32, uint16: uint32}


def _vecdot_kernel(a, b, axis_a, axis_b, sum_dtype):
    a = np.moveaxis(a, axis_a, -1)
    b = np.moveaxis(b, axis_b, -1)
    if a.dtype.kind in "fc" or a.dtype in _HALF:
        return np.vecdot(_up(a), _up(b), axis=-1)
    # products wrap in the operands' dtype, the sum accumulates in MLX's sum dtype
    return np.sum(np.multiply(a, b), axis=-1, dtype=sum_dtype.np)


VECDOT = declare("vecdot", cpu=_vecdot_kernel, doc="sum(conj(a) * b) along an axis")


def vecdot(a, b, /, *, axis=-1, stream=None):
    """``sum(conj(a) * b)`` along `axis` (an axis of each input; the other axes
    broadcast). Integer results are summed in MLX's sum dtype (int32/uint32 for small
    types)."""
    x = as_array(a, "vecdot")
    y = as_array(b, "vecdot")
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError("[vecdot] inputs must be at least 1D.")
    ax_a = norm_axis(axis, x.ndim, "vecdot")
    ax_b = norm_axis(axis, y.ndim, "vecdot")
    if x.shape[ax_a] != y.shape[ax_b]:
        raise ValueError(f"[vecdot] a and b must have the same size along axis {axis}; got "
                         f"shapes {shape_str(x.shape)} and {shape_str(y.shape)}.")
    d = promote_types(x.dtype, y.dtype)
    rest_a = x.shape[:ax_a] + x.shape[ax_a + 1:]
    rest_b = y.shape[:ax_b] + y.shape[ax_b + 1:]
    try:
        shape = broadcast_shapes_pair(rest_a, rest_b, "vecdot")
    except ValueError:
        raise ValueError(f"[vecdot] Shapes {shape_str(x.shape)} and {shape_str(y.shape)} cannot "
                         f"be broadcast (apart from axis {axis}).") from None
    out = _SUM_DTYPE.get(d, d)
    params = {"axis_a": ax_a, "axis_b": ax_b, "sum_dtype": out}
    return make_node(VECDOT, (_cast(x, d, stream), _cast(y, d, stream)), params, shape, out, stream)


__all__ = ["matmul", "addmm", "inner", "outer", "tensordot", "kron", "vecdot"]
