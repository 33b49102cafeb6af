"""Which kernels exist: elementwise operations, their element types and kernel instances.

Each GPU primitive maps to a function object of shaders/ops.metal and the dtypes it runs
for. Kernels are compiled in groups (one op of one shader file: every variant and dtype at
once) the first time any of them is needed; the shim caches the result on disk.
"""
from __future__ import annotations

import threading

from mx.backend.gpu import translate

# mx dtype name -> the element type in the shaders
CTYPES = {
    "bool": "bool",
    "uint8": "uint8_t", "uint16": "uint16_t", "uint32": "uint32_t", "uint64": "uint64_t",
    "int8": "int8_t", "int16": "int16_t", "int32": "int32_t", "int64": "int64_t",
    "float16": "half", "bfloat16": "bfloat", "float32": "float", "float64": "double",
}

BOOL = ("bool",)
UINTS = ("uint8", "uint16", "uint32", "uint64")
SINTS = ("int8", "int16", "int32", "int64")
INTS = UINTS + SINTS
FLOATS = ("float16", "bfloat16", "float32", "float64")
REAL = BOOL + INTS + FLOATS
# element types Metal has (no float64): the Metal-view syntax check instantiates these
METAL_TYPES = tuple(t for t in REAL if t != "float64")

# primitive name -> (function object, input dtypes); outputs keep the input dtype unless the
# primitive's output is bool (predicates, comparisons)
UNARY = {
    "abs": ("Abs", REAL),
    "negative": ("Negative", INTS + FLOATS),
    "sign": ("Sign", REAL),
    "square": ("Square", REAL),
    "floor": ("Floor", REAL),
    "ceil": ("Ceil", REAL),
    "trunc": ("Trunc", REAL),
    "exp": ("Exp", FLOATS), "expm1": ("Expm1", FLOATS), "log": ("Log", FLOATS),
    "log2": ("Log2", FLOATS), "log10": ("Log10", FLOATS), "log1p": ("Log1p", FLOATS),
    "sqrt": ("Sqrt", FLOATS), "rsqrt": ("Rsqrt", FLOATS), "reciprocal": ("Reciprocal", FLOATS),
    "sin": ("Sin", FLOATS), "cos": ("Cos", FLOATS), "tan": ("Tan", FLOATS),
    "arcsin": ("ArcSin", FLOATS), "arccos": ("ArcCos", FLOATS), "arctan": ("ArcTan", FLOATS),
    "sinh": ("Sinh", FLOATS), "cosh": ("Cosh", FLOATS), "tanh": ("Tanh", FLOATS),
    "arcsinh": ("ArcSinh", FLOATS), "arccosh": ("ArcCosh", FLOATS), "arctanh": ("ArcTanh", FLOATS),
    "sigmoid": ("Sigmoid", FLOATS), "erf": ("Erf", FLOATS), "erfinv": ("ErfInv", FLOATS),
    "degrees": ("Degrees", FLOATS), "radians": ("Radians", FLOATS),
    "isnan": ("IsNan", REAL), "isinf": ("IsInf", REAL), "isfinite": ("IsFinite", REAL),
    "isposinf": ("IsPosInf", REAL), "isneginf": ("IsNegInf", REAL),
    "conjugate": ("Identity", REAL), "real": ("Identity", REAL), "imag": ("Zero", REAL),
    "copy": ("Identity", REAL), "stop_gradient": ("Identity", REAL),
    "bitwise_invert": ("BitwiseInvert", BOOL + INTS),
    "logical_not": ("LogicalNot", BOOL),
}
UNARY_BOOL_OUT = {"isnan", "isinf", "isfinite", "isposinf", "isneginf", "logical_not"}

BINARY = {
    "add": ("Add", REAL), "subtract": ("Subtract", REAL), "multiply": ("Multiply", REAL),
    "divide": ("Divide", FLOATS),
    "floor_divide": ("FloorDivide", REAL), "remainder": ("Remainder", REAL),
    "power": ("Power", REAL),
    "maximum": ("Maximum", REAL), "minimum": ("Minimum", REAL),
    "logaddexp": ("LogAddExp", FLOATS), "arctan2": ("ArcTan2", FLOATS),
    "equal": ("Equal", REAL), "not_equal": ("NotEqual", REAL), "less": ("Less", REAL),
    "less_equal": ("LessEqual", REAL), "greater": ("Greater", REAL),
    "greater_equal": ("GreaterEqual", REAL),
    "logical_and": ("LogicalAnd", BOOL), "logical_or": ("LogicalOr", BOOL),
    "logical_xor": ("LogicalXor", BOOL),
    "bitwise_and": ("BitwiseAnd", BOOL + INTS), "bitwise_or": ("BitwiseOr", BOOL + INTS),
    "bitwise_xor": ("BitwiseXor", BOOL + INTS),
    "left_shift": ("LeftShift", INTS), "right_shift": ("RightShift", INTS),
}
BINARY_BOOL_OUT = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                   "logical_and", "logical_or", "logical_xor"}

