"""The GPU backend: shim, shader translation, scheduler hooks (everywhere) and GPU kernels
against the CPU kernels (tests marked gpu, on a machine with a GPU).

The GPU tests run every GPU-native primitive on stream=mx.gpu and the same primitive on
stream=mx.cpu over one set of inputs, for every dtype the kernel supports and for odd
shapes (empty, size 1, 0-d, non-contiguous, broadcast), and compare.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K
from mx.backend.gpu import translate as T
from mx.core import _memory, _scheduler
from mx.core.primitives import REGISTRY

HAS_GPU = G.is_available()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def np_dtype(name):
    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def mx_dtype(name):
    return mx.bool_ if name == "bool" else getattr(mx, name)


# ---------------------------------------------------------------------------------------
# the shim without a GPU
# ---------------------------------------------------------------------------------------
def test_shim_module_builds_and_loads():
    ffi, lib = G.shim.load_cuda()
    assert lib.MX_OK == 0 and lib.MX_OUT_OF_MEMORY == -3
    assert lib.MX_GEMM_BF16 == 2


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_no_gpu_is_reported_cleanly():
    assert mx.cuda.is_available() is False
    assert mx.metal.is_available() is False
    assert mx.is_available(mx.gpu) is False
    assert mx.default_device() == mx.cpu
    assert G.unavailable_reason()
    with pytest.raises(ValueError, match="not available"):
        mx.device_info(mx.gpu)
    with pytest.raises(ValueError, match="not available"):
        mx.add(mx.array(1), 1, stream=mx.gpu)


@pytest.mark.skipif(HAS_GPU, reason="this machine has a GPU")
def test_shim_calls_without_a_device_fail_with_a_message():
    ffi, lib = G.shim.load_cuda()
    if os.environ.get("MX_CUDA_DRIVER"):
        pytest.skip("a driver was named explicitly")
    assert lib.mx_device_count() == 0
    msg = ffi.string(lib.mx_last_error()).decode()
    assert "CUDA" in msg or "cuInit" in msg
    assert lib.mx_device_open(0) == ffi.NULL
    assert lib.mx_host_alloc(64) == ffi.NULL
    assert "no GPU device is open" in ffi.string(lib.mx_last_error()).decode()
    lib.mx_host_free(ffi.NULL)
    off = ffi.new("uint64_t *")
    assert lib.mx_buffer_find(ffi.NULL, ffi.cast("void *", 4096), off) == ffi.NULL
    assert lib.mx_library_new(ffi.NULL, b"", b"", ffi.NULL, 0) == ffi.NULL
    assert "bad arguments" in ffi.string(lib.mx_last_error()).decode()
    assert lib.mx_dispatch(ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, ffi.NULL, 0, 0) == lib.MX_INVALID
    assert lib.mx_gemm(ffi.NULL, ffi.NULL) == lib.MX_INVALID


def test_env_switch_keeps_the_backend_off():
    code = "import mx.core as mx; from mx.backend import gpu; print(mx.cuda.is_available(), gpu.unavailable_reason())"
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, MX_GPU="0"),
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False disabled by MX_GPU=0"


# ---------------------------------------------------------------------------------------
# allocator and scheduler hooks
# ---------------------------------------------------------------------------------------
def test_backing_allocator_hook_counts_and_restores():
    libc = ctypes.CDLL(None)
    malloc = ctypes.cast(libc.malloc, ctypes.c_void_p).value
    free = ctypes.cast(libc.free, ctypes.c_void_p).value
    prev = G.active_backend().shim.allocator_addresses() if HAS_GPU else (0, 0)
    before = mx.get_active_memory()
    try:
        _memory.set_backing_allocator(malloc, free)
        assert _memory.is_backed()
        a = mx.array(np.arange(100000, dtype=np.float32))
        b = mx.add(a, a, stream=mx.cpu)
        mx.eval(b)
        assert mx.get_active_memory() >= before + 2 * 400000
        np.testing.assert_array_equal(np.asarray(b), 2 * np.arange(100000, dtype=np.float32))
        _memory.set_backing_allocator(0, 0)
        assert not _memory.is_backed()
        c = mx.multiply(b, 2, stream=mx.cpu)      # a backed block freed after unsetting
        del a, b
        mx.eval(c)
        assert float(np.asarray(c)[3]) == 12.0
    finally:
        _memory.set_backing_allocator(*prev)


def _restore_dispatch():
    if HAS_GPU:
        b = G.active_backend()
        _scheduler.set_dispatch(b.dispatch, b.finish)
    else:
        _scheduler.set_dispatch(None)


def test_dispatch_hook_sees_every_node_and_finish_runs_once():
    seen, finished = [], []

    def dispatch(node, prim, args):
        seen.append((prim.name, node._stream))
        if prim.name == "multiply":
            return np.full(node._shape, 7, node._dtype.np)
        return None

    try:
        _scheduler.set_dispatch(dispatch, lambda: finished.append(1))
        x = mx.array([1.0, 2.0])
        y = mx.multiply(mx.add(x, 1, stream=mx.cpu), 3)
        mx.eval(y)
    finally:
        _restore_dispatch()
    assert [s[0] for s in seen] == ["add", "multiply"]
    assert seen[0][1] == mx.cpu and seen[1][1] is None
    assert finished == [1]
    np.testing.assert_array_equal(np.asarray(y), [7.0, 7.0])


def test_finish_runs_when_a_kernel_raises():
    finished = []

    def dispatch(node, prim, args):
        if prim.name == "exp":
            raise RuntimeError("kernel failed")
        return None

    try:
        _scheduler.set_dispatch(dispatch, lambda: finished.append(1))
        with pytest.raises(RuntimeError, match="kernel failed"):
            mx.eval(mx.exp(mx.add(mx.array([1.0]), 1.0)))
    finally:
        _restore_dispatch()
    assert finished == [1]


# ---------------------------------------------------------------------------------------
# shaders: translation and the Metal-view syntax check
# ---------------------------------------------------------------------------------------
def test_translation_rewrites_kernel_signatures():
    src = T.to_cuda(
        "template <typename T>\n[[kernel]] void k(device const T* a [[buffer(0)]],\n"
        "  device T* out [[buffer(1)]], constant const size_t& n [[buffer(2)]],\n"
        "  uint2 i [[thread_position_in_grid]], uint2 g [[threads_per_grid]]) {\n"
        "  out[i.x] = a[i.x];\n}\n")
    assert "__global__ void k(" in src
    assert "const T* __restrict__ a" in src and "T* __restrict__ out" in src
    assert "const size_t n" in src
    assert "const uint2 i = mx_thread_position_in_grid_uint2();" in src
    assert "const uint2 g = mx_threads_per_grid_uint2();" in src
    assert "[[" not in src


@pytest.mark.parametrize("bad, msg", [
    ("[[kernel]] void k(device float* a [[texture(0)]]) {}", "not in mx's MSL subset"),
    ("[[kernel]] void k(device float a [[buffer(0)]]) {}", "must be a pointer"),
    ("[[kernel]] void k(float* a [[buffer(0)]]) {}", "needs device or constant"),
    ("[[kernel]] void k(constant float n [[buffer(0)]]) {}", "must be a reference"),
    ("[[kernel]] void k(int i [[thread_position_in_grid]]) {}", "uint|uint2|uint3"),
    ("[[kernel]] void k(device float* a) {}", "has no \\[\\[attribute\\]\\]"),
])
def test_translation_rejects_what_is_outside_the_subset(bad, msg):
    with pytest.raises(T.TranslationError, match=msg):
        T.to_cuda(bad)


def test_host_names_and_sources():
    assert T.host_name("unary_v<float, bool, IsNan>") == "unary_v_float_bool_IsNan"
    src = T.metal_source("unary.metal", ["unary_v<float, float, Exp>"])
    assert src.count("#include <metal_stdlib>") == 1 and '#include "' not in src
    assert 'host_name("unary_v_float_float_Exp")' in src
    cu = T.cuda_source("binary.metal")
    assert "#include <cuda_fp16.h>" in cu and "metal_stdlib" not in cu
    assert cu.count("__global__") == 4


def _cxx():
    for c in ("clang++", "g++", "c++"):
        if shutil.which(c):
            return c
    return None


@pytest.mark.parametrize("fname", T.shader_files())
def test_metal_sources_parse_as_cpp(fname):
    """Every .metal file, with every Metal-typed kernel instance, through a C++ compiler."""
    cxx = _cxx()
    if cxx is None:
        pytest.skip("no C++ compiler")
    insts = [i for f, ins in K.groups(K.METAL_TYPES).values() if f == fname for i in ins]
    src = T.cpp_check_source(fname, insts)
    r = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-Wno-attributes", "-x", "c++", "-"],
                       input=src, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[:4000]


def test_cpp_check_catches_kernel_errors():
    cxx = _cxx()
    if cxx is None:
        pytest.skip("no C++ compiler")
    src = T.cpp_check_source("binary.metal", ["binary_vv<float, float, BitwiseAnd>"])
    r = subprocess.run([cxx, "-std=c++17", "-fsyntax-only", "-x", "c++", "-"], input=src,
                       capture_output=True, text=True, timeout=120)
    # g++ names the operator; clang++ says the operands are invalid
    assert r.returncode != 0
    assert "operator&" in r.stderr or "invalid operands to binary expression" in r.stderr


# ---------------------------------------------------------------------------------------
# which primitives run on the GPU (docs/gpu.md keeps the list; it may only shrink)
# ---------------------------------------------------------------------------------------
def _doc_list(heading):
    with open(os.path.join(ROOT, "docs", "gpu.md")) as f:
        text = f.read()
    block = text.split(heading, 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"`([a-z0-9_]+)`", block))


def test_docs_list_the_gpu_native_primitives():
    assert _doc_list("## GPU-native primitives") == set(G.native_primitives())


def test_fallback_list_only_shrinks():
    documented = _doc_list("## Primitives that run on the CPU")
    actual = set(REGISTRY) - set(G.native_primitives())
    new = sorted(actual - documented)
    assert not new, (f"primitives without a GPU kernel that docs/gpu.md does not list: {new}; "
                     "add them (python -m mx.backend.gpu prints the list) or give them kernels")
    assert len(actual) <= len(documented)


# ---------------------------------------------------------------------------------------
# GPU: kernels against the CPU
# ---------------------------------------------------------------------------------------
SHAPES = [(), (0,), (1,), (7,), (3, 5), (2, 3, 4)]

# input ranges keeping each function in its domain (and away from overflow in float16)
DOMAIN = {"log": (0.1, 10), "log2": (0.1, 10), "log10": (0.1, 10), "sqrt": (0.1, 10),
          "rsqrt": (0.1, 10), "log1p": (-0.9, 10), "arcsin": (-0.99, 0.99),
          "arccos": (-0.99, 0.99), "arctanh": (-0.99, 0.99), "erfinv": (-0.99, 0.99),
          "arccosh": (1.1, 10), "exp": (-5, 5), "expm1": (-5, 5), "sinh": (-5, 5),
          "cosh": (-5, 5), "tan": (-1.2, 1.2), "reciprocal": (0.5, 5)}


def make(dtype, shape, rng, lo=-3.0, hi=3.0):
    """Random NumPy data of dtype (name) and shape."""
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith("uint"):
        return rng.integers(0, 100, shape).astype(dtype)
    if dtype.startswith("int"):
        return rng.integers(-50, 50, shape).astype(dtype)
    return rng.uniform(lo, hi, shape).astype(np_dtype(dtype))


def tolerance(dtype):
    return {"float16": (3e-3, 1e-4), "bfloat16": (2.4e-2, 1e-3), "float32": (1e-5, 1e-6),
            "float64": (1e-12, 1e-14)}.get(dtype, (0, 0))


def assert_close(got, want, dtype, what):
    g = np.asarray(got)
    w = np.asarray(want)
    assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=what)
        return
    rtol, atol = tolerance(dtype if w.dtype.name == dtype else w.dtype.name)
    np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True, err_msg=what)


def arr(x_np):
    """An mx array of x_np's own dtype (mx.array alone narrows float64 to float32)."""
    x_np = np.asarray(x_np)
    return mx.array(x_np, dtype=mx_dtype(x_np.dtype.name))


