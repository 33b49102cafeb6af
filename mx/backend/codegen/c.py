"""Render a FusedGraph into a C99 function: one loop over the output elements.

    void name(int64_t n, int parallel, const T0 *in0, ..., Tout *out)

Inputs marked scalar are read once before the loop; every node becomes one `const`
local inside the loop, so gcc -O3 sees straight-line code and vectorises the loop when
all the operations allow it. The loop is split across threads with OpenMP when n is
large and `parallel` is nonzero (the caller passes 0 in a forked child of a process that
used OpenMP: GNU libgomp's thread pool does not survive fork). The pragma is ignored by a
compiler run without -fopenmp.

Semantics follow the NumPy kernels the ops use on the CPU, including NaN/inf, integer
wrap-around (signed arithmetic goes through unsigned types: no undefined overflow),
integer division by zero (0), Python-style floor division and remainder, and NumPy's
shift rules. float32 exp, log, tanh and sigmoid use the branch-free implementations in
PRELUDE (below 2 ulp, see tests/test_fusion.py) so that loops using them vectorise;
the other transcendental functions and all float64 ones call libm.
"""
from __future__ import annotations

import math

from mx.backend.codegen import FusedGraph

CTYPES = {"bool": "uint8_t", "uint8": "uint8_t", "int32": "int32_t", "int64": "int64_t",
          "float32": "float", "float64": "double"}
_UTYPES = {"uint8": "uint8_t", "int32": "uint32_t", "int64": "uint64_t"}
_BITS = {"uint8": 8, "int32": 32, "int64": 64}
FLOATS = ("float32", "float64")
INTS = ("uint8", "int32", "int64")


class Unsupported(Exception):
    """The op has no C rendering for these dtypes/params (the step stays unfused)."""


# ---------------------------------------------------------------------------------------
# helpers shared by all kernels of a module
# ---------------------------------------------------------------------------------------
_FLOAT_HELPERS = r"""
static inline int32_t mx_f2i(float x) { int32_t i; memcpy(&i, &x, 4); return i; }
static inline float mx_i2f(int32_t i) { float x; memcpy(&x, &i, 4); return x; }

/* e^x: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split so that k*LN2_HI is exact),
   e^r by a degree-6 minimax polynomial, then 2^k built from exponent bits in two halves
   so that results that overflow or are subnormal round once, at the last product. */
static inline float mx_expf(float x)
{
    float xc = x > 88.8f ? 88.8f : x;
    xc = xc < -104.0f ? -104.0f : xc;
    float k = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - k * 0.693145751953125f;
    r = r - k * 1.42860682030941723e-6f;
    float q = 0.4999999403953552f + r * (0.1666652113199234f + r * (0.04166838899254799f
              + r * (0.008368710055947304f + r * 0.001381461275741458f)));
    float p = 1.0f + (r + r * r * q);
    int32_t ki = (int32_t)k;
    int32_t k1 = ki >> 1;
    float s1 = mx_i2f((k1 + 127) << 23);
    float s2 = mx_i2f((ki - k1 + 127) << 23);
    float y = (p * s1) * s2;
    return x != x ? x : y;
}

/* log x = e ln2 + log(m), m in [sqrt(1/2), sqrt(2)); log(1+f) = f - f^2/2 + s(f^2/2 + R(s^2))
   with s = f/(2+f) and R a degree-3 minimax polynomial in s^2. */
static inline float mx_logf(float x)
{
    /* branch-free (selects of constants, unconditional products) so that the loop
       vectorises; subnormals are scaled into the normal range first */
    int sub = x < 1.17549435e-38f;
    float xs = x * (sub ? 8388608.0f : 1.0f);
    int32_t ix = mx_f2i(xs);
    int32_t e = ((ix >> 23) & 0xff) - 127 - (sub ? 23 : 0);
    float m = mx_i2f((ix & 0x007fffff) | 0x3f800000);
    int big = m > 1.41421356f;
    m = m * (big ? 0.5f : 1.0f);
    e = e + big;
    float f = m - 1.0f;
    float s = f / (2.0f + f);
    float z = s * s;
    float R = z * (0.6666677594184875f + z * (0.39977574348449707f + z * 0.2987093925476074f));
    float hfsq = 0.5f * f * f;
    float ef = (float)e;
    float y = ef * 0.693145751953125f
              - ((hfsq - (s * (hfsq + R) + ef * 1.42860682030941723e-6f)) - f);
    y = x == INFINITY ? x : y;
    y = x == 0.0f ? -INFINITY : y;
    y = x < 0.0f ? NAN : y;
    return x != x ? x : y;
}

/* tanh: an odd minimax polynomial below 0.5625 (where 1 - 2/(e^2x + 1) would cancel),
   the exp form above. */
static inline float mx_tanhf(float x)
{
    float a = fabsf(x);
    float z = x * x;
    float small = x + x * z * (-0.3333331346511841f + z * (0.1333245187997818f
                  + z * (-0.053837429732084274f + z * (0.021007461473345757f
                  + z * -0.0061798132956027985f))));
    float e = mx_expf(a + a);
    float large = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    return a < 0.5625f ? small : large;
}

/* 1/(1 + e^-x), written with e = e^-|x| <= 1 so that nothing overflows and results for
   very negative x stay accurate down to the subnormals */
static inline float mx_sigmoidf(float x)
{
    float e = mx_expf(-fabsf(x));
    float d = 1.0f + e;
    return x < 0.0f ? e / d : 1.0f / d;
}

static inline double mx_sigmoid(double x)
{
    double e = exp(-fabs(x));
    double d = 1.0 + e;
    return x < 0.0 ? e / d : 1.0 / d;
}
"""

