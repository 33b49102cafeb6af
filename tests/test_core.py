"""The array object: construction, properties, Python protocols, lazy evaluation and the
scheduler (ordering, sharing, freeing, donation, async)."""
import copy
import gc
import pickle
import sys
import threading

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
from mx.core import _scheduler
from oracle import DTYPE_NAMES, mx_dtype, np_dtype


# --- construction ------------------------------------------------------------------------
@pytest.mark.parametrize("value, dtype", [
    (1, "int32"), (2**40, "int64"), (-2**31, "int32"), (2**31, "int64"), (1.5, "float32"),
    (True, "bool"), (1 + 2j, "complex64"), ([1, 2], "int32"), ([1, 2**40], "int64"),
    ([1.0, 2], "float32"), ([True, False], "bool"), ([True, 2], "int32"), ([1, 2.5j], "complex64"),
    ((1, 2, 3), "int32"), ([[1, 2], [3, 4]], "int32"), ([], "float32"),
])
def test_python_values_get_mlx_default_dtypes(value, dtype):
    a = mx.array(value)
    assert a.dtype.name == dtype
    want = np.array(value)
    assert a.shape == want.shape
    np.testing.assert_array_equal(np.asarray(a), want.astype(np_dtype(dtype)))


@pytest.mark.parametrize("name", DTYPE_NAMES)
def test_numpy_arrays_of_every_dtype(name):
    src = (np.arange(6).reshape(2, 3) % 2).astype(np_dtype(name))
    a = mx.array(src)
    assert a.dtype.name == ("float32" if name == "float64" else name)  # MLX narrows float64
    a = mx.array(src, dtype=mx_dtype(name))
    assert a.dtype.name == name
    assert a.shape == (2, 3)
    np.testing.assert_array_equal(np.asarray(a), src)


def test_numpy_float64_and_complex128_narrow_unless_dtype_given():
    assert mx.array(np.zeros(3)).dtype == mx.float32
    assert mx.array(np.float64(1.5)).dtype == mx.float32
    assert mx.array(np.ones(2, np.complex128)).dtype == mx.complex64
    assert mx.array(np.zeros(3), dtype=mx.float64).dtype == mx.float64
    assert mx.array(np.int64(3)).dtype == mx.int64


def test_construction_copies_numpy_source():
    src = np.ones(4, np.float32)
    a = mx.array(src)
    src[0] = 7
    assert float(np.asarray(a)[0]) == 1.0


def test_buffer_objects_and_other_arrays():
    assert mx.array(memoryview(b"ab")).tolist() == [97, 98]
    assert mx.array(b"ab").dtype == mx.uint8
    import array as pyarray
    assert mx.array(pyarray.array("f", [1.0, 2.0])).tolist() == [1.0, 2.0]
    a = mx.array([1, 2])
    b = mx.array(a)
    assert b is not a and b.tolist() == [1, 2]
    assert mx.array(a, dtype=mx.float32).dtype == mx.float32
    assert mx.asarray([1, 2]).tolist() == [1, 2]
    assert mx.array([mx.array([1, 2]), mx.array([3, 4])]).tolist() == [[1, 2], [3, 4]]


def test_dtype_argument_converts():
    a = mx.array([1.7, -2.2], dtype=mx.int32)
    assert a.dtype == mx.int32 and a.tolist() == [1, -2]
    assert mx.array(3, dtype=mx.float16).dtype == mx.float16
    assert mx.array([1, 0], mx.bool_).tolist() == [True, False]


