"""Elementwise ops against NumPy: values, dtypes and shapes; broadcasting and promotion
property-tested with hypothesis."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import mx.core as mx
from oracle import DTYPE_NAMES, check, mx_dtype, np_dtype

FLOATS = ["float16", "bfloat16", "float32", "float64"]

# op -> (numpy reference, domain of test values)
UNARY = {
    "abs": (np.abs, (-3, 3)), "negative": (np.negative, (-3, 3)), "sign": (np.sign, (-3, 3)),
    "exp": (np.exp, (-3, 3)), "expm1": (np.expm1, (-1, 1)), "log": (np.log, (0.1, 5)),
    "log2": (np.log2, (0.1, 5)), "log10": (np.log10, (0.1, 5)), "log1p": (np.log1p, (-0.5, 5)),
    "sqrt": (np.sqrt, (0, 5)), "rsqrt": (lambda x: 1 / np.sqrt(x), (0.1, 5)),
    "square": (np.square, (-3, 3)), "reciprocal": (np.reciprocal, (0.5, 3)),
    "sin": (np.sin, (-3, 3)), "cos": (np.cos, (-3, 3)), "tan": (np.tan, (-1, 1)),
    "arcsin": (np.arcsin, (-0.9, 0.9)), "arccos": (np.arccos, (-0.9, 0.9)),
    "arctan": (np.arctan, (-3, 3)), "sinh": (np.sinh, (-2, 2)), "cosh": (np.cosh, (-2, 2)),
    "tanh": (np.tanh, (-3, 3)), "arcsinh": (np.arcsinh, (-3, 3)), "arccosh": (np.arccosh, (1.1, 4)),
    "arctanh": (np.arctanh, (-0.9, 0.9)), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), (-6, 6)),
    "erf": (np.vectorize(math.erf, otypes=[np.float64]), (-2, 2)),
    "floor": (np.floor, (-3, 3)), "ceil": (np.ceil, (-3, 3)),
    "degrees": (np.degrees, (-3, 3)), "radians": (np.radians, (-90, 90)),
    "isnan": (np.isnan, (-3, 3)), "isinf": (np.isinf, (-3, 3)), "isfinite": (np.isfinite, (-3, 3)),
    "conjugate": (np.conjugate, (-3, 3)), "stop_gradient": (lambda x: x, (-3, 3)),
}


def _values(lo, hi, dtype, n=37, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(lo, hi, size=(n,)).astype(np.float64).astype(np_dtype(dtype))


@pytest.mark.parametrize("op", sorted(UNARY))
@pytest.mark.parametrize("dtype", FLOATS)
def test_unary_float_against_numpy(op, dtype):
    ref, (lo, hi) = UNARY[op]
    x = _values(lo, hi, dtype)
    got = getattr(mx, op)(mx.array(x, dtype=mx_dtype(dtype)))
    want = ref(x.astype(np.float64))
    out_dtype = "bool" if want.dtype == bool else dtype
    tol = {"float16": 3e-3, "bfloat16": 2e-2, "float32": 2e-6, "float64": 1e-12}[dtype]
    assert got.dtype.name == out_dtype and got.shape == x.shape
    np.testing.assert_allclose(np.asarray(got).astype(np.float64), want.astype(np.float64),
                               rtol=tol, atol=tol)


def test_erfinv_inverts_erf():
    x = np.linspace(-0.999, 0.999, 101)
    for dt, tol in (("float32", 1e-5), ("float64", 1e-12)):
        y = mx.erfinv(mx.array(x, dtype=mx_dtype(dt)))
        back = np.vectorize(math.erf)(np.asarray(y).astype(np.float64))
        np.testing.assert_allclose(back, x.astype(np_dtype(dt)), rtol=tol, atol=tol)
    edge = mx.erfinv(mx.array([1.0, -1.0, 2.0, float("nan")])).tolist()
    assert edge[0] == math.inf and edge[1] == -math.inf and math.isnan(edge[2]) and math.isnan(edge[3])


@pytest.mark.parametrize("dtype", ["int8", "int32", "int64", "uint8", "uint32"])
def test_unary_on_integers(dtype):
    x = np.array([0, 1, 2, 3, 5, 7], np_dtype(dtype))
    check(lambda xp, a: xp.abs(a), x)
    check(lambda xp, a: xp.square(a), x)
    check(lambda xp, a: xp.floor(a), x)
    check(lambda xp, a: xp.sign(a), x)
    # transcendental ops of integers compute in float32 (MLX)
    # (NumPy computes int8 in float16, so the reference is taken in float32 directly)
    for op in ("exp", "sqrt", "sin"):
        got = getattr(mx, op)(mx.array(x, dtype=mx_dtype(dtype)))
        assert got.dtype == mx.float32
        np.testing.assert_allclose(np.asarray(got), getattr(np, op)(x.astype(np.float32)), rtol=1e-6)


def test_complex_unary():
    x = np.array([1 + 2j, -0.5 + 0.25j, 3 - 1j], np.complex64)
    for op in ("exp", "log", "sqrt", "sin", "cos", "tanh", "conjugate", "negative", "square"):
        check(lambda xp, a: getattr(xp, op)(a), x)
    check(lambda xp, a: xp.abs(a), x, dtype="float32")
    assert mx.array(x).real.dtype == mx.float32
    np.testing.assert_allclose(np.asarray(mx.real(mx.array(x))), x.real)
    np.testing.assert_allclose(np.asarray(mx.imag(mx.array(x))), x.imag)
    np.testing.assert_allclose(np.asarray(mx.array(x).conj()), np.conj(x))
    with pytest.raises(TypeError, match=r"\[floor\] Complex"):
        mx.floor(mx.array(x))
    with pytest.raises(TypeError, match=r"\[erf\] Complex"):
        mx.erf(mx.array(x))


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32"])
def test_nan_to_num_of_every_float_dtype(dt):
    # bfloat16 too (NumPy's nan_to_num leaves ml_dtypes' bfloat16 unchanged; MLX does not)
    d = getattr(mx, dt)
    x = mx.array([float("nan"), float("inf"), -float("inf"), 1.5], dtype=d)
    big = float(mx.finfo(d).max)
    assert mx.nan_to_num(x).astype(mx.float32).tolist() == [0.0, big, -big, 1.5]
    got = mx.nan_to_num(x, nan=2.0, posinf=3.0, neginf=-4.0)
    assert got.dtype == d and got.astype(mx.float32).tolist() == [2.0, 3.0, -4.0, 1.5]


def test_isposinf_isneginf_nan_to_num():
    x = np.array([1.0, np.inf, -np.inf, np.nan], np.float32)
    check(lambda xp, a: xp.isposinf(a), x)
    check(lambda xp, a: xp.isneginf(a), x)
    got = mx.nan_to_num(mx.array(x))
    np.testing.assert_array_equal(np.asarray(got), np.nan_to_num(x))
    got = mx.nan_to_num(mx.array(x), nan=-1.0, posinf=9.0, neginf=-9.0)
    assert got.tolist() == [1.0, 9.0, -9.0, -1.0]
    assert mx.nan_to_num(mx.array([1, 2])).tolist() == [1, 2]


def test_round():
    x = np.array([0.5, 1.5, 2.5, -0.5, 1.2345, -7.77], np.float32)
    check(lambda xp, a: xp.round(a), x)
    check(lambda xp, a: xp.round(a, 2), x)
    assert mx.round(mx.array([15, 25]), -1).tolist() == [20, 20]
    assert mx.array([1.26]).round(1).tolist()[0] == pytest.approx(1.3)


BINARY = ["add", "subtract", "multiply", "divide", "floor_divide", "remainder", "power",
          "maximum", "minimum", "logaddexp", "arctan2", "equal", "not_equal", "less",
          "less_equal", "greater", "greater_equal", "logical_and", "logical_or"]
NP_NAMES = {"divide": "true_divide"}


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint8", "float16"])
def test_binary_against_numpy(op, dtype):
    rng = np.random.default_rng(1)
    if dtype.startswith(("int", "uint")):
        x = rng.integers(1, 9, size=(3, 4)).astype(dtype)
        y = rng.integers(1, 4, size=(4,)).astype(dtype)
    else:
        x = rng.uniform(0.5, 3, size=(3, 4)).astype(dtype)
        y = rng.uniform(0.5, 3, size=(4,)).astype(dtype)
    ref = getattr(np, NP_NAMES.get(op, op))
    if op in ("divide", "logaddexp", "arctan2") and dtype.startswith(("int", "uint")):
        want = ref(x.astype(np.float32), y.astype(np.float32))  # MLX computes these in float32
    else:
        want = ref(x, y)
    got = getattr(mx, op)(mx.array(x, dtype=mx_dtype(dtype)), mx.array(y, dtype=mx_dtype(dtype)))
    assert got.shape == want.shape
    if want.dtype == np.bool_:
        assert got.dtype == mx.bool_
    elif op in ("divide", "logaddexp", "arctan2") and dtype.startswith(("int", "uint")):
        assert got.dtype == mx.float32
    else:
        assert got.dtype.name == dtype
    tol = 2e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(np.asarray(got).astype(np.float64), want.astype(np.float64), rtol=tol)


def test_remainder_and_floor_divide_follow_python_signs():
    x = np.array([-7, 7, -7, 7], np.int32)
    y = np.array([3, -3, -3, 3], np.int32)
    check(lambda xp, a, b: xp.remainder(a, b), x, y)
    check(lambda xp, a, b: xp.floor_divide(a, b), x, y)
    xf, yf = x.astype(np.float32), y.astype(np.float32)
    check(lambda xp, a, b: xp.remainder(a, b), xf, yf)


def test_maximum_minimum_propagate_nan():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    y = np.array([np.nan, 2.0, 1.0], np.float32)
    check(lambda xp, a, b: xp.maximum(a, b), x, y)
    check(lambda xp, a, b: xp.minimum(a, b), x, y)


def test_logaddexp_is_stable():
    a = mx.array([1000.0, -1000.0, -np.inf])
    b = mx.array([1000.0, -1000.0, -np.inf])
    got = mx.logaddexp(a, b).tolist()
    assert got[0] == pytest.approx(1000 + math.log(2))
    assert got[1] == pytest.approx(-1000 + math.log(2))
    assert got[2] == -math.inf


def test_bool_arithmetic_follows_mlx():
    t, f = mx.array([True, True]), mx.array([True, False])
    assert (t + f).tolist() == [True, True]
    assert (t - f).tolist() == [False, True]
    assert (t * f).tolist() == [True, False]
    assert mx.sign(t).dtype == mx.bool_
    assert (mx.array([True]) << mx.array([True])).dtype == mx.uint8


def test_logical_and_bitwise():
    x = np.array([0, 1, 2, 3], np.int32)
    y = np.array([1, 1, 0, 2], np.int32)
    check(lambda xp, a, b: xp.logical_and(a, b), x, y)
    check(lambda xp, a, b: xp.logical_or(a, b), x, y)
    check(lambda xp, a: xp.logical_not(a), x)
    check(lambda xp, a, b: xp.bitwise_and(a, b), x, y)
    check(lambda xp, a, b: xp.bitwise_or(a, b), x, y)
    check(lambda xp, a, b: xp.bitwise_xor(a, b), x, y)
    check(lambda xp, a, b: xp.left_shift(a, b), x, y)
    check(lambda xp, a, b: xp.right_shift(a, b), x, y)
    assert mx.bitwise_invert(mx.array([0, 5], mx.uint8)).tolist() == [255, 250]
    with pytest.raises(TypeError, match=r"\[bitwise_invert\].*float32"):
        mx.bitwise_invert(mx.array([1.0]))
    with pytest.raises(TypeError, match=r"\[left_shift\]"):
        mx.left_shift(mx.array([1.0]), 1)


def test_where_clip_isclose_allclose_array_equal():
    c = np.array([True, False, True])
    x = np.array([1.0, 2.0, 3.0], np.float32)
    y = np.array([[10.0], [20.0]], np.float32)
    check(lambda xp, c_, a, b: xp.where(c_, a, b), c, x, y)
    assert mx.where(mx.array([True]), 1, 2.5).dtype == mx.float32
    assert mx.where(mx.array([True]), mx.array([1], mx.int8), 2).dtype == mx.int8
    assert mx.where(mx.array([True]), mx.array([1], mx.int8), 2.0).dtype == mx.float32
    check(lambda xp, a: xp.clip(a, 1.5, 2.5), x)
    check(lambda xp, a: xp.clip(a, None, 2.5), x)
    assert mx.clip(mx.array([1, 5]), 2, 3).tolist() == [2, 3]
    with pytest.raises(ValueError, match=r"\[clip\]"):
        mx.clip(mx.array([1]), None, None)
    a = np.array([1.0, 1.0, np.nan, np.inf], np.float32)
    b = np.array([1.0 + 1e-7, 1.1, np.nan, np.inf], np.float32)
    check(lambda xp, p, q: xp.isclose(p, q), a, b)
    check(lambda xp, p, q: xp.isclose(p, q, equal_nan=True), a, b)
    assert mx.allclose(mx.array([1.0, 2.0]), mx.array([1.0, 2.0 + 1e-7])).item() is True
    assert mx.allclose(mx.array([1.0]), mx.array([1.1])).item() is False
    assert mx.array_equal(mx.array([1, 2]), mx.array([1.0, 2.0])).item() is True
    assert mx.array_equal(mx.array([1]), mx.array([1, 2])).item() is False
    assert mx.array_equal(mx.array([np.nan]), mx.array([np.nan]), equal_nan=True).item() is True


def test_shape_errors_name_op_and_shapes():
    with pytest.raises(ValueError, match=r"\[add\] Shapes \(2\) and \(3\) cannot be broadcast"):
        mx.array([1, 2]) + mx.array([1, 2, 3])
    with pytest.raises(ValueError, match=r"\[maximum\] Shapes \(2,3\) and \(4\)"):
        mx.maximum(mx.array(np.zeros((2, 3))), mx.array(np.zeros(4)))
    with pytest.raises(ValueError, match=r"\[where\]"):
        mx.where(mx.array([True, False]), mx.array([1, 2, 3]), 0)


# --- property tests: broadcasting and promotion ------------------------------------------
@settings(max_examples=80, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4),
       op=st.sampled_from(["add", "subtract", "multiply", "maximum", "less", "equal"]))
def test_broadcasting_matches_numpy(shapes, op):
    (s1, s2), _ = shapes
    rng = np.random.default_rng(0)
    x = rng.standard_normal(s1).astype(np.float32)
    y = rng.standard_normal(s2).astype(np.float32)
    check(lambda xp, a, b: getattr(xp, op)(a, b), x, y)


@settings(max_examples=60, deadline=None)
@given(s1=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
       s2=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
def test_incompatible_shapes_raise_value_error(s1, s2):
    try:
        np.broadcast_shapes(s1, s2)
        ok = True
    except ValueError:
        ok = False
    a, b = mx.array(np.zeros(s1, np.float32)), mx.array(np.zeros(s2, np.float32))
    if ok:
        assert (a + b).shape == np.broadcast_shapes(s1, s2)
    else:
        with pytest.raises(ValueError, match=r"\[add\]"):
            a + b


@settings(max_examples=100, deadline=None)
@given(a=st.sampled_from(DTYPE_NAMES), b=st.sampled_from(DTYPE_NAMES))
def test_promotion_values_survive(a, b):
    # small non-negative values are representable in every dtype: the promoted result
    # must hold their exact sum whatever the pair
    x = mx.array(np.array([0, 1], np.float32), dtype=mx_dtype(a))
    y = mx.array(np.array([1, 1], np.float32), dtype=mx_dtype(b))
    r = (x * y)
    assert r.dtype == mx.result_type(mx_dtype(a), mx_dtype(b))
    assert np.asarray(r).astype(np.float64).tolist() == [0.0, 1.0]


@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=5),
                    elements=st.floats(-1e3, 1e3, width=32)),
       scalar=st.one_of(st.integers(-100, 100), st.floats(-100, 100, width=32)))
def test_python_scalar_operands_match_numpy(x, scalar):
    check(lambda xp, a: a * scalar + scalar, x)
    check(lambda xp, a: xp.maximum(a, scalar), x)


def test_array_api_aliases_and_small_ops():
    x = np.array([-1.5, -0.5, 0.5, 2.5], np.float32)
    check(lambda xp, a: xp.trunc(a), x)
    assert mx.trunc(mx.array([1, 2])).dtype == mx.int32
    for alias, name in [("acos", "arccos"), ("asin", "arcsin"), ("atan", "arctan"),
                        ("acosh", "arccosh"), ("asinh", "arcsinh"), ("atanh", "arctanh")]:
        assert getattr(mx, alias) is getattr(mx, name)
    assert mx.atan2 is mx.arctan2 and mx.pow is mx.power
    assert mx.bitwise_left_shift(mx.array([1]), 3).tolist() == [8]
    assert mx.logical_xor(mx.array([1, 0, 1]), mx.array([1, 1, 0])).tolist() == [False, True, True]
    p = mx.positive(mx.array([1j]))
    assert p.dtype == mx.complex64 and p.tolist() == [1j]
    m = mx.matrix_transpose(mx.array(np.arange(6).reshape(1, 2, 3)))
    assert m.shape == (1, 3, 2)
    with pytest.raises(ValueError, match=r"\[matrix_transpose\]"):
        mx.matrix_transpose(mx.array([1, 2]))
    with pytest.raises(TypeError, match=r"\[trunc\] Complex"):
        mx.trunc(mx.array([1j]))


@pytest.mark.parametrize("op", ["rsqrt", "sigmoid", "erf", "erfinv", "square", "degrees"])
def test_unary_ops_on_0d_arrays(op):
    x = mx.array(0.5)
    r = getattr(mx, op)(x)
    assert r.shape == () and r.dtype == mx.float32 and isinstance(r.item(), float)


def test_trunc_and_logical_xor_transform_rules():
    assert mx.grad(lambda x: mx.trunc(x) * x)(mx.array(2.5)).item() == 2.0
    v = mx.vmap(mx.logical_xor, in_axes=(0, None))(mx.array([[1, 0], [0, 0]]), mx.array([1, 0]))
    assert v.tolist() == [[False, False], [True, False]]
    assert mx.vmap(mx.trunc)(mx.array([1.5, -1.5])).tolist() == [1.0, -1.0]


def test_sigmoid_tails_keep_relative_precision():
    x = np.array([-30.0, -15.0, 0.0, 15.0, 30.0], np.float32)
    want = 1 / (1 + np.exp(-x.astype(np.float64)))
    np.testing.assert_allclose(np.asarray(mx.sigmoid(mx.array(x))), want, rtol=1e-6)


def test_empty_like_matrix_norm_and_arrayat_names():
    a = mx.array([[1.0, 2.0], [3.0, 4.0]])
    e = mx.empty_like(a)
    assert e.shape == (2, 2) and e.dtype == mx.float32 and e.tolist() == [[0, 0], [0, 0]]
    assert mx.empty_like(a, mx.int32).dtype == mx.int32
    assert mx.matrix_norm(a).item() == pytest.approx(np.linalg.norm(np.asarray(a)), rel=1e-6)
    assert mx.matrix_norm(a, "nuc").item() == pytest.approx(5.83095, rel=1e-5)
    assert mx.linalg.matrix_norm(a, 1).item() == pytest.approx(6.0)
    assert isinstance(a.at, mx.ArrayAt)