def variants(x_np):
    """(label, mx array) for a NumPy input: contiguous, and a non-contiguous view of the
    same values (a transposed copy transposed back, or a strided slice)."""
    out = [("contiguous", arr(x_np))]
    if x_np.ndim >= 2:
        t = arr(np.ascontiguousarray(np.swapaxes(x_np, -1, -2)))
        out.append(("transposed", mx.swapaxes(t, -1, -2, stream=mx.cpu)))
    elif x_np.ndim == 1 and x_np.size > 1:
        wide = np.repeat(x_np, 2)
        out.append(("strided", arr(wide)[::2]))
    return out


gpu = pytest.mark.gpu


def both(fn, *inputs):
    """(GPU result, CPU result) of fn(*inputs, stream) as NumPy arrays."""
    g = fn(*inputs, mx.gpu)
    c = fn(*inputs, mx.cpu)
    mx.eval(g, c)
    return np.asarray(g), np.asarray(c)


def ran_natively(names, what=""):
    """The primitives `names` ran GPU kernels and never fell back to the CPU (counts since
    the last G.reset_counts())."""
    fb = G.fallback_counts()
    assert not any(fb.get(n) for n in names), (what, fb)
    runs = G.active_backend().gpu_runs
    assert all(runs[n] for n in names), (what, dict(runs))


