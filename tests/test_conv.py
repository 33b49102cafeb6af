"""Convolutions against a direct-sum NumPy reference and PyTorch's CPU convolutions, with
MLX's argument forms, dtypes and error messages, and the rules checked by finite
differences and against Python loops."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import mx.core as mx
from gradcheck import check_grads, check_vmap
from oracle import assert_same

RNG = np.random.default_rng(3)


def rand(*shape, dtype=np.float32, rng=RNG):
    return rng.standard_normal(shape).astype(dtype)


def f64(x):
    return mx.array(x, dtype=mx.float64)


# ---------------------------------------------------------------------------------------
# direct-sum reference with MLX's conventions
# ---------------------------------------------------------------------------------------
def ref_conv(x, w, stride=1, lo=0, hi=0, kdil=1, idil=1, groups=1, flip=False):
    """sum over taps and channels, one output position at a time (float64). A negative
    padding removes input elements before the input dilation, as in MLX."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    d = x.ndim - 2
    per = lambda v: (v,) * d if np.isscalar(v) else tuple(v)
    stride, lo, hi, kdil, idil = map(per, (stride, lo, hi, kdil, idil))
    for i in range(d):
        start = max(-lo[i], 0)
        stop = x.shape[1 + i] - max(-hi[i], 0)
        x = np.take(x, np.arange(start, stop), axis=1 + i)
    lo = tuple(max(v, 0) for v in lo)
    hi = tuple(max(v, 0) for v in hi)
    spans = [(n - 1) * s + 1 for n, s in zip(x.shape[1:-1], idil)]
    xp = np.zeros((x.shape[0], *[l + s + h for l, s, h in zip(lo, spans, hi)], x.shape[-1]))
    xp[(slice(None),) + tuple(slice(l, l + s, dl) for l, s, dl in zip(lo, spans, idil))] = x
    if flip:
        w = w[(slice(None),) + (slice(None, None, -1),) * d]
    k = w.shape[1:-1]
    osize = [(xp.shape[1 + i] - kdil[i] * (k[i] - 1) - 1) // stride[i] + 1 for i in range(d)]
    cg, cog = w.shape[-1], w.shape[0] // groups
    out = np.zeros((x.shape[0], *osize, w.shape[0]))
    for o in itertools.product(*map(range, osize)):
        idx = np.ix_(*[o[i] * stride[i] + np.arange(k[i]) * kdil[i] for i in range(d)])
        win = xp[(slice(None),) + idx + (slice(None),)]  # (N, *K, C)
        for g in range(groups):
            out[(slice(None),) + o + (slice(g * cog, (g + 1) * cog),)] = np.tensordot(
                win[..., g * cg:(g + 1) * cg], w[g * cog:(g + 1) * cog],
                axes=(list(range(1, d + 2)), list(range(1, d + 2))))
    return out


def ref_transpose(x, w, stride, padding, dilation, output_padding, groups):
    """A transposed convolution as the scatter it is: every input element adds its weighted
    kernel into the (then cropped) output."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    d = x.ndim - 2
    k = w.shape[1:-1]
    cg, cog = w.shape[-1], w.shape[0] // groups
    full = [(x.shape[1 + i] - 1) * stride[i] + dilation[i] * (k[i] - 1) + 1 + output_padding[i]
            for i in range(d)]
    out = np.zeros((x.shape[0], *full, w.shape[0]))
    for pos in itertools.product(*[range(n) for n in x.shape[1:-1]]):
        for tap in itertools.product(*map(range, k)):
            o = tuple(pos[i] * stride[i] + tap[i] * dilation[i] for i in range(d))
            for g in range(groups):
                xin = x[(slice(None),) + pos + (slice(g * cg, (g + 1) * cg),)]  # (N, Cg)
                wk = w[(slice(g * cog, (g + 1) * cog),) + tap]  # (Cog, Cg)
                out[(slice(None),) + o + (slice(g * cog, (g + 1) * cog),)] += xin @ wk.T
    crop = tuple(slice(padding[i], full[i] - padding[i]) for i in range(d))
    return out[(slice(None),) + crop]


# ---------------------------------------------------------------------------------------
# against the NumPy reference
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation,groups", [
    (1, 0, 1, 1), (2, 1, 1, 1), (1, 2, 2, 1), (3, 1, 1, 2), (2, 0, 2, 4)])
def test_convnd_matches_reference(d, stride, padding, dilation, groups):
    spatial = {1: (11,), 2: (7, 6), 3: (5, 6, 5)}[d]
    x = rand(2, *spatial, 4)
    w = rand(4, *(3,) * d, 4 // groups)
    op = {1: mx.conv1d, 2: mx.conv2d, 3: mx.conv3d}[d]
    got = op(mx.array(x), mx.array(w), stride=stride, padding=padding, dilation=dilation,
             groups=groups)
    want = ref_conv(x, w, stride, padding, padding, dilation, 1, groups)
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_conv2d_per_axis_tuples():
    x, w = rand(2, 9, 8, 3), rand(5, 3, 2, 3)
    got = mx.conv2d(mx.array(x), mx.array(w), stride=(2, 1), padding=(0, 1), dilation=(1, 2))
    want = ref_conv(x, w, (2, 1), (0, 1), (0, 1), (1, 2))
    assert got.shape == (2, 4, 8, 5)
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw", [
    dict(padding=([1, 2], [0, 1])),                      # asymmetric (low, high) pairs
    dict(padding=([2], [0])),                            # one value for every axis
    dict(padding=(1, 2)),                                # one value per axis
    dict(padding=[[1, 0], [0, 2]]),                      # lists work like tuples
    dict(input_dilation=2),
    dict(input_dilation=[2, 3], padding=([1, 0], [2, 1]), stride=[1, 2]),
    dict(kernel_dilation=[2, 1], flip=True),
    dict(flip=True, groups=2, stride=2),
    dict(padding=([-1, 1], [0, -2])),                    # negative padding crops the input
    dict(padding=([-1, 2], [1, 0]), input_dilation=2),   # ...before the input dilation
    dict(stride=[], kernel_dilation=[], input_dilation=[]),  # empty: the defaults
])
def test_conv_general_matches_reference(kw):
    x, w = rand(2, 8, 7, 4), rand(6, 3, 2, 2 if kw.get("groups") else 4)
    got = mx.conv_general(mx.array(x), mx.array(w), **kw)
    pad = kw.get("padding", 0)
    if isinstance(pad, (tuple, list)) and isinstance(pad[0], (tuple, list)):
        lo = [pad[0][0]] * 2 if len(pad[0]) == 1 else pad[0]
        hi = [pad[1][0]] * 2 if len(pad[1]) == 1 else pad[1]
    else:
        lo = hi = pad
    expand = lambda v, dflt: dflt if v == [] else v
    want = ref_conv(x, w, expand(kw.get("stride", 1), 1), lo, hi,
                    expand(kw.get("kernel_dilation", 1), 1),
                    expand(kw.get("input_dilation", 1), 1), kw.get("groups", 1),
                    kw.get("flip", False))
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_negative_padding_uses_mlx_semantics():
    # MLX crops input elements, so the dilated extent shrinks by input_dilation per element
    x, w = rand(1, 2, 1), rand(1, 1, 1)
    got = mx.conv_general(mx.array(x), mx.array(w), padding=([2], [-1]), kernel_dilation=2,
                          input_dilation=2)
    assert got.shape == (1, 3, 1)
    assert_same(got, (np.array([0, 0, x[0, 0, 0]]) * w[0, 0, 0]).reshape(1, 3, 1)
                .astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 3), data=st.data())
def test_conv_general_property(d, data):
    draw = lambda s: data.draw(s)
    groups = draw(st.sampled_from([1, 2]))
    k = [draw(st.integers(1, 3)) for _ in range(d)]
    kd = [draw(st.integers(1, 2)) for _ in range(d)]
    idl = [draw(st.integers(1, 2)) for _ in range(d)]
    lo = [draw(st.integers(0, 2)) for _ in range(d)]
    hi = [draw(st.integers(0, 2)) for _ in range(d)]
    size = [draw(st.integers(kd_ * (k_ - 1) + 1, kd_ * (k_ - 1) + 4)) for k_, kd_ in zip(k, kd)]
    stride = [draw(st.integers(1, 3)) for _ in range(d)]
    flip = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rand(2, *size, 2 * groups, rng=rng)
    w = rand(2 * groups, *k, 2, rng=rng)
    got = mx.conv_general(mx.array(x), mx.array(w), stride=stride, padding=(lo, hi),
                          kernel_dilation=kd, input_dilation=idl, groups=groups, flip=flip)
    want = ref_conv(x, w, stride, lo, hi, kd, idl, groups, flip)
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation,output_padding,groups", [
    (1, 0, 1, 0, 1), (2, 1, 1, 1, 1), (2, 0, 2, 0, 2), (3, 1, 1, 2, 1)])
def test_conv_transpose_matches_scatter_reference(d, stride, padding, dilation, output_padding,
                                                  groups):
    spatial = {1: (5,), 2: (4, 3), 3: (3, 2, 3)}[d]
    x = rand(2, *spatial, 4)
    w = rand(2 * groups, *(3,) * d, 4 // groups)
    op = {1: mx.conv_transpose1d, 2: mx.conv_transpose2d, 3: mx.conv_transpose3d}[d]
    got = op(mx.array(x), mx.array(w), stride=stride, padding=padding, dilation=dilation,
             output_padding=output_padding, groups=groups)
    per = lambda v: (v,) * d
    want = ref_transpose(x, w, per(stride), per(padding), per(dilation), per(output_padding),
                         groups)
    assert_same(got, want.astype(np.float32), rtol=1e-4, atol=1e-4)


def test_conv_transpose_output_sizes_as_mlx():
    x, w = mx.ones((2, 9, 4)), mx.ones((6, 3, 4))
    assert mx.conv_transpose1d(x, w).shape == (2, 11, 6)
    assert mx.conv_transpose1d(x, w, stride=2, padding=1, dilation=2,
                               output_padding=1).shape == (2, 20, 6)
    assert mx.conv_transpose1d(x, w, stride=2, output_padding=5).shape == (2, 24, 6)
    assert mx.conv_transpose1d(x, w, output_padding=-1).shape == (2, 10, 6)
    assert mx.conv_transpose1d(x, w, padding=5).shape == (2, 1, 6)
    assert mx.conv_transpose2d(mx.ones((2, 5, 5, 4)), mx.ones((6, 3, 3, 4)), stride=(2, 1),
                               padding=(1, 0), output_padding=(1, 0)).shape == (2, 10, 7, 6)
    assert mx.conv_transpose3d(mx.ones((2, 5, 5, 5, 4)), mx.ones((6, 3, 3, 3, 4)),
                               stride=2).shape == (2, 11, 11, 11, 6)


# ---------------------------------------------------------------------------------------
# against PyTorch
# ---------------------------------------------------------------------------------------
def _torch_layout(x):
    """Channels-last (MLX) to channels-first (PyTorch)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation,groups", [(1, 1, 1, 1), (2, 2, 1, 3),
                                                            (1, 1, 2, 6)])