# reductions (shaders/reduce.metal): primitive -> (accumulating op, {input dtype:
# (accumulator dtype, output dtype)}), the CPU kernels' dtypes (mx/core/ops/reduction.py):
# sum/prod of bool, int8, int16 in int32, of uint8, uint16 in uint32, of float16/bfloat16 in
# float32; max/min keep the dtype; mean is Sum divided by the count (integers: an exact int64
# sum divided in float64 -- int64/uint64 summed in float64, as on the CPU -- to float32)
_HALVES = {"float16": ("float32", "float16"), "bfloat16": ("float32", "bfloat16")}
_SUMS = {"bool": ("int32", "int32"), "int8": ("int32", "int32"), "int16": ("int32", "int32"),
         "uint8": ("uint32", "uint32"), "uint16": ("uint32", "uint32"),
         **{t: (t, t) for t in ("int32", "int64", "uint32", "uint64", "float32", "float64")},
         **_HALVES}
_EXTREMA = {**{t: (t, t) for t in REAL if t not in _HALVES}, **_HALVES}
_TRUTH = {t: ("bool", "bool") for t in REAL}
_MEANS = {**{t: ("int64", "float32") for t in ("bool", "int8", "int16", "int32", "uint8",
                                               "uint16", "uint32")},
          "int64": ("float64", "float32"), "uint64": ("float64", "float32"),
          "float32": ("float32", "float32"), "float64": ("float64", "float64"), **_HALVES}
REDUCE = {
    "sum": ("Sum", _SUMS), "prod": ("Prod", _SUMS),
    "max": ("Max", _EXTREMA), "min": ("Min", _EXTREMA),
    "mean": ("Sum", _MEANS),
    "all": ("And", _TRUTH), "any": ("Or", _TRUTH),
}

# index dtypes the gather kernels read directly (others are converted to int64 first)
INDEX_TYPES = ("int32", "int64", "uint32")
# softmax / logsumexp: input dtype -> (computation dtype, output dtype)
ROWS = {"float16": ("float32", "float16"), "bfloat16": ("float32", "bfloat16"),
        "float32": ("float32", "float32"), "float64": ("float64", "float64")}
# accumulating scatters (shaders/scatter.metal, scatter.py): scatter_<name> -> (accumulation,
# element dtypes). Integer and bool division runs in float64 (as the CPU kernel divides).
SCATTER = {
    "add": ("ScatterAdd", REAL),
    "subtract": ("ScatterSubtract", INTS + FLOATS),
    "multiply": ("ScatterOp<Multiply>", REAL),
    "divide": ("ScatterOp<Divide>", FLOATS),
    "maximum": ("ScatterOp<Maximum>", REAL),
    "minimum": ("ScatterOp<Minimum>", REAL),
}
# element types whose atomics need 64-bit compare-and-swap, which Metal lacks: the scatter
# groups hold them only for CUDA's types (those with float64; Metal's groups are those of
# METAL_TYPES)
ATOMIC64 = ("int64", "uint64", "float64")


def scatter_instance(t: str, i: str, name: str) -> str:
    """e.g. ``scatter_acc<half, int32_t, ScatterOp<Maximum> >``."""
    return f"scatter_acc<{CTYPES[t]}, {CTYPES[i]}, {SCATTER[name][0]} >"
# mx.fast (shaders/norm.metal, fast.py): target types cross_entropy reads as they are, and
# (computation, mask) type pairs of attention's softmax (bool: no mask, causal or boolean)
FAST_TARGETS = ("int32", "int64")
SDPA_MASKS = (("float32", "bool"), ("float32", "float16"), ("float32", "bfloat16"),
              ("float32", "float32"), ("float64", "bool"), ("float64", "float64"))

UNARY_VARIANTS = ("unary_v", "unary_g")
BINARY_VARIANTS = ("binary_vv", "binary_sv", "binary_vs", "binary_g")


def instance(kernel: str, t: str, u: str, op: str) -> str:
    """The name expression of one kernel instance, e.g. ``unary_v<float, bool, IsNan>``."""
    return f"{kernel}<{CTYPES[t]}, {CTYPES[u]}, {op}>"