@pytest.fixture(scope="module")
def warm():
    """Compile every kernel group once, in parallel (NVRTC), before the comparisons."""
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    G.active_backend().kernels.warm_up(threads=min(16, os.cpu_count() or 4))
    return G.active_backend()


@gpu
def test_gpu_is_the_default_device_and_reports_itself():
    code = "import mx.core as mx; print(mx.default_device(), mx.cuda.is_available())"
    for env, want in [({}, "Device(gpu, 0) True"), ({"MX_DEFAULT_DEVICE": "cpu"}, "Device(cpu, 0) True")]:
        e = {k: v for k, v in os.environ.items() if k != "MX_DEFAULT_DEVICE"}
        out = subprocess.run([sys.executable, "-c", code], env=dict(e, **env), capture_output=True,
                             text=True, cwd=ROOT, timeout=120)
        assert out.stdout.strip() == want, out.stderr
    assert mx.cuda.is_available()
    info = mx.device_info(mx.gpu)
    assert info["memory_size"] > 1 << 30 and info["device_name"]
    assert info["architecture"].startswith("sm_")
    assert mx.device_count(mx.gpu) >= 1


@gpu
@pytest.mark.parametrize("name", sorted(K.UNARY))
def test_unary_matches_cpu(warm, name):
    op, types = K.UNARY[name]
    fn = getattr(mx, name)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    lo, hi = DOMAIN.get(name, (-3.0, 3.0))
    for dt in types:
        for shape in SHAPES:
            for label, x in variants(make(dt, shape, rng, lo, hi)):
                g = fn(x, stream=mx.gpu)
                c = fn(x, stream=mx.cpu)
                assert_close(g, c, dt, f"{name} {dt} {shape} {label}")


