"""mx.linalg: norms, factorizations, inverses and solvers with MLX's API and output layouts.

Kernels call numpy.linalg (LAPACK) on whole stacks of matrices at once; the few routines
NumPy lacks (LU with pivots, triangular solves) are written with NumPy over the stack, never
with Python loops over elements. Every op works on the last two axes and batches over the
leading ones. Like MLX, most ops accept only float32 and float64 (the eigen- and singular
value routines also complex64); det and slogdet accept any real type.

Errors found from shapes and dtypes are raised when the op is called; a singular matrix can
only be seen when the kernel runs, so inv, tri_inv, solve and solve_triangular raise
`LinAlgError` (a ValueError and a RuntimeError, since MLX raises RuntimeError there) at
evaluation.

Gradients: every primitive here has vjp, jvp and vmap rules. eig and eigvals are not
differentiable (the rules raise ValueError); lu and lu_factor are differentiable for square
matrices only. For non-square inputs svd returns full U and Vt, whose columns beyond
min(M, N) are an arbitrary basis: gradients through those columns are ignored (as in
PyTorch). Complex inputs to svd, eigh and eigvalsh are not differentiable.
"""
from __future__ import annotations

import math
import operator

import numpy as np

from mx.core._array import broadcast_shapes_pair, make_node, make_nodes, promote_types, shape_str
from mx.core.dtypes import bfloat16, complex64, float32, uint32
from mx.core.ops._util import AxisError, as_array
from mx.core.primitives import declare


class LinAlgError(ValueError, RuntimeError):
    """A matrix the kernel cannot factor (singular). Both a ValueError and a RuntimeError:
    MLX raises RuntimeError for these."""


def _mx():
    import mx.core as mx
    return mx


_HALF = (np.dtype(np.float16), bfloat16.np)


def _up(x):
    """float16/bfloat16 have no LAPACK routines: compute in float32 (the scheduler casts the
    result back to the node's dtype)."""
    return x.astype(np.float32) if x.dtype in _HALF else x


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------
_REAL = ("float32", "float64")
_REAL_OR_COMPLEX = ("float32", "float64", "complex64")


def _check_matrix(x, op, dtypes=_REAL, square=None):
    """`x` must be a stack of matrices of an allowed dtype; `square` is the message for a
    non-square input (None: any shape)."""
    if x.ndim < 2:
        raise ValueError(f"[linalg::{op}] Arrays must have >= 2 dimensions. Received array "
                         f"with {x.ndim} dimensions.")
    if x.dtype.name not in dtypes:
        names = "float32 or float64" if dtypes == _REAL else "float32, float64 or complex64"
        raise ValueError(f"[linalg::{op}] Arrays must have type {names}. Received array with "
                         f"type {x.dtype.name}.")
    if square is not None and x.shape[-1] != x.shape[-2]:
        raise ValueError(f"[linalg::{op}] {square} Received array with shape "
                         f"{shape_str(x.shape)}.")
    return x


def _bool_param(v, name, op):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"[linalg::{op}] {name} must be a bool, got {type(v).__name__}.")
    return bool(v)


def _uplo(UPLO, op):
    if not isinstance(UPLO, str) or UPLO.upper() not in ("L", "U"):
        raise ValueError(f"[linalg::{op}] UPLO must be 'L' or 'U', got {UPLO!r}.")
    return UPLO.upper()


def _singular(op, shape):
    return LinAlgError(f"[linalg::{op}] The matrix is singular (input of shape "
                       f"{shape_str(tuple(shape))}); it has no inverse.")


# ---------------------------------------------------------------------------------------
# kernels
# ---------------------------------------------------------------------------------------
def _tri_np(a, upper):
    return np.triu(a) if upper else np.tril(a)


def _check_tri_diag(t, op):
    if t.shape[-1] and np.any(np.diagonal(t, axis1=-2, axis2=-1) == 0):
        raise _singular(op, t.shape)


def _inv_kernel(a):
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        raise _singular("inv", a.shape) from None


def _tri_inv_kernel(a, upper):
    t = _tri_np(a, upper)
    _check_tri_diag(t, "tri_inv")
    # the LU-based inverse may leave rounding noise in the zero triangle: mask it
    return _tri_np(np.linalg.inv(t), upper)


def _solve_kernel(a, b):
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        raise _singular("solve", a.shape) from None


def _solve_triangular_kernel(a, b, upper):
    t = _tri_np(a, upper)
    _check_tri_diag(t, "solve_triangular")
    return np.linalg.solve(t, b)


def _potrf2(A):
    """LAPACK's recursive Cholesky (dpotrf2) in place on the lower triangle of A; returns
    0, or the 1-based column of the first non-positive pivot, where it stops."""
    n = A.shape[0]
    if n == 1:
        if not A[0, 0] > 0:
            return 1
        A[0, 0] = np.sqrt(A[0, 0])
        return 0
    n1 = n // 2
    info = _potrf2(A[:n1, :n1])
    if info:
        return info
    A[n1:, :n1] = np.linalg.solve(np.tril(A[:n1, :n1]), A[n1:, :n1].T).T
    A[n1:, n1:] -= A[n1:, :n1] @ A[n1:, :n1].T
    info = _potrf2(A[n1:, n1:])
    return info + n1 if info else 0


def _cholesky_partial(a):
    """What LAPACK leaves when a matrix is not positive definite: the factorization up to
    the first non-positive pivot, which stays in place, the rest as far as the recursive
    algorithm got (MLX returns this rather than raising)."""
    A = np.array(a, dtype=np.float64)
    _potrf2(A)
    return np.tril(A).astype(a.dtype)


def _cholesky_kernel(a):
    """Lower Cholesky factor from the lower triangle of a."""
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError:
        pass
    flat = a.reshape((-1,) + a.shape[-2:])
    out = np.empty_like(flat)
    for i, m in enumerate(flat):
        try:
            out[i] = np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            out[i] = _cholesky_partial(m)
    return out.reshape(a.shape)


def _qr_kernel(a):
    m, n = a.shape[-2:]
    k = min(m, n)
    if a.size == 0:
        batch = a.shape[:-2]
        q = np.broadcast_to(np.eye(m, k, dtype=a.dtype), batch + (m, k)).copy()
        return q, np.zeros(batch + (k, n), a.dtype)
    q, r = np.linalg.qr(a)
    return q, r


def _svd_kernel(a):
    m, n = a.shape[-2:]
    if a.size == 0:
        batch = a.shape[:-2]
        rd = np.zeros((), a.dtype).real.dtype
        return (np.broadcast_to(np.eye(m, dtype=a.dtype), batch + (m, m)).copy(),
                np.zeros(batch + (min(m, n),), rd),
                np.broadcast_to(np.eye(n, dtype=a.dtype), batch + (n, n)).copy())
    u, s, vt = np.linalg.svd(a, full_matrices=True)
    return u, s, vt


