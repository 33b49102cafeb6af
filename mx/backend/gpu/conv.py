"""conv_general on the GPU (every convolution, transposed convolution and their gradients):
the patch matrix of the input (shaders/conv.metal's im2col) times the weights, one gemm
batched over the groups.

The patch matrix has a row per output position (b, *o) and, per group, a column per
(kernel tap, group channel), as the CPU kernel's; im2col applies the strides, the padding
(negative: cropping), both dilations and the kernel flip while it gathers, and reads the
input through its strides (no copy for non-contiguous inputs). The weights
(C_out, *kernel, C_in / G) are read as they lie: per group a transposed (taps * Cg, Cog)
matrix. Each group's product writes its Cog columns of the channels-last output in place
(row stride C_out). A patch matrix over PATCH_BYTES is made a chunk of rows at a time,
reusing one buffer. A 1x1 kernel without padding or input dilation needs no patches: the
(strided) input itself is the matrix.

float16 and bfloat16 multiply with float32 accumulation (cuBLAS), as the CPU kernel
computes them in float32; inputs of another float dtype than the output are cast first.
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.elementwise import NAMES, _size, run_unary
from mx.backend.gpu.matmul import GEMM_TYPES, METAL_GEMM_TYPES, _matrix_operand, gemm

# bytes of one chunk's patch matrix at most (more rows are done a chunk at a time)
PATCH_BYTES = 1 << 30
DIMS = 3                        # MX_CONV_DIMS of shaders/conv.metal
_INT32_MAX = (1 << 31) - 1
_I64 = np.int64


def groups(types=K.REAL):
    """The compile group of shaders/conv.metal."""
    insts = [K.typed("im2col", t) for t in K.FLOATS if t in types]
    return {("conv", "im2col"): ("conv.metal", insts)} if insts else {}


def _prod(shape):
    n = 1
    for v in shape:
        n *= int(v)
    return n


def _reshaped(gpu, x, shape, stream):
    from mx.backend.gpu.layout import reshaped
    return reshaped(gpu, x, shape, stream)


def _element_strides(x):
    """x's strides in elements (negative ones too), or None."""
    item = x.itemsize
    if any(s % item for s in x.strides):
        return None
    return [s // item for s in x.strides]


def _grouped_gemm(gpu, a, b, c, stream):
    """Queue c[g] = a[g] @ b[g] for a (G, M, K), b (G, K, N) and c (G, M, N) whose
    matrices are row-major with any row and batch strides (the groups' columns of a
    channels-last output). True when queued."""
    dt = NAMES.get(c.dtype)
    ra = _matrix_operand(gpu, a, stream)
    rb = _matrix_operand(gpu, b, stream)
    if ra is None or rb is None:
        return False
    a, (ta, lda), sta = ra
    b, (tb, ldb), stb = rb
    G, M, N = c.shape
    stc = _element_strides(c)
    if stc is None or (N > 1 and stc[2] != 1):
        return False
    ldc = stc[1] if M > 1 else N
    if ldc < N:
        return False
    pa, pb, pc = gpu.operand(a), gpu.operand(b), gpu.operand(c)
    if pa is None or pb is None or pc is None or pa[2] is not a or pb[2] is not b or \
            pc[2] is not c:
        return False                    # (a staged copy would have other strides)
    desc = gpu.ffi.new("mx_gemm_desc *")
    desc.dtype = GEMM_TYPES[dt]
    desc.trans_a, desc.trans_b = ta, tb
    desc.m, desc.n, desc.k, desc.batch = M, N, a.shape[2], G
    desc.a, desc.a_offset, desc.lda, desc.stride_a = pa[0], pa[1], lda, sta[0]
    desc.b, desc.b_offset, desc.ldb, desc.stride_b = pb[0], pb[1], ldb, stb[0]
    desc.c, desc.c_offset, desc.ldc, desc.stride_c = pc[0], pc[1], ldc, stc[0]
    desc.alpha, desc.beta = 1.0, 0.0
    gpu.gemm(stream, desc)
    gpu.keep(pa[2], pb[2])
    return True


def _direct_input(x, osize, stride, lo, ksize, idil):
    """For a 1x1 kernel without input dilation whose windows never reach padding: the
    input positions the output reads, as a strided view (N, *osize, C_in); else None."""
    if any(k != 1 for k in ksize) or any(v != 1 for v in idil):
        return None
    key = [slice(None)]
    for i, o in enumerate(osize):
        start = -lo[i]
        last = start + (o - 1) * stride[i]
        if start < 0 or last > x.shape[1 + i] - 1:
            return None
        key.append(slice(start, last + 1, stride[i]))
    key.append(slice(None))
    return x[tuple(key)]


def _layout(x, xs, d, p, ksize, osize, rows, cols, cg, taps):
    """The ConvLayout constant (row0 is patched in per chunk)."""
    lay = np.ones(9 + 8 * DIMS, _I64)
    lay[0:9] = (d, 0, rows, cols, cg, taps, 1 if p["flip"] else 0, xs[0], xs[-1])
    fields = (x.shape[1:-1], xs[1:-1], osize, ksize, p["stride"], p["pad_lo"],
              p["kernel_dilation"], p["input_dilation"])
    for j, vals in enumerate(fields):
        base = 9 + j * DIMS
        lay[base:base + d] = vals
    return lay


def conv_handler(gpu, node, args, stream):
    x, w = args
    p = node._params
    dtype = node._dtype.np
    t = NAMES.get(dtype)
    if t not in K.FLOATS or t not in GEMM_TYPES or \
            (gpu.kind == "metal" and t not in METAL_GEMM_TYPES):
        return None
    tx, tw = NAMES.get(x.dtype), NAMES.get(w.dtype)
    if tx not in K.FLOATS or tw not in K.FLOATS:
        return None                     # integer weights: the CPU kernel's promotion
    d = x.ndim - 2
    if not 1 <= d <= DIMS or w.ndim != x.ndim:
        return None
    g = p["groups"]
    n, c_in, c_out = x.shape[0], x.shape[-1], w.shape[0]
    ksize = tuple(w.shape[1:-1])
    osize = tuple(node._shape[1:-1])
    made = gpu.output(node._shape, dtype)
    if made is None:
        return None
    out = made[0]
    if out.size == 0:
        return out
    taps = _prod(ksize)
    cg, cog = c_in // g, c_out // g
    kg = taps * cg
    if kg == 0:                         # an empty sum: zeros
        from mx.backend.gpu.copies import fill
        return out if fill(gpu, out, 0, stream) else None
    rows = _prod(osize)
    cols = g * kg
    if cols > _INT32_MAX or rows > _INT32_MAX or c_out > _INT32_MAX:
        return None
    if tx != t:
        x = run_unary(gpu, "astype", tx, "Identity", x, dtype, x.shape, stream)
    if tw != t:
        w = run_unary(gpu, "astype", tw, "Identity", w, dtype, w.shape, stream)
    if x is None or w is None:
        return None
    # per group the (taps * Cg, Cog) weight matrix, tap-major as the patch columns
    wg = _reshaped(gpu, w, (g, cog, kg), stream)
    if wg is None:
        return None
    wm = wg.transpose(0, 2, 1)
    total = n * rows
    flat = out.reshape(total, g, cog)
    chunk = max(1, min(PATCH_BYTES // (cols * out.itemsize), _INT32_MAX))
    direct = _direct_input(x, osize, p["stride"], p["pad_lo"], ksize, p["input_dilation"])
    if direct is not None:
        src = _reshaped(gpu, direct, (total, g, kg), stream)
        if src is None:
            return None
        patches = lay = None
    else:
        sx = gpu.operand(x)
        made = gpu.output((min(chunk, total), g, kg), dtype)
        if sx is None or made is None:
            return None
        xs = _element_strides(sx[2])      # (a staged copy has its own strides)
        if xs is None:
            return None
        patches, pbuf, poff = made
        lay = _layout(x, xs, d, p, ksize, osize, rows, cols, cg, taps)
        inst = K.typed("im2col", t)
    for r0 in range(0, total, chunk):
        r1 = min(total, r0 + chunk)
        m = r1 - r0
        if direct is not None:
            a = src[r0:r1]
        else:
            lay[1] = r0
            size = m * cols
            gpu.launch("conv", "im2col", inst, size, stream, [sx[:2], (pbuf, poff)],
                       [_size(size), lay.tobytes()])
            a = patches[:m]
        c = flat[r0:r1]
        if g == 1:
            ok = gemm(gpu, a[:, 0], wm[0], c[:, 0], stream)
        else:
            ok = _grouped_gemm(gpu, a.transpose(1, 0, 2), wm, c.transpose(1, 0, 2), stream)
        if not ok:
            return None
    if direct is None:
        gpu.keep(sx[2], patches)
    return out


def handlers():
    return {"conv_general": conv_handler}
