"""Fusion of elementwise chains inside mx.compile (mx/backend/cpu/fusion.py, rendered by
mx/backend/codegen/c.py, built by mx/backend/cpu/cbuild.py): compiled == uncompiled for
random chains, NaN/inf and integer semantics, float32 accuracy, the kernel cache, the
no-compiler fallback and MX_DISABLE_FUSION."""
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mx.core as mx
from mx.backend.codegen import FusedGraph, Input, Node
from mx.backend.codegen import c as cgen
from mx.backend.cpu import cbuild, fusion

HAVE_CC = cbuild.toolchain() is not None
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="needs a working C compiler")
ignore_numpy_warnings = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def gelu(x):
    return 0.5 * x * (1 + mx.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))


def program(cf):
    """The program of the (only) trace of compiled function cf."""
    traces = list(cf._cache.values())
    assert len(traces) == 1
    return traces[0].program


def fused_steps(prog):
    return [s for s in prog.steps if s.prim.name.startswith("fused(")]


def unfused_program(f, args, monkeypatch):
    with monkeypatch.context() as m:
        m.setenv("MX_DISABLE_FUSION", "1")
        cf = mx.compile(f)
        cf(*args)
    return program(cf)


@pytest.fixture(autouse=True)
def fusion_on(monkeypatch):
    monkeypatch.delenv("MX_DISABLE_FUSION", raising=False)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty kernel cache folder and no kernels loaded in memory."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cbuild.reset()
    yield tmp_path / "mx" / "kernels"
    cbuild.reset()


# ---------------------------------------------------------------------------------------
# the pass on fixed programs
# ---------------------------------------------------------------------------------------
@needs_cc
def test_gelu_is_one_kernel_and_matches(monkeypatch):
    x = mx.array(np.random.default_rng(0).standard_normal((64, 33)).astype(np.float32))
    cf = mx.compile(gelu)
    got = cf(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(gelu(x)), rtol=2e-6, atol=1e-6)
    assert got.dtype == mx.float32 and got.shape == (64, 33)
    prog = program(cf)
    assert len(prog.steps) == 1 and len(fused_steps(prog)) == 1
    assert len(unfused_program(gelu, [x], monkeypatch).steps) == 8
    # a second call reuses the kernel (and gives the same values)
    np.testing.assert_array_equal(np.asarray(cf(x)), np.asarray(got))


@needs_cc
def test_groups_stop_at_shared_intermediates_outputs_and_broadcasts(monkeypatch):
    def f(x, y, col, row):
        a = mx.exp(x) * 2            # read twice below: not an intermediate of one group
        b = a + y
        c = a - y
        outer = (col + 1) * row      # (3,1) * (1,4): a broadcast that ends groups
        return b * c, a, mx.sqrt(outer) + 1

    rng = np.random.default_rng(1)
    args = [mx.array(rng.standard_normal((3, 4)).astype(np.float32)),
            mx.array(rng.standard_normal((3, 4)).astype(np.float32)),
            mx.array(rng.random((3, 1)).astype(np.float32)),
            mx.array(rng.random((1, 4)).astype(np.float32))]
    cf = mx.compile(f)
    for g, w in zip(cf(*args), f(*args)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)
    prog = program(cf)
    names = [s.prim.name for s in prog.steps]
    # exp*2 (an output, read twice) | add, subtract, multiply | col + 1 | the (3,1)*(1,4)
    # broadcast | sqrt, add
    assert sorted(names) == sorted(["fused(exp,multiply)", "fused(add,subtract,multiply)",
                                    "add", "multiply", "fused(sqrt,add)"])
    assert len(prog.steps) < len(unfused_program(f, args, monkeypatch).steps)


