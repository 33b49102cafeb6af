"""GPU handlers of the layout primitives: views, copies, joins, fills and ranges
(shaders/copy.metal).

Views (transpose, broadcast_to, slices, flip, reshape where NumPy can) only make a new
NumPy header over the same unified memory: they read no data, so they need no wait for the
GPU and run here rather than as CPU fallbacks (which would wait). Everything that moves
data is one strided copy kernel, `copy_gg<T>`, from any layout (0 strides broadcast, so a
one-element source fills) into any positive-stride layout of the destination: contiguous,
concatenate, stack, pad, slice_update, full and friends.
"""
from __future__ import annotations

import struct

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.elementwise import (MAX_DIMS, NAMES, _element_strides, _pack, _size,
                                        collapse, run_unary)

_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")


def copy_into(gpu, src, dst, stream):
    """Queue dst[...] = src for NumPy arrays of one shape and dtype (src may broadcast:
    0 strides); dst must lie in the shim's memory. False when this cannot run here."""
    t = NAMES.get(dst.dtype)
    if t is None or src.dtype != dst.dtype or src.shape != dst.shape:
        return False
    n = dst.size
    if n == 0:
        return True
    d = gpu.operand(dst)
    if d is None or d[2] is not dst:
        return False
    s = gpu.operand(src)
    if s is None:
        return False
    sbuf, soff, src = s
    ndim = dst.ndim
    sst = _element_strides(src, ndim)
    dst_st = _element_strides(dst, ndim)
    if sst is None or dst_st is None:
        return False
    cs, (csa, csb) = collapse(dst.shape, sst, dst_st)
    if len(cs) > MAX_DIMS:
        return False
    gpu.launch("copy", "copy_gg", K.typed("copy_gg", t), n, stream,
               [(sbuf, soff), (d[0], d[1])], [_size(n), _pack(len(cs), cs, csa, csb)])
    gpu.keep(src)
    return True


def contiguous_copy(gpu, x, stream):
    """A row-contiguous copy of x made on the GPU, or None."""
    return run_unary(gpu, "unary", "copy", "Identity", x, x.dtype, x.shape, stream)


def fill(gpu, out, value, stream):
    """Queue out[...] = value (a Python/NumPy scalar or a one-element array)."""
    v = np.asarray(value)
    if v.dtype != out.dtype:
        v = v.astype(out.dtype)
    return copy_into(gpu, np.broadcast_to(v.reshape(()), out.shape), out, stream)


# ---------------------------------------------------------------------------------------
# views
# ---------------------------------------------------------------------------------------
def _view_of(kernel):
    """A handler running the CPU kernel of a primitive that only makes a view."""
    def handler(gpu, node, args, stream):
        params = node._params
        out = kernel(*args) if params is None else kernel(*args, **params)
        if not isinstance(out, np.ndarray):
            return None
        if out.size == 0:
            return out      # nothing to read: a view or a copy of no elements, either is fine
        if not np.may_share_memory(out, args[0]):
            return None     # it copied: not a view after all (the CPU path decides)
        return out
    handler.__name__ = f"gpu_view_{kernel.__name__}"
    return handler


def _basic(key):
    for k in key if isinstance(key, tuple) else (key,):
        if k is None or k is Ellipsis or type(k) is slice:
            continue
        if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            continue
        return False
    return True


def index_handler(gpu, node, args, stream):
    key = node._params["key"]
    if not _basic(key):
        return None
    return args[0][key]


def split_slice_handler(gpu, node, args, stream):
    index = node._params["index"]
    if not _basic(index):
        return None
    return args[0][index]


def reshape_handler(gpu, node, args, stream):
    x = args[0]
    shape = node._params["shape"]
    try:
        return np.reshape(x, shape, copy=False)
    except (ValueError, TypeError):
        c = contiguous_copy(gpu, x, stream)
        return None if c is None else c.reshape(shape)


def contiguous_handler(gpu, node, args, stream):
    x = args[0]
    if x.flags.c_contiguous or (node._params["allow_col_major"] and x.flags.f_contiguous):
        return x
    return contiguous_copy(gpu, x, stream)


def as_strided_handler(gpu, node, args, stream):
    x = args[0]
    if not x.flags.c_contiguous:
        x = contiguous_copy(gpu, x, stream)
        if x is None:
            return None
    p = node._params
    flat = x.reshape(-1)
    item = flat.itemsize
    return np.lib.stride_tricks.as_strided(flat[p["offset"]:], p["shape"],
                                           [s * item for s in p["strides"]], writeable=False)


# ---------------------------------------------------------------------------------------
# joins, pads, updates
# ---------------------------------------------------------------------------------------
def _new(gpu, node):
    made = gpu.output(node._shape, node._dtype.np)
    return None if made is None else made[0]


def concatenate_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    axis = node._params["axis"]
    lead = (slice(None),) * axis
    at = 0
    for x in args:
        n = x.shape[axis]
        if x.dtype != out.dtype or not copy_into(gpu, x, out[lead + (slice(at, at + n),)], stream):
            return None
        at += n
    return out


