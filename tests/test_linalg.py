"""mx.linalg (mx/core/linalg.py) against numpy.linalg: values, shapes and dtypes over batch
shapes, reconstructions of the factorizations, MLX's layouts and quirks, every error path,
finite-difference checks of the vjp/jvp rules and vmap against a loop."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core import linalg as la_mod
from mx.core.ops import products
from gradcheck import check_grads, check_vmap
from oracle import assert_same, check

LA = mx.linalg
HYP = settings(max_examples=40, deadline=None)
BATCHES = [(), (3,), (2, 1)]
needs_matmul_rules = pytest.mark.skipif(
    products.MATMUL.vjp is None or products.MATMUL.jvp is None,
    reason="matmul has no vjp/jvp rule yet (products rules)")


def rand(shape, dtype="float32", seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def well_conditioned(batch, n, dtype="float32", seed=0):
    return (rand(batch + (n, n), "float64", seed) + n * np.eye(n)).astype(dtype)


def spd(batch, n, dtype="float32", seed=0):
    a = rand(batch + (n, n), "float64", seed)
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(dtype)


def M(x):
    """x as an mx array of the same dtype (mx.array alone turns float64 into float32, as
    MLX does)."""
    x = np.asarray(x)
    return mx.array(x, dtype=mx.bool_ if x.dtype == np.bool_ else getattr(mx, x.dtype.name))


def npa(x):
    return np.array(x)


def T(x):
    return np.swapaxes(x, -1, -2)


# ---------------------------------------------------------------------------------------
# values against numpy
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inv_det_slogdet(batch, dtype):
    a = well_conditioned(batch, 4, dtype)
    check(lambda xp, x: xp.linalg.inv(x), a)
    check(lambda xp, x: xp.linalg.det(x), a, rtol=1e-4)
    got = LA.slogdet(M(a))
    assert isinstance(got, tuple)
    sign, logabs = np.linalg.slogdet(a)
    assert_same(got[0], sign)
    assert_same(got[1], logabs, rtol=1e-5)


@pytest.mark.parametrize("dtype", ["int32", "bool", "float16", "bfloat16"])
def test_det_dtypes(dtype):
    a = np.array([[1, 2], [3, 4]]) if dtype != "bool" else np.array([[True, False], [True, True]])
    x = M(a).astype(getattr(mx, dtype if dtype != "bool" else "bool_"))
    want = {"int32": "float32", "bool": "float32"}.get(dtype, dtype)
    d = LA.det(x)
    assert d.dtype.name == want
    assert float(d.astype(mx.float32)) == pytest.approx(np.linalg.det(a.astype(float)))
    s, l = LA.slogdet(x)
    assert s.dtype.name == l.dtype.name == want
    assert float(s.astype(mx.float32)) == np.sign(np.linalg.det(a.astype(float)))


def test_det_singular_and_empty():
    s = mx.array([[1.0, 2.0], [2.0, 4.0]])
    assert LA.det(s).item() == 0.0
    sign, logabs = LA.slogdet(s)
    assert sign.item() == 0.0 and logabs.item() == -np.inf
    assert LA.det(mx.zeros((2, 0, 0))).tolist() == [1.0, 1.0]


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_tri_inv(batch):
    a = well_conditioned(batch, 4, "float64")
    for upper in (False, True):
        tri = np.triu(a) if upper else np.tril(a)
        got = LA.tri_inv(M(a), upper=upper)
        assert_same(got, np.linalg.inv(tri), rtol=1e-10, atol=1e-12)
        # the other triangle is exactly zero
        other = np.tril(npa(got), -1) if upper else np.triu(npa(got), 1)
        assert not other.any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sa, sb", [((4, 4), (4,)), ((4, 4), (4, 2)), ((3, 4, 4), (4, 2)),
                                    ((4, 4), (3, 4, 1)), ((2, 1, 4, 4), (3, 4, 2)),
                                    ((3, 4, 4), (4,))], ids=str)
def test_solve(sa, sb, dtype):
    a = well_conditioned(sa[:-2], 4, dtype)
    b = rand(sb, dtype, seed=1)
    if len(sb) == 1:
        want = np.linalg.solve(a, b[..., None])[..., 0] if a.ndim > 2 else np.linalg.solve(a, b)
    else:
        want = np.linalg.solve(a, b)
    assert_same(LA.solve(M(a), M(b)), want.astype(dtype), rtol=1e-4, atol=1e-5)


def test_solve_promotes():
    a = well_conditioned((), 3, "float64")
    x = LA.solve(M(a), mx.array([1, 2, 3]))
    assert x.dtype == mx.float64
    np.testing.assert_allclose(npa(x), np.linalg.solve(a, [1.0, 2.0, 3.0]), rtol=1e-12)


@pytest.mark.parametrize("upper", [False, True])
@pytest.mark.parametrize("sb", [(4,), (4, 3), (2, 4, 3)], ids=str)
def test_solve_triangular(upper, sb):
    a = well_conditioned((), 4, "float64")
    b = rand(sb, "float64", seed=2)
    tri = np.triu(a) if upper else np.tril(a)
    want = np.linalg.solve(tri, b if len(sb) > 1 else b[:, None])
    want = want if len(sb) > 1 else want[:, 0]
    assert_same(LA.solve_triangular(M(a), M(b), upper=upper), want,
                rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cholesky(batch, dtype):
    a = spd(batch, 5, dtype)
    low = LA.cholesky(M(a))
    assert_same(low, np.linalg.cholesky(a), rtol=1e-4, atol=1e-5)
    up = LA.cholesky(M(a), upper=True)
    assert_same(up, T(np.linalg.cholesky(a)), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(T(npa(up)) @ npa(up), a, rtol=1e-4, atol=1e-4)


def test_cholesky_reads_one_triangle():
    a = spd((), 4, "float64")
    junk = a + np.triu(np.full((4, 4), 100.0), 1)
    assert_same(LA.cholesky(M(junk)), np.linalg.cholesky(a), rtol=1e-12)
    junk = a + np.tril(np.full((4, 4), 100.0), -1)
    assert_same(LA.cholesky(M(junk), upper=True), T(np.linalg.cholesky(a)), rtol=1e-12)


def test_cholesky_not_positive_definite_matches_mlx():
    # MLX returns LAPACK's partial factorization (values recorded from MLX 0.32)
    a = mx.array([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0], [3.0, 1.0, 5.0]])
    assert LA.cholesky(a).tolist() == [[1, 0, 0], [2, -3, 0], [3, -5, -4]]
    assert LA.cholesky(a, upper=True).tolist() == [[1, 2, 3], [0, -3, -5], [0, 0, -4]]
    assert LA.cholesky(mx.array([[4.0, 100.0], [1.0, 4.0]]), upper=True).tolist() == \
        [[2, 50], [0, -2496]]
    assert LA.cholesky(mx.zeros((2, 2))).tolist() == [[0, 0], [0, 0]]
    # a batch with one bad matrix: the good one is still exact
    good = spd((), 3, "float32")
    got = npa(LA.cholesky(mx.stack([M(good), a])))
    np.testing.assert_allclose(got[0], np.linalg.cholesky(good), rtol=1e-5)
    assert got[1].tolist() == [[1, 0, 0], [2, -3, 0], [3, -5, -4]]


@pytest.mark.parametrize("batch", BATCHES, ids=str)
def test_cholesky_inv(batch):
    a = spd(batch, 4, "float64")
    low = np.linalg.cholesky(a)
    assert_same(LA.cholesky_inv(M(low)), np.linalg.inv(a), rtol=1e-9, atol=1e-12)
    assert_same(LA.cholesky_inv(M(T(low)), upper=True), np.linalg.inv(a), rtol=1e-9,
                atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3), (3, 4), (2, 5, 2), (3, 3)], ids=str)
def test_pinv(shape):
    a = rand(shape, "float64")
    assert_same(LA.pinv(M(a)), np.linalg.pinv(a), rtol=1e-9, atol=1e-12)


def test_pinv_cutoff_and_zeros():
    # singular values below 10 * max(M, N) * eps * max(S) count as zero (as in MLX)
    u, _ = np.linalg.qr(rand((3, 3), "float64", 3))
    v, _ = np.linalg.qr(rand((3, 3), "float64", 4))
    for s, kept in ((2e-6, False), (4e-6, True)):
        a = (u @ np.diag([1.0, 0.5, s]) @ v.T).astype(np.float32)
        big = np.abs(npa(LA.pinv(M(a)))).max()
        assert (big > 1e4) == kept
    np.testing.assert_allclose(npa(LA.pinv(mx.array([[1.0, 2.0], [2.0, 4.0]]))),
                               np.linalg.pinv(np.array([[1.0, 2.0], [2.0, 4.0]])), rtol=1e-5)
    assert LA.pinv(mx.zeros((2, 3))).tolist() == [[0, 0], [0, 0], [0, 0]]


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_eigvalsh_eigh(batch, dtype):
    a = spd(batch, 5, dtype)
    check(lambda xp, x: xp.linalg.eigvalsh(x), a, rtol=1e-4, atol=1e-4)
    w, v = LA.eigh(M(a))
    assert w.dtype.name == v.dtype.name == dtype
    np.testing.assert_allclose(npa(w), np.linalg.eigvalsh(a), rtol=1e-4)
    np.testing.assert_allclose(a @ npa(v), npa(v) * npa(w)[..., None, :], atol=1e-3)
    np.testing.assert_allclose(T(npa(v)) @ npa(v), np.broadcast_to(np.eye(5), a.shape),
                               atol=1e-5)


def test_eigh_uplo_and_complex():
    a = np.array([[4.0, 100.0], [1.0, 4.0]], np.float32)
    np.testing.assert_allclose(npa(LA.eigvalsh(M(a))), [3, 5], rtol=1e-6)
    np.testing.assert_allclose(npa(LA.eigvalsh(M(a), UPLO="U")), [-96, 104], rtol=1e-6)
    np.testing.assert_allclose(npa(LA.eigh(M(a), "U")[0]), [-96, 104], rtol=1e-6)
    h = np.array([[2, 1 - 1j], [1 + 1j, 3]], np.complex64)
    w, v = LA.eigh(M(h))
    assert w.dtype == mx.float32 and v.dtype == mx.complex64
    np.testing.assert_allclose(npa(w), np.linalg.eigvalsh(h), rtol=1e-5)
    assert LA.eigvalsh(M(h)).dtype == mx.float32


@pytest.mark.parametrize("batch", BATCHES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_eig_eigvals(batch, dtype):
    a = rand(batch + (4, 4), "float64", 5)
    if dtype == "complex64":
        a = a + 1j * rand(batch + (4, 4), "float64", 6)
    a = a.astype(dtype)
    w, v = LA.eig(M(a))
    assert w.dtype == v.dtype == mx.complex64
    assert w.shape == batch + (4,) and v.shape == batch + (4, 4)
    wn, vn = npa(w), npa(v)
    np.testing.assert_allclose(a @ vn, vn * wn[..., None, :], atol=1e-4)
    np.testing.assert_allclose(np.linalg.norm(vn, axis=-2), 1.0, rtol=1e-5)
    ev = npa(LA.eigvals(M(a)))
    np.testing.assert_allclose(np.sort_complex(ev.reshape(-1, 4)),
                               np.sort_complex(np.linalg.eigvals(a).reshape(-1, 4)), atol=1e-4)


def test_eig_real_spectrum_is_complex64():
    w, v = LA.eig(mx.array([[1.0, -2.0], [-2.0, 1.0]]))
    assert w.tolist() == pytest.approx([3 + 0j, -1 + 0j])
    assert LA.eigvals(mx.array([[1.0, -2.0], [-2.0, 1.0]])).dtype == mx.complex64


# ---------------------------------------------------------------------------------------
# factorizations: reconstructions and layouts
# ---------------------------------------------------------------------------------------
SHAPES = [(4, 4), (5, 3), (3, 5), (2, 4, 3), (2, 1, 3, 4)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_qr_reconstructs(shape, dtype):
    a = rand(shape, dtype)
    q, r = LA.qr(M(a))
    m, n = shape[-2:]
    k = min(m, n)
    assert q.shape == shape[:-2] + (m, k) and r.shape == shape[:-2] + (k, n)
    assert q.dtype.name == r.dtype.name == dtype
    qn, rn = npa(q), npa(r)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(qn @ rn, a, atol=tol * 10)
    np.testing.assert_allclose(T(qn) @ qn, np.broadcast_to(np.eye(k), shape[:-2] + (k, k)),
                               atol=tol * 10)
    assert not np.tril(rn, -1).any()
    # LAPACK's Householder signs, like numpy (and MLX)
    np.testing.assert_allclose(rn, np.linalg.qr(a)[1], atol=tol * 10)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64"])
def test_svd_reconstructs(shape, dtype):
    a = rand(shape, "float64")
    if dtype == "complex64":
        a = a + 1j * rand(shape, "float64", 9)
    a = a.astype(dtype)
    u, s, vt = LA.svd(M(a))
    m, n = shape[-2:]
    k = min(m, n)
    assert u.shape == shape[:-2] + (m, m) and vt.shape == shape[:-2] + (n, n)
    assert s.shape == shape[:-2] + (k,)
    assert u.dtype.name == vt.dtype.name == dtype
    assert s.dtype.name == ("float32" if dtype == "complex64" else dtype)
    un, sn, vtn = npa(u), npa(s), npa(vt)
    tol = 1e-4 if dtype != "float64" else 1e-11
    np.testing.assert_allclose((un[..., :, :k] * sn[..., None, :]) @ vtn[..., :k, :], a,
                               atol=tol)
    np.testing.assert_allclose(np.conj(T(un)) @ un, np.broadcast_to(np.eye(m), u.shape),
                               atol=tol)
    np.testing.assert_allclose(np.conj(T(vtn)) @ vtn, np.broadcast_to(np.eye(n), vt.shape),
                               atol=tol)
    assert (np.diff(sn, axis=-1) <= 0).all()
    only_s = LA.svd(M(a), compute_uv=False)
    assert isinstance(only_s, mx.array)
    np.testing.assert_allclose(npa(only_s), np.linalg.svd(a, compute_uv=False), rtol=tol)
    assert isinstance(LA.svd(M(a)), tuple)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lu_reconstructs(shape, dtype):
    a = rand(shape, dtype, 11)
    p, low, up = LA.lu(M(a))
    m, n = shape[-2:]
    k = min(m, n)
    assert p.dtype == mx.uint32 and p.shape == shape[:-2] + (m,)
    assert low.shape == shape[:-2] + (m, k) and up.shape == shape[:-2] + (k, n)
    pn, ln, un = npa(p).astype(np.int64), npa(low), npa(up)
    np.testing.assert_allclose(np.take_along_axis(ln, pn[..., None], axis=-2) @ un, a,
                               atol=1e-5 if dtype == "float32" else 1e-12)
    assert np.allclose(np.diagonal(ln, axis1=-2, axis2=-1), 1.0)
    assert not np.triu(ln, 1).any() and not np.tril(un, -1).any()
    assert (np.abs(ln) <= 1 + 1e-6).all()             # partial pivoting
    assert sorted(pn.reshape(-1, m)[0].tolist()) == list(range(m))
    # lu_factor packs the same factors; applying its row swaps gives p's inverse
    packed, piv = LA.lu_factor(M(a))
    assert piv.dtype == mx.uint32 and piv.shape == shape[:-2] + (k,)
    np.testing.assert_allclose(np.tril(npa(packed), -1)[..., :, :k], np.tril(ln, -1))
    np.testing.assert_allclose(np.triu(npa(packed))[..., :k, :], un)
    for b in np.ndindex(*shape[:-2]):
        perm = list(range(m))
        for i, j in enumerate(npa(piv)[b]):
            perm[i], perm[j] = perm[j], perm[i]
        assert np.argsort(perm).tolist() == pn[b].tolist()


def test_lu_matches_mlx_layout():
    a = mx.array([[1.0, 2.0, 0.0], [3.0, 4.0, 1.0], [5.0, 0.0, 1.0]])
    packed, piv = LA.lu_factor(a)
    assert piv.tolist() == [2, 1, 2]
    np.testing.assert_allclose(npa(packed), [[5, 0, 1], [0.6, 4, 0.4], [0.2, 0.5, -0.4]],
                               rtol=1e-6)
    p, low, up = LA.lu(a)
    assert p.tolist() == [2, 1, 0]
    tall = mx.array(np.arange(12.0).reshape(4, 3) + np.eye(4, 3), dtype=mx.float32)
    p, low, up = LA.lu(tall)
    assert p.tolist() == [3, 1, 2, 0] and LA.lu_factor(tall)[1].tolist() == [3, 1, 2]
    # a singular matrix factors without error (zero pivot left in U)
    p, low, up = LA.lu(mx.array([[1.0, 2.0], [2.0, 4.0]]))
    assert npa(up)[1, 1] == 0


def test_empty_matrices():
    for f in (LA.inv, LA.cholesky, LA.pinv, LA.eigvalsh, LA.det):
        assert f(mx.zeros((2, 0, 0))).shape in ((2, 0, 0), (2, 0), (2,))
    q, r = LA.qr(mx.zeros((3, 0)))
    assert q.shape == (3, 0) and r.shape == (0, 0)
    p, low, up = LA.lu(mx.zeros((0, 2)))
    assert (p.shape, low.shape, up.shape) == ((0,), (0, 0), (0, 2))
    u, s, vt = LA.svd(mx.zeros((0, 2)))
    assert (u.shape, s.shape, vt.shape) == ((0, 0), (0,), (2, 2))


# ---------------------------------------------------------------------------------------
# norm and cross
# ---------------------------------------------------------------------------------------
VEC_ORDS = [None, 1, -1, 2, -2, 3, 0, 0.5, np.inf, -np.inf]
MAT_ORDS = [None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf]


@pytest.mark.parametrize("ord", VEC_ORDS, ids=str)
@pytest.mark.parametrize("axis", [0, 1, -1])
@pytest.mark.parametrize("keepdims", [False, True])
def test_vector_norms(ord, axis, keepdims):
    a = rand((3, 5), "float32")
    a[0, 1] = 0.0
    check(lambda xp, x: xp.linalg.norm(x, ord, axis, keepdims), a, rtol=1e-5)


@pytest.mark.parametrize("ord", MAT_ORDS, ids=str)
@pytest.mark.parametrize("axis", [None, (0, 1), (1, 0)], ids=str)
def test_matrix_norms_2d(ord, axis):
    a = rand((4, 3), "float64")
    check(lambda xp, x: xp.linalg.norm(x, ord, axis), a, rtol=1e-10)


@pytest.mark.parametrize("ord", MAT_ORDS, ids=str)
@pytest.mark.parametrize("axis", [(1, 2), (2, 0), (-1, -3)], ids=str)
def test_matrix_norms_batched(ord, axis):
    a = rand((2, 3, 4), "float32")
    check(lambda xp, x: xp.linalg.norm(x, ord, axis, True), a, rtol=1e-5, atol=1e-5)
    check(lambda xp, x: xp.linalg.norm(x, ord, axis, False), a, rtol=1e-5, atol=1e-5)


def test_norm_defaults_and_dtypes():
    b = rand((2, 3, 4), "float32")
    assert_same(LA.norm(M(b)), np.linalg.norm(b.reshape(-1)))
    assert LA.norm(M(b), keepdims=True).shape == (1, 1, 1)
    assert LA.norm(mx.array([3, 4])).dtype == mx.float32
    assert LA.norm(mx.array([3, 4])).item() == 5.0
    assert LA.norm(mx.array([[3, 4]]), 1).item() == 4.0
    assert LA.norm(mx.array([True, False, True]), 1).item() == 2.0
    assert LA.norm(mx.array([3, 4], dtype=mx.float16)).dtype == mx.float16
    assert LA.norm(mx.array([3, 4], dtype=mx.float64)).dtype == mx.float64
    assert LA.norm(mx.array(-3.0)).item() == 3.0
    # MLX: complex input gives real results for the 2-norm family, complex64 otherwise
    z = mx.array([3 + 4j, 1j])
    assert LA.norm(z).dtype == mx.float32 and LA.norm(z).item() == pytest.approx(26 ** 0.5)
    assert LA.norm(z, 2).dtype == mx.float32
    assert LA.norm(z, 1).dtype == mx.complex64 and LA.norm(z, 1).item() == pytest.approx(6)
    zm = mx.array([[3 + 4j, 1j]])
    assert LA.norm(zm, "nuc").dtype == mx.float32
    assert LA.norm(zm, 2).dtype == mx.complex64
    assert LA.norm(zm, "fro").item() == pytest.approx(26 ** 0.5)
    # negative orders with a zero entry
    assert LA.norm(mx.array([0.0, 1.0]), -1).item() == 0.0


def test_norm_errors():
    v, m, b3 = mx.ones((4,)), mx.ones((2, 3)), mx.ones((2, 3, 4))
    with pytest.raises(ValueError, match=r"\[linalg::norm\] Invalid ord 0 for matrix norm"):
        LA.norm(m, 0)
    with pytest.raises(ValueError, match=r"Invalid ord 3 for matrix norm"):
        LA.norm(b3, 3, axis=(1, 2))
    with pytest.raises(ValueError, match=r"Invalid ord value 'bad' for matrix norm"):
        LA.norm(m, "bad")
    with pytest.raises(ValueError, match=r"Norm 'fro' only supported for matrices, but "
                                         r"received 1 axis/axes"):
        LA.norm(v, "fro")
    with pytest.raises(ValueError, match=r"Norm 'nuc' only supported for matrices, but "
                                         r"received 3 axis/axes"):
        LA.norm(b3, "nuc")
    with pytest.raises(ValueError, match=r"Received too many axes for norm"):
        LA.norm(b3, 1)
    with pytest.raises(ValueError, match=r"Received too many axes for norm"):
        LA.norm(b3, axis=(0, 1, 2))
    with pytest.raises(ValueError, match=r"Received too many axes for norm"):
        LA.norm(mx.array(1.0), 1)
    with pytest.raises(IndexError, match=r"Invalid axis 3 for array with 3 dimensions"):
        LA.norm(b3, axis=3)
    with pytest.raises(ValueError, match=r"Duplicate axes"):
        LA.norm(b3, 1, axis=(1, -2))
    with pytest.raises(TypeError, match=r"ord must be a number or a string"):
        LA.norm(v, [1])
    with pytest.raises(TypeError, match=r"axis must be an int"):
        LA.norm(v, axis="x")
    with pytest.raises(ValueError, match=r"\[linalg::svd\] Arrays must have type float32, "
                                         r"float64 or complex64. Received array with type int32"):
        LA.norm(mx.array([[3, 4]]), 2)


@pytest.mark.parametrize("sa, sb, axis", [((3,), (3,), -1), ((4, 3), (3,), -1),
                                          ((2,), (3,), -1), ((3, 2), (3, 2), 0),
                                          ((2, 5, 3), (5, 3), -1), ((2,), (2,), 0),
                                          ((3, 4, 2), (3, 1, 2), 0)], ids=str)
@pytest.mark.parametrize("dtype", ["float32", "int32", "float64"])
def test_cross(sa, sb, axis, dtype):
    a = (rand(sa, "float64", 1) * 5).astype(dtype)
    b = (rand(sb, "float64", 2) * 5).astype(dtype)

    def three(v):
        # a length-2 vector is taken with a zero third component
        if v.shape[axis] == 3:
            return v
        pad = [(0, 0)] * v.ndim
        pad[axis] = (0, 1)
        return np.pad(v, pad)

    def want(x, y):
        return np.cross(three(x), three(y), axis=axis)

    assert_same(LA.cross(M(a), M(b), axis=axis), want(a, b))


def test_cross_dtypes():
    r = LA.cross(mx.array([True, False, True]), mx.array([True, True, False]))
    assert r.dtype == mx.bool_ and r.tolist() == [True, True, True]
    assert LA.cross(mx.array([1, 2, 3]), mx.array([4.0, 5.0, 6.0])).dtype == mx.float32
    r = LA.cross(mx.array([1, 2, 3], dtype=mx.float16), mx.array([4, 5, 6], dtype=mx.float16))
    assert r.dtype == mx.float16 and r.tolist() == [-3, 6, -3]


def test_cross_errors():
    with pytest.raises(ValueError, match=r"\[linalg::cross\] The specified axis must have "
                                         r"size 2 or 3"):
        LA.cross(mx.ones((4,)), mx.ones((4,)))
    with pytest.raises(IndexError, match=r"\[linalg::cross\] Axis 1 is out of bounds for array "
                                         r"with 1 dimensions"):
        LA.cross(mx.ones((3,)), mx.ones((3,)), axis=1)
    with pytest.raises(IndexError, match=r"Axis -1 is out of bounds for array with 0"):
        LA.cross(mx.array(1.0), mx.array(1.0))
    with pytest.raises(ValueError, match=r"\[linalg::cross\] Shapes \(4,3\) and \(2,3\) cannot "
                                         r"be broadcast"):
        LA.cross(mx.ones((4, 3)), mx.ones((2, 3)))


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
SQUARE_OPS = {
    "inv": "Inverses are only defined for square matrices",
    "tri_inv": "Inverses are only defined for square matrices",
    "cholesky": "Cholesky decomposition is only defined for square matrices",
    "cholesky_inv": "Cholesky inverse is only defined for square matrices",
    "eigh": "Only defined for square matrices", "eigvalsh": "Only defined for square matrices",
    "eig": "Only defined for square matrices", "eigvals": "Only defined for square matrices",
    "det": "Only defined for square matrices", "slogdet": "Only defined for square matrices",
}
ALL_OPS = ["inv", "tri_inv", "cholesky", "cholesky_inv", "eigh", "eigvalsh", "eig", "eigvals",
           "det", "slogdet", "pinv", "qr", "svd", "lu", "lu_factor"]
REAL_ONLY = ["inv", "tri_inv", "cholesky", "cholesky_inv", "pinv", "qr", "lu", "lu_factor"]


@pytest.mark.parametrize("op", list(SQUARE_OPS))
def test_square_required(op):
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] {SQUARE_OPS[op]}. Received array "
                                         r"with shape \(2,3,4\)"):
        getattr(LA, op)(mx.ones((2, 3, 4)))


@pytest.mark.parametrize("op", ALL_OPS)
def test_ndim_required(op):
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] .*must have >= 2 dimensions. "
                                         r"Received array with 1 dimensions"):
        getattr(LA, op)(mx.ones((3,)))


@pytest.mark.parametrize("op", REAL_ONLY)
@pytest.mark.parametrize("dtype", ["float16", "int32", "complex64", "bfloat16"])
def test_real_float_dtypes_only(op, dtype):
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Arrays must have type float32 or "
                                         rf"float64. Received array with type {dtype}"):
        getattr(LA, op)(mx.ones((3, 3)).astype(getattr(mx, dtype)))


@pytest.mark.parametrize("op", ["svd", "eigh", "eigvalsh", "eig", "eigvals"])
@pytest.mark.parametrize("dtype", ["float16", "int32"])
def test_float_or_complex_dtypes_only(op, dtype):
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Arrays must have type float32, "
                                         rf"float64 or complex64. Received array with type "
                                         rf"{dtype}"):
        getattr(LA, op)(mx.ones((3, 3)).astype(getattr(mx, dtype)))


@pytest.mark.parametrize("op", ["det", "slogdet"])
def test_det_refuses_complex(op):
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Complex inputs are not supported"):
        getattr(LA, op)(mx.ones((2, 2), dtype=mx.complex64))


@pytest.mark.parametrize("op", ["solve", "solve_triangular"])
def test_solve_errors(op):
    f = getattr(LA, op)
    a = mx.eye(3)
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] First input must have >= 2 "
                                         r"dimensions. Received array with 1 dimensions"):
        f(mx.ones((3,)), mx.ones((3,)))
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Second input must have >= 1 "
                                         r"dimensions. Received array with 0 dimensions"):
        f(a, mx.array(1.0))
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] First input must be a square "
                                         r"matrix. Received array with shape \(4,3\)"):
        f(mx.ones((4, 3)), mx.ones((4,)))
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Input arrays must promote to "
                                         r"float32 or float64. Received arrays with type int32 "
                                         r"and int32"):
        f(mx.array([[1, 2], [3, 4]]), mx.array([1, 2]))
    with pytest.raises(ValueError, match=r"Received arrays with type float16 and float16"):
        f(mx.eye(2, dtype=mx.float16), mx.ones((2,), dtype=mx.float16))
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Last dimension of first input with "
                                         r"shape \(3,3\) must match second to last dimension of "
                                         r"second input with shape \(4,2\)"):
        f(a, mx.ones((4, 2)))
    with pytest.raises(ValueError, match=r"Shapes \(2\) and \(4\) cannot be broadcast"):
        f(mx.ones((2, 3, 3)), mx.ones((4, 3, 3)))


def test_bad_flags():
    with pytest.raises(ValueError, match=r"\[linalg::eigh\] UPLO must be 'L' or 'U', got 'X'"):
        LA.eigh(mx.eye(2), UPLO="X")
    with pytest.raises(ValueError, match=r"\[linalg::eigvalsh\] UPLO must be 'L' or 'U'"):
        LA.eigvalsh(mx.eye(2), UPLO="LL")
    assert LA.eigvalsh(mx.eye(2), UPLO="u").tolist() == [1, 1]
    with pytest.raises(TypeError, match=r"\[linalg::cholesky\] upper must be a bool"):
        LA.cholesky(mx.eye(2), upper="yes")
    with pytest.raises(TypeError, match=r"\[linalg::solve_triangular\] upper must be a bool"):
        LA.solve_triangular(mx.eye(2), mx.ones((2,)), upper=1)


@pytest.mark.parametrize("call, op", [
    (lambda s: LA.inv(s), "inv"),
    (lambda s: LA.solve(s, mx.ones((2,))), "solve"),
    (lambda s: LA.tri_inv(mx.array([[0.0, 0.0], [1.0, 1.0]])), "tri_inv"),
    (lambda s: LA.solve_triangular(mx.array([[1.0, 0.0], [1.0, 0.0]]), mx.ones((2,))),
     "solve_triangular"),
])
def test_singular_raises_at_eval(call, op):
    s = mx.array([[1.0, 2.0], [2.0, 4.0]])
    out = call(s)            # shapes are fine: no error until evaluation
    with pytest.raises(LA.LinAlgError, match=rf"\[linalg::{op}\] The matrix is singular "
                                             r"\(input of shape \(2,2\)\)"):
        mx.eval(out)
    # MLX raises RuntimeError here; ours is both
    with pytest.raises(RuntimeError):
        call(s).tolist()
    with pytest.raises(ValueError):
        call(s).tolist()


def test_lazy_and_streams():
    a = M(well_conditioned((), 3))
    out = LA.inv(a, stream=mx.cpu)
    assert out.shape == (3, 3)
    q, r = LA.qr(a, stream=mx.cpu)
    np.testing.assert_allclose(npa(q) @ npa(r), npa(a), atol=1e-5)


# ---------------------------------------------------------------------------------------
# gradients (float64, central differences) and vmap
# ---------------------------------------------------------------------------------------
A4 = well_conditioned((2,), 4, "float64", 21)
B42 = rand((2, 4, 2), "float64", 22)
SPD4 = spd((2,), 4, "float64", 23)
TALL = rand((2, 5, 3), "float64", 24)
WIDE = rand((2, 3, 5), "float64", 25)


def _first_cols(x, k):
    return mx.split(x, [k], axis=-1)[0]


def _first_rows(x, k):
    return mx.split(x, [k], axis=-2)[0]


GRAD_CASES = {
    "inv": (LA.inv, [A4]),
    "tri_inv": (LA.tri_inv, [A4]),
    "tri_inv_upper": (lambda a: LA.tri_inv(a, upper=True), [A4]),
    "solve": (LA.solve, [A4, B42]),
    "solve_vector": (LA.solve, [A4[0], B42[0, :, 0]]),
    "solve_broadcast": (LA.solve, [A4[0], B42]),
    "solve_triangular": (LA.solve_triangular, [A4, B42]),
    "solve_triangular_upper": (lambda a, b: LA.solve_triangular(a, b, upper=True), [A4, B42]),
    "cholesky": (LA.cholesky, [SPD4]),
    "cholesky_upper": (lambda a: LA.cholesky(a, upper=True), [SPD4]),
    "qr_square": (LA.qr, [A4]),
    "qr_tall": (LA.qr, [TALL]),
    "qr_wide": (LA.qr, [WIDE]),
    "svd_square": (LA.svd, [A4]),
    # the extra columns of U (rows of Vt) of a non-square input are not differentiable
    "svd_tall": (lambda a: [_first_cols(LA.svd(a)[0], 3), LA.svd(a)[1], LA.svd(a)[2]], [TALL]),
    "svd_wide": (lambda a: [LA.svd(a)[0], LA.svd(a)[1], _first_rows(LA.svd(a)[2], 3)], [WIDE]),
    "svdvals": (lambda a: LA.svd(a, compute_uv=False), [TALL]),
    "eigh": (LA.eigh, [A4]),
    "eigh_upper": (lambda a: LA.eigh(a, UPLO="U"), [A4]),
    "eigvalsh": (LA.eigvalsh, [A4]),
    "eigvalsh_upper": (lambda a: LA.eigvalsh(a, "U"), [A4]),
    "lu": (lambda a: LA.lu(a)[1:], [A4]),
    "lu_factor": (lambda a: LA.lu_factor(a)[0], [A4]),
    "det": (LA.det, [A4]),
    "det_hessian": (lambda a: mx.grad(lambda b: mx.sum(LA.det(b)))(a), [A4]),
    "slogdet": (lambda a: LA.slogdet(a)[1], [A4]),
    "norm_fro": (lambda a: LA.norm(a, axis=(1, 2)), [TALL]),
    "norm_nuc": (lambda a: LA.norm(a, "nuc", axis=(1, 2)), [TALL]),
    "norm_2": (lambda a: LA.norm(a, 2, axis=(2, 1)), [TALL]),
    "norm_inf": (lambda a: LA.norm(a, np.inf, axis=(1, 2)), [TALL]),
    "norm_vec_3": (lambda a: LA.norm(a, 3, axis=1), [TALL]),
    "cross": (LA.cross, [TALL, rand((5, 3), "float64", 26)]),
    "cross_2d": (lambda a, b: LA.cross(a, b, axis=0), [TALL[0, :2, :], TALL[1, :3, :]]),
}


@pytest.mark.parametrize("name", list(GRAD_CASES))
def test_grads(name):
    fun, args = GRAD_CASES[name]
    check_grads(fun, args)




@needs_matmul_rules
@pytest.mark.parametrize("name", ["pinv", "cholesky_inv"])
def test_grads_through_matmul(name):
    if name == "pinv":
        check_grads(LA.pinv, [TALL])
    else:
        check_grads(LA.cholesky_inv, [np.linalg.cholesky(SPD4)])


def test_grads_multi_output_used_apart():
    def fun(a):
        u, s, vt = LA.svd(a)
        return _first_cols(u, 3) * mx.expand_dims(s, -2), vt

    check_grads(fun, [TALL])


SECOND_ORDER = {
    "inv": (LA.inv, A4), "tri_inv": (LA.tri_inv, A4),
    "solve": (lambda a: LA.solve(a, M(B42)), A4),
    "solve_triangular": (lambda a: LA.solve_triangular(a, M(B42), upper=True), A4),
    "cholesky": (LA.cholesky, SPD4), "eigh": (lambda a: LA.eigh(a)[1], SPD4),
    "eigvalsh": (LA.eigvalsh, SPD4), "qr": (lambda a: LA.qr(a)[1], TALL),
    "lu": (lambda a: LA.lu(a)[2], A4), "det": (LA.det, A4),
    "slogdet": (lambda a: LA.slogdet(a)[1], A4),
    "svdvals": (lambda a: LA.svd(a, compute_uv=False), TALL),
}


@needs_matmul_rules
@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_second_order(name):
    fun, x = SECOND_ORDER[name]

    def grad_fun(a):
        return mx.grad(lambda b: mx.sum(mx.sin(fun(b))))(a)

    check_grads(grad_fun, [x], rtol=1e-4, atol=1e-5)


def test_grad_det_at_singular_is_adjugate():
    # MLX gives the adjugate here too
    g = mx.grad(LA.det)(mx.array([[1.0, 2.0], [2.0, 4.0]]))
    np.testing.assert_allclose(npa(g), [[4, -2], [-2, 1]], rtol=1e-5, atol=1e-6)
    g = mx.grad(LA.det)(mx.array([[1.0, 2.0], [3.0, 4.0]]))
    np.testing.assert_allclose(npa(g), [[4, -3], [-2, 1]], rtol=1e-5, atol=1e-6)


def test_grad_of_int_det_is_float():
    g = mx.grad(lambda a: LA.det(a))(mx.array([[1.0, 2.0], [3.0, 4.0]], dtype=mx.float16))
    assert g.dtype == mx.float16


@pytest.mark.parametrize("fun", [LA.eig, LA.eigvals], ids=["eig", "eigvals"])
def test_eig_not_differentiable(fun):
    a = M(A4[0])

    def loss(x):
        r = fun(x)
        return mx.sum(mx.real(r[0] if isinstance(r, tuple) else r))

    with pytest.raises(ValueError, match=r"\[linalg::eig(vals)?\] eig and eigvals are not "
                                         r"differentiable"):
        mx.grad(loss)(a)
    with pytest.raises(ValueError, match=r"not differentiable"):
        mx.jvp(lambda x: fun(x)[0] if fun is LA.eig else fun(x), [a], [a])


def test_lu_grad_needs_square():
    with pytest.raises(ValueError, match=r"\[linalg::lu\] Gradients of the LU factorization "
                                         r"are only defined for square matrices; got shape "
                                         r"\(2,5,3\)"):
        mx.grad(lambda a: mx.sum(LA.lu(a)[2]))(M(TALL))


@pytest.mark.parametrize("op", ["svd", "eigh", "eigvalsh"])
def test_complex_not_differentiable(op):
    h = mx.array(np.array([[2, 1 - 1j], [1 + 1j, 3]], np.complex64))
    fun = {"svd": lambda x: LA.svd(x, compute_uv=False), "eigh": lambda x: LA.eigh(x)[0],
           "eigvalsh": LA.eigvalsh}[op]
    with pytest.raises(ValueError, match=rf"\[linalg::{op}\] Gradients of complex inputs are "
                                         r"not supported"):
        mx.vjp(fun, [h], [mx.ones((2,))])


VMAP_CASES = {
    "inv": (LA.inv, [A4]), "tri_inv": (lambda a: LA.tri_inv(a, True), [A4]),
    "cholesky": (LA.cholesky, [SPD4]), "qr": (LA.qr, [TALL]), "svd": (LA.svd, [WIDE]),
    "svdvals": (lambda a: LA.svd(a, False), [WIDE]), "eigh": (LA.eigh, [SPD4]),
    "eigvalsh": (lambda a: LA.eigvalsh(a, "U"), [A4]), "lu": (LA.lu, [TALL]),
    "lu_factor": (LA.lu_factor, [WIDE]), "det": (LA.det, [A4]), "slogdet": (LA.slogdet, [A4]),
    "solve": (LA.solve, [A4, B42]), "solve_triangular": (LA.solve_triangular, [A4, B42]),
    "norm": (lambda a: LA.norm(a, "nuc"), [TALL]),
    "cross": (LA.cross, [TALL[..., :3], TALL[..., :3]]),
}


@pytest.mark.parametrize("name", list(VMAP_CASES))
def test_vmap(name):
    fun, args = VMAP_CASES[name]
    check_vmap(fun, [M(a) for a in args], 0, rtol=1e-9, atol=1e-10)


def test_vmap_axes_and_unbatched():
    a, b = M(A4), M(B42)
    check_vmap(LA.solve, [a, M(B42[0])], [0, None])
    check_vmap(LA.solve, [M(A4[0]), b], [None, 0])
    check_vmap(LA.solve, [mx.moveaxis(a, 0, 2), mx.moveaxis(b, 0, 1)], [2, 1])
    check_vmap(LA.inv, [mx.moveaxis(a, 0, 1)], 1)


def test_vmap_complex_outputs():
    a = M(A4)
    got_w, got_v = mx.vmap(LA.eig)(a)
    for i in range(2):
        w, v = LA.eig(a[i])
        np.testing.assert_allclose(npa(got_w)[i], npa(w), rtol=1e-5)
        np.testing.assert_allclose(npa(got_v)[i], npa(v), rtol=1e-5, atol=1e-6)
    got = mx.vmap(LA.eigvals, in_axes=1)(mx.moveaxis(a, 0, 1))
    np.testing.assert_allclose(npa(got), npa(LA.eigvals(a)), rtol=1e-5)


@needs_matmul_rules
@pytest.mark.parametrize("name", ["pinv", "cholesky_inv"])
def test_vmap_through_matmul(name):
    x = TALL if name == "pinv" else np.linalg.cholesky(SPD4)
    check_vmap(getattr(LA, name), [M(x)], 0, rtol=1e-9, atol=1e-10)


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------
@HYP
@given(batch=st.lists(st.integers(1, 3), max_size=2), n=st.integers(1, 6),
       seed=st.integers(0, 2 ** 16))
def test_property_solve_and_inverse(batch, n, seed):
    batch = tuple(batch)
    a = well_conditioned(batch, n, "float64", seed)
    b = rand(batch + (n, 2), "float64", seed + 1)
    x = npa(LA.solve(M(a), M(b)))
    np.testing.assert_allclose(a @ x, b, atol=1e-9)
    ai = npa(LA.inv(M(a)))
    np.testing.assert_allclose(ai @ a, np.broadcast_to(np.eye(n), a.shape), atol=1e-9)
    np.testing.assert_allclose(npa(LA.det(M(a))), np.linalg.det(a), rtol=1e-9)


@HYP
@given(m=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 2 ** 16))
def test_property_factorizations(m, n, seed):
    a = rand((m, n), "float64", seed)
    q, r = (npa(t) for t in LA.qr(M(a)))
    np.testing.assert_allclose(q @ r, a, atol=1e-10)
    u, s, vt = (npa(t) for t in LA.svd(M(a)))
    k = min(m, n)
    np.testing.assert_allclose((u[:, :k] * s) @ vt[:k], a, atol=1e-10)
    p, low, up = (npa(t) for t in LA.lu(M(a)))
    np.testing.assert_allclose(low[p.astype(np.int64)] @ up, a, atol=1e-10)
    np.testing.assert_allclose(npa(LA.pinv(M(a))), np.linalg.pinv(a), atol=1e-8)


def test_module_surface():
    names = {"norm", "qr", "svd", "inv", "tri_inv", "pinv", "cholesky", "cholesky_inv", "solve",
             "solve_triangular", "det", "slogdet", "eig", "eigh", "eigvals", "eigvalsh", "lu",
             "lu_factor", "cross"}
    assert names <= set(la_mod.__all__)
    for n in names:
        assert getattr(LA, n).__doc__