@needs_cc
def test_scalar_and_size_one_inputs_and_constants_fuse():
    def f(x, s, one):
        return mx.where(x > s, x * 3.5 - one, mx.maximum(-x, s)).astype(mx.float64) / 2

    x = mx.array(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4))
    s = mx.array(0.25, mx.float32)
    one = mx.array(np.ones((1, 1), np.float32))
    cf = mx.compile(f)
    np.testing.assert_array_equal(np.asarray(cf(x, s, one)), np.asarray(f(x, s, one)))
    prog = program(cf)
    assert len(prog.steps) == 1
    assert cf(x, s, one).dtype == mx.float64
    # a (1,1) constant exponent becomes a literal, yet still shapes the output
    g = lambda v: (v ** mx.array([[2.0]])) * 3
    cg = mx.compile(g)
    assert cg(x[0]).shape == (1, 4)
    np.testing.assert_array_equal(np.asarray(cg(x[0])), np.asarray(g(x[0])))
    assert len(program(cg).steps) == 1


@needs_cc
def test_large_arrays_take_the_threaded_path():
    x = mx.array(np.random.default_rng(2).standard_normal(300_001).astype(np.float32))
    f = lambda x: mx.sigmoid(x) * x + mx.exp(-mx.abs(x))
    np.testing.assert_allclose(np.asarray(mx.compile(f)(x)), np.asarray(f(x)), rtol=1e-6,
                               atol=1e-7)


_FORK_SCRIPT = textwrap.dedent("""
    import multiprocessing as mp, numpy as np, mx.core as mx
    f = mx.compile(lambda x: mx.exp(x) * 2 + 1)
    big = mx.array(np.ones(300_000, np.float32))
    print(float(mx.sum(f(big))))          # a threaded kernel run in the parent

    def child(q):
        q.put(float(mx.sum(f(mx.array(np.full(300_000, 2, np.float32))))))

    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=child, args=(q,), daemon=True)   # ended with us if it hangs
    p.start()
    print(q.get(timeout=30))
    p.join()
""")


@needs_cc
def test_forked_child_after_threaded_kernels_does_not_hang():
    # (CPU only: CUDA itself does not survive fork, so the GPU backend stays off here)
    r = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "MX_GPU": "0"})
    assert r.returncode == 0, r.stderr
    parent, child = map(float, r.stdout.split())
    assert math.isclose(parent, 300_000 * (2 * math.e + 1), rel_tol=1e-4)
    assert math.isclose(child, 300_000 * (2 * math.exp(2) + 1), rel_tol=1e-4)


@needs_cc
def test_non_contiguous_inputs_and_zero_size():
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    x = mx.array(base).T                      # a transposed view may reach the kernel
    f = lambda x: mx.sqrt(x) * 2 + 1
    np.testing.assert_allclose(np.asarray(mx.compile(f)(x)), np.sqrt(base.T) * 2 + 1, rtol=1e-6)
    e = mx.zeros((0, 3))
    assert mx.compile(f)(e).shape == (0, 3)


@needs_cc
def test_shapeless_calls_with_other_shapes():
    f = lambda x, y: mx.exp(x) * y + 1
    cf = mx.compile(f, shapeless=True)
    rng = np.random.default_rng(3)
    for xs, ys in [((2, 3), (2, 3)), ((4, 5), (4, 5)), ((4, 5), (1, 1)), ((4, 5), (1, 5))]:
        x = mx.array(rng.standard_normal(xs).astype(np.float32))
        y = mx.array(rng.standard_normal(ys).astype(np.float32))
        np.testing.assert_allclose(np.asarray(cf(x, y)), np.asarray(f(x, y)), rtol=1e-6)
    [step] = fused_steps(program(cf))
    specs = step.kernel.specs
    assert len(specs) == 4
    # y of shape (1,5) is neither of the output's size nor of size 1: NumPy runs the group
    assert sum(v is None for v in specs.values()) == 1


