"""mx.compile on the GPU: fused elementwise kernels rendered into the shaders' MSL subset
(mx/backend/codegen/msl.py), translated for CUDA (translate.cuda_source_text), run by
mx/backend/gpu/fused.py; compiled programs run step by step on the GPU
(mx/backend/gpu/program.py).

Everywhere: every op x dtype the fusion pass can produce renders; every rendered kernel
parses as C++ in its Metal form (g++ -fsyntax-only with shaders/prelude/cpp_check.h) and,
where a local NVRTC is found, compiles as CUDA; the program runner's step logic against a
stand-in backend. Marked gpu (on an NVIDIA GPU): compiled functions equal the uncompiled
CPU results, fused kernels run on the GPU, grads of compiled functions.
"""
from __future__ import annotations

import collections
import ctypes
import os
import shutil
import subprocess
import types

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.codegen import FusedGraph, Input, Node, msl
from mx.backend.codegen import c as cgen
from mx.backend.cpu import cbuild, fusion
from mx.backend.gpu import kernels as K
from mx.backend.gpu import program as P
from mx.backend.gpu import translate as T
from mx.core.primitives import DYNAMIC_GPU_HANDLERS, REGISTRY

HAS_GPU = G.is_available()
needs_cc = pytest.mark.skipif(cbuild.toolchain() is None, reason="needs a working C compiler")
gpu = pytest.mark.gpu


# ---------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------
def _graphs(t):
    """One single-op graph per op the eager GPU kernels have for dtype t (a scalar second
    operand for binary ops), every astype from t, and select over t."""
    out = []
    for op, (_, types) in K.UNARY.items():
        if t in types:
            out.append(FusedGraph((Input(t, False),), (Node(op, K.unary_out(op, t), (("in", 0),)),)))
    for op, (_, types) in K.BINARY.items():
        if t in types:
            out.append(FusedGraph((Input(t, False), Input(t, True)),
                                  (Node(op, K.binary_out(op, t), (("in", 0), ("in", 1))),)))
    for u in K.CTYPES:
        out.append(FusedGraph((Input(t, False),), (Node("astype", u, (("in", 0),)),)))
    out.append(FusedGraph((Input("bool", False), Input(t, False), Input(t, True)),
                          (Node("select", t, (("in", 0), ("in", 1), ("in", 2))),)))
    return out


_LITERALS = {
    "bool": [True, False],
    "uint8": [0, 255], "uint16": [65535], "uint32": [4294967295], "uint64": [2 ** 64 - 1, 7],
    "int8": [-128, 127], "int16": [-32768], "int32": [-2 ** 31, 2 ** 31 - 1],
    "int64": [-2 ** 63, 2 ** 63 - 1, -3],
    "float16": [0.5, 65504.0, float("inf"), float("nan")],
    "bfloat16": [-2.0, float("-inf")], "float32": [1e-30, 3.0, float("nan")],
    "float64": [0.1, float("inf"), -float("inf"), float("nan")],
}


def _literal_graph(t):
    """A chain over t with every literal of _LITERALS[t] as an operand."""
    nodes, prev = [], ("in", 0)
    op = "logical_or" if t == "bool" else "maximum"
    for v in _LITERALS[t]:
        nodes.append(Node(op, t, (prev, ("lit", v, t))))
        prev = ("node", len(nodes) - 1)
    return FusedGraph((Input(t, False),), tuple(nodes))


def _sources(t):
    """One source holding the kernels of _graphs(t) and the literal chain, each also in its
    wide-load form."""
    gs = _graphs(t) + [_literal_graph(t)]
    src = "".join(msl.render_kernel(g) + msl.render_kernel(g, msl.vector_name(msl.kernel_name(g)),
                                                            vector=True) for g in gs)
    names = [msl.kernel_name(g) for g in gs]
    return src, names + [msl.vector_name(n) for n in names]


def _fusion_combinations():
    """(op, input dtypes, output dtype, params) of every fused node the fusion pass can
    produce: the fusible primitives over its dtypes, as codegen.c accepts them."""
    table = fusion._elementwise()
    out = []
    for name, prim in REGISTRY.items():
        kind = table.get(id(prim))
        if kind is None:
            continue
        for t in fusion.DTYPES:
            for u in fusion.DTYPES:
                if kind[0] == "select":
                    ins = ("bool", u, u) if t == "bool" else None
                elif kind[0] == "binary":
                    ins = (t, t)
                else:
                    ins = (t,)
                params = (("decimals", 0),) if name == "round" else ()
                if ins is not None and cgen.supports(name, ins, u, params):
                    out.append((name, ins, u, params))
    return out


