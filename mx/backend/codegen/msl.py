"""Render a FusedGraph into one GPU kernel in mx's MSL subset (see mx/backend/gpu/translate.py).

The kernel has the shape of shaders/unary.metal's contiguous kernel:

    [[kernel]] void name(device const T0* in0 [[buffer(0)]], ..., device U* out [[buffer(k)]],
                         constant const size_t& size [[buffer(k+1)]],
                         uint2 index [[thread_position_in_grid]], uint2 grid [[threads_per_grid]])

MX_WORK elements a thread, `threads` apart (launch ceil(size / MX_WORK) threads). A full-size
input is read at the element index, a scalar input once per thread.

Every op is the function object the eager GPU kernel of the same primitive uses
(mx/backend/gpu/kernels.py UNARY / BINARY name them; shaders/ops.metal defines them), and
each op's result is stored as its dtype through `CastTo<U>::run`, exactly as the eager kernel
stores `out[i] = CastTo<U>::run(Op()(in[i]))`: a fused chain gives the bits the same chain of
eager GPU kernels gives. astype is `CastTo<U>::run`, select a conditional. Anything else
(round: a fused kernel has no rendering of its decimals parameter) raises `Unsupported`.

float64 graphs use `double`, which only the CUDA reading compiles (Metal has no double).
"""
from __future__ import annotations

import hashlib
import math

from mx.backend.codegen import FusedGraph
from mx.backend.codegen.c import Unsupported
from mx.backend.gpu import kernels as K

CTYPES = dict(K.CTYPES)
_FLOATS = ("float16", "bfloat16", "float32")


def literal(value, dtype: str) -> str:
    """An MSL expression of `value` as element type `dtype` (rounded to it as the eager
    kernel's operand would be)."""
    if dtype not in CTYPES:
        raise Unsupported(dtype)
    T = CTYPES[dtype]
    if dtype == "bool":
        return "true" if value else "false"
    if dtype in _FLOATS or dtype == "float64":
        v = float(value)
        if math.isnan(v):
            text = "NAN"
        elif math.isinf(v):
            text = "INFINITY" if v > 0 else "(-INFINITY)"
        elif dtype == "float64":
            text = repr(v)
        else:
            import ml_dtypes
            import numpy as np
            # rounded from the double once, straight to the dtype (as the eager operand is);
            # a half or bfloat value is exact as a float literal
            kind = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}.get(dtype, np.float32)
            text = repr(float(np.float32(kind(v)))) + "f"
        return f"{T}({text})"
    v = int(value)
    bits = int("".join(c for c in dtype if c.isdigit()))
    if dtype.startswith("u"):
        if not 0 <= v < (1 << bits):
            raise Unsupported(f"literal {v} out of range of {dtype}")
        return f"{T}({v}UL)" if bits == 64 else f"{T}({v}U)"
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        raise Unsupported(f"literal {v} out of range of {dtype}")
    if bits == 64:
        # -2^63 has no literal: its magnitude does not fit in a signed long
        return f"{T}({v + 1}L - 1L)" if v == -(1 << 63) else f"{T}({v}L)"
    return f"{T}({v})"


def expression(op, args, arg_dtypes, out_dtype, params=()) -> str:
    """The MSL expression of one op on named operands, of type CTYPES[out_dtype]; raises
    Unsupported when no eager GPU kernel computes this op for these dtypes."""
    for d in tuple(arg_dtypes) + (out_dtype,):
        if d not in CTYPES:
            raise Unsupported(d)
    n = len(args)
    U = CTYPES[out_dtype]
    if op == "astype" and n == 1:
        if arg_dtypes[0] == out_dtype:
            return args[0]
        return f"CastTo<{U}>::run({args[0]})"
    if op == "select" and n == 3:
        if arg_dtypes[0] != "bool" or arg_dtypes[1] != out_dtype or arg_dtypes[2] != out_dtype:
            raise Unsupported(op)
        return f"({args[0]} ? {args[1]} : {args[2]})"
    if n == 1 and op in K.UNARY:
        fn, types = K.UNARY[op]
        t = arg_dtypes[0]
        if t not in types or out_dtype != K.unary_out(op, t):
            raise Unsupported(f"{op} of {t} to {out_dtype}")
        return f"CastTo<{U}>::run({fn}()({args[0]}))"
    if n == 2 and op in K.BINARY:
        fn, types = K.BINARY[op]
        t = arg_dtypes[0]
        if arg_dtypes[1] != t or t not in types or out_dtype != K.binary_out(op, t):
            raise Unsupported(f"{op} of {t}, {arg_dtypes[1]} to {out_dtype}")
        return f"CastTo<{U}>::run({fn}()({args[0]}, {args[1]}))"
    raise Unsupported(op)


def _small_power(node, args):
    """x ** 2 and x ** 3 of float32/float64 by a literal exponent as products (as the C
    renderer does): pow() costs a fused kernel about a fifth of its bandwidth. The result
    can differ from eager's pow in the last bit."""
    if node.op != "power" or node.dtype not in ("float32", "float64"):
        return None
    ref = node.args[1]
    if ref[0] != "lit" or ref[2] != node.dtype:
        return None
    v = float(ref[1])
    a = args[0]
    if v == 2.0:
        return f"({a} * {a})"
    if v == 3.0:
        return f"(({a} * {a}) * {a})"
    return None


def supports(op, arg_dtypes, out_dtype, params=()) -> bool:
    """Whether `op` on these dtype names can be rendered."""
    try:
        expression(op, [f"v{i}" for i in range(len(arg_dtypes))], arg_dtypes, out_dtype, params)
    except Unsupported:
        return False
    return True


