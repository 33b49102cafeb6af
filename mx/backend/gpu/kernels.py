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
    "bitwise_and": ("BitwiseAnd", BOOL + INTS), "bitwise_or": ("BitwiseOr", BOOL + INTS),
    "bitwise_xor": ("BitwiseXor", BOOL + INTS),
    "left_shift": ("LeftShift", INTS), "right_shift": ("RightShift", INTS),
}
BINARY_BOOL_OUT = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                   "logical_and", "logical_or"}

# reductions (shaders/reduce.metal): primitive -> (accumulating op, {input dtype:
# (accumulator dtype, output dtype)}); mean is Sum divided by the count
_SUMS = {"float32": ("float32", "float32"), "float16": ("float32", "float16"),
         "bfloat16": ("float32", "bfloat16"), "int32": ("int32", "int32"),
         "bool": ("int32", "int32")}
_EXTREMA = {"float32": ("float32", "float32"), "float16": ("float32", "float16"),
            "bfloat16": ("float32", "bfloat16"), "int32": ("int32", "int32")}
_TRUTH = {t: ("bool", "bool") for t in ("bool", "int32", "float16", "bfloat16", "float32")}
REDUCE = {
    "sum": ("Sum", _SUMS), "prod": ("Prod", _SUMS),
    "max": ("Max", _EXTREMA), "min": ("Min", _EXTREMA),
    "mean": ("Sum", {"float32": ("float32", "float32"), "float16": ("float32", "float16"),
                     "bfloat16": ("float32", "bfloat16"), "int32": ("int64", "float32")}),
    "all": ("And", _TRUTH), "any": ("Or", _TRUTH),
}

# index dtypes the gather kernels read directly (others are converted to int64 first)
INDEX_TYPES = ("int32", "int64", "uint32")
# softmax / logsumexp: input dtype -> (computation dtype, output dtype)
ROWS = {"float16": ("float32", "float16"), "bfloat16": ("float32", "bfloat16"),
        "float32": ("float32", "float32"), "float64": ("float64", "float64")}

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
        if t not in types:
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
    return out


_GROUPS = groups()


def group_of(kind: str, name: str):
    return _GROUPS.get((kind, name))


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
        fname, insts = _GROUPS[(kind, name)]
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
        keys = list(_GROUPS) if keys is None else list(keys)
        for fname in {_GROUPS[k][0] for k in keys}:
            self.source(fname)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(lambda k: self.compile_group(*k), keys))
