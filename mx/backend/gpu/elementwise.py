"""GPU kernels of the elementwise primitives (unary, binary, astype): shaders/unary.metal and
shaders/binary.metal, picked by layout (contiguous, one scalar operand, strided)."""
from __future__ import annotations

import struct

import ml_dtypes
import numpy as np

from mx.backend.gpu import kernels as K

MAX_DIMS = 8
WORK = 4          # elements a thread in the contiguous kernels (MX_WORK in shaders/utils.metal)
_I64 = np.int64
# dtype -> name (np.dtype.name is slow, and every kernel call asks)
NAMES = {np.dtype(n): n for n in K.CTYPES if n != "bfloat16"}
NAMES[np.dtype(ml_dtypes.bfloat16)] = "bfloat16"
_U64 = struct.Struct("<Q")


def _element_strides(x, ndim):
    """x's strides in elements, right-aligned to `ndim` dims, 0 where it broadcasts; None
    when a stride is not a whole number of elements."""
    item = x.itemsize
    out = [0] * ndim
    off = ndim - x.ndim
    for i, (n, s) in enumerate(zip(x.shape, x.strides)):
        if n == 1:
            continue
        if s % item:
            return None
        out[off + i] = s // item
    return out


def collapse(shape, *strides):
    """Merge adjacent dimensions that every stride list walks contiguously and drop
    dimensions of size 1: (shape, [strides...]) with as few dims as possible."""
    dims = [i for i, n in enumerate(shape) if n != 1]
    new_shape = []
    new_strides = [[] for _ in strides]
    for i in dims:
        if new_shape:
            n_prev = new_shape[-1]
            if all(ns[-1] == st[i] * shape[i] for ns, st in zip(new_strides, strides)):
                new_shape[-1] = n_prev * shape[i]
                for ns, st in zip(new_strides, strides):
                    ns[-1] = st[i]
                continue
        new_shape.append(shape[i])
        for ns, st in zip(new_strides, strides):
            ns.append(st[i])
    return new_shape, new_strides


def _pack(ndim, *arrays):
    """A Strided1/Strided2 constant: ndim, then each array padded to MAX_DIMS."""
    buf = np.zeros(1 + MAX_DIMS * len(arrays), _I64)
    buf[0] = ndim
    for k, a in enumerate(arrays):
        buf[1 + k * MAX_DIMS: 1 + k * MAX_DIMS + len(a)] = a
    return buf.tobytes()


def _size(n):
    return _U64.pack(n)


def _contiguous(x):
    return x.flags.c_contiguous


