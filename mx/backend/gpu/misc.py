"""GPU handlers of view, hadamard_transform, searchsorted and median (shaders/misc.metal).

* view: no kernel. A row-contiguous input is read as the new dtype in place (a NumPy view
  of the same unified memory, as the CPU kernel returns); another layout is first copied
  row-contiguous on the GPU, as the CPU kernel copies it.
* hadamard_transform: one threadgroup a row of up to HADAMARD_MAX elements, the CPU
  kernel's butterfly stages in its order and precision (float32 for float16/bfloat16), the
  m x m factor (m in 12, 20, 28) summed in order, then the scale; longer rows run on the CPU.
* searchsorted: one thread a value, a binary search in NumPy's order (NaN last) after both
  inputs are converted (on the GPU) to the comparison dtype. For a sorted sequence this is
  NumPy's answer; for an unsorted one the result is unspecified on either device.
* median: the reduced axes brought last (a GPU copy when needed), the rows sorted by the
  GPU sort (mx/backend/gpu/sort.py), then a kernel picks the middle value or the mean of the
  middle two (NaN when the row has a NaN), as NumPy's median computes it: in float32 for
  floats up to float32, in float64 for float64, integers and bool (so not on Metal).
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy, fill
from mx.backend.gpu.elementwise import NAMES, _size, run_unary

HADAMARD_MAX = 4096         # MX_HADAMARD_MAX in shaders/misc.metal
_U32 = np.dtype(np.uint32)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)

# median: input dtype -> (mean's precision, output dtype), the CPU kernel's (NumPy's)
MEDIAN = dict([(t, ("float64", "float32")) for t in K.BOOL + K.INTS]
              + [(t, (K.ROWS[t][0], t)) for t in K.FLOATS])


def groups(dtypes=K.REAL):
    """The compile groups of shaders/misc.metal (kernels.groups adds them)."""
    f = "misc.metal"
    out = {
        ("misc", "hadamard"): (f, [K.typed("hadamard_rows", t, K.ROWS[t][0]) for t in K.FLOATS
                                   if t in dtypes and K.ROWS[t][0] in dtypes]),
        # (comparisons of float16/bfloat16 run in float32, as on the CPU)
        ("misc", "searchsorted"): (f, [K.typed("searchsorted", t) for t in K.REAL
                                       if t in dtypes and t not in ("float16", "bfloat16")]),
        ("misc", "median"): (f, [K.typed("median_rows", t, a, u) for t, (a, u) in MEDIAN.items()
                                 if t in dtypes and a in dtypes and u in dtypes]),
    }
    return {k: v for k, v in out.items() if v[1]}


# ---------------------------------------------------------------------------------------
# view
# ---------------------------------------------------------------------------------------
def view_handler(gpu, node, args, stream):
    x = args[0]
    dt = node._params["dtype"].np
    if not x.flags.c_contiguous:
        x = contiguous_copy(gpu, x, stream)
        if x is None:
            return None
    try:
        out = x.view(dt)
    except (TypeError, ValueError):
        return None
    if out.shape != node._shape:
        return None
    return out


# ---------------------------------------------------------------------------------------
# hadamard_transform
# ---------------------------------------------------------------------------------------
_H = {}     # (m, computation dtype, transpose) -> the factor's matrix in GPU memory


def _h_operand(gpu, m, comp, transpose):
    key = (m, comp, transpose)
    hit = _H.get(key)
    if hit is None:
        if m == 1:
            h = np.ones((1, 1), comp)
        else:
            from mx.core.ops.products_extra import _h_matrix
            h = _h_matrix(m, comp)
            if transpose:
                h = h.T
        op = gpu.operand(np.array(h, dtype=comp, order="C", copy=True))
        if op is None:
            return None
        hit = _H[key] = op
    return hit


def hadamard_handler(gpu, node, args, stream):
    x = args[0]
    p = node._params
    t = NAMES.get(x.dtype)
    if t not in K.ROWS or node._dtype.np != x.dtype:
        return None
    a = K.ROWS[t][0]
    comp = _F64 if a == "float64" else _F32
    n = x.shape[-1] if x.ndim else 1
    m = int(p["m"])
    if n < 1 or n > HADAMARD_MAX or n % m:
        return None
    q = n // m
    if q & (q - 1):
        return None
    made = gpu.output(node._shape, x.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0:
        return out
    if not x.flags.c_contiguous:
        x = contiguous_copy(gpu, x, stream)
        if x is None:
            return None
    src = gpu.operand(x)
    h = _h_operand(gpu, m, comp, bool(p.get("transpose", False)))
    if src is None or h is None:
        return None
    rows = x.size // n
    scale = np.array(p["scale"], dtype=comp).tobytes()
    gpu.launch("misc", "hadamard", K.typed("hadamard_rows", t, a), rows * B.THREADGROUP, stream,
               [src[:2], h[:2], (obuf, ooff)], [_size(rows), _size(n), _size(m), scale])
    gpu.keep(src[2])
    return out


# ---------------------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------------------
def _as_contiguous(gpu, x, dt, stream):
    """x converted to dtype dt and made row-contiguous, on the GPU (None: cannot)."""
    if x.dtype != dt:
        name = NAMES.get(x.dtype)
        if name is None:
            return None
        return run_unary(gpu, "astype", name, "Identity", x, dt, x.shape, stream)
    if not x.flags.c_contiguous:
        return contiguous_copy(gpu, x, stream)
    return x


def searchsorted_handler(gpu, node, args, stream):
    seq, vals = args
    p = node._params
    from mx.core.ops.sorting import _compute_np
    ct = np.dtype(_compute_np(p["dtype"]))
    c = NAMES.get(ct)
    if c is None or node._dtype.np != _U32:
        return None
    if p["batched"]:
        if seq.ndim != 2 or vals.ndim < 1 or vals.shape[0] != seq.shape[0]:
            return None
    elif seq.ndim != 1:
        return None
    length = seq.shape[-1]
    if length >= 2 ** 32 - 1:
        return None
    made = gpu.output(node._shape, _U32)
    if made is None:
        return None
    out, obuf, ooff = made
    count = out.size
    if count == 0:
        return out
    if length == 0:
        return out if fill(gpu, out, 0, stream) else None
    seq = _as_contiguous(gpu, seq, ct, stream)
    vals = _as_contiguous(gpu, vals, ct, stream)
    if seq is None or vals is None:
        return None
    s, v = gpu.operand(seq), gpu.operand(vals)
    if s is None or v is None:
        return None
    per = count // seq.shape[0] if p["batched"] else count
    side = np.array(0 if p["side"] == "left" else 1, np.int64).tobytes()
    gpu.launch("misc", "searchsorted", K.typed("searchsorted", c), count, stream,
               [s[:2], v[:2], (obuf, ooff)], [_size(count), _size(length), _size(per), side])
    gpu.keep(s[2], v[2])
    return out


# ---------------------------------------------------------------------------------------
# median
# ---------------------------------------------------------------------------------------
def median_handler(gpu, node, args, stream):
    from mx.backend.gpu import sort
    x = args[0]
    t = NAMES.get(x.dtype)
    if t not in MEDIAN:
        return None
    a, u = MEDIAN[t]
    if NAMES.get(node._dtype.np) != u or (a == "float64" and gpu.kind == "metal"):
        return None
    ndim = x.ndim
    axes = sorted({ax % ndim for ax in node._params["axes"]}) if ndim else []
    keep = [d for d in range(ndim) if d not in axes]
    n = int(np.prod([x.shape[d] for d in axes], dtype=np.int64))
    rows = int(np.prod([x.shape[d] for d in keep], dtype=np.int64))
    made = gpu.output(node._shape, node._dtype.np)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0 or rows == 0:
        return out
    if n == 0:
        return None             # (the op refuses an empty axis before this)
    xt = np.transpose(x, keep + axes)
    if len(axes) <= 1:
        rowed = xt if axes else xt[..., None]
    else:
        if not xt.flags.c_contiguous:
            xt = contiguous_copy(gpu, xt, stream)
            if xt is None:
                return None
        rowed = xt.reshape(rows, n)
    fake = SimpleNamespace(_params={"axis": rowed.ndim - 1}, _shape=rowed.shape,
                           _dtype=SimpleNamespace(np=rowed.dtype))
    srt = sort.sort_handler(gpu, fake, [rowed], stream)
    if srt is None or not srt.flags.c_contiguous or srt.shape != rowed.shape:
        return None
    sop = gpu.operand(srt)
    if sop is None:
        return None
    gpu.launch("misc", "median", K.typed("median_rows", t, a, u), rows, stream,
               [sop[:2], (obuf, ooff)], [_size(rows), _size(n)])
    gpu.keep(sop[2])
    return out


def handlers():
    """{primitive name: GPU handler} of this module."""
    return {"view": view_handler, "hadamard_transform": hadamard_handler,
            "searchsorted": searchsorted_handler, "median": median_handler}