def test_every_fusible_op_renders_except_round():
    combos = _fusion_combinations()
    assert len(combos) > 200
    missing = [(op, ins, u) for op, ins, u, p in combos if not msl.supports(op, ins, u, p)]
    # ops.metal has no rounding to even; a fused group with round runs its ops one by one
    assert all(op == "round" for op, _, _ in missing), missing
    for op, ins, u, p in combos:
        if op == "round":
            continue
        refs = tuple(("in", k) for k in range(len(ins)))
        g = FusedGraph(tuple(Input(d, False) for d in ins), (Node(op, u, refs, p),))
        assert f"{cgen.CTYPES[u] if u != 'bool' else 'bool'} t0 = " in msl.render_kernel(g)


def test_rendered_kernel_shape():
    g = FusedGraph((Input("float32", False), Input("float32", True)),
                   (Node("multiply", "float32", (("in", 0), ("in", 1))),
                    Node("power", "float32", (("node", 0), ("lit", 3.0, "float32"))),
                    Node("greater", "bool", (("node", 1), ("in", 1))),
                    Node("astype", "float16", (("node", 2),))))
    src = msl.render_kernel(g, "k")
    assert "[[kernel]] void k(" in src and "template" not in src
    assert '#include "utils.metal"' in src and '#include "ops.metal"' in src
    assert "device const float* in0 [[buffer(0)]]" in src
    assert "device half* out [[buffer(2)]]" in src
    assert "constant const size_t& size [[buffer(3)]]" in src
    assert "const float x1 = in1[0];" in src.split("for (")[0]      # scalars read once
    # a full thread loads every element before it stores any (no aliasing stalls)
    full = src.split("if (i + (MX_WORK - 1) * step < size) {")[1].split("return;")[0]
    assert full.index("v0[w] = in0[i + w * step];") < full.index("out[i + w * step] = t3;")
    assert "const float x0 = in0[i + w * step];" in src.split("return;")[-1]   # the tail
    assert "CastTo<float>::run(Multiply()(x0, x1))" in src
    # a literal exponent of 2 or 3 becomes products (pow() would cost bandwidth)
    assert "((t0 * t0) * t0)" in src and "Power()" not in src
    assert "CastTo<bool>::run(Greater()(t1, x1))" in src
    assert "const half t3 = CastTo<half>::run(t2);" in src
    assert src.count("out[i + w * step] = t3;") == 2
    assert msl.kernel_name(g) == msl.kernel_name(FusedGraph(*g))
    assert msl.kernel_name(g) != msl.kernel_name(g._replace(inputs=(Input("float32", False),) * 2))
    assert msl.render_kernel(g).count(msl.kernel_name(g)) == 1


def test_literals():
    assert msl.literal(True, "bool") == "true"
    assert msl.literal(3, "float32") == "float(3.0f)"
    assert msl.literal(0.1, "float64") == "double(0.1)"
    assert msl.literal(float("nan"), "float16") == "half(NAN)"
    assert msl.literal(float("-inf"), "bfloat16") == "bfloat((-INFINITY))"
    assert msl.literal(-2 ** 63, "int64") == "int64_t(-9223372036854775807L - 1L)"
    assert msl.literal(2 ** 64 - 1, "uint64") == "uint64_t(18446744073709551615UL)"
    assert msl.literal(200, "uint8") == "uint8_t(200U)"
    assert msl.literal(-5, "int32") == "int32_t(-5)"


@pytest.mark.parametrize("op, args, out, msg", [
    ("round", ("float32",), "float32", "round"),
    ("add", ("float32", "int32"), "float32", "add of float32, int32"),
    ("divide", ("int32", "int32"), "int32", "divide of int32"),
    ("exp", ("float32",), "float64", "exp of float32 to float64"),
    ("equal", ("int32", "int32"), "int32", "equal of int32"),
    ("select", ("int32", "float32", "float32"), "float32", "select"),
    ("abs", ("complex64",), "complex64", "complex64"),
    ("cumsum", ("float32",), "float32", "cumsum"),
])
def test_unsupported_ops_raise(op, args, out, msg):
    with pytest.raises(msl.Unsupported, match=msg):
        msl.expression(op, [f"v{i}" for i in range(len(args))], args, out)
    assert not msl.supports(op, args, out)