def _svdvals_kernel(a):
    if a.size == 0:
        return np.zeros(a.shape[:-2] + (min(a.shape[-2:]),), np.zeros((), a.dtype).real.dtype)
    return np.linalg.svd(a, compute_uv=False)


def _eigh_kernel(a, UPLO):
    if a.size == 0:
        return np.zeros(a.shape[:-1], np.zeros((), a.dtype).real.dtype), np.zeros_like(a)
    w, v = np.linalg.eigh(a, UPLO=UPLO)
    return w, v


def _eigvalsh_kernel(a, UPLO):
    if a.size == 0:
        return np.zeros(a.shape[:-1], np.zeros((), a.dtype).real.dtype)
    return np.linalg.eigvalsh(a, UPLO=UPLO)


def _eig_kernel(a):
    if a.size == 0:
        return np.zeros(a.shape[:-1], np.complex64), np.zeros(a.shape, np.complex64)
    w, v = np.linalg.eig(a)
    return w, v


def _eigvals_kernel(a):
    if a.size == 0:
        return np.zeros(a.shape[:-1], np.complex64)
    return np.linalg.eigvals(a)


def _lu_kernel(a):
    """LU with partial pivoting as LAPACK's getrf does it (largest pivot, first on ties),
    vectorised over the stack. Returns the packed LU, LAPACK's row interchanges (0-based)
    and the permutation p with A = L[p] @ U."""
    m, n = a.shape[-2:]
    k = min(m, n)
    batch = a.shape[:-2]
    B = int(np.prod(batch, dtype=np.int64))
    A = np.array(a.reshape((B, m, n)), copy=True)
    rows = np.arange(B)
    pivots = np.zeros((B, k), np.int64)
    perm = np.broadcast_to(np.arange(m), (B, m)).copy()
    for j in range(k):
        p = j + np.argmax(np.abs(A[:, j:, j]), axis=1)
        pivots[:, j] = p
        row_j = A[rows, j].copy()
        A[rows, j] = A[rows, p]
        A[rows, p] = row_j
        pj = perm[rows, j].copy()
        perm[rows, j] = perm[rows, p]
        perm[rows, p] = pj
        piv = A[:, j, j]
        # a zero pivot means the whole column below is zero too: leave it (getrf does)
        safe = np.where(piv == 0, np.ones_like(piv), piv)
        A[:, j + 1:, j] /= safe[:, None]
        A[:, j + 1:, j + 1:] -= A[:, j + 1:, j, None] * A[:, j, None, j + 1:]
    p_out = np.argsort(perm, axis=1, kind="stable")
    return (A.reshape(a.shape), pivots.reshape(batch + (k,)).astype(np.uint32),
            p_out.reshape(batch + (m,)).astype(np.uint32))


def _det_kernel(a):
    return np.linalg.det(_up(a))


def _slogdet_kernel(a):
    sign, logabs = np.linalg.slogdet(_up(a))
    return sign, logabs


