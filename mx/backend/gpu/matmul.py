"""matmul, addmm and the products built on them (inner, tensordot, einsum's one-gemm cases,
gather_mm, segmented_mm; outer and vecdot use elementwise and axis-sum kernels) on the
GPU: the shim's batched strided gemm (cuBLAS on CUDA).

Each operand is handed to the BLAS as it lies in memory when its matrices are row-major or
column-major (a transposed view costs nothing); other layouts are first copied by the
elementwise copy kernel. Batch axes broadcast through zero strides; batch axes that cannot
be merged into one strided batch are looped over.
"""
from __future__ import annotations

import itertools

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.elementwise import collapse, run_unary

GEMM_TYPES = {"float32": 0, "float16": 1, "bfloat16": 2, "float64": 3}
# what MPS multiplies (the Metal shim returns MX_UNAVAILABLE for the others)
METAL_GEMM_TYPES = ("float32", "float16")


def _layout(rows, cols, rs, cs):
    """(transposed, leading dimension) of a rows x cols matrix with element strides rs, cs,
    or None when it is neither row- nor column-major."""
    if cols == 1 or cs == 1:
        ld = rs if rows > 1 else cols
        if ld >= max(cols, 1):
            return 0, ld
    if rows == 1 or rs == 1:
        ld = cs if cols > 1 else rows
        if ld >= max(rows, 1):
            return 1, ld
    return None


