"""Creation ops (mx/core/ops/creation.py) against NumPy, with MLX's default dtypes, its
fill-value dtype rules and every error path."""
import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from oracle import DTYPE_NAMES, assert_same, mx_dtype, np_dtype

HYP = settings(max_examples=60, deadline=None)
FLOATS = ["float16", "bfloat16", "float32", "float64"]


def np_of(a):
    """The values of an mx array as NumPy (bfloat16 through float32 for comparisons)."""
    x = np.asarray(a)
    return x.astype(np.float32) if x.dtype == ml_dtypes.bfloat16 else x


# ---------------------------------------------------------------------------------------
# arange
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, dtype", [
    ((5,), "int32"), ((5.0,), "float32"), ((1, 5), "int32"), ((1, 5, 2), "int32"),
    ((1, 5.0), "float32"), ((0, 1, 0.25), "float32"), ((5, 0), "int32"), ((5, 0, -1), "int32"),
    ((-3,), "int32"), ((0, 3, True), "int32"), ((0, True), "int32"),
    ((2**31, 2**31 + 3), "int64"), ((2**31 - 1, 2**31 + 1), "int64"),
    ((-2**31 - 1, -2**31 + 1), "int64"), ((0, 2**31 + 4, 2**30), "int64"),
    ((np.int64(2), np.int64(6)), "int32"), ((np.float32(1.5), 4), "float32"),
])
def test_arange_default_dtypes_and_values(args, dtype):
    a = mx.arange(*args)
    assert a.dtype.name == dtype
    want = np.arange(*[int(v) if isinstance(v, (bool, np.integer)) else v for v in args])
    assert_same(a, want.astype(dtype))


def test_arange_keyword_forms_and_stop_none():
    assert mx.arange(stop=4).tolist() == [0, 1, 2, 3]
    assert mx.arange(start=1, stop=4).tolist() == [1, 2, 3]
    assert mx.arange(4, step=2).tolist() == [0, 2]
    assert mx.arange(1, 4, None).tolist() == [1, 2, 3]
    # MLX reads arange(x, None) as arange(x)
    assert mx.arange(1, None).tolist() == [0]
    assert mx.arange(3, dtype=mx.float32, step=1).tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("name", [n for n in DTYPE_NAMES if n != "bool"])
def test_arange_every_dtype(name):
    a = mx.arange(2, 9, 3, dtype=mx_dtype(name))
    assert a.dtype.name == name and a.shape == (3,)
    np.testing.assert_array_equal(np_of(a), np.array([2, 5, 8]))


@pytest.mark.parametrize("args", [(0.5, 3, 1), (0, 10, 3.5), (0, 1, 0.3), (5, 0, -1.5),
                                  (10.5, -10, -3), (-2.7, 4.2, 1.1)])
@pytest.mark.parametrize("name", ["int16", "int32", "int64"])
def test_arange_float_bounds_with_integer_dtype_step_is_truncated_difference(args, name):
    # dtype(start + step) - dtype(start), as NumPy and MLX
    a = mx.arange(*args, dtype=mx_dtype(name))
    assert_same(a, np.arange(*args, dtype=np_dtype(name)))


def test_arange_integer_results_wrap_like_c_casts():
    np.testing.assert_array_equal(np.asarray(mx.arange(0, 300, dtype=mx.int8)),
                                  np.arange(300).astype(np.int8))
    np.testing.assert_array_equal(np.asarray(mx.arange(0, 300, 7, dtype=mx.uint8)),
                                  np.arange(0, 300, 7).astype(np.uint8))
    assert mx.arange(-3, 0, 1, mx.uint32).tolist() == [4294967293, 4294967294, 4294967295]
    assert mx.arange(-3, -2, dtype=mx.uint32).tolist() == [4294967293]
    assert mx.arange(2**63 - 5, 2**63 - 1, 2).tolist() == [2**63 - 5, 2**63 - 3]
    assert mx.arange(5, 1, dtype=mx.uint32).shape == (0,)


@pytest.mark.parametrize("name", FLOATS + ["complex64"])
def test_arange_float_dtypes_against_numpy(name):
    a = mx.arange(-5, 5, 0.125, dtype=mx_dtype(name))
    want = np.arange(-5, 5, 0.125)
    assert a.dtype.name == name
    np.testing.assert_allclose(np_of(a), want, rtol=0, atol=1e-6)