# NumPy's float floor division/remainder (npy_divmod), per float type
_DIVMOD = r"""
static inline @T@ mx_floordiv_@D@(@T@ a, @T@ b)
{
    if (b == 0) return a / b;
    @T@ mod = fmod@F@(a, b);
    @T@ div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;
    if (div == 0) return copysign@F@(0, a / b);
    @T@ fl = floor@F@(div);
    return div - fl > (@T@)0.5 ? fl + 1 : fl;
}

static inline @T@ mx_rem_@D@(@T@ a, @T@ b)
{
    @T@ mod = fmod@F@(a, b);
    if (b == 0) return mod;
    if (mod == 0) return copysign@F@(0, b);
    return ((b < 0) != (mod < 0)) ? mod + b : mod;
}

static inline @T@ mx_logaddexp_@D@(@T@ x, @T@ y)
{
    if (x == y) return x + (@T@)0.693147180559945309417232;
    @T@ d = x - y;
    if (d > 0) return x + log1p@F@(exp@F@(-d));
    if (d <= 0) return y + log1p@F@(exp@F@(d));
    return d;
}
"""

_INT_SIGNED = r"""
static inline @T@ mx_floordiv_@D@(@T@ a, @T@ b)
{
    if (b == 0) return 0;
    if (b == -1) return (@T@)((@U@)0 - (@U@)a);
    @T@ q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

static inline @T@ mx_rem_@D@(@T@ a, @T@ b)
{
    if (b == 0 || b == -1) return 0;
    @T@ r = a % b;
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

/* negative exponents truncate toward zero as in C: only 1 and -1 survive */
static inline @T@ mx_pow_@D@(@T@ x, @T@ y)
{
    if (y < 0) return x == 1 ? 1 : (x == -1 ? ((y & 1) ? -1 : 1) : 0);
    @U@ r = 1, b = (@U@)x;
    while (y) { if (y & 1) r *= b; b *= b; y >>= 1; }
    return (@T@)r;
}

static inline @T@ mx_shl_@D@(@T@ a, @T@ b)
{
    return (uint64_t)b < @BITS@ ? (@T@)((@U@)a << b) : 0;
}

static inline @T@ mx_shr_@D@(@T@ a, @T@ b)
{
    return (uint64_t)b < @BITS@ ? (@T@)(a >> b) : (a < 0 ? -1 : 0);
}
"""

_INT_UNSIGNED = r"""
static inline @T@ mx_floordiv_@D@(@T@ a, @T@ b) { return b == 0 ? 0 : (@T@)(a / b); }
static inline @T@ mx_rem_@D@(@T@ a, @T@ b) { return b == 0 ? 0 : (@T@)(a % b); }

static inline @T@ mx_pow_@D@(@T@ x, @T@ y)
{
    @T@ r = 1, b = x;
    while (y) { if (y & 1) r = (@T@)(r * b); b = (@T@)(b * b); y >>= 1; }
    return r;
}

static inline @T@ mx_shl_@D@(@T@ a, @T@ b) { return b < @BITS@ ? (@T@)(a << b) : 0; }
static inline @T@ mx_shr_@D@(@T@ a, @T@ b) { return b < @BITS@ ? (@T@)(a >> b) : 0; }
"""


def _fill(template, **subs):
    for k, v in subs.items():
        template = template.replace(f"@{k}@", str(v))
    return template