@needs_cc
def test_transforms_through_fused_steps():
    x = mx.array(np.linspace(-2, 2, 9, dtype=np.float32))
    cg = mx.compile(gelu)
    loss = lambda x: mx.sum(cg(x))
    ref = lambda x: mx.sum(gelu(x))
    np.testing.assert_allclose(np.asarray(mx.grad(loss)(x)), np.asarray(mx.grad(ref)(x)), rtol=1e-5)
    # grad inside compile: the backward chain is fused as well
    cgrad = mx.compile(mx.grad(ref))
    np.testing.assert_allclose(np.asarray(cgrad(x)), np.asarray(mx.grad(ref)(x)), rtol=1e-5)
    assert fused_steps(program(cgrad))
    xs = mx.array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_allclose(np.asarray(mx.vmap(cg)(xs)), np.asarray(gelu(xs)), rtol=1e-6)
    _, tan = mx.jvp(cg, [x], [mx.ones_like(x)])
    np.testing.assert_allclose(np.asarray(tan[0]), np.asarray(mx.grad(ref)(x)), rtol=1e-5)


def test_disable_fusion_environment_variable(monkeypatch):
    monkeypatch.setenv("MX_DISABLE_FUSION", "1")
    x = mx.array(np.linspace(-1, 1, 5, dtype=np.float32))
    cf = mx.compile(gelu)
    np.testing.assert_allclose(np.asarray(cf(x)), np.asarray(gelu(x)), rtol=1e-6)
    assert not fused_steps(program(cf)) and len(program(cf).steps) == 8
    assert not fusion.enabled()
    monkeypatch.setenv("MX_DISABLE_FUSION", "0")
    assert fusion.enabled()


@pytest.mark.parametrize("it", [mx.uint8, mx.int32, mx.int64])
@pytest.mark.parametrize("ft", [mx.float32, mx.float64])
def test_float_int_float_round_trip_keeps_the_integers_zero_sign(it, ft):
    # -0.3 -> int 0 -> +0.0, so 1/x is +inf; a C compiler under -fno-trapping-math folds the
    # round trip into trunc(-0.3) = -0.0 unless the renderer stops it (found by hypothesis)
    y = mx.array(np.array([-0.5, 0.3, 2.0, -0.0, -3.7], np.float32)).astype(ft)

    def f(y):
        return mx.reciprocal(mx.negative(y).astype(it).astype(ft))

    cf = mx.compile(f)
    got, want = np.asarray(cf(y)), np.asarray(f(y))
    np.testing.assert_array_equal(got, want)
    assert fused_steps(program(cf))             # the round trip ran in one C kernel


@pytest.mark.parametrize("dt", [mx.float16, mx.bfloat16])
def test_half_groups_fuse_for_the_gpu_and_run_step_by_step_on_the_cpu(dt):
    # the C renderer has no half types: the group is one fused step (a GPU kernel renders
    # it), and on the CPU that step runs its members' kernels, bit for bit as uncompiled
    x = mx.array(np.linspace(-1, 1, 5, dtype=np.float32)).astype(dt)
    cf = mx.compile(lambda x: mx.exp(x) * 2 + 1)
    got, want = cf(x), mx.exp(x) * 2 + 1
    assert got.dtype == dt
    np.testing.assert_array_equal(np.asarray(got.astype(mx.float32)),
                                  np.asarray(want.astype(mx.float32)))
    steps = fused_steps(program(cf))
    assert len(steps) == 1
    assert all(spec is None for spec in steps[0].kernel.specs.values())


# ---------------------------------------------------------------------------------------
# random chains: compiled (fused) == uncompiled
# ---------------------------------------------------------------------------------------
DTYPES = ["bool", "uint8", "int32", "int64", "float32", "float64", "float32", "float64",
          "float16"]
SHAPES = [(3, 4), (3, 4), (3, 4), (4,), (1, 4), (), (3, 1), (1, 1)]
UN_CONT = ["negative", "abs", "square", "sqrt", "reciprocal", "rsqrt"]      # fine on inexact
UN_DISC = ["floor", "ceil", "round", "sign", "logical_not", "isnan", "isinf", "isfinite",
           "bitwise_invert"]