def _cofactor_kernel(a):
    """The cofactor matrix adj(a)^T = det(a) inv(a)^T, also defined for singular a (through
    the SVD: adj(U S V^T) = det(U) det(V) V adj(S) U^T)."""
    a = _up(a)
    n = a.shape[-1]
    if n == 0:
        return np.zeros_like(a)
    try:
        det = np.linalg.det(a)
        return det[..., None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    except np.linalg.LinAlgError:
        pass
    u, s, vt = np.linalg.svd(a)
    ones = np.ones(s.shape[:-1] + (1,), s.dtype)
    before = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    adj_s = before * after
    c = np.linalg.det(u) * np.linalg.det(vt)
    return c[..., None, None] * np.matmul(u * adj_s[..., None, :], vt)


INV = declare("linalg_inv", cpu=_inv_kernel, doc="matrix inverse")
TRI_INV = declare("linalg_tri_inv", cpu=_tri_inv_kernel, doc="inverse of a triangular matrix")
SOLVE = declare("linalg_solve", cpu=_solve_kernel, doc="solve A X = B (matrix B)")
SOLVE_TRI = declare("linalg_solve_triangular", cpu=_solve_triangular_kernel,
                    doc="solve A X = B with A triangular")
CHOLESKY = declare("linalg_cholesky", cpu=_cholesky_kernel,
                   doc="lower Cholesky factor from the lower triangle")
QR = declare("linalg_qr", cpu=_qr_kernel, nout=2, doc="reduced QR factorization")
SVD = declare("linalg_svd", cpu=_svd_kernel, nout=3, doc="full SVD (U, S, Vt)")
SVDVALS = declare("linalg_svdvals", cpu=_svdvals_kernel, doc="singular values")
EIGH = declare("linalg_eigh", cpu=_eigh_kernel, nout=2, doc="symmetric eigendecomposition")
EIGVALSH = declare("linalg_eigvalsh", cpu=_eigvalsh_kernel, doc="symmetric eigenvalues")
EIG = declare("linalg_eig", cpu=_eig_kernel, nout=2, doc="general eigendecomposition")
EIGVALS = declare("linalg_eigvals", cpu=_eigvals_kernel, doc="general eigenvalues")
LU = declare("linalg_lu", cpu=_lu_kernel, nout=3,
             doc="LU with partial pivoting: packed LU, pivots, permutation")
DET = declare("linalg_det", cpu=_det_kernel, doc="determinant")
SLOGDET = declare("linalg_slogdet", cpu=_slogdet_kernel, nout=2,
                  doc="sign and log|det|")
COFACTOR = declare("linalg_cofactor", cpu=_cofactor_kernel,
                   doc="cofactor matrix det(a) inv(a)^T (det's gradient)")


# ---------------------------------------------------------------------------------------
# node builders (shared by the ops and the vmap rules; inputs already checked)
# ---------------------------------------------------------------------------------------
def _real_dtype(d):
    return float32 if d is complex64 else d


def _inv_node(x, stream=None):
    return make_node(INV, (x,), None, x.shape, x.dtype, stream)


def _tri_inv_node(x, upper, stream=None):
    return make_node(TRI_INV, (x,), {"upper": upper}, x.shape, x.dtype, stream)


def _solve_node(a, b, stream=None):
    return make_node(SOLVE, (a, b), None, b.shape, b.dtype, stream)


def _solve_tri_node(a, b, upper, stream=None):
    return make_node(SOLVE_TRI, (a, b), {"upper": upper}, b.shape, b.dtype, stream)


def _cholesky_node(x, stream=None):
    return make_node(CHOLESKY, (x,), None, x.shape, x.dtype, stream)


def _qr_nodes(x, stream=None):
    *batch, m, n = x.shape
    k = min(m, n)
    batch = tuple(batch)
    return make_nodes(QR, (x,), None, [batch + (m, k), batch + (k, n)], [x.dtype, x.dtype],
                      stream)


def _svd_nodes(x, stream=None):
    *batch, m, n = x.shape
    batch = tuple(batch)
    return make_nodes(SVD, (x,), None, [batch + (m, m), batch + (min(m, n),), batch + (n, n)],
                      [x.dtype, _real_dtype(x.dtype), x.dtype], stream)


def _svdvals_node(x, stream=None):
    return make_node(SVDVALS, (x,), None, x.shape[:-2] + (min(x.shape[-2:]),),
                     _real_dtype(x.dtype), stream)


def _eigh_nodes(x, UPLO, stream=None):
    return make_nodes(EIGH, (x,), {"UPLO": UPLO}, [x.shape[:-1], x.shape],
                      [_real_dtype(x.dtype), x.dtype], stream)


def _eigvalsh_node(x, UPLO, stream=None):
    return make_node(EIGVALSH, (x,), {"UPLO": UPLO}, x.shape[:-1], _real_dtype(x.dtype), stream)


def _eig_nodes(x, stream=None):
    return make_nodes(EIG, (x,), None, [x.shape[:-1], x.shape], [complex64, complex64], stream)


def _eigvals_node(x, stream=None):
    return make_node(EIGVALS, (x,), None, x.shape[:-1], complex64, stream)


def _lu_nodes(x, stream=None):
    *batch, m, n = x.shape
    batch = tuple(batch)
    return make_nodes(LU, (x,), None, [x.shape, batch + (min(m, n),), batch + (m,)],
                      [x.dtype, uint32, uint32], stream)


def _det_node(x, stream=None):
    return make_node(DET, (x,), None, x.shape[:-2], x.dtype, stream)


def _slogdet_nodes(x, stream=None):
    return make_nodes(SLOGDET, (x,), None, [x.shape[:-2], x.shape[:-2]], [x.dtype, x.dtype],
                      stream)


def _cofactor_node(x, stream=None):
    return make_node(COFACTOR, (x,), None, x.shape, x.dtype, stream)


# ---------------------------------------------------------------------------------------
# inverses and solvers
# ---------------------------------------------------------------------------------------
def inv(a, *, stream=None):
    """The inverse of each square matrix in the last two axes of `a` (float32 or float64).
    A singular matrix raises LinAlgError when the result is evaluated."""
    x = _check_matrix(as_array(a, "linalg::inv"), "inv",
                      square="Inverses are only defined for square matrices.")
    return _inv_node(x, stream)


def tri_inv(a, upper=False, *, stream=None):
    """The inverse of triangular matrices: only the lower (or, with upper=True, the upper)
    triangle of `a` is read, and the result is triangular the same way."""
    x = _check_matrix(as_array(a, "linalg::tri_inv"), "tri_inv",
                      square="Inverses are only defined for square matrices.")
    return _tri_inv_node(x, _bool_param(upper, "upper", "tri_inv"), stream)


def _solve_operands(a, b, op):
    """Check and align solve's operands: a square matrices, b a vector (1-D) or matrices;
    batch axes broadcast. Returns (a, b as matrices, whether b was a vector)."""
    mx = _mx()
    A = as_array(a, f"linalg::{op}")
    B = as_array(b, f"linalg::{op}")
    if A.ndim < 2:
        raise ValueError(f"[linalg::{op}] First input must have >= 2 dimensions. Received "
                         f"array with {A.ndim} dimensions.")
    if B.ndim < 1:
        raise ValueError(f"[linalg::{op}] Second input must have >= 1 dimensions. Received "
                         f"array with {B.ndim} dimensions.")
    if A.shape[-1] != A.shape[-2]:
        raise ValueError(f"[linalg::{op}] First input must be a square matrix. Received array "
                         f"with shape {shape_str(A.shape)}.")
    d = promote_types(A.dtype, B.dtype)
    if d.name not in _REAL:
        raise ValueError(f"[linalg::{op}] Input arrays must promote to float32 or float64. "
                         f"Received arrays with type {A.dtype.name} and {B.dtype.name}.")
    vector = B.ndim == 1
    rows = B.shape[0] if vector else B.shape[-2]
    if rows != A.shape[-1]:
        raise ValueError(f"[linalg::{op}] Last dimension of first input with shape "
                         f"{shape_str(A.shape)} must match second to last dimension of second "
                         f"input with shape {shape_str(B.shape)}.")
    if vector:
        B = mx.reshape(B, (rows, 1))
    batch = broadcast_shapes_pair(A.shape[:-2], B.shape[:-2], f"linalg::{op}")
    if A.dtype is not d:
        A = mx.astype(A, d)
    if B.dtype is not d:
        B = mx.astype(B, d)
    if A.shape[:-2] != batch:
        A = mx.broadcast_to(A, batch + A.shape[-2:])
    if B.shape[:-2] != batch:
        B = mx.broadcast_to(B, batch + B.shape[-2:])
    return A, B, vector


def solve(a, b, *, stream=None):
    """The solution X of ``a @ X = b`` for square `a`. `b` is a vector (1-D) or a stack of
    matrices; leading (batch) axes of a and b broadcast."""
    A, B, vector = _solve_operands(a, b, "solve")
    x = _solve_node(A, B, stream)
    return _mx().reshape(x, x.shape[:-1]) if vector else x


def solve_triangular(a, b, *, upper=False, stream=None):
    """The solution X of ``a @ X = b`` where `a` is lower (or, with upper=True, upper)
    triangular; only that triangle of `a` is read."""
    upper = _bool_param(upper, "upper", "solve_triangular")
    A, B, vector = _solve_operands(a, b, "solve_triangular")
    x = _solve_tri_node(A, B, upper, stream)
    return _mx().reshape(x, x.shape[:-1]) if vector else x


def cholesky(a, upper=False, *, stream=None):
    """The Cholesky factor of symmetric positive (semi-)definite matrices: lower L with
    ``L @ L.T == a`` (reading the lower triangle of a), or with upper=True upper U with
    ``U.T @ U == a`` (reading the upper triangle). Like MLX, a matrix that is not positive
    definite gives an unspecified result instead of an error."""
    x = _check_matrix(as_array(a, "linalg::cholesky"), "cholesky",
                      square="Cholesky decomposition is only defined for square matrices.")
    if _bool_param(upper, "upper", "cholesky"):
        mx = _mx()
        # the upper factor of a is the transposed lower factor of a^T
        return mx.swapaxes(_cholesky_node(mx.swapaxes(x, -1, -2), stream), -1, -2)
    return _cholesky_node(x, stream)


def cholesky_inv(a, upper=False, *, stream=None):
    """The inverse of ``A = L @ L.T`` given its Cholesky factor L (`a`; with upper=True the
    upper factor U of ``A = U.T @ U``)."""
    x = _check_matrix(as_array(a, "linalg::cholesky_inv"), "cholesky_inv",
                      square="Cholesky inverse is only defined for square matrices.")
    upper = _bool_param(upper, "upper", "cholesky_inv")
    mx = _mx()
    t = _tri_inv_node(x, upper, stream)
    tt = mx.swapaxes(t, -1, -2)
    return mx.matmul(t, tt) if upper else mx.matmul(tt, t)


def pinv(a, *, stream=None):
    """The Moore-Penrose pseudo-inverse, through the SVD; singular values below
    ``10 * max(M, N) * eps * max(S)`` count as zero."""
    x = _check_matrix(as_array(a, "linalg::pinv"), "pinv")
    mx = _mx()
    m, n = x.shape[-2:]
    k = min(m, n)
    out_shape = x.shape[:-2] + (n, m)
    if k == 0:
        return mx.zeros(out_shape, x.dtype)
    u, s, vt = _svd_nodes(x, stream)
    u1 = _first(u, k, -1) if m > k else u
    vt1 = _first(vt, k, -2) if n > k else vt
    eps = float(np.finfo(x.dtype.np).eps)
    cutoff = (10.0 * max(m, n) * eps) * mx.max(s, axis=-1, keepdims=True)
    keep = s > cutoff
    s_inv = mx.where(keep, 1.0 / mx.where(keep, s, 1.0), 0.0)
    return mx.matmul(mx.swapaxes(vt1, -1, -2) * mx.expand_dims(s_inv, -2),
                     mx.swapaxes(u1, -1, -2))


def _first(x, k, axis):
    """The first k entries of x along axis (a split, so it is differentiable)."""
    return _mx().split(x, [k], axis=axis)[0]


# ---------------------------------------------------------------------------------------
# factorizations
# ---------------------------------------------------------------------------------------
def qr(a, *, stream=None):
    """The reduced QR factorization: Q (..., M, K) with orthonormal columns and upper
    triangular R (..., K, N), K = min(M, N), such that ``Q @ R == a``."""
    x = _check_matrix(as_array(a, "linalg::qr"), "qr")
    return tuple(_qr_nodes(x, stream))


def svd(a, compute_uv=True, *, stream=None):
    """The singular value decomposition ``a == U @ diag(S) @ Vt`` with full U (..., M, M)
    and Vt (..., N, N) and S (..., min(M, N)) in descending order; with compute_uv=False
    only S. complex64 input gives complex U and Vt and real S."""
    x = as_array(a, "linalg::svd")
    if x.ndim < 2:
        raise ValueError(f"[linalg::svd] Input array must have >= 2 dimensions. Received array "
                         f"with {x.ndim} dimensions.")
    _check_matrix(x, "svd", _REAL_OR_COMPLEX)
    if not compute_uv:
        return _svdvals_node(x, stream)
    return tuple(_svd_nodes(x, stream))


def eigh(a, UPLO="L", *, stream=None):
    """Eigenvalues (ascending, real) and orthonormal eigenvectors (the columns of V) of real
    symmetric or complex Hermitian matrices, reading only the lower (UPLO="L") or upper
    ("U") triangle."""
    x = _check_matrix(as_array(a, "linalg::eigh"), "eigh", _REAL_OR_COMPLEX,
                      square="Only defined for square matrices.")
    return tuple(_eigh_nodes(x, _uplo(UPLO, "eigh"), stream))


def eigvalsh(a, UPLO="L", *, stream=None):
    """The eigenvalues (ascending, real) of real symmetric or complex Hermitian matrices."""
    x = _check_matrix(as_array(a, "linalg::eigvalsh"), "eigvalsh", _REAL_OR_COMPLEX,
                      square="Only defined for square matrices.")
    return _eigvalsh_node(x, _uplo(UPLO, "eigvalsh"), stream)


def eig(a, *, stream=None):
    """Eigenvalues and unit-norm right eigenvectors (columns) of general square matrices;
    always complex64, even when the eigenvalues are real."""
    x = _check_matrix(as_array(a, "linalg::eig"), "eig", _REAL_OR_COMPLEX,
                      square="Only defined for square matrices.")
    return tuple(_eig_nodes(x, stream))


def eigvals(a, *, stream=None):
    """The eigenvalues (complex64, in no particular order) of general square matrices."""
    x = _check_matrix(as_array(a, "linalg::eigvals"), "eigvals", _REAL_OR_COMPLEX,
                      square="Only defined for square matrices.")
    return _eigvals_node(x, stream)


def lu_factor(a, *, stream=None):
    """The compact LU factorization with partial pivoting: (LU, pivots), LU holding L's
    strictly lower part (L has a unit diagonal) and U, pivots (uint32) LAPACK's 0-based
    row interchanges (row i was swapped with row pivots[i])."""
    x = _check_matrix(as_array(a, "linalg::lu_factor"), "lu_factor")
    lu_, piv, _ = _lu_nodes(x, stream)
    return lu_, piv


def lu(a, *, stream=None):
    """The LU factorization with partial pivoting as (p, L, U): p (uint32) are row indices
    with ``a == L[p] @ U``, L (..., M, K) unit lower triangular, U (..., K, N) upper
    triangular, K = min(M, N)."""
    x = _check_matrix(as_array(a, "linalg::lu"), "lu")
    mx = _mx()
    m, n = x.shape[-2:]
    k = min(m, n)
    packed, _, p = _lu_nodes(x, stream)
    lower = mx.tril(packed, -1)
    upper = mx.triu(packed)
    if n > k:
        lower = _first(lower, k, -1)
    if m > k:
        upper = _first(upper, k, -2)
    lower = lower + mx.eye(m, k, dtype=x.dtype)
    return p, lower, upper


# ---------------------------------------------------------------------------------------
# determinants
# ---------------------------------------------------------------------------------------
def _det_operand(a, op):
    x = as_array(a, f"linalg::{op}")
    if x.ndim < 2:
        raise ValueError(f"[linalg::{op}] Arrays must have >= 2 dimensions. Received array "
                         f"with {x.ndim} dimensions.")
    if x.dtype is complex64:
        raise ValueError(f"[linalg::{op}] Complex inputs are not supported.")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"[linalg::{op}] Only defined for square matrices. Received array "
                         f"with shape {shape_str(x.shape)}.")
    if x.dtype.name not in ("float16", "bfloat16", "float32", "float64"):
        x = _mx().astype(x, float32)
    return x