def _prelude():
    parts = ["#include <stdint.h>\n#include <string.h>\n#include <math.h>\n", _FLOAT_HELPERS]
    for d in FLOATS:
        parts.append(_fill(_DIVMOD, T=CTYPES[d], D=d, F="f" if d == "float32" else ""))
    for d in INTS:
        tmpl = _INT_UNSIGNED if d == "uint8" else _INT_SIGNED
        parts.append(_fill(tmpl, T=CTYPES[d], U=_UTYPES[d], D=d, BITS=_BITS[d]))
    return "\n".join(parts)


PRELUDE = _prelude()

# ---------------------------------------------------------------------------------------
# one expression per op
# ---------------------------------------------------------------------------------------
_LIBM = {"expm1": "expm1", "log2": "log2", "log10": "log10", "log1p": "log1p", "sqrt": "sqrt",
         "sin": "sin", "cos": "cos", "tan": "tan", "arcsin": "asin", "arccos": "acos",
         "arctan": "atan", "sinh": "sinh", "cosh": "cosh", "arcsinh": "asinh",
         "arccosh": "acosh", "arctanh": "atanh", "erf": "erf", "floor": "floor",
         "ceil": "ceil", "abs": "fabs"}
_OWN_F32 = {"exp": "mx_expf", "log": "mx_logf", "tanh": "mx_tanhf", "sigmoid": "mx_sigmoidf"}
_CMP = {"equal": "==", "not_equal": "!=", "less": "<", "less_equal": "<=", "greater": ">",
        "greater_equal": ">="}
_INT_BITWISE = {"bitwise_and": "&", "bitwise_or": "|", "bitwise_xor": "^"}
_BOOL_BINARY = {"add": "|", "subtract": "^", "multiply": "&", "maximum": "|", "minimum": "&",
                "logical_and": "&", "logical_or": "|", "bitwise_and": "&", "bitwise_or": "|",
                "bitwise_xor": "^"}
_ANY_PREDICATE = {"isnan": "0", "isinf": "0", "isposinf": "0", "isneginf": "0", "isfinite": "1"}


def literal(value, dtype):
    """A C literal of `value` in `dtype`."""
    if dtype in FLOATS:
        v = float(value)
        if math.isnan(v):
            return "NAN" if dtype == "float64" else "((float)NAN)"
        if math.isinf(v):
            return ("" if v > 0 else "-") + ("INFINITY" if dtype == "float32" else "((double)INFINITY)")
        if dtype == "float32":
            import numpy as np
            return repr(float(np.float32(v))) + "f"
        return repr(v)
    if dtype == "bool":
        return "1" if value else "0"
    if dtype == "int64":
        return f"INT64_C({int(value)})"
    return f"(({CTYPES[dtype]}){int(value)})"


def _unary(op, a, d, params):
    T = CTYPES[d]
    if d in FLOATS:
        f = "f" if d == "float32" else ""
        if d == "float32" and op in _OWN_F32:
            return f"{_OWN_F32[op]}({a})"
        if op in _LIBM:
            return f"{_LIBM[op]}{f}({a})"
        simple = {
            "exp": f"exp({a})", "log": f"log({a})", "tanh": f"tanh({a})",
            "sigmoid": f"mx_sigmoid({a})",
            "negative": f"(-{a})", "copy": a, "square": f"({a} * {a})",
            "sign": f"({a} > 0 ? ({T})1 : ({a} < 0 ? ({T})-1 : ({a} == 0 ? ({T})0 : {a})))",
            "rsqrt": f"(({T})1 / sqrt{f}({a}))", "reciprocal": f"(({T})1 / {a})",
            "degrees": f"({a} * {literal(180.0 / math.pi, d)})",
            "radians": f"({a} * {literal(math.pi / 180.0, d)})",
            "isnan": f"({a} != {a})", "isinf": f"(fabs{f}({a}) == ({T})INFINITY)",
            "isfinite": f"(fabs{f}({a}) < ({T})INFINITY)", "isposinf": f"({a} == ({T})INFINITY)",
            "isneginf": f"({a} == -({T})INFINITY)",
        }
        if op == "round" and dict(params).get("decimals", 0) == 0:
            return f"rint{f}({a})"
        if op in simple:
            return simple[op]
        raise Unsupported(op)
    if op in _ANY_PREDICATE:
        return _ANY_PREDICATE[op]
    if d == "bool":
        if op in ("abs", "sign", "square", "copy"):
            return a
        if op in ("logical_not", "bitwise_invert"):
            return f"({a} == 0)"
        raise Unsupported(op)
    U = _UTYPES[d]
    signed = d != "uint8"
    simple = {
        "copy": a, "bitwise_invert": f"(({T})~{a})",
        "abs": f"({a} < 0 ? ({T})(({U})0 - ({U}){a}) : {a})" if signed else a,
        "negative": f"({T})(({U})0 - ({U}){a})",
        "sign": f"({T})(({a} > 0) - ({a} < 0))" if signed else f"({T})({a} > 0)",
        "square": f"({T})(({U}){a} * ({U}){a})",
    }
    if op in simple:
        return simple[op]
    raise Unsupported(op)


