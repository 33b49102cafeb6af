"""GPU kernels that move and select data: views, copies, joins, fills, ranges, where,
take/gather/take_along_axis/put_along_axis, argmax/argmin, softmax/logsumexp.

Each test runs one op with stream=mx.gpu and with stream=mx.cpu on the same inputs and
compares value, dtype and shape, over dtypes and odd layouts (empty, size 1, 0-d,
non-contiguous, broadcast), and checks that the GPU kernel really ran (no CPU fallback).
"""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, assert_close, both, make, ran_natively, variants

pytestmark = pytest.mark.gpu

DTYPES = ["bool", "uint8", "int32", "int64", "float16", "bfloat16", "float32", "float64"]


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups()
                       if k[0] in ("copy", "select", "argreduce", "rows", "gather")
                       or k == ("unary", "copy")], threads=16)
    return b


def check(fn, *inputs, dtype="float32", what="", native=None):
    """fn on the GPU equals fn on the CPU; `native` primitives did not fall back."""
    G.reset_counts()
    g, c = both(fn, *inputs)
    assert_close(g, c, dtype, what)
    if native:
        ran_natively(native, what)


# ---------------------------------------------------------------------------------------
# views and copies
# ---------------------------------------------------------------------------------------
def test_views_of_empty_arrays_stay_on_the_gpu(warm):
    x = arr(np.zeros((0, 3, 2), np.float32))
    for fn, name in ((lambda a, s: mx.transpose(a, (2, 0, 1), stream=s), "transpose"),
                     (lambda a, s: mx.broadcast_to(a, (4, 0, 3, 2), stream=s), "broadcast_to"),
                     (lambda a, s: mx.flip(a, 1, stream=s), "flip")):
        check(fn, x, what=f"empty {name}", native=[name])


@pytest.mark.parametrize("dt", DTYPES)
def test_views_and_copies(warm, dt):
    rng = np.random.default_rng(0)
    x_np = make(dt, (3, 4, 5), rng)
    for label, x in variants(x_np):
        w = f"{dt} {label}"
        check(lambda a, s: mx.transpose(a, (2, 0, 1), stream=s), x, dtype=dt, what=w,
              native=["transpose"])
        check(lambda a, s: mx.reshape(a, (12, 5), stream=s), x, dtype=dt, what=w,
              native=["reshape"])
        check(lambda a, s: mx.reshape(mx.transpose(a, stream=s), (-1,), stream=s), x, dtype=dt,
              what=w + " reshape of a transpose (a copy)", native=["reshape"])
        check(lambda a, s: mx.contiguous(mx.swapaxes(a, 0, 2, stream=s), stream=s), x,
              dtype=dt, what=w, native=["contiguous"])
        check(lambda a, s: mx.broadcast_to(a[:, :1], (3, 4, 5), stream=s) + 0
              if dt != "bool" else mx.broadcast_to(a[:, :1], (3, 4, 5), stream=s), x, dtype=dt,
              what=w, native=["broadcast_to", "index"])
        check(lambda a, s: a[1:, ::-2, 3], x, dtype=dt, what=w + " basic index",
              native=["index"])
        check(lambda a, s: mx.split(a, 2, axis=1, stream=s)[1], x, dtype=dt, what=w)
        check(lambda a, s: mx.flip(a, 1, stream=s) if hasattr(mx, "flip") else a[:, ::-1],
              x, dtype=dt, what=w)


@pytest.mark.parametrize("dt", DTYPES)
def test_concatenate_stack_pad(warm, dt):
    rng = np.random.default_rng(1)
    a, b = make(dt, (3, 4), rng), make(dt, (3, 2), rng)
    for (la, xa), (lb, xb) in zip(variants(a), variants(b)):
        w = f"{dt} {la} {lb}"
        check(lambda p, q, s: mx.concatenate([p, q, p], axis=1, stream=s), xa, xb, dtype=dt,
              what=w, native=["concatenate"])
        check(lambda p, s: mx.stack([p, p[::-1]], axis=1, stream=s), xa, dtype=dt, what=w,
              native=["stack"])
        check(lambda p, s: mx.pad(p, [(1, 2), (0, 3)], stream=s), xa, dtype=dt, what=w,
              native=["pad"])
    e = arr(make(dt, (0, 4), rng))
    check(lambda p, q, s: mx.concatenate([p, q], axis=0, stream=s), e, arr(a), dtype=dt,
          what="with an empty array")