def test_unsupported_graphs_and_literals_raise():
    with pytest.raises(msl.Unsupported, match="complex64"):
        msl.render_kernel(FusedGraph((Input("complex64", False),),
                                     (Node("copy", "complex64", (("in", 0),)),)))
    with pytest.raises(msl.Unsupported, match="without nodes"):
        msl.render_kernel(FusedGraph((Input("float32", False),), ()))
    with pytest.raises(msl.Unsupported, match="out of range of uint8"):
        msl.literal(256, "uint8")
    with pytest.raises(msl.Unsupported, match="out of range of int8"):
        msl.literal(-129, "int8")


# ---------------------------------------------------------------------------------------
# translation of a source string
# ---------------------------------------------------------------------------------------
def test_translate_a_source_string():
    g = FusedGraph((Input("float32", False),), (Node("exp", "float32", (("in", 0),)),))
    src = msl.render_kernel(g, "kk") + msl.render_kernel(g, "kk2")
    cu = T.cuda_source_text(src)
    assert cu.count("__global__") == 2 and "metal_stdlib" not in cu
    assert cu.count("MX_FLOAT_UNARY(Exp,") == 1 and cu.count("struct Abs {") == 1   # once
    assert "#include <cuda_fp16.h>" in cu and '#include "' not in cu
    assert "const uint2 index = mx_thread_position_in_grid_uint2();" in cu
    cpp = T.cpp_check_text(src)
    assert "[[" not in cpp and "#include <cmath>" in cpp
    with pytest.raises(T.TranslationError, match="only <metal_stdlib> may be included, not <vector>"):
        T.cuda_source_text("#include <vector>\n")
    with pytest.raises(FileNotFoundError):
        T.cuda_source_text('#include "no_such_file.metal"\n')


# ---------------------------------------------------------------------------------------
# compile checks: g++ (Metal view; runs in CI) and NVRTC (CUDA; where installed)
# ---------------------------------------------------------------------------------------
def _cxx():
    for c in ("clang++", "g++", "c++"):
        if shutil.which(c):
            return c
    return None


def _cpp_check(src):
    cxx = _cxx()
    if cxx is None:
        pytest.skip("no C++ compiler")
    return subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wno-attributes", "-x", "c++", "-"],
                          input=T.cpp_check_text(src), capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("t", K.METAL_TYPES)
def test_rendered_kernels_parse_as_cpp(t):
    src, _ = _sources(t)
    r = _cpp_check(src)
    assert r.returncode == 0, r.stderr[:4000]


def test_cpp_check_catches_errors_in_rendered_kernels():
    g = FusedGraph((Input("int32", False), Input("int32", False)),
                   (Node("add", "int32", (("in", 0), ("in", 1))),))
    src = msl.render_kernel(g, "k").replace("Add()", "BitwiseAndNot()")
    r = _cpp_check(src)
    assert r.returncode != 0 and "BitwiseAndNot" in r.stderr


_NVRTC_DIRS = [os.environ.get("MX_TEST_NVRTC_DIR", ""), "/tmp/nvrtc/nvidia/cu13"]


def _nvrtc():
    """(ctypes library, include dir) of a local NVRTC 13, or skip."""
    for d in _NVRTC_DIRS:
        lib = os.path.join(d, "lib", "libnvrtc.so.13") if d else ""
        if lib and os.path.exists(lib):
            for b in sorted(os.listdir(os.path.join(d, "lib"))):
                if b.startswith("libnvrtc-builtins.so"):
                    # loaded first, so that NVRTC's own dlopen of it finds it by name
                    ctypes.CDLL(os.path.join(d, "lib", b), mode=ctypes.RTLD_GLOBAL)
            return ctypes.CDLL(lib), os.path.join(d, "include")
    pytest.skip("no local NVRTC")


def _nvrtc_compile(src, names):
    lib, inc = _nvrtc()
    prog = ctypes.c_void_p()
    assert lib.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"k.cu", 0, None, None) == 0
    for n in names:
        lib.nvrtcAddNameExpression(prog, n.encode())
    opts = [b"--gpu-architecture=sm_90", b"--std=c++17", b"--device-as-default-execution-space",
            f"--include-path={inc}".encode()]
    rc = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    size = ctypes.c_size_t()
    lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    lib.nvrtcGetProgramLog(prog, log)
    lowered = []
    if rc == 0:
        for n in names:
            low = ctypes.c_char_p()
            assert lib.nvrtcGetLoweredName(prog, n.encode(), ctypes.byref(low)) == 0
            lowered.append(low.value)
    lib.nvrtcDestroyProgram(ctypes.byref(prog))
    return rc, log.value.decode(errors="replace"), lowered


