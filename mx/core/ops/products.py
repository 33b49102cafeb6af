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


# ---------------------------------------------------------------------------------------
# transformation rules (vjp, jvp, vmap; see docs/transforms.md)
# ---------------------------------------------------------------------------------------
# Products are bilinear: each jvp is the product with one tangent plus the product with
# the other, and each vjp contracts the cotangent with the other operand. Complex inputs
# follow the elementwise rules' convention (no conjugation, except where the op itself
# conjugates, as vecdot does).
def _mx():
    import mx.core as mx
    return mx


def _inexact(d):
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _first(x, axis):
    from mx.core.transforms import move_batch_axis
    return move_batch_axis(x, axis, 0)


def _lead(x, axis):
    """x with a leading batch axis: moved there, or a size-1 axis when x is not batched
    (it then broadcasts along the batch)."""
    return _first(x, axis) if axis is not None else _mx().expand_dims(x, 0)


def _core_ndim(x, axis):
    return x.ndim - (axis is not None)


def _bilinear_jvp(product):
    """jvp of a product bilinear in its two operands: product(ta, b) + product(a, tb)."""
    def jvp_rule(primals, tangents, out, /, **params):
        mx = _mx()
        if not _inexact(out.dtype):
            return mx.zeros(out.shape, out.dtype)
        (a, b), (ta, tb) = primals, tangents
        res = None
        if ta is not None:
            res = product(ta, b, out, **params)
        if tb is not None:
            t = product(a, tb, out, **params)
            res = t if res is None else res + t
        return res
    return jvp_rule


# --- matmul, addmm -------------------------------------------------------------------------
def _is_matrix_transpose(x):
    prim = x._prim
    return prim is not None and prim.name == "transpose" and x.ndim == 2


def _matmul_grads(a, b, ct):
    """(ct @ b^T, a^T @ ct) summed back to the shapes of a and b (1-D operands are a row
    and a column; broadcast batch axes are summed)."""
    from mx.core.transforms import unbroadcast
    mx = _mx()
    am = mx.expand_dims(a, 0) if a.ndim == 1 else a
    bm = mx.expand_dims(b, -1) if b.ndim == 1 else b
    batch = ct.shape[:ct.ndim - (a.ndim > 1) - (b.ndim > 1)]
    ctm = mx.reshape(ct, batch + (am.shape[-2], bm.shape[-1]))
    # An operand that is itself a transposed matrix (nn.Linear's x @ W.T) gets its gradient
    # as the transpose of a product computed in the transposed order: the transpose's own
    # vjp then hands back a contiguous matrix, on which the optimizer's elementwise work
    # runs at full speed.
    if _is_matrix_transpose(bm):
        gb = mx.swapaxes(mx.matmul(mx.swapaxes(ctm, -1, -2), am), -1, -2)
    else:
        gb = mx.matmul(mx.swapaxes(am, -1, -2), ctm)
    if _is_matrix_transpose(am):
        ga = mx.swapaxes(mx.matmul(bm, mx.swapaxes(ctm, -1, -2)), -1, -2)
    else:
        ga = mx.matmul(ctm, mx.swapaxes(bm, -1, -2))
    return (mx.reshape(unbroadcast(ga, am.shape), a.shape),
            mx.reshape(unbroadcast(gb, bm.shape), b.shape))


def _batched_matmul(a, aa, b, ab):
    """a @ b per example, batch first. 1-D examples become a row (a) or a column (b);
    every operand is padded to the same number of batch axes so that the mapped axis
    lines up."""
    mx = _mx()
    a, b = _lead(a, aa), _lead(b, ab)
    a_vec, b_vec = a.ndim == 2, b.ndim == 2
    if a_vec:
        a = mx.expand_dims(a, 1)
    if b_vec:
        b = mx.expand_dims(b, -1)
    nb = max(a.ndim, b.ndim)
    a = mx.reshape(a, a.shape[:1] + (1,) * (nb - a.ndim) + a.shape[1:])
    b = mx.reshape(b, b.shape[:1] + (1,) * (nb - b.ndim) + b.shape[1:])
    res = mx.matmul(a, b)
    if a_vec and b_vec:
        return mx.squeeze(res, (-2, -1))
    if a_vec:
        return mx.squeeze(res, -2)
    if b_vec:
        return mx.squeeze(res, -1)
    return res