UN_TRANS = ["exp", "log", "tanh", "sigmoid", "sin", "log1p", "expm1", "arctan", "erf"]
BIN_COND = ["multiply", "divide", "maximum", "minimum"]                    # fine on inexact
BIN_EXACT = ["add", "subtract"]                                             # cancellation
BIN_DISC = ["floor_divide", "remainder", "equal", "not_equal", "less", "greater_equal",
            "logical_and", "logical_or", "bitwise_and", "bitwise_or", "bitwise_xor",
            "left_shift", "right_shift"]
BIN_TRANS = ["power", "logaddexp", "arctan2"]
CONSTS = [2, 3, -1, 0, 0.5, 2.5, True]
OPS = (["un:" + o for o in UN_CONT + UN_DISC + UN_TRANS]
       + ["bin:" + o for o in BIN_COND + BIN_EXACT + BIN_DISC + BIN_TRANS]
       + ["where", "astype"])


def _is_float(a):
    return a.dtype.name.startswith("float")


def _eps(a):
    return float(np.finfo(a.dtype.name).eps) if _is_float(a) else 0.0


def _apply(op, pool, i, j, k, c, dt):
    """One step of a random chain on pool entries (array, err); None if it does not
    apply. err is a bound on the relative difference the fused kernel may show: 0 for
    values computed with correctly rounded ops only (kernel and NumPy agree bit for bit,
    and discontinuous ops such as floor or comparisons may follow), a few ulp after a
    transcendental function. Inexact values only feed well-conditioned ops."""
    # counted from the newest value, so that the ops mostly form chains
    (a, ea), (b, eb), (w, ew) = [pool[-1 - (t % len(pool))] for t in (i, j, k)]
    if c is not None:
        b, eb = CONSTS[c % len(CONSTS)], 0.0
    kind, _, name = op.partition(":")
    fn = getattr(mx, name) if name else None
    if kind == "un":
        if name not in UN_CONT and ea:
            return None
        out = fn(a)
        if name in UN_TRANS:
            return out, 8 * _eps(out)
        return out, 2 * ea + (_eps(out) if ea else 0.0)
    if kind == "bin":
        if name not in BIN_COND and (ea or eb):
            return None
        out = fn(a, b)
        if name in BIN_TRANS:
            return out, 8 * _eps(out)
        return out, ea + eb + (_eps(out) if ea or eb else 0.0)
    if op == "where":
        if ew:
            return None
        return mx.where(w, a, b), max(ea, eb)
    target = mx.bool_ if dt == "bool" else getattr(mx, dt)
    if _is_float(a) and not target.name.startswith("float"):
        if ea:
            return None
        a = mx.where(mx.isnan(a), 0, mx.clip(a, -100, 100))   # in range for every int type
    out = a.astype(target)
    return out, ea + (_eps(out) if ea else 0.0)


def _make_input(rng, dtype, shape):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype == "uint8":
        return rng.integers(0, 12, shape).astype(np.uint8)
    if dtype.startswith("int"):
        return rng.integers(-9, 10, shape).astype(dtype)
    v = (rng.standard_normal(shape) * 3).astype(dtype)
    if v.size > 4:
        flat = v.reshape(-1)
        picks = rng.choice([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, 0.5, -2.0], 3)
        flat[rng.choice(flat.size, 3, replace=False)] = picks
    return v


_pick = st.one_of(st.integers(0, 1), st.integers(0, 20))
chain = st.fixed_dictionaries({
    "seed": st.integers(0, 2**32 - 1),
    "inputs": st.lists(st.tuples(st.sampled_from(DTYPES), st.sampled_from(SHAPES)),
                       min_size=1, max_size=3),
    "ops": st.lists(st.tuples(st.sampled_from(OPS), _pick, _pick, _pick,
                              st.one_of(st.none(), st.integers(0, 6)),
                              st.sampled_from(DTYPES[:6])),
                    min_size=3, max_size=12),
    "second_output": st.booleans(),
})


