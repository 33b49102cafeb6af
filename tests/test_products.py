"""Products (mx/core/ops/products.py) against NumPy: matmul and `@`, addmm, inner, outer,
tensordot, kron, vecdot, with MLX's dtype rules and every error path."""

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core.ops import products
from oracle import assert_same, check, mx_dtype, np_dtype

HYP = settings(max_examples=80, deadline=None)
INEXACT = ["float16", "bfloat16", "float32", "float64", "complex64"]
TOL = {"float16": 2e-2, "bfloat16": 5e-2, "float32": 1e-5, "float64": 1e-12, "complex64": 1e-5}


def rand(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith("uint"):
        return np.asarray(rng.integers(0, 10, shape)).astype(dtype)
    if "int" in dtype:
        return np.asarray(rng.integers(-10, 10, shape)).astype(dtype)
    x = np.asarray(rng.standard_normal(shape))
    if dtype == "complex64":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(np_dtype(dtype))


def to_mx(x):
    return mx.array(x, dtype=mx_dtype(x.dtype.name))


def wide(x):
    """x in float64 / complex128: the precision references are computed in."""
    x = np.asarray(x)
    if x.dtype == ml_dtypes.bfloat16:
        x = x.astype(np.float32)
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64)


def close(got, want, name, scale=1.0):
    tol = TOL.get(name, 1e-5)
    assert_same(got, want, dtype=name, rtol=tol, atol=tol * scale)


# ---------------------------------------------------------------------------------------
# matmul
# ---------------------------------------------------------------------------------------
MATMUL_SHAPES = [
    ((2, 3), (3, 4)), ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((5, 1, 2, 3), (4, 3, 2)),
    ((3,), (2, 3, 4)), ((2, 3, 4), (4,)), ((0, 3), (3, 4)), ((2, 0), (0, 4)), ((1, 1), (1, 1)),
    ((7, 1, 3, 5), (1, 6, 5, 2)), ((2, 3, 4), (2, 4, 5)), ((1, 3), (5, 3, 2)), ((4, 6, 5), (5, 1)),
]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES, ids=str)
@pytest.mark.parametrize("name", INEXACT)
def test_matmul_matches_numpy(sa, sb, name):
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    got = mx.matmul(to_mx(a), to_mx(b))
    close(got, np.matmul(wide(a), wide(b)), name, scale=max(sa[-1], 1))


def test_matmul_float32_is_exactly_numpys_blas_result():
    a, b = rand((33, 17)), rand((17, 9), seed=3)
    np.testing.assert_array_equal(np.asarray(mx.matmul(to_mx(a), to_mx(b))), np.matmul(a, b))


@pytest.mark.parametrize("da, db, want", [
    ("int32", "float32", "float32"), ("float16", "float32", "float32"),
    ("float16", "bfloat16", "float32"), ("float64", "float32", "float64"),
    ("complex64", "float32", "complex64"), ("int64", "float16", "float16"),
    ("uint64", "int8", "float32"), ("complex64", "float16", "complex64"),
    ("bool", "bfloat16", "bfloat16"),
])
def test_matmul_promotes_with_mlx_rules(da, db, want):
    a, b = rand((3, 4), da, 1), rand((4, 2), db, 2)
    got = mx.matmul(to_mx(a), to_mx(b))
    close(got, np.matmul(wide(a), wide(b)), want, scale=4)


@pytest.mark.parametrize("name", ["bool", "uint8", "int8", "int32", "int64", "uint64"])
def test_matmul_refuses_integer_results(name):
    a = to_mx(rand((2, 3), name))
    with pytest.raises(ValueError, match=rf"^\[matmul\] Only inexact types are supported but "
                                         rf"{name} and {name} were provided which results in "
                                         rf"{name}, which is not a floating point type\."):
        mx.matmul(a, a.T if hasattr(a, "T") else a)