def _batch_of(inputs, axes):
    return next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)


def _install_matmul_rules():
    mx = _mx()

    def matmul_vjp(primals, ct, out):
        return list(_matmul_grads(primals[0], primals[1], ct))

    MATMUL.vjp = matmul_vjp
    MATMUL.jvp = _bilinear_jvp(lambda a, b, out: mx.matmul(a, b))
    MATMUL.vmap = lambda inputs, axes, out: (
        _batched_matmul(inputs[0], axes[0], inputs[1], axes[1]), 0)

    def addmm_vjp(primals, ct, out, /, alpha, beta):
        from mx.core.transforms import unbroadcast
        c, a, b = primals
        ga, gb = _matmul_grads(a, b, ct * alpha if alpha != 1.0 else ct)
        # beta == 0 leaves c out of the result altogether
        gc = unbroadcast(ct * beta if beta != 1.0 else ct, c.shape) if beta != 0.0 else \
            mx.zeros(c.shape, ct.dtype)
        return [gc, ga, gb]

    def addmm_jvp(primals, tangents, out, /, alpha, beta):
        (c, a, b), (tc, ta, tb) = primals, tangents
        res = None
        if ta is not None:
            res = mx.matmul(ta, b)
        if tb is not None:
            t = mx.matmul(a, tb)
            res = t if res is None else res + t
        if res is not None and alpha != 1.0:
            res = res * alpha
        if tc is not None and beta != 0.0:
            t = tc * beta if beta != 1.0 else tc
            res = t if res is None else res + t
        if res is None:
            return mx.zeros(out.shape, out.dtype)
        return mx.broadcast_to(res, out.shape) if res.shape != out.shape else res

    def addmm_vmap(inputs, axes, out, /, alpha, beta):
        (c, a, b), (ac, aa, ab) = inputs, axes
        size = _batch_of(inputs, axes)
        res = _batched_matmul(a, aa, b, ab)
        if alpha != 1.0:
            res = res * alpha
        if beta != 0.0:
            cb = _lead(c, ac)
            cb = mx.reshape(cb, cb.shape[:1] + (1,) * (out.ndim - (cb.ndim - 1)) + cb.shape[1:])
            res = res + (cb * beta if beta != 1.0 else cb)
        shape = (size,) + out.shape
        return (mx.broadcast_to(res, shape) if res.shape != shape else res), 0

    ADDMM.vjp = addmm_vjp
    ADDMM.jvp = addmm_jvp
    ADDMM.vmap = addmm_vmap