def test_conv_matches_torch(d, stride, padding, dilation, groups):
    torch = pytest.importorskip("torch")
    spatial = {1: (17,), 2: (10, 9), 3: (6, 7, 6)}[d]
    x = rand(3, *spatial, 6)
    w = rand(12, *(3,) * d, 6 // groups)
    got = {1: mx.conv1d, 2: mx.conv2d, 3: mx.conv3d}[d](
        mx.array(x), mx.array(w), stride=stride, padding=padding, dilation=dilation,
        groups=groups)
    tf = {1: torch.nn.functional.conv1d, 2: torch.nn.functional.conv2d,
          3: torch.nn.functional.conv3d}[d]
    want = tf(torch.from_numpy(_torch_layout(x)), torch.from_numpy(_torch_layout(w)),
              stride=stride, padding=padding, dilation=dilation, groups=groups).numpy()
    assert_same(got, np.moveaxis(want, 1, -1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("stride,padding,dilation,output_padding,groups", [
    (2, 1, 1, 1, 1), (3, 0, 2, 2, 2), (1, 1, 1, 0, 1)])
def test_conv_transpose_matches_torch(d, stride, padding, dilation, output_padding, groups):
    torch = pytest.importorskip("torch")
    spatial = {1: (7,), 2: (5, 6), 3: (4, 3, 4)}[d]
    cig, cog = 2, 3
    x = rand(2, *spatial, groups * cig)
    w = rand(groups * cog, *(3,) * d, cig)
    got = {1: mx.conv_transpose1d, 2: mx.conv_transpose2d, 3: mx.conv_transpose3d}[d](
        mx.array(x), mx.array(w), stride=stride, padding=padding, dilation=dilation,
        output_padding=output_padding, groups=groups)
    # PyTorch's weight is (C_in, C_out / groups, *K)
    tw = w.reshape(groups, cog, *(3,) * d, cig)
    tw = np.moveaxis(tw, -1, 1).reshape(groups * cig, cog, *(3,) * d)
    tf = {1: torch.nn.functional.conv_transpose1d, 2: torch.nn.functional.conv_transpose2d,
          3: torch.nn.functional.conv_transpose3d}[d]
    want = tf(torch.from_numpy(_torch_layout(x)), torch.from_numpy(np.ascontiguousarray(tw)),
              stride=stride, padding=padding, output_padding=output_padding, groups=groups,
              dilation=dilation).numpy()
    assert_same(got, np.moveaxis(want, 1, -1), rtol=1e-4, atol=1e-4)


def test_conv2d_benchmark_shape_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = rand(2, 16, 16, 64), rand(64, 3, 3, 64)
    got = mx.conv2d(mx.array(x), mx.array(w), padding=1)
    want = torch.nn.functional.conv2d(torch.from_numpy(_torch_layout(x)),
                                      torch.from_numpy(_torch_layout(w)), padding=1).numpy()
    assert_same(got, np.moveaxis(want, 1, -1), rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------------------------------
# convolve
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n,m", [(5, 3), (3, 5), (4, 4), (6, 2), (2, 6), (1, 1), (9, 4)])
def test_convolve_matches_numpy(mode, n, m):
    a, v = rand(n, dtype=np.float64), rand(m, dtype=np.float64)
    assert_same(mx.convolve(f64(a), f64(v), mode=mode), np.convolve(a, v, mode=mode),
                rtol=1e-10, atol=1e-10)


def test_convolve_dtypes_and_default_mode():
    assert_same(mx.convolve(mx.array([1.0, 2, 3]), mx.array([0.0, 1, 0.5])),
                np.convolve([1.0, 2, 3], [0.0, 1, 0.5]).astype(np.float32))
    got = mx.convolve(mx.array([1.0, 2, 3], dtype=mx.float16), mx.array([0.0, 1, 0.5]))
    assert got.dtype == mx.float32
    assert mx.convolve(mx.array([1.0, 2, 3]), mx.array([0, 1, 5])).dtype == mx.float32


def test_convolve_errors():
    a = mx.array([1.0, 2, 3])
    with pytest.raises(ValueError, match=r"\[convolve\] Invalid mode."):
        mx.convolve(a, a, mode="SAME")
    with pytest.raises(ValueError, match=r"\[convolve\] Inputs must be 1D."):
        mx.convolve(mx.array([[1.0, 2]]), a)
    with pytest.raises(ValueError, match=r"\[convolve\] Inputs must be 1D."):
        mx.convolve(a, mx.array(1.0))
    with pytest.raises(ValueError, match=r"\[convolve\] Inputs cannot be empty."):
        mx.convolve(mx.array([]), a)
    with pytest.raises(ValueError, match=r"\[conv\] Invalid input array with type int32"):
        mx.convolve(mx.array([1, 2, 3]), mx.array([0, 1, 5]))


# ---------------------------------------------------------------------------------------
# dtypes, shapes and errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("xd,wd,out", [
    ("float32", "float32", "float32"), ("float16", "float16", "float16"),
    ("bfloat16", "bfloat16", "bfloat16"), ("float16", "float32", "float32"),
    ("bfloat16", "float16", "float32"), ("float64", "float32", "float64"),
    ("float32", "int32", "float32"), ("float32", "complex64", "complex64")])
def test_conv_dtypes(xd, wd, out):
    x = mx.array(rand(2, 9, 4)).astype(getattr(mx, xd))
    w = mx.array(rand(6, 3, 4)).astype(getattr(mx, wd))
    got = mx.conv1d(x, w, padding=1)
    assert got.dtype.name == out and got.shape == (2, 9, 6)
    want = ref_conv(np.asarray(x.astype(mx.float64)), np.asarray(w.astype(mx.float64))
                    if wd != "complex64" else np.asarray(w.astype(mx.float32)), 1, 1, 1)
    tol = 5e-2 if "16" in xd + wd else 1e-4
    np.testing.assert_allclose(np.asarray(got.astype(mx.float32)) if out != "complex64"
                               else np.asarray(got).real, want, rtol=tol, atol=tol)


def test_conv_empty_dimensions():
    w = mx.ones((6, 3, 4))
    assert mx.conv1d(mx.ones((0, 9, 4)), w).shape == (0, 7, 6)
    assert mx.conv1d(mx.ones((2, 9, 0)), mx.ones((6, 3, 0))).tolist() == \
        np.zeros((2, 7, 6)).tolist()
    assert mx.conv1d(mx.ones((2, 9, 4)), mx.ones((0, 3, 4))).shape == (2, 7, 0)
    assert mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 0, 4))).shape == (2, 10, 6)
    assert mx.conv1d(mx.ones((2, 9, 4)), w, stride=20).shape == (2, 1, 6)
    assert mx.conv1d(mx.ones((2, 9, 4)), w, padding=-3).shape == (2, 1, 6)


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: mx.conv1d(mx.ones((2, 9, 4)).astype(mx.int32), mx.ones((6, 3, 4))), ValueError,
     r"\[conv\] Invalid input array with type int32. Convolution currently only supports "
     "floating point types"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)).astype(mx.complex64), mx.ones((6, 3, 4))),
     ValueError, r"Invalid input array with type complex64"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)).astype(mx.bool_), mx.ones((6, 3, 4))), ValueError,
     r"Invalid input array with type bool"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 2)), groups=4), ValueError,
     r"\[conv\] If groups > 1, the output channels must be divisible by the number of groups. "
     "Got 6 output channels and 4 groups."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 3)), groups=2), ValueError,
     r"\[conv\] Given groups=2 and weights of shape \(6,3,3\), expected to have 6 input "
     "channels but got 4 input channels instead."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 2)), groups=3), ValueError,
     r"\[conv\] The input channels must be divisible by the number of groups. Got input with "
     r"shape \(2,9,4\) and 3 groups."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 5))), ValueError,
     r"\[conv\] Expect the input channels in the input and weight array to match but got "
     r"shapes - input: \(2,9,4\) and weight: \(6,3,5\)"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3))), ValueError,
     r"\[conv\] Invalid weight array with 2 dimensions for 1D convolution. Expected an array "
     r"with 3 dimensions following the format \[C_out, ..., C_in\]."),
    (lambda: mx.conv1d(mx.ones((9, 4)), mx.ones((6, 3, 4))), ValueError,
     r"\[conv1d\] Invalid input array with 2 dimensions for 1D convolution. Expected an array "
     r"with 3 dimensions following the format \[N, ..., C_in\]."),
    (lambda: mx.conv2d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4))), ValueError,
     r"\[conv2d\] Invalid input array with 3 dimensions for 2D convolution"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 10, 4))), ValueError,
     r"\[conv\] Spatial dimensions of input after padding cannot be smaller than weight spatial "
     r"dimensions. Got error at axis 1 for input with shape \(2,9,4\), padding low \(0\), "
     r"padding high \(0\), and weight of shape \(6,10,4\)."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), padding=-4), ValueError,
     r"Got error at axis 1 for input with shape \(2,1,4\)"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), dilation=5), ValueError,
     r"Spatial dimensions of input after padding cannot be smaller"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), stride=0), ValueError,
     r"\[conv\] Stride sizes must be positive. Got strides \(0\)."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), dilation=0), ValueError,
     r"\[conv\] Kernel dilation sizes must be positive. Got kernel dilation \(0\)."),
    (lambda: mx.conv_general(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), input_dilation=0),
     ValueError, r"\[conv\] Input dilation sizes must be positive. Got input dilation \(0\)."),
    (lambda: mx.conv_transpose1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), stride=0), ValueError,
     r"\[conv\] Input dilation sizes must be positive"),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), groups=0), ValueError,
     r"\[conv\] groups must be a positive integer, got 0."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), groups=2.0), TypeError,
     r"\[conv\] groups must be an integer, got float."),
    (lambda: mx.conv1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), padding=1.5), TypeError,
     r"\[conv1d\] padding must be an int or a sequence of ints"),
    (lambda: mx.conv2d(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)), stride=(1, 2, 3)),
     ValueError, r"\[conv2d\] stride must be an int or a sequence of 2 ints"),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)), stride=[1, 2, 3]),
     ValueError, r"\[conv\] Invalid strides \(1,2,3\) for 2D convolution."),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)),
                             kernel_dilation=[1, 2, 3]),
     ValueError, r"\[conv\] Invalid kernel dilation \(1,2,3\) for 2D convolution."),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)),
                             input_dilation=[1, 2, 3]),
     ValueError, r"\[conv\] Invalid input dilation \(1,2,3\) for 2D convolution."),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)),
                             padding=([1, 2], [0, 1, 3])),
     ValueError, r"\[conv\] Invalid padding \(1,2\) \| \(0,1,3\) for 2D convolution."),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 3, 4)), padding=[1, 2, 3]),
     ValueError, r"\[conv\] Invalid padding \(1,2,3\) \| \(1,2,3\) for 2D convolution."),
    (lambda: mx.conv_general(mx.ones((2, 4)), mx.ones((6, 4))), ValueError,
     r"\[conv\] Only works for inputs with 1-3 spatial dimensions. The inputs must be in the "
     r"format \[N, ..., C_in\]"),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 9, 9, 4)), mx.ones((6, 3, 3, 3, 3, 4))),
     ValueError, r"Only works for inputs with 1-3 spatial dimensions"),
    (lambda: mx.conv_general(mx.ones((2, 9, 9, 4)), mx.ones((6, 3, 4))), ValueError,
     r"\[conv\] Invalid weight array with 3 dimensions for 2D convolution"),
    (lambda: mx.conv_general(mx.ones((2, 9, 4)), mx.ones((6, 3, 4)), flip=1), TypeError,
     r"\[conv_general\] flip must be a bool, got int."),
    (lambda: mx.conv_transpose2d(mx.ones((2, 9, 4)), mx.ones((6, 3, 3, 4))), ValueError,
     r"\[conv_transpose2d\] Invalid input array with 3 dimensions for 2D convolution"),
    (lambda: mx.conv_transpose1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 3, 4))), ValueError,
     r"\[conv\] Invalid weight array with 4 dimensions for 1D convolution"),
    (lambda: mx.conv_transpose1d(mx.ones((2, 9, 4)), mx.ones((6, 3, 5))), ValueError,
     r"\[conv\] Expect the input channels in the input and weight array to match"),
])
def test_conv_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


