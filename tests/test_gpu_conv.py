"""GPU convolutions: conv_general (behind conv1d/2d/3d, conv_general, conv_transpose1d/2d/3d,
convolve and the gradients of convolutions), computed as im2col (shaders/conv.metal) and a
gemm batched over the groups (mx/backend/gpu/conv.py).

Each test runs one op on the GPU and on the CPU on the same inputs and compares value,
dtype and shape: strides, padding (symmetric, asymmetric, cropping), kernel and input
dilation, groups (depthwise too), flip, 1 to 3 spatial axes, batch 1 and odd sizes,
non-contiguous inputs, chunked patch matrices, and the gradients of a small nn.Conv2d
network, checking that nothing fell back to the CPU.
"""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G
from mx.backend.gpu import conv as C
from mx.backend.gpu import kernels as K

from test_gpu import HAS_GPU, arr, np_dtype

pytestmark = pytest.mark.gpu

FLOATS = ["float32", "float16", "bfloat16", "float64"]
# relative to the magnitude of the result (sums of many products, in another order than
# the CPU's BLAS; half precision results may differ by one rounding)
TOL = {"float16": 3e-3, "bfloat16": 2.4e-2, "float32": 2e-5, "float64": 1e-12}


@pytest.fixture(scope="module")
def warm():
    if not HAS_GPU:
        pytest.skip("needs a GPU")
    b = G.active_backend()
    b.kernels.warm_up([k for k in K.groups() if k[0] == "conv" or k == ("unary", "copy")],
                      threads=16)
    return b


def data(dt, shape, rng):
    return arr(rng.uniform(-1.0, 1.0, shape).astype(np_dtype(dt)))


def close(got, want, dt, what):
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, w.shape, g.dtype, w.dtype)
    g64, w64 = g.astype(np.float64), w.astype(np.float64)
    scale = max(1.0, float(np.abs(w64).max())) if w64.size else 1.0
    err = np.abs(g64 - w64)
    bad = err > TOL[dt] * (np.abs(w64) + scale)
    assert not bad.any(), (what, float(err.max()), int(bad.sum()))


def run_both(fn, *inputs):
    """fn(*inputs) evaluated with the GPU and with the CPU as the default stream (so that
    every node, gradients included, runs there)."""
    with mx.stream(mx.gpu):
        g = fn(*inputs)
        mx.eval(g)
    with mx.stream(mx.cpu):
        c = fn(*inputs)
        mx.eval(c)
    return g, c


def check(fn, *inputs, dt="float32", what="", strict=False):
    """fn on the GPU equals fn on the CPU and conv_general ran on the GPU (strict: no
    primitive at all fell back)."""
    G.reset_counts()
    g, c = run_both(fn, *inputs)
    for a, b in zip(g if isinstance(g, (list, tuple)) else [g],
                    c if isinstance(c, (list, tuple)) else [c]):
        close(a, b, dt, what)
    fb = G.fallback_counts()
    assert not fb.get("conv_general"), (what, fb)
    assert G.active_backend().gpu_runs["conv_general"] >= 1, (what, fb)
    if strict:
        assert not fb, (what, fb)


def variants(x):
    """(label, array): x, and non-contiguous arrays of the same values: a transposed copy
    transposed back (channel stride != 1), a reversed copy reversed back (negative
    strides) and every other element of a wider array."""
    a = np.asarray(x)
    t = arr(np.ascontiguousarray(np.swapaxes(a, 1, -1)))
    r = arr(np.ascontiguousarray(a[:, ::-1]))
    wide = arr(np.repeat(a, 2, axis=-1))
    return [("contiguous", x), ("transposed", mx.swapaxes(t, 1, -1, stream=mx.cpu)),
            ("reversed", r[:, ::-1]), ("strided", wide[..., ::2])]