@pytest.mark.parametrize("t", list(K.CTYPES))
def test_rendered_kernels_compile_with_nvrtc(t):
    src, names = _sources(t)
    rc, log, lowered = _nvrtc_compile(T.cuda_source_text(src), names)
    assert rc == 0, log[:4000]
    assert len(lowered) == len(names) and all(lowered)


# ---------------------------------------------------------------------------------------
# the hooks and the program runner (a stand-in backend: no GPU needed)
# ---------------------------------------------------------------------------------------
class FakeBackend:
    """Counts what the runner asks of a backend."""

    def __init__(self):
        self.gpu_runs = collections.Counter()
        self.fallbacks = collections.Counter()
        self.syncs = 0
        self.log = []

    def synchronize(self):
        self.syncs += 1
        self.log.append("sync")

    def operand(self, x):
        """Stages every array: a copy, as for one outside unified memory."""
        self.log.append("stage")
        return None, 0, x.copy()


@pytest.fixture
def hooks(monkeypatch):
    """Program and fused-step handlers installed as the GPU backend would (restored
    after); the fused handler is a stand-in that runs the step's CPU kernel, and no other
    primitive has a GPU kernel (as on a machine without a GPU)."""
    for prim in REGISTRY.values():
        if prim.gpu is not None:
            monkeypatch.setattr(prim, "gpu", None)
    saved = dict(DYNAMIC_GPU_HANDLERS)
    calls = []

    def fake_fused_factory(fk):
        def handler(gpu, node, args, stream):
            calls.append((node._shape, node._dtype, stream))
            gpu.log.append("fused")
            return fk(*args)
        return handler

    DYNAMIC_GPU_HANDLERS["compiled"] = P.make_handler
    DYNAMIC_GPU_HANDLERS["fused"] = fake_fused_factory
    yield calls
    DYNAMIC_GPU_HANDLERS.clear()
    DYNAMIC_GPU_HANDLERS.update(saved)


def _trace(cf):
    traces = list(cf._cache.values())
    assert len(traces) == 1
    return traces[0]


class _Node:
    _stream = None


@needs_cc
def test_program_runner_runs_steps_in_order(hooks):
    def f(x, y):
        a = mx.tanh(x * 2.0 + 1.0)                # fused
        s = mx.sort(a, axis=-1)                   # no handler here: synchronize, CPU
        m = mx.max(y, axis=0)                     # no handler here either
        return s * 3.0 - 1.0, m, a                # a second fused group; multi-output
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal((4, 5)).astype(np.float32)
    y_np = rng.standard_normal((3, 5)).astype(np.float32)
    cf = mx.compile(f)
    want = [np.asarray(o) for o in cf(mx.array(x_np), mx.array(y_np))]
    tr = _trace(cf)
    prog = tr.program
    handler = prog.primitive.gpu
    assert handler is not None and handler.__name__ == "gpu_compiled_f"
    fused_steps = [s for s in prog.steps if s.prim.name.startswith("fused(")]
    assert fused_steps and all(s.prim.gpu is not None for s in fused_steps)
    fake = FakeBackend()
    # the program's inputs: the arguments, then the random state compile threads through
    state = [np.asarray(k) for k in (mx.random.state if isinstance(getattr(mx.random, "state", None), list) else [])]
    assert len(tr.in_shapes) == 2 + len(state)
    outs = handler(fake, _Node(), [x_np, y_np] + state, 0)
    assert isinstance(outs, tuple) and len(outs) == 3
    for o, w in zip(outs, want):
        np.testing.assert_allclose(o, w, rtol=1e-6)
        assert o.dtype == w.dtype and o.shape == w.shape
    assert sum(v for k, v in fake.gpu_runs.items() if k.startswith("fused(")) == len(fused_steps)
    assert fake.fallbacks["sort"] == 1 and fake.fallbacks["max"] == 1
    # constants are staged once, when the plan is made; the runner waits before a CPU kernel
    n_consts = len(prog.consts)
    assert n_consts and fake.log[:n_consts] == ["stage"] * n_consts
    assert fake.log[n_consts] == "fused" and fake.log[n_consts + 1] == "sync"
    assert len(hooks) == len(fused_steps) and hooks[0][0] == (4, 5)
    # the plan is made once: a second call reuses it
    fake.log.clear()
    outs2 = handler(fake, _Node(), [x_np * 0, y_np] + state, 0)
    assert "stage" not in fake.log
    np.testing.assert_allclose(outs2[2], np.tanh(np.ones((4, 5), np.float32)), rtol=1e-6)
    assert sum(v for k, v in fake.gpu_runs.items() if k.startswith("fused(")) == 2 * len(fused_steps)
    # other input shapes (a shapeless function) are left to the CPU kernel
    assert handler(fake, _Node(), [x_np[:2], y_np] + state, 0) is None


