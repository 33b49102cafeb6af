"""mx.random: threefry bits, keys, the global key and every sampler, checked against vectors
recorded from MLX 0.32.4 (same keys must give the same numbers), plus statistics, dtypes,
shapes, errors and the transformation rules."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from mx.core import random as mxr
from gradcheck import check_grads, check_vmap

K = mx.random.key

# ---------------------------------------------------------------------------------------
# vectors recorded from MLX 0.32.4 (/tmp/mlxenv) for the same keys
# ---------------------------------------------------------------------------------------
KEYS = {0: [0, 0], 42: [0, 42], 1099511627783: [256, 7],
        18446744073709551615: [4294967295, 4294967295]}
SPLIT0 = [[4146024105, 967050713], [2718843009, 1272950319]]
SPLIT42_3 = [[3134548294, 3733159049], [3746501087, 894150801], [801545058, 2363201431]]
U0_5 = [0.574500560760498, 0.09968609362840652, 0.39316028356552124, 0.8941783905029297,
        0.5965665578842163]
U42_2x3 = [[0.7298188805580139, 0.8691938519477844, 0.8723002672195435],
           [0.20818570256233215, 0.18662425875663757, 0.5502257347106934]]
U1_LOHI = [0.8427627086639404, -0.38771963119506836, 2.446648597717285, 0.3584563732147217]
U3_ARR = [[0.47707536816596985, 1.0111194849014282], [3.031216621398926, 2.339207172393799]]
U1_F16 = [0.83056640625, 0.166015625, 0.84326171875, 0.64306640625, 0.56884765625,
          0.6142578125]
U1_BF16 = [0.83203125, 0.166015625, 0.84375, 0.64453125, 0.5703125, 0.61328125]
N0_6 = [0.1878441572189331, -1.2833421230316162, 0.649418294429779, 1.2490599155426025,
        0.24447001516819, -0.11744941771030426]
N5_LS = [[1.9908854961395264, 0.9236712455749512], [1.3933382034301758, 2.1078076362609863]]
N5_F16 = [0.98193359375, -1.15234375, -0.21337890625, 1.21484375]
N5_F64 = [0.9817711337299793, -1.1526575540661277, -0.21332363955985822, 1.2156155891410338]
N5_C64 = [[0.33946874737739563, 0.37068116664886475], [0.38595983386039734, 0.4044840633869171],
          [-1.0703775882720947, 0.15367870032787323]]
RI0 = [3, 6, 4, 2, 3, 4, 2, 2, 7, 7]
RI0_I8 = [-1, 2, 0, -3, -2, 0, -2, -2, 4, 3]
RI0_FLOATB = [2, 1, 1, 2, 0, 2, 1, 2]
RI0_ARR = [[4, 10], [63, 36]]
B0_03 = [False, False, False, False, False, True, False, False, True, False, False, False,
         False, True, True, False]
B0_ARR = [[False, True], [False, True]]
LOGITS = [[0.0, 1.0, 2.0, -1.0], [3.0, 0.5, 0.5, 0.0], [-2.0, -2.0, 0.0, 1.0]]
CAT = [2, 0, 2]
CAT_NS = [[2, 2, 2, 2, 1], [0, 0, 0, 0, 3], [3, 2, 3, 2, 3]]
CAT_AX0_SHAPE = [[1, 0, 0, 1], [1, 1, 1, 2]]
PERM10 = [5, 7, 1, 2, 4, 6, 0, 8, 3, 9]
PERM_X_AX1 = [[0, 2, 1, 3], [4, 6, 5, 7], [8, 10, 9, 11]]
PERM_X_AX0 = [[0, 1, 2, 3], [8, 9, 10, 11], [4, 5, 6, 7]]
GUMBEL = [0.8477025032043457, -0.8987411856651306, 1.066339373588562, 1.1667301654815674,
          -0.5924872159957886]
LAPLACE = [0.2777615189552307, 4.526722431182861, -0.08078408241271973, -0.2504761219024658,
           3.2306671142578125]
TRUNC = [0.501562237739563, -0.7426841259002686, 0.6397305727005005, 0.7005913853645325,
         -0.5451495051383972]
COV = [[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]]
MVN = [[0.09150761365890503, -1.046816349029541, 0.7025339603424072],
       [3.709397077560425, 0.0990447998046875, 1.9454760551452637]]
SEED7_U = [0.07774583250284195, 0.17445430159568787, 0.8326463103294373]
SEED7_N = [0.21397587656974792, -0.1590525358915329, 0.5431252121925354]
SEED7_RI = [2, 95, 96, 0, 9]
SEED7_STATE = [4115690175, 2622646953]
VMAP_KEYS_U = [[0.09900642931461334, 0.4896336793899536],
               [0.9070495367050171, 0.44592955708503723],
               [0.6188594102859497, 0.8104922771453857]]
# gradients MLX gives for uniform(lo, hi, (3,), key(0)), normal((3,), loc, scale, key(0)) and
# truncated_normal(lo, hi, (3,), key(0)), each summed
GRAD_UNIFORM = (1.0869662761688232, 1.9130337238311768)
GRAD_NORMAL_SCALE = 1.6733545064926147
GRAD_TRUNC = (0.7522771954536438, 0.6350989937782288)


def _np(x):
    return np.array(x)


def _same_bits(got, want_list, dtype):
    want = np.array(want_list, dtype=dtype)
    got = _np(got)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype)
    np.testing.assert_array_equal(got, want)


# ---------------------------------------------------------------------------------------
# an independent scalar reference of Threefry-2x32 and MLX's counter layout
# ---------------------------------------------------------------------------------------
def _ref_threefry(k0, k1, c0, c1):
    m = 0xFFFFFFFF
    rot = [13, 15, 26, 6, 17, 29, 16, 24]
    ks = [k0, k1, k0 ^ k1 ^ 0x1BD11BDA]
    x = [(c0 + ks[0]) & m, (c1 + ks[1]) & m]
    for r in range(20):
        x[0] = (x[0] + x[1]) & m
        x[1] = ((x[1] << rot[r % 8]) | (x[1] >> (32 - rot[r % 8]))) & m
        x[1] ^= x[0]
        if r % 4 == 3:
            j = r // 4 + 1
            x[0] = (x[0] + ks[j % 3]) & m
            x[1] = (x[1] + ks[(j + 1) % 3] + j) & m
    return x


def _ref_bits(k0, k1, n):
    half = (n + 1) // 2
    first, second = [], []
    for i in range(half):
        c1 = half + i if half + i < n else 0
        a, b = _ref_threefry(k0, k1, i, c1)
        first.append(a)
        second.append(b)
    return (first + second)[:n]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1), st.integers(0, 17))
def test_bits_match_scalar_threefry_reference(k0, k1, n):
    key = mx.array(np.array([k0, k1], dtype=np.uint32))
    _same_bits(mx.random.bits((n,), key=key), _ref_bits(k0, k1, n), np.uint32)


def test_bits_vectors_published_with_mlx():
    # the expected values in MLX's own C++ tests (generated there from JAX's threefry)
    k0, k1 = K(0), K(1)
    assert mx.random.bits([], key=k0).item() == 1797259609
    assert mx.random.bits([], 2, key=k0).item() == 345
    assert mx.random.bits([], 1, key=k0).item() == 89
    assert mx.random.bits([], key=k1).item() == 507451445
    assert mx.random.bits([], 2, key=k1).item() == 6197
    assert mx.random.bits([], 1, key=k1).item() == 53
    _same_bits(mx.random.bits([3, 1], key=k0), [[4146024105], [1351547692], [2718843009]],
               np.uint32)
    _same_bits(mx.random.bits([5], 2, key=k0), [20137, 63263, 64300, 20622, 16513], np.uint16)
    _same_bits(mx.random.bits([7], 2, key=k0),
               [20137, 63263, 1497, 14756, 16513, 41486, 44591], np.uint16)
    _same_bits(mx.random.bits([8], 2, key=k0),
               [20137, 63263, 1497, 14756, 16513, 41486, 44591, 19423], np.uint16)
    keys = mx.array(np.array([[0, 0], [1, 1]], dtype=np.uint32))
    _same_bits(mx.vmap(lambda k: mx.random.bits([3], key=k))(keys),
               [[4146024105, 1351547692, 2718843009], [3725146706, 1802982961, 1349634643]],
               np.uint32)
    _same_bits(mx.vmap(lambda k: mx.random.bits([3], key=k), in_axes=1)(keys),
               [[2441914641, 1110694964, 3819641963]] * 2, np.uint32)
    keys3 = mx.array(np.repeat(np.arange(6, dtype=np.uint32), 2).reshape(3, 2, 2))
    _same_bits(mx.vmap(mx.vmap(lambda k: mx.random.bits([2], key=k)))(keys3),
               [[[928981903, 3453687069], [3606183818, 460005496]],
                [[2799733733, 856293553], [4081856343, 3445925136]],
                [[2775548010, 1430281703], [305173070, 2615843348]]], np.uint32)


def test_bits_dtypes_and_shapes():
    for width, dt in ((1, mx.uint8), (2, mx.uint16), (4, mx.uint32)):
        b = mx.random.bits((2, 3), width, key=K(0))
        assert b.dtype == dt and b.shape == (2, 3)
    assert mx.random.bits(key=K(0)).shape == ()
    assert mx.random.bits((0, 4), key=K(0)).shape == (0, 4)
    # narrow widths read the bytes of the 32-bit words, little-endian first
    words = _np(mx.random.bits((3,), key=K(9)))
    np.testing.assert_array_equal(_np(mx.random.bits((6,), 2, key=K(9))),
                                  words.astype("<u4").view(np.uint16))
    np.testing.assert_array_equal(_np(mx.random.bits((12,), 1, key=K(9))),
                                  words.astype("<u4").view(np.uint8))


# ---------------------------------------------------------------------------------------
# keys, split, seed and the global key
# ---------------------------------------------------------------------------------------
def test_key_layout():
    for seed, want in KEYS.items():
        k = K(seed)
        assert k.dtype == mx.uint32 and k.shape == (2,)
        assert k.tolist() == want


def test_split_vectors():
    _same_bits(mx.random.split(K(0)), SPLIT0, np.uint32)
    _same_bits(mx.random.split(K(42), 3), SPLIT42_3, np.uint32)
    assert mx.random.split(K(3), 0).shape == (0, 2)
    # split(key, num) are the rows of bits((num, 2))
    np.testing.assert_array_equal(_np(mx.random.split(K(5), 4)),
                                  _np(mx.random.bits((4, 2), key=K(5))))


def test_state_is_a_list_holding_a_key():
    assert isinstance(mx.random.state, list) and len(mx.random.state) == 1
    k = mx.random.state[0]
    assert k.dtype == mx.uint32 and k.shape == (2,)


def test_seed_makes_the_global_stream_reproducible_and_matches_mlx():
    state = mx.random.state
    mx.random.seed(7)
    assert mx.random.state is state
    assert mx.random.state[0].tolist() == [0, 7]
    np.testing.assert_array_equal(_np(mx.random.uniform(shape=(3,))),
                                  np.array(SEED7_U, np.float32))
    np.testing.assert_allclose(_np(mx.random.normal(shape=(3,))), SEED7_N, rtol=1e-6, atol=1e-6)
    assert mx.random.randint(0, 100, (5,)).tolist() == SEED7_RI
    assert mx.random.state[0].tolist() == SEED7_STATE
    mx.random.seed(7)
    again = _np(mx.random.uniform(shape=(3,)))
    np.testing.assert_array_equal(again, np.array(SEED7_U, np.float32))
    mx.random.seed(8)
    assert not np.array_equal(_np(mx.random.uniform(shape=(3,))), again)


def test_calls_without_key_split_the_global_key():
    mx.random.seed(11)
    a = mx.random.normal((4,))
    first, second = mx.random.split(K(11))
    assert mx.random.state[0].tolist() == first.tolist()
    np.testing.assert_array_equal(_np(a), _np(mx.random.normal((4,), key=second)))
    # one split per call, also for samplers built from several random draws
    for fn in (lambda **kw: mx.random.categorical(mx.zeros((3, 5)), num_samples=2, **kw),
               lambda **kw: mx.random.truncated_normal(-1, 1, (4,), **kw),
               lambda **kw: mx.random.permutation(mx.arange(6), **kw),
               lambda **kw: mx.random.multivariate_normal(mx.zeros(2), mx.eye(2), (3,), **kw)):
        mx.random.seed(3)
        got = _np(fn())
        np.testing.assert_array_equal(got, _np(fn(key=mx.random.split(K(3))[1])))


def test_lazy_global_key_gives_the_same_stream():
    mx.random.seed(21)
    eager = [_np(mx.random.uniform(shape=(2,))) for _ in range(3)]
    mx.random.state[0] = mx.random.split(K(21), 1)[0] * 0 + K(21)   # unevaluated graph
    assert mx.random.state[0]._data is None
    lazy = [_np(mx.random.uniform(shape=(2,))) for _ in range(3)]
    for a, b in zip(eager, lazy):
        np.testing.assert_array_equal(a, b)


def test_compiled_draws_follow_the_global_stream():
    if not hasattr(mx, "compile"):
        pytest.skip("mx.compile is not available")
    draw = mx.compile(lambda x: x + mx.random.uniform(shape=(3,)))
    mx.random.seed(7)
    first, second = draw(mx.zeros(3)), draw(mx.zeros(3))
    np.testing.assert_array_equal(_np(first), np.array(SEED7_U, np.float32))
    mx.random.seed(7)
    mx.random.uniform(shape=(3,))
    np.testing.assert_array_equal(_np(second), _np(mx.random.uniform(shape=(3,))))


def test_samplers_are_lazy_in_the_key():
    k = mx.random.split(K(2))[1]        # unevaluated key
    u = mx.random.uniform(shape=(3,), key=k)
    assert u._data is None and k._data is None
    evaluated = mx.array(k.tolist(), dtype=mx.uint32)
    np.testing.assert_array_equal(_np(u), _np(mx.random.uniform(shape=(3,), key=evaluated)))


# ---------------------------------------------------------------------------------------
# samplers against MLX's numbers
# ---------------------------------------------------------------------------------------
def test_uniform_vectors_bit_identical():
    _same_bits(mx.random.uniform(shape=(5,), key=K(0)), U0_5, np.float32)
    _same_bits(mx.random.uniform(shape=(2, 3), key=K(42)), U42_2x3, np.float32)
    _same_bits(mx.random.uniform(-2.0, 3.0, (4,), key=K(1)), U1_LOHI, np.float32)
    _same_bits(mx.random.uniform(mx.array([0.0, 1.0]), mx.array([[2.0], [5.0]]), (2, 2), key=K(3)),
               U3_ARR, np.float32)
    _same_bits(mx.random.uniform(shape=(6,), dtype=mx.float16, key=K(1)), U1_F16, np.float16)
    bf = mx.random.uniform(shape=(6,), dtype=mx.bfloat16, key=K(1))
    assert bf.dtype == mx.bfloat16
    _same_bits(bf.astype(mx.float32), U1_BF16, np.float32)


def test_uniform_caps_below_one_like_mlx():
    # key(43287483)'s first word is 4294967222, which rounds to 1.0 in float32: MLX caps the
    # unit sample at the largest value below 1 of the dtype (values recorded from MLX)
    k = K(43287483)
    assert mx.random.bits((1,), key=k).item() == 4294967222
    assert mx.random.uniform(shape=(1,), key=k).item() == 0.9999999403953552
    assert mx.random.uniform(shape=(1,), dtype=mx.float16, key=k).item() == 0.99951171875
    assert mx.random.uniform(shape=(1,), dtype=mx.bfloat16, key=k).item() == 0.99609375
    assert mx.random.uniform(-2.0, 3.0, (1,), key=k).item() == 2.999999523162842
    # the scaled value itself is not clamped: it may round up to high
    assert mx.random.uniform(1e8, 1e8 + 8, (1,), key=k).item() == 100000008.0
    assert mx.random.randint(0, 10, (1,), key=k).item() == 9


def test_normal_vectors():
    np.testing.assert_allclose(_np(mx.random.normal((6,), key=K(0))), N0_6, rtol=1e-6, atol=1e-6)
    n = mx.random.normal((2, 2), loc=1.5, scale=0.5, key=K(5))
    np.testing.assert_allclose(_np(n), N5_LS, rtol=1e-6, atol=1e-6)
    h = mx.random.normal((4,), mx.float16, key=K(5))
    assert h.dtype == mx.float16
    np.testing.assert_allclose(_np(h).astype(np.float32), N5_F16, rtol=1e-3)
    d = mx.random.normal((4,), mx.float64, key=K(5))
    assert d.dtype == mx.float64
    np.testing.assert_allclose(_np(d), N5_F64, rtol=1e-6)
    c = mx.random.normal((3,), mx.complex64, key=K(5))
    assert c.dtype == mx.complex64 and c.shape == (3,)
    np.testing.assert_allclose(_np(c).view(np.float32).reshape(3, 2), N5_C64, rtol=1e-6, atol=1e-6)


def test_normal_loc_scale_arrays_broadcast():
    n = mx.random.normal((3,), loc=mx.zeros((2, 1)), key=K(0))
    assert n.shape == (2, 3)
    np.testing.assert_array_equal(_np(n)[0], _np(n)[1])
    z = _np(mx.random.normal((4,), key=K(0)))
    got = _np(mx.random.normal((4,), loc=mx.array([0.0, 1, 2, 3]), scale=mx.array([1.0, 2, 3, 4]),
                               key=K(0)))
    np.testing.assert_allclose(got, z * np.arange(1, 5) + np.arange(4), rtol=1e-6)
    assert mx.random.normal((2,), loc=mx.array(1.0, mx.float64), key=K(0)).dtype == mx.float32


def test_randint_vectors():
    r = mx.random.randint(0, 10, (10,), key=K(0))
    assert r.dtype == mx.int32 and r.tolist() == RI0
    r8 = mx.random.randint(-5, 7, (10,), dtype=mx.int8, key=K(0))
    assert r8.dtype == mx.int8 and r8.tolist() == RI0_I8
    assert mx.random.randint(0.5, 3.7, (8,), key=K(0)).tolist() == RI0_FLOATB
    r = mx.random.randint(mx.array([0, 10]), mx.array([[5], [100]]), (2, 2), key=K(0))
    assert r.tolist() == RI0_ARR
    # high <= low gives low everywhere (the clamp to high - 1 comes first)
    assert mx.random.randint(5, 3, (4,), key=K(0)).tolist() == [5] * 4
    assert mx.random.randint(3, 3, (4,), key=K(0)).tolist() == [3] * 4
    for dt in (mx.uint8, mx.uint32, mx.int64, mx.bool_):
        assert mx.random.randint(0, 2, (3,), dtype=dt, key=K(0)).dtype == dt


def test_bernoulli_vectors():
    b = mx.random.bernoulli(0.3, (16,), key=K(0))
    assert b.dtype == mx.bool_ and b.tolist() == B0_03
    assert mx.random.bernoulli(mx.array([[0.1, 0.9], [0.5, 0.5]]), key=K(0)).tolist() == B0_ARR
    assert mx.random.bernoulli(key=K(0)).shape == ()
    assert mx.random.bernoulli(mx.array([0.1, 0.9]), (3, 2), key=K(0)).shape == (3, 2)
    assert mx.random.bernoulli(mx.array(0.5, mx.float16), (3,), key=K(0)).dtype == mx.bool_
    assert not mx.random.bernoulli(-1.0, (50,), key=K(0)).any().item()
    assert mx.random.bernoulli(5.0, (50,), key=K(0)).all().item()


def test_categorical_vectors():
    lg = mx.array(LOGITS)
    c = mx.random.categorical(lg, key=K(2))
    assert c.dtype == mx.uint32 and c.tolist() == CAT
    assert mx.random.categorical(lg, num_samples=5, key=K(2)).tolist() == CAT_NS
    assert mx.random.categorical(lg, axis=0, shape=(2, 4), key=K(2)).tolist() == CAT_AX0_SHAPE
    assert mx.random.categorical(lg, axis=0, key=K(2)).shape == (4,)
    c = mx.random.categorical(mx.zeros((5, 4, 3)), -2, num_samples=7, key=K(2))
    assert c.shape == (5, 3, 7)
    inf = float("inf")
    assert mx.random.categorical(mx.array([1.0, -2.0, inf, 4.0, 3.0]), key=K(0)).item() == 2
    assert mx.random.categorical(mx.array([-inf, -2.0, -inf, -inf]), key=K(0)).item() == 1


def test_permutation_vectors():
    p = mx.random.permutation(10, key=K(4))
    assert p.dtype == mx.uint32 and p.tolist() == PERM10
    x = mx.arange(12).reshape(3, 4)
    assert mx.random.permutation(x, axis=1, key=K(4)).tolist() == PERM_X_AX1
    assert mx.random.permutation(x, axis=-1, key=K(4)).tolist() == PERM_X_AX1
    assert mx.random.permutation(x, key=K(4)).tolist() == PERM_X_AX0
    assert mx.random.permutation(0, key=K(4)).shape == (0,)
    # the order sorts the random words
    words = _np(mx.random.bits((100,), key=K(4)))
    np.testing.assert_array_equal(_np(mx.random.permutation(100, key=K(4))),
                                  np.argsort(words, kind="stable"))


def test_gumbel_laplace_truncated_vectors():
    np.testing.assert_allclose(_np(mx.random.gumbel((5,), key=K(6))), GUMBEL, rtol=1e-6)
    lap = mx.random.laplace((5,), loc=1.0, scale=2.0, key=K(6))
    np.testing.assert_allclose(_np(lap), LAPLACE, rtol=1e-6, atol=1e-6)
    tn = mx.random.truncated_normal(-1.0, 2.0, (5,), key=K(6))
    np.testing.assert_allclose(_np(tn), TRUNC, rtol=2e-6, atol=2e-6)
    assert mx.random.laplace((3,), mx.float64, key=K(6)).dtype == mx.float64
    assert mx.random.gumbel((3,), mx.float16, key=K(6)).dtype == mx.float16


def test_truncated_normal_bounds_and_shapes():
    lower = mx.array([[-2.0, -3.0]])
    upper = mx.array([[0.0], [3.0], [1.5]])
    x = mx.random.truncated_normal(lower, upper, key=K(1))
    assert x.shape == (3, 2)
    assert bool(mx.all(x <= upper).item()) and bool(mx.all(x >= lower).item())
    assert mx.random.truncated_normal(2.0, -2.0, (3,), key=K(1)).tolist() == [2.0] * 3
    assert mx.random.truncated_normal(-1, 1, key=K(1)).shape == ()
    assert mx.random.truncated_normal(-1, 1, (2,), mx.float16, key=K(1)).dtype == mx.float16


def test_multivariate_normal_vector_and_shapes():
    m = mx.random.multivariate_normal(mx.array([1.0, -1.0, 0.5]), mx.array(COV), (2,), key=K(8))
    np.testing.assert_allclose(_np(m), MVN, rtol=1e-5, atol=1e-5)
    mvn = mx.random.multivariate_normal
    assert mvn(mx.zeros((2, 3)), mx.eye(3), (4, 1), key=K(8)).shape == (4, 2, 3)
    assert mvn(mx.zeros(3), mx.zeros((1, 2, 3, 3)), (1000, 2), key=K(8)).shape == (1000, 2, 3)
    assert mvn(mx.zeros(3), mx.eye(3), key=K(8)).shape == (3,)
    mixed = mvn(mx.zeros(3, mx.int32), mx.eye(3, dtype=mx.float16), key=K(8))
    assert mixed.dtype == mx.float32


def test_vmap_over_keys_matches_mlx_and_a_loop():
    ks = mx.random.split(K(3), 3)
    _same_bits(mx.vmap(lambda k: mx.random.uniform(shape=(2,), key=k))(ks), VMAP_KEYS_U, np.float32)
    for fn in (lambda k: mx.random.normal((2, 3), key=k),
               lambda k: mx.random.split(k, 3),
               lambda k: mx.random.randint(0, 9, (4,), key=k),
               lambda k: mx.random.permutation(7, key=k),
               lambda k: mx.random.categorical(mx.zeros((2, 5)), num_samples=3, key=k),
               lambda k: mx.random.bits((5,), 2, key=k)):
        check_vmap(fn, [ks])
    check_vmap(lambda k: mx.random.gumbel((3,), key=k), [ks.T], in_axes=1)


# ---------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------
N = 200_000


def test_uniform_and_normal_moments():
    u = _np(mx.random.uniform(-1.0, 3.0, (N,), key=K(100))).astype(np.float64)
    assert u.min() >= -1.0 and u.max() < 3.0
    assert abs(u.mean() - 1.0) < 0.02 and abs(u.var() - 16 / 12) < 0.02
    z = _np(mx.random.normal((N,), loc=2.0, scale=3.0, key=K(101))).astype(np.float64)
    assert abs(z.mean() - 2.0) < 0.03 and abs(z.std() - 3.0) < 0.03
    c = _np(mx.random.normal((N // 2,), mx.complex64, key=K(102)))
    assert abs(c.real.var() - 0.5) < 0.01 and abs(c.imag.var() - 0.5) < 0.01
    assert abs(np.mean(c.real * c.imag)) < 0.01


def test_integer_and_boolean_frequencies():
    r = _np(mx.random.randint(-3, 4, (N,), key=K(103)))
    counts = np.bincount(r + 3, minlength=7)
    assert r.min() == -3 and r.max() == 3
    np.testing.assert_allclose(counts / N, 1 / 7, atol=0.005)
    b = _np(mx.random.bernoulli(mx.array([0.1, 0.5, 0.9]), (N // 3, 3), key=K(104)))
    np.testing.assert_allclose(b.mean(axis=0), [0.1, 0.5, 0.9], atol=0.01)


def test_categorical_frequencies_follow_softmax():
    logits = np.array([0.0, 1.0, -1.0, 2.0], np.float32)
    s = _np(mx.random.categorical(mx.array(logits), num_samples=N // 2, key=K(105)))
    p = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(np.bincount(s, minlength=4) / s.size, p, atol=0.01)


def test_gumbel_laplace_truncated_moments():
    g = _np(mx.random.gumbel((N,), key=K(106))).astype(np.float64)
    assert abs(g.mean() - 0.5772156649) < 0.02 and abs(g.var() - math.pi ** 2 / 6) < 0.05
    lap = _np(mx.random.laplace((N,), loc=1.0, scale=0.5, key=K(107))).astype(np.float64)
    assert abs(lap.mean() - 1.0) < 0.01 and abs(lap.var() - 2 * 0.25) < 0.02
    a, b = -0.5, 1.5
    t = _np(mx.random.truncated_normal(a, b, (N,), key=K(108))).astype(np.float64)
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    mean = (pdf(a) - pdf(b)) / (cdf(b) - cdf(a))
    assert t.min() >= a and t.max() <= b and abs(t.mean() - mean) < 0.01


def test_permutations_are_permutations_and_multivariate_covariance():
    for s in range(5):
        p = _np(mx.random.permutation(50, key=K(s)))
        np.testing.assert_array_equal(np.sort(p), np.arange(50))
    x = _np(mx.random.multivariate_normal(mx.array([1.0, -1.0, 0.5]), mx.array(COV), (N // 2,),
                                          key=K(109))).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=0), [1.0, -1.0, 0.5], atol=0.02)
    np.testing.assert_allclose(np.cov(x.T), COV, atol=0.03)


@settings(max_examples=40, deadline=None)
@given(st.floats(-1024.0, 1024.0, width=32), st.floats(2.0 ** -10, 1024.0, width=32),
       st.integers(0, 2 ** 64 - 1))
def test_uniform_in_half_open_interval(lo, width, seed):
    hi = np.float32(lo) + np.float32(width)
    if hi <= np.float32(lo):
        return
    u = _np(mx.random.uniform(float(lo), float(hi), (64,), key=K(seed)))
    assert u.dtype == np.float32 and u.min() >= np.float32(lo) and u.max() <= hi


# ---------------------------------------------------------------------------------------
# gradients and batching of the float parameters
# ---------------------------------------------------------------------------------------
def test_gradients_match_mlx():
    k = K(0)
    g = mx.grad(lambda lo, hi: mx.random.uniform(lo, hi, (3,), key=k).sum(), argnums=(0, 1))(
        mx.array(0.0), mx.array(2.0))
    np.testing.assert_allclose([g[0].item(), g[1].item()], GRAD_UNIFORM, rtol=1e-6)
    g = mx.grad(lambda loc, sc: mx.random.normal((3,), loc=loc, scale=sc, key=k).sum(),
                argnums=(0, 1))(mx.array(0.0), mx.array(2.0))
    np.testing.assert_allclose([g[0].item(), g[1].item()], [3.0, GRAD_NORMAL_SCALE], rtol=1e-6)
    g = mx.grad(lambda lo, hi: mx.random.truncated_normal(lo, hi, (3,), key=k).sum(),
                argnums=(0, 1))(mx.array(-1.0), mx.array(2.0))
    np.testing.assert_allclose([g[0].item(), g[1].item()], GRAD_TRUNC, rtol=1e-5)
    g = mx.grad(lambda p: mx.random.bernoulli(p, key=k).astype(mx.float32))(mx.array(0.3))
    assert g.item() == 0
    g = mx.grad(lambda m: mx.random.multivariate_normal(m, mx.array(COV), (4,), key=k).sum())(
        mx.zeros(3))
    assert g.tolist() == [4.0, 4.0, 4.0]


def test_normal_float64_finite_differences():
    k = K(12)
    check_grads(lambda loc, scale: mx.random.normal((4,), mx.float64, loc=loc, scale=scale, key=k),
                [np.array([0.5, -1.0, 2.0, 0.0]), np.array([1.5])])


def test_uniform_jvp_and_vmap_over_bounds():
    k = K(0)
    u = _np(mx.random.uniform(shape=(3,), key=k))
    _, t = mx.jvp(lambda lo: mx.random.uniform(lo, 1.0, (3,), key=k), [mx.array(0.0)],
                  [mx.array(1.0)])
    np.testing.assert_allclose(_np(t[0]), 1 - u, rtol=1e-6)
    check_vmap(lambda lo: mx.random.uniform(lo, 1.0, (3,), key=k), [mx.array([0.0, 0.5, -1.0])])
    check_vmap(lambda s: mx.random.normal((2,), scale=s, key=k), [mx.array([1.0, 2.0])])


def test_multivariate_normal_has_no_cov_derivative():
    msg = r"\[multivariate_normal\] Derivatives with respect to cov"
    with pytest.raises(ValueError, match=msg):
        mx.jvp(lambda c: mx.random.multivariate_normal(mx.zeros(3), c, key=K(0)),
               [mx.array(COV)], [mx.array(COV)])
    # its matrix square root is batchable
    covs = mx.array(np.stack([COV, np.eye(3), 2 * np.array(COV)]).astype(np.float32))
    check_vmap(lambda c: mxr._sqrt_cov(c), [covs], rtol=1e-5, atol=1e-6)
    root = _np(mxr._sqrt_cov(mx.array(COV)))
    np.testing.assert_allclose(root @ root, COV, atol=1e-5)


def test_primitives_have_all_rules():
    for prim in (mxr.BITS, mxr.ARGSORT, mxr.SQRT_COV):
        assert prim.vjp is not None and prim.jvp is not None and prim.vmap is not None


# ---------------------------------------------------------------------------------------
# argument errors (MLX's messages)
# ---------------------------------------------------------------------------------------
BAD_KEY_INT = mx.array([1, 2])


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: mx.random.uniform(shape=(3,), dtype=mx.int32, key=K(0)), ValueError,
     r"\[uniform\] Can only generate uniform numbers with real floating point type\."),
    (lambda: mx.random.uniform(shape=(3,), dtype=mx.float64, key=K(0)), RuntimeError,
     r"\[uniform\] Unsupported type\."),
    (lambda: mx.random.uniform(mx.zeros(2), 1, shape=(3,), key=K(0)), ValueError,
     r"\[broadcast_shapes\] Shapes \(3\) and \(2\) cannot be broadcast\."),
    (lambda: mx.random.uniform(mx.zeros(2), 1, key=K(0)), ValueError,
     r"\[uniform\] Cannot generate random values of shape \(\) from broadcasted shape \(2\)\."),
    (lambda: mx.random.uniform(mx.zeros((2, 1)), 1, shape=(3,), key=K(0)), ValueError,
     r"\[uniform\] Cannot generate random values of shape \(3\) from broadcasted shape \(2,3\)\."),
    (lambda: mx.random.uniform(shape=(-1,), key=K(0)), ValueError,
     r"\[bits\] Negative dimensions not allowed\."),
    (lambda: mx.random.uniform(shape=3, key=K(0)), TypeError,
     r"\[uniform\] shape must be a sequence of integers"),
    (lambda: mx.random.uniform(shape=(2,), dtype="float32", key=K(0)), TypeError,
     r"\[uniform\] dtype must be an mx Dtype"),
    (lambda: mx.random.uniform([0.0], 1.0, key=K(0)), TypeError,
     r"\[uniform\] low must be a scalar or an array, got list\."),
    (lambda: mx.random.uniform(shape=(2,), key=BAD_KEY_INT), ValueError,
     r"\[bits\] Expected key type uint32 but received int32\."),
    (lambda: mx.random.uniform(shape=(2,), key=mx.array([1, 2, 3], mx.uint32)), ValueError,
     r"\[bits\] Expected key shape \(2\) but received \(3\)\."),
    (lambda: mx.random.normal((2,), key=mx.array([[1, 2]], mx.uint32)), ValueError,
     r"\[bits\] Expected key shape \(2\) but received \(1,2\)\."),
    (lambda: mx.random.uniform(shape=(2,), key=[0, 0]), TypeError,
     r"\[bits\] key must be an mx array"),
    (lambda: mx.random.split(BAD_KEY_INT), ValueError,
     r"\[bits\] Expected key type uint32 but received int32\."),
    (lambda: mx.random.split(K(0), -1), ValueError, r"\[bits\] Negative dimensions not allowed\."),
    (lambda: mx.random.split(K(0), 2.0), TypeError, r"\[split\] num must be an integer"),
    (lambda: mx.random.bits((2,), 3, key=K(0)), ValueError, r"\[bits\] width must be 1, 2 or 4"),
    (lambda: mx.random.key(-1), TypeError, r"\[key\] seed must be an integer in \[0, 2\*\*64\)"),
    (lambda: mx.random.key(2 ** 64), TypeError, r"\[key\] seed must be an integer in"),
    (lambda: mx.random.seed(1.5), TypeError, r"\[seed\] seed must be an integer, got float\."),
    (lambda: mx.random.seed(-3), TypeError, r"\[seed\] seed must be an integer in \[0, 2\*\*64\)"),
    (lambda: mx.random.normal((2,), dtype=mx.int32, key=K(0)), ValueError,
     r"\[normal\] Only floating point and complex64 types are supported\."),
    (lambda: mx.random.normal((3,), loc=mx.zeros(2), key=K(0)), ValueError,
     r"\[broadcast_shapes\] Shapes \(2\) and \(3\) cannot be broadcast\."),
    (lambda: mx.random.randint(0, 5, (3,), dtype=mx.float32, key=K(0)), ValueError,
     r"\[randint\] randint only accepts integer dtypes and bool\."),
    (lambda: mx.random.randint(mx.zeros(2), 5, key=K(0)), ValueError,
     r"\[uniform\] Cannot generate random values of shape \(\) from broadcasted shape \(2\)\."),
    (lambda: mx.random.bernoulli(2, key=K(0)), ValueError,
     r"\[bernoulli\] bernoulli probability `p` must be a float type\."),
    (lambda: mx.random.bernoulli(mx.array([True]), key=K(0)), ValueError,
     r"\[bernoulli\] bernoulli probability `p` must be a float type\."),
    (lambda: mx.random.bernoulli(mx.zeros(2), (3,), key=K(0)), ValueError,
     r"\[broadcast_shapes\] Shapes \(3\) and \(2\) cannot be broadcast\."),
    (lambda: mx.random.bernoulli(mx.zeros((3, 2)), (2,), key=K(0)), ValueError,
     r"\[bernoulli\] shape of `p` is incompatible with argument `shape`\."),
    (lambda: mx.random.categorical(mx.zeros((2, 3)), shape=(4,), num_samples=2, key=K(0)),
     ValueError, r"\[categorical\] At most one of shape or num_samples can be specified\."),
    (lambda: mx.random.categorical(mx.zeros((2, 3)), shape=(4,), key=K(0)), ValueError,
     r"\[broadcast_shapes\] Shapes \(4\) and \(2\) cannot be broadcast\."),
    (lambda: mx.random.categorical(mx.zeros((3, 2, 4)), shape=(2,), key=K(0)), ValueError,
     r"\[categorical\] Requested shape \(2\) is not broadcast compatible with reduced logits "
     r"shape\(3,2\)\."),
    (lambda: mx.random.categorical(mx.zeros((2, 3)), axis=2, key=K(0)), IndexError,
     r"\[categorical\] Invalid axis 2 for logits with 2 dimensions\."),
    (lambda: mx.random.categorical(mx.zeros((2, 3)), axis=-3, key=K(0)), IndexError,
     r"\[categorical\] Invalid axis -3 for logits with 2 dimensions\."),
    (lambda: mx.random.categorical(mx.zeros((2, 3)), num_samples=-1, key=K(0)), ValueError,
     r"\[bits\] Negative dimensions not allowed\."),
    (lambda: mx.random.categorical([1.0, 2.0], key=K(0)), TypeError,
     r"\[categorical\] logits must be an mx array, got list\."),
    (lambda: mx.random.gumbel((2,), mx.int32, key=K(0)), ValueError,
     r"\[uniform\] Can only generate uniform numbers with real floating point type\."),
    (lambda: mx.random.gumbel((2,), mx.float64, key=K(0)), RuntimeError,
     r"\[uniform\] Unsupported type\."),
    (lambda: mx.random.laplace((2,), mx.int32, key=K(0)), ValueError,
     r"\[laplace\] Only real floating point types are supported\."),
    (lambda: mx.random.laplace((2,), loc=mx.array(1.0), key=K(0)), TypeError,
     r"\[laplace\] loc must be a Python float, got array\."),
    (lambda: mx.random.truncated_normal(0, 1, (2,), mx.int32, key=K(0)), ValueError,
     r"\[trunc_normal\] trunc_normal only accepts floating point dtypes\."),
    (lambda: mx.random.truncated_normal(0, 1, (2,), mx.float64, key=K(0)), RuntimeError,
     r"\[uniform\] Unsupported type\."),
    (lambda: mx.random.truncated_normal(mx.zeros(3), mx.ones(2), key=K(0)), ValueError,
     r"\[broadcast_shapes\] Shapes \(3\) and \(2\) cannot be broadcast\."),
    (lambda: mx.random.truncated_normal(mx.zeros((2, 1)), 1, (3,), key=K(0)), ValueError,
     r"\[uniform\] Cannot generate random values of shape \(3\) from broadcasted shape \(2,3\)\."),
    (lambda: mx.random.permutation(-1, key=K(0)), ValueError,
     r"\[bits\] Negative dimensions not allowed\."),
    (lambda: mx.random.permutation(3.5, key=K(0)), TypeError,
     r"\[permutation\] x must be an integer, got float\."),
    (lambda: mx.random.permutation(mx.arange(4), axis=1, key=K(0)), IndexError,
     r"\[permutation\] Axis 1 is out of bounds for array with 1 dimensions\."),
    (lambda: mx.random.multivariate_normal(mx.zeros(3), mx.eye(3), dtype=mx.float16, key=K(0)),
     ValueError, r"\[multivariate_normal\] dtype must be float32\."),
    (lambda: mx.random.multivariate_normal(mx.zeros(3), mx.zeros((3, 2)), key=K(0)), ValueError,
     r"\[multivariate_normal\] last two dimensions of cov must be equal\."),
    (lambda: mx.random.multivariate_normal(mx.zeros(3), mx.zeros((2, 2)), key=K(0)), ValueError,
     r"\[multivariate_normal\] mean and cov must have compatible shapes\."),
    (lambda: mx.random.multivariate_normal(mx.array(1.0), mx.eye(3), key=K(0)), ValueError,
     r"\[multivariate_normal\] mean must have at least one dimension\."),
    (lambda: mx.random.multivariate_normal(mx.zeros(3), mx.zeros(3), key=K(0)), ValueError,
     r"\[multivariate_normal\] cov must have at least two dimensions\."),
    (lambda: mx.random.multivariate_normal(mx.zeros((2, 3)), mx.zeros((5, 3, 3)), key=K(0)),
     ValueError, r"\[broadcast_shapes\] Shapes \(5\) and \(2\) cannot be broadcast\."),
    (lambda: mx.random.multivariate_normal(mx.zeros((2, 3)), mx.eye(3), (4,), key=K(0)),
     ValueError, r"\[broadcast_shapes\] Shapes \(2\) and \(4\) cannot be broadcast\."),
])
def test_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_errors_do_not_advance_the_global_key():
    mx.random.seed(5)
    with pytest.raises(ValueError):
        mx.random.uniform(mx.zeros(2), 1.0)
    assert mx.random.state[0].tolist() == [0, 5]