# --- inner, outer, tensordot, kron -----------------------------------------------------------
def _install_contraction_rules():
    mx = _mx()

    def inner_vjp(primals, ct, out):
        a, b = primals
        ni, nj = a.ndim - 1, b.ndim - 1
        ga = mx.tensordot(ct, b, axes=[list(range(ni, ni + nj)), list(range(nj))])
        gb = mx.tensordot(ct, a, axes=[list(range(ni)), list(range(ni))])
        return [ga, gb]

    def inner_vmap(inputs, axes, out):
        (a, b), (aa, ab) = inputs, axes
        if ab is None:
            return inner(_first(a, aa), b), 0
        if aa is None:
            return inner(a, _first(b, ab)), a.ndim - 1
        a, b = _first(a, aa), _first(b, ab)
        size, k = a.shape[0], a.shape[-1]
        ar = mx.reshape(a, (size, _prod(a.shape[1:-1]), k))
        br = mx.reshape(b, (size, _prod(b.shape[1:-1]), k))
        res = mx.matmul(ar, mx.swapaxes(br, -1, -2))
        return mx.reshape(res, (size,) + out.shape), 0

    INNER.vjp = inner_vjp
    INNER.jvp = _bilinear_jvp(lambda a, b, out: inner(a, b))
    INNER.vmap = inner_vmap

    def outer_vjp(primals, ct, out):
        a, b = primals
        if not _inexact(out.dtype):
            return [None, None]
        af, bf = mx.reshape(a, (a.size,)), mx.reshape(b, (b.size,))
        return [mx.reshape(mx.matmul(ct, bf), a.shape), mx.reshape(mx.matmul(af, ct), b.shape)]

    def outer_vmap(inputs, axes, out):
        (a, b), (aa, ab) = inputs, axes
        a, b = _lead(a, aa), _lead(b, ab)
        a = mx.reshape(a, (a.shape[0], _prod(a.shape[1:]), 1))
        b = mx.reshape(b, (b.shape[0], 1, _prod(b.shape[1:])))
        return a * b, 0

    OUTER.vjp = outer_vjp
    OUTER.jvp = _bilinear_jvp(lambda a, b, out: outer(a, b))
    OUTER.vmap = outer_vmap

    def tensordot_vjp(primals, ct, out, /, axes_a, axes_b):
        a, b = primals
        free_a = [i for i in range(a.ndim) if i not in axes_a]
        free_b = [i for i in range(b.ndim) if i not in axes_b]
        nfa, nfb = len(free_a), len(free_b)
        # ct . b over b's free axes: a's free axes, then b's contracted ones in b's order
        ga = mx.tensordot(ct, b, axes=[list(range(nfa, nfa + nfb)), free_b])
        b_order = sorted(axes_b)
        perm_a = [free_a.index(d) if d in free_a
                  else nfa + b_order.index(axes_b[axes_a.index(d)]) for d in range(a.ndim)]
        # a . ct over a's free axes: a's contracted axes in a's order, then b's free ones
        gb = mx.tensordot(a, ct, axes=[free_a, list(range(nfa))])
        a_order = sorted(axes_a)
        perm_b = [len(axes_a) + free_b.index(e) if e in free_b
                  else a_order.index(axes_a[axes_b.index(e)]) for e in range(b.ndim)]
        return [mx.transpose(ga, perm_a), mx.transpose(gb, perm_b)]

    def tensordot_product(a, b, out, axes_a, axes_b):
        return mx.tensordot(a, b, axes=[list(axes_a), list(axes_b)])

    def tensordot_vmap(inputs, axes, out, /, axes_a, axes_b):
        (a, b), (aa, ab) = inputs, axes
        if ab is None:
            return tensordot_product(_first(a, aa), b, out, [i + 1 for i in axes_a], axes_b), 0
        if aa is None:
            res = tensordot_product(a, _first(b, ab), out, axes_a, [j + 1 for j in axes_b])
            return res, a.ndim - len(axes_a)
        # both batched: a batched matrix product of (free a, contracted) by (contracted,
        # free b)
        a, b = _first(a, aa), _first(b, ab)
        size = a.shape[0]
        free_a = [i + 1 for i in range(a.ndim - 1) if i not in axes_a]
        free_b = [j + 1 for j in range(b.ndim - 1) if j not in axes_b]
        at = mx.transpose(a, [0] + free_a + [i + 1 for i in axes_a])
        bt = mx.transpose(b, [0] + [j + 1 for j in axes_b] + free_b)
        k = _prod(at.shape[1 + len(free_a):])
        am = mx.reshape(at, (size, _prod(at.shape[1:1 + len(free_a)]), k))
        bm = mx.reshape(bt, (size, k, _prod(bt.shape[1 + len(axes_b):])))
        return mx.reshape(mx.matmul(am, bm), (size,) + out.shape), 0

    TENSORDOT.vjp = tensordot_vjp
    TENSORDOT.jvp = _bilinear_jvp(tensordot_product)
    TENSORDOT.vmap = tensordot_vmap

    def kron_factors(a, b, lead=0):
        """a and b reshaped so that their product, in interleaved axes (a0, b0, a1, b1,
        ...), reshapes to the Kronecker product (`lead` leading axes kept)."""
        nd = max(a.ndim, b.ndim) - lead
        sa = a.shape[:lead] + (1,) * (nd - (a.ndim - lead)) + a.shape[lead:]
        sb = b.shape[:lead] + (1,) * (nd - (b.ndim - lead)) + b.shape[lead:]
        ai = sa[:lead] + tuple(v for d in sa[lead:] for v in (d, 1))
        bi = sb[:lead] + tuple(v for d in sb[lead:] for v in (1, d))
        return mx.reshape(a, ai), mx.reshape(b, bi), sa[lead:], sb[lead:]

    def kron_vjp(primals, ct, out):
        a, b = primals
        if not _inexact(out.dtype):
            return [None, None]
        ae, be, sa, sb = kron_factors(a, b)
        split = tuple(v for p, q in zip(sa, sb) for v in (p, q))
        cr = mx.reshape(ct, split)
        n = len(split)
        ga = mx.sum(cr * be, axis=tuple(range(1, n, 2)))
        gb = mx.sum(cr * ae, axis=tuple(range(0, n, 2)))
        return [mx.reshape(ga, a.shape), mx.reshape(gb, b.shape)]

    def kron_vmap(inputs, axes, out):
        (a, b), (aa, ab) = inputs, axes
        size = _batch_of(inputs, axes)
        ae, be, _, _ = kron_factors(_lead(a, aa), _lead(b, ab), lead=1)
        return mx.reshape(ae * be, (size,) + out.shape), 0

    KRON.vjp = kron_vjp
    KRON.jvp = _bilinear_jvp(lambda a, b, out: kron(a, b))
    KRON.vmap = kron_vmap