def reduce_instance(t: str, a: str, u: str, op: str) -> str:
    """e.g. ``reduce_g<half, float, half, Sum<float> >``."""
    return f"reduce_g<{CTYPES[t]}, {CTYPES[a]}, {CTYPES[u]}, {op}<{CTYPES[a]}> >"


def reduce_instances(name, types=REAL):
    """A reduction's instances: one pass (T -> U), partials (T -> A), partials combined
    (A -> U)."""
    op, table = REDUCE[name]
    out = []
    for t, (a, u) in table.items():
        if t not in types or a not in types or u not in types:
            continue
        for inst in (reduce_instance(t, a, u, op), reduce_instance(t, a, a, op),
                     reduce_instance(a, a, u, op)):
            if inst not in out:
                out.append(inst)
    return out


def typed(kernel: str, *dtypes: str, op: str = "") -> str:
    """The name expression of an instance over mx dtype names (and an optional trailing
    type such as ArgMax), e.g. ``take_along<float, int32_t>``."""
    args = [CTYPES[t] for t in dtypes] + ([op] if op else [])
    return f"{kernel}<{', '.join(args)}>"


def unary_out(name, t):
    return "bool" if name in UNARY_BOOL_OUT else t


def binary_out(name, t):
    return "bool" if name in BINARY_BOOL_OUT else t


# shaders/layout.metal (layout.py, and elementwise.py's round and nan_to_num). round: input
# dtype -> the precision of its steps (integers reach the kernel only for decimals < 0 and
# are computed in double as NumPy does, so Metal has no kernel for them); nan_to_num: the
# float dtypes but bfloat16 (whose kernel has not run on a GPU yet: the CPU's replaces its
# NaN and inf through float32); trace (sum_axis) and vecdot (dot_axis): input dtype -> (accumulator, output),
# integers accumulating in uint64 (wrapping, then truncated: the same as wrapping in the
# output type)
ROUND_ACC = dict([(t, "float64") for t in INTS] + [("float16", "float32"),
                                                  ("bfloat16", "float32"),
                                                  ("float32", "float32"), ("float64", "float64")])
NAN_TO_NUM_TYPES = ("float16", "float32", "float64")
AXIS_SUMS = dict([(t, ("uint64", "int32")) for t in ("bool", "int8", "int16", "int32")]
                 + [(t, ("uint64", "uint32")) for t in ("uint8", "uint16", "uint32")]
                 + [("int64", ("uint64", "int64")), ("uint64", ("uint64", "uint64"))]
                 + [(t, ROWS[t][:1] + (t,)) for t in FLOATS])


def param_instance(kernel, t, op):
    """A parameterised elementwise instance, e.g. ``unary_pv<half, half, Round<float> >``."""
    return f"{kernel}<{CTYPES[t]}, {CTYPES[t]}, {op} >"


def layout_groups(types=REAL):
    """The compile groups of shaders/layout.metal."""
    f = "layout.metal"
    pv = ("unary_pv", "unary_pg")
    out = {
        ("layout", "round"): (f, [param_instance(k, t, f"Round<{CTYPES[a]}>")
                                  for t, a in ROUND_ACC.items() if t in types and a in types
                                  for k in pv]),
        ("layout", "nan_to_num"): (f, [param_instance(k, t, f"NanToNum<{CTYPES[t]}>")
                                       for t in NAN_TO_NUM_TYPES if t in types for k in pv]),
        ("layout", "band"): (f, [typed("band", t) for t in types]),
        ("layout", "roll"): (f, [typed("roll_g", t) for t in types]),
        # linspace computes in float32 unless the output is float64 (the CPU kernel's rule)
        ("layout", "linspace"): (f, [typed("linspace", t, "float64" if t == "float64"
                                           else "float32") for t in types]),
        ("layout", "window"): (f, [typed("window", "float32")] if "float32" in types else []),
    }
    for k in ("sum_axis", "dot_axis"):
        out[("layout", k)] = (f, [typed(k, t, *AXIS_SUMS[t]) for t in AXIS_SUMS
                                  if t in types and AXIS_SUMS[t][0] in types])
    return {key: v for key, v in out.items() if v[1]}