def _run_chain(spec, xs):
    pool = [(x, 0.0) for x in xs]
    for op, i, j, k, c, dt in spec["ops"]:
        try:
            r = _apply(op, pool, i, j, k, c, dt)
        except (TypeError, ValueError):     # op not defined for these dtypes
            r = None
        if r is not None:
            pool.append(r)
    picked = [pool[-1]]
    if spec["second_output"] and len(pool) > 2:
        picked.append(pool[len(pool) // 2])
    return [v for v, _ in picked], [e for _, e in picked]


@needs_cc
@ignore_numpy_warnings
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(chain)
def test_random_chains_compiled_equals_uncompiled(spec):
    rng = np.random.default_rng(spec["seed"])
    xs = [mx.array(_make_input(rng, d, s), mx.bool_ if d == "bool" else getattr(mx, d))
          for d, s in spec["inputs"]]
    want, errs = _run_chain(spec, xs)
    cf = mx.compile(lambda *xs: _run_chain(spec, xs)[0])
    for _ in range(2):      # first call and the cached kernel
        got = cf(*xs)
        for g, w, err in zip(got, want, errs):
            assert g.shape == w.shape and g.dtype == w.dtype
            gn, wn = np.asarray(g), np.asarray(w)
            if err == 0:
                _same_bits(gn, wn) if wn.dtype.kind == "f" else np.testing.assert_array_equal(gn, wn)
            else:
                tiny = {np.float32: 1e-30, np.float64: 1e-300}.get(wn.dtype.type, 1e-3)
                np.testing.assert_allclose(gn, wn, rtol=4 * err, atol=tiny, equal_nan=True)
    for s in fused_steps(program(cf)):
        assert len(s.kernel.members) >= 2


# ---------------------------------------------------------------------------------------
# special values and integer semantics (each op after `x * 1` so that it is fused)
# ---------------------------------------------------------------------------------------
SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -3.0, 7.5, -7.5,
           1e-40, -1e-40, 3e38, -1e30, 88.7, -88.7, 100.0, -104.0, 1e-30]
EXACT_UNARY = ["negative", "abs", "square", "sqrt", "reciprocal", "rsqrt", "floor", "ceil",
               "round", "sign", "isnan", "isinf", "isfinite", "logical_not", "degrees"]
TRANS_UNARY = ["exp", "log", "tanh", "sigmoid", "expm1", "log1p", "log2", "log10", "sin",
               "cos", "arctan", "arcsinh", "arctanh", "arcsin", "erf", "cosh", "sinh"]
EXACT_BINARY = ["add", "subtract", "multiply", "divide", "floor_divide", "remainder",
                "maximum", "minimum", "equal", "less", "greater_equal", "not_equal"]
TRANS_BINARY = ["power", "logaddexp", "arctan2"]


def _same_bits(g, w):
    """Equal values, NaN positions and signs of zeros."""
    g, w = np.asarray(g), np.asarray(w)
    assert g.dtype == w.dtype
    np.testing.assert_array_equal(g, w)
    if g.dtype.kind == "f":
        np.testing.assert_array_equal(np.signbit(g[g == 0]), np.signbit(w[w == 0]))


def _close_special(g, w, rtol):
    g, w = np.asarray(g).astype(np.float64), np.asarray(w).astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(w))
    np.testing.assert_array_equal(np.isinf(g), np.isinf(w))
    np.testing.assert_array_equal(g[np.isinf(g)], w[np.isinf(w)])
    fin = np.isfinite(w)
    np.testing.assert_allclose(g[fin], w[fin], rtol=rtol, atol=1e-44)


