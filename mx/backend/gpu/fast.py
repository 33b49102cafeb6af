"""GPU handlers of mx.fast (shaders/norm.metal): rms_norm, layer_norm, rope, cross_entropy
and scaled_dot_product_attention.

The normalizations and cross_entropy give one threadgroup to each row of the last axis and
compute in float32 for float16/bfloat16/float32 (float64 for float64), as the CPU kernels of
mx/core/fast.py do; inputs that are not contiguous are first copied on the GPU. rope gives
one thread to each rotated pair and computes its angle in float64 (as the CPU does; float32
on Metal, which has no double). Attention is composed: the scores by the GPU gemm
(matmul.py, the scale as its alpha), a row kernel that masks them (none, causal, boolean or
additive, broadcast through strides), adds the sinks and takes the softmax in place, then
the gemm with the values; grouped kv heads need no copy (the query heads of one kv head are
one matrix of rows). float16/bfloat16 attention is computed in float32, as on the CPU, and
large problems go in blocks of batch entries or kv heads so the scores stay bounded.
"""
from __future__ import annotations

import struct

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy, fill
from mx.backend.gpu.elementwise import NAMES, _element_strides, _size, run_unary
from mx.backend.gpu.matmul import gemm

# the most bytes of attention scores computed at once (larger problems go in blocks)
SDPA_BLOCK_BYTES = 1 << 30
# rows longer than this are left to the CPU (the kernels index a row with 32-bit integers)
MAX_ROW = (1 << 31) - 1

_PACK = {"float32": struct.Struct("<f"), "float64": struct.Struct("<d")}
_NP = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}
_I64 = np.int64


def _layout(*values):
    return np.array(values, _I64).tobytes()


def _contiguous(gpu, x, stream):
    return x if x.flags.c_contiguous else contiguous_copy(gpu, x, stream)


def _as(gpu, x, dtype, stream):
    """x in `dtype` (an mx dtype name), contiguous, converted on the GPU; None when not
    possible."""
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    if t == dtype:
        return _contiguous(gpu, x, stream)
    return run_unary(gpu, "astype", t, "Identity", x, _np_dtype(dtype), x.shape, stream)


def _np_dtype(name):
    if name == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def _angle_dtype(gpu):
    """The precision of rope's angles: float64 where the dialect has double."""
    return "float32" if gpu.kind == "metal" else "float64"