@pytest.mark.parametrize("sa, sb, msg", [
    ((2, 3), (4, 5), r"first input with shape \(2,3\) must match second to last dimension of second input with shape \(4,5\)\."),
    ((3,), (4,), r"first input with shape \(1,3\) must match second to last dimension of second input with shape \(4,1\)\."),
    ((2, 3), (4,), r"first input with shape \(2,3\) must match second to last dimension of second input with shape \(4,1\)\."),
    ((4,), (3, 4), r"first input with shape \(1,4\) must match second to last dimension of second input with shape \(3,4\)\."),
])
def test_matmul_inner_dimension_mismatch(sa, sb, msg):
    with pytest.raises(ValueError, match=r"^\[matmul\] Last dimension of " + msg):
        mx.matmul(mx.ones(sa), mx.ones(sb))
    with pytest.raises(ValueError, match=r"^\[matmul\] Last dimension of " + msg):
        mx.ones(sa) @ mx.ones(sb)


def test_matmul_other_errors():
    with pytest.raises(ValueError, match=r"^\[matmul\] Shapes \(5,2\) and \(4\) cannot be broadcast\."):
        mx.matmul(mx.ones((5, 2, 2, 3)), mx.ones((4, 3, 2)))
    for a, b in [(mx.ones((2, 3)), mx.array(2.0)), (mx.array(2.0), mx.ones((2, 3))),
                 (mx.ones(3), 2.0)]:
        with pytest.raises(ValueError, match=r"^\[matmul\] Got 0 dimension input\. Inputs must "
                                             r"have at least one dimension\."):
            mx.matmul(a, b)
    with pytest.raises(TypeError, match=r"^\[matmul\]"):
        mx.matmul(mx.ones(3), "abc")


def test_matmul_operator_and_reflected_operator():
    a, b = rand((4, 3)), rand((3, 2), seed=5)
    assert_same(to_mx(a) @ to_mx(b), a @ b)
    # a list on the left goes through array.__rmatmul__
    got = b.T.tolist() @ to_mx(a).T
    assert_same(got, b.T @ a.T)
    assert_same(to_mx(a) @ b, a @ b)


def test_matmul_is_lazy_and_casts_in_the_graph():
    a = mx.ones((2, 3), mx.int32)
    b = mx.ones((3, 2), mx.float16)
    c = mx.matmul(a, b, stream=mx.cpu)
    assert c._data is None and c.dtype == mx.float16
    # the integer operand reaches the kernel already converted
    assert all(x.dtype == mx.float16 for x in c._inputs)
    assert c.tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_matmul_kernel_hands_buffers_to_blas_without_copies(monkeypatch):
    a, b = to_mx(rand((8, 8))), to_mx(rand((8, 8), seed=1))
    da, db = a._data, b._data
    seen = []
    real = np.matmul

    def spy(x, y):
        seen.append((x, y))
        return real(x, y)

    monkeypatch.setattr(products.np, "matmul", spy)
    try:
        mx.eval(mx.matmul(a, b))
    finally:
        monkeypatch.undo()
    assert len(seen) == 1 and seen[0][0] is da and seen[0][1] is db


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
def test_half_precision_is_multiplied_in_float32(name, monkeypatch):
    # NumPy has no BLAS for halves (and ml_dtypes' bfloat16 matmul is a slow generic loop)
    seen = []
    real = np.matmul

    def spy(x, y):
        seen.append((x.dtype, y.dtype))
        return real(x, y)

    a = mx.full((3, 64), 0.5, mx_dtype(name))
    b = mx.full((64, 2), 2.0, mx_dtype(name))
    monkeypatch.setattr(products.np, "matmul", spy)
    try:
        got = mx.matmul(a, b)
        mx.eval(got)
    finally:
        monkeypatch.undo()
    assert seen == [(np.float32, np.float32)]
    assert got.dtype.name == name and got.tolist() == [[64.0, 64.0]] * 3


@st.composite
def matmul_shapes(draw):
    """Two operand shapes for matmul: 1-D or matrices with broadcasting batch axes."""
    m, k, n = draw(st.integers(0, 4)), draw(st.integers(0, 4)), draw(st.integers(0, 4))
    nb = draw(st.integers(0, 3))
    batch = [draw(st.integers(1, 3)) for _ in range(nb)]

    def operand(inner_shape):
        if draw(st.booleans()):  # drop leading batch axes and set some to 1
            keep = batch[draw(st.integers(0, nb)):]
        else:
            keep = batch
        keep = [1 if draw(st.booleans()) else d for d in keep]
        return tuple(keep) + inner_shape

    sa = (k,) if draw(st.integers(0, 4)) == 0 else operand((m, k))
    sb = (k,) if draw(st.integers(0, 4)) == 0 else operand((k, n))
    return sa, sb