@gpu
def test_float_special_values(warm):
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 2.5], np.float64)
    for dt in K.FLOATS:
        x = arr(vals.astype(np_dtype(dt)))
        for name in ("isnan", "isinf", "isfinite", "isposinf", "isneginf", "abs", "sign",
                     "floor", "ceil", "negative", "square", "exp", "sigmoid", "erf", "tanh"):
            fn = getattr(mx, name)
            assert_close(fn(x, stream=mx.gpu), fn(x, stream=mx.cpu), dt, f"{name} {dt} special")
        for name in ("maximum", "minimum", "add", "multiply", "divide", "floor_divide",
                     "remainder", "logaddexp", "power", "equal", "less", "arctan2"):
            fn = getattr(mx, name)
            y = x[::-1]
            assert_close(fn(x, y, stream=mx.gpu), fn(x, y, stream=mx.cpu), dt, f"{name} {dt} special")


def _binary_inputs(name, dt, shape, rng):
    if name in ("left_shift", "right_shift"):
        bits = np.dtype(dt).itemsize * 8
        a = make(dt, shape, rng)
        lo = -2 if dt.startswith("int") else 0
        b = rng.integers(lo, bits + 3, shape).astype(dt)
        return a, b
    if name == "power" and dt not in K.FLOATS:
        a = rng.integers(-3 if dt.startswith("int") else 0, 4, shape).astype(dt)
        b = rng.integers(-2 if dt.startswith("int") else 0, 6, shape).astype(dt)
        return (a.astype(bool), b.astype(bool)) if dt == "bool" else (a, b)
    if name == "power":
        return make(dt, shape, rng, 0.1, 3), make(dt, shape, rng, -2, 2)
    a, b = make(dt, shape, rng), make(dt, shape, rng)
    if name in ("floor_divide", "remainder") and b.size:
        b.flat[0] = 0      # division by zero: 0 for integers, inf/nan for floats
    return a, b