def test_arange_long_float32_range_has_no_accumulated_error():
    # values are start + i*step rounded once (MLX's CPU kernel accumulates instead)
    a = mx.arange(0, 1000, 0.1)
    step = float(np.float32(0.1))
    want = np.arange(a.shape[0]) * step
    np.testing.assert_allclose(np.asarray(a), want.astype(np.float32), rtol=1e-7, atol=0)
    assert a.shape == (10000,)


def test_arange_float64_uses_the_rounded_step():
    a = mx.arange(1, 2, 0.1, dtype=mx.float64)
    assert a.shape == (10,)
    np.testing.assert_array_equal(np.asarray(a), 1 + np.arange(10) * (1.1 - 1.0))


def test_arange_length_rules():
    assert mx.arange(0, 3, 0.9999999).shape == (4,)
    # an infinite step gives the start alone when it points toward stop
    assert mx.arange(0, 1, math.inf).tolist() == [0.0]
    assert mx.arange(0, -1, math.inf).shape == (0,)
    assert mx.arange(0, 0, math.inf).shape == (0,)
    assert mx.arange(0, 1, -math.inf).shape == (0,)
    assert mx.arange(2**31 - 1).shape == (2**31 - 1,)  # lazy: never evaluated here


def test_arange_is_lazy_and_takes_a_stream():
    a = mx.arange(10, stream=mx.cpu)
    assert a._data is None
    assert a.tolist() == list(range(10))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.arange(0, 5, 0), ValueError, r"^\[arange\] step must be nonzero\."),
    (lambda: mx.arange(0, 5, 0.0), ValueError, r"^\[arange\] step must be nonzero\."),
    (lambda: mx.arange(3, step=0), ValueError, r"^\[arange\] step must be nonzero\."),
    (lambda: mx.arange(0, 3, 1, mx.bool_), ValueError, r"^\[arange\] bool not supported"),
    (lambda: mx.arange(True), ValueError, r"^\[arange\] bool not supported"),
    (lambda: mx.arange(math.inf), ValueError, r"^\[arange\] Cannot compute length\."),
    (lambda: mx.arange(math.nan), ValueError, r"^\[arange\] Cannot compute length\."),
    (lambda: mx.arange(0, math.inf), ValueError, r"^\[arange\] Cannot compute length\."),
    (lambda: mx.arange(2**31), ValueError, r"^\[arange\] Maximum size exceeded\."),
    (lambda: mx.arange(-2**31, 0), ValueError, r"^\[arange\] Maximum size exceeded\."),
    (lambda: mx.arange(1e10), ValueError, r"^\[arange\] Maximum size exceeded\."),
    (lambda: mx.arange(0, 1, 1e-300), ValueError, r"^\[arange\] Maximum size exceeded\."),
    (lambda: mx.arange(), TypeError, r"^\[arange\] Missing the stop argument"),
    (lambda: mx.arange("a"), TypeError, r"^\[arange\] stop must be an int or a float, got str"),
    (lambda: mx.arange(mx.array(3)), TypeError, r"^\[arange\] stop must be an int or a float"),
    (lambda: mx.arange(0, 3, 1j), TypeError, r"^\[arange\] step must be an int or a float"),
    (lambda: mx.arange(3, dtype="int32"), TypeError, r"^\[arange\] dtype must be an mx Dtype"),
    (lambda: mx.arange(2**63, 2**63 + 2), OverflowError, r"^\[arange\] 9223372036854775808 does not fit"),
])
def test_arange_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@HYP
@given(st.integers(-50, 50), st.integers(-50, 50),
       st.integers(-7, 7).filter(lambda s: s != 0))
def test_arange_integers_match_numpy(start, stop, step):
    a = mx.arange(start, stop, step)
    assert_same(a, np.arange(start, stop, step).astype(np.int32))


@HYP
@given(st.floats(-100, 100), st.floats(-100, 100),
       st.floats(0.01, 10) | st.floats(-10, -0.01))
