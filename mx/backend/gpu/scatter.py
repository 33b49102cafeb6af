"""GPU handlers of the accumulating scatters: scatter_add, scatter_subtract,
scatter_multiply, scatter_divide, scatter_maximum, scatter_minimum (``x.at[idx].add(v)`` and
friends, and the gradient of a gather: an embedding's) and as_strided_add (as_strided's
transpose), over shaders/scatter.metal.

The destination is copied into a new contiguous array on the GPU, then one thread an element
of the update region applies its value with an atomic read-modify-write, so repeated indices
all contribute, as NumPy's ufunc.at does on the CPU (float sums then differ from the CPU's
only in the order of the additions). The key is NumPy's: ints, slices, None, an Ellipsis and
up to four integer index arrays (broadcast together; their block of dimensions goes where
NumPy puts it). Negative indices count from the end; one out of range sets a flag and that
element is skipped, and the backend raises IndexError naming the op at the next wait, as the
CPU kernel raises. Boolean masks and bool entries run on the CPU.

Integer and bool division divides in float64, as the CPU kernel does (Metal: on the CPU), and
64-bit element types need 64-bit atomics, which Metal lacks (on the CPU there too).
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy, fill
from mx.backend.gpu.elementwise import MAX_DIMS, NAMES, _element_strides, _size, collapse, run_unary

_I64 = np.int64
_F64 = np.dtype(np.float64)
N_IDX = 4                       # MX_SCATTER_IDX in shaders/scatter.metal
# the ScatterLayout constant: ndim, shape, out/val strides, N_IDX index strides, base, n_idx,
# axis sizes, axis strides
_LAYOUT_LEN = 1 + (3 + N_IDX) * MAX_DIMS + 2 + 2 * N_IDX


def _c_strides(shape):
    """Element strides of a row-contiguous array of `shape`."""
    out, acc = [], 1
    for n in reversed(shape):
        out.append(acc)
        acc *= n
    return out[::-1]


def _is_int(k):
    return isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_))


def plan(xshape, key, slots, ishapes):
    """The update region of ``x[key]`` for an x of `xshape` (contiguous) with index arrays
    of shapes `ishapes` at `slots`: (region shape, the destination's element stride along
    each region dim, the offset of the ints and slice starts, [(first region dim of the
    broadcast index block, [(x axis size, x axis stride) of each index array])]) -- or None
    for keys this kernel does not take (bool entries, masks)."""
    nd = len(xshape)
    xst = _c_strides(xshape)
    at = {pos: j for j, pos in enumerate(slots)}
    used = sum(1 for pos, k in enumerate(key)
               if pos in at or _is_int(k) or type(k) is slice)
    if used > nd or len(slots) > N_IDX:
        return None
    advanced = bool(slots)
    parts = []                  # per entry: [(size, stride)], or None for an advanced entry
    axes = [None] * len(slots)  # (x axis size, stride) of each index array
    base = 0
    dim = 0
    for pos, k in enumerate(key):
        if pos in at:
            axes[at[pos]] = (xshape[dim], xst[dim])
            parts.append(None)
            dim += 1
        elif k is None:
            parts.append([(1, 0)])
        elif k is Ellipsis:
            span = nd - used
            parts.append([(xshape[d], xst[d]) for d in range(dim, dim + span)])
            dim += span
        elif type(k) is slice:
            start, stop, step = k.indices(xshape[dim])
            length = len(range(start, stop, step))
            if length:
                base += start * xst[dim]
            parts.append([(length, step * xst[dim])])
            dim += 1
        elif _is_int(k):
            n = xshape[dim]
            k = int(k) + n if k < 0 else int(k)
            if not 0 <= k < n:
                return None             # (the CPU kernel raises)
            base += k * xst[dim]
            # an int is an advanced index when the key has arrays (NumPy's placement rule)
            parts.append(None if advanced else [])
            dim += 1
        else:
            return None                 # bool entries
    rest = [(xshape[d], xst[d]) for d in range(dim, nd)]

    def concat(ps):
        return [d for p in ps if p is not None for d in p]

    if not advanced:
        return [n for n, _ in concat(parts) + rest], [s for _, s in concat(parts) + rest], \
            base, None
    try:
        bshape = np.broadcast_shapes(*ishapes)
    except ValueError:
        return None
    block = [(n, 0) for n in bshape]
    pos = [i for i, p in enumerate(parts) if p is None]
    if pos[-1] - pos[0] + 1 == len(pos):
        # adjacent advanced entries: their broadcast block replaces them in place
        pre = concat(parts[:pos[0]])
        dims = pre + block + concat(parts[pos[-1] + 1:]) + rest
        b0 = len(pre)
    else:
        # separated by a slice, None or Ellipsis: NumPy puts the block first
        dims = block + concat(parts) + rest
        b0 = 0
    return [n for n, _ in dims], [s for _, s in dims], base, (b0, axes)


def _layout(shape, out_st, val_st, idx_st, base, axes):
    buf = np.zeros(_LAYOUT_LEN, _I64)
    nd = len(shape)
    buf[0] = nd
    o = 1
    for arr in (shape, out_st, val_st, *idx_st, *([()] * (N_IDX - len(idx_st)))):
        buf[o:o + len(arr)] = arr
        o += MAX_DIMS
    buf[o] = base
    buf[o + 1] = len(axes)
    for j, (n, st) in enumerate(axes):
        buf[o + 2 + j] = n
        buf[o + 2 + N_IDX + j] = st
    return buf.tobytes()


def _index_arrays(gpu, arrays, stream):
    """The index arrays in one type the kernels read (int32, int64 or uint32: all of one
    such type as they are, else all converted to int64 on the GPU), and its name."""
    names = {NAMES.get(a.dtype) for a in arrays}
    if not names <= set(K.INTS):
        return None, None               # boolean masks (and anything else): the CPU
    if len(names) == 1 and next(iter(names)) in K.INDEX_TYPES:
        return list(arrays), next(iter(names))
    out = []
    for a in arrays:
        if a.dtype != np.int64:
            a = run_unary(gpu, "astype", NAMES[a.dtype], "Identity", a, np.dtype(np.int64),
                          a.shape, stream)
            if a is None:
                return None, None
        out.append(a)
    return out, "int64"


def launch_scatter(gpu, name, out, vals, region, out_st, base, index, stream):
    """Queue out.flat[base + sum(k * out_st) + index offsets] = Op(that, vals[k]) over the
    region (vals broadcast to it); `index` is (arrays, their type name, first region dim
    of their broadcast block, [(axis size, axis stride)]) or None. False when it cannot run
    here."""
    t = NAMES.get(out.dtype)
    n = int(np.prod(region, dtype=_I64))
    if n == 0:
        return True
    if out.__array_interface__["data"][0] % 8:
        return False                    # (sub-word atomics swap aligned 32-bit words)
    nd = len(region)
    so, sv = gpu.operand(out), gpu.operand(vals)
    if so is None or sv is None or so[2] is not out:
        return False
    # strides of what the kernel reads (a staged copy has its own)
    val_st = _element_strides(sv[2], nd)
    if val_st is None:
        return False
    idx_st, axes, ops = [], [], []
    itype = "int32"
    if index is not None:
        arrays, itype, b0, axes = index
        block = len(np.broadcast_shapes(*(a.shape for a in arrays)))
        for a in arrays:
            sa = gpu.operand(a)
            if sa is None:
                return False
            st = _element_strides(sa[2], sa[2].ndim)
            if st is None:
                return False
            ops.append(sa)
            full = [0] * nd
            off = b0 + block - a.ndim           # right-aligned within the block
            full[off:off + a.ndim] = st
            idx_st.append(full)
    cs, strides = collapse(list(region), list(out_st), val_st, *idx_st)
    if len(cs) > MAX_DIMS:
        return False
    if not cs:                          # one element
        cs, strides = [1], [[0] for _ in strides]
    lay = _layout(cs, strides[0], strides[1], strides[2:], base, axes)
    obuf = (so[0], so[1])
    if ops:
        flag = gpu.error_flag("scatter", axes[0][0])
        if flag is None:
            return False
        ibufs = [o[:2] for o in ops] + [ops[0][:2]] * (N_IDX - len(ops))
    else:
        flag = obuf                     # neither read nor written without index arrays
        ibufs = [obuf] * N_IDX
    gpu.launch("scatter", name, K.scatter_instance(t, itype, name), n, stream,
               [sv[:2], *ibufs, obuf, flag], [_size(n), lay])
    gpu.keep(sv[2], *(o[2] for o in ops))
    return True


def run_scatter(gpu, name, x, v, arrays, key, slots, vshape, stream):
    """x with v accumulated at x[key] by scatter_<name>, or None (the CPU kernel runs)."""
    t = NAMES.get(x.dtype)
    if t is None or NAMES.get(v.dtype) is None:
        return None
    exact = t in K.FLOATS
    if name == "subtract" and t == "bool":
        return None                     # (the CPU raises NumPy's error)
    work_t = t if name != "divide" or exact else "float64"
    if gpu.kind == "metal" and (work_t in K.ATOMIC64):
        return None
    if work_t not in K.SCATTER[name][1]:
        return None
    p = plan(x.shape, key, slots, [a.shape for a in arrays])
    if p is None:
        return None
    region, out_st, base, adv = p
    if vshape is not None:
        v = v.reshape(vshape)
    try:
        if np.broadcast_shapes(v.shape, tuple(region)) != tuple(region):
            return None
    except ValueError:
        return None
    wdt = np.dtype(_F64) if work_t == "float64" and t != "float64" else x.dtype
    if v.dtype != wdt:
        v = run_unary(gpu, "astype", NAMES[v.dtype], "Identity", v, wdt, v.shape, stream)
    if wdt != x.dtype:
        out = run_unary(gpu, "astype", t, "Identity", x, wdt, x.shape, stream)
    else:
        out = contiguous_copy(gpu, x, stream)
    if v is None or out is None:
        return None
    index = None
    if adv is not None:
        idx, itype = _index_arrays(gpu, arrays, stream)
        if idx is None:
            return None
        index = (idx, itype, adv[0], adv[1])
    if out.size and not launch_scatter(gpu, name, out, v, region, out_st, base, index, stream):
        return None
    if wdt != x.dtype:      # integer division: back to the integers (C's truncation)
        return run_unary(gpu, "astype", "float64", "Identity", out, x.dtype, x.shape, stream)
    return out


def scatter_handler(name):
    def handler(gpu, node, args, stream):
        p = node._params
        return run_scatter(gpu, name, args[0], args[1], args[2:], p["key"], p["slots"],
                           p.get("vshape"), stream)

    handler.__name__ = f"gpu_scatter_{name}"
    return handler


def as_strided_add_handler(gpu, node, args, stream):
    """as_strided's transpose: the values of a strided view added back into a zero source of
    in_shape. Float kinds sum in float64 (the CPU kernel's bincount does), then round once;
    other dtypes add in their own (NumPy's add.at)."""
    ct = args[0]
    p = node._params
    in_shape, shape, strides, offset = p["in_shape"], p["shape"], p["strides"], p["offset"]
    t = NAMES.get(ct.dtype)
    if t is None or tuple(ct.shape) != tuple(shape):
        return None
    acc = _F64 if ct.dtype.kind == "f" else ct.dtype
    if gpu.kind == "metal" and NAMES[acc] in K.ATOMIC64:
        return None
    n = int(np.prod(in_shape, dtype=_I64))
    if all(d > 0 for d in shape):
        lo = offset + sum((d - 1) * s for d, s in zip(shape, strides) if s < 0)
        hi = offset + sum((d - 1) * s for d, s in zip(shape, strides) if s > 0)
        if lo < 0 or hi >= n:
            return None                 # outside the source: the CPU kernel decides
    made = gpu.output((n,), acc)
    if made is None:
        return None
    out = made[0]
    if n and not fill(gpu, out, 0, stream):
        return None
    vals = ct
    if ct.dtype != acc:
        vals = run_unary(gpu, "astype", t, "Identity", ct, acc, ct.shape, stream)
        if vals is None:
            return None
    if n and not launch_scatter(gpu, "add", out, vals, list(shape), list(strides), offset,
                                None, stream):
        return None
    if acc != ct.dtype:
        out = run_unary(gpu, "astype", "float64", "Identity", out, ct.dtype, out.shape, stream)
        if out is None:
            return None
    return out.reshape(in_shape)


def handlers():
    """{primitive name: GPU handler} of the accumulating scatters."""
    out = {f"scatter_{name}": scatter_handler(name) for name in K.SCATTER}
    out["as_strided_add"] = as_strided_add_handler
    return out