@pytest.mark.parametrize("bad, exc, msg", [
    ([[1], [2, 3]], ValueError, "non-uniform"),
    ("abc", TypeError, "Cannot convert"),
    (np.array(["a"]), TypeError, "Cannot convert"),
    (np.zeros(2, dtype=object), TypeError, "Cannot convert"),
    (object(), TypeError, "Cannot convert"),
])
def test_bad_construction_raises(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        mx.array(bad)


def test_dtype_argument_must_be_a_dtype():
    with pytest.raises(TypeError, match=r"\[array\] dtype must be an mx Dtype"):
        mx.array([1], dtype="float32")


# --- properties and conversion ----------------------------------------------------------
def test_properties():
    a = mx.array(np.zeros((2, 3, 4), np.float16))
    assert a.shape == (2, 3, 4) and isinstance(a.shape, tuple)
    assert a.ndim == 3 and a.size == 24 and a.itemsize == 2 and a.nbytes == 48
    assert a.dtype == mx.float16


def test_item_tolist():
    assert mx.array(5).item() == 5 and isinstance(mx.array(5).item(), int)
    assert isinstance(mx.array(1.5, mx.float16).item(), float)
    assert mx.array([1.5], mx.bfloat16).tolist() == [1.5]
    assert mx.array(5).tolist() == 5
    assert mx.array([[True]]).tolist() == [[True]]
    with pytest.raises(ValueError, match=r"\[item\].*shape \(2\)"):
        mx.array([1, 2]).item()


def test_bool_len_iter_int_float_index():
    assert bool(mx.array([3])) is True and bool(mx.array(0)) is False
    with pytest.raises(ValueError, match="truth value"):
        bool(mx.array([1, 2]))
    assert len(mx.array([[1, 2], [3, 4], [5, 6]])) == 3
    with pytest.raises(TypeError, match="len"):
        len(mx.array(1))
    with pytest.raises(TypeError, match="iteration over a 0-d array"):
        iter(mx.array(1))
    assert int(mx.array(3.7)) == 3 and float(mx.array(2)) == 2.0
    assert [1, 2, 3][mx.array(1)] == 2
    with pytest.raises(TypeError):
        [1, 2][mx.array(1.0)]


def test_format():
    assert f"{mx.array(2.5):.3f}" == "2.500"
    assert f"{mx.array(7):04d}" == "0007"
    with pytest.raises(TypeError, match=r"\[format\].*0-d"):
        f"{mx.array([2.5]):.3f}"


def test_hash_is_identity():
    a, b = mx.array(1), mx.array(1)
    assert hash(a) != hash(b)
    assert {a: 1}[a] == 1


def test_pickle_copy_deepcopy():
    for name in DTYPE_NAMES:
        a = mx.array(np.arange(4).astype(np_dtype(name)))
        b = pickle.loads(pickle.dumps(a))
        assert b.dtype == a.dtype and b.shape == a.shape
        np.testing.assert_array_equal(np.asarray(b), np.asarray(a))
    s = pickle.loads(pickle.dumps(mx.array(2.5)))
    assert s.shape == () and s.item() == 2.5
    lazy = mx.array([1.0, 2.0]) * 3
    assert pickle.loads(pickle.dumps(lazy)).tolist() == [3.0, 6.0]
    c = copy.copy(lazy)
    d = copy.deepcopy(lazy)
    assert c is not lazy and c.tolist() == [3.0, 6.0] and d.tolist() == [3.0, 6.0]
    assert pickle.loads(pickle.dumps(mx.float16)) is mx.float16


# --- operators -----------------------------------------------------------------------------
def test_operators_match_numpy():
    x = np.array([[1.5, -2.0, 3.0]], np.float32)
    y = np.array([[2.0], [0.5]], np.float32)
    a, b = mx.array(x), mx.array(y)
    cases = [
        (a + b, x + y), (a - b, x - y), (a * b, x * y), (a / b, x / y), (a // b, x // y),
        (a % b, x % y), (a ** b, x ** y), (-a, -x), (abs(a), abs(x)), (2 + a, 2 + x),
        (2 - a, 2 - x), (2 * a, 2 * x), (2 / a, 2 / x), (2 ** a, 2 ** x), (2 // a, 2 // x),
        (2 % a, 2 % x), (a < b, x < y), (a <= b, x <= y), (a > b, x > y), (a >= b, x >= y),
        (a == b, x == y), (a != b, x != y),
    ]
    for got, want in cases:
        assert got.shape == want.shape
        assert got.dtype.name == want.dtype.name
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    q, r = divmod(a, b)
    np.testing.assert_allclose(np.asarray(q), x // y)
    np.testing.assert_allclose(np.asarray(r), x % y)


def test_integer_and_bitwise_operators():
    x = np.array([5, -3, 12], np.int32)
    y = np.array([2, 1, 3], np.int32)
    a, b = mx.array(x), mx.array(y)
    for got, want in [(a & b, x & y), (a | b, x | y), (a ^ b, x ^ y), (a << b, x << y),
                      (a >> b, x >> y), (~a, ~x), (3 & a, 3 & x), (1 << b, 1 << y)]:
        assert got.dtype == mx.int32
        np.testing.assert_array_equal(np.asarray(got), want)
    t = mx.array([True, False])
    assert (~t).tolist() == [False, True]
    with pytest.raises(TypeError, match=r"\[bitwise_and\].*float32"):
        mx.array([1.0]) & mx.array([1.0])
    with pytest.raises(ValueError, match=r"\[negative\].*bool"):
        -mx.array([True])


def test_inplace_operators_rebind():
    a = mx.array([1, 2])
    alias = a
    a += 1
    assert a.tolist() == [2, 3] and alias.tolist() == [1, 2]
    a *= 2.5
    assert a.dtype == mx.float32


def test_comparison_with_unrelated_objects():
    a = mx.array([1, 2])
    assert (a == None) is False  # noqa: E711
    assert (a != "x") is True
    with pytest.raises(TypeError):
        a < "x"


def test_numpy_on_the_left_gives_numpy():
    r = np.ones(2, np.float32) + mx.array([1.0, 2.0])
    assert isinstance(r, np.ndarray)
    assert np.exp(mx.array([0.0])).tolist() == [1.0]


# --- NumPy neighbour ------------------------------------------------------------------------
def test_np_asarray_is_zero_copy():
    a = mx.array(np.arange(6, dtype=np.float32))
    v1 = np.asarray(a)
    v2 = np.asarray(a)
    assert np.shares_memory(v1, v2)
    assert np.shares_memory(np.array(a, copy=False), v1)
    assert not np.shares_memory(np.array(a), v1)


def test_buffer_protocol_zero_copy():
    a = mx.array(np.arange(6, dtype=np.int32).reshape(2, 3))
    m = memoryview(a)
    assert m.shape == (2, 3) and m.format == "i"
    assert np.shares_memory(np.frombuffer(m, np.int32), np.asarray(a))
    with pytest.raises(BufferError, match="bfloat16"):
        memoryview(mx.array([1.0], mx.bfloat16))


def test_bfloat16_round_trips_through_ml_dtypes():
    src = np.array([1.5, -2.25, 3.0], ml_dtypes.bfloat16)
    a = mx.array(src)
    assert a.dtype == mx.bfloat16
    back = np.asarray(a)
    assert back.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(back, src)
    assert np.asarray(a * 2).dtype == ml_dtypes.bfloat16


def test_dlpack_against_numpy():
    a = mx.array(np.arange(6, dtype=np.float32).reshape(2, 3)) + 1
    assert a.__dlpack_device__() == (1, 0)
    n = np.from_dlpack(a)
    np.testing.assert_array_equal(n, np.arange(1, 7, dtype=np.float32).reshape(2, 3))
    src = np.arange(5, dtype=np.int16)
    b = mx.from_dlpack(src)
    assert b.dtype == mx.int16 and b.tolist() == list(range(5))
    assert mx.from_dlpack(np.array(3.0, np.float32)).shape == ()
    with pytest.raises(TypeError, match=r"\[from_dlpack\]"):
        mx.from_dlpack([1, 2])


def test_dlpack_against_torch():
    torch = pytest.importorskip("torch")
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    a = mx.from_dlpack(t)
    assert a.shape == (2, 3) and a.dtype == mx.float32
    np.testing.assert_array_equal(np.asarray(a), t.numpy())
    back = torch.from_dlpack(mx.array([[1, 2], [3, 4]], mx.int64))
    assert back.tolist() == [[1, 2], [3, 4]]


# --- laziness and the scheduler --------------------------------------------------------------
def _is_evaluated(a):
    return a._data is not None


def test_ops_are_lazy_until_read():
    a = mx.array([1.0, 2.0])
    b = mx.exp(a) + 1
    assert not _is_evaluated(b)
    mx.eval(b)
    assert _is_evaluated(b)
    assert b._prim is None and b._inputs is None  # detached from its graph


def test_eval_accepts_trees():
    a = mx.array(1.0) + 1
    b = mx.array(2.0) * 3
    c = mx.array(3.0) - 1
    mx.eval({"x": [a, (b,)], "y": None, "z": 3}, c)
    assert all(_is_evaluated(t) for t in (a, b, c))


def test_printing_and_item_evaluate():
    b = mx.array([1, 2]) * 2
    repr(b)
    assert _is_evaluated(b)


def test_long_chain_evaluates_and_frees_without_recursion():
    x = mx.array(1.0)
    y = x
    for _ in range(200_000):
        y = y + 1.0
    mx.eval(y)
    assert y.item() == 200_001.0
    # dropping an unevaluated chain of the same length must not overflow the C stack
    z = x
    for _ in range(200_000):
        z = z * 1.0
    del z
    gc.collect()


def test_shared_node_runs_once():
    calls = []
    from mx.core.primitives import REGISTRY
    exp = REGISTRY["exp"]
    orig = exp.cpu

    def counting(x, **kw):
        calls.append(1)
        return orig(x, **kw)

    exp.cpu = counting
    try:
        a = mx.exp(mx.array([1.0, 2.0]))
        b = a + a
        c = a * b
        mx.eval(c, b)
    finally:
        exp.cpu = orig
    assert len(calls) == 1


def test_intermediates_are_released_after_last_consumer():
    import weakref
    x = mx.array(np.ones(1000, np.float32))
    t = x * 2
    ref = weakref.ref(t)
    y = t + 1
    del t
    assert ref() is not None  # held by y's graph
    mx.eval(y)
    gc.collect()
    assert ref() is None  # graph dropped after evaluation


def test_loop_memory_stays_flat():
    x = mx.array(np.ones(1024, np.float32))
    mx.eval(x)
    for _ in range(200):
        x = x * 0.5 + 1
        mx.eval(x)
    base = mx.get_active_memory()
    for _ in range(10_000):
        x = x * 0.5 + 1
        mx.eval(x)
    assert mx.get_active_memory() <= base
    assert abs(float(np.asarray(x)[0]) - 2.0) < 1e-6


def test_donation_reuses_dying_buffers_only():
    x = mx.array(np.ones(1 << 16, np.float32))
    y = x + 1             # x is held by the user: must not be overwritten
    z = y * 2             # y is only held by z's graph... but also by the name y
    w = (x + 1) * 2       # the temporary (x + 1) dies inside: donatable
    mx.eval(z, w)
    np.testing.assert_array_equal(np.asarray(x), 1.0)
    np.testing.assert_array_equal(np.asarray(y), 2.0)
    np.testing.assert_array_equal(np.asarray(w), 4.0)
    # a NumPy view handed out earlier keeps its values
    a = mx.array(np.zeros(1 << 16, np.float32)) + 0
    view = np.asarray(a)
    b = a + 5
    del a
    mx.eval(b)
    assert float(view[0]) == 0.0 and float(np.asarray(b)[0]) == 5.0


def test_donation_happens_for_temporaries():
    x = mx.array(np.ones(1 << 16, np.float32))
    tmp = x + 1
    mx.eval(tmp)
    buf = np.asarray(tmp).__array_interface__["data"][0]
    out = tmp * 3
    del tmp
    mx.eval(out)
    assert np.asarray(out).__array_interface__["data"][0] == buf


def test_async_eval_then_read():
    x = mx.array(np.ones((256, 256), np.float32))
    y = x
    for _ in range(50):
        y = mx.exp(y * 0.01)
    mx.async_eval(y)
    v = np.asarray(y)  # waits
    assert v.shape == (256, 256) and np.isfinite(v).all()
    mx.synchronize()


def test_async_eval_error_surfaces_on_read():
    from mx.core.primitives import REGISTRY
    sinp = REGISTRY["sin"]
    orig = sinp.cpu

    def boom(x, **kw):
        raise RuntimeError("kernel failed")

    sinp.cpu = boom
    try:
        y = mx.sin(mx.array([1.0]))
        mx.async_eval(y)
        with pytest.raises(RuntimeError, match="kernel failed"):
            mx.eval(y)
    finally:
        sinp.cpu = orig


def test_kernel_error_leaves_graph_usable():
    y = mx.array([1, 2]) ** mx.array([1, 2])
    assert y.tolist() == [1, 4]
    assert (mx.array([2, 1, -1]) ** -1).tolist() == [0, 1, -1]


# --- devices and streams ---------------------------------------------------------------------
def test_devices_and_streams_api():
    assert repr(mx.cpu) == "Device(cpu, 0)"
    assert repr(mx.default_stream(mx.cpu)) == "Stream(Device(cpu, 0), 0)"
    assert mx.default_device() == mx.cpu
    assert mx.is_available(mx.cpu) and mx.device_count(mx.DeviceType.cpu) == 1
    assert mx.metal.is_available() is False  # (no Metal off Apple silicon)
    assert mx.cuda.is_available() is mx.is_available(mx.gpu)
    s = mx.new_stream(mx.cpu)
    assert s.device == mx.cpu and s != mx.default_stream(mx.cpu)
    with mx.stream(s):
        assert mx.default_device() == mx.cpu
    assert (mx.add(mx.array(1), 2, stream=s)).item() == 3
    assert (mx.add(mx.array(1), 2, stream=mx.cpu)).item() == 3
    assert isinstance(mx.device_info(mx.cpu), dict)
    mx.synchronize()
    mx.synchronize(s)


def test_gpu_unavailable_is_a_clear_error():
    if mx.is_available(mx.gpu):
        pytest.skip("a GPU is present")
    assert not mx.is_available(mx.gpu)
    assert mx.device_count(mx.DeviceType.gpu) == 0
    with pytest.raises(ValueError, match=r"\[set_default_device\].*not available"):
        mx.set_default_device(mx.gpu)
    with pytest.raises(ValueError, match="not available"):
        mx.add(mx.array(1), 2, stream=mx.gpu)
    with pytest.raises(ValueError, match="not available"):
        with mx.stream(mx.gpu):
            pass
    with pytest.raises(TypeError, match="stream must be"):
        mx.add(mx.array(1), 2, stream="gpu")


# --- memory API ------------------------------------------------------------------------------
def test_memory_counters_are_real():
    mx.synchronize()
    gc.collect()
    before = mx.get_active_memory()
    a = mx.array(np.ones(1 << 20, np.float32))  # 4 MiB
    assert mx.get_active_memory() - before >= 4 << 20
    mx.reset_peak_memory()
    b = a + 1
    c = b * 2
    mx.eval(c)
    assert mx.get_peak_memory() >= before + (8 << 20)
    del a, b, c
    gc.collect()
    assert mx.get_active_memory() <= before + 4096
    assert mx.get_cache_memory() >= 4 << 20
    mx.clear_cache()
    assert mx.get_cache_memory() == 0


def test_memory_limit_raises_memory_error():
    prev = mx.set_memory_limit(mx.get_active_memory() + (1 << 20))
    try:
        with pytest.raises(MemoryError):
            mx.eval(mx.array(np.ones(1 << 16, np.float32)) + mx.array(np.ones((64, 1 << 16), np.float32)))
    finally:
        mx.set_memory_limit(prev)
    assert (mx.array([1.0]) + 1).item() == 2.0


def test_cache_limit():
    prev = mx.set_cache_limit(0)
    try:
        a = mx.array(np.ones(1 << 18, np.float32)) + 1
        mx.eval(a)
        del a
        gc.collect()
        assert mx.get_cache_memory() == 0
    finally:
        assert mx.set_cache_limit(prev) == 0
    with pytest.raises(ValueError, match=r"\[set_memory_limit\]"):
        mx.set_memory_limit(-1)


def test_memory_limit_getter():
    prev = mx.set_memory_limit(1 << 40)
    try:
        assert mx.get_memory_limit() == 1 << 40
    finally:
        mx.set_memory_limit(prev)
    assert mx.get_memory_limit() == prev


def test_setitem_keeps_values_for_earlier_consumers():
    a = mx.array([1.0, 2.0, 3.0])
    y = a + 0            # built before the assignment: reads the old value
    alias = a            # the same array object: sees the new value (as MLX)
    a[0] = 5
    z = a * 1            # built after: reads the new value
    a[1] = 7
    assert y.tolist() == [1.0, 2.0, 3.0]
    assert z.tolist() == [5.0, 2.0, 3.0]
    assert alias.tolist() == [5.0, 7.0, 3.0]
    b = mx.zeros((3,))   # lazy array assigned into
    w = b + 1
    b[1] = 4
    assert w.tolist() == [1.0, 1.0, 1.0] and b.tolist() == [0.0, 4.0, 0.0]
    c = mx.array([1.0, 2.0])
    c[:] = c             # the value is the array itself: no cycle
    assert c.tolist() == [1.0, 2.0]


def test_setitem_in_a_loop_keeps_no_history():
    a = mx.zeros((8,))
    for i in range(8):
        a[i] = i
    assert a._history is None and a.tolist() == list(range(8))


def test_donation_in_a_chain_evaluated_at_once():
    x = mx.array(np.ones(1 << 16, np.float32))
    seen = []
    from mx.core.primitives import REGISTRY
    mul = REGISTRY["multiply"]
    orig = mul.cpu

    def spy(a, b, out=None):
        seen.append(out is not None)
        return orig(a, b, out=out) if out is not None else orig(a, b)

    mul.cpu = spy
    try:
        y = (x + 1) * 2          # the sum dies inside the product: its buffer is reused
        mx.eval(y)
    finally:
        mul.cpu = orig
    assert seen == [True]
    assert float(np.asarray(y)[0]) == 4.0 and float(np.asarray(x)[0]) == 1.0