def test_arange_floats_match_numpy(start, stop, step):
    a = mx.arange(start, stop, step)
    want = np.arange(start, stop, step)
    assert a.shape == want.shape and a.dtype == mx.float32
    s0 = np.float32(start)
    incr = np.float32(np.float32(start + step) - s0)
    ref = (float(s0) + np.arange(want.size) * float(incr)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(a), ref)
    # NumPy uses the same rounded increment (its float32 fill may differ by an ulp)
    scale = max(abs(start), abs(stop), abs(step))
    np.testing.assert_allclose(np.asarray(a), np.arange(start, stop, step, dtype=np.float32),
                               rtol=1e-6, atol=2e-7 * scale)


# ---------------------------------------------------------------------------------------
# linspace
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("start, stop, num, endpoint", [
    (0, 1, 50, True), (0, 1, 5, True), (0, 1, 5, False), (0, 1, 0, True), (0, 1, 1, True),
    (3, 1, 1, True), (0, 1, 1, False), (-1.234, 5.678, 37, True), (-1.234, 5.678, 37, False),
    (10, -10, 9, True), (1e6, 1e6 + 1, 11, True), (2, 2, 4, True),
])
def test_linspace_matches_numpy(start, stop, num, endpoint):
    a = mx.linspace(start, stop, num, endpoint)
    assert a.dtype == mx.float32
    want = np.linspace(start, stop, num, endpoint=endpoint)
    assert_same(a, want.astype(np.float32), rtol=1e-6, atol=1e-6)


def test_linspace_default_num_and_float64():
    assert mx.linspace(0, 1).shape == (50,)
    a = mx.linspace(0, 10, 4, dtype=mx.float64)
    assert a.dtype == mx.float64
    np.testing.assert_allclose(np.asarray(a), np.linspace(0, 10, 4), rtol=1e-15)
    assert mx.linspace(0, 10, 4, dtype=None).dtype == mx.float32


@pytest.mark.parametrize("name, want", [
    ("int32", [0, 3, 6, 10]), ("int8", [0, 3, 6, 10]), ("bool", [False, True, True, True]),
    ("float16", [0.0, 3.333984375, 6.66796875, 10.0]), ("complex64", [0, 10 / 3, 20 / 3, 10]),
    ("bfloat16", [0.0, 3.328125, 6.65625, 10.0]),  # as MLX 0.32
])
def test_linspace_other_dtypes_convert_like_c(name, want):
    a = mx.linspace(0, 10, 4, dtype=mx_dtype(name))
    assert a.dtype.name == name
    np.testing.assert_allclose(np_of(a), np.array(want), rtol=1e-6)


def test_linspace_negative_values_wrap_into_unsigned():
    a = mx.linspace(-3, 10, 7, dtype=mx.uint8)
    assert a.tolist() == [253, 0, 1, 3, 5, 7, 10]


def test_linspace_scalar_arrays_and_infinities():
    a = mx.linspace(mx.array(0), mx.array(10.0), 4, stream=mx.cpu)
    np.testing.assert_allclose(np.asarray(a), np.linspace(0, 10, 4), rtol=1e-6)
    # (1 - t) * start + t * stop: 0 * inf is nan at t = 0, as in MLX
    b = np.asarray(mx.linspace(0, math.inf, 3))
    assert math.isnan(b[0]) and b[1] == math.inf and b[2] == math.inf


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.linspace(0, 1, -1), ValueError, r"^\[linspace\] number of samples, -1, must be non-negative\."),
    (lambda: mx.linspace(0, 1, 4.0), TypeError, r"^\[linspace\] num must be an integer, got float"),
    (lambda: mx.linspace(0, 1, None), TypeError, r"^\[linspace\] num must be an integer, got NoneType"),
    (lambda: mx.linspace(0j, 1, 3), TypeError, r"^\[linspace\] start must be a real scalar, got complex"),
    (lambda: mx.linspace(0, "1", 3), TypeError, r"^\[linspace\] stop must be a real scalar, got str"),
    (lambda: mx.linspace(mx.array([0, 1]), 1, 3), TypeError, r"^\[linspace\] start must be a real scalar, got an array of shape \(2\)"),
    (lambda: mx.linspace(0, 1, 3, dtype="float32"), TypeError, r"^\[linspace\] dtype must be an mx Dtype"),
])
def test_linspace_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@HYP
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.integers(0, 40), st.booleans())
def test_linspace_hypothesis(start, stop, num, endpoint):
    a = mx.linspace(start, stop, num, endpoint=endpoint)
    want = np.linspace(start, stop, num, endpoint=endpoint)
    assert a.shape == want.shape
    np.testing.assert_allclose(np.asarray(a), want, rtol=1e-5, atol=1e-3)
    # bit for bit MLX's float32 interpolation (1 - t) * start + t * stop, t = i / div
    f = np.float32
    t = np.arange(num, dtype=f) / f(max(num - 1 if endpoint else num, 1))
    np.testing.assert_array_equal(np.asarray(a), (f(1) - t) * f(start) + t * f(stop))
    if endpoint and num > 1:
        assert np.asarray(a)[-1] == f(stop)


