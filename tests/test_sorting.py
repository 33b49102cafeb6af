"""Sorting and selection against NumPy (and MLX's documented results), with their
transformation rules checked by finite differences and against Python loops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from gradcheck import check_grads, check_vmap
from oracle import DTYPE_NAMES, assert_same, mx_dtype, np_dtype

RNG = np.random.default_rng(7)
NAN = float("nan")


def make(name, shape, rng=RNG):
    """Values with plenty of ties (small integers) in dtype `name`."""
    if name == "bool":
        x = rng.random(shape) > 0.5
    elif name.startswith("uint"):
        x = rng.integers(0, 4, shape)
    elif "int" in name:
        x = rng.integers(-3, 4, shape)
    elif name == "complex64":
        x = rng.integers(-2, 3, shape) + 1j * rng.integers(-2, 3, shape)
    else:
        x = rng.integers(-3, 4, shape) + rng.choice([0, 0.5], shape)
    return np.asarray(x).astype(np_dtype(name))


def to_mx(x):
    return mx.array(x, dtype=mx_dtype(x.dtype.name))


def np_stable_argsort(x, axis):
    if axis is None:
        x, axis = x.reshape(-1), 0
    return np.argsort(x, axis=axis, kind="stable")


# ---------------------------------------------------------------------------------------
# sort / argsort
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", DTYPE_NAMES)
@pytest.mark.parametrize("axis", [-1, 0, 1, -2, None])
def test_sort_argsort_match_numpy_stable(name, axis):
    x = make(name, (4, 7))
    want_idx = np_stable_argsort(x, axis)
    flat = x.reshape(-1) if axis is None else x
    want = np.take_along_axis(flat, want_idx, 0 if axis is None else axis)
    got_idx = mx.argsort(to_mx(x), axis=axis)
    assert got_idx.dtype == mx.uint32
    np.testing.assert_array_equal(np.asarray(got_idx), want_idx)
    got = mx.sort(to_mx(x), axis=axis)
    assert got.dtype.name == name
    assert_same(got, want)


def test_sort_default_axis_is_last_and_3d():
    x = make("float32", (3, 4, 5))
    assert_same(mx.sort(to_mx(x)), np.sort(x, axis=-1))
    assert_same(mx.sort(to_mx(x), axis=1), np.sort(x, axis=1))
    np.testing.assert_array_equal(np.asarray(mx.argsort(to_mx(x), axis=-3)),
                                  np.argsort(x, axis=0, kind="stable"))


def test_sort_nan_last_and_signed_zero_stable():
    x = np.array([3.0, NAN, 1.0, -0.0, 0.0, -np.inf, np.inf, NAN, 2.0], np.float32)
    got = mx.argsort(mx.array(x))
    # NaNs last in input order; -0 and 0 tie and keep their order (as MLX)
    assert np.asarray(got).tolist() == [5, 3, 4, 2, 8, 0, 6, 1, 7]
    s = np.asarray(mx.sort(mx.array(x)))
    np.testing.assert_array_equal(s[:7], [-np.inf, 0, 0, 1, 2, 3, np.inf])
    assert np.signbit(s[1]) and not np.signbit(s[2])
    assert np.isnan(s[7:]).all()


@pytest.mark.parametrize("name", ["float16", "bfloat16", "float64"])
def test_sort_nan_other_floats(name):
    x = np.array([2, NAN, -1, 0.5, NAN, -7], np.float64).astype(np_dtype(name))
    got = mx.argsort(to_mx(x))
    assert np.asarray(got).tolist() == [5, 2, 3, 0, 1, 4]


def test_complex_sort_is_lexicographic_with_any_nan_last():
    # MLX: a NaN in either part makes the element NaN; NaNs keep their input order
    x = np.array([complex(1, NAN), 1 + 2j, complex(NAN, 0), 1 + 1j, -5j, complex(NAN, NAN)],
                 np.complex64)
    assert np.asarray(mx.argsort(mx.array(x))).tolist() == [4, 3, 1, 0, 2, 5]
    x2 = np.array([1 + 2j, complex(NAN, 0), 1 + 1j, -5j, complex(1, NAN)], np.complex64)
    assert np.asarray(mx.argsort(mx.array(x2))).tolist() == [3, 2, 0, 1, 4]
    assert_same(mx.sort(mx.array(x2))[:3], np.array([-5j, 1 + 1j, 1 + 2j], np.complex64))


def test_sort_stability_on_many_ties():
    x = np.array([2, 1, 2, 1, 2, 1] * 10, np.int32)
    np.testing.assert_array_equal(np.asarray(mx.argsort(mx.array(x))),
                                  np.argsort(x, kind="stable"))


def test_sort_shapes_0d_and_empty():
    assert mx.sort(mx.array(3.0), axis=None).shape == (1,)
    assert mx.argsort(mx.array(3.0), axis=None).tolist() == [0]
    assert mx.sort(mx.zeros((0, 3))).shape == (0, 3)
    assert mx.argsort(mx.zeros((0, 3)), axis=None).shape == (0,)
    assert mx.argsort(mx.zeros((0, 3)), axis=None).dtype == mx.uint32


@pytest.mark.parametrize("op", [mx.sort, mx.argsort])
def test_sort_axis_errors(op):
    name = op.__name__
    with pytest.raises(IndexError, match=rf"\[{name}\] Axis -1 is out of bounds for array "
                                         "with 0 dimensions"):
        op(mx.array(3.0))
    with pytest.raises(ValueError, match=rf"\[{name}\] Axis 2 is out of bounds"):
        op(mx.zeros((2, 2)), axis=2)
    with pytest.raises(ValueError, match=rf"\[{name}\] Axis -3 is out of bounds"):
        op(mx.zeros((2, 2)), axis=-3)
    with pytest.raises(TypeError, match=rf"\[{name}\] axis must be an integer"):
        op(mx.zeros((2, 2)), axis=1.0)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=3),
       seed=st.integers(0, 2**16), data=st.data())
def test_argsort_property_stable_permutation(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).integers(-2, 3, shape).astype(np.float32)
    idx = np.asarray(mx.argsort(mx.array(x), axis=axis)).astype(np.int64)
    np.testing.assert_array_equal(idx, np.argsort(x, axis=axis, kind="stable"))
    assert_same(mx.sort(mx.array(x), axis=axis), np.sort(x, axis=axis))


# ---------------------------------------------------------------------------------------
# partition / argpartition / topk
# ---------------------------------------------------------------------------------------
def _check_partitioned(vals, x, kth, axis):
    ref = np.sort(x, axis=axis)
    v = np.moveaxis(vals, axis, -1)
    r = np.moveaxis(ref, axis, -1)
    np.testing.assert_array_equal(v[..., kth], r[..., kth])
    assert (v[..., :kth] <= v[..., kth:kth + 1]).all()
    assert (v[..., kth + 1:] >= v[..., kth:kth + 1]).all()
    np.testing.assert_array_equal(np.sort(v, -1), r)  # same elements


@pytest.mark.parametrize("name", ["int8", "uint16", "int64", "float16", "bfloat16", "float32",
                                  "float64"])
@pytest.mark.parametrize("kth,axis", [(0, -1), (3, -1), (-1, -1), (-7, 1), (2, 0), (5, None)])
def test_partition_and_argpartition(name, kth, axis):
    x = make(name, (4, 7))
    flat = x.reshape(-1) if axis is None else x
    ax = 0 if axis is None else axis
    n = flat.shape[ax]
    k = kth % n
    vals = mx.partition(to_mx(x), kth, axis=axis)
    assert vals.dtype.name == name and vals.shape == flat.shape
    _check_partitioned(np.asarray(vals).astype(np.float64), flat.astype(np.float64), k, ax)
    idx = mx.argpartition(to_mx(x), kth, axis=axis)
    assert idx.dtype == mx.uint32
    idx_np = np.asarray(idx).astype(np.int64)
    np.testing.assert_array_equal(np.sort(idx_np, ax),
                                  np.broadcast_to(np.arange(n).reshape(
                                      [-1 if i == ax % flat.ndim else 1
                                       for i in range(flat.ndim)]), flat.shape))
    gathered = np.take_along_axis(flat, idx_np, ax)
    _check_partitioned(gathered.astype(np.float64), flat.astype(np.float64), k, ax)
    # values and indices of one input agree
    np.testing.assert_array_equal(gathered, np.asarray(vals))


def test_partition_nan_goes_last_side():
    x = np.array([3.0, NAN, 1.0, 2.0], np.float32)
    v = np.asarray(mx.partition(mx.array(x), 1))
    assert v[1] == 2.0 and v[0] == 1.0
    v = np.asarray(mx.partition(mx.array(x), 3))
    assert np.isnan(v[3])


def test_partition_errors():
    x = mx.arange(6)
    with pytest.raises(ValueError, match=r"\[partition\] Received invalid kth -7 along axis -1 "
                                         r"for array with shape: \(6\)"):
        mx.partition(x, -7)
    with pytest.raises(ValueError, match=r"\[argpartition\] Received invalid kth 6 along axis"):
        mx.argpartition(x, 6)
    with pytest.raises(ValueError, match=r"\[partition\] Received invalid kth 7 along axis 0 "
                                         r"for array with shape: \(4\)"):
        mx.partition(mx.arange(4), 7, axis=None)
    with pytest.raises(ValueError, match=r"\[partition\] Received invalid kth 0 .*\(3,0\)"):
        mx.partition(mx.zeros((3, 0)), 0)
    with pytest.raises(TypeError, match=r"\[partition\] kth must be an integer, got float"):
        mx.partition(x, 2.0)
    with pytest.raises(IndexError, match=r"\[partition\] Axis -1 is out of bounds"):
        mx.partition(mx.array(3.0), 0)
    assert mx.partition(mx.array(3.0), 0, axis=None).tolist() == [3.0]


@pytest.mark.parametrize("name", ["int32", "uint8", "float16", "float32", "float64", "bool"])
@pytest.mark.parametrize("k", [0, 1, 3, 7])
def test_topk_are_the_k_largest(name, k):
    x = make(name, (3, 7))
    got = mx.topk(to_mx(x), k)
    assert got.shape == (3, k) and got.dtype.name == name
    want = np.sort(x, axis=-1)[:, 7 - k:]
    np.testing.assert_array_equal(np.sort(np.asarray(got), -1), want)


def test_topk_axes_and_nan():
    x = np.array([[3, 1, 7], [2, 0, 9]], np.int32)
    assert sorted(mx.topk(mx.array(x), 2, axis=None).tolist()) == [7, 9]
    assert mx.topk(mx.array(x), 1, axis=0).tolist() == [[3, 1, 9]]
    assert mx.topk(mx.array(x), 1, axis=-2).shape == (1, 3)
    got = np.asarray(mx.topk(mx.array([3.0, NAN, 1.0, 2.0]), 2))
    assert np.isnan(got).sum() == 1 and 3.0 in got  # NaN counts as the largest
    assert mx.topk(mx.array(3.0), 1, axis=None).tolist() == [3.0]


def test_topk_errors():
    x = mx.arange(6)
    with pytest.raises(ValueError, match=r"\[topk\] Received invalid k=7 along axis -1 for "
                                         r"array with shape: \(6\)"):
        mx.topk(x, 7)
    with pytest.raises(ValueError, match=r"\[topk\] Received invalid k=-1"):
        mx.topk(x, -1)
    with pytest.raises(IndexError, match=r"\[topk\] Axis 2 is out of bounds for array with 2"):
        mx.topk(mx.zeros((2, 3)), 1, axis=2)
    with pytest.raises(TypeError, match=r"\[topk\] k must be an integer"):
        mx.topk(x, 1.5)


# ---------------------------------------------------------------------------------------
# searchsorted
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("seq_dtype,val_dtype", [("int32", "int32"), ("float32", "float32"),
                                                 ("int32", "float32"), ("uint8", "int32"),
                                                 ("float16", "float32"), ("bfloat16", "bfloat16"),
                                                 ("float64", "int64")])
def test_searchsorted_matches_numpy(side, seq_dtype, val_dtype):
    seq = np.sort(make(seq_dtype, (9,)).astype(np.float64)).astype(np_dtype(seq_dtype))
    vals = (make("float32", (3, 4)) * 1.5).astype(np_dtype(val_dtype)) \
        if "int" not in val_dtype else RNG.integers(-5, 6, (3, 4)).astype(val_dtype)
    got = mx.searchsorted(to_mx(seq), to_mx(vals), side=side)
    assert got.dtype == mx.uint32 and got.shape == (3, 4)
    want = np.searchsorted(seq.astype(np.float64), vals.astype(np.float64), side=side)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_searchsorted_documented_examples_and_nan():
    a = mx.array([1, 2, 2, 4])
    assert mx.searchsorted(a, mx.array([0, 2, 3, 5])).tolist() == [0, 1, 3, 4]
    assert mx.searchsorted(a, mx.array([0, 2, 3, 5]), side="right").tolist() == [0, 3, 3, 4]
    s = mx.array([1.0, 2.0, NAN])
    assert mx.searchsorted(s, mx.array([NAN, 3.0, 0.0])).tolist() == [2, 2, 0]
    assert mx.searchsorted(s, mx.array([NAN, 3.0, 0.0]), side="right").tolist() == [3, 2, 0]
    assert mx.searchsorted(mx.array([], dtype=mx.float32), mx.array([1.0])).tolist() == [0]
    assert mx.searchsorted(mx.array([1, 2, 3], dtype=mx.uint8), mx.array([-1, 300])).tolist() \
        == [0, 3]
    assert mx.searchsorted(a, 2.5).tolist() == 3  # a scalar value gives a 0-d result


def test_searchsorted_errors():
    a = mx.array([1, 2, 2, 4])
    with pytest.raises(ValueError, match=r"\[searchsorted\] Invalid side 'middle'. Expected "
                                         "'left' or 'right'."):
        mx.searchsorted(a, mx.array([2]), side="middle")
    with pytest.raises(ValueError, match=r"\[searchsorted\] The sorted sequence must be 1-D but "
                                         "has 2 dimensions."):
        mx.searchsorted(mx.array([[1, 2]]), mx.array([2]))
    with pytest.raises(ValueError, match="must be 1-D but has 0 dimensions"):
        mx.searchsorted(mx.array(1), mx.array([2]))


# ---------------------------------------------------------------------------------------
# unique
# ---------------------------------------------------------------------------------------
def _tolists(res):
    return [r.tolist() for r in res]


def test_unique_documented_examples():
    a = mx.array([2, 1, 2, 3, 1])
    assert mx.unique(a, 3).tolist() == [1, 2, 3]
    assert mx.unique(a, 5).tolist() == [1, 2, 3, 1, 1]
    res = mx.unique(a, 4, True, True, True, fill_value=0)
    assert [r.dtype for r in res] == [mx.int32, mx.uint32, mx.uint32, mx.int32]
    assert _tolists(res) == [[1, 2, 3, 0], [1, 0, 3, 1], [1, 0, 1, 2, 0], [2, 2, 1, 0]]


def test_unique_truncation_padding_and_selection():
    a = mx.array([2, 1, 2, 3, 1])
    # truncated: the dropped element's inverse is clamped to the last entry
    assert _tolists(mx.unique(a, 2, True, True, True, fill_value=0)) == \
        [[1, 2], [1, 0], [1, 0, 1, 1, 0], [2, 2]]
    assert _tolists(mx.unique(a, 0, True, True, True)) == [[], [], [0] * 5, []]
    assert _tolists(mx.unique(a, 4, return_counts=True)) == [[1, 2, 3, 1], [2, 2, 1, 0]]
    assert _tolists(mx.unique(a, 4, return_index=True)) == [[1, 2, 3, 1], [1, 0, 3, 1]]
    assert mx.unique(a, 4, fill_value=2.5).tolist() == [1, 2, 3, 2]  # cast to a's dtype
    assert mx.unique(a, 4, fill_value=mx.array([7])).tolist() == [1, 2, 3, 7]


def test_unique_nan_zero_bool_and_shapes():
    res = mx.unique(mx.array([3.0, NAN, 1.0, NAN, 3.0]), 5, True, True, True)
    v = np.asarray(res[0])
    assert v[:2].tolist() == [1.0, 3.0] and np.isnan(v[2:4]).all() and v[4] == 1.0
    assert _tolists(res[1:]) == [[2, 0, 1, 3, 2], [1, 2, 0, 3, 1], [1, 2, 1, 1, 0]]
    res = mx.unique(mx.array([0.0, -0.0, 1.0]), 3, True, True, True)
    assert _tolists(res) == [[0.0, 1.0, 0.0], [0, 2, 0], [0, 0, 1], [2, 1, 0]]
    assert not np.signbit(np.asarray(res[0])[0])
    res = mx.unique(mx.array([True, False, True]), 3, True, True, True)
    assert _tolists(res) == [[False, True, False], [1, 0, 1], [1, 0, 1], [1, 2, 0]]
    res = mx.unique(mx.array(5), 2, True, True, True)
    assert res[2].shape == () and _tolists(res) == [[5, 5], [0, 0], 0, [1, 0]]
    res = mx.unique(mx.array([[2, 1], [1, 5]]), 4, return_inverse=True)
    assert _tolists(res) == [[1, 2, 5, 1], [[1, 0], [0, 2]]]
    res = mx.unique(mx.zeros((2, 0)), 3, True, True, True, fill_value=1)
    assert res[2].shape == (2, 0) and _tolists(res)[:2] == [[1.0] * 3, [0] * 3]
    assert mx.unique(mx.array([1 + 1j, 1 + 1j, 2]), 3, return_counts=True)[1].tolist() == \
        [2, 1, 0]


def test_unique_errors():
    a = mx.array([2, 1, 2])
    with pytest.raises(ValueError, match=r"\[unique\] Received negative size -1."):
        mx.unique(a, -1)
    with pytest.raises(ValueError, match=r"\[unique\] Fill value must have one element, but got "
                                         r"shape \(2\)."):
        mx.unique(a, 4, fill_value=mx.array([7, 8]))
    with pytest.raises(ValueError, match=r"\[unique\] A fill value is required for an empty "
                                         "input with a non-zero size."):
        mx.unique(mx.array([], dtype=mx.float32), 3)
    with pytest.raises(TypeError, match=r"\[unique\] size must be an integer, got float"):
        mx.unique(a, 3.0)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 12), size=st.integers(0, 14), seed=st.integers(0, 2**16))
def test_unique_property_against_numpy(n, size, seed):
    x = np.random.default_rng(seed).integers(-4, 5, n).astype(np.int32)
    if n == 0:
        values, index, inverse, counts = mx.unique(mx.array(x), size, True, True, True,
                                                   fill_value=9)
        assert values.tolist() == [9] * size and counts.tolist() == [0] * size
        return
    values, index, inverse, counts = (np.asarray(r).astype(np.int64) for r in
                                      mx.unique(mx.array(x), size, True, True, True))
    u, first, inv, cnt = np.unique(x, return_index=True, return_inverse=True,
                                   return_counts=True)
    m = min(size, len(u))
    np.testing.assert_array_equal(values[:m], u[:m])
    np.testing.assert_array_equal(index[:m], first[:m])
    np.testing.assert_array_equal(counts[:m], cnt[:m])
    np.testing.assert_array_equal(values[m:], u[0])
    np.testing.assert_array_equal(counts[m:], 0)
    if size:
        np.testing.assert_array_equal(inverse, np.minimum(inv.reshape(-1), size - 1))


# ---------------------------------------------------------------------------------------
# minmax and the array-API scan names
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 1), False),
                                           (-1, True)])
def test_minmax(axis, keepdims):
    x = make("int32", (3, 4))
    lo, hi = mx.minmax(mx.array(x), axis, keepdims)
    assert_same(lo, np.min(x, axis=axis, keepdims=keepdims))
    assert_same(hi, np.max(x, axis=axis, keepdims=keepdims))


def test_minmax_nan_and_errors():
    lo, hi = mx.minmax(mx.array([1.0, NAN]))
    assert np.isnan(lo.item()) and np.isnan(hi.item())
    with pytest.raises(ValueError, match=r"\[min\] Cannot min reduce over axis 0 with size 0"):
        mx.minmax(mx.zeros((0,)))
    with pytest.raises(ValueError, match=r"Axis 3 is out of bounds"):
        mx.minmax(mx.zeros((2, 2)), axis=3)


def test_cumulative_names_are_the_scans():
    assert mx.cumulative_sum is mx.cumsum and mx.cumulative_prod is mx.cumprod
    assert mx.cumulative_sum(mx.array([1, 2, 3])).tolist() == [1, 3, 6]
    assert mx.cumulative_prod(mx.array([[1, 2], [3, 4]]), axis=0).tolist() == [[1, 2], [3, 8]]


def test_ops_are_lazy_and_accept_streams():
    x = mx.array([3.0, 1.0, 2.0])
    y = mx.sort(x, stream=mx.cpu)
    assert y._prim is not None  # not evaluated until needed
    assert y.tolist() == [1.0, 2.0, 3.0]
    assert mx.topk(x, 1, stream=mx.cpu).tolist() == [3.0]


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def _distinct(shape, seed=0):
    """Values far apart, so small perturbations keep their order."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n).astype(np.float64) + rng.uniform(-0.1, 0.1, n)).reshape(shape)