@gpu
@pytest.mark.parametrize("name", sorted(K.BINARY))
def test_binary_matches_cpu(warm, name):
    op, types = K.BINARY[name]
    fn = getattr(mx, name)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for dt in types:
        for shape in SHAPES:
            a_np, b_np = _binary_inputs(name, dt, shape, rng)
            for (la, a), (lb, b) in zip(variants(a_np), variants(b_np)[::-1]):
                assert_close(fn(a, b, stream=mx.gpu), fn(a, b, stream=mx.cpu), dt,
                             f"{name} {dt} {shape} {la}/{lb}")
        # broadcasting: a column against a row, a scalar array, a Python scalar
        a_np, b_np = _binary_inputs(name, dt, (3, 4), rng)
        pairs = [(arr(a_np[:, :1]), arr(b_np[:1, :])),
                 (arr(a_np[0, 0]), arr(b_np)),
                 (arr(a_np), arr(b_np[1, 2]))]
        for a, b in pairs:
            assert_close(fn(a, b, stream=mx.gpu), fn(a, b, stream=mx.cpu), dt,
                         f"{name} {dt} broadcast {a.shape} {b.shape}")
        if dt in ("int32", "float32") and name not in ("left_shift", "right_shift"):
            x = arr(a_np)
            assert_close(fn(x, 2, stream=mx.gpu), fn(x, 2, stream=mx.cpu), dt, f"{name} {dt} scalar")


@gpu
def test_astype_every_pair(warm):
    rng = np.random.default_rng(5)
    for t in K.REAL:
        base = make(t, (3, 5), rng, 0.0, 100.0)   # non-negative: float -> unsigned is defined
        for label, x in variants(base):
            for u in K.REAL:
                g = x.astype(mx_dtype(u), stream=mx.gpu)
                c = x.astype(mx_dtype(u), stream=mx.cpu)
                assert_close(g, c, u, f"astype {t}->{u} {label}")


@gpu
@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "float64"])
def test_matmul_matches_cpu(warm, dt):
    rng = np.random.default_rng(7)
    rtol = {"float32": 2e-4, "float16": 1e-2, "bfloat16": 5e-2, "float64": 1e-10}[dt]
    cases = [((1, 1), (1, 1)), ((3, 5), (5, 4)), ((64, 32), (32, 48)), ((129, 257), (257, 63)),
             ((256, 256), (256, 256)), ((2, 5, 3), (3, 4)), ((2, 1, 5, 3), (1, 3, 3, 4)),
             ((3,), (3, 4)), ((5, 3), (3,)), ((3,), (3,)), ((0, 3), (3, 4)), ((5, 0), (0, 4)),
             ((4, 5, 3), (4, 3, 2))]
    for sa, sb in cases:
        a_np = make(dt, sa, rng, -1, 1)
        b_np = make(dt, sb, rng, -1, 1)
        for (la, a), (lb, b) in [(x, y) for x in variants(a_np) for y in variants(b_np)]:
            g = mx.matmul(a, b, stream=mx.gpu)
            c = mx.matmul(a, b, stream=mx.cpu)
            gn, cn = np.asarray(g).astype(np.float64), np.asarray(c).astype(np.float64)
            assert g.shape == c.shape and g.dtype == c.dtype
            scale = np.abs(a_np).astype(np.float64).max(initial=1) * max(sa[-1], 1)
            np.testing.assert_allclose(gn, cn, rtol=rtol, atol=rtol * scale,
                                       err_msg=f"matmul {dt} {sa}x{sb} {la}/{lb}")


@gpu
def test_addmm_matches_cpu(warm):
    rng = np.random.default_rng(8)
    for dt in ("float32", "float16"):
        c = arr(make(dt, (4,), rng))
        a = arr(make(dt, (5, 3), rng))
        b = arr(make(dt, (3, 4), rng))
        for alpha, beta in [(1.0, 1.0), (2.0, 0.5), (1.0, 0.0)]:
            g = mx.addmm(c, a, b, alpha=alpha, beta=beta, stream=mx.gpu)
            cc = mx.addmm(c, a, b, alpha=alpha, beta=beta, stream=mx.cpu)
            np.testing.assert_allclose(np.asarray(g).astype(np.float64), np.asarray(cc).astype(np.float64),
                                       rtol=1e-2 if dt == "float16" else 1e-5, atol=1e-2)


# shapes and axes of the reduction tests: every single axis, every subset of two, all
REDUCE_SHAPES = [(), (0,), (1,), (7,), (1, 1), (3, 5), (2, 3, 4), (3, 0, 2), (5, 40), (2, 3, 4, 5)]


def _reduce_axes(ndim):
    out = [None]
    out += [i for i in range(ndim)]
    out += [(i, j) for i in range(ndim) for j in range(i + 1, ndim)]
    if ndim >= 3:
        out += [(0, ndim - 1, 1), -1]
    return out