# ---------------------------------------------------------------------------------------
# zeros, ones, empty, full
# ---------------------------------------------------------------------------------------
SHAPES = [3, (2, 3), [2, 3], (), [], (0, 3), (2, 1, 4), np.int64(3), (np.int64(2), 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=repr)
@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
def test_zeros_ones_empty_shapes_default_float32(fn, shape):
    a = getattr(mx, fn)(shape)
    want = (np.ones if fn == "ones" else np.zeros)(shape, np.float32)
    assert a._data is None  # built lazily
    assert_same(a, want)


@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
def test_zeros_ones_empty_every_dtype(fn, name):
    a = getattr(mx, fn)((2, 3), mx_dtype(name))
    want = (np.ones if fn == "ones" else np.zeros)((2, 3), np_dtype(name))
    assert_same(a, want)


def test_shape_from_an_array_and_dtype_none():
    assert mx.zeros(mx.array([2, 3])).shape == (2, 3)
    assert mx.ones((2, 2), None).dtype == mx.float32
    assert mx.zeros(3, dtype=None, stream=mx.cpu).dtype == mx.float32


@pytest.mark.parametrize("fn", ["zeros", "ones", "empty"])
def test_zeros_ones_empty_errors(fn):
    f = getattr(mx, fn)
    with pytest.raises(ValueError, match=rf"^\[{fn}\] Negative dimensions are not allowed; got shape \(2,-1\)"):
        f((2, -1))
    with pytest.raises(ValueError, match=rf"^\[{fn}\] Negative dimensions are not allowed; got shape \(-1\)"):
        f(-1)
    with pytest.raises(TypeError, match=rf"^\[{fn}\] shape must be an int or a sequence of ints"):
        f(2.0)
    with pytest.raises(TypeError, match=rf"^\[{fn}\] shape must be a sequence of integers"):
        f((2.0, 3))
    with pytest.raises(TypeError, match=rf"^\[{fn}\] dtype must be an mx Dtype"):
        f(3, "float32")


# MLX's rule for a Python scalar fill: (value, dtype) -> result dtype
@pytest.mark.parametrize("val, dtype, want", [
    (2, None, "int32"), (2.5, None, "float32"), (True, None, "bool"), (1 + 2j, None, "complex64"),
    (2**40, None, "int64"), (2, "float32", "float32"), (2, "float16", "float16"),
    (2, "uint64", "uint64"), (2, "complex64", "complex64"), (2, "bool", "int32"),
    (2.5, "int32", "float32"), (2.5, "bool", "float32"), (2.5, "complex64", "float32"),
    (2.5, "float16", "float16"), (2.5, "bfloat16", "bfloat16"), (2.5, "float64", "float64"),
    (True, "int32", "int32"), (True, "float32", "float32"), (1j, "float32", "complex64"),
    (np.float64(2.5), None, "float32"), (np.float64(2.5), "int32", "float32"),
])
def test_full_scalar_dtype_rules(val, dtype, want):
    a = mx.full((2, 3), val, None if dtype is None else mx_dtype(dtype))
    assert a.dtype.name == want
    assert_same(a, np.full((2, 3), val).astype(np_dtype(want)))


def test_full_array_values_broadcast_and_keep_their_dtype():
    v = mx.array([[1], [2]], mx.int8)
    assert_same(mx.full((2, 3), v), np.array([[1, 1, 1], [2, 2, 2]], np.int8))
    # as MLX: an mx array fill keeps its dtype even when dtype is given
    assert mx.full((2, 3), v, mx.float32).dtype == mx.int8
    assert mx.full(3, mx.array(2.5), mx.int32).dtype == mx.float32
    assert_same(mx.full((4, 2, 3), mx.array([1.5, 2.5, 3.5])),
                np.broadcast_to(np.array([1.5, 2.5, 3.5], np.float32), (4, 2, 3)))
    assert_same(mx.full((), mx.array(7)), np.array(7, np.int32))


def test_full_other_array_likes_convert_to_dtype():
    assert_same(mx.full(3, np.array(2.5), mx.int32), np.array([2, 2, 2], np.int32))
    assert_same(mx.full(3, np.float32(2.5), mx.int32), np.array([2, 2, 2], np.int32))
    assert_same(mx.full((2, 3), np.array([1.0, 2, 3])), np.array([[1.0, 2, 3]] * 2, np.float32))
    assert_same(mx.full(3, np.int64(2)), np.array([2, 2, 2], np.int64))
    assert_same(mx.full(2, [1.5, 2.5]), np.array([1.5, 2.5], np.float32))


def test_full_lazy_array_value_is_an_input():
    v = mx.arange(3) * 2
    a = mx.full((2, 3), v, stream=mx.cpu)
    assert a._data is None and v._data is None
    assert a.tolist() == [[0, 2, 4], [0, 2, 4]]


def test_full_special_values():
    a = np.asarray(mx.full(3, math.nan, mx.int32))
    assert a.dtype == np.float32 and np.isnan(a).all()
    assert mx.full(2, math.inf, mx.float16).tolist() == [math.inf, math.inf]
    assert mx.full(2, -1, mx.int8).tolist() == [-1, -1]
    assert mx.full(shape=3, vals=1).tolist() == [1, 1, 1]


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.full(3, 2**40, mx.int32), ValueError, r"^\[full\] Converting 1099511627776 to int32 would result in overflow\."),
    (lambda: mx.full(3, 300, mx.uint8), ValueError, r"^\[full\] Converting 300 to uint8 would result in overflow\."),
    (lambda: mx.full(3, -1, mx.uint8), ValueError, r"^\[full\] Converting -1 to uint8 would result in overflow\."),
    (lambda: mx.full((2, 3), mx.array([1, 2])), ValueError, r"^\[full\] Cannot broadcast array of shape \(2\) into shape \(2,3\)\."),
    (lambda: mx.full((2,), mx.array([[1], [2]])), ValueError, r"^\[full\] Cannot broadcast array of shape \(2,1\) into shape \(2\)\."),
    (lambda: mx.full(-2, 5), ValueError, r"^\[full\] Negative dimensions are not allowed"),
    (lambda: mx.full(3, None), TypeError, r"^\[full\] vals must be a scalar or an array, got NoneType"),
    (lambda: mx.full(3, "a"), TypeError, r"^\[full\] vals must be a scalar or an array, got str"),
    (lambda: mx.full(3, 1, "int32"), TypeError, r"^\[full\] dtype must be an mx Dtype"),
])
def test_full_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@HYP
@given(st.lists(st.integers(0, 4), max_size=4), st.sampled_from(["int32", "float32", "bool", "bfloat16"]),
       st.integers(-100, 100))