@pytest.mark.parametrize("fun", [
    lambda x: mx.sort(x),
    lambda x: mx.sort(x, axis=0),
    lambda x: mx.sort(x, axis=None),
    lambda x: mx.partition(x, 2),
    lambda x: mx.partition(x, 1, axis=0),
    lambda x: mx.topk(x, 2),
    lambda x: mx.topk(x, 3, axis=None),
    lambda x: mx.unique(x, 15),
    lambda x: mx.unique(x, 5),
], ids=["sort", "sort0", "sortNone", "partition", "partition0", "topk", "topkNone",
        "unique", "unique_truncated"])
def test_value_rules_finite_differences(fun):
    check_grads(fun, [_distinct((3, 4))])


def test_unique_fill_value_gradient():
    check_grads(lambda x, f: mx.unique(x, 9, fill_value=f), [_distinct((2, 3)), np.array(0.5)])


def test_integer_inputs_and_index_outputs_get_no_gradient():
    xi = mx.array([3, 1, 2])
    g = mx.vjp(lambda x: mx.sort(x), [xi], [mx.ones(3, dtype=mx.int32)])[1][0]
    assert g.tolist() == [0, 0, 0]
    x = mx.array([3.0, 1.0, 2.0])
    assert mx.grad(lambda x: mx.argsort(x).astype(mx.float32).sum())(x).tolist() == [0, 0, 0]
    _, t = mx.jvp(lambda x: mx.argpartition(x, 1), [x], [mx.ones(3)])
    assert t[0].tolist() == [0, 0, 0]
    _, t = mx.jvp(lambda s, v: mx.searchsorted(s, v), [x, x], [mx.ones(3), mx.ones(3)])
    assert t[0].tolist() == [0, 0, 0]