@HYP
@given(matmul_shapes(), st.sampled_from(["float32", "float64", "float16", "complex64"]))
def test_matmul_hypothesis_shapes(shapes, name):
    sa, sb = shapes
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    got = mx.matmul(to_mx(a), to_mx(b))
    close(got, np.matmul(wide(a), wide(b)), name, scale=max(sa[-1], 1))


@HYP
@given(st.lists(st.integers(1, 4), min_size=2, max_size=4),
       st.lists(st.integers(1, 4), min_size=2, max_size=4))
def test_matmul_hypothesis_errors_agree_with_numpy(sa, sb):
    a, b = rand(tuple(sa)), rand(tuple(sb), seed=1)
    try:
        want = np.matmul(a, b)
    except ValueError:
        with pytest.raises(ValueError, match=r"^\[matmul\] "):
            mx.matmul(to_mx(a), to_mx(b))
    else:
        assert_same(mx.matmul(to_mx(a), to_mx(b)), want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------
# addmm
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sc, sa, sb", [
    ((2, 4), (2, 3), (3, 4)), ((4,), (2, 3), (3, 4)), ((1, 4), (2, 3), (3, 4)), ((2, 1), (2, 3), (3, 4)),
    ((2,), (2, 3), (3,)), ((4,), (3,), (3, 4)), ((1, 1, 4), (2, 2, 3), (3, 4)), ((), (3,), (3,)),
    ((), (2, 3), (3, 4)), ((2, 5, 4), (2, 5, 3), (2, 3, 4)),
])
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (2.0, 0.5), (-1, 3), (0.0, 0.0), (0.5, 0.0)])
def test_addmm_matches_numpy(sc, sa, sb, alpha, beta):
    c, a, b = rand(sc, seed=0), rand(sa, seed=1), rand(sb, seed=2)
    got = mx.addmm(to_mx(c), to_mx(a), to_mx(b), alpha, beta)
    want = alpha * np.matmul(wide(a), wide(b)) + beta * wide(c)
    close(got, want, "float32", scale=4)


@pytest.mark.parametrize("dc, da, db, want", [
    ("float16", "float16", "float16", "float16"), ("bfloat16", "bfloat16", "bfloat16", "bfloat16"),
    ("int32", "float32", "float32", "float32"), ("float32", "int32", "int32", "float32"),
    ("float16", "bfloat16", "bfloat16", "float32"), ("float64", "float32", "float32", "float64"),
    ("complex64", "float32", "float32", "complex64"),
])
def test_addmm_dtypes(dc, da, db, want):
    c, a, b = rand((2, 4), dc, 0), rand((2, 3), da, 1), rand((3, 4), db, 2)
    got = mx.addmm(to_mx(c), to_mx(a), to_mx(b), alpha=0.1, beta=0.3)
    close(got, 0.1 * (wide(a) @ wide(b)) + 0.3 * wide(c), want, scale=4)


