"""Shape ops (mx/core/ops/shape.py) against NumPy, plus MLX's own behaviour where the two
differ (promotion in concatenate/stack, roll with extra shifts, pad's edge mode on empty
axes, flatten's clamping), every error path and the array methods that delegate here."""
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core._array import promote_types
from oracle import assert_same, check, mx_dtype, np_dtype

DTYPES = ["bool", "uint8", "int16", "int32", "int64", "float16", "bfloat16", "float32",
          "float64", "complex64"]
FEW_DTYPES = ["bool", "int32", "bfloat16", "float32", "complex64"]
HYP = settings(max_examples=60, deadline=None)


def rand(shape, dtype="float32", seed=0):
    """Random values of `shape` as a NumPy array of dtype `dtype` (a name)."""
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.startswith("uint"):
        return np.asarray(rng.integers(0, 100, shape)).astype(dtype)
    if dtype.startswith("int"):
        return np.asarray(rng.integers(-50, 50, shape)).astype(dtype)
    x = np.asarray(rng.standard_normal(shape))
    if dtype == "complex64":
        return np.asarray(x + 1j * rng.standard_normal(shape)).astype(np.complex64)
    return x.astype(np_dtype(dtype))


def arange(shape, dtype=np.int32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------------------------
# reshaping
# ---------------------------------------------------------------------------------------
RESHAPES = [((6,), (2, 3)), ((2, 3), (3, -1)), ((2, 3, 4), (4, -1, 2)), ((), (1, 1)),
            ((1,), ()), ((0, 3), (-1, 3)), ((0,), (-1,)), ((2, 0), (0, 5)), ((2, 3), [6])]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,new", RESHAPES)
def test_reshape(dtype, shape, new):
    check(lambda xp, x: xp.reshape(x, new), rand(shape, dtype))


# (shape, start_axis, end_axis) -> shape MLX gives (out-of-range axes are clamped)
FLATTENS = [((2, 3, 4), 0, -1, (24,)), ((2, 3, 4), 1, -1, (2, 12)), ((2, 3, 4), 0, 1, (6, 4)),
            ((2, 3, 4), -10, 10, (24,)), ((2, 3, 4), -1, -1, (2, 3, 4)),
            ((2, 3, 4, 5), 1, -2, (2, 12, 5)), ((), 0, -1, (1,)), ((), 1, 2, (1,)),
            ((0, 3), 0, 1, (0,))]


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,start,end,want", FLATTENS)
def test_flatten(dtype, shape, start, end, want):
    def body(xp, x):
        return xp.reshape(x, want) if xp is np else mx.flatten(x, start, end)
    check(body, rand(shape, dtype))


def test_flatten_defaults_and_method():
    x = rand((2, 3, 4))
    assert_same(mx.flatten(mx.array(x)), x.reshape(-1))
    assert_same(mx.array(x).flatten(), x.reshape(-1))
    assert_same(mx.array(x).flatten(1), x.reshape(2, 12))
    assert_same(mx.array(x).flatten(start_axis=0, end_axis=1), x.reshape(6, 4))


UNFLATTENS = [((2, 12), 1, (3, -1), (2, 3, 4)), ((2, 12), -1, (3, 4), (2, 3, 4)),
              ((12,), 0, (2, 2, 3), (2, 2, 3)), ((0,), 0, (2, 0), (2, 0)),
              ((4, 5), 0, (-1,), (4, 5))]


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,axis,new,want", UNFLATTENS)
def test_unflatten(dtype, shape, axis, new, want):
    def body(xp, x):
        return xp.reshape(x, want) if xp is np else mx.unflatten(x, axis, new)
    check(body, rand(shape, dtype))


SQUEEZES = [((1, 2, 1), None), ((1, 2, 1), 2), ((1, 2, 1), (0, -1)), ((1, 2, 1), [0]),
            ((1, 2, 1), ()), ((), None), ((1, 1), None), ((3, 1, 0), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", SQUEEZES)
def test_squeeze(dtype, shape, axis):
    # NumPy takes axes as a tuple only; MLX also takes a list
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    check(lambda xp, x: xp.squeeze(x, np_axis if xp is np else axis), rand(shape, dtype))


EXPANDS = [((2, 3), 0), ((2, 3), -1), ((2, 3), (0, 3)), ((2, 3), (-1, 0)), ((2, 3), [1]),
           ((2, 3), ()), ((), 0), ((), (0, 1)), ((0,), 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", EXPANDS)
def test_expand_dims(dtype, shape, axis):
    check(lambda xp, x: xp.expand_dims(x, axis), rand(shape, dtype))


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("fn", ["atleast_1d", "atleast_2d", "atleast_3d"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (2, 3, 4), (1, 2, 3, 4), (0,)])
def test_atleast(dtype, fn, shape):
    check(lambda xp, x: getattr(xp, fn)(x), rand(shape, dtype))


@pytest.mark.parametrize("fn", ["atleast_1d", "atleast_2d", "atleast_3d"])
def test_atleast_several(fn):
    xs = [rand(s, d) for s, d in [((), "int32"), ((3,), "float32"), ((2, 3), "bool")]]
    got = getattr(mx, fn)(*[mx.array(x) for x in xs])
    assert isinstance(got, list) and len(got) == 3
    assert_same(got, list(getattr(np, fn)(*xs)))
    assert getattr(mx, fn)() == []


# ---------------------------------------------------------------------------------------
# axis permutations
# ---------------------------------------------------------------------------------------
TRANSPOSES = [((2, 3), None), ((2, 3, 4), None), ((2, 3, 4), (1, 0, 2)), ((2, 3, 4), (-1, 0, 1)),
              ((2, 3, 4), [2, 1, 0]), ((), None), ((), ()), ((5,), (0,)), ((0, 2), (1, 0))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axes", TRANSPOSES)
def test_transpose(dtype, shape, axes):
    check(lambda xp, x: xp.transpose(x, axes), rand(shape, dtype))
    check(lambda xp, x: xp.permute_dims(x, axes), rand(shape, dtype))


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,a1,a2", [((2, 3, 4), 0, -1), ((2, 3), 0, 0), ((2, 3, 4), 1, 2),
                                         ((2, 3), -1, -2)])
def test_swapaxes(dtype, shape, a1, a2):
    check(lambda xp, x: xp.swapaxes(x, a1, a2), rand(shape, dtype))
    check(lambda xp, x: x.swapaxes(a1, a2), rand(shape, dtype))


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,src,dst", [((2, 3, 4), 0, -1), ((2, 3, 4), 2, 0), ((2, 3), 1, 1),
                                           ((2, 3, 4, 5), 1, 2), ((2, 3, 4, 5), -1, 1)])
def test_moveaxis(dtype, shape, src, dst):
    check(lambda xp, x: xp.moveaxis(x, src, dst), rand(shape, dtype))
    check(lambda xp, x: np.moveaxis(x, src, dst) if xp is np else x.moveaxis(src, dst),
          rand(shape, dtype))


def test_transpose_returns_views_that_stay_correct():
    # the kernels return NumPy views; a later op that could donate buffers must not
    # overwrite the memory those views read
    base = rand((2, 3))
    x = mx.exp(mx.array(base))
    v = mx.transpose(mx.reshape(x, (3, 2)))
    mx.eval(v)
    w = -x
    del x
    mx.eval(w)
    assert_same(v, np.exp(base).reshape(3, 2).T)
    assert_same(w, -np.exp(base))


@given(st.lists(st.integers(0, 4), max_size=5).flatmap(
    lambda s: st.tuples(st.just(tuple(s)), st.permutations(range(len(s))))))
@HYP
def test_transpose_hypothesis(case):
    shape, perm = case
    x = rand(shape, "int32")
    check(lambda xp, a: xp.transpose(a, perm), x)
    check(lambda xp, a: xp.transpose(a), x)


# ---------------------------------------------------------------------------------------
# broadcasting
# ---------------------------------------------------------------------------------------
BROADCASTS = [((3,), (2, 3)), ((1,), (4,)), ((), (2, 3)), ((2, 1), (2, 5)), ((1, 3), (0, 3)),
              ((2, 3), (2, 3)), ((4, 1, 2), (3, 4, 5, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,target", BROADCASTS)
def test_broadcast_to(dtype, shape, target):
    check(lambda xp, x: xp.broadcast_to(x, target), rand(shape, dtype))


def test_broadcast_to_scalar():
    assert_same(mx.broadcast_to(2.5, (2, 3)), np.full((2, 3), 2.5, np.float32))
    assert_same(mx.broadcast_to(7, [3]), np.full(3, 7, np.int32))
    assert_same(mx.broadcast_to(True, (2,)), np.ones(2, bool))


@pytest.mark.parametrize("shapes", [[(2, 1), (3,)], [(2, 1)], [(), (4, 1), (1, 5)],
                                    [(0, 1), (1, 3)], [(2, 3), (2, 3)]])
def test_broadcast_arrays(shapes):
    xs = [rand(s, d) for s, d in zip(shapes, ["float32", "int32", "bool"])]
    got = mx.broadcast_arrays(*[mx.array(x) for x in xs])
    assert isinstance(got, list)
    assert_same(got, list(np.broadcast_arrays(*xs)))
    assert mx.broadcast_arrays() == []


@pytest.mark.parametrize("shapes", [[(1,), (3, 1)], [(6, 7), (5, 6, 1), (7,)],
                                    [(5, 1, 4), (1, 3, 1)], [(), (3,)], [(0, 3), (1, 3)],
                                    [(2, 3)], [[2, 3], [3]]])
def test_broadcast_shapes(shapes):
    got = mx.broadcast_shapes(*shapes)
    assert isinstance(got, tuple)
    assert got == np.broadcast_shapes(*[tuple(s) for s in shapes])


@st.composite
def broadcastable(draw):
    target = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    keep = draw(st.integers(0, len(target)))
    src = tuple(1 if draw(st.booleans()) else d for d in target[len(target) - keep:])
    return src, target


@given(broadcastable(), st.sampled_from(["bool", "int16", "float32"]))
@HYP
def test_broadcast_to_hypothesis(case, dtype):
    src, target = case
    check(lambda xp, x: xp.broadcast_to(x, target), rand(src, dtype))
    assert mx.broadcast_shapes(src, target) == np.broadcast_shapes(src, target)


# ---------------------------------------------------------------------------------------
# joining and splitting
# ---------------------------------------------------------------------------------------
CONCATS = [([(2, 3), (1, 3)], 0), ([(2, 3), (2, 1), (2, 0)], 1), ([(2, 3), (2, 3)], -1),
           ([(2, 3)], 0), ([(4,), (0,), (2,)], 0), ([(2, 3), (5,)], None), ([(), ()], None),
           ([(1, 2, 3), (1, 2, 2)], 2)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shapes,axis", CONCATS)
def test_concatenate(dtype, shapes, axis):
    xs = [rand(s, dtype, seed=i) for i, s in enumerate(shapes)]
    check(lambda xp, *a: xp.concatenate(list(a), axis=axis), *xs)
    check(lambda xp, *a: xp.concat(a, axis), *xs)


# mixed dtypes promote as MLX does (values read from MLX 0.32)
PROMOTIONS = [("int8", "uint8", "int16"), ("bool", "int32", "int32"), ("uint32", "int32", "int64"),
              ("float16", "bfloat16", "float32"), ("int32", "float32", "float32"),
              ("uint64", "int32", "float32"), ("int64", "float16", "float16"),
              ("bfloat16", "int32", "bfloat16"), ("complex64", "float64", "complex64"),
              ("int16", "uint16", "int32")]


@pytest.mark.parametrize("d1,d2,want", PROMOTIONS)
def test_concatenate_and_stack_promote(d1, d2, want):
    x, y = rand((2, 3), d1), rand((2, 3), d2, seed=1)
    wide = np.complex128 if "complex" in want else np.float64
    got = mx.concatenate([mx.array(x, dtype=mx_dtype(d1)), mx.array(y, dtype=mx_dtype(d2))])
    assert got.dtype == mx_dtype(want)
    assert_same(got.astype(mx.complex64 if "complex" in want else mx.float64),
                np.concatenate([x.astype(wide), y.astype(wide)]), rtol=1e-2, atol=1e-2,
                check_dtype=False)
    got = mx.stack([mx.array(x, dtype=mx_dtype(d1)), mx.array(y, dtype=mx_dtype(d2))], axis=1)
    assert got.dtype == mx_dtype(want)
    assert got.shape == (2, 2, 3)


STACKS = [((2, 3), 2, 0), ((2, 3), 2, 2), ((2, 3), 3, -1), ((2, 3), 2, -3), ((), 3, 0),
          ((0, 2), 2, 1), ((4,), 1, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,n,axis", STACKS)
def test_stack(dtype, shape, n, axis):
    xs = [rand(shape, dtype, seed=i) for i in range(n)]
    check(lambda xp, *a: xp.stack(list(a), axis=axis), *xs)


def test_stack_axis_none_is_zero():
    xs = [rand((2, 3), seed=i) for i in range(2)]
    assert_same(mx.stack([mx.array(x) for x in xs], None), np.stack(xs))


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,axis", [((2, 3), 0), ((2, 3), 1), ((2, 3, 4), -1), ((0, 3), 0),
                                        ((3,), 0)])
def test_unstack(dtype, shape, axis):
    got = check(lambda xp, x: xp.unstack(x, axis=axis), rand(shape, dtype))
    assert isinstance(got, tuple)


SPLITS = [((6,), 3, 0), ((6,), 1, 0), ((6,), [1, 4], 0), ((6,), (4, 1), 0), ((6,), [2, 10], 0),
          ((6,), [-2, 5], 0), ((6,), [-10, 2], 0), ((6,), [], 0), ((2, 6), 3, 1),
          ((2, 6), [1], -1), ((4, 3), 2, 0), ((0,), 3, 0), ((3, 4), [0, 0, 3], 1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,ios,axis", SPLITS)
def test_split(dtype, shape, ios, axis):
    got = check(lambda xp, x: xp.split(x, ios, axis=axis), rand(shape, dtype))
    assert isinstance(got, list)


def test_split_method_and_array_sections():
    x = arange((4, 6))
    a = mx.array(x)
    assert_same(a.split(2), np.split(x, 2))
    assert_same(a.split([1, 5], 1), np.split(x, [1, 5], 1))
    assert_same(a.split(3, axis=1), np.split(x, 3, 1))
    # a 0-d integer array counts as a number of sections, a 1-d one as indices
    assert_same(mx.split(a, mx.array(2)), np.split(x, 2))
    assert_same(mx.split(a, mx.array([1, 3])), np.split(x, [1, 3]))


@given(st.lists(st.integers(0, 5), min_size=1, max_size=3), st.data())
@HYP
def test_concatenate_split_hypothesis(shape, data):
    shape = tuple(shape)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    n = shape[axis]
    x = arange(shape)
    if data.draw(st.booleans()):
        k = data.draw(st.sampled_from([d for d in range(1, 7) if n % d == 0]))
        ios = k
    else:
        ios = data.draw(st.lists(st.integers(-n - 2, n + 2), max_size=4))
    parts = check(lambda xp, a: xp.split(a, ios, axis=axis), x)
    if isinstance(ios, int):
        # concatenating equal parts gives back the array
        assert_same(mx.concatenate(parts, axis=axis), x)
    sizes = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=4))
    dtypes = data.draw(st.lists(st.sampled_from(["bool", "uint8", "int32", "float16", "float32"]),
                                min_size=len(sizes), max_size=len(sizes)))
    pieces = []
    for i, (s, d) in enumerate(zip(sizes, dtypes)):
        ps = list(shape)
        ps[axis] = s
        pieces.append(rand(tuple(ps), d, seed=i))
    got = mx.concatenate([mx.array(p, dtype=mx_dtype(d)) for p, d in zip(pieces, dtypes)], axis)
    want_dtype = mx_dtype(dtypes[0])
    for d in dtypes[1:]:
        want_dtype = promote_types(want_dtype, mx_dtype(d))
    assert got.dtype == want_dtype
    assert_same(got.astype(mx.float64), np.concatenate([p.astype(np.float64) for p in pieces], axis),
                check_dtype=False)


# ---------------------------------------------------------------------------------------
# reshape property test
# ---------------------------------------------------------------------------------------
@st.composite
def reshapes(draw):
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    # a new shape with the same size: shuffle the dims, merge some neighbours
    dims = list(draw(st.permutations(shape)))
    new = []
    for d in dims:
        if new and draw(st.booleans()):
            new[-1] *= d
        else:
            new.append(d)
    if draw(st.booleans()):
        new.append(1)
    if new and draw(st.booleans()):
        i = draw(st.integers(0, len(new) - 1))
        rest = int(np.prod(new[:i] + new[i + 1:]))
        if rest != 0:
            new[i] = -1
    return shape, tuple(new)


@given(reshapes(), st.sampled_from(["bool", "int8", "float32", "complex64"]))
@HYP
def test_reshape_hypothesis(case, dtype):
    shape, new = case
    x = rand(shape, dtype)
    check(lambda xp, a: xp.reshape(a, new), x)
    check(lambda xp, a: a.reshape(new), x)
    if new:
        check(lambda xp, a: a.reshape(*new), x)


# ---------------------------------------------------------------------------------------
# repetition, padding, reordering
# ---------------------------------------------------------------------------------------
TILES = [((2, 3), 2), ((2, 3), (2, 1, 3)), ((2, 3), 0), ((2, 3), ()), ((), (2,)),
         ((2, 3, 4), (2,)), ((2, 3), [2, 2]), ((0, 2), 3)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,reps", TILES)
def test_tile(dtype, shape, reps):
    check(lambda xp, x: xp.tile(x, reps), rand(shape, dtype))


REPEATS = [((6,), 2, None), ((2, 3), 2, None), ((2, 3), 2, 1), ((2, 3), 3, -2), ((2, 3), 0, 1),
           ((), 2, None), ((0, 3), 2, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,n,axis", REPEATS)
def test_repeat(dtype, shape, n, axis):
    check(lambda xp, x: xp.repeat(x, n, axis), rand(shape, dtype))


PADS = [1, (1,), (1, 2), [1, 2], [(1, 0), (0, 2)], ((1, 0), (0, 2)), [[1, 2], [3, 4]], [(1, 2)],
        0, 3, [(0, 3), (4, 1)]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("width", PADS)
def test_pad(dtype, mode, width):
    check(lambda xp, x: xp.pad(x, width, mode), rand((2, 3), dtype))


@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "symmetric"])
@pytest.mark.parametrize("shape,width", [((5,), 7), ((1, 4), 3), ((1,), 2), ((2, 1, 3), 2),
                                         ((0, 3), [(0, 0), (1, 2)])])
def test_pad_shapes(mode, shape, width):
    check(lambda xp, x: xp.pad(x, width, mode), rand(shape, "float32"))


@pytest.mark.parametrize("dtype,value", [("int32", 7), ("int32", 7.5), ("float32", -2.5),
                                         ("bool", 1.5), ("bool", False), ("uint8", 200),
                                         ("complex64", 1 + 2j), ("bfloat16", 3.0)])
def test_pad_constant_values(dtype, value):
    check(lambda xp, x: xp.pad(x, 1, constant_values=value), rand((2, 3), dtype))


def test_pad_constant_value_array_and_zero_d():
    x = arange((2, 3))
    want = np.pad(x, 1, constant_values=7)
    assert_same(mx.pad(mx.array(x), 1, constant_values=mx.array(7.5)), want)
    assert_same(mx.pad(mx.array(x), 1, constant_values=mx.array([7])), want)
    assert_same(mx.pad(mx.array(x), 1, "constant", 7), want)
    assert_same(mx.pad(mx.array(3), 1), np.array(3, np.int32))
    assert_same(mx.pad(mx.array(3), []), np.array(3, np.int32))


def test_pad_edge_on_empty_axis_gives_zeros():
    # NumPy refuses this; MLX fills the new elements with zeros
    assert_same(mx.pad(mx.zeros((0, 3)), 1, "edge"), np.zeros((2, 5), np.float32))
    assert_same(mx.pad(mx.zeros((2, 0)), [(0, 0), (1, 1)], "edge"), np.zeros((2, 2), np.float32))
    assert_same(mx.pad(mx.zeros((0, 3)), [(0, 0), (1, 1)], "reflect"), np.zeros((0, 5), np.float32))


ROLLS = [((2, 3), 1, None), ((2, 3), 1, 1), ((2, 3), (1, 2), (0, 1)), ((2, 3), 1, (0, 1)),
         ((2, 3), (1, 2), None), ((2, 3), (1, 2), 1), ((2, 3), 1, (0, 0)), ((2, 3), -1, -1),
         ((2, 3), 100, 1), ((2, 3), -7, None), ((), 1, None), ((0, 3), 1, 0), ((0, 3), 1, None),
         ((2, 3, 4), (1, -2), (2, 0))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,shift,axis", ROLLS)
def test_roll(dtype, shape, shift, axis):
    check(lambda xp, x: xp.roll(x, shift, axis), rand(shape, dtype))


def test_roll_extra_shifts_are_ignored():
    # MLX uses the first len(axis) shifts; NumPy would refuse the mismatch
    x = arange((2, 3))
    assert_same(mx.roll(mx.array(x), (1, 2, 3), (0, 1)), np.roll(x, (1, 2), (0, 1)))
    assert_same(mx.roll(mx.array(x), (1, 2), (0,)), np.roll(x, 1, 0))
    assert_same(mx.roll(mx.array(x), shift=1, axis=0), np.roll(x, 1, 0))


FLIPS = [((2, 3), None), ((2, 3), 1), ((2, 3), -1), ((2, 3), (0, 1)), ((2, 3, 4), (0, 2)),
         ((), None), ((0, 3), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", FLIPS)
def test_flip(dtype, shape, axis):
    check(lambda xp, x: xp.flip(x, axis), rand(shape, dtype))


def test_flip_repeated_axis_flips_once():
    x = arange((2, 3))
    assert_same(mx.flip(mx.array(x), (0, 0)), np.flip(x, 0))
    assert_same(mx.flip(mx.array(x), [1, -1, 0]), np.flip(x, (0, 1)))


TRIS = [((3, 4), 0), ((3, 4), -1), ((3, 4), 1), ((2, 3, 4), 1), ((3, 3), 10), ((3, 3), -10),
        ((2, 2, 3, 3), 0), ((0, 3), 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,k", TRIS)
def test_tril_triu(dtype, shape, k):
    check(lambda xp, x: xp.tril(x, k), rand(shape, dtype))
    check(lambda xp, x: xp.triu(x, k), rand(shape, dtype))


def test_tril_triu_default_k():
    x = rand((4, 4))
    assert_same(mx.tril(mx.array(x)), np.tril(x))
    assert_same(mx.triu(mx.array(x)), np.triu(x))


DIFFS = [((6,), 1, -1), ((6,), 2, -1), ((6,), 0, -1), ((6,), 10, -1), ((2, 3), 1, 0),
         ((2, 3), 1, 1), ((3, 4, 5), 2, 1), ((0, 3), 1, 0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,n,axis", DIFFS)
def test_diff(dtype, shape, n, axis):
    check(lambda xp, x: xp.diff(x, n, axis), rand(shape, dtype))


def test_diff_defaults_and_wraparound():
    assert_same(mx.diff(mx.array([3, 1], dtype=mx.uint8)), np.array([254], np.uint8))
    assert_same(mx.diff(mx.array([True, False, False, True])), np.array([True, False, True]))
    x = rand((3, 4))
    assert_same(mx.diff(mx.array(x)), np.diff(x))


# ---------------------------------------------------------------------------------------
# memory layout
# ---------------------------------------------------------------------------------------
def np_as_strided(x, shape=None, strides=None, offset=0):
    """MLX's as_strided on NumPy: element strides over the row-major elements of x."""
    flat = np.ascontiguousarray(x).reshape(-1)
    shape = x.shape if shape is None else tuple(shape)
    if strides is None:
        strides = [int(np.prod(shape[i + 1:])) for i in range(len(shape))]
    return np.lib.stride_tricks.as_strided(flat[offset:], shape, [s * flat.itemsize for s in strides]).copy()


STRIDED = [((6,), (2, 2), (1, 1), 1), ((2, 3), None, None, 0), ((6,), (2, 3), None, 0),
           ((6,), None, (1,), 0), ((6,), (3, 3), (0, 1), 0), ((6,), (3,), (-1,), 5),
           ((6,), (3,), (2,), 1), ((6,), (0, 4), (9, 9), 6), ((3, 4), (2, 2, 2), (4, 1, 2), 1)]


@pytest.mark.parametrize("dtype", FEW_DTYPES)
@pytest.mark.parametrize("shape,new,strides,offset", STRIDED)
def test_as_strided(dtype, shape, new, strides, offset):
    def body(xp, x):
        if xp is np:
            return np_as_strided(x, new, strides, offset)
        return mx.as_strided(x, new, strides, offset)
    check(body, rand(shape, dtype))


def test_as_strided_reads_transposed_input_row_major():
    x = arange((2, 3))
    t = mx.transpose(mx.array(x))
    assert_same(mx.as_strided(t), x.T)
    assert_same(mx.as_strided(t, (2,), (1,), 4), x.T.reshape(-1)[4:6])


@pytest.mark.parametrize("allow", [False, True])
def test_contiguous(allow):
    x = rand((3, 4))
    for a, want in [(mx.transpose(mx.array(x)), x.T), (mx.array(x), x),
                    (mx.broadcast_to(mx.array(x[:1]), (3, 4)), np.broadcast_to(x[:1], (3, 4)))]:
        got = mx.contiguous(a, allow)
        assert_same(got, want)
        data = np.asarray(got)
        assert data.flags.c_contiguous or (allow and data.flags.f_contiguous)
    assert np.asarray(mx.contiguous(mx.transpose(mx.array(x)))).flags.c_contiguous


# ---------------------------------------------------------------------------------------
# array methods and laziness
# ---------------------------------------------------------------------------------------
def test_array_methods():
    x = arange((2, 3))
    a = mx.array(x)
    assert_same(a.reshape(3, 2), x.reshape(3, 2))
    assert_same(a.reshape((3, 2)), x.reshape(3, 2))
    assert_same(a.reshape([6]), x.reshape(6))
    assert_same(a.reshape(-1), x.reshape(-1))
    assert_same(a.T, x.T)
    z = rand((2, 3, 4))
    b = mx.array(z)
    assert_same(b.T, z.T)
    assert_same(b.mT, np.swapaxes(z, -1, -2))
    assert_same(b.swapaxes(0, 2), np.swapaxes(z, 0, 2))
    assert_same(b.transpose(1, 0, 2), z.transpose(1, 0, 2))
    assert_same(b.transpose((2, 0, 1)), z.transpose(2, 0, 1))
    assert_same(b.transpose(), z.transpose())
    assert_same(b.moveaxis(0, -1), np.moveaxis(z, 0, -1))
    assert_same(b.flatten(), z.reshape(-1))
    assert_same(b.flatten(1, 2), z.reshape(2, 12))
    assert_same(a.transpose(1, 0), x.T)
    s = rand((1, 3, 1))
    assert_same(mx.array(s).squeeze(), s.squeeze())
    assert_same(mx.array(s).squeeze(0), s.squeeze(0))
    assert_same(mx.array(s).squeeze((0, 2)), s.squeeze((0, 2)))
    assert_same(a.split(2), np.split(x, 2))
    assert_same(a.split([1], axis=1), np.split(x, [1], axis=1))


def test_ops_are_lazy_and_return_new_arrays():
    a = mx.array(arange((2, 3)))
    lazy = a + 1
    for out in [mx.reshape(lazy, (3, 2)), mx.transpose(lazy), mx.broadcast_to(lazy, (2, 2, 3)),
                mx.concatenate([lazy, lazy]), mx.pad(lazy, 1), mx.flip(lazy)]:
        assert out._data is None
    assert lazy._data is None
    # an op that changes nothing still gives a distinct array object
    for out in [mx.reshape(a, a.shape), mx.squeeze(a), mx.expand_dims(a, ()),
                mx.transpose(a, (0, 1)), mx.broadcast_to(a, a.shape), mx.concatenate([a]),
                mx.atleast_2d(a), mx.flip(a, ()), mx.diff(a, 0), mx.contiguous(a)]:
        assert out is not a
        assert_same(out, arange((2, 3)))


def test_stream_argument():
    a = mx.array(arange((2, 3)))
    assert_same(mx.reshape(a, (3, 2), stream=mx.cpu), arange((2, 3)).reshape(3, 2))
    assert_same(mx.concatenate([a, a], stream=mx.cpu), np.concatenate([arange((2, 3))] * 2))
    assert_same(mx.split(a, 2, stream=mx.cpu), np.split(arange((2, 3)), 2))


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
A6 = np.arange(6, dtype=np.int32)
ERRORS = [
    # reshape
    (lambda: mx.reshape(mx.array(A6), (4,)), ValueError,
     r"^\[reshape\] Cannot reshape array of size 6 into shape \(4\)\.$"),
    (lambda: mx.reshape(mx.array(A6), (4, -1)), ValueError,
     r"^\[reshape\] Cannot reshape array of size 6 into shape \(4,1\)\.$"),
    (lambda: mx.reshape(mx.array(A6), (-2, 3)), ValueError,
     r"^\[reshape\] Cannot reshape array of size 6 into shape \(-2,3\)\.$"),
    (lambda: mx.reshape(mx.array(A6), (-1, -1)), ValueError,
     r"^\[reshape\] Reshape can only infer one dimension\.$"),
    (lambda: mx.reshape(mx.zeros((0, 3)), (-1, 0)), ValueError,
     r"^\[reshape\] Cannot infer the shape of an empty array\.$"),
    (lambda: mx.reshape(mx.array(A6), (2.0, 3)), TypeError, r"^\[reshape\] shape must be"),
    (lambda: mx.array(A6).reshape(5), ValueError, r"^\[reshape\] Cannot reshape array of size 6"),
    # flatten / unflatten
    (lambda: mx.flatten(mx.zeros((2, 3, 4)), 2, 1), ValueError,
     r"^\[flatten\] start_axis must be less than or equal to end_axis"),
    (lambda: mx.flatten(mx.zeros((2, 3, 4)), 5, 6), ValueError,
     r"^\[flatten\] start_axis must be less than or equal to end_axis"),
    (lambda: mx.flatten(mx.zeros((2, 3)), 0.5), TypeError, r"^\[flatten\] start_axis must be an integer"),
    (lambda: mx.unflatten(mx.zeros((2, 12)), 1, (5, -1)), ValueError,
     r"^\[unflatten\] Cannot unflatten axis 1 with size 12 into shape \(5,2\)\.$"),
    (lambda: mx.unflatten(mx.zeros((2, 12)), 1, (5, 3)), ValueError,
     r"^\[unflatten\] Cannot unflatten axis 1 with size 12 into shape \(5,3\)\.$"),
    (lambda: mx.unflatten(mx.zeros((2, 12)), 1, (-1, -1)), ValueError,
     r"^\[unflatten\] Can only infer one dimension\.$"),
    (lambda: mx.unflatten(mx.zeros((2, 12)), 1, ()), ValueError,
     r"^\[unflatten\] Shape to unflatten to cannot be empty\.$"),
    (lambda: mx.unflatten(mx.zeros((0,)), 0, (0, -1)), ValueError,
     r"^\[unflatten\] Cannot infer the shape of an empty axis\.$"),
    (lambda: mx.unflatten(mx.zeros((2, 12)), 2, (3, 4)), mx.AxisError,
     r"^\[unflatten\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.unflatten(mx.array(1), 0, (1,)), IndexError, r"^\[unflatten\] Axis 0 is out of bounds"),
    # squeeze / expand_dims
    (lambda: mx.squeeze(mx.zeros((1, 2, 1)), 1), ValueError,
     r"^\[squeeze\] Cannot squeeze axis 1 with size 2 which is not equal to 1\.$"),
    (lambda: mx.squeeze(mx.zeros((1, 2, 1)), 3), mx.AxisError,
     r"^\[squeeze\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.squeeze(mx.zeros((1, 2, 1)), (0, -3)), ValueError, r"^\[squeeze\] Received duplicate axes"),
    (lambda: mx.zeros((1, 2)).squeeze(1), ValueError, r"^\[squeeze\] Cannot squeeze axis 1"),
    (lambda: mx.expand_dims(mx.zeros((2, 3)), 3), mx.AxisError,
     r"^\[expand_dims\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.expand_dims(mx.zeros((2, 3)), (0, 4)), mx.AxisError,
     r"^\[expand_dims\] Axis 4 is out of bounds for array with 4 dimensions\.$"),
    (lambda: mx.expand_dims(mx.zeros((2, 3)), (0, -4)), ValueError,
     r"^\[expand_dims\] Received duplicate axes"),
    # transpose family
    (lambda: mx.transpose(mx.zeros((2, 3, 4)), (1, 0)), ValueError,
     r"^\[transpose\] Received 2 axes for array with 3 dimensions\.$"),
    (lambda: mx.transpose(mx.zeros((2, 3, 4)), (1, 1, 0)), ValueError,
     r"^\[transpose\] Repeat axes not allowed"),
    (lambda: mx.transpose(mx.zeros((2, 3, 4)), (1, 3, 0)), mx.AxisError,
     r"^\[transpose\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.zeros((2, 3)).transpose(0, 0), ValueError, r"^\[transpose\] Repeat axes not allowed"),
    (lambda: mx.zeros((2,)).mT, ValueError, r"^\[mT\] The array must have at least 2 dimensions"),
    (lambda: mx.swapaxes(mx.zeros((2, 3, 4)), 0, 3), mx.AxisError,
     r"^\[swapaxes\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.swapaxes(mx.zeros((2, 3)), 0, 1.0), TypeError, r"^\[swapaxes\] axis must be an integer"),
    (lambda: mx.moveaxis(mx.zeros((2, 3, 4)), 3, 0), mx.AxisError,
     r"^\[moveaxis\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.moveaxis(mx.zeros((2, 3, 4)), 0, -4), mx.AxisError, r"^\[moveaxis\] Axis -4 is out of bounds"),
    # broadcasting
    (lambda: mx.broadcast_to(mx.zeros((2, 3)), (3, 3)), ValueError,
     r"^\[broadcast_to\] Cannot broadcast array of shape \(2,3\) into shape \(3,3\)\.$"),
    (lambda: mx.broadcast_to(mx.zeros((2, 3)), (3,)), ValueError,
     r"^\[broadcast_to\] Cannot broadcast array of shape \(2,3\) into shape \(3\)\.$"),
    (lambda: mx.broadcast_to(mx.zeros((2, 1)), (2, 3, 1)), ValueError,
     r"^\[broadcast_to\] Cannot broadcast array of shape \(2,1\) into shape \(2,3,1\)\.$"),
    (lambda: mx.broadcast_to(mx.zeros((1,)), (-1,)), ValueError,
     r"^\[broadcast_to\] Negative dimensions are not allowed"),
    (lambda: mx.broadcast_arrays(mx.zeros((2, 1)), mx.zeros((3,)), mx.zeros((4,))), ValueError,
     r"^\[broadcast_arrays\] Shapes \(2,3\) and \(4\) cannot be broadcast\.$"),
    (lambda: mx.broadcast_shapes(), ValueError, r"^\[broadcast_shapes\] Must provide at least one shape\.$"),
    (lambda: mx.broadcast_shapes((2,), (3,)), ValueError,
     r"^\[broadcast_shapes\] Shapes \(2\) and \(3\) cannot be broadcast\.$"),
    (lambda: mx.broadcast_shapes((2, 3), (1, 3), (4,)), ValueError,
     r"^\[broadcast_shapes\] Shapes \(2,3\) and \(4\) cannot be broadcast\.$"),
    # concatenate / stack / unstack / split
    (lambda: mx.concatenate([]), ValueError, r"^\[concatenate\] No arrays provided for concatenation"),
    (lambda: mx.concatenate(mx.zeros((2, 3))), TypeError, r"^\[concatenate\] Expected a list or tuple"),
    (lambda: mx.concatenate([mx.zeros((2, 3)), mx.zeros((2, 4))]), ValueError,
     r"^\[concatenate\] All the input array dimensions must match exactly except for the "
     r"concatenation axis\. However, the provided shapes are \(2,3\), \(2,4\), and the "
     r"concatenation axis is 0\.$"),
    (lambda: mx.concatenate([mx.zeros((2, 3)), mx.zeros((2, 3)), mx.zeros((3,))]), ValueError,
     r"^\[concatenate\] All the input arrays must have the same number of dimensions\. However, "
     r"got arrays with dimensions 2 and 1\.$"),
    (lambda: mx.concatenate([mx.zeros((2, 3))] * 2, axis=2), mx.AxisError,
     r"^\[concatenate\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.concatenate([mx.array(1), mx.array(2)]), mx.AxisError,
     r"^\[concatenate\] Axis 0 is out of bounds for array with 0 dimensions\.$"),
    (lambda: mx.stack([]), ValueError, r"^\[stack\] No arrays provided for stacking"),
    (lambda: mx.stack([mx.zeros((2, 3)), mx.zeros((3, 2))]), ValueError,
     r"^\[stack\] All arrays must have the same shape; got \(2,3\) and \(3,2\)\.$"),
    (lambda: mx.stack([mx.zeros((2, 3))] * 2, 3), mx.AxisError,
     r"^\[stack\] Axis 3 is out of bounds for array with 3 dimensions\.$"),
    (lambda: mx.stack([mx.zeros((2, 3))] * 2, -4), mx.AxisError, r"^\[stack\] Axis -4 is out of bounds"),
    (lambda: mx.unstack(mx.zeros((2, 3)), axis=2), mx.AxisError,
     r"^\[unstack\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.unstack(mx.array(1)), mx.AxisError, r"^\[unstack\] Axis 0 is out of bounds"),
    (lambda: mx.unstack(mx.zeros((2, 3)), 1), TypeError, r"positional argument"),
    (lambda: mx.split(mx.array(A6), 4), ValueError,
     r"^\[split\] Array split does not result in sub arrays with equal size: attempting 4 splits "
     r"along axis 0 for shape \(6\)\.$"),
    (lambda: mx.split(mx.array(A6), 0), ValueError,
     r"^\[split\] num_splits must be positive and non-zero but got 0\.$"),
    (lambda: mx.split(mx.array(A6), -2), ValueError,
     r"^\[split\] num_splits must be positive and non-zero but got -2\.$"),
    (lambda: mx.split(mx.array(A6), 2, axis=1), mx.AxisError,
     r"^\[split\] Axis 1 is out of bounds for array with 1 dimensions\.$"),
    (lambda: mx.split(mx.array(1), 1), mx.AxisError, r"^\[split\] Axis 0 is out of bounds"),
    (lambda: mx.split(mx.array(A6), 2.0), TypeError, r"^\[split\] indices_or_sections must be an integer"),
    (lambda: mx.split(mx.array(A6), [1.5]), TypeError, r"^\[split\] indices_or_sections must be a sequence"),
    # tile / repeat
    (lambda: mx.tile(mx.zeros((2, 3)), -1), ValueError,
     r"^\[tile\] Negative repetitions are not allowed; got reps \(-1,\)\.$"),
    (lambda: mx.tile(mx.zeros((2, 3)), "ab"), TypeError, r"^\[tile\] reps must be"),
    (lambda: mx.repeat(mx.zeros((2, 3)), -1, 1), ValueError,
     r"^\[repeat\] Number of repeats cannot be negative; got -1\.$"),
    (lambda: mx.repeat(mx.zeros((2, 3)), 2, 2), mx.AxisError,
     r"^\[repeat\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.repeat(mx.array(3), 2, 0), mx.AxisError, r"^\[repeat\] Axis 0 is out of bounds"),
    (lambda: mx.repeat(mx.zeros((2, 3)), [1, 2], 0), TypeError, r"^\[repeat\] repeats must be an integer"),
    # pad
    (lambda: mx.pad(mx.zeros((2, 3)), [(1, 0), (0, 2), (1, 1)]), ValueError,
     r"^\[pad\] Invalid number of padding sizes \(3\) passed to pad with axes of size 2\.$"),
    (lambda: mx.pad(mx.zeros((2, 3)), -1), ValueError,
     r"^\[pad\] Invalid low padding size \(-1\) passed to pad for axis 0\. Padding sizes must "
     r"be non-negative\.$"),
    (lambda: mx.pad(mx.zeros((2, 3)), [(0, 0), (1, -2)]), ValueError,
     r"^\[pad\] Invalid high padding size \(-2\) passed to pad for axis 1\."),
    (lambda: mx.pad(mx.zeros((2, 3)), 1, "wrap"), ValueError,
     r"^\[pad\] Invalid padding mode \(wrap\) passed to pad"),
    (lambda: mx.pad(mx.zeros((2, 3)), (1, 2, 3)), TypeError, r"^\[pad\] pad_width must be"),
    (lambda: mx.pad(mx.zeros((2, 3)), [(1,)]), TypeError, r"^\[pad\] pad_width must be"),
    (lambda: mx.pad(mx.zeros((2, 3)), [1, (1, 2)]), TypeError, r"^\[pad\] pad_width must be"),
    (lambda: mx.pad(mx.zeros((2, 3)), 1.5), TypeError, r"^\[pad\] pad_width must be an integer"),
    (lambda: mx.pad(mx.zeros((0, 3)), 1, "reflect"), ValueError,
     r"^\[pad\] Cannot pad empty axis 0 using mode 'reflect'\.$"),
    (lambda: mx.pad(mx.zeros((0, 3)), 1, "symmetric"), ValueError,
     r"^\[pad\] Cannot pad empty axis 0 using mode 'symmetric'\.$"),
    (lambda: mx.pad(mx.zeros((2, 3)), 1, constant_values=mx.array([7, 8])), ValueError,
     r"^\[pad\] constant_values must be a scalar"),
    # roll / flip / triangles / diff
    (lambda: mx.roll(mx.zeros((2, 3)), (1,), (0, 1)), ValueError,
     r"^\[roll\] At least one shift value per axis is required, 1 provided for 2 axes\.$"),
    (lambda: mx.roll(mx.zeros((2, 3)), 1, 2), mx.AxisError,
     r"^\[roll\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.roll(mx.zeros((2, 3)), 1, (0, -3)), mx.AxisError, r"^\[roll\] Axis -3 is out of bounds"),
    (lambda: mx.roll(mx.zeros((2, 3)), 1.5), TypeError, r"^\[roll\] shift must be"),
    (lambda: mx.flip(mx.zeros((2, 3)), 2), mx.AxisError,
     r"^\[flip\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.tril(mx.zeros((3,))), ValueError, r"^\[tril\] array must be at least 2-D; got shape \(3\)\.$"),
    (lambda: mx.triu(mx.array(1)), ValueError, r"^\[triu\] array must be at least 2-D; got shape \(\)\.$"),
    (lambda: mx.tril(mx.zeros((3, 3)), 1.5), TypeError, r"^\[tril\] k must be an integer"),
    (lambda: mx.diff(mx.array(A6), -1), ValueError, r"^\[diff\] Order `n` must be non-negative; got -1\.$"),
    (lambda: mx.diff(mx.zeros((2, 3)), axis=2), mx.AxisError,
     r"^\[diff\] Axis 2 is out of bounds for array with 2 dimensions\.$"),
    (lambda: mx.diff(mx.array(2)), mx.AxisError, r"^\[diff\] Axis -1 is out of bounds"),
    # as_strided
    (lambda: mx.as_strided(mx.array(A6), (2, 3), (1,)), ValueError,
     r"^\[as_strided\] shape \(2,3\) and strides \(1\) must have the same length\.$"),
    (lambda: mx.as_strided(mx.array(A6), (4,), (2,)), ValueError,
     r"^\[as_strided\] A view of shape \(4\) with strides \(2\) and offset 0 reaches elements "
     r"\[0, 6\], outside an array of size 6\.$"),
    (lambda: mx.as_strided(mx.array(A6), (3,), (-1,), 1), ValueError,
     r"^\[as_strided\] .* reaches elements \[-1, 1\]"),
    (lambda: mx.as_strided(mx.array(A6), (1,), (1,), 6), ValueError, r"^\[as_strided\] .* \[6, 6\]"),
    (lambda: mx.as_strided(mx.array(A6), (-1,)), ValueError, r"^\[as_strided\] Negative dimensions"),
]


@pytest.mark.parametrize("fn,exc,msg", ERRORS)
def test_errors(fn, exc, msg):
    with pytest.raises(exc, match=msg):
        fn()


def test_axis_errors_are_index_errors_too():
    # MLX raises IndexError for bad axes; AxisError is both
    for fn in [lambda: mx.split(mx.array(A6), 2, axis=1), lambda: mx.flip(mx.zeros((2,)), 1),
               lambda: mx.transpose(mx.zeros((2, 3)), (0, 2))]:
        with pytest.raises(IndexError):
            fn()
        with pytest.raises(ValueError):
            fn()


def test_bfloat16_roundtrip_through_views():
    x = rand((2, 3, 4), "bfloat16")
    a = mx.array(x, dtype=mx.bfloat16)
    got = mx.reshape(mx.transpose(a, (2, 0, 1)), (4, 6))
    assert got.dtype == mx.bfloat16
    np.testing.assert_array_equal(np.asarray(got).astype(np.float32),
                                  x.transpose(2, 0, 1).reshape(4, 6).astype(np.float32))
    assert np.asarray(got).dtype == ml_dtypes.bfloat16
