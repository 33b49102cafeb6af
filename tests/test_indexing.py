"""Indexing (a[idx], a[idx] = v, a.at[idx]) and the gather/scatter ops, with NumPy as the
oracle; the index expressions are property-tested with hypothesis."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core.ops.indexing import ArrayAt
from oracle import assert_same, check

X = np.arange(60, dtype=np.int32).reshape(3, 4, 5)
F = np.linspace(-3, 3, 60, dtype=np.float32).reshape(3, 4, 5)


def both(idx_fn):
    """An index for numpy and the same index for mx (idx_fn(xp) builds it)."""
    return idx_fn(np), idx_fn(mx)


# ---------------------------------------------------------------------------------------
# reads
# ---------------------------------------------------------------------------------------
BASIC = [
    0, -1, 2, (1, 2), (-3, -4, -5), (0, 0, 0), slice(None), slice(1, None),
    slice(None, None, -1), slice(None, None, 2), slice(-2, None), slice(5, 1, -2),
    slice(10, 20), (slice(None), 1), (Ellipsis, 0), (0, Ellipsis), (Ellipsis,), (),
    (None,), (None, 1, None), (Ellipsis, None), (1, Ellipsis, None, 2), (slice(1, 3), None, -1),
    (slice(None, None, -2), slice(3, 0, -1), slice(None, None, 3)),
    (slice(None), slice(None), slice(None)), (Ellipsis, slice(None, None, -1)),
    (np.int64(1), np.int32(-1)),
]


@pytest.mark.parametrize("idx", BASIC, ids=repr)
def test_basic_index_matches_numpy(idx):
    check(lambda xp, a: a[idx], X)


ADVANCED = [
    lambda xp: xp.array([0, 2]),
    lambda xp: xp.array([[0, 1], [2, -1]]),
    lambda xp: (xp.array([0, 2]), xp.array([1, 3])),
    lambda xp: (xp.array([0, 2]), slice(None), xp.array([1, 3])),   # separated: first
    lambda xp: (slice(None), xp.array([0, 2]), xp.array([1, 3])),   # adjacent: in place
    lambda xp: (xp.array([0, 2]), None, xp.array([1, 3])),          # None separates
    lambda xp: (xp.array([0, 2]), Ellipsis, xp.array([1, 3])),      # so does Ellipsis
    lambda xp: (xp.array([0, 2]), 1, Ellipsis, xp.array([1, 3])),   # even spanning no axis
    lambda xp: (0, slice(None), xp.array([1, 3])),                  # ints are advanced too
    lambda xp: (1, xp.array([[0], [2]]), xp.array([1, 3, 4])),
    lambda xp: (Ellipsis, xp.array([4, 0, 4])),
    lambda xp: (None, xp.array([1]), slice(1, 3), 2),
    lambda xp: (slice(None, None, -1), xp.array([3, 3, 0])),
    lambda xp: xp.array([1, 1, 1]),
    lambda xp: xp.array(2),
    lambda xp: (slice(None), xp.array(-1)),
    lambda xp: xp.array([], dtype=xp.int32),
    lambda xp: (xp.array([0, 1], dtype=xp.uint8), xp.array([3], dtype=xp.int64)),
]


@pytest.mark.parametrize("k", range(len(ADVANCED)))
def test_advanced_index_matches_numpy(k):
    npi, mxi = both(ADVANCED[k])
    assert_same(mx.array(X)[mxi], X[npi])


@pytest.mark.parametrize("idx", [
    [0, 2], [[0, 1], [1, 2]], ([0, 2], [1, 1]), [], ([1, 0], slice(None), [4, 4]),
    (np.array([2, 0]), [1]), [True, False, True], (slice(None), [True, False, False, True]),
], ids=repr)
def test_list_and_numpy_indices(idx):
    check(lambda xp, a: a[idx], X)


def test_lazy_index_array():
    i = mx.array([2, 0]) + 0          # not evaluated when used
    assert i._data is None
    assert_same(mx.array(X)[i, 1:], X[[2, 0], 1:])


MASKS = [
    lambda a: a > 30,
    lambda a: (a % 7) == 0,
    lambda a: a[:, :, 0] > 10,                       # covers the first two axes
    lambda a: a[:, 0, 0] > 100,                      # selects nothing
]


@pytest.mark.parametrize("k", range(len(MASKS)))
def test_bool_mask_read(k):
    m = MASKS[k](X)
    assert_same(mx.array(X)[MASKS[k](mx.array(X))], X[m])       # lazy mx mask
    assert_same(mx.array(X)[m], X[m])                            # numpy mask
    assert_same(mx.array(F)[mx.array(m)], F[m])                  # evaluated mx mask


@pytest.mark.parametrize("idx", [
    lambda xp: (xp.array([True, False, True]), 1),
    lambda xp: (1, xp.array([True, False, True, True]), slice(None, None, -1)),
    lambda xp: (xp.array([True, False, True]), slice(None), xp.array([0, 4])),
    lambda xp: (slice(None), xp.array([False, True, True, False]), xp.array([[1], [3]])),
    lambda xp: True,
    lambda xp: False,
    lambda xp: (Ellipsis, True),
    lambda xp: (xp.array([0]), slice(None), True, 0),
    lambda xp: xp.array(True),
], ids=range(9))
def test_bool_masks_mixed(idx):
    npi, mxi = both(idx)
    assert_same(mx.array(X)[mxi], X[npi])


def test_zero_d_and_empty_arrays():
    s = np.array(7.5, dtype=np.float32)
    check(lambda xp, a: a[()], s)
    check(lambda xp, a: a[None], s)
    check(lambda xp, a: a[...], s)
    e = np.zeros((0, 3), dtype=np.float32)
    check(lambda xp, a: a[:, 1], e)
    check(lambda xp, a: a[[], 1:], e)


def test_slice_bounds_from_arrays_and_numpy_ints():
    a = mx.array(X)
    assert_same(a[mx.array(1):np.int64(3), ::mx.array(2)], X[1:3, ::2])


def test_basic_index_is_one_view_node():
    a = mx.array(X)
    r = a[1:, ::-2, None, 3]
    assert r._prim.name == "index" and len(r._inputs) == 1
    assert r._inputs[0]._data is a._data            # the input shares a's buffer
    key = r._params["key"]
    assert all(isinstance(k, (int, slice, type(None))) for k in key)
    out = np.asarray(r)
    assert np.shares_memory(out, np.asarray(a))     # a NumPy view, no copy
    assert_same(r, X[1:, ::-2, None, 3])


def test_iteration_uses_int_index():
    rows = list(mx.array(X))
    assert len(rows) == 3
    for r, w in zip(rows, X):
        assert_same(r, w)


# ---------------------------------------------------------------------------------------
# hypothesis: random shapes and random index tuples
# ---------------------------------------------------------------------------------------
@st.composite
def index_item(draw, n):
    """One index entry for an axis of size n."""
    kind = draw(st.sampled_from(["int", "slice", "slice", "array", "list", "mxarray", "lazy"]))
    if kind == "slice" or n == 0:
        bound = st.none() | st.integers(-n - 2, n + 2)
        step = st.none() | st.sampled_from([1, 2, 3, -1, -2])
        return slice(draw(bound), draw(bound), draw(step))
    if kind == "int":
        return draw(st.integers(-n, n - 1))
    ishape = draw(st.sampled_from([(), (1,), (3,), (2, 1), (1, 2)]))
    size = int(np.prod(ishape))
    vals = np.array(draw(st.lists(st.integers(-n, n - 1), min_size=size, max_size=size)),
                    dtype=np.int64).reshape(ishape)
    if kind == "array":
        return vals
    if kind == "list" and vals.ndim:
        return vals.tolist()
    if kind == "lazy":
        return mx.array(vals) + 0
    return mx.array(vals)


@st.composite
def shapes_and_indices(draw):
    """A shape and an index tuple: entries for some leading axes, maybe an Ellipsis and
    entries for some trailing axes, with None inserted anywhere."""
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=4)))
    ndim = len(shape)
    lead = draw(st.integers(0, ndim))
    items = [draw(index_item(shape[d])) for d in range(lead)]
    if draw(st.booleans()):
        trail = draw(st.integers(0, ndim - lead))
        items.append(Ellipsis)
        items += [draw(index_item(shape[d])) for d in range(ndim - trail, ndim)]
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    return shape, tuple(items)


def _numpy_index(idx):
    return tuple(np.asarray(i) if isinstance(i, mx.array) else i for i in idx)


@settings(max_examples=120, deadline=None)
@given(shapes_and_indices(), st.integers(0, 2**31 - 1))
def test_property_getitem_setitem_at(shape_idx, seed):
    shape, idx = shape_idx
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    nidx = _numpy_index(idx)
    try:
        want = x[nidx]
    except IndexError:
        # index arrays that do not broadcast together
        with pytest.raises(IndexError, match=r"\[getitem\] shape mismatch: indexing arrays"):
            mx.array(x)[idx]
        return
    got = mx.array(x)[idx]
    assert_same(got, want)

    rng = np.random.default_rng(seed)
    k = int(rng.integers(0, want.ndim + 1))
    v = rng.integers(-50, 0, size=want.shape[k:]).astype(np.float32)
    y = x.copy()
    y[nidx] = v
    a = mx.array(x)
    a[idx] = mx.array(v)
    assert_same(a, y)

    z = x.copy()
    np.add.at(z, nidx, v)
    assert_same(mx.array(x).at[idx].add(v), z)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=3), st.data())
def test_property_int_bounds_like_numpy(shape, data):
    x = np.zeros(shape, dtype=np.float32)
    idx = tuple(data.draw(st.integers(-n - 2, n + 1)) for n in shape[:data.draw(
        st.integers(1, len(shape)))])
    try:
        want = x[idx]
    except IndexError:
        with pytest.raises(IndexError, match=r"\[getitem\] index -?\d+ is out of bounds for axis \d+ with size \d+"):
            mx.array(x)[idx]
        return
    assert_same(mx.array(x)[idx], want)


# ---------------------------------------------------------------------------------------
# assignment
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("idx,val", [
    (0, 5), (slice(1, None), [1, 2, 3, 4, 5]), ((Ellipsis, 1), np.arange(4)),
    ((slice(None), [0, 2], 1), [[7], [8], [9]]), (([0, 0], [1, 1]), 3),
    ((None, 1), np.ones((1, 1, 4, 5))),        # surplus leading 1s are dropped
    ((), 0), (1, np.float32(2.5)),
], ids=repr)
def test_setitem_matches_numpy(idx, val):
    y = X.copy()
    y[idx] = val
    a = mx.array(X)
    a[idx] = val
    assert_same(a, y)


def test_setitem_casts_to_destination_dtype():
    a = mx.array([1, 2, 3])
    a[0] = 2.7
    a[1] = mx.array(9.9)
    a[2] = 3 + 2j
    assert a.dtype == mx.int32
    assert a.tolist() == [2, 9, 3]
    b = mx.array(np.zeros(3), dtype=mx.float64)
    b[:] = np.array([0.1, 0.2, 0.3])            # float64 values keep their precision
    assert_same(b, np.array([0.1, 0.2, 0.3]))
    c = mx.array([True, False])
    c[1] = 5
    assert c.tolist() == [True, True]


def test_setitem_bool_mask():
    y = F.copy()
    y[y < 0] = 0
    a = mx.array(F)
    mask = a < 0
    a[mask] = 0
    assert mask._data is None                   # a one-element value leaves the mask lazy
    assert_same(a, y)

    y = X.copy()
    y[y % 2 == 0] = np.arange(30)
    b = mx.array(X)
    b[b % 2 == 0] = np.arange(30)
    assert_same(b, y)


def test_setitem_keeps_views_taken_before():
    a = mx.array(X)
    b = a
    c = a[:2]                   # not evaluated
    d = a[:2]
    np.asarray(d)               # evaluated
    e = a[[0, 0]]
    g = a.at[0].add(1)
    a[0] = 5
    assert b is a
    expect = X.copy()
    expect[0] = 5
    assert_same(b, expect)
    assert_same(c, X[:2])
    assert_same(d, X[:2])
    assert_same(e, X[[0, 0]])
    assert_same(g, X + np.eye(3, 1, dtype=np.int32)[:, :, None])
    assert_same(a, expect)


@pytest.mark.parametrize("lazy", [False, True])
def test_setitem_operands_that_read_a(lazy):
    """``a[a < 0] = 0`` and ``a[0] = a[1]``: operands built from `a` read its old value
    (no cycle through the rebound `a`, no input clobbered by buffer donation)."""

    def fresh():
        # lazily: a product whose input, if clobbered by donation, would show
        return mx.array(F * 2) * 0.5 if lazy else mx.array(F)

    def run(body):
        y = F.copy()
        body(np, y)
        a = fresh()
        body(mx, a)
        assert_same(a, y)

    def clip(xp, a):
        a[a < 0] = 0

    def copy_row(xp, a):
        a[0] = a[1]

    def mixed(xp, a):
        a[0, 1:] = a[1, :-1] * 2 + a[2, 1:]

    def mask_values(xp, a):
        m = a > 1
        a[m] = a[m] * 10

    def reverse(xp, a):
        a[::-1] = a

    def itself(xp, a):
        a[...] = a + 1

    for body in (clip, copy_row, mixed, mask_values, reverse, itself):
        run(body)
    idx = mx.array([2, 0, 1])
    i2 = idx + 0 if lazy else idx
    i2[i2] = mx.array([5, 6, 7])                   # the index is the array itself
    j = np.array([2, 0, 1], dtype=np.int32)
    j[j] = [5, 6, 7]
    assert_same(i2, j)


def test_setitem_keeps_other_consumers_taken_before():
    a = mx.array(X)
    f = a + 0
    lazy = mx.array(X) + 0
    v = lazy[:2]
    a[0] = 5
    lazy[0] = 5
    assert np.array_equal(np.asarray(f), X) and np.array_equal(np.asarray(v), X[:2])


def test_setitem_chain_in_place_and_views_stay_correct():
    a = mx.array(np.zeros(6, dtype=np.float32))
    keep = a[:3]
    for i in range(6):
        a[i] = i
    assert_same(a, np.arange(6, dtype=np.float32))
    assert_same(keep, np.zeros(3, dtype=np.float32))
    # a buffer nobody else holds is updated in place (donated) instead of copied; one
    # that a view still reads is copied
    b = mx.array(np.zeros(4, dtype=np.float32))
    ptr = np.asarray(b).ctypes.data
    b[1] = 7
    assert np.asarray(b).ctypes.data == ptr
    view = b[1:]
    np.asarray(view)
    b[2] = 8
    assert np.asarray(b).ctypes.data != ptr
    assert_same(b, np.array([0, 7, 8, 0], dtype=np.float32))
    assert_same(view, np.array([7, 0, 0], dtype=np.float32))


def test_later_mutation_of_index_does_not_leak():
    i = mx.array([0, 1])
    r = mx.array(X)[i]
    i[0] = 2
    assert_same(r, X[[0, 1]])


def test_setitem_broadcast_error():
    a = mx.array(X)
    with pytest.raises(ValueError, match=r"\[setitem\] Cannot broadcast array of shape \(2,4\) into shape \(4,5\)"):
        a[0] = np.ones((2, 4))
    with pytest.raises(ValueError, match=r"Cannot broadcast array of shape \(2,1,5\)"):
        a[0] = np.ones((2, 1, 5))


# ---------------------------------------------------------------------------------------
# a.at[idx]
# ---------------------------------------------------------------------------------------
AT_OPS = [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
          ("divide", np.divide), ("maximum", np.maximum), ("minimum", np.minimum)]


@pytest.mark.parametrize("name,ufunc", AT_OPS)
@pytest.mark.parametrize("idx", [
    [0, 0, 2, 0], ([1, 1, 1], slice(None), [0, 4, 0]), (slice(None), 1), (2, 3, 4),
    ([[0, 0], [2, 0]], Ellipsis),
], ids=repr)
def test_at_accumulates_like_ufunc_at(name, ufunc, idx):
    v = np.float32(1.5) if name != "divide" else np.float32(2.0)
    want = F.copy()
    ufunc.at(want, idx, v)
    assert_same(getattr(mx.array(F).at[idx], name)(v), want)


def test_at_add_with_value_array_and_duplicates():
    idx = np.array([3, 1, 3, 3, 0])
    vals = np.arange(5, dtype=np.float32).reshape(5, 1) * np.ones((1, 5), np.float32)
    want = F[0].copy()
    np.add.at(want, idx, vals)
    got = mx.array(F[0]).at[mx.array(idx)].add(mx.array(vals))
    assert_same(got, want)


def test_at_integer_and_bool_semantics():
    a = mx.array([-7, 7, 9])
    assert a.at[[0, 1]].divide(2).tolist() == [-3, 3, 9]        # truncates toward zero
    assert a.at[[2, 2]].divide(2).tolist() == [-7, 7, 2]        # 9/2/2 = 2.25
    assert a.at[0].add(1.9).tolist() == [-6, 7, 9]              # the value is cast first
    b = mx.array([True, False, False])
    assert b.at[[1, 1]].add(True).tolist() == [True, True, False]
    assert b.at[[0]].minimum(False).tolist() == [False, False, False]
    with pytest.raises(ValueError, match=r"\[scatter_subtract\] Subtraction is not supported for bool"):
        b.at[0].subtract(True)


def test_at_with_lazy_mask():
    a = mx.array(F)
    m = a > 0
    r = a.at[m].multiply(2.0)
    assert m._data is None                      # a one-element value leaves the mask lazy
    want = F.copy()
    want[F > 0] *= 2
    assert_same(r, want)
    with pytest.raises(ValueError, match=r"\[scatter_add\] Cannot broadcast array of shape \(2\) into shape \(30\)"):
        a.at[m].add(np.ones(2))                 # a larger value needs the count: evaluated


def test_at_requires_index():
    with pytest.raises(ValueError, match=r"Must give indices to array.at"):
        mx.array(F).at.add(1)
    assert isinstance(mx.array(F).at[0], ArrayAt)


# ---------------------------------------------------------------------------------------
# error paths
# ---------------------------------------------------------------------------------------
def test_out_of_bounds_int():
    a = mx.array(X)
    with pytest.raises(IndexError, match=r"\[getitem\] index 3 is out of bounds for axis 0 with size 3"):
        a[3]
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for axis 1 with size 4"):
        a[0, -5]
    with pytest.raises(IndexError, match=r"index 5 is out of bounds for axis 2 with size 5"):
        a[..., 5]
    with pytest.raises(IndexError, match=r"\[setitem\] index 7 is out of bounds for axis 0"):
        a[7] = 1


def test_too_many_indices():
    a = mx.array(X)
    for exc in (IndexError, ValueError):
        with pytest.raises(exc, match=r"Too many indices for array with 3 dimensions: 4 were indexed"):
            a[0, 0, 0, 0]
    with pytest.raises(IndexError, match=r"Too many indices for array with 0 dimensions"):
        mx.array(1.0)[0]
    with pytest.raises(IndexError, match=r"Too many indices"):
        a[np.ones((3, 4, 5, 1), dtype=bool)]


@pytest.mark.parametrize("idx,msg", [
    (1.5, r"only integers, slices .* are valid indices; got float"),
    ("a", r"are valid indices; got str"),
    ((0, {}), r"are valid indices; got dict"),
    (np.array([0.0, 1.0]), r"got an array of dtype float64"),
    ([0.5], r"got an array of dtype float64"),
    ([[0], [1, 2]], r"not a regular array"),
    ((Ellipsis, 0, Ellipsis), r"an index can only have a single ellipsis"),
], ids=repr)
def test_bad_index_type(idx, msg):
    with pytest.raises(IndexError, match=msg):
        mx.array(X)[idx]


def test_bad_float_mx_index_and_mask_shape():
    a = mx.array(X)
    with pytest.raises(IndexError, match=r"got an array of dtype float32"):
        a[mx.array([0.0, 1.0])]
    with pytest.raises(IndexError, match=r"boolean index did not match indexed array along axis 1; size of axis is 4 but size of corresponding boolean axis is 3"):
        a[:, mx.array([True, False, True])]
    with pytest.raises(IndexError, match=r"shape mismatch: indexing arrays could not be broadcast together with shapes \(2\) \(3\)"):
        a[[0, 1], [0, 1, 2]]
    with pytest.raises(ValueError, match=r"slice step cannot be zero"):
        a[::0]


def test_out_of_bounds_index_arrays():
    a = mx.array(X)
    with pytest.raises(IndexError, match=r"\[getitem\] index 3 is out of bounds for axis 0 with size 3"):
        a[[0, 3]]
    with pytest.raises(IndexError, match=r"index -6 is out of bounds for axis 2 with size 5"):
        a[:, :, np.array([-6])]
    with pytest.raises(IndexError, match=r"index 9 is out of bounds for axis 1"):
        a[0, mx.array([9])]
    lazy = mx.array([1, 9]) + 0               # unknown until run: the kernel raises
    r = a[lazy]
    with pytest.raises(IndexError, match=r"\[gather\] index 9 is out of bounds for axis 0 with size 3"):
        mx.eval(r)
    with pytest.raises(IndexError, match=r"\[scatter\] index 9 is out of bounds"):
        b = mx.array(X)
        b[mx.array([1, 9]) + 0] = 0
        np.asarray(b)


# ---------------------------------------------------------------------------------------
# take, take_along_axis, put_along_axis
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("indices,axis", [
    ([0, 2], 0), ([[1, -1], [0, 3]], 1), ([4, 0, 4], -1), (7, None), (-1, 2),
    ([[5, 59]], None), ([], 1),
], ids=repr)
def test_take(indices, axis):
    want = np.take(X, indices, axis=axis)
    mx_indices = mx.array(indices, dtype=mx.int32) if isinstance(indices, list) else indices
    assert_same(mx.take(mx.array(X), mx_indices, axis=axis), want)
    assert_same(mx.take(mx.array(X), indices, axis), want)     # lists are accepted too


def test_take_errors():
    a = mx.array(X)
    with pytest.raises(ValueError, match=r"\[take\] Got indices with invalid dtype float32. Indices must be integral"):
        mx.take(a, mx.array([0.0]), axis=0)
    with pytest.raises(IndexError, match=r"\[take\] Axis 3 is out of bounds"):
        mx.take(a, mx.array([0]), axis=3)
    with pytest.raises(IndexError, match=r"\[take\] index 5 is out of bounds for axis 2 with size 5"):
        mx.take(a, [5], axis=2)
    with pytest.raises(IndexError, match=r"\[take\] index 60 is out of bounds for axis 0 with size 60"):
        mx.take(a, 60)
    with pytest.raises(IndexError, match=r"\[take\] index 4 is out of bounds"):
        mx.eval(mx.take(a, mx.array([4]) + 0, axis=1))


@pytest.mark.parametrize("ishape,axis", [((3, 2, 5), 1), ((1, 4, 2), 2), ((3, 4, 5), 0),
                                          ((3, 1, 5), -2), ((7,), None)])
def test_take_along_axis_and_put_along_axis(ishape, axis):
    rng = np.random.default_rng(0)
    n = X.size if axis is None else X.shape[axis]
    idx = rng.integers(-n, n, size=ishape)
    assert_same(mx.take_along_axis(mx.array(X), mx.array(idx), axis=axis),
                np.take_along_axis(X, idx, axis=axis))
    vals = rng.integers(100, 200, size=ishape).astype(np.int32)
    want = X.copy()
    np.put_along_axis(want, idx, vals, axis=axis)
    got = mx.put_along_axis(mx.array(X), mx.array(idx), mx.array(vals), axis=axis)
    # repeated positions: NumPy's last write wins, and so does ours (same kernel order)
    assert_same(got, want)


def test_take_along_axis_default_axis_is_last():
    idx = np.array([[[0], [4], [2], [1]]] * 3)
    assert_same(mx.take_along_axis(mx.array(X), mx.array(idx)),
                np.take_along_axis(X, idx, axis=-1))


def test_put_along_axis_broadcasts_and_casts_values():
    idx = np.array([[0], [1], [2]])
    want = X[:, :, 0].copy()
    np.put_along_axis(want, idx, 7, axis=1)
    got = mx.put_along_axis(mx.array(X[:, :, 0]), mx.array(idx), mx.array(7.9), axis=1)
    assert_same(got, want)


def test_along_axis_errors():
    a = mx.array(X)
    with pytest.raises(ValueError, match=r"\[take_along_axis\] Indices of dimension 2 does not match array of dimension 3"):
        mx.take_along_axis(a, mx.array([[0]]), axis=0)
    with pytest.raises(ValueError, match=r"\[take_along_axis\] Indices of dimension 2 does not match array of dimension 1"):
        mx.take_along_axis(a, mx.array([[0]]), axis=None)
    with pytest.raises(ValueError, match=r"\[put_along_axis\] Indices of shape \(2,1,1\) cannot be broadcast"):
        mx.put_along_axis(a, mx.array(np.zeros((2, 1, 1), np.int32)), mx.array(1), axis=2)
    with pytest.raises(ValueError, match=r"\[put_along_axis\] Cannot broadcast array of shape \(2\) into shape \(3,4,1\)"):
        mx.put_along_axis(a, mx.array(np.zeros((3, 4, 1), np.int32)), mx.array([1, 2]), axis=2)
    with pytest.raises(IndexError, match=r"\[take_along_axis\] Axis 3 is out of bounds"):
        mx.take_along_axis(a, mx.array(np.zeros((3, 4, 1), np.int32)), axis=3)
    with pytest.raises(IndexError, match=r"\[take_along_axis\] index 5 is out of bounds for axis 2"):
        mx.take_along_axis(a, mx.array(np.full((3, 4, 1), 5, np.int32)), axis=2)


# ---------------------------------------------------------------------------------------
# slice, slice_update
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("lazy", [False, True])
def test_slice(lazy):
    a = mx.array(X)
    start = mx.array([1, 2])
    if lazy:
        start = start + 0
    got = mx.slice(a, start, (0, 2), (2, 3, 3))
    assert_same(got, X[1:3, 0:3, 2:5])
    one = mx.array(2) if not lazy else mx.array(2) + 0
    assert_same(mx.slice(a, one, (-1,), (3, 4, 2)), X[:, :, 2:4])
    assert_same(mx.slice(a, 1, [1], [1, 2, 5]), X[:1, 1:3, :])


@pytest.mark.parametrize("lazy", [False, True])
def test_slice_update(lazy):
    a = mx.array(X)
    start = mx.array([1, 3])
    if lazy:
        start = start + 0
    upd = np.full((2, 1), -1, dtype=np.int32)
    want = X.copy()
    want[:, 1:3, 3:4] = upd
    assert_same(mx.slice_update(a, mx.array(upd), start, (1, 2)), want)
    want = X.copy()
    want[2:3] = 0
    assert_same(mx.slice_update(a, mx.array(0.7), mx.array([2]) if not lazy else mx.array([2]) + 0,
                                (0,)), want)
    assert_same(a, X)          # the input is unchanged


def test_slice_errors():
    a = mx.array(X)
    with pytest.raises(ValueError, match=r"\[slice\] Start indices must be integers, got type float32"):
        mx.slice(a, mx.array([1.0]), (0,), (1, 4, 5))
    with pytest.raises(ValueError, match=r"\[slice\] Number of starting indices 2 does not match number of axes 1"):
        mx.slice(a, mx.array([1, 1]), (0,), (1, 4, 5))
    with pytest.raises(ValueError, match=r"\[slice\] array of starting indices must be zero or one dimensional but has dimension 2"):
        mx.slice(a, mx.array([[1]]), (0,), (1, 4, 5))
    with pytest.raises(ValueError, match=r"\[slice\] Repeat axes not allowed"):
        mx.slice(a, mx.array([0, 1]), (1, -2), (1, 4, 5))
    with pytest.raises(IndexError, match=r"\[slice\] Invalid axis 3 for array with dimension 3"):
        mx.slice(a, mx.array(0), (3,), (1, 4, 5))
    with pytest.raises(ValueError, match=r"\[slice\] Invalid slice size for array with 3 dimensions"):
        mx.slice(a, mx.array(0), (0,), (1, 4))
    with pytest.raises(ValueError, match=r"\[slice\] Invalid slice size \(1,5,5\) for array with shape \(3,4,5\)"):
        mx.slice(a, mx.array(0), (0,), (1, 5, 5))
    with pytest.raises(IndexError, match=r"\[slice\] Start index 3 on axis 0 leaves no room for a slice of size 1"):
        mx.slice(a, mx.array(3), (0,), (1, 4, 5))
    with pytest.raises(IndexError, match=r"\[slice\] Start index -1 on axis 0"):
        mx.eval(mx.slice(a, mx.array(-1) + 0, (0,), (1, 4, 5)))
    with pytest.raises(ValueError, match=r"\[slice_update\] Shapes \(5,2\) and \(3,4,2\) cannot be broadcast"):
        mx.slice_update(a, np.ones((5, 2)), mx.array([1]), (2,))
    with pytest.raises(ValueError, match=r"\[slice_update\] The update of shape \(1,1,1,1\) has more dimensions"):
        mx.slice_update(a, np.ones((1, 1, 1, 1)), mx.array([1]), (2,))
    with pytest.raises(IndexError, match=r"\[slice_update\] Start index 4 on axis 2"):
        mx.slice_update(a, np.ones((2,)), mx.array([4]), (2,))


# ---------------------------------------------------------------------------------------
# diagonal, diag, trace
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset,axis1,axis2", [(0, 0, 1), (1, 0, 1), (-2, 0, 1), (9, 0, 1),
                                                (2, 1, 2), (-1, 2, 0), (0, -1, -3)])
def test_diagonal_and_trace(offset, axis1, axis2):
    check(lambda xp, a: xp.diagonal(a, offset, axis1, axis2), X)
    check(lambda xp, a: xp.trace(a, offset, axis1, axis2), X, dtype="int32")
    check(lambda xp, a: xp.trace(a, offset, axis1, axis2), F)
    check(lambda xp, a: a.diagonal(offset, axis1, axis2), F)


@pytest.mark.parametrize("k", [0, 1, -2, 5])
def test_diag(k):
    check(lambda xp, a: xp.diag(a, k), X[0])
    check(lambda xp, a: xp.diag(a, k), F[0, 0])


@pytest.mark.parametrize("dtype,expect", [("bool", "int32"), ("int8", "int32"), ("int16", "int32"),
                                          ("uint8", "uint32"), ("uint16", "uint32"),
                                          ("int64", "int64"), ("float16", "float16")])
def test_trace_dtypes(dtype, expect):
    m = np.eye(3, dtype=dtype)
    r = mx.trace(mx.array(m))
    assert r.dtype.name == expect
    assert r.item() == 3
    r = mx.trace(mx.array(X[0]), dtype=getattr(mx, dtype) if dtype != "bool" else mx.bool_)
    assert r.dtype.name == expect


def test_diagonal_errors():
    a = mx.array(X)
    with pytest.raises(ValueError, match=r"\[diagonal\] axis1 and axis2 cannot be the same axis"):
        mx.diagonal(a, 0, 1, -2)
    with pytest.raises(IndexError, match=r"\[diagonal\] Invalid axis2 3 for array with 3 dimensions"):
        mx.diagonal(a, 0, 0, 3)
    with pytest.raises(ValueError, match=r"\[diagonal\] Array must have at least two dimensions, but got 1 dimensions"):
        mx.diagonal(mx.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[trace\] Array must have at least two dimensions"):
        mx.trace(mx.array([1, 2]))
    with pytest.raises(ValueError, match=r"\[diag\] array must be 1-D or 2-D, got array with 3 dimensions"):
        mx.diag(a)
    with pytest.raises(TypeError, match=r"\[trace\] dtype must be an mx Dtype"):
        mx.trace(a[0], dtype="float32")


def test_argument_type_errors():
    a = mx.array(X)
    with pytest.raises(TypeError, match=r"\[slice\] slice_size must be a sequence of integers"):
        mx.slice(a, mx.array(0), (0,), (1.5, 4, 5))
    with pytest.raises(TypeError, match=r"\[slice_update\] axes must be a sequence of integers"):
        mx.slice_update(a, np.ones(1), mx.array(0), ("x",))
    with pytest.raises(ValueError, match=r"\[setitem\] Cannot use values of type str"):
        a[0] = "text"
    with pytest.raises(ValueError, match=r"\[setitem\] Cannot use values of type list"):
        a[0] = [object()]
    with pytest.raises(IndexError, match=r"\[getitem\] slice indices must be integers or None"):
        a[0.5:]
    with pytest.raises(TypeError, match=r"\[take_along_axis\] axis must be an integer"):
        mx.take_along_axis(a, mx.array(np.zeros((3, 4, 1), np.int32)), axis="x")
