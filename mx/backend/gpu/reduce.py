"""GPU kernels of the reductions sum, prod, max, min, mean, all and any over any set of axes
(shaders/reduce.metal).

The input's dimensions split into kept ones (the output's, in order) and reduced ones; each
side is collapsed separately (size-1 dims dropped, contiguous runs merged), so any strides
work, up to 8 dims a side. One threadgroup reduces one output; when there are few outputs
and many elements each, several threadgroups share an output and a second dispatch combines
their partials (so a full reduction of a large array fills the GPU).
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import backend as B
from mx.backend.gpu import kernels as K
from mx.backend.gpu.elementwise import MAX_DIMS, NAMES, _element_strides, collapse
from mx.backend.gpu.elementwise import WORK as E_WORK

TG = B.THREADGROUP          # MX_REDUCE_THREADS in shaders/reduce.metal
# a second pass pays off above this many elements an output
SPLIT_ABOVE = TG * 16
# enough threadgroups in the first pass to fill a large GPU
TARGET_GROUPS = 2048
# dtype name -> NumPy dtype (of partials in the accumulator's dtype)
_NP = {name: dt for dt, name in NAMES.items()}
# what a reduction over no elements gives
EMPTY = {"sum": 0, "prod": 1, "mean": np.nan, "all": True, "any": False}


def _layout(kshape, kstrides, rshape, rstrides, n_out, n_red, parts, div, wide=0):
    """The ReduceLayout constant of shaders/reduce.metal."""
    buf = np.zeros(2 + 4 * MAX_DIMS + 5, np.int64)
    buf[0] = len(kshape)
    buf[1:1 + len(kshape)] = kshape
    buf[1 + MAX_DIMS:1 + MAX_DIMS + len(kstrides)] = kstrides
    r0 = 1 + 2 * MAX_DIMS
    buf[r0] = len(rshape)
    buf[r0 + 1:r0 + 1 + len(rshape)] = rshape
    buf[r0 + 1 + MAX_DIMS:r0 + 1 + MAX_DIMS + len(rstrides)] = rstrides
    buf[-5:] = (n_out, n_red, parts, div, wide)
    return buf.tobytes()


def _wide(x, kstrides, rshape, rstrides):
    """Whether the kernel may read x's reduced elements MX_WORK at a time (MxVec loads),
    given data aligned to MX_WORK elements: one contiguous reduced run and every output's
    first element aligned."""
    w = E_WORK
    return (len(rshape) == 1 and rstrides[0] == 1 and rshape[0] >= 4 * w
            and all(s % w == 0 for s in kstrides))


def _target_groups(gpu):
    """Threadgroups that fill the GPU once: as many as its multiprocessors hold at a time
    (2048 threads each on NVIDIA), so the first pass runs in one wave, not in one and a
    bit; TARGET_GROUPS when the device does not say."""
    n = getattr(gpu, "_reduce_groups", None)
    if n is None:
        info = getattr(gpu, "info", None)       # (stand-in backends may have none)
        sms = int((info() if info else {}).get("multiprocessor_count") or 0)
        n = gpu._reduce_groups = sms * (2048 // TG) if sms else TARGET_GROUPS
    return n


def _parts(n_out, n_red, target=TARGET_GROUPS):
    """How many threadgroups share one output."""
    if n_red <= SPLIT_ABOVE or n_out >= target // 2:
        return 1
    return int(min(-(-n_red // SPLIT_ABOVE), max(1, target // n_out)))


_PLANS = {}                 # run_reduce's launches by operand layout, op and dtypes
_UNSUPPORTED = ("unsupported",)


def run_reduce(gpu, name, x, axes, out_dtype, shape, stream, types=None, div=None):
    """Queue the reduction `name` of x over `axes` into a new array of `shape` and
    out_dtype; returns it, or None when this layout or dtype is not handled. `types` (the
    accumulator and output dtype names) and `div` (divide the result by it; 0: not at all)
    override the table's and mean's for callers composing reductions (stats.py): the group
    of `name` must hold that instance."""
    src = gpu.operand(x)        # (a staged copy has its own strides: take them after)
    if src is None:
        return None
    xbuf, xoff, x = src
    out_dtype = np.dtype(out_dtype)
    aligned = x.__array_interface__["data"][0] % (x.itemsize * E_WORK) == 0
    key = (name, x.shape, x.strides, x.dtype, tuple(axes), out_dtype, tuple(shape), types,
           div, aligned, gpu.kind)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _plan(gpu, name, x, axes, out_dtype, shape, types, div, aligned)
    kind = plan[0]
    if kind == "unsupported":
        return None
    made = gpu.output(shape, out_dtype)
    if made is None:
        return None
    out, obuf, ooff = made
    if kind == "nothing":
        return out
    if kind == "fill":          # a fresh buffer no kernel touches
        out.fill(plan[1])
        return out
    if kind == "one":
        _, inst, lay, threads = plan
        gpu.launch("reduce", name, inst, threads, stream, [(xbuf, xoff), (obuf, ooff)], [lay])
        gpu.keep(x)
        return out
    _, inst1, lay1, threads1, inst2, lay2, threads2, n_tmp, tmp_dtype = plan
    made = gpu.output((n_tmp,), tmp_dtype)
    if made is None:
        return None
    tmp, tbuf, toff = made
    gpu.launch("reduce", name, inst1, threads1, stream, [(xbuf, xoff), (tbuf, toff)], [lay1])
    gpu.launch("reduce", name, inst2, threads2, stream, [(tbuf, toff), (obuf, ooff)], [lay2])
    gpu.keep(x, tmp)
    return out


def _plan(gpu, name, x, axes, out_dtype, shape, types, div, aligned):
    """run_reduce's launches for this operand layout: ("unsupported",), ("nothing",) (no
    outputs), ("fill", value) (no elements), ("one", instance, layout, threads) or
    ("two", first pass..., second pass..., partials, partials' dtype)."""
    op, table = K.REDUCE[name]
    t = NAMES.get(x.dtype)
    if types is not None:
        a, u = types
    elif t not in table:
        return _UNSUPPORTED
    else:
        a, u = table[t]
    if NAMES.get(out_dtype) != u:
        return _UNSUPPORTED
    if gpu.kind == "metal" and "float64" in (t, a, u):
        return _UNSUPPORTED             # Metal has no double (accumulators included)
    st = _element_strides(x, x.ndim)
    if st is None:
        return _UNSUPPORTED
    kept = [i for i in range(x.ndim) if i not in axes]
    ks, (kst,) = collapse([x.shape[i] for i in kept], [st[i] for i in kept])
    rs, (rst,) = collapse([x.shape[i] for i in axes], [st[i] for i in axes])
    if len(ks) > MAX_DIMS or len(rs) > MAX_DIMS:
        return _UNSUPPORTED
    if not rs:
        rs, rst = [1], [0]
    n_out = int(np.prod(shape, dtype=np.int64))
    n_red = int(np.prod([x.shape[i] for i in axes], dtype=np.int64))
    if n_out == 0:
        return ("nothing",)
    if n_red == 0:
        return ("fill", EMPTY[name])
    if div is None:
        div = n_red if name == "mean" else 0
    parts = _parts(n_out, n_red, _target_groups(gpu))
    wide = int(aligned and _wide(x, kst, rs, rst))
    if parts == 1:
        return ("one", K.reduce_instance(t, a, u, op),
                _layout(ks, kst, rs, rst, n_out, n_red, 1, div, wide), n_out * TG)
    return ("two", K.reduce_instance(t, a, a, op),
            _layout(ks, kst, rs, rst, n_out, n_red, parts, 0, wide), n_out * parts * TG,
            K.reduce_instance(a, a, u, op),
            _layout([n_out], [parts], [parts], [1], n_out, parts, 1, div), n_out * TG,
            n_out * parts, _NP[a])


def reduce_handler(name):
    def handler(gpu, node, args, stream):
        return run_reduce(gpu, name, args[0], node._params["axes"], node._dtype.np,
                          node._shape, stream)

    handler.__name__ = f"gpu_{name}"
    return handler


def handlers():
    """{primitive name: GPU handler} for the reductions."""
    return {name: reduce_handler(name) for name in K.REDUCE}


# ---------------------------------------------------------------------------------------
# argmax / argmin (shaders/argreduce.metal): one threadgroup an output
# ---------------------------------------------------------------------------------------
def _arg_layout(kshape, kstrides, n_out, n, stride):
    buf = np.zeros(1 + 2 * MAX_DIMS + 3, np.int64)
    buf[0] = len(kshape)
    buf[1:1 + len(kshape)] = kshape
    buf[1 + MAX_DIMS:1 + MAX_DIMS + len(kstrides)] = kstrides
    buf[-3:] = (n_out, n, stride)
    return buf.tobytes()


def run_arg_reduce(gpu, name, op, x, axis, shape, stream):
    t = NAMES.get(x.dtype)
    if t is None or x.size == 0 or x.size >= 2**32:
        return None
    src = gpu.operand(x)
    if src is None:
        return None
    xbuf, xoff, x = src
    if axis is None:
        if not x.flags.c_contiguous:
            return None
        kshape, kstrides, n, stride = [], [], x.size, 1
    else:
        st = _element_strides(x, x.ndim)
        if st is None:
            return None
        kept = [i for i in range(x.ndim) if i != axis]
        kshape, (kstrides,) = collapse([x.shape[i] for i in kept], [st[i] for i in kept])
        n, stride = x.shape[axis], st[axis]
        if len(kshape) > MAX_DIMS:
            return None
    made = gpu.output(shape, np.uint32)
    if made is None:
        return None
    out, obuf, ooff = made
    n_out = out.size
    gpu.launch("argreduce", name, K.typed("arg_reduce", t, op=op), n_out * TG, stream,
               [(xbuf, xoff), (obuf, ooff)], [_arg_layout(kshape, kstrides, n_out, n, stride)])
    gpu.keep(x)
    return out


def arg_handler(name, op):
    def handler(gpu, node, args, stream):
        return run_arg_reduce(gpu, name, op, args[0], node._params["axis"], node._shape, stream)
    handler.__name__ = f"gpu_{name}"
    return handler


def arg_handlers():
    return {"argmax": arg_handler("argmax", "ArgMax"), "argmin": arg_handler("argmin", "ArgMin")}
