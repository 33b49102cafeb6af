# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Special functions NumPy lacks, as compiled loops over contiguous buffers (libm's erf;
erfinv by a rational first guess refined with Newton steps on libm's erf)."""
from libc.math cimport erf as c_erf, erff as c_erff, log as c_log, sqrt as c_sqrt, exp as c_exp, fabs, INFINITY, NAN
import numpy as np


cdef double erfinv_guess(double x) nogil:
    # Giles' single-precision approximation (a published polynomial fit in w = -log(1-x^2))
    cdef double w = -c_log((1.0 - x) * (1.0 + x)), p
    if w < 5.0:
        w = w - 2.5
        p = 2.81022636e-08
        p = 3.43273939e-07 + p * w
        p = -3.5233877e-06 + p * w
        p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w
        p = -0.00125372503 + p * w
        p = -0.00417768164 + p * w
        p = 0.246640727 + p * w
        p = 1.50140941 + p * w
    else:
        w = c_sqrt(w) - 3.0
        p = -0.000200214257
        p = 0.000100950558 + p * w
        p = 0.00134934322 + p * w
        p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w
        p = -0.0076224613 + p * w
        p = 0.00943887047 + p * w
        p = 1.00167406 + p * w
        p = 2.83297682 + p * w
    return p * x


cdef double erfinv_d(double x, int newton) nogil:
    if x != x or x < -1.0 or x > 1.0:
        return NAN
    if x == 1.0:
        return INFINITY
    if x == -1.0:
        return -INFINITY
    cdef double y = erfinv_guess(x)
    cdef int i
    # Newton on erf(y) - x; derivative 2/sqrt(pi) exp(-y^2)
    for i in range(newton):
        y = y - (c_erf(y) - x) / (1.1283791670955126 * c_exp(-y * y))
    return y


def erf(x):
    """erf of a float16/bfloat16/float32/float64 array (computed in at least float32)."""
    src = np.asarray(x, order="C")
    out_dtype = src.dtype
    work = src if src.dtype in (np.float32, np.float64) else src.astype(np.float32)
    res = np.empty_like(work)
    cdef Py_ssize_t i, n = work.size
    cdef float[::1] f_in, f_out
    cdef double[::1] d_in, d_out
    if work.dtype == np.float32:
        f_in = work.reshape(-1)
        f_out = res.reshape(-1)
        with nogil:
            for i in range(n):
                f_out[i] = c_erff(f_in[i])
    else:
        d_in = work.reshape(-1)
        d_out = res.reshape(-1)
        with nogil:
            for i in range(n):
                d_out[i] = c_erf(d_in[i])
    return res if res.dtype == out_dtype else res.astype(out_dtype)


def erfinv(x):
    """Inverse of erf elementwise; nan outside [-1, 1], +-inf at +-1."""
    src = np.asarray(x, order="C")
    out_dtype = src.dtype
    work = src.astype(np.float64)
    res = np.empty_like(work)
    cdef Py_ssize_t i, n = work.size
    cdef double[::1] d_in = work.reshape(-1), d_out = res.reshape(-1)
    cdef int newton = 2 if out_dtype == np.float64 else 1
    with nogil:
        for i in range(n):
            d_out[i] = erfinv_d(d_in[i], newton)
    return res.astype(out_dtype)