@pytest.mark.parametrize("dt", DTYPES)
def test_slice_update(warm, dt):
    rng = np.random.default_rng(2)
    x = arr(make(dt, (5, 6), rng))
    u = arr(make(dt, (2, 3), rng))
    # known start indices: a scatter with a basic key (as item assignment makes)
    check(lambda p, q, s: mx.slice_update(p, q, mx.array([1, 2]), axes=(0, 1), stream=s), x, u,
          dtype=dt, native=["scatter"])
    # start indices computed lazily: the slice_update primitive (the handler reads them on
    # the host, after waiting for the GPU when a queued kernel writes them)
    check(lambda p, q, s: mx.slice_update(p, q, mx.add(mx.array([2, 4]), 0, stream=s) // 2,
                                          axes=(0, 1), stream=s), x, u, dtype=dt,
          native=["slice_update"])
    # a broadcast update
    check(lambda p, s: mx.slice_update(p, mx.array(1).astype(p.dtype), mx.add(mx.array([3]), 0),
                                       axes=(1,), stream=s), x, dtype=dt, native=["slice_update"])

    def assign(p, q, s):
        y = mx.array(p)
        y[1:3, ::2] = q[:, :1]
        return y
    check(assign, x, u, dtype=dt, native=["scatter"])


@pytest.mark.parametrize("dt", DTYPES)
def test_fills(warm, dt):
    d = mx.bool_ if dt == "bool" else getattr(mx, dt)
    for shape in [(), (0,), (7,), (3, 1000)]:
        check(lambda s: mx.zeros(shape, d, stream=s), dtype=dt, native=["zeros"])
        check(lambda s: mx.ones(shape, d, stream=s), dtype=dt, native=["ones"])
        check(lambda s: mx.full(shape, 3, d, stream=s), dtype=dt, what=f"{shape}",
              native=["full"])
    x = arr(make(dt, (1, 4), np.random.default_rng(3)))
    check(lambda a, s: mx.full((3, 4), a, stream=s), x, dtype=dt)


@pytest.mark.parametrize("args, dt", [
    ((10,), None), ((2, 30, 3), None), ((-5, 5), mx.int8), ((0, 1000, 7), mx.uint16),
    ((0, 1, 0.1), None), ((-3.5, 100.0, 0.25), mx.float16), ((0, 10, 0.5), mx.bfloat16),
    ((1e6, 1e6 + 2000, 1.0), mx.float32), ((0, 300), mx.uint8), ((5, -5, -1), mx.int64),
])
def test_arange(warm, args, dt):
    kw = {} if dt is None else {"dtype": dt}
    check(lambda s: mx.arange(*args, stream=s, **kw), dtype="float16" if dt == mx.float16
          else "bfloat16" if dt == mx.bfloat16 else "float32", what=str(args), native=["arange"])


@pytest.mark.parametrize("dt", DTYPES)
def test_where(warm, dt):
    rng = np.random.default_rng(4)
    c_np = rng.random((4, 6)) > 0.4
    a, b = make(dt, (4, 6), rng), make(dt, (4, 6), rng)
    for (lc, c), (la, xa) in zip(variants(c_np), variants(a)):
        w = f"{dt} {lc} {la}"
        check(lambda p, q, r, s: mx.where(p, q, r, stream=s), c, xa, arr(b), dtype=dt, what=w,
              native=["select"])
        check(lambda p, q, r, s: mx.where(p[:, :1], q[:1], r, stream=s), c, xa, arr(b), dtype=dt,
              what=w + " broadcast", native=["select"])
    check(lambda p, q, s: mx.where(p, q, 0, stream=s), arr(c_np), arr(a), dtype=dt,
          what="scalar operand")


