"""GPU handlers of the creation and layout primitives beyond plain copies (copies.py):
eye, tri, tril, triu, linspace, the windows, diagonal, diag_matrix, trace, roll, repeat,
tile, meshgrid, diff, kron, dynamic_slice (shaders/layout.metal, and copy, binary and
elementwise kernels composed).
"""
from __future__ import annotations

import struct

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import _host_values, contiguous_copy, copy_into, fill
from mx.backend.gpu.elementwise import (MAX_DIMS, NAMES, _element_strides, _pack, _size,
                                        collapse, run_binary, run_unary)

_Q = struct.Struct("<q")

# the tables and compile groups of shaders/layout.metal live in kernels.py (layout_groups)
AXIS_SUMS = K.AXIS_SUMS


def _linspace_compute(t):
    return "float64" if t == "float64" else "float32"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def _new(gpu, node):
    made = gpu.output(node._shape, node._dtype.np)
    return None if made is None else made[0]


def reshaped(gpu, x, shape, stream):
    """x reshaped: a view when NumPy can make one, else a reshaped copy made on the GPU
    (never a copy made by the host, which could read data a queued kernel writes)."""
    try:
        return np.reshape(x, shape, copy=False)
    except (ValueError, TypeError):
        c = contiguous_copy(gpu, x, stream)
        return None if c is None else c.reshape(shape)


def _prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def _one(dtype):
    """A one-element array holding 1 of `dtype` (broadcast by the kernels that read it)."""
    return np.ones((), dtype)


# ---------------------------------------------------------------------------------------
# bands: eye, tri, tril, triu
# ---------------------------------------------------------------------------------------
def run_band(gpu, src, out, lo, hi, stream):
    """Queue out = src where lo <= col - row <= hi on the last two axes, else 0; out is a
    new contiguous array (..., rows, cols), src broadcasts to it. out, or None."""
    t = NAMES.get(out.dtype)
    if t is None or src.dtype != out.dtype:
        return None
    n = out.size
    if n == 0:
        return out
    rows, cols = out.shape[-2:]
    s, o = gpu.operand(src), gpu.operand(out)
    if s is None or o is None or o[2] is not out:
        return None
    st = _element_strides(s[2], out.ndim)
    if st is None:
        return None
    cs, (cst,) = collapse(out.shape, st)
    if len(cs) > MAX_DIMS:
        return None
    # clamped to the range of col - row (-(rows - 1) .. cols - 1): the same elements kept
    lo = min(max(lo, -rows), cols)
    hi = min(max(hi, -rows), cols)
    lay = _pack(len(cs), cs, cst) + struct.pack("<4q", rows, cols, lo, hi)
    gpu.launch("layout", "band", K.typed("band", t), n, stream, [s[:2], o[:2]],
               [_size(n), lay])
    gpu.keep(s[2])
    return out


def eye_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    k = node._params["k"]
    return run_band(gpu, np.broadcast_to(_one(out.dtype), out.shape), out, k, k, stream)


def tri_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    rows = out.shape[0]
    return run_band(gpu, np.broadcast_to(_one(out.dtype), out.shape), out, -rows,
                    node._params["k"], stream)


def tril_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    return run_band(gpu, args[0], out, -out.shape[-2], node._params["k"], stream)


def triu_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    return run_band(gpu, args[0], out, node._params["k"], out.shape[-1], stream)


# ---------------------------------------------------------------------------------------
# linspace and windows
# ---------------------------------------------------------------------------------------
def linspace_handler(gpu, node, args, stream):
    p = node._params
    u = NAMES.get(node._dtype.np)
    if u is None:
        return None
    out = _new(gpu, node)
    if out is None:
        return None
    num = p["num"]
    if num == 0:
        return out
    div = num - 1 if p["endpoint"] else num
    c = np.float64 if u == "float64" else np.float32
    with np.errstate(over="ignore"):
        start, stop = c(p["start"]).tobytes(), c(p["stop"]).tobytes()
    o = gpu.operand(out)
    gpu.launch("layout", "linspace", K.typed("linspace", u, _linspace_compute(u)), num, stream,
               [o[:2]], [_size(num), start, stop, _Q.pack(div)])
    return out


_WINDOW_KINDS = {"hanning": 0, "hamming": 1, "blackman": 2, "bartlett": 3}


def window_handler(gpu, node, args, stream):
    p = node._params
    kind = _WINDOW_KINDS.get(p["kind"])
    out = _new(gpu, node)
    if kind is None or out is None or NAMES.get(out.dtype) != "float32":
        return None
    M = p["M"]
    if M == 0:
        return out
    if M == 1:
        return out if fill(gpu, out, 1.0, stream) else None
    o = gpu.operand(out)
    gpu.launch("layout", "window", K.typed("window", "float32"), M, stream, [o[:2]],
               [_size(M), struct.pack("<i", kind)])
    return out