def groups(types=REAL):
    """Every compile group: {group key: (shader file, [instances])}, limited to `types`."""
    out = {}
    for name, (op, dts) in UNARY.items():
        insts = [instance(k, t, unary_out(name, t), op) for t in dts if t in types
                 for k in UNARY_VARIANTS]
        if insts:
            out[("unary", name)] = ("unary.metal", insts)
    for name, (op, dts) in BINARY.items():
        insts = [instance(k, t, binary_out(name, t), op) for t in dts if t in types
                 for k in BINARY_VARIANTS]
        if insts:
            out[("binary", name)] = ("binary.metal", insts)
    for t in types:
        insts = [instance(k, t, u, "Identity") for u in types if u != t for k in UNARY_VARIANTS]
        out[("astype", t)] = ("unary.metal", insts)
    for name in REDUCE:
        insts = reduce_instances(name, types)
        if insts:
            out[("reduce", name)] = ("reduce.metal", insts)
    out[("copy", "copy_gg")] = ("copy.metal", [typed("copy_gg", t) for t in types])
    out[("copy", "arange")] = ("copy.metal",
                               [typed("arange_int", t) for t in INTS if t in types]
                               + [typed("arange_float", t) for t in FLOATS if t in types])
    out[("select", "select")] = ("select.metal",
                                 [typed(k, t) for t in types for k in ("select_v", "select_g")])
    for name, op in (("argmax", "ArgMax"), ("argmin", "ArgMin")):
        out[("argreduce", name)] = ("argreduce.metal",
                                    [typed("arg_reduce", t, op=op) for t in types])
    for name in ("softmax", "logsumexp"):
        out[("rows", name)] = ("softmax.metal",
                               [typed(f"{name}_rows", t, *ROWS[t]) for t in ROWS
                                if t in types and ROWS[t][0] in types])
    for k in ("take_axis", "take_along", "put_along"):
        out[("gather", k)] = ("gather.metal",
                              [typed(k, t, i) for t in types for i in INDEX_TYPES])
    wide = "float64" in types           # CUDA: 64-bit atomics too
    for name, (_, dts) in SCATTER.items():
        out[("scatter", name)] = ("scatter.metal",
                                  [scatter_instance(t, i, name) for t in dts if t in types
                                   and (wide or t not in ATOMIC64) for i in INDEX_TYPES])
    fast = [t for t in ROWS if t in types and ROWS[t][0] in types]
    for name, kernel in (("rms_norm", "rms_norm_rows"), ("layer_norm", "layer_norm_rows"),
                         ("rope", "rope_pairs")):
        out[("fast", name)] = ("norm.metal", [typed(kernel, t, ROWS[t][0]) for t in fast])
    out[("fast", "cross_entropy")] = ("norm.metal", [typed("cross_entropy_rows", t, ROWS[t][0], i)
                                                     for t in fast for i in FAST_TARGETS])
    out[("fast", "sdpa")] = ("norm.metal", [typed("sdpa_softmax_rows", a, m) for a, m in SDPA_MASKS
                                            if a in types and m in types])
    from mx.backend.gpu import scan, sort     # scans and sorts keep their tables there
    out.update(scan.groups(types))
    out.update(sort.groups(types))
    from mx.backend.gpu import conv
    out.update(conv.groups(types))
    out.update(layout_groups(types))
    from mx.backend.gpu import misc, random as gpu_random
    out.update(gpu_random.groups(types))
    out.update(misc.groups(types))
    return out


_GROUPS = {}                    # groups(), built on first use (scan and sort import this module)


def all_groups():
    """groups() over every dtype (cached)."""
    if not _GROUPS:
        _GROUPS.update(groups())
    return _GROUPS


def group_of(kind: str, name: str):
    return all_groups().get((kind, name))


class KernelCache:
    """Compiled kernel handles by instance name, compiled a group at a time through the
    shim (which also caches on disk)."""

    def __init__(self, shim):
        self.shim = shim
        self._kernels = {}
        self._sources = {}
        self._lock = threading.Lock()
        self.compiled_groups = 0

    def source(self, fname):
        src = self._sources.get(fname)
        if src is None:
            src = self._sources[fname] = translate.cuda_source(fname)
        return src

    def get(self, kind, name, inst):
        k = self._kernels.get(inst)
        if k is None:
            self.compile_group(kind, name)
            k = self._kernels[inst]
        return k

    def compile_group(self, kind, name):
        fname, insts = all_groups()[(kind, name)]
        # (groups may share instances, e.g. sum and mean: check them all)
        if all(inst in self._kernels for inst in insts):
            return
        lib = self.shim.library(self.source(fname), insts)
        kernels = {inst: self.shim.kernel(lib, inst) for inst in insts}
        with self._lock:
            self._kernels.update(kernels)
            self.compiled_groups += 1

    def warm_up(self, keys=None, threads=8):
        """Compile the groups `keys` (all when None) in parallel threads (NVRTC runs
        concurrently; the shim releases the GIL while it compiles)."""
        from concurrent.futures import ThreadPoolExecutor
        keys = list(all_groups()) if keys is None else list(keys)
        for fname in {all_groups()[k][0] for k in keys}:
            self.source(fname)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda k: self.compile_group(*k), keys))
