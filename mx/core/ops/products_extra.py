"""Structured products: block_masked_mm, gather_mm, segmented_mm, hadamard_transform.

Each is one primitive whose kernel reduces to NumPy/BLAS matrix products on masked,
gathered or segmented operands; the Walsh-Hadamard transform is a vectorised butterfly.
Operands are cast to the result dtype in the graph, so the kernels see one dtype;
float16/bfloat16 are multiplied in float32 (no half-precision BLAS) and the scheduler
casts the result back. Primitives always see matrices: 1-D operands are reshaped to a row
(`a`) or a column (`b`) before the node and the added axis is removed after it.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from mx.core._array import array, broadcast_shapes_pair, make_node, promote_types, shape_str
from mx.core.dtypes import bfloat16, float32, uint32
from mx.core.ops._util import as_array, prod
from mx.core.ops.elementwise import astype
from mx.core.ops.products import _inexact_dtype
from mx.core.ops.shape import reshape
from mx.core.primitives import declare

_HALF = (np.dtype(np.float16), bfloat16.np)
_REAL_FLOATS = ("float16", "bfloat16", "float32", "float64")
_KIND_UINT, _KIND_INT = 1, 2  # Dtype.kind of unsigned and signed integer types


def _up(x):
    """float16/bfloat16 operands computed in float32 (no half-precision BLAS)."""
    return x.astype(np.float32) if x.dtype in _HALF else x


def _cast(x, d, stream):
    return x if x.dtype is d else astype(x, d, stream=stream)


def _real_float_dtype(op, x, y):
    d = promote_types(x.dtype, y.dtype)
    if d.name not in _REAL_FLOATS:
        raise ValueError(f"[{op}] Only real floating point types are supported but "
                         f"{x.dtype.name} and {y.dtype.name} were provided which results in "
                         f"{d.name}, which is not a real floating point type.")
    return d


def _operand(x, op):
    x = as_array(x, op)
    if x.ndim == 0:
        raise ValueError(f"[{op}] Got 0 dimension input. Inputs must have at least one dimension.")
    return x


def _as_matrices(op, x, y, stream):
    """x as (..., M, K) and y as (..., K, N) (1-D operands become a row and a column)."""
    xm = reshape(x, (1,) + x.shape, stream=stream) if x.ndim == 1 else x
    ym = reshape(y, y.shape + (1,), stream=stream) if y.ndim == 1 else y
    if xm.shape[-1] != ym.shape[-2]:
        raise ValueError(f"[{op}] Last dimension of first input with shape {shape_str(xm.shape)} "
                         f"must match second to last dimension of second input with shape "
                         f"{shape_str(ym.shape)}.")
    return xm, ym


def _squeeze(out, x, y, stream):
    """The product of the matrix forms with the axes added for 1-D operands removed."""
    shape = out.shape
    if y.ndim == 1:
        shape = shape[:-1]
    if x.ndim == 1:
        shape = shape[:-2] + shape[-1:] if y.ndim > 1 else shape[:-1]
    return out if shape == out.shape else reshape(out, shape, stream=stream)


def _index_array(idx, name, op):
    if not isinstance(idx, array):
        raise TypeError(f"[{op}] {name} must be an array or None, got {type(idx).__name__}.")
    if idx.dtype.kind not in (_KIND_UINT, _KIND_INT):
        what = "indices" if op == "gather_mm" else "segments"
        raise ValueError(f"[{op}] Got {what} with invalid dtype. {what.capitalize()} must be "
                         f"integral.")
    return idx


# ---------------------------------------------------------------------------------------
# block_masked_mm
# ---------------------------------------------------------------------------------------
def _expand_mask(mask, bs, rows, cols, dtype):
    """A block mask repeated to element resolution and cut to (rows, cols); bool masks stay
    bool (they select), numeric ones are cast to the compute dtype (they scale)."""
    full = np.repeat(np.repeat(mask, bs, axis=-2), bs, axis=-1)[..., :rows, :cols]
    if full.dtype == np.bool_:
        return full
    if full.dtype.kind == "c" and dtype.kind != "c":
        full = full.real
    return full.astype(dtype, copy=False)


def _apply_mask(x, m):
    return np.where(m, x, x.dtype.type(0)) if m.dtype == np.bool_ else x * m


def _block_masked_mm_kernel(a, b, *masks, block_size, has):
    a, b = _up(a), _up(b)
    (M, K), N = a.shape[-2:], b.shape[-1]
    it = iter(masks)
    mo, ml, mr = (next(it) if h else None for h in has)
    if ml is not None:
        a = _apply_mask(a, _expand_mask(ml, block_size, M, K, a.dtype))
    if mr is not None:
        b = _apply_mask(b, _expand_mask(mr, block_size, K, N, b.dtype))
    out = np.matmul(a, b)
    if mo is not None:
        out = _apply_mask(out, _expand_mask(mo, block_size, M, N, out.dtype))
    return out


BLOCK_MASKED_MM = declare("block_masked_mm", cpu=_block_masked_mm_kernel,
                          doc="matrix product with block masks on the operands and output")


def _block_mask(mask, name, target, stream):
    if mask is None:
        return None
    m = as_array(mask, "block_masked_mm")
    try:
        ok = broadcast_shapes_pair(m.shape, target, "block_masked_mm") == target
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"[block_masked_mm] {name} with shape {shape_str(m.shape)} cannot be "
                         f"broadcast to the block shape {shape_str(target)}.")
    return m


def block_masked_mm(a, b, /, block_size=64, mask_out=None, mask_lhs=None, mask_rhs=None, *,
                    stream=None):
    """The matrix product ``a @ b`` with ``block_size x block_size`` blocks masked.

    Each mask has one entry per block (the last block of a dimension may be partial):
    `mask_lhs` per block of `a` (shape ``(..., ceil(M/bs), ceil(K/bs))``), `mask_rhs` per
    block of `b` and `mask_out` per block of the result. Bool masks keep or zero a block,
    numeric masks scale it. Batch axes broadcast as in matmul.
    """
    x = _operand(a, "block_masked_mm")
    y = _operand(b, "block_masked_mm")
    if isinstance(block_size, (float, str)) or block_size is None:
        raise TypeError(f"[block_masked_mm] block_size must be an int, got "
                        f"{type(block_size).__name__}.")
    bs = operator.index(block_size)
    if bs <= 0:
        raise ValueError(f"[block_masked_mm] block_size must be positive, got {bs}.")
    d = _inexact_dtype("block_masked_mm", x, y)
    xm, ym = _as_matrices("block_masked_mm", x, y, stream)
    (M, K), N = xm.shape[-2:], ym.shape[-1]
    batch = broadcast_shapes_pair(xm.shape[:-2], ym.shape[:-2], "block_masked_mm")
    tm, tk, tn = (-(-s // bs) for s in (M, K, N))
    masks = (_block_mask(mask_out, "mask_out", batch + (tm, tn), stream),
             _block_mask(mask_lhs, "mask_lhs", batch + (tm, tk), stream),
             _block_mask(mask_rhs, "mask_rhs", batch + (tk, tn), stream))
    has = tuple(m is not None for m in masks)
    inputs = (_cast(xm, d, stream), _cast(ym, d, stream)) + tuple(m for m in masks if m is not None)
    out = make_node(BLOCK_MASKED_MM, inputs, {"block_size": bs, "has": has}, batch + (M, N), d,
                    stream)
    return _squeeze(out, x, y, stream)


# ---------------------------------------------------------------------------------------
# gather_mm
# ---------------------------------------------------------------------------------------
def _gather_mm_kernel(a, b, lhs, rhs):
    A = a.reshape((-1,) + a.shape[-2:])
    B = b.reshape((-1,) + b.shape[-2:])
    lhs, rhs = np.broadcast_arrays(lhs, rhs)
    # out-of-range indices are undefined in MLX; wrapping keeps the read in bounds
    return np.matmul(_up(np.take(A, lhs, axis=0, mode="wrap")),
                     _up(np.take(B, rhs, axis=0, mode="wrap")))


GATHER_MM = declare("gather_mm", cpu=_gather_mm_kernel,
                    doc="matrix product of operands gathered along their flattened batch axes")


def _default_indices(batch, stream):
    from mx.core.ops.creation import arange
    return reshape(arange(prod(batch), dtype=uint32, stream=stream), batch, stream=stream)


def gather_mm(a, b, /, lhs_indices=None, rhs_indices=None, *, sorted_indices=False,
              stream=None):
    """Matrix products of matrices gathered from `a` and `b`.

    ``lhs_indices`` and ``rhs_indices`` hold flat indices into the batch axes (all but the
    last two) of `a` and `b`; they broadcast together and their shape leads the result's.
    A missing index array stands for every matrix of its operand in order; with neither
    this is matmul. `sorted_indices` is a performance hint only.
    """
    x = _operand(a, "gather_mm")
    y = _operand(b, "gather_mm")
    li = None if lhs_indices is None else _index_array(lhs_indices, "lhs_indices", "gather_mm")
    ri = None if rhs_indices is None else _index_array(rhs_indices, "rhs_indices", "gather_mm")
    d = _real_float_dtype("gather_mm", x, y)
    xm, ym = _as_matrices("gather_mm", x, y, stream)
    xm, ym = _cast(xm, d, stream), _cast(ym, d, stream)
    if li is None and ri is None:
        from mx.core.ops.products import matmul
        return _squeeze(matmul(xm, ym, stream=stream), x, y, stream)
    li = _default_indices(xm.shape[:-2], stream) if li is None else li
    ri = _default_indices(ym.shape[:-2], stream) if ri is None else ri
    idx = broadcast_shapes_pair(li.shape, ri.shape, "gather_mm")
    shape = idx + (xm.shape[-2], ym.shape[-1])
    out = make_node(GATHER_MM, (xm, ym, li, ri), None, shape, d, stream)
    return _squeeze(out, x, y, stream)


# ---------------------------------------------------------------------------------------
# segmented_mm
# ---------------------------------------------------------------------------------------
def _segment_mask(segments, K):
    """(S, K) bool: column k lies in segment s = [start, end) (clipped to [0, K))."""
    seg = segments.reshape(-1, 2)
    k = np.arange(K)
    return (k >= seg[:, :1]) & (k < seg[:, 1:])


def _segmented_mm_kernel(a, b, segments):
    (M, K), N = a.shape, b.shape[1]
    mask = _segment_mask(segments, K)
    a = _up(a)
    # one batched BLAS product of `a` with the columns outside each segment zeroed
    out = np.matmul(np.where(mask[:, None, :], a[None], a.dtype.type(0)), _up(b))
    return out.reshape(segments.shape[:-1] + (M, N))


SEGMENTED_MM = declare("segmented_mm", cpu=_segmented_mm_kernel,
                       doc="matrix product per segment of the inner dimension")


def segmented_mm(a, b, /, segments, *, stream=None):
    """``a[:, s:e] @ b[s:e, :]`` for every ``[s, e]`` pair in the last axis of `segments`.

    `a` is (M, K) and `b` is (K, N); the result has shape ``segments.shape[:-1] + (M, N)``.
    Segment bounds are clipped to [0, K]; an empty segment gives zeros.
    """
    x = as_array(a, "segmented_mm")
    y = as_array(b, "segmented_mm")
    seg = _index_array(segments, "segments", "segmented_mm")
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError(f"[segmented_mm] Batched matmul not supported; got shapes "
                         f"{shape_str(x.shape)} and {shape_str(y.shape)}.")
    if seg.ndim == 0 or seg.shape[-1] != 2:
        raise ValueError(f"[segmented_mm] The segments should have shape (..., 2) but "
                         f"{shape_str(seg.shape)} was provided.")
    d = _real_float_dtype("segmented_mm", x, y)
    _as_matrices("segmented_mm", x, y, stream)
    shape = seg.shape[:-1] + (x.shape[0], y.shape[1])
    return make_node(SEGMENTED_MM, (_cast(x, d, stream), _cast(y, d, stream), seg), None,
                     shape, d, stream)


# ---------------------------------------------------------------------------------------
# hadamard_transform
# ---------------------------------------------------------------------------------------
# The non-power-of-two factors MLX uses, row by row ('+' = 1, '-' = -1); the transform of
# size m * 2^k is kron(H_m, H_{2^k}) with H_{2^k} Sylvester's matrix.
_H_ROWS = {
    12: "+-++++++++++ --+-+-+-+-+- +++-++----++ +---+--+-++- +++++-++---- +-+---+--+-+ "
        "++--+++-++-- +--++---+--+ ++----+++-++ +--+-++---+- ++++----+++- +-+--+-++---",
    20: "+----+----++--++-++- -+----+---+++---+-++ --+----+---+++-+-+-+ "
        "---+----+---+++++-+- ----+----++--++-++-+ -+++++-----+--+++--+ "
        "+-+++-+---+-+--+++-- ++-++--+---+-+--+++- +++-+---+---+-+--+++ "
        "++++-----++--+-+--++ --++-+-++-+-----++++ ---++-+-++-+---+-+++ "
        "+---++-+-+--+--++-++ ++---++-+----+-+++-+ -++---++-+----+++++- "
        "-+--+--++-+----+---- +-+-----++-+----+--- -+-+-+---+--+----+-- "
        "--+-+++------+----+- +--+--++------+----+",
    28: "+------++----++-+--+-+--++-- -+-----+++-----+-+--+-+--++- "
        "--+-----+++---+-+-+----+--++ ---+-----+++---+-+-+-+--+--+ "
        "----+-----+++---+-+-+++--+-- -----+-----++++--+-+--++--+- "
        "------++----++-+--+-+--++--+ --++++-+-------++--+++-+--+- "
        "---++++-+-----+-++--+-+-+--+ +---+++--+----++-++--+-+-+-- "
        "++---++---+----++-++--+-+-+- +++---+----+----++-++--+-+-+ "
        "++++--------+-+--++-++--+-+- -++++--------+++--++--+--+-+ "
        "-+-++-++--++--+--------++++- +-+-++--+--++--+--------++++ "
        "-+-+-++--+--++--+----+---+++ +-+-+-++--+--+---+---++---++ "
        "++-+-+-++--+------+--+++---+ -++-+-+-++--+------+-++++--- "
        "+-++-+---++--+------+-++++-- -++--++-+-++-+++----++------ "
        "+-++--++-+-++-+++-----+----- ++-++---+-+-++-+++-----+---- "
        "-++-++-+-+-+-+--+++-----+--- --++-++++-+-+----+++-----+-- "
        "+--++-+-++-+-+----+++-----+- ++--++-+-++-+-+----++------+",
}
_H_CACHE: dict = {}


def _h_matrix(m, dtype):
    key = (m, np.dtype(dtype))
    if key not in _H_CACHE:
        rows = _H_ROWS[m].split()
        _H_CACHE[key] = np.array([[1 if c == "+" else -1 for c in r] for r in rows], dtype=dtype)
    return _H_CACHE[key]


def _hadamard_kernel(x, m, scale, transpose):
    shape = x.shape
    y = _up(x)
    n = shape[-1] if len(shape) else 1
    p = n // m
    y = y.reshape(-1, m, p)
    # Sylvester part: one butterfly stage per bit of the index within the 2^k block
    half = p // 2
    while half >= 1:
        z = y.reshape(-1, 2, half)
        y = np.stack((z[:, 0] + z[:, 1], z[:, 0] - z[:, 1]), axis=1)
        half //= 2
    y = y.reshape(-1, m, p)
    if m > 1:
        h = _h_matrix(m, y.dtype)
        y = np.matmul(h.T if transpose else h, y)
    y = y * y.dtype.type(scale)
    return y.reshape(shape)


HADAMARD = declare("hadamard_transform", cpu=_hadamard_kernel,
                   doc="Walsh-Hadamard transform along the last axis")


def _hadamard_factor(n):
    for m in (1, 12, 20, 28):
        q = n // m
        if n % m == 0 and q & (q - 1) == 0:
            return m
    raise ValueError(f"[hadamard_transform] Only supports n = m*2^k where m in (1, 12, 20, 28); "
                     f"got n = {n}.")


def hadamard_transform(a, scale=None, stream=None):
    """The Walsh-Hadamard transform along the last axis: ``(H @ x) * scale``.

    The size n of the last axis must be ``m * 2^k`` with m in (1, 12, 20, 28); H is then
    ``kron(H_m, H_{2^k})``. `scale` defaults to ``1/sqrt(n)`` (an orthonormal transform).
    Real floating inputs keep their dtype, all others give float32.
    """
    if not isinstance(a, array):
        raise TypeError(f"[hadamard_transform] a must be an array, got {type(a).__name__}.")
    if a.size == 0:
        raise ValueError("[hadamard_transform] Does not support empty arrays.")
    n = a.shape[-1] if a.ndim else 1
    m = _hadamard_factor(n)
    if scale is None:
        scale = 1.0 / math.sqrt(n)
    elif isinstance(scale, (str, bytes)):
        raise TypeError(f"[hadamard_transform] scale must be a real number or None, got "
                        f"{type(scale).__name__}.")
    else:
        try:
            scale = float(scale)
        except (TypeError, ValueError):
            raise TypeError(f"[hadamard_transform] scale must be a real number or None, got "
                            f"{type(scale).__name__}.") from None
    d = a.dtype if a.dtype.name in _REAL_FLOATS else float32
    params = {"m": m, "scale": scale, "transpose": False}
    return make_node(HADAMARD, (_cast(a, d, stream),), params, a.shape, d, stream)


__all__ = ["block_masked_mm", "gather_mm", "segmented_mm", "hadamard_transform"]


# ---------------------------------------------------------------------------------------
# transformation rules (vjp, jvp, vmap; see docs/transforms.md)
# ---------------------------------------------------------------------------------------
# Index and mask inputs are treated as constants (their cotangents are None). The three
# products are bilinear in (a, b), so each jvp is the product with one tangent plus the
# product with the other; the Hadamard transform is linear.
def _mx():
    import mx.core as mx
    return mx


def _loop_vmap(build):
    """A vmap rule applying the unbatched primitive per example and stacking."""
    def vmap_rule(inputs, axes, out, /, **params):
        mx = _mx()
        size = next(x.shape[ax] for x, ax in zip(inputs, axes) if ax is not None)
        res = []
        for i in range(size):
            xs = [x if ax is None else mx.take(x, i, axis=ax) for x, ax in zip(inputs, axes)]
            res.append(build(xs, out, **params))
        return mx.stack(res), 0
    return vmap_rule


def _node(prim):
    def build(xs, out, **params):
        return make_node(prim, tuple(xs), params or None, out.shape, out.dtype)
    return build


def _install_block_masked_mm_rules():
    mx = _mx()
    from mx.core.transforms import unbroadcast

    def masks_of(primals, has):
        it = iter(primals[2:])
        return [next(it) if h else None for h in has]

    def t(m):
        return None if m is None else mx.swapaxes(m, -1, -2)

    def vjp(primals, ct, out, /, block_size, has):
        a, b = primals[:2]
        mo, ml, mr = masks_of(primals, has)
        # out = Mo * ((A * Ml) @ (B * Mr)): each gradient is a block-masked product again
        ga = block_masked_mm(ct, mx.swapaxes(b, -1, -2), block_size, mask_out=ml,
                             mask_lhs=mo, mask_rhs=t(mr))
        gb = block_masked_mm(mx.swapaxes(a, -1, -2), ct, block_size, mask_out=mr,
                             mask_lhs=t(ml), mask_rhs=mo)
        return [unbroadcast(ga, a.shape), unbroadcast(gb, b.shape)] + [None] * sum(has)

    def jvp(primals, tangents, out, /, block_size, has):
        a, b = primals[:2]
        ta, tb = tangents[:2]
        mo, ml, mr = masks_of(primals, has)
        res = None
        for x, y in ((ta, b), (a, tb)):
            if x is None or y is None:
                continue
            r = block_masked_mm(x, y, block_size, mask_out=mo, mask_lhs=ml, mask_rhs=mr)
            res = r if res is None else res + r
        return res if res is not None else mx.zeros(out.shape, out.dtype)

    BLOCK_MASKED_MM.vjp = vjp
    BLOCK_MASKED_MM.jvp = jvp
    BLOCK_MASKED_MM.vmap = _loop_vmap(_node(BLOCK_MASKED_MM))


def _install_gather_mm_rules():
    mx = _mx()

    def vjp(primals, ct, out):
        a, b, li, ri = primals
        (M, K), N = a.shape[-2:], b.shape[-1]
        idx = ct.shape[:-2]
        lf = mx.reshape(mx.broadcast_to(li, idx), (-1,))
        rf = mx.reshape(mx.broadcast_to(ri, idx), (-1,))
        A = mx.reshape(a, (-1, M, K))
        B = mx.reshape(b, (-1, K, N))
        c = mx.reshape(ct, (-1, M, N))
        # the gradient of each gathered matrix, scatter-added back to where it came from
        ga = mx.matmul(c, mx.swapaxes(mx.take(B, rf, axis=0), -1, -2))
        gb = mx.matmul(mx.swapaxes(mx.take(A, lf, axis=0), -1, -2), c)
        ga = mx.zeros(A.shape, out.dtype).at[lf].add(ga)
        gb = mx.zeros(B.shape, out.dtype).at[rf].add(gb)
        return [mx.reshape(ga, a.shape), mx.reshape(gb, b.shape), None, None]

    def jvp(primals, tangents, out):
        a, b, li, ri = primals
        ta, tb = tangents[:2]
        res = None
        if ta is not None:
            res = gather_mm(ta, b, li, ri)
        if tb is not None:
            r = gather_mm(a, tb, li, ri)
            res = r if res is None else res + r
        return res if res is not None else mx.zeros(out.shape, out.dtype)

    GATHER_MM.vjp = vjp
    GATHER_MM.jvp = jvp
    GATHER_MM.vmap = _loop_vmap(_node(GATHER_MM))


def _install_segmented_mm_rules():
    mx = _mx()

    def vjp(primals, ct, out):
        a, b, seg = primals
        (M, K), N = a.shape, b.shape[1]
        s = mx.reshape(seg, (-1, 2))
        k = mx.arange(K)
        mask = mx.logical_and(k >= s[:, 0:1], k < s[:, 1:2]).astype(out.dtype)  # (S, K)
        c = mx.reshape(ct, (-1, M, N))
        ga = mx.sum(mx.matmul(c, mx.transpose(b)) * mx.expand_dims(mask, 1), axis=0)
        gb = mx.sum(mx.matmul(mx.transpose(a), c) * mx.expand_dims(mask, 2), axis=0)
        return [ga, gb, None]

    def jvp(primals, tangents, out):
        a, b, seg = primals
        ta, tb = tangents[:2]
        res = None
        if ta is not None:
            res = segmented_mm(ta, b, seg)
        if tb is not None:
            r = segmented_mm(a, tb, seg)
            res = r if res is None else res + r
        return res if res is not None else mx.zeros(out.shape, out.dtype)

    SEGMENTED_MM.vjp = vjp
    SEGMENTED_MM.jvp = jvp
    SEGMENTED_MM.vmap = _loop_vmap(_node(SEGMENTED_MM))


def _install_hadamard_rules():
    from mx.core.transforms import move_batch_axis

    def apply(x, m, scale, transpose):
        params = {"m": m, "scale": scale, "transpose": transpose}
        return make_node(HADAMARD, (x,), params, x.shape, x.dtype)

    def vjp(primals, ct, out, /, m, scale, transpose):
        # y = s * H x, so x's cotangent is s * H^T ct
        return [apply(ct, m, scale, not transpose)]

    def jvp(primals, tangents, out, /, m, scale, transpose):
        return apply(tangents[0], m, scale, transpose)

    def vmap(inputs, axes, out, /, m, scale, transpose):
        x, ax = inputs[0], axes[0]
        if ax == x.ndim - 1:  # the transformed axis must stay last
            x, ax = move_batch_axis(x, ax, 0), 0
        return apply(x, m, scale, transpose), ax

    HADAMARD.vjp = vjp
    HADAMARD.jvp = jvp
    HADAMARD.vmap = vmap


def install_rules():
    """Set vjp, jvp and vmap on every primitive of this module (called by mx.core)."""
    _install_block_masked_mm_rules()
    _install_gather_mm_rules()
    _install_segmented_mm_rules()
    _install_hadamard_rules()
