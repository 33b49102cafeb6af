"""GPU handlers of softmax and logsumexp over the last axis of an array
(shaders/softmax.metal): one threadgroup a row, the row's maximum, then the sum of the
shifted exponentials, computed in float32 for float16/bfloat16 (float64 for float64), as
the CPU kernels compute. Other axes run on the CPU."""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy
from mx.backend.gpu.elementwise import NAMES, _size


def _run(gpu, name, x, axes, shape, out_dtype, stream):
    t = NAMES.get(x.dtype)
    if t not in K.ROWS or x.ndim == 0 or list(axes) != [x.ndim - 1]:
        return None
    a, u = K.ROWS[t]
    if NAMES.get(np.dtype(out_dtype)) != u:
        return None
    if not x.flags.c_contiguous:
        x = contiguous_copy(gpu, x, stream)
        if x is None:
            return None
    made = gpu.output(shape, out_dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = x.shape[-1]
    rows = x.size // n if n else 0
    if out.size == 0 or rows == 0:
        return None if n == 0 else out     # reductions over an empty axis: the CPU decides
    src = gpu.operand(x)
    if src is None:
        return None
    gpu.launch("rows", name, K.typed(f"{name}_rows", t, a, u), rows * B.THREADGROUP, stream,
               [src[:2], (obuf, ooff)], [_size(rows), _size(n)])
    gpu.keep(src[2])
    return out


def softmax_handler(gpu, node, args, stream):
    return _run(gpu, "softmax", args[0], node._params["axes"], node._shape, node._dtype.np,
                stream)


def logsumexp_handler(gpu, node, args, stream):
    p = node._params
    return _run(gpu, "logsumexp", args[0], p["axes"], node._shape, node._dtype.np, stream)


def handlers():
    return {"softmax": softmax_handler, "logsumexp": logsumexp_handler}