def _power_float(a, b_ref, b, d):
    if b_ref[0] == "lit":
        v = float(b_ref[1])
        if v == 1.0:
            return a
        if v == 2.0:
            return f"({a} * {a})"
        if v == 3.0:
            return f"(({a} * {a}) * {a})"
    return f"pow{'f' if d == 'float32' else ''}({a}, {b})"


def _binary(op, a, b, d, b_ref):
    if op in _CMP:
        return f"({a} {_CMP[op]} {b})"
    T = CTYPES[d]
    if d in FLOATS:
        f = "f" if d == "float32" else ""
        simple = {
            "add": f"({a} + {b})", "subtract": f"({a} - {b})", "multiply": f"({a} * {b})",
            "divide": f"({a} / {b})", "floor_divide": f"mx_floordiv_{d}({a}, {b})",
            "remainder": f"mx_rem_{d}({a}, {b})", "logaddexp": f"mx_logaddexp_{d}({a}, {b})",
            "arctan2": f"atan2{f}({a}, {b})",
            # NaN wins; between equal values (0 and -0) NumPy returns b
            "maximum": f"(({a} > {b} || {a} != {a}) ? {a} : {b})",
            "minimum": f"(({a} < {b} || {a} != {a}) ? {a} : {b})",
        }
        if op == "power":
            return _power_float(a, b_ref, b, d)
        if op in simple:
            return simple[op]
        raise Unsupported(op)
    if d == "bool":
        if op in _BOOL_BINARY:
            return f"({a} {_BOOL_BINARY[op]} {b})"
        raise Unsupported(op)
    U = _UTYPES[d]
    simple = {
        "add": f"({T})(({U}){a} + ({U}){b})", "subtract": f"({T})(({U}){a} - ({U}){b})",
        "multiply": f"({T})(({U}){a} * ({U}){b})",
        "floor_divide": f"mx_floordiv_{d}({a}, {b})", "remainder": f"mx_rem_{d}({a}, {b})",
        "power": f"mx_pow_{d}({a}, {b})", "left_shift": f"mx_shl_{d}({a}, {b})",
        "right_shift": f"mx_shr_{d}({a}, {b})",
        "maximum": f"({a} >= {b} ? {a} : {b})", "minimum": f"({a} <= {b} ? {a} : {b})",
    }
    if op in _INT_BITWISE:
        return f"({a} {_INT_BITWISE[op]} {b})"
    if op in simple:
        return simple[op]
    raise Unsupported(op)


def _cast(a, src, dst):
    if dst == "bool":
        return f"({a} != 0)"
    if src in FLOATS and dst == "uint8":
        # as NumPy does on x86: through int32, then truncated
        return f"(uint8_t)(int32_t){a}"
    if dst in FLOATS and src not in FLOATS and src != "bool":
        # Through a wider float that holds the integer exactly (so the value is rounded
        # once, as a direct conversion rounds it): under -fno-trapping-math GCC folds a
        # float -> int -> float round trip of one float type into trunc(), which gives -0.0
        # for -0.3 where the integer 0 converts to +0.0
        wide = "double" if dst == "float32" and src in ("uint8", "int32") else "long double"
        return f"({CTYPES[dst]})({wide}){a}"
    return f"({CTYPES[dst]}){a}"