def _compiled_together(fns, args):
    """Compile one program computing every fns[k](*args[k]) (each on inputs of its own, so
    each is a group of its own: one C module for all); (compiled, uncompiled, program)."""
    counts = [len(a) for a in args]

    def body(*xs):
        outs, i = [], 0
        for f, c in zip(fns, counts):
            outs.append(f(*xs[i:i + c]))
            i += c
        return outs

    cf = mx.compile(body)
    got = cf(*[x for a in args for x in a])
    want = [f(*a) for f, a in zip(fns, args)]
    prog = program(cf)
    assert len(fused_steps(prog)) == len(fns)
    return got, want


@needs_cc
@ignore_numpy_warnings
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_values(dtype):
    x = mx.array(np.array(SPECIAL, dtype), getattr(mx, dtype))
    a, b = np.meshgrid(np.array(SPECIAL, dtype), np.array(SPECIAL, dtype))
    xa, xb = mx.array(a, getattr(mx, dtype)), mx.array(b, getattr(mx, dtype))
    rtol = 5e-7 if dtype == "float32" else 1e-13
    unary = EXACT_UNARY + TRANS_UNARY
    got, want = _compiled_together([lambda x, _op=getattr(mx, n): _op(x * 1) for n in unary],
                                   [(x,)] * len(unary))
    for name, g, w in zip(unary, got, want):
        if name in EXACT_UNARY:
            _same_bits(g, w)
        else:
            _close_special(g, w, rtol)
    binary = EXACT_BINARY + TRANS_BINARY
    got, want = _compiled_together([lambda x, y, _op=getattr(mx, n): _op(x * 1, y) for n in binary],
                                   [(xa, xb)] * len(binary))
    for name, g, w in zip(binary, got, want):
        if name in EXACT_BINARY:
            _same_bits(g, w)
        else:
            _close_special(g, w, 4 * rtol)


@needs_cc
@ignore_numpy_warnings
@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
def test_integer_and_bool_semantics(dtype):
    info = np.iinfo(dtype) if dtype != "bool" else None
    vals = [0, 1, 5, 7, 2, 3] if dtype == "bool" else \
        [0, 1, 2, 3, 5, 7, 31, 40, 64, info.max, info.min] + ([] if dtype == "uint8" else [-1, -2, -7, -40])
    vals = np.array(vals).astype(dtype)
    a, b = np.meshgrid(vals, vals)
    xa, xb = mx.array(a), mx.array(b)
    binary = ["add", "subtract", "multiply", "maximum", "minimum", "bitwise_and", "bitwise_or",
              "bitwise_xor", "equal", "less", "logical_and", "logical_or"]
    if dtype != "bool":
        binary += ["floor_divide", "remainder", "power", "left_shift", "right_shift"]
    unary = ["abs", "sign", "square", "bitwise_invert", "logical_not", "isnan", "isfinite"]
    if dtype != "bool":
        unary.append("negative")
    pre = (lambda x: x & True) if dtype == "bool" else (lambda x: x * 1)   # fused with the op
    fns = [lambda x, y, _op=getattr(mx, n): _op(pre(x), y) for n in binary] + \
          [lambda x, _op=getattr(mx, n): _op(pre(x)) for n in unary]
    got, want = _compiled_together(fns, [(xa, xb)] * len(binary) + [(xa,)] * len(unary))
    for name, g, w in zip(binary + unary, got, want):
        assert g.dtype == w.dtype, name
        _same_bits(g, w)


@needs_cc
def test_casts():
    f64 = np.array([-3.7, -0.0, 0.4, 2.5, 99.9, -128.0, 255.0, 1e10, np.nan, np.inf], np.float64)
    i64 = np.array([-2**40, -1, 0, 1, 255, 256, 2**31, 2**62], np.int64)
    fns, args = [], []
    for src in (f64, i64, f64 > 0):
        for dt in ("bool", "uint8", "int32", "int64", "float32", "float64"):
            if dt == src.dtype.name:
                continue        # an identity cast is not a step
            target = mx.bool_ if dt == "bool" else getattr(mx, dt)
            if src.dtype.kind == "f" and dt in ("uint8", "int32", "int64"):
                s = np.clip(np.nan_to_num(src, posinf=0), -100, 100)   # in range (defined in C)
            else:
                s = src
            fns.append(lambda x, _t=target: (x * 1 if x.dtype != mx.bool_ else x & True).astype(_t))
            args.append((mx.array(s, mx.bool_ if s.dtype == bool else getattr(mx, s.dtype.name)),))
    got, want = _compiled_together(fns, args)
    for g, w in zip(got, want):
        _same_bits(g, w)


