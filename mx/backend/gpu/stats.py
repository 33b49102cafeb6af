"""GPU handlers of count_nonzero and var, composed of the GPU's cast, elementwise and
reduction kernels with the CPU kernels' numerics (mx/core/ops/reduction.py):

* count_nonzero: x != 0 as bool (NaN counts), then the int32 sum of the bools;
* var: in the CPU kernel's accumulator dtype (float32 for float16/bfloat16/float32, float64
  for float64, integers and bool): the mean (the sum divided by n in that dtype), x minus
  the mean, squared, summed and divided by max(n - ddof, 0), then rounded once to the output
  dtype. Metal has no float64: var of integers and float64 runs on the CPU there.
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu.elementwise import NAMES, binary_handler, run_unary
from mx.backend.gpu.reduce import _NP, run_reduce

_BOOL = np.dtype(np.bool_)


class _Dtype:
    __slots__ = ("np",)

    def __init__(self, dt):
        self.np = dt


class _Node:
    """What an elementwise handler reads of a graph node."""
    __slots__ = ("_shape", "_dtype", "_params")

    def __init__(self, shape, dt):
        self._shape = tuple(shape)
        self._dtype = _Dtype(np.dtype(dt))
        self._params = None


_SUBTRACT = binary_handler("subtract")
_DIVIDE = binary_handler("divide")


def count_nonzero_handler(gpu, node, args, stream):
    x = args[0]
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    if t != "bool":
        x = run_unary(gpu, "astype", t, "Identity", x, _BOOL, x.shape, stream)
        if x is None:
            return None
    return run_reduce(gpu, "sum", x, node._params["axes"], node._dtype.np, node._shape, stream)


def var_handler(gpu, node, args, stream):
    x = args[0]
    p = node._params
    axes, n, ddof = p["axes"], p["n"], p["ddof"]
    t = NAMES.get(x.dtype)
    u = NAMES.get(node._dtype.np)
    if t is None or u is None:
        return None                     # complex64
    a = "float32" if t in ("float16", "bfloat16", "float32") else "float64"
    if np.dtype(p["acc"]) != _NP[a] or (gpu.kind == "metal" and a == "float64"):
        return None
    shape = node._shape
    out_dtype = node._dtype.np
    denom = max(n - ddof, 0)
    if n == 0 or 0 in shape:
        made = gpu.output(shape, out_dtype)
        if made is None:
            return None
        out = made[0]
        if out.size:            # a fresh buffer no kernel touches: 0 / denom
            out.fill(np.nan if denom == 0 else 0)
        return out
    adt = _NP[a]
    xa = x if t == a else run_unary(gpu, "astype", t, "Identity", x, adt, x.shape, stream)
    if xa is None:
        return None
    kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
    mu = run_reduce(gpu, "mean", xa, axes, adt, kept, stream, types=(a, a), div=n)
    if mu is None:
        return None
    d = _SUBTRACT(gpu, _Node(x.shape, adt), (xa, mu), stream)
    if d is None:
        return None
    sq = run_unary(gpu, "unary", "square", "Square", d, adt, x.shape, stream)
    if sq is None:
        return None
    if denom:
        return run_reduce(gpu, "mean", sq, axes, out_dtype, shape, stream, types=(a, u),
                          div=denom)
    # ddof >= n: the sum divided by zero (inf, or nan for a zero sum), as on the CPU
    s = run_reduce(gpu, "mean", sq, axes, adt, shape, stream, types=(a, a), div=0)
    if s is None:
        return None
    v = _DIVIDE(gpu, _Node(shape, adt), (s, np.zeros((), adt)), stream)
    if v is None or u == a:
        return v
    return run_unary(gpu, "astype", a, "Identity", v, out_dtype, shape, stream)


def handlers():
    """{primitive name: GPU handler} of count_nonzero and var."""
    return {"count_nonzero": count_nonzero_handler, "var": var_handler}