def test_sort_gradient_routes_to_sorted_positions():
    x = mx.array([3.0, 1.0, 2.0])
    g = mx.grad(lambda x: (mx.sort(x) * mx.array([1.0, 10.0, 100.0])).sum())(x)
    assert g.tolist() == [100.0, 1.0, 10.0]
    g = mx.grad(lambda x: mx.topk(x, 1).sum())(x)
    assert g.tolist() == [1.0, 0.0, 0.0]


@pytest.mark.parametrize("fun,axis", [
    (lambda x: mx.sort(x), 0), (lambda x: mx.sort(x, axis=0), 1),
    (lambda x: mx.sort(x, axis=None), 2), (lambda x: mx.argsort(x), 1),
    (lambda x: mx.partition(x, 1), 0), (lambda x: mx.argpartition(x, 2, axis=0), 2),
    (lambda x: mx.topk(x, 2), 1), (lambda x: mx.topk(x, 2, axis=None), 0),
])
def test_vmap_matches_loop(fun, axis):
    x = mx.array(make("float32", (3, 4, 5)))
    check_vmap(fun, [x], in_axes=axis)


def test_searchsorted_vmap_all_batchings():
    seqs = mx.sort(mx.array(make("float32", (3, 6))), axis=1)
    vals = mx.array(make("float32", (3, 4)))
    check_vmap(lambda s, v: mx.searchsorted(s, v), [seqs, vals])
    check_vmap(lambda s, v: mx.searchsorted(s, v, side="right"), [seqs[0], vals],
               in_axes=[None, 0])
    check_vmap(lambda s, v: mx.searchsorted(s, v), [seqs, vals[0]], in_axes=[0, None])
    check_vmap(lambda s, v: mx.searchsorted(s, v), [seqs, mx.transpose(vals)], in_axes=[0, 1])


def test_unique_vmap():
    xi = mx.array(RNG.integers(0, 4, (3, 6)))
    check_vmap(lambda a: mx.unique(a, 4, True, True, True), [xi])
    check_vmap(lambda a: mx.unique(a, 3, True, True, True, fill_value=-1), [xi])
    check_vmap(lambda a, f: mx.unique(a, 5, True, True, True, fill_value=f),
               [xi, mx.array([7, 8, 9])])
    check_vmap(lambda a, f: mx.unique(a, 5, fill_value=f), [xi[0], mx.array([7, 8, 9])],
               in_axes=[None, 0])
    check_vmap(lambda a: mx.unique(a, 4, return_inverse=True)[1],
               [mx.array(RNG.integers(0, 4, (2, 3, 2)))], in_axes=1)