def expression(op, args, refs, arg_dtypes, out_dtype, params=()):
    """The C expression of one op on already-named operands; raises Unsupported."""
    for d in tuple(arg_dtypes) + (out_dtype,):
        if d not in CTYPES:
            raise Unsupported(d)
    n = len(args)
    if op == "astype" and n == 1:
        return _cast(args[0], arg_dtypes[0], out_dtype)
    if op == "select" and n == 3:
        if arg_dtypes[0] != "bool" or arg_dtypes[1] != out_dtype or arg_dtypes[2] != out_dtype:
            raise Unsupported(op)
        return f"({args[0]} ? {args[1]} : {args[2]})"
    if n == 1:
        if op in ("isnan", "isinf", "isfinite", "isposinf", "isneginf"):
            if out_dtype != "bool":
                raise Unsupported(op)
        elif op == "logical_not":
            if arg_dtypes[0] != "bool" or out_dtype != "bool":
                raise Unsupported(op)
        elif arg_dtypes[0] != out_dtype:
            raise Unsupported(op)
        return _unary(op, args[0], arg_dtypes[0], params)
    if n == 2:
        if arg_dtypes[0] != arg_dtypes[1]:
            raise Unsupported(op)
        if op in _CMP:
            if out_dtype != "bool":
                raise Unsupported(op)
        elif op in ("logical_and", "logical_or"):
            if arg_dtypes[0] != "bool" or out_dtype != "bool":
                raise Unsupported(op)
        elif arg_dtypes[0] != out_dtype:
            raise Unsupported(op)
        return _binary(op, args[0], args[1], arg_dtypes[0], refs[1])
    raise Unsupported(op)


def supports(op, arg_dtypes, out_dtype, params=()):
    """Whether `op` on these dtype names (and params) can be rendered."""
    names = [f"v{i}" for i in range(len(arg_dtypes))]
    refs = [("in", i) for i in range(len(arg_dtypes))]
    try:
        expression(op, names, refs, arg_dtypes, out_dtype, params)
    except Unsupported:
        return False
    return True


# ---------------------------------------------------------------------------------------
# kernels and modules
# ---------------------------------------------------------------------------------------
# Below this many elements the loop runs on one thread: a fused kernel is memory-bound, and
# waking a second thread only pays once the work is well beyond the thread handoff and the
# cache (measured: the second core helps GELU at 10M elements, not at 64K).
PARALLEL_MIN = 1 << 20


def _check_dtypes(graph):
    for d in [x.dtype for x in graph.inputs] + [nd.dtype for nd in graph.nodes]:
        if d not in CTYPES:
            raise Unsupported(d)


def declaration(graph: FusedGraph, name: str) -> str:
    """The prototype (for cffi's cdef: no `restrict`)."""
    _check_dtypes(graph)
    ins = "".join(f", const {CTYPES[x.dtype]} *in{k}" for k, x in enumerate(graph.inputs))
    return f"void {name}(int64_t n, int parallel{ins}, {CTYPES[graph.out_dtype]} *out);"


def render_kernel(graph: FusedGraph, name: str) -> str:
    """The C definition of `graph` as function `name`; raises Unsupported."""
    _check_dtypes(graph)
    ins = "".join(f", const {CTYPES[x.dtype]} *restrict in{k}"
                  for k, x in enumerate(graph.inputs))
    lines = [f"void {name}(int64_t n, int parallel{ins}, {CTYPES[graph.out_dtype]} *restrict out)",
             "{"]
    for k, x in enumerate(graph.inputs):
        if x.scalar:
            lines.append(f"    const {CTYPES[x.dtype]} x{k} = in{k}[0];")
    lines.append(f"    #pragma omp parallel for if(parallel && n > {PARALLEL_MIN}) schedule(static)")
    lines.append("    for (int64_t i = 0; i < n; i++) {")
    for k, x in enumerate(graph.inputs):
        if not x.scalar:
            lines.append(f"        const {CTYPES[x.dtype]} x{k} = in{k}[i];")

    def name_of(ref):
        if ref[0] == "in":
            return f"x{ref[1]}"
        if ref[0] == "node":
            return f"t{ref[1]}"
        return literal(ref[1], ref[2])

    for j, node in enumerate(graph.nodes):
        args = [name_of(r) for r in node.args]
        dts = [graph.arg_dtype(r) for r in node.args]
        expr = expression(node.op, args, node.args, dts, node.dtype, node.params)
        T = CTYPES[node.dtype]
        lines.append(f"        const {T} t{j} = ({T})({expr});")
    lines.append(f"        out[i] = t{len(graph.nodes) - 1};")
    lines.append("    }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_module(kernels):
    """(cdef, source) of one C module holding the (graph, name) kernels."""
    cdef = "\n".join(declaration(g, n) for g, n in kernels)
    source = PRELUDE + "\n" + "\n".join(render_kernel(g, n) for g, n in kernels)
    return cdef, source


__all__ = ["CTYPES", "PRELUDE", "Unsupported", "declaration", "expression", "literal",
           "render_kernel", "render_module", "supports"]