# ---------------------------------------------------------------------------------------
# float32 transcendental accuracy and vectorisation
# ---------------------------------------------------------------------------------------
def _ulps(got, ref64):
    """|got - ref| in units of the float32 spacing at ref."""
    ref32 = ref64.astype(np.float32)
    spacing = np.spacing(np.abs(ref32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref64) / spacing


@needs_cc
@ignore_numpy_warnings
def test_float32_exp_log_tanh_sigmoid_within_2_ulp():
    rng = np.random.default_rng(4)
    bits = rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32)
    x = np.concatenate([bits.view(np.float32), np.linspace(-105, 90, 100_000, dtype=np.float32),
                        np.linspace(-1, 1, 100_000, dtype=np.float32)])
    x64 = x.astype(np.float64)
    refs = {
        "exp": np.exp(x64), "log": np.log(x64), "tanh": np.tanh(x64),
        "sigmoid": 1 / (1 + np.exp(-x64)),
    }
    limits = {"exp": 1.0, "log": 1.0, "tanh": 1.5, "sigmoid": 2.5}
    xm = mx.array(x)
    for name, ref in refs.items():
        got = np.asarray(mx.compile(lambda v, _op=getattr(mx, name): _op(v * 1))(xm))
        fin = np.isfinite(ref) & (np.abs(ref) < 3.4e38)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
        np.testing.assert_array_equal(got[~fin & ~np.isnan(ref)], ref[~fin & ~np.isnan(ref)].astype(np.float32))
        worst = _ulps(got[fin], ref[fin]).max()
        assert worst <= limits[name], (name, worst)