def det(a, *, stream=None):
    """The determinant of each square matrix in the last two axes (integer input gives
    float32; float16 and bfloat16 keep their type)."""
    return _det_node(_det_operand(a, "det"), stream)


def slogdet(a, *, stream=None):
    """(sign, log|det|) of square matrices: sign is -1, 0 or 1 and a singular matrix gives
    (0, -inf); ``det == sign * exp(logabsdet)`` without overflow."""
    return tuple(_slogdet_nodes(_det_operand(a, "slogdet"), stream))


# ---------------------------------------------------------------------------------------
# compositions: cross and norm
# ---------------------------------------------------------------------------------------
def cross(a, b, axis=-1, *, stream=None):
    """The cross product of vectors of length 3 (or 2, taken with a zero third component)
    along `axis`; the other axes broadcast. The result has length 3 along axis."""
    mx = _mx()
    x = as_array(a, "linalg::cross")
    y = as_array(b, "linalg::cross")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"[linalg::cross] axis must be an integer, got {type(axis).__name__}.") \
            from None
    d = promote_types(x.dtype, y.dtype)
    comps = []
    for v in (x, y):
        if not -v.ndim <= ax < v.ndim:
            raise AxisError(f"[linalg::cross] Axis {ax} is out of bounds for array with "
                            f"{v.ndim} dimensions.")
        k = ax % v.ndim
        if v.shape[k] not in (2, 3):
            raise ValueError(f"[linalg::cross] The specified axis must have size 2 or 3; got "
                             f"an input of shape {shape_str(v.shape)} with axis {ax}.")
        v = mx.astype(v, d)
        comps.append([mx.squeeze(p, axis=k) for p in mx.split(v, v.shape[k], axis=k)])
    (a0, a1, *a2), (b0, b1, *b2) = comps
    try:
        out_shape = broadcast_shapes_pair(a0.shape, b0.shape, "linalg::cross")
    except ValueError:
        raise ValueError(f"[linalg::cross] Shapes {shape_str(x.shape)} and {shape_str(y.shape)} "
                         f"cannot be broadcast (axis {ax} aside).") from None
    # bool: MLX's arithmetic on bools is and / xor
    mul, sub = (mx.logical_and, mx.logical_xor) if d.name == "bool" else (mx.multiply, mx.subtract)
    zero = mx.zeros(out_shape, d)
    a2 = a2[0] if a2 else None
    b2 = b2[0] if b2 else None

    def term(p, q):
        return zero if p is None or q is None else mul(p, q)

    c0 = sub(term(a1, b2), term(a2, b1))
    c1 = sub(term(a2, b0), term(a0, b2))
    c2 = sub(mul(a0, b1), mul(a1, b0))
    c0, c1, c2 = (mx.broadcast_to(c, out_shape) for c in (c0, c1, c2))
    return mx.stack([c0, c1, c2], axis=ax if ax < 0 else ax % (len(out_shape) + 1))