def test_conv_is_lazy():
    y = mx.conv1d(mx.ones((1, 5, 1)), mx.ones((1, 3, 1)))
    assert y._prim is not None
    assert y.tolist() == [[[3.0], [3.0], [3.0]]]


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fun,xs,ws", [
    (lambda x, w: mx.conv1d(x, w, stride=2, padding=1, dilation=2), (2, 9, 4), (3, 2, 4)),
    (lambda x, w: mx.conv1d(x, w, padding=2, groups=2), (2, 6, 4), (4, 3, 2)),
    (lambda x, w: mx.conv2d(x, w, stride=(2, 1), padding=(1, 0), groups=2), (2, 5, 6, 2),
     (4, 2, 3, 1)),
    (lambda x, w: mx.conv3d(x, w, stride=2, padding=1), (1, 4, 5, 3, 2), (2, 2, 3, 2, 2)),
    (lambda x, w: mx.conv_general(x, w, stride=[2, 1], padding=([1, -1], [2, 0]),
                                  kernel_dilation=[1, 2], input_dilation=[2, 1], flip=True),
     (2, 4, 7, 2), (3, 2, 2, 2)),
    (lambda x, w: mx.conv_general(x, w, padding=([-1], [1]), input_dilation=3, stride=2),
     (2, 5, 2), (2, 3, 2)),
    (lambda x, w: mx.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1, groups=2),
     (2, 5, 4), (4, 3, 2)),
    (lambda x, w: mx.conv_transpose2d(x, w, stride=(2, 3), dilation=(1, 2)), (1, 3, 3, 2),
     (2, 2, 2, 2)),
    (lambda x, w: mx.convolve(mx.reshape(x, (-1,)), mx.reshape(w, (-1,)), mode="same"),
     (1, 7, 1), (1, 3, 1)),
])
def test_conv_rules_finite_differences(fun, xs, ws):
    rng = np.random.default_rng(0)
    check_grads(fun, [rng.standard_normal(xs), rng.standard_normal(ws)], rtol=1e-4, atol=1e-5)