@needs_cc
def test_gelu_loop_is_vectorised(tmp_path):
    tc = cbuild.toolchain()
    if "gcc" not in tc.identity.lower() and "free software foundation" not in tc.identity.lower():
        pytest.skip("checks gcc's -fopt-info-vec report")
    x = mx.array(np.zeros(8, np.float32))
    cf = mx.compile(gelu)
    cf(x)
    kernel = fused_steps(program(cf))[0].kernel
    graph = next(s for s in kernel.specs.values() if s is not None).graph
    _, source = cgen.render_module([(graph, "gelu_kernel")])
    src = tmp_path / "k.c"
    src.write_text(source)
    r = subprocess.run(list(tc.cc) + list(tc.flags) + ["-fopt-info-vec-optimized", "-c", str(src),
                                                       "-o", str(tmp_path / "k.o")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    start = source[: source.index("void gelu_kernel(")].count("\n") + 1
    lines = [int(m.split(":")[1]) for m in r.stderr.splitlines()
             if "loop vectorized" in m and m.startswith(str(src))]
    assert any(n > start for n in lines), r.stderr     # the kernel's loop, not a helper


def test_renderer_is_separate_and_rejects_unsupported():
    g = FusedGraph((Input("float32", False), Input("float32", True)),
                   (Node("multiply", "float32", (("in", 0), ("in", 1))),
                    Node("exp", "float32", (("node", 0),))))
    src = cgen.render_kernel(g, "k")
    assert "mx_expf(t0)" in src and "in1[0]" in src and "#pragma omp parallel for" in src
    assert cgen.declaration(g, "k") == \
        "void k(int64_t n, int parallel, const float *in0, const float *in1, float *out);"
    assert not cgen.supports("exp", ["float16"], "float16")
    assert not cgen.supports("erfinv", ["float32"], "float32")
    assert not cgen.supports("round", ["float32"], "float32", (("decimals", 2),))
    assert cgen.supports("round", ["float32"], "float32", (("decimals", 0),))
    assert not cgen.supports("divide", ["int32", "int32"], "int32")
    assert cgen.supports("less", ["int64", "int64"], "bool")
    with pytest.raises(cgen.Unsupported):
        cgen.render_kernel(FusedGraph((Input("float16", False),),
                                      (Node("exp", "float16", (("in", 0),)),)), "k")


# ---------------------------------------------------------------------------------------
# the kernel cache
# ---------------------------------------------------------------------------------------
_CACHE_SCRIPT = textwrap.dedent("""
    import numpy as np, mx.core as mx
    from mx.backend.cpu import cbuild
    builds = []
    real = cbuild._build
    cbuild._build = lambda *a: builds.append(1) or real(*a)
    f = mx.compile(lambda x: 0.5 * x * (1 + mx.tanh(0.79788 * (x + 0.044715 * x ** 3))))
    y = f(mx.array(np.linspace(-3, 3, 7, dtype=np.float32)))
    print("BUILDS", len(builds), "VALUE", float(y[-1]))
""")


def _replace_with(path, data):
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


@needs_cc
def test_disk_cache_reused_by_a_second_process_and_rebuilt_when_corrupt(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    env.pop("MX_DISABLE_FUSION", None)
    folder = tmp_path / "mx" / "kernels"

    def run():
        r = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()[1], r.stdout.split("VALUE")[1]

    builds, value = run()
    assert builds == "1"
    [name] = os.listdir(folder)                 # no temporary leftovers
    assert name.startswith("_mxk_")
    assert run() == ("0", value)                # loaded from disk, not built
    _replace_with(folder / name, b"this is not a shared object")
    assert run() == ("1", value)                # a corrupt entry is a miss: rebuilt
    with open(folder / name, "rb") as f:
        assert f.read(4) == b"\x7fELF"
        head = f.read(200)
    _replace_with(folder / name, b"\x7fELF" + head)    # truncated
    assert run() == ("1", value)
    assert run() == ("0", value)
    assert os.listdir(folder) == [name]


@needs_cc
def test_memory_cache_returns_the_same_module(fresh_cache):
    m1 = cbuild.load("int mx_t2(void);", "int mx_t2(void) { return 7; }")
    m2 = cbuild.load("int mx_t2(void);", "int mx_t2(void) { return 7; }")
    assert m1 is m2 and m1.lib.mx_t2() == 7


# ---------------------------------------------------------------------------------------
# no compiler
# ---------------------------------------------------------------------------------------
def test_without_a_compiler_fusion_is_off_with_one_warning(monkeypatch):
    monkeypatch.setattr(cbuild, "find_compiler", lambda: None)
    monkeypatch.setitem(fusion._warned, "compiler", False)
    cbuild.reset()
    try:
        x = mx.array(np.linspace(-2, 2, 6, dtype=np.float32))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cf1, cf2 = mx.compile(gelu), mx.compile(lambda x: mx.exp(x) * 2 + 1)
            np.testing.assert_allclose(np.asarray(cf1(x)), np.asarray(gelu(x)), rtol=1e-6)
            np.testing.assert_allclose(np.asarray(cf2(x)), np.exp(np.asarray(x)) * 2 + 1, rtol=1e-6)
        msgs = [str(w.message) for w in caught if "C compiler" in str(w.message)]
        assert len(msgs) == 1 and "without fusing" in msgs[0]
        assert not fused_steps(program(cf1)) and not fused_steps(program(cf2))
        assert cbuild.toolchain() is None
        with pytest.raises(cbuild.CompilerUnavailable):
            cbuild.load("int f(void);", "int f(void) { return 0; }")
    finally:
        monkeypatch.undo()
        cbuild.reset()