def stack_handler(gpu, node, args, stream):
    out = _new(gpu, node)
    if out is None:
        return None
    lead = (slice(None),) * node._params["axis"]
    for k, x in enumerate(args):
        if x.dtype != out.dtype or not copy_into(gpu, x, out[lead + (k,)], stream):
            return None
    return out


def pad_handler(gpu, node, args, stream):
    x, value = args
    p = node._params
    if p["mode"] != "constant" or x.ndim == 0 or value.dtype != x.dtype:
        return None
    out = _new(gpu, node)
    if out is None or not fill(gpu, out, value, stream):
        return None
    inner = tuple(slice(lo, lo + n) for (lo, _hi), n in zip(p["pad_width"], x.shape))
    if not copy_into(gpu, x, out[inner], stream):
        return None
    return out


def _host_values(gpu, a):
    """The values of a small index array, read on the host once the GPU work that may
    write it has finished."""
    if gpu.written(a):
        gpu.synchronize()
    return np.reshape(a, -1).tolist()


def slice_update_handler(gpu, node, args, stream):
    x, update, start = args
    p = node._params
    from mx.core.ops.indexing import _static_key
    key = _static_key(_host_values(gpu, start), p["axes"], p["sizes"], x.shape, "slice_update")
    return _updated(gpu, x, update, key, stream)


def scatter_handler(gpu, node, args, stream):
    """x[key] = v for a basic key (slices and integers: item assignment, and slice_update
    with known starts); index arrays run on the CPU."""
    p = node._params
    if p["slots"] or len(args) != 2 or not _basic(p["key"]):
        return None
    return _updated(gpu, args[0], args[1], p["key"], stream)


def _updated(gpu, x, update, key, stream):
    """A copy of x with `update` (broadcast, cast to x's dtype) written at x[key]."""
    out = contiguous_copy(gpu, x, stream)
    if out is None:
        return None
    if update.dtype != out.dtype:
        update = run_unary(gpu, "astype", NAMES.get(update.dtype), "Identity", update,
                           out.dtype, update.shape, stream)
        if update is None:
            return None
    dst = out[key]
    try:
        src = np.broadcast_to(update, dst.shape)
    except ValueError:
        return None
    if not copy_into(gpu, src, dst, stream):
        return None
    return out


# ---------------------------------------------------------------------------------------
# creation
# ---------------------------------------------------------------------------------------
def _filled(value):
    def handler(gpu, node, args, stream):
        out = _new(gpu, node)
        if out is None or not fill(gpu, out, value, stream):
            return None
        return out
    return handler


def full_handler(gpu, node, args, stream):
    value = node._params["value"]
    if isinstance(value, np.ndarray) and value.size != 1:
        return None
    out = _new(gpu, node)
    if out is None or not fill(gpu, out, np.asarray(value).astype(out.dtype), stream):
        return None
    return out


def full_array_handler(gpu, node, args, stream):
    x = args[0]
    out = _new(gpu, node)
    if out is None or x.dtype != out.dtype:
        return None
    try:
        src = np.broadcast_to(x, out.shape)
    except ValueError:
        return None
    return out if copy_into(gpu, src, out, stream) else None


def arange_handler(gpu, node, args, stream):
    p = node._params
    start, step, size = p["start"], p["step"], p["size"]
    u = NAMES.get(node._dtype.np)
    if u is None or u == "bool":
        return None
    out = _new(gpu, node)
    if out is None:
        return None
    if size == 0:
        return out
    o = gpu.operand(out)
    if isinstance(start, int) and not isinstance(step, float) and u in K.INTS:
        if not (-2**63 <= start < 2**63 and -2**63 <= step < 2**63):
            return None
        consts = [_size(size), _I64.pack(start), _I64.pack(int(step))]
        inst = K.typed("arange_int", u)
    elif u in K.FLOATS and not isinstance(start, complex) and size > 1:
        consts = [_size(size), _F64.pack(float(start)), _F64.pack(float(step))]
        inst = K.typed("arange_float", u)
    else:
        return None
    gpu.launch("copy", "arange", inst, size, stream, [(o[0], o[1])], consts)
    return out


def handlers():
    """{primitive name: GPU handler} of the layout primitives."""
    from mx.core.ops import shape as S
    return {
        "transpose": _view_of(S._transpose_kernel),
        "broadcast_to": _view_of(S._broadcast_kernel),
        "flip": _view_of(S._flip_kernel),
        "split_slice": split_slice_handler,
        "index": index_handler,
        # the transforms' leaves: the CPU kernel is the identity too (no data is read)
        "transform_leaf": lambda gpu, node, args, stream: args[0],
        "reshape": reshape_handler,
        "contiguous": contiguous_handler,
        "as_strided": as_strided_handler,
        "concatenate": concatenate_handler,
        "stack": stack_handler,
        "pad": pad_handler,
        "slice_update": slice_update_handler,
        "scatter": scatter_handler,
        "zeros": _filled(0),
        "ones": _filled(1),
        "full": full_handler,
        "full_array": full_array_handler,
        "arange": arange_handler,
    }