def test_conv_grad_of_grad():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 7, 6)), rng.standard_normal((6, 3, 2))

    def grads(x, w):
        loss = lambda x, w: (mx.conv1d(x, w, stride=2, padding=1, groups=3) ** 2).sum()
        return mx.grad(loss, argnums=(0, 1))(x, w)

    check_grads(lambda x, w: grads(x, w)[0], [x, w], rtol=1e-4, atol=1e-5)
    check_grads(lambda x, w: grads(x, w)[1], [x, w], rtol=1e-4, atol=1e-5)


def test_conv_vjp_against_torch_autograd():
    torch = pytest.importorskip("torch")
    x, w = rand(2, 8, 7, 4, dtype=np.float64), rand(6, 3, 2, 2, dtype=np.float64)
    ct = rand(2, 4, 8, 6, dtype=np.float64)
    _, (gx, gw) = mx.vjp(lambda x, w: mx.conv2d(x, w, stride=(2, 1), padding=1, groups=2),
                         [f64(x), f64(w)], [f64(ct)])
    tx = torch.from_numpy(_torch_layout(x)).requires_grad_()
    tw = torch.from_numpy(_torch_layout(w)).requires_grad_()
    ty = torch.nn.functional.conv2d(tx, tw, stride=(2, 1), padding=1, groups=2)
    ty.backward(torch.from_numpy(_torch_layout(ct)))
    np.testing.assert_allclose(np.asarray(gx), np.moveaxis(tx.grad.numpy(), 1, -1), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(gw), np.moveaxis(tw.grad.numpy(), 1, -1), rtol=1e-10)