def test_addmm_does_not_touch_its_inputs_and_takes_array_scalars():
    c = to_mx(rand((2, 4)))
    before = np.asarray(c).copy()
    a, b = to_mx(rand((2, 3), seed=1)), to_mx(rand((3, 4), seed=2))
    out = mx.addmm(c, a, b, alpha=mx.array(2.0), beta=mx.array(3.0), stream=mx.cpu)
    close(out, 2 * (wide(a) @ wide(b)) + 3 * wide(before), "float32", scale=4)
    np.testing.assert_array_equal(np.asarray(c), before)


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.addmm(mx.ones((3, 2, 4)), mx.ones((2, 3)), mx.ones((3, 4))), ValueError,
     r"^\[addmm\] input c with shape \(3,2,4\) must broadcast to the output shape \(2,4\)\."),
    (lambda: mx.addmm(mx.ones(1), mx.ones(3), mx.ones(3)), ValueError,
     r"^\[addmm\] input c with shape \(1\) must broadcast to the output shape \(\)\."),
    (lambda: mx.addmm(mx.ones((2, 5)), mx.ones((2, 3)), mx.ones((3, 4))), ValueError,
     r"^\[addmm\] Shapes \(2,5\) and \(2,4\) cannot be broadcast\."),
    (lambda: mx.addmm(mx.ones((2, 4)), mx.ones((2, 3)), mx.ones((5, 4))), ValueError,
     r"^\[addmm\] Last dimension of first input with shape \(2,3\) must match second to last "
     r"dimension of second input with shape \(5,4\)\."),
    (lambda: mx.addmm(mx.ones((2, 4), mx.int32), mx.ones((2, 3), mx.int32), mx.ones((3, 4), mx.int32)),
     ValueError, r"^\[addmm\] Only inexact types are supported but int32, int32 and int32 were provided"),
    (lambda: mx.addmm(mx.ones((2, 4)), mx.ones((2, 3)), mx.array(1.0)), ValueError,
     r"^\[addmm\] Got 0 dimension input"),
    (lambda: mx.addmm(mx.ones((2, 4)), mx.ones((2, 3)), mx.ones((3, 4)), alpha=None), TypeError,
     r"^\[addmm\] alpha must be a real number, got NoneType"),
    (lambda: mx.addmm(mx.ones((2, 4)), mx.ones((2, 3)), mx.ones((3, 4)), beta="a"), TypeError,
     r"^\[addmm\] beta must be a real number, got str"),
])
def test_addmm_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------------------------------
# inner, outer
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb", [((3,), (3,)), ((2, 3), (4, 3)), ((2, 5, 3), (4, 3)),
                                    ((3,), (2, 2, 3)), ((0, 3), (2, 3)), ((2, 0), (0,))], ids=str)
@pytest.mark.parametrize("name", INEXACT)
def test_inner_matches_numpy(sa, sb, name):
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    close(mx.inner(to_mx(a), to_mx(b)), np.inner(wide(a), wide(b)), name, scale=3)


def test_inner_with_a_0d_operand_multiplies():
    assert_same(mx.inner(mx.array(2.0), mx.array(3.0)), np.array(6.0, np.float32))
    assert_same(mx.inner(mx.array(2.0), mx.ones(3)), np.full(3, 2.0, np.float32))
    assert_same(mx.inner(mx.array(2), mx.array(3)), np.array(6, np.int32))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.inner(mx.ones((2, 3)), mx.ones((4, 2))), ValueError,
     r"^\[inner\] a and b must have the same last dimension; got shapes \(2,3\) and \(4,2\)\."),
    (lambda: mx.inner(mx.ones(3, mx.int32), mx.ones(3, mx.int32)), ValueError,
     r"^\[inner\] Only inexact types are supported but int32 and int32"),
    (lambda: mx.inner(mx.ones(3, mx.bool_), mx.ones(3, mx.bool_)), ValueError,
     r"^\[inner\] Only inexact types are supported but bool and bool"),
])
def test_inner_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


@pytest.mark.parametrize("sa, sb", [((3,), (2,)), ((3, 2), (2,)), ((0,), (3,)), ((), (3,)),
                                    ((2, 2), (3, 1))], ids=str)
@pytest.mark.parametrize("name", ["bool", "int8", "int32", "uint16", "float16", "bfloat16",
                                  "float32", "complex64"])
def test_outer_matches_numpy_for_every_kind(sa, sb, name):
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    check(lambda xp, x, y: xp.outer(x, y), a, b)


def test_outer_promotes_like_mlx():
    got = mx.outer(mx.ones(3, mx.int32), mx.ones(2, mx.int8))
    assert got.dtype == mx.int32 and got.shape == (3, 2)
    got = mx.outer(mx.ones(3, mx.uint64), mx.ones(2, mx.int8))
    assert got.dtype == mx.float32  # MLX's table: uint64 with a signed int is float32
    assert_same(mx.outer([1, 2], mx.array([1.5, 2.0])), np.outer([1, 2], [1.5, 2.0]).astype(np.float32))


# ---------------------------------------------------------------------------------------
# tensordot
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb, axes", [
    ((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (4, 5), 1), ((2, 3, 4), (3, 4, 5), 0),
    ((3, 4), (3, 4), 2), ((2, 3, 4), (4, 5), [[2], [0]]), ((2, 3, 4), (4, 3), [[1, 2], [1, 0]]),
    ((2, 3, 4), (4, 3), ((1, 2), (1, 0))), ((2, 3, 4), (4, 5), [[-1], [0]]),
    ((3, 4), (3, 4), [[], []]), ((3, 4), (4, 3), [[0], [1]]), ((3, 4), (4, 3), [1, 0]),
    ((2, 0, 3), (3, 0), [[1, 2], [1, 0]]),
])
@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16", "complex64"])
def test_tensordot_matches_numpy(sa, sb, axes, name):
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    got = mx.tensordot(to_mx(a), to_mx(b), axes)
    close(got, np.tensordot(wide(a), wide(b), axes), name, scale=12)


