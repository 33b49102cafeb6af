"""mx.compile: the seed's semantics, caching, shapeless, state capture, transforms, and
compiled == uncompiled for every elementwise primitive."""
import math
import subprocess
import sys
import textwrap
import warnings
from functools import partial

import numpy as np
import pytest

import mx.core as mx
import mx.core.compiler as compile_mod
from mx.core.ops.elementwise import BINARY, UNARY


def _close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def test_compiled_matches_and_body_runs_once():
    calls = []

    def f(x, y):
        calls.append(1)
        return mx.exp(-mx.abs(x)) * y + 1

    cf = mx.compile(f)
    a, b = mx.array([1.0, -2.0]), mx.array([2.0, 3.0])
    for _ in range(3):
        _close(cf(a, b), f(a, b))
    assert len(calls) == 1 + 3  # one trace + three uncompiled reference calls


def test_results_are_lazy_and_evaluate():
    cf = mx.compile(lambda x: x * 2)
    r = cf(mx.array([1.0]))
    assert r._data is None
    assert r.tolist() == [2.0]


def test_retrace_on_new_shape_dtype_or_python_constant():
    calls = []

    def f(x, k):
        calls.append(1)
        return x * k

    cf = mx.compile(f)
    cf(mx.array([1.0]), 2)
    cf(mx.array([3.0]), 2)
    assert len(calls) == 1
    assert cf(mx.array([1.0, 2.0]), 2).tolist() == [2.0, 4.0]
    assert len(calls) == 2
    assert cf(mx.array([1.0]), 3).tolist() == [3.0]
    assert len(calls) == 3
    assert cf(mx.array([1], mx.int32), 3).dtype == mx.int32
    assert len(calls) == 4


def test_shapeless_reuses_trace_and_never_returns_wrong_shape():
    calls = []

    def f(x):
        calls.append(1)
        return mx.exp(x) * 2 + x

    cf = mx.compile(f, shapeless=True)
    for n in (2, 5, 7):
        x = mx.array(np.linspace(0, 1, n, dtype=np.float32))
        r = cf(x)
        assert r.shape == (n,)
        _close(r, f(x))
    assert len(calls) == 1 + 3
    cf(mx.array(np.zeros((2, 2), np.float32)))  # a new rank retraces
    assert len(calls) == 5

    def g(x):
        return x.reshape(x.shape[0] * x.shape[1])

    cg = mx.compile(g, shapeless=True)
    assert cg(mx.array(np.zeros((2, 3)))).shape == (6,)
    assert cg(mx.array(np.zeros((4, 3)))).shape == (12,)  # shape-dependent: retraced


def test_seed_constants_frozen_and_inputs_capture():
    state = [mx.array(1.0)]

    @mx.compile
    def fun(x):
        return x + state[0]

    assert fun(mx.array(1.0)).item() == 2.0
    state[0] = mx.array(5.0)
    assert fun(mx.array(1.0)).item() == 2.0

    state = [mx.array(1.0)]

    @partial(mx.compile, inputs=state)
    def fun2(x):
        return x + state[0]

    assert fun2(mx.array(1.0)).item() == 2.0
    state[0] = mx.array(5.0)
    assert fun2(mx.array(1.0)).item() == 6.0


def test_seed_outputs_capture_and_returning_state():
    state = []

    @partial(mx.compile, outputs=state)
    def fun(x, y):
        z = x + y
        state.append(z)
        return mx.exp(z), state

    fun(mx.array(1.0), mx.array(2.0))
    assert state[0].item() == 3.0 and "3" in repr(state)

    st = []

    @mx.compile
    def fun2(x, y):
        z = x + y
        st.append(z)
        return mx.exp(z), st

    _, out = fun2(mx.array(1.0), mx.array(2.0))
    assert out[0].item() == 3.0