def test_conv_vjp_dtypes_follow_inputs():
    x = mx.array(rand(1, 5, 2)).astype(mx.float16)
    w = mx.array(rand(3, 2, 2))
    _, (gx, gw) = mx.vjp(lambda x, w: mx.conv1d(x, w), [x, w], [mx.ones((1, 4, 3))])
    assert gx.dtype == mx.float16 and gw.dtype == mx.float32
    _, (gx, gw) = mx.vjp(lambda x, w: mx.conv1d(x, w), [mx.array(rand(1, 5, 2)),
                                                      mx.ones((3, 2, 2), dtype=mx.int32)],
                         [mx.ones((1, 4, 3))])
    assert gx.shape == (1, 5, 2) and gx.dtype == mx.float32
    assert gw.dtype == mx.int32 and not np.asarray(gw).any()  # integer weights: zero


@pytest.mark.parametrize("in_axes", [[0, None], [None, 0], [0, 0], [2, 3]])
def test_conv_vmap(in_axes):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 7, 6)).astype(np.float32)
    w = rng.standard_normal((3, 6, 3, 2)).astype(np.float32)
    xs = mx.array(x if in_axes[0] != 2 else np.moveaxis(x, 0, 2))
    ws = mx.array(w if in_axes[1] != 3 else np.moveaxis(w, 0, 3))
    args = [xs if in_axes[0] is not None else mx.array(x[0]),
            ws if in_axes[1] is not None else mx.array(w[0])]
    fun = lambda x, w: mx.conv_general(x, w, stride=2, padding=([1], [2]), input_dilation=2,
                                       groups=3, flip=True)
    check_vmap(fun, args, in_axes=in_axes, rtol=1e-5, atol=1e-5)


def test_conv_vmap_of_grad():
    rng = np.random.default_rng(4)
    w = mx.array(rng.standard_normal((6, 3, 2)).astype(np.float32))
    x = mx.array(rng.standard_normal((3, 2, 7, 6)).astype(np.float32))
    fun = mx.grad(lambda x: (mx.conv1d(x, w, padding=1, groups=3) ** 2).sum())
    check_vmap(fun, [x], rtol=1e-4, atol=1e-4)