def test_tensordot_default_axes_and_mixed_dtypes():
    a, b = rand((2, 3, 4)), rand((3, 4, 5), seed=1)
    close(mx.tensordot(to_mx(a), to_mx(b)), np.tensordot(wide(a), wide(b)), "float32", scale=12)
    got = mx.tensordot(mx.ones((3, 4), mx.int32), mx.ones((4, 3)), [[0, 1], [1, 0]])
    assert got.dtype == mx.float32 and got.item() == 12.0
    got = mx.tensordot(mx.ones((3, 4), mx.float16), mx.ones((3, 4), mx.bfloat16), 2)
    assert got.dtype == mx.float32


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((3, 4, 5)), 4), ValueError,
     r"^\[tensordot\] axis must be at most the number of dimensions of a and b; got 4"),
    (lambda: mx.tensordot(mx.ones((3, 4)), mx.ones((3, 4, 5)), 3), ValueError,
     r"^\[tensordot\] axis must be at most the number of dimensions"),
    (lambda: mx.tensordot(mx.ones((2, 3)), mx.ones((3, 4)), -1), ValueError,
     r"^\[tensordot\] axis must be greater or equal to 0; got -1\."),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((5, 5)), 1), ValueError,
     r"^\[tensordot\] a and b must have the same shape on the contracted axes; got shapes "
     r"\(2,3,4\) and \(5,5\) with axes \[2\] and \[0\]\."),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((4, 3)), axes=([1, 2], [0, 1])), ValueError,
     r"^\[tensordot\] a and b must have the same shape on the contracted axes"),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((4, 5)), axes=[[2], [0, 1]]), ValueError,
     r"^\[tensordot\] axes must have the same size; got 1 axes for a and 2 for b\."),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((4, 5)), axes=[[2], [0], [1]]), ValueError,
     r"^\[tensordot\] axes must be a list of two lists\."),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((4, 5)), axes=[[5], [0]]), mx.AxisError,
     r"^\[tensordot\] Axis 5 is out of bounds for array with 3 dimensions\."),
    (lambda: mx.tensordot(mx.ones((2, 3, 4)), mx.ones((4, 4)), axes=[[2, 2], [0, 0]]), ValueError,
     r"^\[tensordot\] Received duplicate axes \(2, 2\)\."),
    (lambda: mx.tensordot(mx.ones((2, 3)), mx.ones((3, 4)), 1.0), TypeError,
     r"^\[tensordot\] axes must be an int or a list of two lists, got float\."),
    (lambda: mx.tensordot(mx.ones((2, 3)), mx.ones((3, 4)), True), TypeError,
     r"^\[tensordot\] axes must be an int or a list of two lists, got bool\."),
    (lambda: mx.tensordot(mx.ones((2, 3), mx.int32), mx.ones((3, 4), mx.int32), 1), ValueError,
     r"^\[tensordot\] Only inexact types are supported but int32 and int32"),
])
def test_tensordot_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---------------------------------------------------------------------------------------
# kron
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb", [((2, 2), (2, 2)), ((2,), (3, 4)), ((2, 1, 3), (4, 2)),
                                    ((), (3,)), ((3,), ()), ((1,), (1,))], ids=str)
@pytest.mark.parametrize("name", ["bool", "int8", "int32", "float16", "float32", "complex64"])
def test_kron_matches_numpy(sa, sb, name):
    check(lambda xp, x, y: xp.kron(x, y), rand(sa, name, 1), rand(sb, name, 2))


def test_kron_example_and_promotion():
    got = mx.kron(mx.array([[1, 2], [3, 4]]), mx.array([[0, 5], [6, 7]]))
    assert_same(got, np.kron([[1, 2], [3, 4]], [[0, 5], [6, 7]]).astype(np.int32))
    got = mx.kron(mx.ones((2, 3), mx.int8), mx.ones(3, mx.float16), stream=mx.cpu)
    assert got.dtype == mx.float16 and got.shape == (2, 9)