def test_full_hypothesis(shape, name, val):
    a = mx.full(shape, val, mx_dtype(name))
    want_dtype = "int32" if name == "bool" else name
    assert a.shape == tuple(shape) and a.dtype.name == want_dtype
    np.testing.assert_array_equal(np_of(a), np.full(shape, val).astype(np_dtype(want_dtype)))


# ---------------------------------------------------------------------------------------
# *_like
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bool", "int8", "uint32", "bfloat16", "float32", "complex64"])
def test_zeros_like_ones_like(name):
    src = mx.zeros((2, 1, 3), mx_dtype(name))
    assert_same(mx.zeros_like(src), np.zeros((2, 1, 3), np_dtype(name)))
    assert_same(mx.ones_like(src), np.ones((2, 1, 3), np_dtype(name)))
    assert_same(mx.zeros_like(src, mx.float16), np.zeros((2, 1, 3), np.float16))
    assert_same(mx.ones_like(src, dtype=mx.int8, stream=mx.cpu), np.ones((2, 1, 3), np.int8))


def test_like_ops_do_not_evaluate_their_source():
    src = mx.arange(6) + 1
    z = mx.zeros_like(src)
    assert z._inputs == () and src._data is None


def test_full_like_casts_to_the_source_dtype():
    assert_same(mx.full_like(mx.array([1, 2]), 2.5), np.array([2, 2], np.int32))
    assert_same(mx.full_like(mx.array([1.0, 2]), 2), np.array([2, 2], np.float32))
    assert_same(mx.full_like(mx.array([1, 2]), 2.5, mx.float32), np.array([2.5, 2.5], np.float32))
    assert_same(mx.full_like(mx.array([1, 2], mx.bool_), 3), np.array([True, True]))
    assert_same(mx.full_like(mx.array([1, 2], mx.uint8), -2.7), np.array([254, 254], np.uint8))
    assert_same(mx.full_like(mx.array([[1, 2], [3, 4]]), mx.array([7.5, 8])),
                np.array([[7, 8], [7, 8]], np.int32))
    # an array value wraps when cast, as MLX
    assert_same(mx.full_like(mx.array([1, 2], mx.int8), mx.array(300)), np.array([44, 44], np.int8))