def _is_str(o):
    return isinstance(o, str)


def _norm_axes(x, ord, axis):
    """The axes normed over, checked as MLX does."""
    nd = x.ndim
    if axis is None:
        if ord is not None and not _is_str(ord) and nd not in (1, 2):
            raise ValueError("[linalg::norm] Received too many axes for norm.")
        axes = tuple(range(nd))
    else:
        raw = list(axis) if isinstance(axis, (list, tuple)) else [axis]
        axes = []
        for r in raw:
            try:
                r = int(r)
            except (TypeError, ValueError):
                raise TypeError(f"[linalg::norm] axis must be an int or a sequence of ints, "
                                f"got {axis!r}.") from None
            if not -nd <= r < nd:
                raise AxisError(f"[linalg::norm] Invalid axis {r} for array with {nd} "
                                "dimensions.")
            axes.append(r % nd)
        axes = tuple(axes)
        if len(set(axes)) != len(axes):
            raise ValueError(f"[linalg::norm] Duplicate axes {tuple(raw)}.")
    if _is_str(ord) and len(axes) != 2:
        raise ValueError(f"[linalg::norm] Norm '{ord}' only supported for matrices, but "
                         f"received {len(axes)} axis/axes.")
    flat = axis is None and ord is None
    if not flat and (len(axes) > 2 or len(axes) == 0):
        raise ValueError("[linalg::norm] Received too many axes for norm.")
    return axes


def norm(a, /, ord=None, axis=None, keepdims=False, *, stream=None):
    """Vector or matrix norms.

    With axis None: the 2-norm of the flattened array when ord is None, else the vector
    norm of a 1-D or the matrix norm of a 2-D array. An int axis gives vector norms along
    it, a pair of axes matrix norms over them. Vector ords: None/2, inf, -inf, 0 (count of
    non-zeros) and any other number p (sum(|x|^p)^(1/p)). Matrix ords: None/"fro",
    "nuc", inf, -inf, 1, -1, 2, -2. Integer input gives float32.
    """
    mx = _mx()
    x = as_array(a, "linalg::norm")
    axes = _norm_axes(x, ord, axis)
    if ord is not None and not _is_str(ord):
        if isinstance(ord, complex) or not isinstance(ord, (int, float, np.integer, np.floating)):
            raise TypeError(f"[linalg::norm] ord must be a number or a string, got "
                            f"{type(ord).__name__}.")
        ord = float(ord)
    is_complex = x.dtype is complex64
    if ord is None or ord == "fro" or (ord == 2.0 and len(axes) == 1):
        # the 2-norm of everything normed over (Frobenius for matrices)
        xf = _float(x)
        sq = mx.square(mx.abs(xf)) if is_complex else mx.square(xf)
        if not axes:
            return mx.abs(xf)
        return mx.sqrt(mx.sum(sq, axis=list(axes), keepdims=keepdims))
    if len(axes) == 1:
        out = _vector_norm(_float(x), ord, axes[0], keepdims)
    else:
        out = _matrix_norm(x, ord, axes, keepdims)
    # MLX quirk kept: these norms of complex input come back as complex64
    if is_complex and ord != "nuc":
        out = mx.astype(out, complex64)
    return out


def _float(x):
    """Integer and bool arrays are normed in float32."""
    if x.dtype.name in ("float16", "bfloat16", "float32", "float64", "complex64"):
        return x
    return _mx().astype(x, float32)


def _vector_norm(x, ord, ax, keepdims):
    mx = _mx()
    ab = mx.abs(x)
    if ord == math.inf:
        return mx.max(ab, axis=ax, keepdims=keepdims)
    if ord == -math.inf:
        return mx.min(ab, axis=ax, keepdims=keepdims)
    if ord == 0:
        return mx.astype(mx.sum(mx.not_equal(x, 0), axis=ax, keepdims=keepdims), ab.dtype)
    if ord == 1:
        return mx.sum(ab, axis=ax, keepdims=keepdims)
    return mx.power(mx.sum(mx.power(ab, ord), axis=ax, keepdims=keepdims), 1.0 / ord)