def kernel_name(graph: FusedGraph) -> str:
    """A name for the kernel of `graph`, the same in every process (so the shim's disk
    cache, keyed by source and names, hits)."""
    return "mx_fused_" + hashlib.sha1(repr(tuple(graph)).encode()).hexdigest()[:16]


def vector_name(name: str) -> str:
    """The name of the wide-load variant of kernel `name` (render_kernel(..., vector=True))."""
    return name + "_v"


def render_kernel(graph: FusedGraph, name: str | None = None, vector: bool = False) -> str:
    """The MSL source of `graph` as kernel `name` (kernel_name(graph) by default), with its
    includes; raises Unsupported.

    The default kernel reads each thread's MX_WORK elements `threads` apart, from arrays of
    any alignment. With `vector`, thread t owns elements [t * MX_WORK, (t + 1) * MX_WORK)
    and moves them as one MxVec (shaders/utils.metal): every non-scalar input and the output
    must be aligned to MX_WORK elements. Both launch ceil(size / MX_WORK) threads."""
    if name is None:
        name = kernel_name(graph)
    for d in [x.dtype for x in graph.inputs] + [nd.dtype for nd in graph.nodes]:
        if d not in CTYPES:
            raise Unsupported(d)
    if not graph.nodes:
        raise Unsupported("a graph without nodes")
    k = len(graph.inputs)
    params = [f"    device const {CTYPES[x.dtype]}* in{j} [[buffer({j})]]"
              for j, x in enumerate(graph.inputs)]
    params.append(f"    device {CTYPES[graph.out_dtype]}* out [[buffer({k})]]")
    params.append(f"    constant const size_t& size [[buffer({k + 1})]]")
    params.append("    uint2 index [[thread_position_in_grid]]")
    params.append("    uint2 grid [[threads_per_grid]]")
    lines = ["// a fused elementwise kernel generated by mx/backend/codegen/msl.py",
             "#include <metal_stdlib>", '#include "utils.metal"', '#include "ops.metal"',
             "using namespace metal;", "",
             f"[[kernel]] void {name}(", ",\n".join(params) + ") {"]
    for j, x in enumerate(graph.inputs):
        if x.scalar:
            lines.append(f"  const {CTYPES[x.dtype]} x{j} = in{j}[0];")
    body = []                       # one element's ops, from x{j} to out[i]

    def name_of(ref):
        if ref[0] == "in":
            return f"x{ref[1]}"
        if ref[0] == "node":
            return f"t{ref[1]}"
        return literal(ref[1], ref[2])

    for j, node in enumerate(graph.nodes):
        args = [name_of(r) for r in node.args]
        dts = [graph.arg_dtype(r) for r in node.args]
        expr = _small_power(node, args) or expression(node.op, args, dts, node.dtype, node.params)
        body.append(f"    const {CTYPES[node.dtype]} t{j} = {expr};")
    result = f"t{len(graph.nodes) - 1}"
    arrays = [(j, CTYPES[x.dtype]) for j, x in enumerate(graph.inputs) if not x.scalar]
    if vector:
        U = CTYPES[graph.out_dtype]
        lines += ["  size_t i = mx_linear_index(index, grid) * MX_WORK;",
                  "  if (i + MX_WORK <= size) {"]
        lines += [f"    const MxVec<{T}> v{j} = *((device const MxVec<{T}>*)(in{j} + i));"
                  for j, T in arrays]
        lines += [f"    MxVec<{U}> o;", "    for (int w = 0; w < MX_WORK; ++w) {"]
        lines += [f"      const {T} x{j} = v{j}.v[w];" for j, T in arrays]
        lines += ["  " + b for b in body]
        lines += [f"      o.v[w] = {result};", "    }",
                  f"    *((device MxVec<{U}>*)(out + i)) = o;", "    return;", "  }",
                  "  for (int w = 0; w < MX_WORK; ++w) {",
                  "    if (i + w >= size) return;"]
        lines += [f"    const {T} x{j} = in{j}[i + w];" for j, T in arrays]
        lines += body
        lines += [f"    out[i + w] = {result};", "  }", "}"]
        return "\n".join(lines) + "\n"
    body.append(f"    out[i + w * step] = {result};")
    lines += ["  size_t i = mx_linear_index(index, grid);",
              "  size_t step = size_t(grid.x) * size_t(grid.y);",
              # every element in range: all loads first (the compiler cannot tell that `out`
              # aliases no input, so a load after a store would wait for the store)
              "  if (i + (MX_WORK - 1) * step < size) {"]
    for j, T in arrays:
        lines.append(f"    {T} v{j}[MX_WORK];")
    lines.append("    for (int w = 0; w < MX_WORK; ++w) {")
    lines += [f"      v{j}[w] = in{j}[i + w * step];" for j, _ in arrays]
    lines.append("    }")
    lines.append("    for (int w = 0; w < MX_WORK; ++w) {")
    lines += [f"      const {T} x{j} = v{j}[w];" for j, T in arrays]
    lines += ["  " + b for b in body]
    lines += ["    }", "    return;", "  }",
              "  for (int w = 0; w < MX_WORK; ++w) {",
              "    if (i + w * step >= size) return;"]
    lines += [f"    const {T} x{j} = in{j}[i + w * step];" for j, T in arrays]
    lines += body
    lines += ["  }", "}"]
    return "\n".join(lines) + "\n"


__all__ = ["CTYPES", "Unsupported", "expression", "kernel_name", "literal", "render_kernel",
           "supports", "vector_name"]
