"""GPU handlers of sort and argsort along an axis (shaders/sort.metal), and of partition
and argpartition as full sorts, for every real dtype and any layout.

The order is the CPU's: stable, NaN after every number (NaNs in input order), ties (also
-0.0 and 0.0) in input order; indices are uint32. Rows of up to TILE elements are sorted
by one threadgroup each (a bitonic network on (key, position) pairs in threadgroup
memory); longer rows are sorted a tile at a time into scratch buffers and then merged,
pairs of sorted runs at a time, doubling the run length each pass (log2(n / TILE)
passes), the last pass writing the output.

partition and argpartition: a full sort satisfies everything they promise (the kth
element in its sorted place, none larger before it, none smaller after it). Their
results equal the CPU's in value at the kth position and as sets on each side of it, but
not in the order within each side (the CPU's introselect leaves another one).
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.elementwise import NAMES, _size
from mx.backend.gpu.scan import operand_rows, pack_layout

TILE = 2048                 # MX_SORT_TILE in shaders/sort.metal
_U32 = np.dtype(np.uint32)
_KEYS, _INDICES = 1, 2      # the kernels' `mode` bits


def groups(dtypes=K.REAL):
    """The compile groups of the sorts (kernels.groups adds them)."""
    return {("sort", k): ("sort.metal", [K.typed(k, t) for t in dtypes])
            for k in ("sort_block", "sort_merge")}


def _run(gpu, node, args, stream, want):
    x = args[0]
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    out_dtype = node._dtype.np
    if out_dtype != (x.dtype if want == _KEYS else _U32):
        return None
    axis = node._params["axis"]
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
    if n + 2 * TILE >= 2 ** 32:         # positions (and the padding's) are uint32
        return None
    rows = int(np.prod(cs, dtype=np.int64))
    tiles = -(-n // TILE)
    mode = _size(want)                  # a uint64 holds the int64 constant's bytes
    block = K.typed("sort_block", t)
    if tiles == 1:
        lay = pack_layout(cs, ci, co, rows, n, ist, ost)
        gpu.launch("sort", "sort_block", block, rows * tiles * B.THREADGROUP, stream,
                   [src[:2], (obuf, ooff), (obuf, ooff)], [lay, mode])
        gpu.keep(src[2])
        return out
    # long rows: sorted tiles into scratch (rows of n, contiguous), then merge passes
    scratch = []
    for dt in (x.dtype, x.dtype, _U32, _U32):
        m = gpu.output((rows, n), dt)
        if m is None:
            return None
        scratch.append(m)
    (k0, kb0, ko0), (k1, kb1, ko1), (i0, ib0, io0), (i1, ib1, io1) = scratch
    # the scratch's outer strides in the collapsed outer dims (row r starts at r * n)
    cst = [int(np.prod(cs[d + 1:], dtype=np.int64)) * n for d in range(len(cs))]
    lay = pack_layout(cs, ci, cst, rows, n, ist, 1)
    gpu.launch("sort", "sort_block", block, rows * tiles * B.THREADGROUP, stream,
               [src[:2], (kb0, ko0), (ib0, io0)], [lay, _size(_KEYS | _INDICES)])
    merge = K.typed("sort_merge", t)
    cur = ((kb0, ko0), (ib0, io0))
    other = ((kb1, ko1), (ib1, io1))
    width = TILE
    while width < n:
        last = 2 * width >= n
        if last:
            keys_dst = (obuf, ooff) if want == _KEYS else other[0]
            idx_dst = (obuf, ooff) if want == _INDICES else other[1]
            lay = pack_layout(cs, cst, co, rows, n, 1, ost)
            m = mode
        else:
            keys_dst, idx_dst = other
            lay = pack_layout(cs, cst, cst, rows, n, 1, 1)
            m = _size(_KEYS | _INDICES)
        gpu.launch("sort", "sort_merge", merge, rows * n, stream,
                   [cur[0], cur[1], keys_dst, idx_dst], [lay, _size(width), m])
        cur, other = other, cur
        width *= 2
    gpu.keep(src[2], k0, k1, i0, i1)
    return out


def sort_handler(gpu, node, args, stream):
    return _run(gpu, node, args, stream, _KEYS)


def argsort_handler(gpu, node, args, stream):
    return _run(gpu, node, args, stream, _INDICES)


def handlers():
    """{primitive name: GPU handler} of the sorts."""
    return {"sort": sort_handler, "argsort": argsort_handler,
            "partition": sort_handler, "argpartition": argsort_handler}