def test_full_like_broadcasts_against_the_source_shape():
    a = mx.full_like(mx.ones((2, 1)), mx.array([1, 2, 3]))
    assert_same(a, np.array([[1.0, 2, 3], [1, 2, 3]], np.float32))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.zeros_like([1, 2]), TypeError, r"^\[zeros_like\] a must be an mx array, got list"),
    (lambda: mx.ones_like(3.0), TypeError, r"^\[ones_like\] a must be an mx array, got float"),
    (lambda: mx.full_like(np.ones(2), 1), TypeError, r"^\[full_like\] a must be an mx array, got ndarray"),
    (lambda: mx.zeros_like(mx.ones(2), "int8"), TypeError, r"^\[zeros_like\] dtype must be an mx Dtype"),
    (lambda: mx.full_like(mx.array([1, 2], mx.int8), 300), ValueError, r"^\[full_like\] Converting 300 to int8 would result in overflow\."),
    (lambda: mx.full_like(mx.ones((2, 2)), mx.array([7, 8, 9])), ValueError, r"^\[full_like\] Shapes \(2,2\) and \(3\) cannot be broadcast\."),
    (lambda: mx.full_like(mx.ones(2), None), TypeError, r"^\[full_like\] vals must be a scalar or an array"),
])
def test_like_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------------------------------
# eye, identity, tri
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m, k", [(2, None, 0), (2, 3, 0), (2, 3, 1), (2, 3, -1), (3, None, 5),
                                     (3, None, -5), (0, None, 0), (4, 2, -1), (1, 0, 0)])
@pytest.mark.parametrize("name", ["float32", "int32", "bool", "bfloat16", "complex64"])
def test_eye_and_tri_match_numpy(n, m, k, name):
    d, nd = mx_dtype(name), np_dtype(name)
    assert_same(mx.eye(n, m, k, d), np.eye(n, m, k, dtype=nd))
    assert_same(mx.tri(n, m, k, d), np.tri(n, m, k, dtype=nd))


def test_eye_identity_tri_default_dtypes():
    assert mx.eye(3).dtype == mx.float32
    assert mx.eye(2, dtype=None).dtype == mx.float32
    assert mx.tri(3).dtype == mx.float32
    assert mx.tri(3, None, 0, None).dtype == mx.float32
    assert_same(mx.identity(3), np.identity(3, np.float32))
    assert_same(mx.identity(3, mx.int8), np.identity(3, np.int8))
    assert_same(mx.identity(0), np.zeros((0, 0), np.float32))
    assert_same(mx.eye(np.int64(2), k=np.int32(1)), np.eye(2, k=1, dtype=np.float32))