def test_hooks_are_consulted_when_primitives_are_made(hooks):
    cf = mx.compile(lambda x: mx.exp(x) + 1.0)
    cf(mx.array([1.0, 2.0]))
    assert _trace(cf).program.primitive.gpu is not None
    DYNAMIC_GPU_HANDLERS.clear()
    cf2 = mx.compile(lambda x: mx.exp(x) + 2.0)
    cf2(mx.array([1.0, 2.0]))
    prog = _trace(cf2).program
    assert prog.primitive.gpu is None
    assert all(s.prim.gpu is None for s in prog.steps if s.prim.name.startswith("fused("))


def test_step_runner_fills_multi_output_steps_and_frees_slots():
    """A multi-output step, a CPU kernel returning a NumPy scalar (converted to a 0-d
    array of the step's dtype), and slots released after their last reader."""
    f32 = mx.float32

    class St:
        def __init__(self, name, kernel, ins, outs, shapes, dtypes, frees=(), params=None, gpu=None):
            self.prim = types.SimpleNamespace(name=name, gpu=gpu)
            self.kernel, self.ins, self.outs, self.params = kernel, ins, outs, params
            self.shapes, self.dtypes = shapes, dtypes
            self.np_dtypes = tuple(d.np for d in dtypes)
            self.frees = frees

    seen = []

    def gpu_double(gpu, node, args, stream):
        seen.append((node._shape, node._dtype, node._params, node._stream, stream))
        return args[0] * 2

    steps = [
        St("split2", lambda x: (x[:1], x[1:]), (0,), (2, 3), [(1,), (2,)], [f32, f32]),
        St("double", None, (3,), (4,), [(2,)], [f32], frees=(3,), gpu=gpu_double,
           params={"k": 1}),
        St("total", lambda a, b, c: np.float64(a.sum() + b.sum() + c.sum()), (2, 4, 1), (5,),
           [()], [f32], frees=(4,)),
    ]
    consts = [(1, np.ones(1, np.float32))]
    runner = P.StepRunner(steps, 6, 1, consts, [5, 2])
    fake = FakeBackend()
    x = np.array([1.0, 2.0, 3.0], np.float32)
    total, first = runner.run(fake, [x], 3, "s")
    assert total.shape == () and total.dtype == np.float32 and float(total) == 1 + 10 + 1
    np.testing.assert_array_equal(first, [1.0])
    assert seen == [((2,), f32, {"k": 1}, "s", 3)]
    assert fake.gpu_runs == {"double": 1} and fake.fallbacks == {"split2": 1, "total": 1}


# ---------------------------------------------------------------------------------------
# on the GPU
# ---------------------------------------------------------------------------------------
@pytest.fixture
def on_gpu():
    """The GPU as default device, the compile hooks installed (whether or not the backend
    installs them itself) and the counters reset."""
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    saved = dict(DYNAMIC_GPU_HANDLERS)
    P.install()
    G.reset_counts()
    with mx.stream(mx.gpu):
        yield G.active_backend()
    DYNAMIC_GPU_HANDLERS.clear()
    DYNAMIC_GPU_HANDLERS.update(saved)


def _np_dtype(name):
    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def _cpu(f, *args):
    """f uncompiled, evaluated on the CPU; NumPy results (a list)."""
    with mx.stream(mx.cpu):
        out = f(*args)
        outs = list(out) if isinstance(out, (list, tuple)) else [out]
        mx.eval(outs)
        return [np.asarray(o) for o in outs]


def _gpu(f, *args):
    out = mx.compile(f)(*args)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    mx.eval(outs)
    return [np.asarray(o) for o in outs]