def test_leaked_placeholder_is_a_clear_error_not_a_crash():
    code = textwrap.dedent("""
        import mx.core as mx
        state = []
        @mx.compile
        def fun(x, y):
            z = x + y
            state.append(z)
            return mx.exp(z)
        fun(mx.array(1.0), mx.array(2.0))
        try:
            print(state)
        except ValueError as e:
            print("RAISED", e)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-500:]
    assert "RAISED [compile]" in p.stdout and "outputs=" in p.stdout


def test_transforms_compose():
    grad_fn = mx.grad(mx.exp)
    assert mx.compile(grad_fn)(mx.array(1.0)).item() == pytest.approx(math.e, rel=1e-6)
    f = mx.compile(lambda x: mx.sin(x) * x)
    assert mx.grad(f)(mx.array(1.0)).item() == pytest.approx(math.cos(1) + math.sin(1), rel=1e-6)
    v = mx.vmap(f)(mx.array([1.0, 2.0]))
    _close(v, np.sin([1.0, 2.0]) * np.array([1.0, 2.0]))
    _, (t,) = mx.jvp(f, [mx.array(1.0)], [mx.array(1.0)])
    assert t.item() == pytest.approx(math.cos(1) + math.sin(1), rel=1e-6)
    assert mx.grad(mx.grad(f))(mx.array(1.0)).item() == pytest.approx(2 * math.cos(1) - math.sin(1), rel=1e-5)


def test_nested_compile_inlines():
    @mx.compile
    def inner(x):
        return mx.exp(-mx.abs(x))

    def outer(x):
        return inner(inner(x))

    fun = mx.compile(outer)
    assert fun(mx.array(-1.0)).item() == pytest.approx(math.exp(-math.exp(-1.0)), rel=1e-6)
    prog = next(iter(fun._cache.values())).program
    assert all(not st.prim.name.startswith("compiled(") for st in prog.steps)


def test_disable_enable_and_environment_variable():
    calls = []

    def f(x):
        calls.append(1)
        return x + 1

    cf = mx.compile(f)
    mx.disable_compile()
    try:
        cf(mx.array(1.0))
        cf(mx.array(1.0))
    finally:
        mx.enable_compile()
    assert len(calls) == 2
    cf(mx.array(1.0))
    cf(mx.array(1.0))
    assert len(calls) == 3
    code = ("import mx.core as mx\nc=[]\nf=mx.compile(lambda x: c.append(1) or x)\n"
            "f(mx.array(1)); f(mx.array(1)); print(len(c))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**__import__("os").environ, "MX_DISABLE_COMPILE": "1"})
    assert p.stdout.strip() == "2", p.stderr[-300:]


def test_cache_is_bounded_and_recompiles_warn_once(monkeypatch):
    monkeypatch.setattr(compile_mod, "MAX_TRACES", 3)
    monkeypatch.setattr(compile_mod, "WARN_AFTER", 4)

    def scale(x, k):
        return x * k

    cf = mx.compile(scale)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for k in range(8):
            assert cf(mx.array(1.0), k).item() == k
    assert len(cf._cache) == 3
    msgs = [str(x.message) for x in w if "[compile]" in str(x.message)]
    assert len(msgs) == 1 and "scale" in msgs[0] and "Python argument changed" in msgs[0]


def test_cache_dies_with_the_function():
    import gc
    import weakref

    def f(x):
        return x * 3

    cf = mx.compile(f)
    cf(mx.array(1.0))
    ref = weakref.ref(cf)
    del cf
    gc.collect()
    assert ref() is None


def test_constant_folding_and_cse(monkeypatch):
    monkeypatch.setenv("MX_DISABLE_FUSION", "1")   # count the unfused steps
    w = mx.array(np.arange(4, dtype=np.float32))

    def f(x):
        c = mx.exp(w) * 2          # constant subgraph: folded at trace time
        return (x + c) * (x + c)   # repeated subexpression: one step

    cf = mx.compile(f)
    x = mx.array(np.ones(4, np.float32))
    _close(cf(x), f(x))
    prog = next(iter(cf._cache.values())).program
    names = [st.prim.name for st in prog.steps]
    assert "exp" not in names and names.count("add") == 1


def test_random_numbers_differ_between_calls():
    if not hasattr(mx.random, "uniform"):
        pytest.skip("mx.random not available")

    @mx.compile
    def draw(x):
        return x + mx.random.uniform(shape=(3,))

    a = draw(mx.zeros((3,))).tolist()
    b = draw(mx.zeros((3,))).tolist()
    assert a != b


@pytest.mark.parametrize("name", sorted(UNARY))
def test_every_unary_primitive_compiled_equals_uncompiled(name):
    fn = getattr(mx, name, None)
    if fn is None or name in ("stop_gradient",):
        pytest.skip("not a public op")
    x = mx.array(np.linspace(0.1, 0.9, 7, dtype=np.float32))
    if name in ("bitwise_invert",):
        x = mx.array(np.arange(7, dtype=np.int32))
    if name == "arccosh":
        x = x + 1.5
    f = lambda a: fn(a) if name != "logical_not" else mx.logical_not(a)
    _close(mx.compile(f)(x), f(x))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_every_binary_primitive_compiled_equals_uncompiled(name):
    fn = getattr(mx, name)
    a = mx.array(np.arange(1, 7, dtype=np.int32).reshape(2, 3))
    b = mx.array(np.array([1, 2, 3], np.int32))
    if name not in ("bitwise_and", "bitwise_or", "bitwise_xor", "left_shift", "right_shift"):
        a, b = a.astype(mx.float32), b.astype(mx.float32)
    f = lambda x, y: fn(x, y)
    _close(mx.compile(f)(a, b), f(a, b))


def test_failed_trace_restores_captured_state_exactly():
    w = mx.array([1.0, 2.0])
    state = [{"w": w}, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x):
        state[0]["new"] = x * 2          # a new entry made during the trace
        raise RuntimeError("boom")

    key_before = mx.random.state[0]
    with pytest.raises(RuntimeError, match="boom"):
        step(mx.array(1.0))
    assert set(state[0]) == {"w"} and state[0]["w"] is w
    assert mx.random.state[0] is key_before
    assert (mx.random.state[0] + 0).tolist() is not None  # evaluates: no placeholder left