def test_kron_refuses_empty_inputs():
    with pytest.raises(ValueError, match=r"^\[kron\] Input arrays cannot be empty; got shapes "
                                         r"\(2,0\) and \(3\)\."):
        mx.kron(mx.ones((2, 0)), mx.ones(3))


# ---------------------------------------------------------------------------------------
# vecdot
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("sa, sb, axis", [((3,), (3,), -1), ((2, 3), (2, 3), -1), ((2, 3), (1, 3), -1),
                                          ((2, 3), (2, 1), 0), ((2, 3), (2, 3), -2),
                                          ((4, 2, 3), (2, 3), -1), ((2, 0), (2, 0), -1)], ids=str)
@pytest.mark.parametrize("name", ["float32", "float64", "complex64", "float16", "bfloat16"])
def test_vecdot_matches_numpy(sa, sb, axis, name):
    a, b = rand(sa, name, 1), rand(sb, name, 2)
    got = mx.vecdot(to_mx(a), to_mx(b), axis=axis)
    close(got, np.vecdot(wide(a), wide(b), axis=axis), name, scale=3)


def test_vecdot_conjugates_the_first_operand():
    got = mx.vecdot(mx.array([1 + 2j, 3j]), mx.array([1 + 1j, 2]))
    assert got.dtype == mx.complex64 and got.item() == 3 - 7j


@pytest.mark.parametrize("da, db, want", [
    ("bool", "bool", "int32"), ("int8", "int8", "int32"), ("uint8", "uint8", "uint32"),
    ("int16", "int16", "int32"), ("uint16", "uint16", "uint32"), ("int32", "int32", "int32"),
    ("uint32", "uint32", "uint32"), ("int64", "int64", "int64"), ("uint64", "uint64", "uint64"),
    ("int8", "uint8", "int32"),
])
def test_vecdot_integer_results_use_mlx_sum_dtypes(da, db, want):
    a, b = rand((4, 5), da, 1), rand((4, 5), db, 2)
    got = mx.vecdot(to_mx(a), to_mx(b))
    assert got.dtype.name == want
    np.testing.assert_array_equal(np.asarray(got), (wide(a) * wide(b)).sum(-1).astype(want))


def test_vecdot_mixed_float_and_integer():
    a, b = rand((4, 5), "float32", 1), rand((4, 5), "int8", 2)
    close(mx.vecdot(to_mx(a), to_mx(b)), (wide(a) * wide(b)).sum(-1), "float32", scale=5)


def test_vecdot_products_wrap_in_the_operand_dtype():
    assert mx.vecdot(mx.array([300], mx.int16), mx.array([300], mx.int16)).item() == 24464
    assert mx.vecdot(mx.array([200], mx.uint8), mx.array([200], mx.uint8)).item() == 64


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.vecdot(mx.array(2.0), mx.array(3.0)), ValueError, r"^\[vecdot\] inputs must be at least 1D\."),
    (lambda: mx.vecdot(mx.ones((2, 3)), mx.ones((2, 4))), ValueError,
     r"^\[vecdot\] a and b must have the same size along axis -1; got shapes \(2,3\) and \(2,4\)\."),
    (lambda: mx.vecdot(mx.ones((2, 3)), mx.ones((1, 3)), axis=0), ValueError,
     r"^\[vecdot\] a and b must have the same size along axis 0"),
    (lambda: mx.vecdot(mx.ones((2, 3)), mx.ones((3, 3))), ValueError,
     r"^\[vecdot\] Shapes \(2,3\) and \(3,3\) cannot be broadcast \(apart from axis -1\)\."),
    (lambda: mx.vecdot(mx.ones((2, 3)), mx.ones(3), axis=5), IndexError,
     r"^\[vecdot\] Axis 5 is out of bounds for array with 2 dimensions\."),
    (lambda: mx.vecdot(mx.ones((2, 3)), mx.ones(3), axis=1.5), TypeError,
     r"^\[vecdot\] axis must be an integer, got float\."),
])
def test_vecdot_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_public_names_are_exported():
    for name in products.__all__:
        assert getattr(mx, name) is getattr(products, name)
        assert getattr(products, name).__doc__