# ---------------------------------------------------------------------------------------
# diagonals
# ---------------------------------------------------------------------------------------
def diagonal_handler(gpu, node, args, stream):
    """A view (as the CPU kernel's np.diagonal): no data is read."""
    p = node._params
    return np.diagonal(args[0], p["offset"], p["axis1"], p["axis2"])


def _diagonal_view(out, k, length):
    """The k-th diagonal of the new contiguous matrix `out`, `length` elements (a view)."""
    n_cols = out.shape[1]
    start = k if k >= 0 else -k * n_cols
    return out.reshape(-1)[start::n_cols + 1][:length]


def diag_matrix_handler(gpu, node, args, stream):
    x = args[0]
    out = _new(gpu, node)
    if out is None or x.dtype != out.dtype:
        return None
    if out.size == 0:
        return out
    if not fill(gpu, out, 0, stream):
        return None
    if x.size and not copy_into(gpu, x, _diagonal_view(out, node._params["k"], x.size), stream):
        return None
    return out


def run_axis_sum(gpu, kernel, a, b, out, stream):
    """Queue out[o] = sum over the last axis of a (times b for dot_axis): a and b have the
    shape out.shape + (n,) (views, any strides). out, or None."""
    t = NAMES.get(a.dtype)
    if t not in AXIS_SUMS or (b is not None and b.dtype != a.dtype):
        return None
    acc, u = AXIS_SUMS[t]
    if NAMES.get(out.dtype) != u:
        return None
    n_out = out.size
    if n_out == 0:
        return out
    n = a.shape[-1]
    if n == 0:
        return out if fill(gpu, out, 0, stream) else None
    ops = [gpu.operand(z) for z in ((a,) if b is None else (a, b))]
    o = gpu.operand(out)
    if any(z is None for z in ops) or o is None:
        return None
    nd = a.ndim
    sts = [_element_strides(z[2], nd) for z in ops]
    if any(s is None for s in sts):
        return None
    steps = [s[-1] for s in sts] + [0]
    cs, cst = collapse(list(out.shape), *[s[:-1] for s in sts])
    if len(cs) > MAX_DIMS:
        return None
    if b is None:
        cst = cst + [[0] * len(cs)]
    lay = _pack(len(cs), cs, *cst) + struct.pack("<3q", n, steps[0], steps[1])
    gpu.launch("layout", kernel, K.typed(kernel, t, acc, u), n_out * B.THREADGROUP, stream,
               [z[:2] for z in ops] + [o[:2]], [_size(n_out), lay])
    gpu.keep(*[z[2] for z in ops])
    return out


def trace_handler(gpu, node, args, stream):
    p = node._params
    x = args[0]
    d = np.diagonal(x, p["offset"], p["axis1"], p["axis2"])
    want = p["dtype"].np
    if NAMES.get(want) is None or NAMES.get(x.dtype) is None:
        return None
    if d.dtype != want:
        d = run_unary(gpu, "astype", NAMES[d.dtype], "Identity", d, want, d.shape, stream)
        if d is None:
            return None
    out = _new(gpu, node)
    if out is None:
        return None
    return run_axis_sum(gpu, "sum_axis", d, None, out, stream)


# ---------------------------------------------------------------------------------------
# roll, repeat, tile, meshgrid, diff, kron, dynamic_slice
# ---------------------------------------------------------------------------------------
def roll_handler(gpu, node, args, stream):
    x = args[0]
    p = node._params
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    if p["axis"] is None:
        src = reshaped(gpu, x, (-1,), stream)
        shifts = {0: p["shift"]}
    else:
        src = x
        shifts = {}
        for sh, ax in zip(p["shift"], p["axis"]):
            shifts[ax] = shifts.get(ax, 0) + sh
    if src is None:
        return None
    made = gpu.output(src.shape, x.dtype)
    if made is None:
        return None
    out = made[0]
    n = out.size
    if n == 0:
        return out.reshape(node._shape)
    s = gpu.operand(src)
    if s is None:
        return None
    src = s[2]
    st = _element_strides(src, src.ndim)
    if st is None:
        return None
    # dims of size 1 dropped; neighbours that are not shifted merged where the input allows
    shape, strides, shift = [], [], []
    for d, m in enumerate(src.shape):
        if m == 1:
            continue
        sh = shifts.get(d, 0) % m
        if shape and sh == 0 and shift[-1] == 0 and strides[-1] == st[d] * m:
            shape[-1] *= m
            strides[-1] = st[d]
            continue
        shape.append(m)
        strides.append(st[d])
        shift.append(sh)
    if len(shape) > MAX_DIMS:
        return None
    lay = _pack(len(shape), shape, strides) + _pack_ints(shift)
    gpu.launch("layout", "roll", K.typed("roll_g", t), n, stream, [s[:2], made[1:]],
               [_size(n), lay])
    gpu.keep(src)
    return out.reshape(node._shape)


