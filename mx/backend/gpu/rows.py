"""GPU handlers of softmax and logsumexp (shaders/softmax.metal): one threadgroup a row of
contiguous elements, the row's maximum, then the sum of the shifted exponentials, computed
in float32 for float16/bfloat16 (float64 for float64), as the CPU kernels compute.

Reductions over the last axes run on the rows as they lie (after a GPU copy when the input
is not contiguous). Over other axes (axis 0, middle axes, several axes, all of them) the
reduced axes are brought last by a GPU copy (a transposed view copied contiguous), the rows
kernel runs over them, and softmax's result is copied back into the input's layout; a
logsumexp's rows are already in the order of its output."""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy, copy_into
from mx.backend.gpu.elementwise import NAMES, _size

# rows longer than this are left to the CPU (the kernels index a row with 32-bit integers)
MAX_ROW = (1 << 31) - 1


def _run(gpu, name, x, axes, shape, out_dtype, stream):
    t = NAMES.get(x.dtype)
    if t not in K.ROWS:
        return None
    a, u = K.ROWS[t]
    if NAMES.get(np.dtype(out_dtype)) != u:
        return None
    if x.ndim == 0:
        x, axes = x.reshape(1), (0,)
    axes = sorted({ax % x.ndim for ax in axes})
    keep = [i for i in range(x.ndim) if i not in axes]
    perm = keep + axes
    moved = perm != list(range(x.ndim))
    n = 1
    for ax in axes:
        n *= x.shape[ax]
    rows = x.size // n if n else 0
    if n > MAX_ROW:
        return None
    made = gpu.output(shape, out_dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0 or rows == 0:
        return None if n == 0 else out     # reductions over an empty axis: the CPU decides
    xt = np.transpose(x, perm) if moved else x
    if not xt.flags.c_contiguous:
        xt = contiguous_copy(gpu, xt, stream)
        if xt is None:
            return None
    src = gpu.operand(xt)
    if src is None:
        return None
    dst, dbuf, doff = out, obuf, ooff
    if name == "softmax" and moved:
        # the rows are written in the moved layout, then copied into the input's
        made = gpu.output(xt.shape, out_dtype)
        if made is None:
            return None
        dst, dbuf, doff = made
    gpu.launch("rows", name, K.typed(f"{name}_rows", t, a, u), rows * B.THREADGROUP, stream,
               [src[:2], (dbuf, doff)], [_size(rows), _size(n)])
    gpu.keep(src[2])
    if dst is not out:
        inverse = np.argsort(perm)
        if not copy_into(gpu, np.transpose(dst, inverse), out, stream):
            return None
    return out


def softmax_handler(gpu, node, args, stream):
    return _run(gpu, "softmax", args[0], node._params["axes"], node._shape, node._dtype.np,
                stream)


def logsumexp_handler(gpu, node, args, stream):
    p = node._params
    return _run(gpu, "logsumexp", args[0], p["axes"], node._shape, node._dtype.np, stream)


def handlers():
    return {"softmax": softmax_handler, "logsumexp": logsumexp_handler}
