"""Bad input never crashes: random shapes, dtypes, axes and indices thrown at the ops give a
result or one of the documented Python exceptions (ValueError, TypeError, IndexError)."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import mx.core as mx
from oracle import DTYPE_NAMES, mx_dtype, np_dtype

ALLOWED = (ValueError, TypeError, IndexError)

shapes = hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4)
dtypes = st.sampled_from(DTYPE_NAMES)
axes = st.one_of(st.none(), st.integers(-6, 6), st.lists(st.integers(-6, 6), max_size=4))


def _array(shape, dtype):
    data = (np.arange(int(np.prod(shape))) % 5).reshape(shape)
    return mx.array(data.astype(np.float32), dtype=mx_dtype(dtype))


def _run(fn):
    try:
        out = fn()
    except ALLOWED:
        return None
    mx.eval(out)
    return out


UNARY = ["abs", "negative", "sign", "exp", "log", "sqrt", "square", "sin", "floor", "isnan",
         "logical_not", "bitwise_invert", "erf", "sigmoid", "real", "imag", "round"]
BINARY = ["add", "subtract", "multiply", "divide", "floor_divide", "remainder", "power",
          "maximum", "minimum", "logaddexp", "arctan2", "equal", "less", "logical_and",
          "bitwise_and", "left_shift", "right_shift"]
REDUCE = ["sum", "prod", "mean", "var", "std", "min", "max", "all", "any", "argmin", "argmax",
          "logsumexp", "softmax", "cumsum", "cummax"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@SETTINGS
@given(shape=shapes, dtype=dtypes, op=st.sampled_from(UNARY))
def test_unary_fuzz(shape, dtype, op):
    _run(lambda: getattr(mx, op)(_array(shape, dtype)))


@SETTINGS
@given(s1=shapes, s2=shapes, d1=dtypes, d2=dtypes, op=st.sampled_from(BINARY))
def test_binary_fuzz(s1, s2, d1, d2, op):
    _run(lambda: getattr(mx, op)(_array(s1, d1), _array(s2, d2)))


@SETTINGS
@given(shape=shapes, dtype=dtypes, op=st.sampled_from(REDUCE), axis=axes, keep=st.booleans())
def test_reduction_fuzz(shape, dtype, op, axis, keep):
    fn = getattr(mx, op)
    if op in ("cumsum", "cummax", "softmax"):
        ax = axis if not isinstance(axis, list) else (axis[0] if axis else None)
        _run(lambda: fn(_array(shape, dtype), ax) if op != "softmax" else fn(_array(shape, dtype), axis))
    elif op in ("argmin", "argmax"):
        ax = axis if not isinstance(axis, list) else (axis[0] if axis else None)
        _run(lambda: fn(_array(shape, dtype), ax, keep))
    else:
        _run(lambda: fn(_array(shape, dtype), axis, keep))


@SETTINGS
@given(shape=shapes, new=st.lists(st.integers(-2, 6), max_size=4), dtype=dtypes,
       perm=st.permutations(range(4)), ax=st.integers(-6, 6))
def test_shape_fuzz(shape, new, dtype, perm, ax):
    a = _array(shape, dtype)
    _run(lambda: mx.reshape(a, new))
    _run(lambda: mx.transpose(a, list(perm)[: a.ndim] if a.ndim <= 4 else None))
    _run(lambda: mx.squeeze(a, ax))
    _run(lambda: mx.expand_dims(a, ax))
    _run(lambda: mx.swapaxes(a, ax, 0))
    _run(lambda: mx.moveaxis(a, ax, -1))
    _run(lambda: mx.concatenate([a, a], ax))
    _run(lambda: mx.stack([a, a], ax))
    _run(lambda: mx.split(a, 2, ax))
    _run(lambda: mx.broadcast_to(a, new))
    _run(lambda: mx.flatten(a, ax, -1))
    _run(lambda: mx.repeat(a, 2, ax))
    _run(lambda: mx.tile(a, new))
    _run(lambda: mx.pad(a, new and new[0]))


index_parts = st.one_of(
    st.integers(-6, 6),
    st.slices(6),
    st.none(),
    st.just(Ellipsis),
    st.lists(st.integers(-6, 6), min_size=1, max_size=3),
)


@SETTINGS
@given(shape=shapes, dtype=dtypes, idx=st.lists(index_parts, max_size=4))
def test_indexing_fuzz(shape, dtype, idx):
    a = _array(shape, dtype)
    key = tuple(mx.array(i) if isinstance(i, list) else i for i in idx)
    out = _run(lambda: a[key])
    np_a = np.asarray(a)
    np_key = tuple(np.array(i) if isinstance(i, list) else i for i in idx)
    try:
        want = np_a[np_key]
    except ALLOWED:
        want = None
    if out is not None and want is not None:
        assert out.shape == want.shape
        np.testing.assert_array_equal(np.asarray(out), want)
    _run(lambda: a.__setitem__(key, 1) or a)


@SETTINGS
@given(shape=shapes, dtype=dtypes, t=st.sampled_from(DTYPE_NAMES))
def test_cast_and_view_fuzz(shape, dtype, t):
    a = _array(shape, dtype)
    _run(lambda: a.astype(mx_dtype(t)))
    _run(lambda: a.view(mx_dtype(t)))


@SETTINGS
@given(obj=st.recursive(st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                                  st.booleans(), st.complex_numbers(max_magnitude=1e3),
                                  st.text(max_size=2), st.none()),
                        lambda c: st.lists(c, max_size=3), max_leaves=8))
def test_construction_fuzz(obj):
    try:
        a = mx.array(obj)
    except (ValueError, TypeError):
        return
    mx.eval(a)
    assert isinstance(a.shape, tuple)


@SETTINGS
@given(shape=st.lists(st.integers(-3, 5), max_size=4), dtype=dtypes)
def test_creation_fuzz(shape, dtype):
    for fn in (mx.zeros, mx.ones):
        _run(lambda: fn(shape, mx_dtype(dtype)))
    _run(lambda: mx.full(shape, 3, mx_dtype(dtype)))