def _reduce_input(name, dt, shape, rng):
    if name == "prod":
        x = make(dt, shape, rng, 0.5, 1.5)
        return rng.integers(-3, 4, shape).astype(dt) if dt in ("int32",) else x
    x = make(dt, shape, rng)
    if name in ("all", "any"):
        keep = rng.random(shape) > 0.3          # zeros in places: both outcomes happen
        x = (x * keep).astype(x.dtype) if dt != "bool" else x & keep
    return x


def assert_reduction_close(got, want, dt, n_red, what):
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
    if w.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w, err_msg=what)
        return
    rtol, atol = tolerance(dt if dt in K.FLOATS else "float32")
    # float32 accumulation in another order: a few ulp of the sum of magnitudes
    atol = max(atol, 1e-6 * max(n_red, 1))
    np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=rtol, atol=atol,
                               equal_nan=True, err_msg=what)


@gpu
@pytest.mark.parametrize("name", sorted(K.REDUCE))
def test_reductions_match_cpu(warm, name):
    op, table = K.REDUCE[name]
    fn = getattr(mx, name)
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    G.reset_counts()
    for dt in table:
        for shape in REDUCE_SHAPES:
            x_np = _reduce_input(name, dt, shape, rng)
            for axis in _reduce_axes(len(shape)):
                axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
                n_red = int(np.prod([shape[a] for a in axes], dtype=np.int64))
                if name in ("max", "min") and n_red == 0:
                    continue                        # an error on both devices
                for keepdims in (False, True):
                    for label, x in variants(x_np):
                        g = fn(x, axis=axis, keepdims=keepdims, stream=mx.gpu)
                        c = fn(x, axis=axis, keepdims=keepdims, stream=mx.cpu)
                        assert_reduction_close(g, c, dt, n_red,
                                               f"{name} {dt} {shape} axis={axis} keepdims={keepdims} {label}")
    assert not G.fallback_counts().get(name), G.fallback_counts()
    assert G.active_backend().gpu_runs[name] > 0


@gpu
def test_reductions_of_special_values(warm):
    vals = np.array([1.0, np.nan, -np.inf, 2.0, np.inf, -0.0, 3.0, -1.0], np.float64)
    for dt in ("float32", "float16", "bfloat16"):
        x = arr(vals.astype(np_dtype(dt)).reshape(2, 4))
        for name in ("sum", "prod", "max", "min", "mean", "all", "any"):
            fn = getattr(mx, name)
            for axis in (None, 0, 1):
                assert_reduction_close(fn(x, axis=axis, stream=mx.gpu), fn(x, axis=axis, stream=mx.cpu),
                                       dt, 8, f"{name} {dt} special axis={axis}")
    big = arr(np.array([2**31 - 1, 1, 5], np.int32))          # int32 sums wrap on both
    assert_reduction_close(mx.sum(big, stream=mx.gpu), mx.sum(big, stream=mx.cpu), "int32", 3, "wrap")


@gpu
@pytest.mark.parametrize("shape, axis", [((1 << 20,), None), ((3, 100003), 1), ((100003, 3), 0),
                                         ((64, 4097), None), ((2, 50000, 3), (0, 1)),
                                         ((4096, 300), 1), ((300, 4096), 0)])
def test_large_reductions_use_partials(warm, shape, axis):
    """Few outputs of many elements: several threadgroups an output and a second pass."""
    rng = np.random.default_rng(11)
    x_np = rng.uniform(-1, 1, shape).astype(np.float32)
    x = arr(x_np)
    axes = range(len(shape)) if axis is None else np.atleast_1d(axis)
    n_red = int(np.prod([shape[a] for a in axes]))
    for name in ("sum", "mean", "max", "min", "all", "any"):
        fn = getattr(mx, name)
        assert_reduction_close(fn(x, axis=axis, stream=mx.gpu), fn(x, axis=axis, stream=mx.cpu),
                               "float32", n_red, f"{name} {shape} axis={axis}")
    xi = arr(rng.integers(-1000, 1000, shape).astype(np.int32))
    for name in ("sum", "mean", "max", "min"):
        fn = getattr(mx, name)
        assert_reduction_close(fn(xi, axis=axis, stream=mx.gpu), fn(xi, axis=axis, stream=mx.cpu),
                               "int32", n_red, f"{name} int32 {shape} axis={axis}")