def _matrix_norm(x, ord, axes, keepdims):
    mx = _mx()
    r, c = axes
    if _is_str(ord):
        if ord != "nuc":
            raise ValueError(f"[linalg::norm] Invalid ord value '{ord}' for matrix norm.")
    elif ord not in (1.0, -1.0, 2.0, -2.0, math.inf, -math.inf):
        raise ValueError(f"[linalg::norm] Invalid ord {_ord_str(ord)} for matrix norm.")
    if ord in ("nuc", 2.0, -2.0):
        rest = [i for i in range(x.ndim) if i not in (r, c)]
        s = svd(mx.transpose(x, rest + [r, c]), compute_uv=False)
        out = mx.sum(s, axis=-1) if ord == "nuc" else \
            mx.max(s, axis=-1) if ord == 2.0 else mx.min(s, axis=-1)
        if keepdims:
            out = mx.expand_dims(out, sorted((r, c)))
        return out
    ab = mx.abs(_float(x))
    if ord in (1.0, -1.0):
        inner, outer = r, c
    else:
        inner, outer = c, r
    red = mx.max if ord > 0 else mx.min
    out = red(mx.sum(ab, axis=inner, keepdims=True), axis=outer, keepdims=True)
    return out if keepdims else mx.squeeze(out, axis=(r, c))


def _ord_str(o):
    return str(int(o)) if float(o).is_integer() else str(o)


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def _T(x):
    return _mx().swapaxes(x, -1, -2)


def _mm(a, b):
    return _mx().matmul(a, b)


def _eye_like(x):
    n = x.shape[-1]
    return _mx().eye(n, dtype=x.dtype)


def _diag_of(m):
    """The diagonal of a stack of square matrices (as a reduction, differentiable)."""
    mx = _mx()
    return mx.sum(m * mx.eye(m.shape[-1], dtype=m.dtype), axis=-1)


def _diag_mat(v):
    """Diagonal matrices from a stack of vectors."""
    mx = _mx()
    return mx.expand_dims(v, -2) * mx.eye(v.shape[-1], dtype=v.dtype)


def _tri(x, upper, k=0):
    mx = _mx()
    return mx.triu(x, k) if upper else mx.tril(x, k)


def _sym_from_tri(x, upper):
    """The symmetric matrix a kernel sees when it reads one triangle of x."""
    mx = _mx()
    if upper:
        return mx.triu(x) + _T(mx.triu(x, 1))
    return mx.tril(x) + _T(mx.tril(x, -1))


def _fold_to_tri(g, upper):
    """The gradient with respect to the triangle read, given g = gradient with respect to
    the symmetric matrix built from it."""
    full = g + _T(g)
    return _tri(full, upper) - _diag_mat(_diag_of(g))


def _not_complex(x, op):
    if x.dtype is complex64:
        raise ValueError(f"[linalg::{op}] Gradients of complex inputs are not supported.")


def _rmul_inv_tri(b, t, upper):
    """b @ inv(tri(t)) as a triangular solve: (tri(t)^-T b^T)^T."""
    return _T(solve_triangular(_T(t), _T(b), upper=not upper))


def _vmap_rule(build):
    """vmap for ops on the last two axes: move every batch axis to the front (broadcasting
    unbatched inputs) and call the op on the bigger stack."""
    from mx.core.transforms import move_batch_axis

    def rule(inputs, axes, out, **params):
        mx = _mx()
        size = next(x.shape[a] for x, a in zip(inputs, axes) if a is not None)
        xs = []
        for x, a in zip(inputs, axes):
            if a is None:
                x = mx.broadcast_to(mx.expand_dims(x, 0), (size,) + x.shape)
            else:
                x = move_batch_axis(x, a, 0)
            xs.append(x)
        res = build(*xs, **params)
        if isinstance(res, (tuple, list)):
            return list(res), [0] * len(res)
        return res, 0

    return rule


def _install_inverse_rules():
    def inv_vjp(primals, ct, out):
        return [-_mm(_T(out), _mm(ct, _T(out)))]

    def inv_jvp(primals, tangents, out):
        return -_mm(out, _mm(tangents[0], out))

    INV.vjp, INV.jvp, INV.vmap = inv_vjp, inv_jvp, _vmap_rule(_inv_node)

    def tri_inv_vjp(primals, ct, out, upper):
        return [_tri(-_mm(_T(out), _mm(ct, _T(out))), upper)]

    def tri_inv_jvp(primals, tangents, out, upper):
        return -_mm(out, _mm(_tri(tangents[0], upper), out))

    TRI_INV.vjp, TRI_INV.jvp = tri_inv_vjp, tri_inv_jvp
    TRI_INV.vmap = _vmap_rule(_tri_inv_node)

    def solve_vjp(primals, ct, out):
        a, _ = primals
        gb = _solve_node(_T(a), ct)
        return [-_mm(gb, _T(out)), gb]

    def solve_jvp(primals, tangents, out):
        a, _ = primals
        da, db = tangents
        rhs = db
        if da is not None:
            rhs = -_mm(da, out) if rhs is None else rhs - _mm(da, out)
        return _solve_node(a, rhs)

    SOLVE.vjp, SOLVE.jvp, SOLVE.vmap = solve_vjp, solve_jvp, _vmap_rule(_solve_node)

    def solve_tri_vjp(primals, ct, out, upper):
        a, _ = primals
        gb = _solve_tri_node(_T(a), ct, not upper)
        return [_tri(-_mm(gb, _T(out)), upper), gb]

    def solve_tri_jvp(primals, tangents, out, upper):
        a, _ = primals
        da, db = tangents
        rhs = db
        if da is not None:
            t = _mm(_tri(da, upper), out)
            rhs = -t if rhs is None else rhs - t
        return _solve_tri_node(a, rhs, upper)

    SOLVE_TRI.vjp, SOLVE_TRI.jvp = solve_tri_vjp, solve_tri_jvp
    SOLVE_TRI.vmap = _vmap_rule(_solve_tri_node)


def _phi(x):
    """Lower triangle with the diagonal halved."""
    mx = _mx()
    return mx.tril(x) - 0.5 * _diag_mat(_diag_of(x))


def _install_cholesky_rules():
    def jvp(primals, tangents, out):
        da = _sym_from_tri(tangents[0], upper=False)
        # X = L^-1 dA L^-T; dL = L phi(X)
        y = solve_triangular(out, da)
        x = _T(solve_triangular(out, _T(y)))
        return _mm(out, _phi(x))

    def vjp(primals, ct, out):
        p = _phi(_mm(_T(out), ct))
        # S = L^-T P L^-1
        y = solve_triangular(_T(out), p, upper=True)
        s = _T(solve_triangular(_T(out), _T(y), upper=True))
        g = 0.5 * (s + _T(s))
        return [_fold_to_tri(g, upper=False)]

    CHOLESKY.vjp, CHOLESKY.jvp, CHOLESKY.vmap = vjp, jvp, _vmap_rule(_cholesky_node)


