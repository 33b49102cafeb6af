"""matmul and addmm on the GPU: the shim's batched strided gemm (cuBLAS on CUDA).

Each operand is handed to the BLAS as it lies in memory when its matrices are row-major or
column-major (a transposed view costs nothing); other layouts are first copied by the
elementwise copy kernel. Batch axes broadcast through zero strides; batch axes that cannot
be merged into one strided batch are looped over.
"""
from __future__ import annotations

import itertools

import numpy as np

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


def handlers():
    return {"matmul": matmul_handler, "addmm": addmm_handler}