def run_unary(gpu, kind, name, op, x, out_dtype, shape, stream):
    """Queue out = op(x) (converted to out_dtype); returns out or None (not handled)."""
    t = NAMES.get(x.dtype)
    u = NAMES.get(np.dtype(out_dtype))
    if t is None or u is None:
        return None
    made = gpu.output(shape, out_dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    src = gpu.operand(x)
    if src is None:
        return None
    xbuf, xoff, x = src
    if _contiguous(x) and x.size == n:
        gpu.launch(kind, name, K.instance("unary_v", t, u, op), n, stream,
                   [(xbuf, xoff), (obuf, ooff)], [_size(n)], work=WORK)
    else:
        st = _element_strides(x, len(shape))
        if st is None:
            return None
        cs, (cst,) = collapse(shape, st)
        if len(cs) > MAX_DIMS:
            return None
        gpu.launch(kind, name, K.instance("unary_g", t, u, op), n, stream,
                   [(xbuf, xoff), (obuf, ooff)], [_size(n), _pack(len(cs), cs, cst)])
    gpu.keep(x)
    return out


def unary_handler(name):
    op, types = K.UNARY[name]

    plans = {}      # input dtype -> (output dtype, contiguous instance) or None

    def plan(x_dtype, out_dtype):
        t = NAMES.get(x_dtype)
        if t not in types or NAMES.get(out_dtype) != K.unary_out(name, t):
            return None
        return out_dtype, K.instance("unary_v", t, K.unary_out(name, t), op)

    def handler(gpu, node, args, stream):
        x = args[0]
        out_dtype = node._dtype.np
        key = (x.dtype, out_dtype)
        p = plans.get(key, False)
        if p is False:
            p = plans[key] = plan(x.dtype, out_dtype)
        if p is None:
            return None
        if x.flags.c_contiguous:
            out = np.empty(node._shape, out_dtype)
            n = out.size
            if n == 0:
                return out
            if x.size == n:
                sent = gpu.launch_arrays("unary", name, p[1], n, stream, (x, out), WORK)
                if sent is not None:
                    gpu.keep_sent(sent, out)
                    return out
        return run_unary(gpu, "unary", name, op, x, out_dtype, node._shape, stream)

    handler.__name__ = f"gpu_{name}"
    return handler


def astype_handler(gpu, node, args, stream):
    x = args[0]
    t = NAMES.get(x.dtype)
    u = node._dtype.np
    if t is None or NAMES.get(u) is None:
        return None
    if NAMES[u] == t:
        return run_unary(gpu, "unary", "copy", "Identity", x, u, node._shape, stream)
    return run_unary(gpu, "astype", t, "Identity", x, u, node._shape, stream)


def binary_handler(name):
    op, types = K.BINARY[name]

    plans = {}      # (a dtype, b dtype, out dtype) -> (vv, sv, vs instances) or None

    def plan(a_dtype, b_dtype, out_dtype):
        t = NAMES.get(a_dtype)
        if t not in types or b_dtype != a_dtype or NAMES.get(out_dtype) != K.binary_out(name, t):
            return None
        u = K.binary_out(name, t)
        return tuple(K.instance(v, t, u, op) for v in ("binary_vv", "binary_sv", "binary_vs"))

    def handler(gpu, node, args, stream):
        a, b = args
        out_dtype = node._dtype.np
        key = (a.dtype, b.dtype, out_dtype)
        p = plans.get(key, False)
        if p is False:
            p = plans[key] = plan(a.dtype, b.dtype, out_dtype)
        if p is None:
            return None
        shape = node._shape
        if a.flags.c_contiguous and b.flags.c_contiguous:
            out = np.empty(shape, out_dtype)
            n = out.size
            if n == 0:
                return out
            na, nb = a.size, b.size
            if na == n:
                inst = p[0] if nb == n else p[2] if nb == 1 else None
            else:
                inst = p[1] if na == 1 and nb == n else None
            if inst is not None:
                sent = gpu.launch_arrays("binary", name, inst, n, stream, (a, b, out), WORK)
                if sent is not None:
                    gpu.keep_sent(sent, out)
                    return out
        return _run_binary(gpu, name, op, a, b, out_dtype, shape, stream)

    handler.__name__ = f"gpu_{name}"
    return handler


def run_binary(gpu, name, a, b, shape, stream):
    """Queue out = `name`(a, b) (a binary primitive of K.BINARY) for NumPy arrays of one
    dtype that broadcast to `shape` (any strides); returns out or None (not handled)."""
    op, types = K.BINARY[name]
    t = NAMES.get(a.dtype)
    if t not in types or b.dtype != a.dtype:
        return None
    u = K.binary_out(name, t)
    out_dtype = np.dtype(np.bool_) if u == "bool" else a.dtype
    return _run_binary(gpu, name, op, a, b, out_dtype, shape, stream)


def _run_binary(gpu, name, op, a, b, out_dtype, shape, stream):
    t = NAMES[a.dtype]
    made = gpu.output(shape, out_dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    sa = gpu.operand(a)
    sb = gpu.operand(b)
    if sa is None or sb is None:
        return None
    abuf, aoff, a = sa
    bbuf, boff, b = sb
    u = NAMES[out.dtype]
    bufs = [(abuf, aoff), (bbuf, boff), (obuf, ooff)]
    a_full = a.size == n and _contiguous(a)
    b_full = b.size == n and _contiguous(b)
    if a_full and b_full:
        variant = "binary_vv"
    elif a.size == 1 and b_full:
        variant = "binary_sv"
    elif b.size == 1 and a_full:
        variant = "binary_vs"
    else:
        variant = "binary_g"
    if variant != "binary_g":
        gpu.launch("binary", name, K.instance(variant, t, u, op), n, stream, bufs, [_size(n)],
                   work=WORK)
    else:
        ndim = len(shape)
        sta = _element_strides(a, ndim)
        stb = _element_strides(b, ndim)
        if sta is None or stb is None:
            return None
        cs, (csa, csb) = collapse(shape, sta, stb)
        if len(cs) > MAX_DIMS:
            return None
        gpu.launch("binary", name, K.instance("binary_g", t, u, op), n, stream, bufs,
                   [_size(n), _pack(len(cs), cs, csa, csb)])
    gpu.keep(a, b)
    return out


# ---------------------------------------------------------------------------------------
# elementwise primitives with parameters (shaders/layout.metal's unary_pv / unary_pg)
# ---------------------------------------------------------------------------------------
def run_unary_param(gpu, kind, name, inst_v, inst_g, x, params, shape, stream):
    """Queue out = Op(params)(x) (same dtype) with the contiguous (inst_v) or strided
    (inst_g) instance; `params` is the packed Params constant. out or None."""
    made = gpu.output(shape, x.dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    n = out.size
    if n == 0:
        return out
    src = gpu.operand(x)
    if src is None:
        return None
    xbuf, xoff, x = src
    if _contiguous(x) and x.size == n:
        gpu.launch(kind, name, inst_v, n, stream, [(xbuf, xoff), (obuf, ooff)],
                   [_size(n), params], work=WORK)
    else:
        st = _element_strides(x, len(shape))
        if st is None:
            return None
        cs, (cst,) = collapse(shape, st)
        if len(cs) > MAX_DIMS:
            return None
        gpu.launch(kind, name, inst_g, n, stream, [(xbuf, xoff), (obuf, ooff)],
                   [_size(n), params, _pack(len(cs), cs, cst)])
    gpu.keep(x)
    return out


def _power_of_ten(n):
    """10.0 ** n as NumPy's round computes it (a table, then repeated multiplication)."""
    if n < 9:
        return (1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8)[n]
    ret = 1e9
    while n > 9 and ret != float("inf"):
        ret *= 10.0
        n -= 1
    return ret


def round_handler(gpu, node, args, stream):
    """round(x, decimals): x scaled by 10^|decimals|, rounded half to even and scaled back,
    each step rounded as NumPy rounds it (see ops.metal's Round)."""
    x = args[0]
    t = NAMES.get(x.dtype)
    d = node._params["decimals"]
    if t not in K.ROUND_ACC or node._dtype.np != x.dtype or not -2**31 < d < 2**31:
        return None
    acc = K.ROUND_ACC[t]
    if acc == "float64" and gpu.kind == "metal":
        return None                 # integers are computed in double
    if d == 0:
        mode, scale = 0, 1.0
    else:
        mode, scale = (1 if d > 0 else -1), _power_of_ten(abs(d))
        if t in K.INTS and scale == float("inf"):
            return None             # NaN converted to an integer: the CPU's conversion decides
    with np.errstate(over="ignore"):
        if t == "float16":
            scale = np.float32(np.float16(scale))     # NumPy's half ufuncs see a half scalar
        elif acc == "float32":
            scale = np.float32(scale)
    if acc == "float32":
        params = struct.pack("<fi", scale, mode)
    else:
        params = struct.pack("<di4x", scale, mode)
    op = f"Round<{K.CTYPES[acc]}>"
    return run_unary_param(gpu, "layout", "round", K.param_instance("unary_pv", t, op),
                           K.param_instance("unary_pg", t, op), x, params, node._shape, stream)


def nan_to_num_handler(gpu, node, args, stream):
    """NaN, +inf and -inf replaced by the given values (converted to x's dtype); bfloat16
    runs on the CPU (K.NAN_TO_NUM_TYPES)."""
    x = args[0]
    t = NAMES.get(x.dtype)
    if node._dtype.np != x.dtype:
        return None
    if t not in K.NAN_TO_NUM_TYPES:
        return None
    p = node._params
    with np.errstate(over="ignore", invalid="ignore"):
        params = np.array([p["nan"], p["posinf"], p["neginf"]], np.float64).astype(x.dtype)
    op = f"NanToNum<{K.CTYPES[t]}>"
    return run_unary_param(gpu, "layout", "nan_to_num", K.param_instance("unary_pv", t, op),
                           K.param_instance("unary_pg", t, op), x, params.tobytes(),
                           node._shape, stream)


def handlers():
    """{primitive name: GPU handler} for the elementwise primitives."""
    out = {name: unary_handler(name) for name in K.UNARY}
    out.update({name: binary_handler(name) for name in K.BINARY})
    out["astype"] = astype_handler
    out["round"] = round_handler
    out["nan_to_num"] = nan_to_num_handler
    return out
