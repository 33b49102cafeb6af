"""block_masked_mm, gather_mm, segmented_mm and hadamard_transform
(mx/core/ops/products_extra.py): values against NumPy references and values recorded
from MLX 0.32, dtypes, error paths, and the vjp/jvp/vmap rules (float64 central
differences, vmap against a Python loop)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from gradcheck import check_grads, check_vmap

F64 = mx.float64


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _close(got, want, rtol=1e-5, atol=1e-5):
    want = np.asarray(want)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(np.asarray(got).astype(np.float64), want, rtol=rtol, atol=atol)


# ---------------------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------------------
def _sylvester(n):
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _expand(mask, bs, rows, cols):
    m = np.repeat(np.repeat(np.asarray(mask), bs, -2), bs, -1)[..., :rows, :cols]
    return m.astype(np.float64)


def ref_block_masked_mm(a, b, bs, mo=None, ml=None, mr=None):
    (M, K), N = a.shape[-2:], b.shape[-1]
    if ml is not None:
        a = a * _expand(ml, bs, M, K)
    if mr is not None:
        b = b * _expand(mr, bs, K, N)
    out = a @ b
    return out if mo is None else out * _expand(mo, bs, M, N)


def ref_gather_mm(a, b, li, ri):
    A = a.reshape((-1,) + a.shape[-2:])
    B = b.reshape((-1,) + b.shape[-2:])
    li, ri = np.broadcast_arrays(li, ri)
    return A[li] @ B[ri]


def ref_segmented_mm(a, b, seg):
    K = a.shape[1]
    out = [a[:, max(s, 0):min(e, K)] @ b[max(s, 0):min(e, K)] if e > s else
           np.zeros((a.shape[0], b.shape[1])) for s, e in seg.reshape(-1, 2)]
    return np.array(out).reshape(seg.shape[:-1] + (a.shape[0], b.shape[1]))


# ---------------------------------------------------------------------------------------
# block_masked_mm
# ---------------------------------------------------------------------------------------
def test_block_masked_mm_values_bool_and_float_masks():
    a, b = _rand(70, 40), _rand(40, 50, seed=1)
    mo = np.array([[True, False], [True, True], [False, True]])
    ml = np.array([[1.0, 2.0], [0.5, 0.0], [3.0, 1.0]])
    mr = np.array([[True, False], [False, True]])
    got = mx.block_masked_mm(mx.array(a), mx.array(b), 32, mx.array(mo), mx.array(ml),
                             mx.array(mr))
    assert got.dtype == mx.float32
    _close(got, ref_block_masked_mm(a, b, 32, mo, ml, mr), 1e-4, 1e-4)


def test_block_masked_mm_defaults_and_partial_masks():
    a, b = _rand(70, 40), _rand(40, 50, seed=1)
    _close(mx.block_masked_mm(mx.array(a), mx.array(b)), a @ b, 1e-4, 1e-4)
    ml = np.array([[True, False], [False, True], [True, True]])
    got = mx.block_masked_mm(mx.array(a), mx.array(b), 32, mask_lhs=mx.array(ml))
    _close(got, ref_block_masked_mm(a, b, 32, ml=ml), 1e-4, 1e-4)
    mr = np.array([[2.0, 0.0], [1.0, -1.0]])
    got = mx.block_masked_mm(mx.array(a), mx.array(b), 32, mask_rhs=mx.array(mr))
    _close(got, ref_block_masked_mm(a, b, 32, mr=mr), 1e-4, 1e-4)


def test_block_masked_mm_bool_mask_drops_nan_blocks():
    a = np.ones((64, 64))
    a[:32, :32] = np.nan
    ml = np.array([[False, True], [True, True]])
    got = np.asarray(mx.block_masked_mm(mx.array(a), mx.array(np.ones((64, 32))), 32,
                                        mask_lhs=mx.array(ml)))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got[:32], 32.0)


def test_block_masked_mm_batched_broadcast():
    a, b = _rand(2, 1, 70, 40), _rand(3, 40, 50, seed=1)
    mo = np.random.default_rng(2).random((3, 3, 2)) > 0.4
    got = mx.block_masked_mm(mx.array(a), mx.array(b), 32, mx.array(mo))
    _close(got, ref_block_masked_mm(a, b, 32, mo), 1e-4, 1e-4)
    assert got.shape == (2, 3, 70, 50)


def test_block_masked_mm_mlx_recorded():
    rng = np.random.default_rng(0)
    rng.integers(-3, 4, (2, 5, 3)), rng.integers(-3, 4, (3, 3, 4))
    rng.integers(-3, 4, (5, 6)), rng.integers(-3, 4, (6, 7))
    A = rng.integers(-2, 3, (40, 36)).astype(np.float32)
    B = rng.integers(-2, 3, (36, 33)).astype(np.float32)
    r = mx.block_masked_mm(mx.array(A), mx.array(B), 32,
                           mx.array([[True, False], [True, True]]),
                           mx.array([[1., 2.], [0.5, 0.]]), mx.array([[True, False], [True, True]]))
    r = np.asarray(r)
    # recorded from MLX 0.32.4 (same seed and calls)
    assert r.sum() == -467.0
    assert r[::7, ::5].tolist() == [
        [-8.0, -3.0, 25.0, -4.0, 14.0, 6.0, 7.0], [-8.0, 6.0, 5.0, 20.0, -13.0, -12.0, 1.0],
        [-18.0, 10.0, -8.0, 6.0, -19.0, -19.0, 2.0], [-3.0, 1.0, -17.0, 9.0, 18.0, -8.0, 0.0],
        [14.0, -15.0, 20.0, 5.0, 4.0, 20.0, 3.0], [-7.5, -12.0, 0.5, 4.0, -1.0, -5.0, -1.5]]


@pytest.mark.parametrize("da,db,want", [
    (mx.float16, mx.float16, mx.float16), (mx.bfloat16, mx.bfloat16, mx.bfloat16),
    (mx.float16, mx.float32, mx.float32), (mx.float64, mx.float64, mx.float64),
    (mx.complex64, mx.float32, mx.complex64)])
def test_block_masked_mm_dtypes(da, db, want):
    a, b = _rand(40, 40), _rand(40, 33, seed=1)
    ml = mx.array([[1.0, 0.0], [1.0, 1.0]])
    got = mx.block_masked_mm(mx.array(a, dtype=da), mx.array(b, dtype=db), 32, mask_lhs=ml)
    assert got.dtype == want
    tol = 5e-2 if mx.float16 in (da, db) or mx.bfloat16 in (da, db) else 1e-4
    _close(got.astype(mx.float64) if want != mx.complex64 else mx.real(got),
           ref_block_masked_mm(a, b, 32, ml=np.array([[1.0, 0.0], [1.0, 1.0]])), tol, tol * 10)


def test_block_masked_mm_vector_operands():
    a, b = _rand(40), _rand(40, 50, seed=1)
    got = mx.block_masked_mm(mx.array(a), mx.array(b), 32)
    _close(got, a @ b, 1e-4, 1e-4)


def test_block_masked_mm_errors():
    a, b = mx.zeros((70, 40)), mx.zeros((40, 50))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] Only inexact types"):
        mx.block_masked_mm(a.astype(mx.int32), b.astype(mx.int32))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] Last dimension .*\(70,40\).*\(41,50\)"):
        mx.block_masked_mm(a, mx.zeros((41, 50)))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] Got 0 dimension input"):
        mx.block_masked_mm(mx.array(1.0), b)
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] mask_out with shape \(3,3\)"):
        mx.block_masked_mm(a, b, 32, mx.ones((3, 3), dtype=mx.bool_))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] mask_lhs with shape \(2,3,2\)"):
        mx.block_masked_mm(a, b, 32, None, mx.ones((2, 3, 2)))
    with pytest.raises(ValueError, match=r"\[block_masked_mm\] block_size must be positive"):
        mx.block_masked_mm(a, b, 0)
    with pytest.raises(TypeError, match=r"\[block_masked_mm\] block_size must be an int"):
        mx.block_masked_mm(a, b, 64.0)


# ---------------------------------------------------------------------------------------
# gather_mm
# ---------------------------------------------------------------------------------------
def test_gather_mm_both_indices_and_broadcast():
    a, b = _rand(3, 4, 5), _rand(2, 5, 6, seed=1)
    li, ri = np.array([0, 1, 2, 2]), np.array([[1], [0]])
    got = mx.gather_mm(mx.array(a), mx.array(b), mx.array(li), mx.array(ri))
    assert got.shape == (2, 4, 4, 6)
    _close(got, ref_gather_mm(a, b, li, ri))


def test_gather_mm_default_indices_and_flat_batch():
    a, b = _rand(3, 4, 5), _rand(2, 1, 5, 6, seed=1)
    li = np.array([0, 1, 2])
    got = mx.gather_mm(mx.array(a), mx.array(b), mx.array(li))
    _close(got, ref_gather_mm(a, b, li, np.arange(2).reshape(2, 1)))
    a4 = _rand(2, 3, 4, 5)  # flat indices run over both batch axes
    li = np.array([5, 0, 3], dtype=np.uint8)
    got = mx.gather_mm(mx.array(a4), mx.array(b), mx.array(li), mx.array(np.array(1)),
                       sorted_indices=True)
    _close(got, ref_gather_mm(a4, b, li, np.array(1)))


def test_gather_mm_no_indices_is_matmul():
    a, b = _rand(2, 3, 4, 5), _rand(3, 5, 6, seed=1)
    _close(mx.gather_mm(mx.array(a), mx.array(b)), a @ b)


def test_gather_mm_vector_operands():
    b = _rand(2, 5, 6, seed=1)
    got = mx.gather_mm(mx.array(_rand(5)), mx.array(b), mx.array([0, 1]))
    assert got.shape == (2, 6)
    _close(got, _rand(5) @ b)
    got = mx.gather_mm(mx.array(_rand(3, 4, 5)), mx.array(_rand(5, seed=2)), mx.array([0, 1]))
    assert got.shape == (2, 4)


def test_gather_mm_mlx_recorded():
    A = [[[2.0, 1.0, 0.0], [-2.0, -1.0, -3.0], [-3.0, -3.0, -2.0], [2.0, 1.0, 3.0], [0.0, 1.0, 3.0]],
         [[2.0, 1.0, 0.0], [0.0, 3.0, -2.0], [2.0, 1.0, -3.0], [-1.0, 3.0, 0.0], [-3.0, 2.0, 2.0]]]
    B = [[[2.0, -2.0, -3.0, 3.0], [-3.0, 0.0, -3.0, -1.0], [0.0, -1.0, -1.0, -3.0]],
         [[-3.0, -3.0, -3.0, 1.0], [0.0, 1.0, -2.0, 1.0], [2.0, -1.0, 0.0, 3.0]],
         [[2.0, 3.0, -1.0, 1.0], [3.0, 1.0, 2.0, 1.0], [1.0, -1.0, 3.0, -3.0]]]
    got = mx.gather_mm(mx.array(A), mx.array(B), mx.array([1, 0, 1]), mx.array([2, 2, 0]))
    assert got.tolist() == [  # recorded from MLX 0.32.4
        [[7.0, 7.0, 0.0, 3.0], [7.0, 5.0, 0.0, 9.0], [4.0, 10.0, -9.0, 12.0],
         [7.0, 0.0, 7.0, 2.0], [2.0, -9.0, 13.0, -7.0]],
        [[7.0, 7.0, 0.0, 3.0], [-10.0, -4.0, -9.0, 6.0], [-17.0, -10.0, -9.0, 0.0],
         [10.0, 4.0, 9.0, -6.0], [6.0, -2.0, 11.0, -8.0]],
        [[1.0, -4.0, -9.0, 5.0], [-9.0, 2.0, -7.0, 3.0], [1.0, -1.0, -6.0, 14.0],
         [-11.0, 2.0, -6.0, -6.0], [-12.0, 4.0, 1.0, -17.0]]]


@pytest.mark.parametrize("da,db,want", [
    (mx.float16, mx.float16, mx.float16), (mx.bfloat16, mx.bfloat16, mx.bfloat16),
    (mx.float16, mx.float32, mx.float32), (mx.float64, mx.float64, mx.float64)])
def test_gather_mm_dtypes(da, db, want):
    a, b = _rand(3, 4, 5), _rand(2, 5, 6, seed=1)
    got = mx.gather_mm(mx.array(a, dtype=da), mx.array(b, dtype=db), mx.array([2, 0]))
    assert got.dtype == want
    _close(got, ref_gather_mm(a, b, np.array([2, 0]), np.arange(2)), 5e-2, 5e-2)


def test_gather_mm_errors():
    a, b = mx.zeros((3, 4, 5)), mx.zeros((2, 5, 6))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Got indices with invalid dtype"):
        mx.gather_mm(a, b, mx.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Got indices with invalid dtype"):
        mx.gather_mm(a, b, mx.array([True]))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Only real floating point types are "
                                         r"supported but int32 and int32"):
        mx.gather_mm(a.astype(mx.int32), b.astype(mx.int32), mx.array([0]))
    with pytest.raises(ValueError, match=r"complex64 and float32 .* not a real floating"):
        mx.gather_mm(a.astype(mx.complex64), b, mx.array([0]))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Shapes \(4\) and \(2\) cannot be"):
        mx.gather_mm(a, b, mx.array([0, 1, 2, 2]))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Last dimension .*\(3,4,5\).*\(2,4,6\)"):
        mx.gather_mm(a, mx.zeros((2, 4, 6)), mx.array([0]))
    with pytest.raises(ValueError, match=r"\[gather_mm\] Got 0 dimension input"):
        mx.gather_mm(mx.array(1.0), b, mx.array([0]))
    with pytest.raises(TypeError, match=r"\[gather_mm\] lhs_indices must be an array"):
        mx.gather_mm(a, b, [0, 1])
    with pytest.raises(TypeError, match=r"\[gather_mm\] rhs_indices must be an array"):
        mx.gather_mm(a, b, None, 1)


# ---------------------------------------------------------------------------------------
# segmented_mm
# ---------------------------------------------------------------------------------------
def test_segmented_mm_values_and_shapes():
    a, b = _rand(4, 10), _rand(10, 3, seed=1)
    seg = np.array([[[0, 4], [4, 10]], [[2, 2], [7, 3]], [[-1, 3], [5, 40]]])
    got = mx.segmented_mm(mx.array(a), mx.array(b), mx.array(seg))
    assert got.shape == (3, 2, 4, 3) and got.dtype == mx.float32
    _close(got, ref_segmented_mm(a, b, seg))
    got = mx.segmented_mm(mx.array(a), mx.array(b), mx.array([0, 10], dtype=mx.uint32))
    _close(got, a @ b)
    assert mx.segmented_mm(mx.array(a), mx.array(b), mx.zeros((0, 2), dtype=mx.int32)).shape \
        == (0, 4, 3)


def test_segmented_mm_mlx_recorded():
    a2 = mx.arange(8.).reshape(2, 4)
    b2 = mx.arange(12.).reshape(4, 3)
    got = mx.segmented_mm(a2, b2, mx.array([[0, 2], [1, 4], [3, 1], [0, 0], [2, 9]]))
    assert got.tolist() == [  # recorded from MLX 0.32.4
        [[3, 4, 5], [15, 24, 33]], [[42, 48, 54], [114, 132, 150]],
        [[0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]], [[39, 44, 49], [99, 112, 125]]]


@pytest.mark.parametrize("da,db,want", [
    (mx.float16, mx.float32, mx.float32), (mx.bfloat16, mx.bfloat16, mx.bfloat16),
    (mx.float64, mx.float32, mx.float64)])
def test_segmented_mm_dtypes(da, db, want):
    a, b = _rand(4, 10), _rand(10, 3, seed=1)
    seg = np.array([[0, 4], [4, 10]])
    got = mx.segmented_mm(mx.array(a, dtype=da), mx.array(b, dtype=db), mx.array(seg))
    assert got.dtype == want
    _close(got, ref_segmented_mm(a, b, seg), 5e-2, 5e-2)


def test_segmented_mm_errors():
    a, b, seg = mx.zeros((4, 10)), mx.zeros((10, 3)), mx.array([[0, 4], [4, 10]])
    with pytest.raises(ValueError, match=r"\[segmented_mm\] Batched matmul not supported"):
        mx.segmented_mm(mx.zeros((2, 4, 10)), b, seg)
    with pytest.raises(ValueError, match=r"\[segmented_mm\] Batched matmul not supported"):
        mx.segmented_mm(a, mx.zeros((10,)), seg)
    with pytest.raises(ValueError, match=r"should have shape \(\.\.\., 2\) but \(2,3\) was"):
        mx.segmented_mm(a, b, mx.array([[0, 4, 1], [4, 10, 1]]))
    with pytest.raises(ValueError, match=r"should have shape \(\.\.\., 2\) but \(\) was"):
        mx.segmented_mm(a, b, mx.array(2))
    with pytest.raises(ValueError, match=r"\[segmented_mm\] Got segments with invalid dtype"):
        mx.segmented_mm(a, b, mx.array([[0.0, 4.0]]))
    with pytest.raises(ValueError, match=r"\[segmented_mm\] Only real floating point types"):
        mx.segmented_mm(a.astype(mx.int32), b.astype(mx.int32), seg)
    with pytest.raises(ValueError, match=r"\[segmented_mm\] Last dimension .*\(4,11\)"):
        mx.segmented_mm(mx.zeros((4, 11)), b, seg)
    with pytest.raises(TypeError, match=r"\[segmented_mm\] segments must be an array"):
        mx.segmented_mm(a, b, [[0, 4]])


# ---------------------------------------------------------------------------------------
# hadamard_transform
# ---------------------------------------------------------------------------------------
# MLX 0.32.4: hadamard_transform(arange(n) ** 2 % 7, scale=1.0)
MLX_HADAMARD = {
    8: [14, 0, 0, -6, 0, 2, -10, 0],
    12: [21, -3, 7, -7, -3, -1, 3, -9, -9, -5, 5, -5],
    20: [-15, -1, -5, -11, -3, 7, 3, -9, -1, 1, 9, 1, 9, -3, -3, -27, -11, -7, -13, -27],
    24: [35, -7, -1, 5, 9, -9, -19, -9, 3, 1, -1, -7, 19, 5, -11, -5, 3, 9, -23, 11, 7, 5,
         -11, -1],
    28: [-28, -22, -4, -16, -16, -4, -22, 4, -14, -12, -4, -4, -12, -14, -12, -2, 0, -20, -20,
         0, -2, -20, -10, -8, 0, 0, -8, -10],
    56: [-50, -6, -20, 12, -20, -12, -50, 6, -26, -18, -32, 0, -26, 18, -14, -10, -20, 20, -20,
         -20, -14, 10, -2, -2, -40, 0, -2, 2, -30, -10, -8, -8, -8, 8, -30, 10, -18, -2, 0, 0,
         -18, 2, -10, 18, -16, -8, -16, 8, -10, -18, -26, -2, -8, 0, -26, 2],
}


@pytest.mark.parametrize("n", sorted(MLX_HADAMARD))
def test_hadamard_mlx_recorded(n):
    x = mx.arange(n, dtype=mx.float32) ** 2 % 7
    assert mx.hadamard_transform(x, scale=1.0).tolist() == MLX_HADAMARD[n]


def test_hadamard_default_scale_and_batch():
    got = mx.hadamard_transform(mx.array([[1., 2., 3., 4.], [0., 1., 0., -1.]]))
    assert got.tolist() == [[5.0, -1.0, -2.0, 0.0], [0.0, 0.0, 1.0, -1.0]]  # MLX 0.32.4
    x = _rand(3, 2, 64)
    _close(mx.hadamard_transform(mx.array(x, dtype=F64)), x @ _sylvester(64).T / 8, 1e-12, 1e-12)
    _close(mx.hadamard_transform(mx.array(x), 0.5), x @ _sylvester(64).T * 0.5, 1e-4, 1e-4)


@pytest.mark.parametrize("m", [12, 20, 28])
def test_hadamard_factor_matrices_are_orthogonal(m):
    h = np.asarray(mx.hadamard_transform(mx.eye(m * 4, dtype=F64), scale=1.0)).T
    np.testing.assert_array_equal(h @ h.T, m * 4 * np.eye(m * 4))


@given(k=st.integers(0, 10), lead=st.integers(1, 3))
@settings(max_examples=30, deadline=None)
def test_hadamard_sylvester_property(k, lead):
    x = _rand(lead, 2 ** k, seed=k)
    got = mx.hadamard_transform(mx.array(x, dtype=F64), scale=1.0)
    _close(got, x @ _sylvester(2 ** k).T, 1e-9, 1e-9)


@pytest.mark.parametrize("dtype,want", [
    (mx.int32, mx.float32), (mx.bool_, mx.float32), (mx.float16, mx.float16),
    (mx.bfloat16, mx.bfloat16), (mx.float64, mx.float64), (mx.complex64, mx.float32)])
def test_hadamard_dtypes(dtype, want):
    got = mx.hadamard_transform(mx.arange(4).astype(dtype))
    assert got.dtype == want
    ref = np.arange(4).astype(np.float64) if dtype != mx.bool_ else np.array([0., 1, 1, 1])
    _close(got, _sylvester(4) @ ref / 2, 1e-2, 1e-2)


def test_hadamard_scalar():
    assert mx.hadamard_transform(mx.array(3.0)).item() == 3.0
    assert mx.hadamard_transform(mx.array(3.0)).shape == ()


def test_hadamard_errors():
    for n in (3, 6, 36, 40 * 3):
        with pytest.raises(ValueError, match=rf"\[hadamard_transform\] Only supports n = m\*2\^k "
                                             rf"where m in \(1, 12, 20, 28\); got n = {n}"):
            mx.hadamard_transform(mx.zeros((n,)))
    with pytest.raises(ValueError, match=r"\[hadamard_transform\] Does not support empty"):
        mx.hadamard_transform(mx.zeros((0,)))
    with pytest.raises(TypeError, match=r"\[hadamard_transform\] a must be an array"):
        mx.hadamard_transform([1.0, 2.0])
    with pytest.raises(TypeError, match=r"\[hadamard_transform\] scale must be a real number"):
        mx.hadamard_transform(mx.zeros((4,)), scale="a")


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def test_block_masked_mm_grads():
    a, b = _rand(2, 5, 7), _rand(7, 6, seed=1)
    mo = mx.array(np.array([[[True, False, True], [True, True, False], [False, True, True]]]))
    ml = mx.array(np.array([[1.0, 2.0, 0.0, 1.0], [0.5, 1.0, 1.0, 0.0], [1.0, 1.0, -1.0, 1.0]]))
    mr = mx.array(np.array([[True, False, True], [True, True, True], [False, True, True],
                            [True, True, False]]))
    check_grads(lambda x, y: mx.block_masked_mm(x, y, 2, mo, ml, mr), [a, b])
    check_grads(lambda x, y: mx.block_masked_mm(x, y, 2), [a, b])
    check_grads(lambda x, y: mx.block_masked_mm(x, y, 2, mask_rhs=mr), [_rand(7), b])


def test_block_masked_mm_grad_of_grad():
    a = mx.array(_rand(4, 4), dtype=F64)
    mo = mx.array([[True, False], [True, True]])

    def f(x):
        return mx.sum(mx.block_masked_mm(x, x, 2, mo) ** 2)

    check_grads(lambda x: mx.grad(f)(x), [a])


def test_gather_mm_grads():
    a, b = _rand(3, 4, 5), _rand(2, 5, 6, seed=1)
    li, ri = mx.array([[0, 2, 2, 1]]), mx.array([[1], [0], [1]])  # repeated indices add up
    check_grads(lambda x, y: mx.gather_mm(x, y, li, ri), [a, b])
    check_grads(lambda x, y: mx.gather_mm(x, y, mx.array([2, 2])), [a, b])
    check_grads(lambda x, y: mx.gather_mm(x, y, None, mx.array([0, 1, 1])), [a, b])


def test_segmented_mm_grads():
    a, b = _rand(3, 8), _rand(8, 4, seed=1)
    seg = mx.array([[[0, 3], [3, 8]], [[2, 6], [5, 5]]])
    check_grads(lambda x, y: mx.segmented_mm(x, y, seg), [a, b])


@pytest.mark.parametrize("n", [16, 12, 20, 56])
def test_hadamard_grads(n):
    check_grads(lambda x: mx.hadamard_transform(x), [_rand(2, n)])
    check_grads(lambda x: mx.hadamard_transform(x, scale=0.3), [_rand(n)])


@pytest.mark.parametrize("axes", [(0, 0), (0, None), (None, 1), (1, 2)])
def test_block_masked_mm_vmap(axes):
    shapes = [(5, 7), (7, 6)]
    xs = [mx.array(np.moveaxis(_rand(3, *s, seed=i), 0, ax), dtype=F64) if ax is not None
          else mx.array(_rand(*s, seed=i), dtype=F64) for i, (s, ax) in enumerate(zip(shapes, axes))]
    mo = mx.array(np.array([[True, False, True], [True, True, False], [False, True, True]]))
    check_vmap(lambda x, y: mx.block_masked_mm(x, y, 2, mo), xs, list(axes))


@pytest.mark.parametrize("axes", [(0, 0), (None, 1), (2, None)])
def test_gather_mm_vmap(axes):
    shapes = [(3, 4, 5), (2, 5, 6)]
    xs = [mx.array(np.moveaxis(_rand(3, *s, seed=i), 0, ax), dtype=F64) if ax is not None
          else mx.array(_rand(*s, seed=i), dtype=F64) for i, (s, ax) in enumerate(zip(shapes, axes))]
    check_vmap(lambda x, y: mx.gather_mm(x, y, mx.array([0, 2]), mx.array([1, 1])), xs, list(axes))


def test_gather_mm_vmap_over_indices():
    a, b = mx.array(_rand(3, 4, 5), dtype=F64), mx.array(_rand(2, 5, 6, seed=1), dtype=F64)
    idx = mx.array([[0, 1], [2, 2], [1, 0]])
    check_vmap(lambda i: mx.gather_mm(a, b, i), [idx], [0])


def test_segmented_mm_vmap():
    a = mx.array(_rand(3, 4, 8), dtype=F64)
    b = mx.array(_rand(8, 2, seed=1), dtype=F64)
    seg = mx.array([[0, 3], [3, 8]])
    check_vmap(lambda x, y: mx.segmented_mm(x, y, seg), [a, b], [0, None])
    segs = mx.array([[[0, 3], [3, 8]], [[1, 2], [0, 8]], [[4, 4], [2, 7]]])
    check_vmap(lambda s: mx.segmented_mm(a[0], b, s), [segs], [0])


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_hadamard_vmap(axis):
    x = mx.array(np.moveaxis(_rand(3, 2, 12), 0, axis), dtype=F64)
    check_vmap(lambda v: mx.hadamard_transform(v), [x], [axis])