def test_tri_negative_sizes_give_empty_matrices():
    assert mx.tri(-1).shape == (0, 0)
    assert mx.tri(3, -1).shape == (3, 0)
    assert np.asarray(mx.tri(3, -1)).size == 0


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.eye(-1), ValueError, r"^\[eye\] N and M must be non-negative integers; got N=-1, M=-1\."),
    (lambda: mx.eye(2, -1), ValueError, r"^\[eye\] N and M must be non-negative integers; got N=2, M=-1\."),
    (lambda: mx.identity(-1), ValueError, r"^\[identity\] N and M must be non-negative integers"),
    (lambda: mx.eye(2.0), TypeError, r"^\[eye\] n must be an integer, got float"),
    (lambda: mx.eye(2, 2.0), TypeError, r"^\[eye\] m must be an integer, got float"),
    (lambda: mx.eye(2, k=0.5), TypeError, r"^\[eye\] k must be an integer, got float"),
    (lambda: mx.eye(True), TypeError, r"^\[eye\] n must be an integer, got bool"),
    (lambda: mx.identity(2, "float32"), TypeError, r"^\[identity\] dtype must be an mx Dtype"),
    (lambda: mx.tri(2.5), TypeError, r"^\[tri\] n must be an integer, got float"),
    (lambda: mx.tri(2, k="1"), TypeError, r"^\[tri\] k must be an integer, got str"),
])
def test_eye_tri_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------------------------------
# meshgrid
# ---------------------------------------------------------------------------------------
GRID_INPUTS = [
    [np.array([1, 2, 3], np.int32)],
    [np.array([1, 2, 3], np.int32), np.array([4.0, 5.0], np.float32)],
    [np.array([1, 2], np.int8), np.array([3, 4, 5], np.int32), np.array([5, 6, 7, 8], np.float16)],
    [np.array([[1, 2]], np.int32), np.array([3, 4], np.int32)],
    [np.array(1, np.int32), np.array([3, 4], np.int32)],
    [np.array([True, False]), np.zeros(0, np.float32)],
]


@pytest.mark.parametrize("inputs", GRID_INPUTS, ids=lambda xs: "x".join(str(x.shape) for x in xs))
@pytest.mark.parametrize("indexing", ["xy", "ij"])
@pytest.mark.parametrize("sparse", [False, True])
def test_meshgrid_matches_numpy(inputs, indexing, sparse):
    got = mx.meshgrid(*[mx.array(x, dtype=mx_dtype(x.dtype.name)) for x in inputs],
                      sparse=sparse, indexing=indexing)
    want = np.meshgrid(*inputs, sparse=sparse, indexing=indexing)
    assert isinstance(got, tuple)
    assert_same(list(got), list(want))


def test_meshgrid_edge_cases():
    assert mx.meshgrid() == ()
    x, y = mx.meshgrid([1, 2, 3], [4, 5], stream=mx.cpu)  # array-likes are accepted
    assert x.tolist() == [[1, 2, 3], [1, 2, 3]] and y.tolist() == [[4, 4, 4], [5, 5, 5]]


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.meshgrid(mx.ones(2), indexing="xx"), ValueError, r"^\[meshgrid\] Invalid indexing value\. Valid values are 'xy' and 'ij'\."),
    (lambda: mx.meshgrid(mx.ones(2), indexing=None), ValueError, r"^\[meshgrid\] Invalid indexing value"),
    (lambda: mx.meshgrid(mx.ones(2), sparse=None), TypeError, r"^\[meshgrid\] sparse must be a bool, got NoneType"),
    (lambda: mx.meshgrid(mx.ones(2), "a"), TypeError, r"^\[meshgrid\]"),
])
def test_meshgrid_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------------------------------
# windows
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hanning", "hamming", "blackman", "bartlett"])
@pytest.mark.parametrize("M", [-3, 0, 1, 2, 3, 4, 5, 7, 64, 1000])
def test_windows_match_numpy_in_float32(name, M):
    a = getattr(mx, name)(M)
    want = getattr(np, name)(M)
    assert a.dtype == mx.float32 and a.shape == want.shape
    np.testing.assert_allclose(np.asarray(a), want, rtol=0, atol=1e-6)
    if M == 1:
        assert a.tolist() == [1.0]


@pytest.mark.parametrize("name", ["hanning", "hamming", "blackman", "bartlett"])
def test_window_errors_and_keywords(name):
    f = getattr(mx, name)
    assert f(M=3, stream=mx.cpu).shape == (3,)
    with pytest.raises(TypeError, match=rf"^\[{name}\] M must be an integer, got float"):
        f(5.0)
    with pytest.raises(TypeError, match=rf"^\[{name}\] M must be an integer, got str"):
        f("5")


def test_public_names_are_exported():
    from mx.core.ops import creation
    for name in creation.__all__:
        assert getattr(mx, name) is getattr(creation, name)
        assert getattr(creation, name).__doc__