def _close(got, want, rtol=1e-5, atol=1e-6):
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
        if g.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64),
                                       rtol=rtol, atol=atol, equal_nan=True)


def _fused_runs(b):
    return sum(v for k, v in b.gpu_runs.items() if k.startswith("fused("))


def gelu(x):
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


@gpu
@needs_cc
def test_compiled_gelu_runs_one_fused_kernel_on_the_gpu(on_gpu):
    x = mx.array(np.random.default_rng(0).standard_normal((1000, 37)).astype(np.float32) * 4)
    _close(_gpu(gelu, x), _cpu(gelu, x))
    assert _fused_runs(on_gpu) == 1
    assert on_gpu.gpu_runs["compiled(gelu)"] == 1
    assert not [k for k in on_gpu.fallbacks if k.startswith(("fused(", "compiled("))]
    cf = mx.compile(gelu)
    for _ in range(3):
        mx.eval(cf(x))
    assert _fused_runs(on_gpu) == 4


@gpu
@needs_cc
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "uint8", "int64", "bool"])
def test_large_arrays_aligned_and_not(on_gpu, dt):
    # above fused.WIDE_ABOVE elements an aligned launch takes the wide-load kernel; an
    # offset view (x[1:]) the kernel for any alignment; a size not a multiple of MX_WORK
    # ends in the tail loop
    rng = np.random.default_rng(5)
    n = 3 * (1 << 16) + 3
    dtype = mx.bool_ if dt == "bool" else getattr(mx, dt)
    x = mx.array(rng.standard_normal(n + 1) > 0 if dt == "bool" else
                 (rng.standard_normal(n + 1) * 8).astype(_np_dtype(dt)), dtype=dtype)
    c = mx.array(np.ones((), _np_dtype(dt)) if dt != "bool" else np.array(True), dtype=dtype)

    def f(x, c):
        if dt == "bool":
            return mx.logical_and(x, c) != mx.logical_not(x)
        y = x * c + x
        return mx.maximum(y, y * 2) - c

    tol = {"bfloat16": 1e-2, "float16": 2e-3}.get(dt, 1e-6)
    for label, v in (("aligned", x[:n]), ("offset", x[1:]), ("whole", x)):
        _close(_gpu(f, v, c), _cpu(f, v, c), rtol=tol, atol=tol)
    assert _fused_runs(on_gpu) >= 3


@gpu
@needs_cc
def test_chains_with_broadcasting_and_scalars(on_gpu):
    rng = np.random.default_rng(1)
    a = mx.array(rng.standard_normal((3, 1)).astype(np.float32))
    b = mx.array(rng.standard_normal((1, 4)).astype(np.float32))
    c = mx.array(np.float32(0.5))

    def f(a, b, c):
        t = mx.exp(a) * 2.0 - b / 3.0          # broadcast: (3,4) from (3,1) and (1,4)
        u = mx.maximum(t, c) + mx.sigmoid(t) * c
        v = mx.where(u > 1.0, u, -u)
        return mx.log1p(mx.abs(v)) + (v * 0.25) ** 2

    _close(_gpu(f, a, b, c), _cpu(f, a, b, c))
    x = mx.array(rng.standard_normal((64, 64)).astype(np.float32))
    _close(_gpu(lambda x, c: mx.sqrt(mx.abs(x) + c) * x - 1.5, x, c),
           _cpu(lambda x, c: mx.sqrt(mx.abs(x) + c) * x - 1.5, x, c))
    assert _fused_runs(on_gpu) >= 2


@gpu
@needs_cc
@pytest.mark.parametrize("dt", ["bool", "uint8", "int32", "int64", "float16", "bfloat16",
                                "float32", "float64"])