def _qr_square_vjp(q, r, gq, gr):
    """Cotangent of A (M >= N) from those of Q (M, N) and R (N, N)."""
    mx = _mx()
    m = _mm(r, _T(gr)) - _mm(_T(gq), q)
    copyltu = mx.tril(m) + _T(mx.tril(m, -1))
    b = gq + _mm(q, copyltu)
    # b @ R^-T
    return _T(solve_triangular(r, _T(b), upper=True))


def _qr_square_jvp(q, r, da):
    mx = _mx()
    dar = _rmul_inv_tri(da, r, upper=True)        # dA R^-1
    c = _mm(_T(q), dar)
    low = mx.tril(c, -1)
    upper_part = mx.triu(c) + _T(low)               # dR R^-1
    dr = _mm(upper_part, r)
    dq = dar - _mm(q, upper_part)
    return dq, dr


def _install_qr_rules():
    def vjp(primals, ct, out):
        (a,) = primals
        q, r = out
        gq, gr = ct
        mx = _mx()
        m, n = a.shape[-2:]
        if m >= n:
            return [_qr_square_vjp(q, r, gq, gr)]
        # wide: A = [X | Y], R = [U | V] with X = Q U and Y = Q V
        x, y = mx.split(a, [m], axis=-1)
        u, _ = mx.split(r, [m], axis=-1)
        gu, gv = mx.split(gr, [m], axis=-1)
        gy = _mm(q, gv)
        gx = _qr_square_vjp(q, u, gq + _mm(y, _T(gv)), gu)
        return [mx.concatenate([gx, gy], axis=-1)]

    def jvp(primals, tangents, out):
        (a,) = primals
        q, r = out
        da = tangents[0]
        mx = _mx()
        m, n = a.shape[-2:]
        if m >= n:
            return list(_qr_square_jvp(q, r, da))
        x, y = mx.split(a, [m], axis=-1)
        u, _ = mx.split(r, [m], axis=-1)
        dx, dy = mx.split(da, [m], axis=-1)
        dq, du = _qr_square_jvp(q, u, dx)
        dv = _mm(_T(dq), y) + _mm(_T(q), dy)
        return [dq, mx.concatenate([du, dv], axis=-1)]

    QR.vjp, QR.jvp, QR.vmap = vjp, jvp, _vmap_rule(_qr_nodes)


def _svd_f(s):
    """F[i, j] = 1 / (s_j^2 - s_i^2) off the diagonal, 0 on it."""
    mx = _mx()
    s2 = mx.square(s)
    diff = mx.expand_dims(s2, -2) - mx.expand_dims(s2, -1)
    eye = mx.eye(s.shape[-1], dtype=s.dtype) > 0
    return mx.where(eye, 0.0, 1.0 / mx.where(eye, 1.0, diff))


def _install_svd_rules():
    def reduced(u, vt, k):
        m, n = u.shape[-1], vt.shape[-1]
        u1 = _first(u, k, -1) if m > k else u
        v1 = _T(_first(vt, k, -2) if n > k else vt)
        return u1, v1

    def vjp(primals, ct, out):
        (a,) = primals
        _not_complex(a, "svd")
        mx = _mx()
        u, s, vt = out
        gu, gs, gvt = ct
        m, n = a.shape[-2:]
        k = min(m, n)
        u1, v1 = reduced(u, vt, k)
        gu1, gv1 = reduced(gu, gvt, k)
        f = _svd_f(s)
        su = _mm(_T(u1), gu1)
        sv = _mm(_T(v1), gv1)
        smat = _diag_mat(s)
        inner = _mm(f * (su - _T(su)), smat) + _diag_mat(gs) + _mm(smat, f * (sv - _T(sv)))
        ga = _mm(u1, _mm(inner, _T(v1)))
        s_inv = mx.expand_dims(1.0 / s, -2)
        if m > k:
            proj = gu1 - _mm(u1, su)                # (I - U U^T) gU
            ga = ga + _mm(proj * s_inv, _T(v1))
        if n > k:
            proj = gv1 - _mm(v1, sv)                # (I - V V^T) gV
            ga = ga + _mm(u1 * s_inv, _T(proj))
        return [ga]

    def jvp(primals, tangents, out):
        (a,) = primals
        _not_complex(a, "svd")
        mx = _mx()
        u, s, vt = out
        da = tangents[0]
        m, n = a.shape[-2:]
        k = min(m, n)
        u1, v1 = reduced(u, vt, k)
        f = _svd_f(s)
        smat = _diag_mat(s)
        dav = _mm(da, v1)
        dp = _mm(_T(u1), dav)
        ds = _diag_of(dp)
        du = _mm(u1, f * (_mm(dp, smat) + _mm(smat, _T(dp))))
        dv = _mm(v1, f * (_mm(smat, dp) + _mm(_T(dp), smat)))
        s_inv = mx.expand_dims(1.0 / s, -2)
        if m > k:
            du = du + (dav - _mm(u1, dp)) * s_inv
        if n > k:
            datu = _mm(_T(da), u1)
            dv = dv + (datu - _mm(v1, _T(dp))) * s_inv
        # the extra columns of U / rows of Vt are an arbitrary basis: zero tangent
        if m > k:
            du = mx.concatenate([du, mx.zeros(u.shape[:-1] + (m - k,), u.dtype)], axis=-1)
        dvt = _T(dv)
        if n > k:
            dvt = mx.concatenate([dvt, mx.zeros(vt.shape[:-2] + (n - k, n), vt.dtype)], axis=-2)
        return [du, ds, dvt]

    SVD.vjp, SVD.jvp, SVD.vmap = vjp, jvp, _vmap_rule(_svd_nodes)

    def vals_vjp(primals, ct, out):
        (a,) = primals
        _not_complex(a, "svd")
        m, n = a.shape[-2:]
        u, _, vt = svd(a)
        u1, v1 = reduced(u, vt, min(m, n))
        return [_mm(u1 * _mx().expand_dims(ct, -2), _T(v1))]

    def vals_jvp(primals, tangents, out):
        (a,) = primals
        _not_complex(a, "svd")
        m, n = a.shape[-2:]
        u, _, vt = svd(a)
        u1, v1 = reduced(u, vt, min(m, n))
        return _mx().sum(u1 * _mm(tangents[0], v1), axis=-2)

    SVDVALS.vjp, SVDVALS.jvp, SVDVALS.vmap = vals_vjp, vals_jvp, _vmap_rule(_svdvals_node)


def _eigh_f(w):
    """F[i, j] = 1 / (w_j - w_i) off the diagonal, 0 on it."""
    mx = _mx()
    diff = mx.expand_dims(w, -2) - mx.expand_dims(w, -1)
    eye = mx.eye(w.shape[-1], dtype=w.dtype) > 0
    return mx.where(eye, 0.0, 1.0 / mx.where(eye, 1.0, diff))


