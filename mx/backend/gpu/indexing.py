"""GPU handlers of the indexing primitives: take, take_along_axis, put_along_axis, gather
with one index array (``x[idx]``, ``x[:, idx]``: an embedding lookup) and select
(shaders/gather.metal, shaders/select.metal).

Indices are read on the GPU: negative ones count from the end; one out of range makes the
kernel set a flag and touch element 0 instead, and the backend raises IndexError naming the
op when it next waits for the GPU (at the latest when the evaluation ends), as the CPU
kernels raise during evaluation.
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy
from mx.backend.gpu.elementwise import (MAX_DIMS, NAMES, WORK, _element_strides, _size,
                                        collapse, run_unary)

_I64 = np.int64


def _index_operand(gpu, idx, stream):
    """An index array of a type the kernels read (others are converted on the GPU)."""
    name = NAMES.get(idx.dtype)
    if name in K.INDEX_TYPES:
        return idx
    if name not in K.INTS:
        return None
    return run_unary(gpu, "astype", name, "Identity", idx, np.dtype(np.int64), idx.shape, stream)


def _along_layout(shape, a, b, c, axis_n, axis_stride):
    """The AlongLayout constant of shaders/gather.metal (Strided3, then two int64)."""
    cs, strides = collapse(shape, a, b, c)
    if len(cs) > MAX_DIMS:
        return None, 0
    buf = np.zeros(1 + 4 * MAX_DIMS + 2, _I64)
    buf[0] = len(cs)
    buf[1:1 + len(cs)] = cs
    for k, st in enumerate(strides):
        buf[1 + (k + 1) * MAX_DIMS:1 + (k + 1) * MAX_DIMS + len(st)] = st
    buf[-2:] = (axis_n, axis_stride)
    return buf.tobytes(), len(cs)


def run_take(gpu, op, x, idx, axis, shape, stream):
    """out = np.take(x, idx, axis) (axis None: x flattened), on the GPU."""
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    idx = _index_operand(gpu, idx, stream)
    if idx is None:
        return None
    if not x.flags.c_contiguous:
        x = contiguous_copy(gpu, x, stream)
    if not idx.flags.c_contiguous:
        idx = contiguous_copy(gpu, idx, stream)
    if x is None or idx is None:
        return None
    made = gpu.output(shape, x.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    if axis is None:
        n_axis, n_post = x.size, 1
    else:
        n_axis = x.shape[axis]
        n_post = int(np.prod(x.shape[axis + 1:], dtype=_I64))
    sx, si = gpu.operand(x), gpu.operand(idx)
    flag = gpu.error_flag(op, n_axis)
    if sx is None or si is None or flag is None:
        return None
    lay = np.array([idx.size, n_axis, n_post], _I64).tobytes()
    gpu.launch("gather", "take_axis", K.typed("take_axis", t, NAMES[idx.dtype]), n, stream,
               [sx[:2], si[:2], (obuf, ooff), flag], [_size(n), lay])
    gpu.keep(sx[2], si[2])
    return out


def take_handler(gpu, node, args, stream):
    x, idx = args
    return run_take(gpu, "take", x, idx, node._params["axis"], node._shape, stream)


def gather_handler(gpu, node, args, stream):
    """x[key] with a single integer index array at one position and full slices elsewhere
    (``x[idx]``, ``x[:, idx]``): np.take along that axis."""
    p = node._params
    key, slots = p["key"], p["slots"]
    if len(slots) != 1 or len(args) != 2:
        return None
    x, idx = args
    if NAMES.get(idx.dtype) not in K.INTS or len(key) > x.ndim:
        return None
    pos = slots[0]
    for i, k in enumerate(key):
        if i != pos and not (type(k) is slice and k == slice(None)):
            return None
    return run_take(gpu, "gather", x, idx, pos, node._shape, stream)


def take_along_axis_handler(gpu, node, args, stream):
    x, idx = args
    axis = node._params["axis"]
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    idx = _index_operand(gpu, idx, stream)
    if idx is None:
        return None
    if axis is None:
        if not x.flags.c_contiguous:
            x = contiguous_copy(gpu, x, stream)
            if x is None:
                return None
        x = x.reshape(-1)
        axis = 0
    shape = node._shape
    made = gpu.output(shape, x.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    sx, si = gpu.operand(x), gpu.operand(idx)
    if sx is None or si is None:
        return None
    x, idx = sx[2], si[2]
    xs = _element_strides(x, x.ndim)
    ist = _element_strides(idx, len(shape))
    if xs is None or ist is None:
        return None
    axis_stride = xs[axis]
    if x.shape[axis] == 1:      # _element_strides reports 0 for size-1 dims
        axis_stride = 0
    xs = list(xs)
    xs[axis] = 0
    zeros = [0] * len(shape)
    lay, nd = _along_layout(shape, xs, ist, zeros, x.shape[axis], axis_stride)
    flag = gpu.error_flag("take_along_axis", x.shape[axis])
    if lay is None or flag is None:
        return None
    gpu.launch("gather", "take_along", K.typed("take_along", t, NAMES[idx.dtype]), n, stream,
               [sx[:2], si[:2], (obuf, ooff), flag], [_size(n), lay])
    gpu.keep(x, idx)
    return out


def put_along_axis_handler(gpu, node, args, stream):
    x, idx, v = args
    axis = node._params["axis"]
    t = NAMES.get(x.dtype)
    if t is None:
        return None
    idx = _index_operand(gpu, idx, stream)
    if idx is None:
        return None
    if v.dtype != x.dtype:
        v = run_unary(gpu, "astype", NAMES.get(v.dtype), "Identity", v, x.dtype, v.shape, stream)
        if v is None:
            return None
    res = contiguous_copy(gpu, x, stream)
    if res is None:
        return None
    flat = res.reshape(-1) if axis is None else res
    ax = 0 if axis is None else axis
    try:
        shape = np.broadcast_shapes(idx.shape, v.shape)
    except ValueError:
        return None
    if len(shape) != flat.ndim:
        return None
    n = int(np.prod(shape, dtype=_I64))
    if n == 0:
        return res
    si, sv, sr = gpu.operand(idx), gpu.operand(v), gpu.operand(flat)
    if si is None or sv is None or sr is None:
        return None
    idx, v = si[2], sv[2]
    ist = _element_strides(idx, len(shape))
    vst = _element_strides(v, len(shape))
    rst = list(_element_strides(flat, flat.ndim))
    axis_stride = rst[ax] if flat.shape[ax] != 1 else 0
    rst[ax] = 0
    # res's other axes must line up with the iteration shape (np.put_along_axis broadcasts
    # indices and values against each other, not against x)
    for d, (m, k) in enumerate(zip(shape, flat.shape)):
        if d != ax and m != k:
            return None
    lay, nd = _along_layout(list(shape), ist, vst, rst, flat.shape[ax], axis_stride)
    flag = gpu.error_flag("put_along_axis", flat.shape[ax])
    if lay is None or flag is None:
        return None
    gpu.launch("gather", "put_along", K.typed("put_along", t, NAMES[idx.dtype]), n, stream,
               [si[:2], sv[:2], sr[:2], flag], [_size(n), lay])
    gpu.keep(idx, v)
    return res


def select_handler(gpu, node, args, stream):
    c, a, b = args
    t = NAMES.get(node._dtype.np)
    if t is None or c.dtype != np.bool_ or a.dtype != node._dtype.np or b.dtype != a.dtype:
        return None
    shape = node._shape
    made = gpu.output(shape, a.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    ops = [gpu.operand(z) for z in (c, a, b)]
    if any(o is None for o in ops):
        return None
    c, a, b = (o[2] for o in ops)
    bufs = [o[:2] for o in ops] + [(obuf, ooff)]
    if all(z.size == n and z.flags.c_contiguous for z in (c, a, b)):
        gpu.launch("select", "select", K.typed("select_v", t), n, stream, bufs, [_size(n)],
                   work=WORK)
    else:
        nd = len(shape)
        sts = [_element_strides(z, nd) for z in (c, a, b)]
        if any(s is None for s in sts):
            return None
        cs, (s1, s2, s3) = collapse(shape, *sts)
        if len(cs) > MAX_DIMS:
            return None
        buf = np.zeros(1 + 4 * MAX_DIMS, _I64)
        buf[0] = len(cs)
        for k, st in enumerate((cs, s1, s2, s3)):
            buf[1 + k * MAX_DIMS:1 + k * MAX_DIMS + len(st)] = st
        gpu.launch("select", "select", K.typed("select_g", t), n, stream, bufs,
                   [_size(n), buf.tobytes()])
    gpu.keep(c, a, b)
    return out


def handlers():
    """{primitive name: GPU handler} of the indexing primitives."""
    return {
        "take": take_handler,
        "gather": gather_handler,
        "take_along_axis": take_along_axis_handler,
        "put_along_axis": put_along_axis_handler,
        "select": select_handler,
    }