def test_dtypes(on_gpu, dt):
    rng = np.random.default_rng(2)
    x_np = (rng.standard_normal((5, 33)) * 40).astype(_np_dtype(dt)) if dt != "bool" else \
        rng.random((5, 33)) > 0.5
    y_np = (rng.standard_normal((5, 33)) * 40).astype(_np_dtype(dt)) if dt != "bool" else \
        rng.random((5, 33)) > 0.3
    dtype = mx.bool_ if dt == "bool" else getattr(mx, dt)
    x = mx.array(x_np, dtype=dtype)
    y = mx.array(y_np, dtype=dtype)
    if dt == "bool":
        def f(x, y):
            return mx.logical_or(mx.logical_and(x, y), mx.logical_not(y)) != x
    elif dt in ("uint8", "int32", "int64"):
        def f(x, y):
            z = mx.maximum(x * 3 + y, y) // 7 - (x % 5)
            return mx.where(z > 2, z & 12, z << 1), (z ^ y).astype(mx.float32) * 0.5
    else:
        def f(x, y):
            z = mx.tanh(x * 0.05) * y + mx.exp(-mx.abs(y) * 0.01)
            return mx.where(z > 0, z, z * 0.1), (z > 1).astype(mx.int32) + 1
    tol = {"float16": 2e-3, "bfloat16": 2e-2}.get(dt, 1e-5)
    _close(_gpu(f, x, y), _cpu(f, x, y), rtol=tol, atol=tol)
    if dt in fusion.FUSED_DTYPES:           # half types too: the GPU renders them
        assert _fused_runs(on_gpu) >= 1


@gpu
@needs_cc
def test_reductions_and_matmul_inside_compile(on_gpu):
    rng = np.random.default_rng(3)
    w = mx.array(rng.standard_normal((32, 16)).astype(np.float32))
    x = mx.array(rng.standard_normal((8, 32)).astype(np.float32))

    def f(x, w):
        h = gelu(x @ w + 0.1)
        m = mx.mean(h, axis=-1, keepdims=True)
        s = mx.sum((h - m) ** 2, axis=-1, keepdims=True)
        return (h - m) / mx.sqrt(s + 1e-5), mx.max(h)

    _close(_gpu(f, x, w), _cpu(f, x, w), rtol=1e-4, atol=1e-5)
    assert on_gpu.gpu_runs["matmul"] >= 1 or on_gpu.gpu_runs["addmm"] >= 1
    assert on_gpu.gpu_runs["sum"] >= 1 and on_gpu.gpu_runs["mean"] >= 1
    assert _fused_runs(on_gpu) >= 1


@gpu
@needs_cc
def test_a_step_without_a_gpu_kernel_in_the_middle(on_gpu):
    x = mx.array(np.random.default_rng(4).standard_normal((6, 50)).astype(np.float32))

    def f(x):
        a = mx.exp(x * 0.5) + 1.0
        sq = a[:, :6] + 4.0 * mx.eye(6)
        b = mx.linalg.inv(sq)                    # CPU: waits for the fused kernel first
        return mx.tanh(b * 0.01) * 2.0 - sq, mx.sort(a, axis=0)

    _close(_gpu(f, x), _cpu(f, x))
    assert on_gpu.fallbacks["linalg_inv"] >= 1
    assert _fused_runs(on_gpu) >= 2


@gpu
@needs_cc
def test_non_contiguous_leaves_and_round_in_a_group(on_gpu):
    rng = np.random.default_rng(5)
    x = mx.array(rng.standard_normal((40, 30)).astype(np.float32))

    def f(x):
        t = mx.transpose(x)                      # a strided view into a fused group
        return mx.exp(t * 0.1) + t * 2.0

    _close(_gpu(f, x), _cpu(f, x))

    def g(x):                                    # round has no fused form: one by one
        return mx.round(x * 3.0 + 0.25) * 0.5 - 1.0

    _close(_gpu(g, x), _cpu(g, x))
    assert on_gpu.gpu_runs["round"] >= 1 and not on_gpu.fallbacks["round"]


@gpu
@needs_cc
def test_grad_of_a_compiled_function(on_gpu):
    x = mx.array(np.random.default_rng(6).standard_normal((17, 9)).astype(np.float32))

    def loss(x):
        return mx.sum(gelu(x) * 2.0 + mx.sigmoid(x))

    got = np.asarray(mx.grad(mx.compile(loss))(x))
    with mx.stream(mx.cpu):
        want = np.asarray(mx.grad(loss)(x))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    g2 = mx.compile(mx.grad(loss))
    np.testing.assert_allclose(np.asarray(g2(x)), want, rtol=1e-4, atol=1e-6)
    assert _fused_runs(on_gpu) >= 1


@gpu
@needs_cc
def test_shapeless_calls_with_new_shapes(on_gpu):
    cf = mx.compile(lambda x: mx.exp(x) * 2.0 + 1.0, shapeless=True)
    for n in (10, 23):
        x = mx.array(np.linspace(-1, 1, n, dtype=np.float32))
        np.testing.assert_allclose(np.asarray(cf(x)), np.exp(np.linspace(-1, 1, n)) * 2 + 1,
                                   rtol=1e-6)