def _pack_ints(values):
    buf = np.zeros(MAX_DIMS, np.int64)
    buf[:len(values)] = values
    return buf.tobytes()


def _broadcast_copy(gpu, src, out, stream):
    """out (a new array, or a view of one) = src broadcast to out's shape, or None."""
    if src.dtype != out.dtype:
        return None
    try:
        src = np.broadcast_to(src, out.shape)
    except ValueError:
        return None
    return out if copy_into(gpu, src, out, stream) else None


def repeat_handler(gpu, node, args, stream):
    x = args[0]
    p = node._params
    n, ax = p["repeats"], p["axis"]
    if ax is None:
        x = reshaped(gpu, x, (-1,), stream)
        ax = 0
        if x is None:
            return None
    out = _new(gpu, node)
    if out is None:
        return None
    if out.size == 0:
        return out
    view = out.reshape(x.shape[:ax] + (x.shape[ax], n) + x.shape[ax + 1:])
    return out if _broadcast_copy(gpu, np.expand_dims(x, ax + 1), view, stream) is not None \
        else None


def tile_handler(gpu, node, args, stream):
    x = args[0]
    reps = node._params["reps"]
    d = len(reps)
    out = _new(gpu, node)
    if out is None:
        return None
    if out.size == 0:
        return out
    xs = x[(None,) * (d - x.ndim)] if x.ndim < d else x      # (a view: x[()] of 0-d is not)
    # out as (r0, s0, r1, s1, ...), x as (1, s0, 1, s1, ...) broadcast along the r axes
    inter = tuple(v for r, m in zip(reps, xs.shape) for v in (r, m))
    src = np.expand_dims(xs, tuple(range(0, 2 * d, 2)))
    return out if _broadcast_copy(gpu, src, out.reshape(inter), stream) is not None else None


def meshgrid_handler(gpu, node, args, stream):
    p = node._params
    out = _new(gpu, node)
    if out is None:
        return None
    if out.size == 0:
        return out
    v = reshaped(gpu, args[0], p["view"], stream)
    if v is None:
        return None
    return _broadcast_copy(gpu, v, out, stream)


def diff_handler(gpu, node, args, stream):
    x = args[0]
    p = node._params
    n, ax = p["n"], p["axis"]
    if n == 0:
        return x            # NumPy's diff returns its input unchanged
    name = "not_equal" if x.dtype == np.bool_ else "subtract"
    a = x
    for _ in range(n):
        m = a.shape[ax] - 1
        if m <= 0:
            return _new(gpu, node)
        lead = (slice(None),) * ax
        shape = a.shape[:ax] + (m,) + a.shape[ax + 1:]
        a = run_binary(gpu, name, a[lead + (slice(1, None),)], a[lead + (slice(None, -1),)],
                       shape, stream)
        if a is None:
            return None
    return a


def kron_handler(gpu, node, args, stream):
    a, b = args
    if a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    nd = max(a.ndim, b.ndim)
    a = a[(None,) * (nd - a.ndim)] if a.ndim < nd else a     # leading axes of size 1
    b = b[(None,) * (nd - b.ndim)] if b.ndim < nd else b
    # out as (a0, b0, a1, b1, ...) = a (a0, 1, a1, 1, ...) * b (1, b0, 1, b1, ...)
    inter = tuple(v for p, q in zip(a.shape, b.shape) for v in (p, q))
    res = run_binary(gpu, "multiply", np.expand_dims(a, tuple(range(1, 2 * nd, 2))),
                     np.expand_dims(b, tuple(range(0, 2 * nd, 2))), inter, stream)
    return None if res is None else res.reshape(node._shape)


def dynamic_slice_handler(gpu, node, args, stream):
    """x[start:start + size] with the starts read on the host (after waiting for the GPU
    when a queued kernel writes them): a view, as the CPU kernel returns."""
    from mx.core.ops.indexing import _static_key
    x, start = args
    p = node._params
    key = _static_key(_host_values(gpu, start), p["axes"], p["sizes"], x.shape, "slice")
    return x[key]


def handlers():
    """{primitive name: GPU handler} of the primitives of this module."""
    return {
        "eye": eye_handler,
        "tri": tri_handler,
        "tril": tril_handler,
        "triu": triu_handler,
        "linspace": linspace_handler,
        "window": window_handler,
        "diagonal": diagonal_handler,
        "diag_matrix": diag_matrix_handler,
        "trace": trace_handler,
        "roll": roll_handler,
        "repeat": repeat_handler,
        "tile": tile_handler,
        "meshgrid": meshgrid_handler,
        "diff": diff_handler,
        "kron": kron_handler,
        "dynamic_slice": dynamic_slice_handler,
    }