# ---------------------------------------------------------------------------------------
# arg reductions and rows
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_argmax_argmin(warm, dt):
    rng = np.random.default_rng(5)
    for shape in [(1,), (7,), (3, 5), (2, 3, 700), (1000, 3)]:
        x_np = make(dt, shape, rng)
        if dt in ("uint8", "int32", "int64"):
            x_np = (x_np % 4).astype(dt)       # many ties: the first index must win
        for label, x in variants(x_np):
            for f in (mx.argmax, mx.argmin):
                for axis in [None] + list(range(len(shape))) + [-1]:
                    check(lambda a, s: f(a, axis=axis, stream=s), x, dtype="uint32",
                          what=f"{f.__name__} {dt} {shape} {label} axis={axis}")
                check(lambda a, s: f(a, axis=-1, keepdims=True, stream=s), x, dtype="uint32",
                      native=[f.__name__])


def test_argmax_nan_and_inf(warm):
    x = np.array([[1, np.nan, 3, np.nan], [-np.inf, -np.inf, 0, 0], [np.inf, 2, np.inf, 1]],
                 np.float32)
    for f in (mx.argmax, mx.argmin):
        for axis in (None, 0, 1):
            check(lambda a, s: f(a, axis=axis, stream=s), arr(x), dtype="uint32",
                  what=f"{f.__name__} {axis}")


@pytest.mark.parametrize("dt", ["float16", "bfloat16", "float32", "float64"])
def test_softmax_logsumexp(warm, dt):
    rng = np.random.default_rng(6)
    for shape in [(1,), (7,), (3, 5), (4, 1000), (2, 3, 257), (1, 10000)]:
        x_np = make(dt, shape, rng, -10, 10)
        for label, x in variants(x_np):
            w = f"{dt} {shape} {label}"
            check(lambda a, s: mx.softmax(a, axis=-1, stream=s), x, dtype=dt, what=w,
                  native=["softmax"])
            check(lambda a, s: mx.logsumexp(a, axis=-1, stream=s), x, dtype=dt, what=w,
                  native=["logsumexp"])
            check(lambda a, s: mx.logsumexp(a, axis=-1, keepdims=True, stream=s), x, dtype=dt,
                  what=w)


def test_softmax_logsumexp_special_values(warm):
    x = np.array([[0, -np.inf, 1], [-np.inf, -np.inf, -np.inf], [np.inf, 0, 1], [np.nan, 0, 1],
                  [1000, 1000, -1000]], np.float32)
    check(lambda a, s: mx.softmax(a, axis=-1, stream=s), arr(x))
    check(lambda a, s: mx.logsumexp(a, axis=-1, stream=s), arr(x))


# ---------------------------------------------------------------------------------------
# take, gather, take_along_axis, put_along_axis
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES)
def test_take_and_gather(warm, dt):
    rng = np.random.default_rng(7)
    x_np = make(dt, (5, 6, 3), rng)
    for idt in ("int32", "int64", "uint32", "int16", "uint8"):
        idx = arr(rng.integers(0, 5, (2, 4)).astype(idt))
        neg = arr(rng.integers(-5, 5, (7,)).astype("int32"))
        for label, x in variants(x_np):
            w = f"{dt} {idt} {label}"
            check(lambda a, i, s: mx.take(a, i, axis=0, stream=s), x, idx, dtype=dt, what=w,
                  native=["take"])
            check(lambda a, i, s: mx.take(a, i, axis=1, stream=s), x, neg, dtype=dt, what=w)
            check(lambda a, i, s: mx.take(a, i, stream=s), x, idx, dtype=dt, what=w + " flat")
            check(lambda a, i, s: a[i], x, idx, dtype=dt, what=w + " a[i]", native=["gather"])
            check(lambda a, i, s: a[:, i], x, neg, dtype=dt, what=w + " a[:, i]",
                  native=["gather"])
    check(lambda a, s: mx.take(a, mx.array(3), axis=0, stream=s), arr(x_np), dtype=dt,
          what="0-d index")