def _install_eigh_rules():
    def vjp(primals, ct, out, UPLO):
        (a,) = primals
        _not_complex(a, "eigh")
        w, v = out
        gw, gv = ct
        inner = _diag_mat(gw) + _eigh_f(w) * _mm(_T(v), gv)
        g = _mm(v, _mm(inner, _T(v)))
        return [_fold_to_tri(g, UPLO == "U")]

    def jvp(primals, tangents, out, UPLO):
        (a,) = primals
        _not_complex(a, "eigh")
        w, v = out
        da = _sym_from_tri(tangents[0], UPLO == "U")
        x = _mm(_T(v), _mm(da, v))
        return [_diag_of(x), _mm(v, _eigh_f(w) * x)]

    EIGH.vjp, EIGH.jvp, EIGH.vmap = vjp, jvp, _vmap_rule(_eigh_nodes)

    def vals_vjp(primals, ct, out, UPLO):
        (a,) = primals
        _not_complex(a, "eigvalsh")
        _, v = eigh(a, UPLO)
        g = _mm(v * _mx().expand_dims(ct, -2), _T(v))
        return [_fold_to_tri(g, UPLO == "U")]

    def vals_jvp(primals, tangents, out, UPLO):
        (a,) = primals
        _not_complex(a, "eigvalsh")
        _, v = eigh(a, UPLO)
        da = _sym_from_tri(tangents[0], UPLO == "U")
        return _mx().sum(v * _mm(da, v), axis=-2)

    EIGVALSH.vjp, EIGVALSH.jvp = vals_vjp, vals_jvp
    EIGVALSH.vmap = _vmap_rule(_eigvalsh_node)


def _install_eig_rules():
    def refuse(op):
        def rule(*args, **kwargs):
            raise ValueError(f"[linalg::{op}] eig and eigvals are not differentiable; for "
                             "symmetric matrices use eigh or eigvalsh.")
        return rule

    EIG.vjp, EIG.jvp, EIG.vmap = refuse("eig"), refuse("eig"), _vmap_rule(_eig_nodes)
    EIGVALS.vjp, EIGVALS.jvp = refuse("eigvals"), refuse("eigvals")
    EIGVALS.vmap = _vmap_rule(_eigvals_node)


def _install_lu_rules():
    def square_only(a):
        if a.shape[-1] != a.shape[-2]:
            raise ValueError(f"[linalg::lu] Gradients of the LU factorization are only "
                             f"defined for square matrices; got shape {shape_str(a.shape)}.")

    def parts(packed, p):
        mx = _mx()
        n = packed.shape[-1]
        lower = mx.tril(packed, -1) + mx.eye(n, dtype=packed.dtype)
        upper = mx.triu(packed)
        # Q[i, j] = (p[i] == j): A = Q @ (L @ U)
        q = mx.astype(mx.equal(mx.expand_dims(mx.astype(p, mx.int32), -1),
                               mx.arange(n, dtype=mx.int32)), packed.dtype)
        return lower, upper, q

    def vjp(primals, ct, out):
        (a,) = primals
        square_only(a)
        mx = _mx()
        packed, _, p = out
        g = ct[0]
        lower, upper, q = parts(packed, p)
        x = mx.tril(_mm(_T(lower), mx.tril(g, -1)), -1) + mx.triu(_mm(mx.triu(g), _T(upper)))
        y = solve_triangular(_T(lower), x, upper=True)            # L^-T X
        z = _T(solve_triangular(upper, _T(y), upper=True))        # ... U^-T
        return [_mm(q, z)]

    def jvp(primals, tangents, out):
        (a,) = primals
        square_only(a)
        mx = _mx()
        packed, _, p = out
        lower, upper, q = parts(packed, p)
        dap = _mm(_T(q), tangents[0])
        x = _rmul_inv_tri(solve_triangular(lower, dap), upper, upper=True)
        return [_mm(lower, mx.tril(x, -1)) + _mm(mx.triu(x), upper), None, None]

    LU.vjp, LU.jvp, LU.vmap = vjp, jvp, _vmap_rule(_lu_nodes)


def _install_det_rules():
    def mx_expand(x):
        return _mx().expand_dims(x, (-2, -1))

    def det_vjp(primals, ct, out):
        return [mx_expand(ct) * _cofactor_node(primals[0])]

    def det_jvp(primals, tangents, out):
        return _mx().sum(_cofactor_node(primals[0]) * tangents[0], axis=(-2, -1))

    DET.vjp, DET.jvp, DET.vmap = det_vjp, det_jvp, _vmap_rule(_det_node)

    # cofactor C = det(A) A^-T (second derivatives of det; A must be invertible)
    def cof_vjp(primals, ct, out):
        mx = _mx()
        ainv_t = _T(inv(primals[0]))
        dot = mx_expand(mx.sum(ct * out, axis=(-2, -1)))
        return [dot * ainv_t - _mm(out, _mm(_T(ct), ainv_t))]

    def cof_jvp(primals, tangents, out):
        mx = _mx()
        da = tangents[0]
        ainv_t = _T(inv(primals[0]))
        tr = mx_expand(mx.sum(ainv_t * da, axis=(-2, -1)))
        return tr * out - _mm(ainv_t, _mm(_T(da), out))

    COFACTOR.vjp, COFACTOR.jvp, COFACTOR.vmap = cof_vjp, cof_jvp, _vmap_rule(_cofactor_node)

    def slog_vjp(primals, ct, out):
        return [mx_expand(ct[1]) * _T(inv(primals[0]))]

    def slog_jvp(primals, tangents, out):
        mx = _mx()
        sign = out[0]
        dlog = mx.sum(_T(inv(primals[0])) * tangents[0], axis=(-2, -1))
        return [mx.zeros(sign.shape, sign.dtype), dlog]

    SLOGDET.vjp, SLOGDET.jvp, SLOGDET.vmap = slog_vjp, slog_jvp, _vmap_rule(_slogdet_nodes)


def install_rules():
    _install_inverse_rules()
    _install_cholesky_rules()
    _install_qr_rules()
    _install_svd_rules()
    _install_eigh_rules()
    _install_eig_rules()
    _install_lu_rules()
    _install_det_rules()


__all__ = ["norm", "qr", "svd", "inv", "tri_inv", "pinv", "cholesky", "cholesky_inv", "solve",
           "solve_triangular", "det", "slogdet", "eig", "eigh", "eigvals", "eigvalsh", "lu",
           "lu_factor", "cross", "LinAlgError"]


# MLX exposes its general norm under this name too (mx.matrix_norm); ord/axis select the
# matrix norm exactly as for norm.
matrix_norm = norm
__all__ = list(__all__) + ["matrix_norm"]
