"""NumPy as the oracle: run one test body with numpy and with mx and compare.

    def body(xp, a, b):
        return xp.maximum(a, b) * 2
    check(body, np.float32_array, np.int32_array)

`check` calls body(np, *inputs) and body(mx, *[mx.array(i) for i in inputs]) and asserts
that shapes, dtypes (unless `dtype=` names the dtype MLX's rules give instead) and values
agree. Trees (tuples/lists) of results are compared leaf by leaf.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

import mx.core as mx

DTYPE_NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
               "int64", "float16", "bfloat16", "float32", "float64", "complex64"]


def np_dtype(name):
    return ml_dtypes.bfloat16 if name == "bfloat16" else np.dtype(name)


def mx_dtype(name):
    return mx.bool_ if name == "bool" else getattr(mx, name)


def to_mx(x):
    if isinstance(x, np.ndarray):
        return mx.array(x, dtype=mx_dtype(x.dtype.name))
    return x


def _tol(dt):
    name = np.dtype(dt).name
    if name in ("float16", "bfloat16"):
        return 1e-2, 1e-2
    if name in ("float32", "complex64"):
        return 1e-5, 1e-6
    return 1e-12, 1e-12


def assert_same(got, want, dtype=None, rtol=None, atol=None, check_dtype=True):
    """`got` (mx) against `want` (numpy): shape, dtype name and values."""
    if isinstance(want, (tuple, list)):
        assert isinstance(got, (tuple, list)), f"expected a sequence, got {type(got)}"
        assert len(got) == len(want), (len(got), len(want))
        for g, w in zip(got, want):
            assert_same(g, w, dtype, rtol, atol, check_dtype)
        return
    assert isinstance(got, mx.array), f"expected an mx.array, got {type(got).__name__}"
    want = np.asarray(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    expect = dtype if dtype is not None else want.dtype.name
    if check_dtype:
        assert got.dtype.name == expect, f"dtype {got.dtype.name} != {expect}"
    g = np.asarray(got)
    r, a = _tol(g.dtype if g.dtype.name != "bfloat16" else ml_dtypes.bfloat16)
    if got.dtype.name == "bfloat16":
        r, a = 1e-2, 1e-2
    rtol = r if rtol is None else rtol
    atol = a if atol is None else atol
    if g.dtype.kind in "fc" or want.dtype.kind in "fc" or g.dtype.name == "bfloat16":
        np.testing.assert_allclose(g.astype(np.complex128 if g.dtype.kind == "c" else np.float64),
                                   want.astype(np.complex128 if want.dtype.kind == "c" else np.float64),
                                   rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(g, want)


def check(body, *inputs, dtype=None, rtol=None, atol=None, check_dtype=True):
    """Run body with numpy and with mx on the same inputs and compare the results."""
    with np.errstate(all="ignore"):
        want = body(np, *inputs)
    got = body(mx, *[to_mx(x) for x in inputs])
    assert_same(got, want, dtype=dtype, rtol=rtol, atol=atol, check_dtype=check_dtype)
    return got