def test_out_of_range_indices_raise(warm):
    x = mx.arange(12, dtype=mx.float32).reshape(3, 4)

    def lazy(values):       # indices the op cannot check when it is built
        return mx.add(mx.array(values), 0, stream=mx.gpu)

    with pytest.raises(IndexError, match=r"\[take\].*size 3"):
        mx.eval(mx.take(x, lazy([0, 3]), axis=0, stream=mx.gpu))
    with pytest.raises(IndexError, match=r"\[gather\]"):
        mx.eval(x[lazy([5])])
    with pytest.raises(IndexError, match=r"\[take_along_axis\]"):
        mx.eval(mx.take_along_axis(x, lazy([[4]]), axis=1, stream=mx.gpu))
    with pytest.raises(IndexError, match=r"\[put_along_axis\]"):
        mx.eval(mx.put_along_axis(x, lazy([[-5]]), mx.array(1.0), axis=1, stream=mx.gpu))
    # the backend is usable afterwards
    np.testing.assert_array_equal(np.asarray(mx.take(x, mx.array([-1]), axis=0)),
                                  np.arange(8, 12, dtype=np.float32).reshape(1, 4))


@pytest.mark.parametrize("dt", DTYPES)
def test_take_along_and_put_along_axis(warm, dt):
    rng = np.random.default_rng(8)
    x_np = make(dt, (4, 5, 6), rng)
    for label, x in variants(x_np):
        for axis in (0, 1, 2, -1):
            n = x_np.shape[axis]
            ishape = [4, 5, 6]
            ishape[axis] = 3
            idx = arr(rng.integers(-n, n, ishape).astype(np.int32))
            w = f"{dt} {label} axis={axis}"
            check(lambda a, i, s: mx.take_along_axis(a, i, axis=axis, stream=s), x, idx,
                  dtype=dt, what=w, native=["take_along_axis"])
            # indices broadcasting over the other axes
            bshape = [1, 1, 1]
            bshape[axis] = 2
            bidx = arr(rng.integers(0, n, bshape).astype(np.int64))
            check(lambda a, i, s: mx.take_along_axis(a, i, axis=axis, stream=s), x, bidx,
                  dtype=dt, what=w + " broadcast")
            # unique indices along the axis, so that the result does not depend on write order
            perm = np.argsort(rng.random((4, 5, 6)), axis=axis)
            keep = [slice(None)] * 3
            keep[axis] = slice(0, 2)
            uidx = arr(perm[tuple(keep)].astype(np.int32))
            vals = arr(make(dt, tuple(uidx.shape), rng))
            check(lambda a, i, v, s: mx.put_along_axis(a, i, v, axis=axis, stream=s), x, uidx,
                  vals, dtype=dt, what=w, native=["put_along_axis"])
    flat_idx = arr(np.array([0, 119, -1, 5], np.int32))
    check(lambda a, i, s: mx.take_along_axis(a, i, axis=None, stream=s), arr(x_np), flat_idx,
          dtype=dt, what="axis=None")


def test_embedding_lookup_and_its_gradient(warm):
    rng = np.random.default_rng(9)
    table = arr(rng.standard_normal((50, 8)).astype(np.float32))
    ids = arr(rng.integers(0, 50, (4, 7)).astype(np.int32))

    def loss(t, s):
        return mx.sum(mx.softmax(t[ids] * 2, axis=-1) * mx.arange(8, dtype=mx.float32))

    g = mx.grad(lambda t: loss(t, None))(table)
    with mx.stream(mx.cpu):
        c = mx.grad(lambda t: loss(t, None))(table)
    np.testing.assert_allclose(np.asarray(g), np.asarray(c), rtol=1e-5, atol=1e-6)