# ---------------------------------------------------------------------------------------
# conv1d / conv2d / conv3d
# ---------------------------------------------------------------------------------------
# (input shape, weight shape, stride, padding, dilation, groups)
CASES = [
    ((2, 9, 3), (4, 3, 3), 1, 0, 1, 1),
    ((1, 10, 4), (6, 2, 2), 2, 1, 1, 2),
    ((3, 7, 6), (6, 3, 1), 1, 2, 2, 6),                 # depthwise
    ((2, 5, 5, 3), (8, 3, 3, 3), 1, 1, 1, 1),
    ((1, 7, 6, 4), (4, 3, 2, 2), (2, 1), (1, 0), (1, 2), 2),
    ((2, 6, 5, 8), (8, 3, 3, 1), 2, 1, 1, 8),           # depthwise, strided
    ((3, 4, 4, 2), (5, 1, 1, 2), 1, 0, 1, 1),           # 1x1: no patches
    ((2, 9, 7, 6), (4, 1, 1, 3), 2, 0, 1, 2),           # 1x1 strided, grouped
    ((1, 1, 1, 3), (2, 1, 1, 3), 1, 0, 1, 1),
    ((2, 4, 5, 3, 2), (3, 2, 3, 1, 2), 1, (1, 0, 1), 1, 1),
    ((1, 5, 4, 6, 4), (4, 3, 1, 2, 2), (2, 1, 2), 1, (1, 2, 1), 2),
]


@pytest.mark.parametrize("dt", FLOATS)
def test_conv_nd(warm, dt):
    rng = np.random.default_rng(0)
    for xs, ws, stride, pad, dil, groups in CASES:
        d = len(xs) - 2
        f = (None, mx.conv1d, mx.conv2d, mx.conv3d)[d]
        x_np = data(dt, xs, rng)
        w = data(dt, ws, rng)
        for label, x in variants(x_np):
            what = (dt, label, xs, ws, stride, pad, dil, groups)
            check(lambda a, b: f(a, b, stride, pad, dil, groups), x, w, dt=dt, what=what)


def test_conv_weights_not_contiguous(warm):
    rng = np.random.default_rng(1)
    x = data("float32", (2, 6, 6, 4), rng)
    w_t = data("float32", (2, 3, 3, 6), rng)         # (C_in / G, kh, kw, C_out) stored
    w = mx.transpose(w_t, (3, 1, 2, 0), stream=mx.cpu)
    check(lambda a, b: mx.conv2d(a, b, padding=1, groups=2), x, w, what="transposed weights")
    w_r = data("float32", (6, 3, 3, 2), rng)[:, ::-1]
    check(lambda a, b: mx.conv2d(a, b, groups=2), x, w_r, what="reversed weights")


# ---------------------------------------------------------------------------------------
# conv_general: asymmetric padding, input dilation, flip
# ---------------------------------------------------------------------------------------
# (input shape, weight shape, stride, (pad low, pad high), kernel dilation, input dilation,
# groups, flip)
GENERAL = [
    ((2, 7, 3), (2, 3, 3), 1, ([2], [0]), 1, 2, 1, True),
    ((1, 6, 2), (4, 2, 1), 3, ([0], [3]), 2, 3, 2, False),
    ((3, 5, 4), (4, 4, 2), 2, ([-1], [1]), 1, 1, 2, True),
    ((2, 5, 6, 3), (3, 3, 2, 3), (2, 1), ([1, 0], [2, 1]), (1, 2), (2, 1), 1, True),
    ((1, 4, 4, 4), (4, 2, 2, 1), 1, ([1, 1], [0, 2]), 1, (3, 2), 4, False),
    ((2, 6, 5, 2), (2, 3, 3, 2), 2, ([-1, 1], [1, -1]), 1, 1, 1, False),
    ((1, 3, 4, 5, 2), (4, 2, 2, 2, 1), (1, 2, 1), ([1, 0, 2], [0, 1, 1]), (2, 1, 1),
     (2, 1, 2), 2, True),
]