# --- vecdot --------------------------------------------------------------------------------
def _install_vecdot_rules():
    mx = _mx()

    def vecdot_vjp(primals, ct, out, /, axis_a, axis_b, sum_dtype):
        from mx.core.transforms import unbroadcast
        a, b = primals
        if not _inexact(out.dtype):
            return [None, None]
        am, bm = mx.moveaxis(a, axis_a, -1), mx.moveaxis(b, axis_b, -1)
        c = mx.expand_dims(ct, -1)
        cplx = out.dtype.name == "complex64"
        # out = sum(conj(a) * b): b's cotangent is ct * conj(a), a's the conjugate of ct * b
        ga = c * bm
        gb = c * (mx.conjugate(am) if cplx else am)
        if cplx:
            ga = mx.conjugate(ga)
        return [mx.moveaxis(unbroadcast(ga, am.shape), -1, axis_a),
                mx.moveaxis(unbroadcast(gb, bm.shape), -1, axis_b)]

    def vecdot_product(a, b, out, axis_a, axis_b, sum_dtype):
        params = {"axis_a": axis_a, "axis_b": axis_b, "sum_dtype": sum_dtype}
        return make_node(VECDOT, (a, b), params, out.shape, out.dtype)

    def vecdot_vmap(inputs, axes, out, /, axis_a, axis_b, sum_dtype):
        (a, b), (aa, ab) = inputs, axes
        size = _batch_of(inputs, axes)
        # the contracted axis last, the batch first, the other axes right-aligned
        xs = []
        for x, ax, axis in ((a, aa, axis_a), (b, ab, axis_b)):
            if ax is None:
                xs.append(mx.moveaxis(x, axis, -1))
                continue
            x = _first(x, ax)
            x = mx.moveaxis(x, axis + 1, -1)
            x = mx.reshape(x, x.shape[:1] + (1,) * (out.ndim - (x.ndim - 2)) + x.shape[1:])
            xs.append(x)
        params = {"axis_a": xs[0].ndim - 1, "axis_b": xs[1].ndim - 1, "sum_dtype": sum_dtype}
        return make_node(VECDOT, tuple(xs), params, (size,) + out.shape, out.dtype), 0

    VECDOT.vjp = vecdot_vjp
    VECDOT.jvp = _bilinear_jvp(vecdot_product)
    VECDOT.vmap = vecdot_vmap


def install_rules():
    """Set vjp, jvp and vmap on every primitive of this module (called by mx.core)."""
    _install_matmul_rules()
    _install_contraction_rules()
    _install_vecdot_rules()