def _strides(x):
    item = x.itemsize
    if any(s % item for s in x.strides):
        return None
    return [s // item for s in x.strides]


def _matrix_operand(gpu, x, stream):
    """(array, (transposed, ld), element strides) for a gemm operand, copying it to a
    contiguous array on the GPU when its layout needs it; None when not possible."""
    st = _strides(x)
    if st is not None:
        lay = _layout(x.shape[-2], x.shape[-1], st[-2], st[-1])
        if lay is not None:
            return x, lay, st
    y = run_unary(gpu, "unary", "copy", "Identity", x, x.dtype, x.shape, stream)
    if y is None:
        return None
    st = [s // y.itemsize for s in y.strides]
    return y, _layout(y.shape[-2], y.shape[-1], st[-2], st[-1]), st


def gemm(gpu, a, b, out, stream, alpha=1.0, beta=0.0):
    """Queue out = alpha * a @ b + beta * out for a (..., M, K), b (..., K, N) and a
    contiguous out (..., M, N) whose batch shape the operands broadcast to. True when
    queued."""
    dt = out.dtype.name
    if dt not in GEMM_TYPES or a.dtype != out.dtype or b.dtype != out.dtype or \
            (gpu.kind == "metal" and dt not in METAL_GEMM_TYPES):
        return False
    M, K = a.shape[-2:]
    N = b.shape[-1]
    batch = out.shape[:-2]
    if not batch and a.ndim == 2 and b.ndim == 2:
        return _gemm_2d(gpu, a, b, out, stream, alpha, beta, dt)
    a = np.broadcast_to(a, batch + (M, K))
    b = np.broadcast_to(b, batch + (K, N))
    ra = _matrix_operand(gpu, a, stream)
    rb = _matrix_operand(gpu, b, stream)
    if ra is None or rb is None:
        return False
    a, (ta, lda), sta = ra
    b, (tb, ldb), stb = rb
    pa = gpu.operand(a)
    pb = gpu.operand(b)
    pc = gpu.operand(out)
    if pa is None or pb is None or pc is None:
        return False
    stc = [s // out.itemsize for s in out.strides]
    nb = len(batch)
    bshape, (ba, bb, bc) = collapse(list(batch), sta[:nb], stb[:nb], stc[:nb])
    if not bshape:
        bshape, ba, bb, bc = [1], [0], [0], [0]
    ffi = gpu.ffi
    desc = ffi.new("mx_gemm_desc *")
    desc.dtype = GEMM_TYPES[dt]
    desc.trans_a, desc.trans_b = ta, tb
    desc.m, desc.n, desc.k = M, N, K
    desc.batch = bshape[-1]
    desc.a, desc.lda, desc.stride_a = pa[0], lda, ba[-1]
    desc.b, desc.ldb, desc.stride_b = pb[0], ldb, bb[-1]
    desc.c, desc.ldc, desc.stride_c = pc[0], N, bc[-1]
    desc.alpha, desc.beta = alpha, beta
    item = out.itemsize
    # batch axes that did not merge: one strided-batched call per index of the outer ones
    for idx in itertools.product(*[range(n) for n in bshape[:-1]]):
        desc.a_offset = pa[1] + item * sum(i * s for i, s in zip(idx, ba))
        desc.b_offset = pb[1] + item * sum(i * s for i, s in zip(idx, bb))
        desc.c_offset = pc[1] + item * sum(i * s for i, s in zip(idx, bc))
        gpu.gemm(stream, desc)
    gpu.keep(pa[2], pb[2])
    return True


def _gemm_2d(gpu, a, b, out, stream, alpha, beta, dt):
    """gemm's path for plain matrices (a linear layer and its gradients): no batch axes to
    broadcast or merge, one cuBLAS call."""
    M, K = a.shape
    N = b.shape[1]
    ra = _matrix_operand(gpu, a, stream)
    rb = _matrix_operand(gpu, b, stream)
    if ra is None or rb is None:
        return False
    a, (ta, lda), _ = ra
    b, (tb, ldb), _ = rb
    pa, pb, pc = gpu.operand(a), gpu.operand(b), gpu.operand(out)
    if pa is None or pb is None or pc is None:
        return False
    desc = gpu.ffi.new("mx_gemm_desc *")
    desc.dtype = GEMM_TYPES[dt]
    desc.trans_a, desc.trans_b = ta, tb
    desc.m, desc.n, desc.k, desc.batch = M, N, K, 1
    desc.a, desc.a_offset, desc.lda = pa[0], pa[1], lda
    desc.b, desc.b_offset, desc.ldb = pb[0], pb[1], ldb
    desc.c, desc.c_offset, desc.ldc = pc[0], pc[1], N
    desc.alpha, desc.beta = alpha, beta
    gpu.gemm(stream, desc)
    gpu.keep(pa[2], pb[2])
    return True


def _as_matrices(a, b):
    """NumPy's 1-D rules: a vector a is a row, a vector b a column."""
    return (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)


def matmul_handler(gpu, node, args, stream):
    a, b = _as_matrices(*args)
    made = gpu.output(node._shape, node._dtype.np)
    if made is None or node._dtype.name not in GEMM_TYPES:
        return None
    out = made[0]
    if out.size == 0:
        return out
    full = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    c = out.reshape(full)
    if a.shape[-1] == 0:            # an empty sum: zeros (a fresh buffer no kernel reads)
        out.fill(0)
        return out
    return out if gemm(gpu, a, b, c, stream) else None


def addmm_handler(gpu, node, args, stream):
    cin, a, b = args
    alpha = node._params["alpha"]
    beta = node._params["beta"]
    if node._dtype.name not in GEMM_TYPES or cin.dtype != a.dtype:
        return None
    a, b = _as_matrices(a, b)
    full = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (a.shape[-2], b.shape[-1])
    if beta != 0.0:
        # out starts as c broadcast to the product's shape, then gemm accumulates onto it
        c_full = np.broadcast_to(cin, node._shape)
        out = run_unary(gpu, "unary", "copy", "Identity", c_full, cin.dtype, node._shape, stream)
        if out is None:
            return None
    else:
        made = gpu.output(node._shape, node._dtype.np)
        if made is None:
            return None
        out = made[0]
    if out.size == 0:
        return out
    c = out.reshape(full)
    if a.shape[-1] == 0:
        if beta == 0.0:
            out.fill(0)
            return out
        # alpha * 0 + beta * c
        gpu.synchronize()
        out *= out.dtype.type(beta)
        return out
    return out if gemm(gpu, a, b, c, stream, alpha, beta) else None


# ---------------------------------------------------------------------------------------
# inner, outer, tensordot, vecdot, einsum, gather_mm, segmented_mm: operands reshaped
# (views where NumPy can make them, else copies made on the GPU) into one gemm
# ---------------------------------------------------------------------------------------
def _gemm_dtype(gpu, node):
    """The gemm type name of the node's dtype, or None (no gemm for it here)."""
    dt = node._dtype.name
    if dt not in GEMM_TYPES or (gpu.kind == "metal" and dt not in METAL_GEMM_TYPES):
        return None
    return dt


def _reshaped(gpu, x, shape, stream):
    from mx.backend.gpu.layout import reshaped
    return reshaped(gpu, x, shape, stream)


def _zeros(gpu, out, stream):
    from mx.backend.gpu.copies import fill
    return out if fill(gpu, out, 0, stream) else None


def _product(gpu, a, b, out, stream):
    """out (new, contiguous, (..., M, N)) = a @ b, zeros when the inner size is 0."""
    if out.size == 0:
        return True
    if a.shape[-1] == 0:
        return _zeros(gpu, out, stream) is not None
    return gemm(gpu, a, b, out, stream)


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def inner_handler(gpu, node, args, stream):
    a, b = args
    if _gemm_dtype(gpu, node) is None or a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    made = gpu.output(node._shape, node._dtype.np)
    if made is None:
        return None
    out = made[0]
    k = a.shape[-1]
    ma, mb = _prod(a.shape[:-1]), _prod(b.shape[:-1])
    a2 = _reshaped(gpu, a, (ma, k), stream)
    b2 = _reshaped(gpu, b, (mb, k), stream)
    if a2 is None or b2 is None:
        return None
    return out if _product(gpu, a2, b2.T, out.reshape(ma, mb), stream) else None


def outer_handler(gpu, node, args, stream):
    from mx.backend.gpu.elementwise import run_binary
    a, b = args
    if a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    a1 = _reshaped(gpu, a, (-1,), stream)
    b1 = _reshaped(gpu, b, (-1,), stream)
    if a1 is None or b1 is None:
        return None
    return run_binary(gpu, "multiply", a1[:, None], b1[None, :], node._shape, stream)


def tensordot_handler(gpu, node, args, stream):
    a, b = args
    p = node._params
    ax_a, ax_b = list(p["axes_a"]), list(p["axes_b"])
    if _gemm_dtype(gpu, node) is None or a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    m = _prod(a.shape[i] for i in free_a)
    k = _prod(a.shape[i] for i in ax_a)
    n = _prod(b.shape[i] for i in free_b)
    made = gpu.output(node._shape, node._dtype.np)
    if made is None:
        return None
    out = made[0]
    a2 = _reshaped(gpu, a.transpose(free_a + ax_a), (m, k), stream)
    b2 = _reshaped(gpu, b.transpose(ax_b + free_b), (k, n), stream)
    if a2 is None or b2 is None:
        return None
    return out if _product(gpu, a2, b2, out.reshape(m, n), stream) else None


def vecdot_handler(gpu, node, args, stream):
    """sum(a * b) along the axis: one threadgroup an output (shaders/layout.metal's
    dot_axis), for every real dtype (integer products wrap, sums widen as the CPU's)."""
    from mx.backend.gpu.layout import run_axis_sum
    a, b = args
    p = node._params
    if b.dtype != a.dtype:
        return None
    a = np.moveaxis(a, p["axis_a"], -1)
    b = np.moveaxis(b, p["axis_b"], -1)
    shape = node._shape + (a.shape[-1],)
    made = gpu.output(node._shape, node._dtype.np)
    if made is None:
        return None
    try:
        a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    except ValueError:
        return None
    return run_axis_sum(gpu, "dot_axis", a, b, made[0], stream)


def _einsum_operand(gpu, x, sub, sizes, dtype, stream):
    """An einsum operand broadcast to its letters' sizes and cast to `dtype` (on the GPU)."""
    full = tuple(sizes[c] for c in sub)
    if x.shape != full:
        x = np.broadcast_to(x, full)
    if x.dtype != dtype:
        from mx.backend.gpu.elementwise import NAMES
        t = NAMES.get(x.dtype)
        if t is None:
            return None
        x = run_unary(gpu, "astype", t, "Identity", x, dtype, x.shape, stream)
    return x


def einsum_handler(gpu, node, args, stream):
    """The einsums that are one (batched) gemm after transposes and reshapes -- two
    operands, no letter repeated within one, every letter either in both operands or in
    the output -- and the pure transposes of one operand; others run on the CPU."""
    from mx.backend.gpu.copies import contiguous_copy, copy_into
    from mx.backend.gpu.elementwise import NAMES
    p = node._params
    lhs, res = p["subscripts"].split("->")
    subs = lhs.split(",")
    sizes = dict(p["sizes"])
    dtype = node._dtype.np
    if NAMES.get(dtype) is None or any(len(set(s)) != len(s) for s in subs):
        return None
    if len(subs) == 1:
        if sorted(subs[0]) != sorted(res):
            return None                             # a sum or a diagonal
        x = _einsum_operand(gpu, args[0], subs[0], sizes, dtype, stream)
        if x is None:
            return None
        return contiguous_copy(gpu, x.transpose([subs[0].index(c) for c in res]), stream)
    if len(subs) != 2 or _gemm_dtype(gpu, node) is None:
        return None
    sa, sb = subs
    if any(c not in sb and c not in res for c in sa) or \
            any(c not in sa and c not in res for c in sb):
        return None                                 # a letter summed within one operand
    batch = [c for c in res if c in sa and c in sb]
    fa = [c for c in res if c in sa and c not in sb]
    fb = [c for c in res if c in sb and c not in sa]
    contr = [c for c in sa if c in sb and c not in res]
    a = _einsum_operand(gpu, args[0], sa, sizes, dtype, stream)
    b = _einsum_operand(gpu, args[1], sb, sizes, dtype, stream)
    if a is None or b is None:
        return None
    bs = tuple(sizes[c] for c in batch)
    m, n, k = (_prod(sizes[c] for c in g) for g in (fa, fb, contr))
    a = _reshaped(gpu, a.transpose([sa.index(c) for c in batch + fa + contr]), bs + (m, k),
                  stream)
    b = _reshaped(gpu, b.transpose([sb.index(c) for c in batch + contr + fb]), bs + (k, n),
                  stream)
    made = gpu.output(node._shape, dtype)
    if a is None or b is None or made is None:
        return None
    out = made[0]
    canon = batch + fa + fb
    if "".join(canon) == res:
        return out if _product(gpu, a, b, out.reshape(bs + (m, n)), stream) else None
    # the output's letters interleave the groups: the product, then a transposing copy
    tmp = gpu.output(bs + (m, n), dtype)
    if tmp is None or not _product(gpu, a, b, tmp[0], stream):
        return None
    view = tmp[0].reshape([sizes[c] for c in canon]).transpose([canon.index(c) for c in res])
    return out if copy_into(gpu, view, out, stream) else None


def gather_mm_handler(gpu, node, args, stream):
    """a[lhs] @ b[rhs] over the flattened batch axes: the indices wrapped (as the CPU
    kernel's take(mode='wrap')) and the matrices gathered on the GPU, then one gemm."""
    from mx.backend.gpu.elementwise import NAMES, run_binary
    from mx.backend.gpu.indexing import run_take
    a, b, li, ri = args
    if _gemm_dtype(gpu, node) is None or a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    (m, k), n = a.shape[-2:], b.shape[-1]
    a3 = _reshaped(gpu, a, (-1, m, k), stream)
    b3 = _reshaped(gpu, b, (-1, k, n), stream)
    made = gpu.output(node._shape, node._dtype.np)
    if a3 is None or b3 is None or made is None:
        return None
    out = made[0]
    if out.size == 0:
        return out
    if a3.shape[0] == 0 or b3.shape[0] == 0:
        return None                     # nothing to gather from: the CPU kernel decides
    gathered = []
    for x, idx in ((a3, li), (b3, ri)):
        t = NAMES.get(idx.dtype)
        if t not in K.INTS:
            return None
        if t != "int64":
            idx = run_unary(gpu, "astype", t, "Identity", idx, np.dtype(np.int64), idx.shape,
                            stream)
        if idx is not None:
            idx = run_binary(gpu, "remainder", idx, np.full((), x.shape[0], np.int64),
                             idx.shape, stream)
        if idx is None:
            return None
        g = run_take(gpu, "gather_mm", x, idx, 0, idx.shape + x.shape[1:], stream)
        if g is None:
            return None
        gathered.append(g)
    return out if _product(gpu, gathered[0], gathered[1], out, stream) else None


def segmented_mm_handler(gpu, node, args, stream):
    """a[:, s:e] @ b[s:e, :] per segment, as the CPU kernel computes it: `a` with the
    columns outside each segment zeroed (copies on the GPU), then one batched gemm. The
    segment bounds are read on the host (after waiting for the GPU when a queued kernel
    writes them)."""
    from mx.backend.gpu.copies import _host_values, copy_into, fill
    a, b, seg = args
    if _gemm_dtype(gpu, node) is None or a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    (m, k), n = a.shape, b.shape[1]
    made = gpu.output(node._shape, node._dtype.np)
    if made is None:
        return None
    out = made[0]
    bounds = _host_values(gpu, seg)
    s = len(bounds) // 2
    if out.size == 0:
        return out
    if k == 0:
        return _zeros(gpu, out, stream)
    masked = gpu.output((s, m, k), a.dtype)
    if masked is None or not fill(gpu, masked[0], 0, stream):
        return None
    masked = masked[0]
    for i in range(s):
        lo, hi = max(int(bounds[2 * i]), 0), min(int(bounds[2 * i + 1]), k)
        if lo < hi and not copy_into(gpu, a[:, lo:hi], masked[i, :, lo:hi], stream):
            return None
    return out if gemm(gpu, masked, b, out.reshape(s, m, n), stream) else None


def handlers():
    return {"matmul": matmul_handler, "addmm": addmm_handler, "inner": inner_handler,
            "outer": outer_handler, "tensordot": tensordot_handler, "vecdot": vecdot_handler,
            "einsum": einsum_handler, "gather_mm": gather_mm_handler,
            "segmented_mm": segmented_mm_handler}