@gpu
@pytest.mark.parametrize("dt", ["float32", "float16", "int64", "uint8", "bool"])
def test_wide_load_reductions(warm, dt):
    """Contiguous reduced runs are read MX_WORK elements a load when the data and every
    output's start are aligned: aligned and offset views, run lengths that are and are not
    multiples of MX_WORK, one output (partials) and many."""
    rng = np.random.default_rng(12)
    base = arr(make(dt, (1 << 18) + 7, rng, -1, 1))
    for label, x in (("aligned", base[:1 << 18]), ("offset", base[1:]),
                     ("odd", base[:(1 << 18) + 5])):
        for name in ("sum", "max", "any"):
            fn = getattr(mx, name)
            assert_reduction_close(fn(x, stream=mx.gpu), fn(x, stream=mx.cpu), dt, x.size,
                                   f"{name} {dt} {label}")
    for shape in ((64, 4096), (64, 4093), (3, 100003)):
        x = arr(make(dt, shape, rng, -1, 1))
        for view in (x, x[:, 3:]):
            for name in ("sum", "min"):
                fn = getattr(mx, name)
                assert_reduction_close(fn(view, axis=1, stream=mx.gpu),
                                       fn(view, axis=1, stream=mx.cpu), dt, view.shape[1],
                                       f"{name} {dt} {shape} {view.shape}")


@gpu
def test_reduction_dtypes_without_a_kernel_fall_back(warm):
    # every real dtype has a reduction kernel; complex64 has none
    G.reset_counts()
    x_np = (np.arange(12) + 1j * np.arange(12)[::-1]).astype(np.complex64).reshape(3, 4)
    g = mx.sum(arr(x_np), axis=1, stream=mx.gpu)
    np.testing.assert_array_equal(np.asarray(g), x_np.sum(axis=1))
    assert G.fallback_counts().get("sum") == 1
    assert all(t in K.REDUCE["sum"][1] for t in K.REAL)


@gpu
def test_chains_streams_and_async(warm):
    x = mx.array(np.arange(1000, dtype=np.float32))
    y = x
    for i in range(200):
        y = y + 1.0
    np.testing.assert_array_equal(np.asarray(y), np.arange(1000, dtype=np.float32) + 200)
    s2 = mx.new_stream(mx.gpu)
    a = mx.multiply(x, 2.0)
    b = mx.add(a, 1.0, stream=s2)
    c = mx.subtract(b, a)                # default stream again: waits for s2
    np.testing.assert_array_equal(np.asarray(c), np.ones(1000, np.float32))
    d = mx.exp(x * 0.001)
    mx.async_eval(d)
    np.testing.assert_allclose(np.asarray(d), np.exp(np.arange(1000) * 0.001), rtol=1e-6)
    # a CPU op reading a GPU result, and a GPU op reading a CPU result
    e = mx.sum(mx.sqrt(x), stream=mx.cpu)
    f = mx.sqrt(mx.sum(x, stream=mx.cpu))
    np.testing.assert_allclose(e.item(), np.sqrt(np.arange(1000)).sum(), rtol=1e-5)
    np.testing.assert_allclose(f.item(), np.sqrt(499500.0), rtol=1e-6)


@gpu
def test_native_primitives_do_not_fall_back(warm):
    G.reset_counts()
    x = mx.array(np.random.default_rng(1).random((8, 8)).astype(np.float32))
    y = mx.tanh(x) * 2 + mx.exp(x) - x @ x.T
    z = (y > 0).astype(mx.float16)
    inv = mx.linalg.inv(y + 8 * mx.eye(8))
    mx.eval(z, mx.sum(y), inv)
    counts = G.fallback_counts()
    assert not set(counts) & set(G.native_primitives()), counts
    assert counts.get("linalg_inv") == 1                  # (no GPU kernel yet)
    assert G.active_backend().gpu_runs["matmul"] == 1
    assert G.active_backend().gpu_runs["sum"] == 1


@gpu
def test_memory_api_reports_gpu_buffers(warm):
    mx.eval(mx.zeros((1,)))
    before = mx.get_active_memory()
    mx.reset_peak_memory()
    a = mx.exp(mx.zeros((1 << 20,), mx.float32))
    mx.eval(a)
    assert mx.get_active_memory() >= before + 4 * (1 << 20)
    assert mx.get_peak_memory() >= 4 * (1 << 20)
    pool = G.active_backend().shim.pool_stats()
    assert pool["reserved"] >= 4 * (1 << 20) and pool["limit"] <= mx.device_info()["memory_size"]
    del a
    assert mx.get_active_memory() <= before + 4096