@pytest.mark.parametrize("dt", FLOATS)
def test_conv_general(warm, dt):
    rng = np.random.default_rng(2)
    for xs, ws, stride, pad, kdil, idil, groups, flip in GENERAL:
        x_np = data(dt, xs, rng)
        w = data(dt, ws, rng)
        for label, x in variants(x_np)[:2]:
            what = (dt, label, xs, ws, stride, pad, kdil, idil, groups, flip)
            check(lambda a, b: mx.conv_general(a, b, stride, pad, kdil, idil, groups, flip),
                  x, w, dt=dt, what=what)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16"])
def test_conv_transpose(warm, dt):
    rng = np.random.default_rng(3)
    # (input shape, weight shape, stride, padding, dilation, output padding, groups)
    cases = [((2, 5, 3), (4, 3, 3), 2, 1, 1, 1, 1),
             ((1, 6, 4), (6, 2, 2), 3, 0, 2, 0, 2),
             ((2, 4, 5, 3), (2, 3, 3, 3), 2, 1, 1, 1, 1),
             ((1, 3, 3, 2), (3, 2, 3, 2), (1, 2), (0, 1), (2, 1), (0, 1), 1),
             ((1, 3, 2, 3, 2), (2, 2, 2, 2, 2), 2, 0, 1, 0, 1)]
    for xs, ws, stride, pad, dil, opad, groups in cases:
        d = len(xs) - 2
        f = (None, mx.conv_transpose1d, mx.conv_transpose2d, mx.conv_transpose3d)[d]
        x = data(dt, xs, rng)
        w = data(dt, ws, rng)
        check(lambda a, b: f(a, b, stride, pad, dil, opad, groups), x, w, dt=dt,
              what=(dt, xs, ws, stride, pad, dil, opad, groups))


def test_convolve(warm):
    rng = np.random.default_rng(4)
    a = data("float32", (11,), rng)
    v = data("float32", (4,), rng)
    for mode in ("full", "same", "valid"):
        check(lambda p, q: mx.convolve(p, q, mode), a, v, what=mode)
        check(lambda p, q: mx.convolve(p, q, mode), v, a, what=mode + " swapped")


# ---------------------------------------------------------------------------------------
# dtypes, empty sums and outputs, chunks
# ---------------------------------------------------------------------------------------
def test_mixed_dtypes(warm):
    rng = np.random.default_rng(5)
    x = data("float16", (2, 6, 3), rng)
    w = data("float32", (4, 3, 3), rng)
    check(lambda a, b: mx.conv1d(a, b, padding=1), x, w, what="float16 x float32")
    xb = data("bfloat16", (2, 5, 4, 2), rng)
    wh = data("float16", (3, 2, 2, 2), rng)
    check(lambda a, b: mx.conv2d(a, b), xb, wh, what="bfloat16 x float16")


def test_empty(warm):
    rng = np.random.default_rng(6)
    # no input channels: an empty sum, zeros
    check(lambda a, b: mx.conv1d(a, b, padding=1), data("float32", (2, 5, 0), rng),
          data("float32", (3, 2, 0), rng), what="C_in 0")
    for xs, ws in (((0, 5, 3), (4, 2, 3)), ((2, 5, 3), (0, 2, 3))):
        x, w = data("float32", xs, rng), data("float32", ws, rng)
        G.reset_counts()
        g, c = run_both(lambda a, b: mx.conv1d(a, b), x, w)
        close(g, c, "float32", (xs, ws))
        assert not G.fallback_counts().get("conv_general"), G.fallback_counts()


