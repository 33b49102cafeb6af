"""GPU handlers of the scans cumsum, cumprod, cummax, cummin and logcumsumexp
(shaders/scan.metal), along any axis, reversed or not, inclusive or exclusive, for every
real dtype.

Accumulation follows the CPU kernel: float16/bfloat16 accumulate in float32 and are rounded
once; integer and bool sums and products wrap (computed in uint32 or uint64 and truncated
to the output dtype, which equals wrapping in it); max/min stay in the input's dtype, NaN
propagating; logcumsumexp of integers and bool gives float32. A row is a line of the input
along the axis, read and written in place through its strides (any layout, no copy): one
threadgroup a row (tiles of 1024 elements, rows of any length; few long rows are split
into blocks, a threadgroup each, in two passes: block totals, then the blocks from the
totals before them), or one thread a row in the CPU's order for short rows and for many
rows of moderate length.
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy
from mx.backend.gpu.elementwise import MAX_DIMS, NAMES, _element_strides, collapse

# primitive -> (kind of its CPU kernel, Op of shaders/scan.metal)
OPS = {"cumsum": ("sum", "ScanSum"), "cumprod": ("prod", "ScanProd"),
       "cummax": ("max", "ScanMax"), "cummin": ("min", "ScanMin"),
       "logcumsumexp": ("logsumexp", "ScanLogAddExp")}
_HALF_FLOATS = ("float16", "bfloat16", "float32")

# one thread a row (scan_serial) for rows up to this long ...
SERIAL_MAX = 32
# ... and for rows up to SERIAL_LONG long when there are at least SERIAL_ROWS of them
SERIAL_ROWS = 8192
SERIAL_LONG = 512
# rows of at least 2 * MIN_BLOCK elements, fewer than TARGET_GROUPS // 2 of them, are split
# into blocks (of at least MIN_BLOCK, a multiple of TILE) to give about TARGET_GROUPS
# threadgroups in all
TILE = 1024                 # MX_SCAN_TILE in shaders/scan.metal
MIN_BLOCK = 4 * TILE
TARGET_GROUPS = 1024


def types(name, t):
    """(accumulator, output) dtype names of scan `name` over input dtype t."""
    kind = OPS[name][0]
    if t in _HALF_FLOATS:
        a = "float32"
    elif t == "float64":
        a = "float64"
    elif kind in ("sum", "prod"):
        a = "uint64" if t in ("int64", "uint64") else "uint32"
    elif kind in ("max", "min"):
        a = t
    else:                                   # logsumexp of integers and bool
        a = "float32"
    if kind == "sum":
        u = "int32" if t == "bool" else t
    elif kind == "logsumexp":
        u = t if t in K.FLOATS else "float32"
    else:
        u = t
    return a, u


def instances(name, dtypes=K.REAL):
    op = OPS[name][1]
    out = []
    for t in dtypes:
        a, u = types(name, t)
        if a in dtypes and u in dtypes:
            out += [K.typed(k, t, a, u, op=op) for k in ("scan_rows", "scan_serial")]
    return out


def groups(dtypes=K.REAL):
    """The compile groups of the scans (kernels.groups adds them)."""
    return {("scan", name): ("scan.metal", instances(name, dtypes)) for name in OPS}


def row_layout(x, axis, out):
    """The rows of x along `axis` and of out (same shape): (outer shape, x's outer
    strides, out's outer strides, n, x's axis stride, out's axis stride) in elements, the
    outer dims collapsed; None when they do not fit the kernels' layout."""
    ndim = x.ndim
    st = _element_strides(x, ndim)
    ost = _element_strides(out, ndim)
    if st is None or ost is None:
        return None
    outer = [d for d in range(ndim) if d != axis]
    cs, (ci, co) = collapse([x.shape[d] for d in outer], [st[d] for d in outer],
                            [ost[d] for d in outer])
    if len(cs) > MAX_DIMS:
        return None
    return cs, ci, co, x.shape[axis], st[axis], ost[axis]


def pack_layout(shape, in_strides, out_strides, rows, n, in_stride, out_stride, *extra):
    """The ScanLayout / SortLayout constant: ndim, three arrays padded to MAX_DIMS, then
    rows, n, the two axis strides and `extra` (all int64)."""
    buf = np.zeros(1 + 3 * MAX_DIMS + 4 + len(extra), np.int64)
    buf[0] = len(shape)
    for k, a in enumerate((shape, in_strides, out_strides)):
        buf[1 + k * MAX_DIMS:1 + k * MAX_DIMS + len(a)] = a
    buf[1 + 3 * MAX_DIMS:] = (rows, n, in_stride, out_stride) + tuple(extra)
    return buf.tobytes()


def operand_rows(gpu, x, axis, out, stream):
    """(operand of x, row layout) for a kernel reading x by rows along `axis` and writing
    out; x is first copied (on the GPU) when its layout does not fit. None if it cannot
    run here."""
    src = gpu.operand(x)        # (a staged copy has its own strides: take them after)
    if src is None:
        return None
    lay = row_layout(src[2], axis, out)
    if lay is None:
        c = contiguous_copy(gpu, src[2], stream)
        if c is None:
            return None
        src = gpu.operand(c)
        if src is None:
            return None
        lay = row_layout(src[2], axis, out)
        if lay is None:
            return None
    return src, lay


def _handler(name):
    op = OPS[name][1]

    def handler(gpu, node, args, stream):
        x = args[0]
        t = NAMES.get(x.dtype)
        if t is None:
            return None
        a, u = types(name, t)
        out_dtype = node._dtype.np
        if NAMES.get(out_dtype) != u:
            return None
        p = node._params
        axis = p["axis"]
        if axis is None:                    # the flattened array, in row-major order
            if not x.flags.c_contiguous:
                x = contiguous_copy(gpu, x, stream)
                if x is None:
                    return None
            x = x.reshape(-1)
            axis = 0
        made = gpu.output(node._shape, out_dtype)
        if made is None:
            return None
        out, obuf, ooff = made
        if out.size == 0:
            return out
        got = operand_rows(gpu, x, axis, out, stream)
        if got is None:
            return None
        src, (cs, ci, co, n, ist, ost) = got
        rows = int(np.prod(cs, dtype=np.int64))

        def layout(blocks=1, block=0, mode=0):
            return pack_layout(cs, ci, co, rows, n, ist, ost, int(bool(p["reverse"])),
                               int(bool(p["inclusive"])), blocks, block, mode)

        if n <= SERIAL_MAX or (rows >= SERIAL_ROWS and n <= SERIAL_LONG):
            gpu.launch("scan", name, K.typed("scan_serial", t, a, u, op=op), rows, stream,
                       [src[:2], (obuf, ooff)], [layout()])
            gpu.keep(src[2])
            return out
        inst = K.typed("scan_rows", t, a, u, op=op)
        blocks = 1
        if n >= 2 * MIN_BLOCK and 2 * rows <= TARGET_GROUPS:
            blocks = min(-(-n // MIN_BLOCK), TARGET_GROUPS // rows)
            block = -(-(-(-n // blocks)) // TILE) * TILE
            blocks = -(-n // block)
        if blocks == 1:
            gpu.launch("scan", name, inst, rows * B.THREADGROUP, stream,
                       [src[:2], (obuf, ooff), (obuf, ooff)], [layout()])
            gpu.keep(src[2])
            return out
        # block totals, then each block from the totals of the blocks before it
        made = gpu.output((rows * blocks,), np.dtype(a))
        if made is None:
            return None
        partials = made[0]
        bufs = [src[:2], (obuf, ooff), made[1:]]
        threads = rows * blocks * B.THREADGROUP
        gpu.launch("scan", name, inst, threads, stream, bufs, [layout(blocks, block, 1)])
        gpu.launch("scan", name, inst, threads, stream, bufs, [layout(blocks, block, 2)])
        gpu.keep(src[2], partials)
        return out

    handler.__name__ = f"gpu_{name}"
    return handler


def handlers():
    """{primitive name: GPU handler} of the scans."""
    return {name: _handler(name) for name in OPS}