@gpu
def test_out_of_gpu_memory_raises_memory_error(warm):
    shim = G.active_backend().shim
    old = shim.lib.mx_pool_set_limit(shim.pool_stats()["reserved"] + (64 << 20))
    try:
        with pytest.raises(MemoryError, match="Unable to allocate|GPU memory"):
            mx.eval(mx.exp(mx.zeros((1 << 28,), mx.float32)))
    finally:
        shim.lib.mx_pool_set_limit(old)
    x = mx.exp(mx.zeros((4,)))        # still working afterwards
    np.testing.assert_array_equal(np.asarray(x), np.ones(4, np.float32))


@gpu
def test_more_than_2_31_elements(warm):
    """64-bit indexing, and grids of more than 2^30 threads (a second grid dimension)."""
    free, _ = G.active_backend().shim.memory()
    if free < 16 << 30:
        pytest.skip("needs 16 GiB of free GPU memory")
    m = (1 << 30) + 3
    x = mx.zeros((2, m), mx.uint8)
    y = mx.add(x, mx.array(3, mx.uint8), stream=mx.gpu)              # contiguous kernel
    z = mx.add(x, mx.ones((1, m), mx.uint8), stream=mx.gpu)          # strided: 2^31 + 6 threads
    mx.eval(y, z)
    yn, zn = np.asarray(y), np.asarray(z)
    for i, j in [(0, 0), (0, m - 1), (1, 0), (1, (1 << 30) - 7), (1, m - 1)]:
        assert yn[i, j] == 3 and zn[i, j] == 1, (i, j)
    del x, y, z, yn, zn


_FORK = """
import multiprocessing as mp, numpy as np, mx.core as mx
x = mx.exp(mx.array(np.zeros(1000, np.float32)))
print(float(mx.sum(x)))

def child(q):
    y = mx.add(mx.array(np.full(1000, 2, np.float32)), 1.0)
    q.put((mx.cuda.is_available(), str(mx.default_device()), float(mx.sum(y))))

ctx = mp.get_context("fork")
q = ctx.Queue()
p = ctx.Process(target=child, args=(q,))
p.start()
print(q.get(timeout=60))
p.join()
"""


@gpu
def test_a_forked_child_computes_on_the_cpu():
    r = subprocess.run([sys.executable, "-c", _FORK], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    parent, child = r.stdout.strip().splitlines()
    assert float(parent) == 1000.0
    assert child == "(False, 'Device(cpu, 0)', 3000.0)"


def test_built_package_carries_the_shaders(tmp_path):
    """setup.py's build_py copies shaders/ into the package (mx/_shaders), which is where an
    installed wheel's translate module finds them."""
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_py", "--build-lib", str(tmp_path)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    carried = tmp_path / "mx" / "_shaders"
    assert sorted(p.name for p in carried.glob("*.metal")) == T.shader_files()
    assert (carried / "prelude" / "cuda.h").is_file()
    assert (tmp_path / "mx" / "backend" / "gpu" / "translate.py").is_file()


def test_async_eval_runs_on_the_callers_default_device():
    """A node built without a stream runs on the default device of the thread that called
    async_eval (the worker thread's own default is the CPU)."""
    from mx.core import devices
    seen = []

    def dispatch(node, prim, args):
        seen.append((prim.name, devices.default_device(), devices.default_stream(devices.cpu)))
        return None

    class Available:
        def is_available(self):
            return True

    prev = devices._backends.get(devices.DeviceType.gpu)
    prev_default = devices.default_device()
    try:
        devices.register_backend(devices.DeviceType.gpu, Available())
        _scheduler.set_dispatch(dispatch)
        devices.set_default_device(mx.gpu)
        y = mx.exp(mx.array([0.0, 1.0]))
        mx.async_eval(y)
        np.testing.assert_allclose(np.asarray(y), np.exp([0.0, 1.0]), rtol=1e-6)
        assert seen[-1][:2] == ("exp", mx.gpu), seen
        # and a `with mx.stream(...)` of the caller is in force in the worker too
        s = mx.new_stream(mx.cpu)
        with mx.stream(s):
            z = mx.log(mx.array([1.0, 2.0]))
            mx.async_eval(z)
            np.testing.assert_allclose(np.asarray(z), np.log([1.0, 2.0]), rtol=1e-6)
    finally:
        devices.set_default_device(prev_default)
        if prev is None:
            devices._backends.pop(devices.DeviceType.gpu, None)
        else:
            devices.register_backend(devices.DeviceType.gpu, prev)
        _restore_dispatch()
    assert seen[-1] == ("log", mx.cpu, s), seen