@pytest.mark.parametrize("limit", [1, 100, 4000])
def test_chunked_patches(warm, monkeypatch, limit):
    """Patch matrices larger than PATCH_BYTES are made and multiplied a chunk of rows at
    a time (a chunk may end inside a batch element)."""
    monkeypatch.setattr(C, "PATCH_BYTES", limit)
    rng = np.random.default_rng(7)
    x = data("float32", (3, 7, 5, 4), rng)
    for ws, groups in (((6, 3, 2, 4), 1), ((6, 3, 3, 2), 2), ((4, 1, 1, 4), 1)):
        w = data("float32", ws, rng)
        check(lambda a, b: mx.conv2d(a, b, (2, 1), 1, 1, groups), x, w,
              what=(limit, ws, groups))
        check(lambda a, b: mx.conv2d(a, b, (2, 1), 1, 1, groups),
              mx.swapaxes(x, 1, 2, stream=mx.cpu), w, what=(limit, ws, groups, "view"))


def test_integer_weights_match_the_cpu(warm):
    rng = np.random.default_rng(8)
    x = data("float32", (2, 6, 3), rng)
    w = arr(rng.integers(-3, 4, (2, 3, 3)).astype(np.int32))
    g, c = run_both(lambda a, b: mx.conv1d(a, b), x, w)
    close(g, c, "float32", "int32 weights")


# ---------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------
GRADS = [
    ((2, 7, 3), (4, 3, 3), 2, ([1], [2]), 1, 1, 1, False),
    ((2, 6, 4), (4, 3, 2), 1, ([0], [0]), 2, 2, 2, True),
    ((2, 6, 5, 4), (6, 3, 3, 2), (2, 1), ([1, 1], [1, 0]), (1, 2), 1, 2, False),
    ((1, 5, 5, 3), (3, 3, 3, 1), 2, ([1, 1], [1, 1]), 1, 1, 3, False),    # depthwise
    ((2, 5, 6, 2), (3, 2, 3, 2), 3, ([0, 2], [1, 0]), 1, (2, 1), 1, True),
    ((1, 3, 4, 3, 2), (2, 2, 2, 2, 2), (1, 2, 1), ([1, 0, 1], [0, 1, 1]), 1, 1, 1, False),
]


@pytest.mark.parametrize("dt", ["float32", "float16", "float64"])
def test_conv_gradients(warm, dt):
    """The vjp of a convolution is two conv_general nodes (padding that crops, strides and
    input dilations swapped) and views: everything runs on the GPU."""
    rng = np.random.default_rng(9)
    for xs, ws, stride, pad, kdil, idil, groups, flip in GRADS:
        x = data(dt, xs, rng)
        w = data(dt, ws, rng)
        y = mx.conv_general(x, w, stride, pad, kdil, idil, groups, flip, stream=mx.cpu)
        ct = data(dt, y.shape, rng)

        def loss(a, b):
            return mx.sum(mx.conv_general(a, b, stride, pad, kdil, idil, groups, flip) * ct)

        what = (dt, xs, ws, stride, pad, kdil, idil, groups, flip)
        check(lambda a, b: mx.grad(loss, argnums=(0, 1))(a, b), x, w, dt=dt, what=what,
              strict=True)


def test_conv2d_network_training_step(warm):
    """value_and_grad of a small nn.Conv2d network: the loss and every parameter's gradient
    equal the CPU's, with no CPU fallback at all."""
    import mx.nn as nn
    from mx.utils import tree_flatten
    rng = np.random.default_rng(10)
    with mx.stream(mx.cpu):
        model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2), nn.ReLU(),
                              nn.Conv2d(8, 4, 1))
        mx.eval(model.parameters())
    x = data("float32", (2, 9, 7, 3), rng)
    target = data("float32", (2, 5, 4, 4), rng)

    def loss_fn(inp, tgt):
        return mx.mean((model(inp) - tgt) ** 2)

    step = nn.value_and_grad(model, loss_fn)

    def run(inp, tgt):
        value, grads = step(inp, tgt)
        return [value] + [v for _, v in tree_flatten(grads)]

    G.reset_counts()
    g, c = run_both(run, x, target)
    assert len(g) == 7
    for a, b in zip(g, c):
        close(a, b, "float32", "conv net")
    assert not G.fallback_counts(), G.fallback_counts()
    assert G.active_backend().gpu_runs["conv_general"] >= 8   # 3 forward, 5 backward