# ---------------------------------------------------------------------------------------
# rms_norm, layer_norm
# ---------------------------------------------------------------------------------------
def _norm(gpu, node, args, stream, name, has_weight, has_bias):
    x = args[0]
    t = NAMES.get(x.dtype)
    if t not in K.ROWS or NAMES.get(node._dtype.np) != t or any(p.dtype != x.dtype for p in args):
        return None
    a = K.ROWS[t][0]
    try:
        eps = _PACK[a].pack(node._params["eps"])
    except OverflowError:           # an eps beyond float32: the CPU decides
        return None
    made = gpu.output(node._shape, x.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0:
        return out
    n = x.shape[-1]
    if n > MAX_ROW:
        return None
    rows = x.size // n
    x = _contiguous(gpu, x, stream)
    if x is None:
        return None
    src = gpu.operand(x)
    if src is None:
        return None
    bufs = [src[:2]]
    kept = [src[2]]
    params = list(args[1:])
    for present in (has_weight, has_bias) if name == "layer_norm" else (has_weight,):
        if present:
            p = _contiguous(gpu, params.pop(0), stream)
            op = None if p is None else gpu.operand(p)
            if op is None:
                return None
            bufs.append(op[:2])
            kept.append(op[2])
        else:
            bufs.append(src[:2])            # a placeholder the kernel does not read
    bufs.append((obuf, ooff))
    lay = _layout(rows, n, int(has_weight), int(has_bias))
    gpu.launch("fast", name, K.typed(f"{name}_rows", t, a), rows * B.THREADGROUP, stream,
               bufs, [lay, eps])
    gpu.keep(*kept)
    return out


def rms_norm_handler(gpu, node, args, stream):
    return _norm(gpu, node, args, stream, "rms_norm", len(args) > 1, False)


def layer_norm_handler(gpu, node, args, stream):
    p = node._params
    return _norm(gpu, node, args, stream, "layer_norm", p["has_weight"], p["has_bias"])


# ---------------------------------------------------------------------------------------
# rope
# ---------------------------------------------------------------------------------------
def rope_handler(gpu, node, args, stream):
    p = node._params
    a = args[0]
    t = NAMES.get(a.dtype)
    if t not in K.ROWS or NAMES.get(node._dtype.np) != t:
        return None
    ct = K.ROWS[t][0]
    ang = _angle_dtype(gpu)
    pk = _PACK[ang]
    try:
        scale = pk.pack(p["scale"])
        off_value = pk.pack(0.0 if p["has_offset"] else float(p["offset"]))
    except OverflowError:
        return None
    made = gpu.output(node._shape, a.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0:
        return out
    D = a.shape[-1]
    dims = p["dims"]
    half = dims // 2
    rows = a.size // D
    x = _contiguous(gpu, a, stream)
    if x is None:
        return None
    src = gpu.operand(x)
    if src is None:
        return None
    kept = [src[2]]
    rest = list(args[1:])
    off_buf = src[:2]
    off_mode = 0
    if p["has_offset"]:
        off = _as(gpu, rest.pop(0), ang, stream)
        o = None if off is None else gpu.operand(off)
        if o is None:
            return None
        off_buf = o[:2]
        kept.append(o[2])
        off_mode = 2 if off.ndim == 1 else 1
    freq_buf = src[:2]
    log_base = 0.0
    if p["has_freqs"]:
        f = _as(gpu, rest.pop(0), ang, stream)
        fo = None if f is None else gpu.operand(f)
        if fo is None:
            return None
        freq_buf = fo[:2]
        kept.append(fo[2])
    else:
        with np.errstate(all="ignore"):
            log_base = float(np.log(np.float64(p["base"])) / half)
    per_row = D - half
    n = rows * per_row
    lay = _layout(n, per_row, a.shape[-2], D, half, rows // a.shape[0], int(p["traditional"]),
                  off_mode, int(p["has_freqs"]))
    gpu.launch("fast", "rope", K.typed("rope_pairs", t, ct), n, stream,
               [src[:2], off_buf, freq_buf, (obuf, ooff)],
               [lay, scale, pk.pack(log_base), off_value])
    gpu.keep(*kept)
    return out


# ---------------------------------------------------------------------------------------
# cross_entropy
# ---------------------------------------------------------------------------------------
def cross_entropy_handler(gpu, node, args, stream):
    logits, targets = args
    t = NAMES.get(logits.dtype)
    it = NAMES.get(targets.dtype)
    if t not in K.ROWS or it is None or it not in K.INTS:
        return None
    a = K.ROWS[t][0]
    made = gpu.output(node._shape, node._dtype.np)
    if made is None or NAMES.get(node._dtype.np) != "float32":
        return None
    out, obuf, ooff = made
    if out.size == 0:
        return out
    n = logits.shape[-1]
    if n > MAX_ROW or n == 0:
        return None
    rows = out.size
    x = _contiguous(gpu, logits, stream)
    # int32 and int64 targets are read as they are; the others as int64 (NumPy's cast)
    if it not in K.FAST_TARGETS:
        it = "int64"
    tg = None if x is None else _as(gpu, targets, it, stream)
    if tg is None:
        return None
    xs, ts = gpu.operand(x), gpu.operand(tg)
    if xs is None or ts is None:
        return None
    gpu.launch("fast", "cross_entropy", K.typed("cross_entropy_rows", t, a, it),
               rows * B.THREADGROUP, stream, [xs[:2], ts[:2], (obuf, ooff)],
               [_size(rows), _size(n)])
    gpu.keep(xs[2], ts[2])
    return out


# ---------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------------------
def _blocks(B_, nk, per_head):
    """(batch entries, kv heads) a block: whole batch entries while they fit the budget,
    else some kv heads of one entry (so each block of the output is contiguous)."""
    per_entry = nk * per_head
    if per_entry * B_ <= SDPA_BLOCK_BYTES:
        return B_, nk
    if per_entry <= SDPA_BLOCK_BYTES:
        return max(1, SDPA_BLOCK_BYTES // per_entry), nk
    return 1, max(1, SDPA_BLOCK_BYTES // max(per_head, 1))


def sdpa_handler(gpu, node, args, stream):
    p = node._params
    mode = p["mask_mode"]
    t = NAMES.get(node._dtype.np)
    if t not in K.ROWS:
        return None
    q, k, v = args[:3]
    if any(NAMES.get(x.dtype) != t for x in (q, k, v)):
        return None
    rest = list(args[3:])
    mask = rest.pop(0) if mode in ("bool", "add") else None
    sinks = rest.pop(0) if p["has_sinks"] else None
    a = K.ROWS[t][0]
    adt = _NP[a]
    Bn, nq, tq, d = q.shape
    nk, tk = k.shape[1], k.shape[2]
    dv = v.shape[3]
    g = nq // nk
    if tk > MAX_ROW:
        return None
    mt = "bool" if mask is None else NAMES.get(mask.dtype)
    inst = K.typed("sdpa_softmax_rows", a, mt) if (a, mt) in K.SDPA_MASKS else None
    if inst is None:
        return None
    if tk == 0:
        # no keys: zeros, as on the CPU
        made = gpu.output(node._shape, node._dtype.np)
        if made is None:
            return None
        out = made[0]
        if out.size and not fill(gpu, out, 0, stream):
            return None
        return out
    if Bn * nq * tq * dv == 0:
        made = gpu.output(node._shape, node._dtype.np)
        return None if made is None else made[0]
    # the computation in A (float32 for half precision, as the CPU kernel)
    if t != a:
        q, k, v = (_as(gpu, x, a, stream) for x in (q, k, v))
        if q is None or k is None or v is None:
            return None
    made = gpu.output((Bn, nq, tq, dv), adt)
    if made is None:
        return None
    o = made[0]
    try:
        qg = np.reshape(q, (Bn, nk, g * tq, d), copy=False)
    except (ValueError, TypeError):
        qc = contiguous_copy(gpu, q, stream)
        if qc is None:
            return None
        qg = qc.reshape(Bn, nk, g * tq, d)
    og = o.reshape(Bn, nk, g * tq, dv)
    kt = np.swapaxes(k, -1, -2)
    mo = None
    mstrides = [0, 0, 0, 0]
    if mask is not None:
        mo = gpu.operand(mask)
        # (the strides of the array the kernel reads: operand may have staged a copy)
        mstrides = None if mo is None else _element_strides(mo[2], 4)
        if mstrides is None:
            return None
    sk = None
    if sinks is not None:
        sk = _as(gpu, sinks, a, stream)
        if sk is None:
            return None
        sk = gpu.operand(sk)
        if sk is None:
            return None
    per_head = g * tq * tk * adt.itemsize
    nb, nh = _blocks(Bn, nk, per_head)
    made = gpu.output((nb * nh * g * tq * tk,), adt)
    if made is None:
        return None
    scores = made[0]
    sbuf = gpu.operand(scores)
    if sbuf is None:
        return None
    mode_code = {"none": 0, "causal": 1, "bool": 2, "add": 3}[mode]
    scale = p["scale"]
    for b0 in range(0, Bn, nb):
        b1 = min(Bn, b0 + nb)
        for h0 in range(0, nk, nh):
            h1 = min(nk, h0 + nh)
            rows = (b1 - b0) * (h1 - h0) * g * tq
            s = scores[:rows * tk].reshape(b1 - b0, h1 - h0, g * tq, tk)
            if d == 0:
                if not fill(gpu, s, 0, stream):
                    return None
            elif not gemm(gpu, qg[b0:b1, h0:h1], kt[b0:b1, h0:h1], s, stream, alpha=scale):
                return None
            lay = _layout(rows, tk, tq, g, h1 - h0, b0, h0, mode_code, int(sinks is not None),
                          *mstrides)
            gpu.launch("fast", "sdpa", inst, rows * B.THREADGROUP, stream,
                       [sbuf[:2], (mo or sbuf)[:2], (sk or sbuf)[:2]], [lay])
            if not gemm(gpu, s, v[b0:b1, h0:h1], og[b0:b1, h0:h1], stream):
                return None
    gpu.keep(scores, *(x[2] for x in (mo, sk) if x is not None))
    if t == a:
        return o
    return run_unary(gpu, "astype", a, "Identity", o, node._dtype.np, node._shape, stream)


def handlers():
    return {"rms_norm": rms_norm_handler, "layer_norm": layer_norm_handler,
            "rope": rope_handler, "cross_entropy": cross_entropy_handler,
            "scaled_dot_product_attention": sdpa_handler}
