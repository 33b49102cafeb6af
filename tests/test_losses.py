"""mx.nn.losses against NumPy (reductions, defaults, options, error messages), plus the
initializers of mx.nn.init."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mx.core as mx
import mx.nn as nn
from oracle import assert_same

L = nn.losses
RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def A(x):
    return mx.array(x)


def f32(x):
    return np.asarray(x, dtype=np.float32)


REDUCE = {"none": lambda v: v, "mean": np.mean, "sum": np.sum}


def _log_softmax(x, axis=-1):
    x = x.astype(np.float64)
    m = x.max(axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis, keepdims=True))


@pytest.fixture(autouse=True)
def _seeded():
    mx.random.seed(0)


# ----------------------------------------------------------------------------------------
# documented examples (values printed in MLX's docstrings)
# ----------------------------------------------------------------------------------------
def test_documented_examples():
    logits = A([[2.0, -1.0], [-1.0, 2.0]])
    assert_same(L.cross_entropy(logits, A([0, 1])), f32([0.0485873, 0.0485873]), rtol=1e-5)
    assert_same(L.cross_entropy(logits, A([[0.9, 0.1], [0.1, 0.9]])),
                f32([0.348587, 0.348587]), rtol=1e-5)
    loss = L.binary_cross_entropy(A([0.105361, 0.223144, 1.20397, 0.916291]), A([0, 0, 1, 1]))
    assert_same(loss, f32(0.539245), rtol=1e-5)
    loss = L.binary_cross_entropy(A([0.1, 0.1, 0.4, 0.4]), A([0, 0, 1, 1]), with_logits=False)
    assert_same(loss, f32(0.510826), rtol=1e-5)
    loss = L.margin_ranking_loss(A([-0.573409, -0.765166, -0.0638]),
                                 A([0.75596, 0.225763, 0.256995]), A([1, 1, -1]))
    assert_same(loss, f32([1.32937, 0.990929, 0]), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------
# cross entropy family
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_cross_entropy_with_indices_probabilities_weights_and_smoothing(reduction):
    logits = randn(6, 5) * 3
    idx = RNG.integers(0, 5, 6).astype(np.int32)
    lsm = _log_softmax(logits)
    want = -lsm[np.arange(6), idx]
    assert_same(L.cross_entropy(A(logits), A(idx), reduction=reduction),
                f32(REDUCE[reduction](want)), rtol=1e-5, atol=1e-6)
    probs = np.abs(randn(6, 5))
    probs /= probs.sum(-1, keepdims=True)
    want = -(probs * lsm).sum(-1)
    assert_same(L.cross_entropy(A(logits), A(probs), reduction=reduction),
                f32(REDUCE[reduction](want)), rtol=1e-5, atol=1e-6)
    w = np.abs(randn(6))
    ls = 0.2
    want = (-(1 - ls) * lsm[np.arange(6), idx] - ls * lsm.mean(-1)) * w
    got = L.cross_entropy(A(logits), A(idx), weights=A(w), label_smoothing=ls,
                          reduction=reduction)
    assert_same(got, f32(REDUCE[reduction](want)), rtol=1e-5, atol=1e-5)


def test_cross_entropy_along_another_axis():
    logits = randn(4, 3, 2)
    idx = RNG.integers(0, 4, (3, 2)).astype(np.int32)
    lsm = _log_softmax(logits, axis=0)
    want = -np.take_along_axis(lsm, idx[None], 0)[0]
    assert_same(L.cross_entropy(A(logits), A(idx), axis=0), f32(want), rtol=1e-5, atol=1e-6)


def test_cross_entropy_is_stable_for_large_logits():
    got = L.cross_entropy(A([[1000.0, 0.0], [0.0, -1000.0]]), A([1, 0]))
    assert_same(got, f32([1000.0, 0.0]), rtol=1e-6, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 5), st.integers(2, 6), st.integers(0, 2**31 - 1))
def test_cross_entropy_indices_equal_one_hot_probabilities(n, c, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)).astype(np.float32) * 4
    idx = rng.integers(0, c, n).astype(np.int32)
    onehot = np.eye(c, dtype=np.float32)[idx]
    a = np.array(L.cross_entropy(A(logits), A(idx)))
    b = np.array(L.cross_entropy(A(logits), A(onehot)))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert np.all(a >= -1e-6)


def test_cross_entropy_errors():
    z = mx.zeros((2, 3))
    with pytest.raises(ValueError, match=r"Targets shape \(3,\) does not match logits shape "
                                         r"\(2, 3\)\."):
        L.cross_entropy(z, mx.zeros((3,), mx.int32))
    with pytest.raises(ValueError, match=r"Targets shape \(2, 2\) does not match logits shape"):
        L.cross_entropy(z, mx.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"Label smoothing must be in \[0, 1\), got 1\.0\."):
        L.cross_entropy(z, mx.zeros((2,), mx.int32), label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"Weights with shape \(3,\) is not the same as output "
                                         r"loss with shape \(2,\)\."):
        L.cross_entropy(z, mx.zeros((2,), mx.int32), weights=mx.ones((3,)))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_binary_cross_entropy_logits_and_probabilities(reduction):
    x = randn(4, 3) * 3
    t = (RNG.random((4, 3)) > 0.5).astype(np.float32)
    want = np.logaddexp(0, x) - x * t
    assert_same(L.binary_cross_entropy(A(x), A(t), reduction=reduction),
                f32(REDUCE[reduction](want)), rtol=1e-5, atol=1e-6)
    p = 1 / (1 + np.exp(-x))
    w = np.abs(randn(4, 3))
    want = -(t * np.log(p) + (1 - t) * np.log(1 - p)) * w
    got = L.binary_cross_entropy(A(p), A(t), weights=A(w), with_logits=False,
                                 reduction=reduction)
    assert_same(got, f32(REDUCE[reduction](want)), rtol=1e-4, atol=1e-5)


def test_binary_cross_entropy_defaults_to_mean_and_clips_logs():
    assert L.binary_cross_entropy(A([0.3, -2.0]), A([1.0, 0.0])).shape == ()
    # log(0) is clipped to -100
    got = L.binary_cross_entropy(A([0.0, 1.0]), A([1.0, 0.0]), with_logits=False,
                                 reduction="none")
    assert_same(got, f32([100.0, 100.0]))
    with pytest.raises(ValueError, match=r"Inputs shape \(2,\) does not match targets shape "
                                         r"\(3,\)\."):
        L.binary_cross_entropy(mx.zeros((2,)), mx.zeros((3,)))
    with pytest.raises(ValueError, match=r"Weights with shape \(1,\) is not the same"):
        L.binary_cross_entropy(mx.zeros((2,)), mx.zeros((2,)), weights=mx.ones((1,)))


def test_nll_and_kl_div():
    lp = _log_softmax(randn(5, 4)).astype(np.float32)
    idx = RNG.integers(0, 4, 5).astype(np.int32)
    assert_same(L.nll_loss(A(lp), A(idx)), -lp[np.arange(5), idx])
    assert_same(L.nll_loss(A(lp), A(idx), reduction="mean"), f32(-lp[np.arange(5), idx].mean()),
                rtol=1e-5)
    assert_same(L.nll_loss(A(lp.T.copy()), A(idx), axis=0, reduction="sum"),
                f32(-lp[np.arange(5), idx].sum()), rtol=1e-5)
    lq = _log_softmax(randn(5, 4)).astype(np.float32)
    want = (np.exp(lq) * (lq - lp)).sum(-1)
    assert_same(L.kl_div_loss(A(lp), A(lq)), want, rtol=1e-5, atol=1e-6)
    assert_same(L.kl_div_loss(A(lp.T.copy()), A(lq.T.copy()), axis=0, reduction="sum"),
                f32(want.sum()), rtol=1e-5)


# ----------------------------------------------------------------------------------------
# regression losses
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_elementwise_regression_losses(reduction):
    p, t = randn(4, 3) * 2, randn(4, 3)
    d = p - t
    r = REDUCE[reduction]
    cases = [
        (L.l1_loss, {}, np.abs(d)),
        (L.mse_loss, {}, d**2),
        (L.smooth_l1_loss, {"beta": 0.5},
         np.where(np.abs(d) < 0.5, 0.5 * d**2 / 0.5, np.abs(d) - 0.25)),
        (L.huber_loss, {"delta": 0.7},
         np.where(np.abs(d) <= 0.7, 0.5 * d**2, 0.7 * (np.abs(d) - 0.35))),
        (L.log_cosh_loss, {}, np.log(np.cosh(d.astype(np.float64)))),
        (L.hinge_loss, {}, np.maximum(1 - p * np.sign(t), 0)),
    ]
    for fn, kw, want in cases:
        tt = np.sign(t) if fn is L.hinge_loss else t
        got = fn(A(p), A(tt), reduction=reduction, **kw)
        assert_same(got, f32(r(want)), rtol=1e-5, atol=1e-5)


def test_regression_loss_default_reductions():
    p, t = A(randn(3)), A(randn(3))
    for fn in (L.l1_loss, L.mse_loss, L.smooth_l1_loss):
        assert fn(p, t).shape == ()
    for fn in (L.huber_loss, L.log_cosh_loss, L.hinge_loss):
        assert fn(p, t).shape == (3,)
    assert L.gaussian_nll_loss(p, t, mx.ones((3,))).shape == ()
    assert L.triplet_loss(mx.ones((2, 3)), mx.ones((2, 3)), mx.ones((2, 3))).shape == (2,)


def test_gaussian_nll():
    x, t = randn(4, 3), randn(4, 3)
    v = np.abs(randn(4, 3))
    v[0, 0] = 0.0  # clamped at eps
    vv = np.maximum(v, 1e-6)
    want = 0.5 * (np.log(vv) + (t - x) ** 2 / vv)
    assert_same(L.gaussian_nll_loss(A(x), A(t), A(v), reduction="none"), f32(want), rtol=1e-4,
                atol=1e-3)
    v[0, 0] = 0.5
    want = 0.5 * (np.log(v) + (t - x) ** 2 / v) + 0.5 * math.log(2 * math.pi)
    assert_same(L.gaussian_nll_loss(A(x), A(t), A(v), full=True), f32(want.mean()), rtol=1e-5)
    with pytest.raises(ValueError, match=r"Inputs shape \(4, 3\) does not match vars shape "
                                         r"\(3,\)\."):
        L.gaussian_nll_loss(A(x), A(t), mx.ones((3,)))
    with pytest.raises(ValueError, match=r"Inputs shape \(4, 3\) does not match targets shape "
                                         r"\(3,\)\."):
        L.gaussian_nll_loss(A(x), mx.ones((3,)), A(v))


def test_triplet_cosine_and_margin_ranking():
    a, p, n = randn(5, 4), randn(5, 4), randn(5, 4)

    def dist(u, v, q):
        return ((np.abs(u - v) ** q).sum(-1) + 1e-6) ** (1 / q)

    want = np.maximum(dist(a, p, 3) - dist(a, n, 3) + 0.5, 0)
    assert_same(L.triplet_loss(A(a), A(p), A(n), p=3, margin=0.5), f32(want), rtol=1e-4,
                atol=1e-5)
    want = np.maximum(dist(a.T, p.T, 2) - dist(a.T, n.T, 2) + 1, 0)
    assert_same(L.triplet_loss(A(a), A(p), A(n), axis=0, reduction="sum"), f32(want.sum()),
                rtol=1e-4)
    cos = (a * p).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(p, axis=1),
                                      1e-8)
    assert_same(L.cosine_similarity_loss(A(a), A(p)), f32(cos), rtol=1e-5, atol=1e-6)
    assert_same(L.cosine_similarity_loss(A(a), A(p), reduction="mean"), f32(cos.mean()),
                rtol=1e-5, atol=1e-6)
    assert_same(L.cosine_similarity_loss(mx.zeros((2, 3)), mx.zeros((2, 3))), f32([0, 0]))
    x1, x2 = randn(6), randn(6)
    y = np.sign(randn(6))
    want = np.maximum(0, -y * (x1 - x2) + 0.3)
    assert_same(L.margin_ranking_loss(A(x1), A(x2), A(y), margin=0.3, reduction="sum"),
                f32(want.sum()), rtol=1e-5)
    with pytest.raises(ValueError, match=r"The shapes of the arguments do not match. The provided "
                                         r"shapes are inputs1.shape=\(6,\), inputs2.shape=\(6,\), "
                                         r"and targets.shape=\(2,\)\."):
        L.margin_ranking_loss(A(x1), A(x2), mx.ones((2,)))


@pytest.mark.parametrize("fn", [L.l1_loss, L.mse_loss, L.smooth_l1_loss])
def test_shape_mismatch_messages(fn):
    with pytest.raises(ValueError, match=r"Predictions shape \(2, 3\) does not match targets "
                                         r"shape \(3,\)\."):
        fn(mx.zeros((2, 3)), mx.zeros((3,)))


@pytest.mark.parametrize("fn, args", [
    (L.mse_loss, 2), (L.cross_entropy, "ce"), (L.hinge_loss, 2), (L.kl_div_loss, 2),
])
def test_invalid_reduction(fn, args):
    z = mx.zeros((2, 3))
    call_args = (z, mx.zeros((2,), mx.int32)) if args == "ce" else (z, z)
    with pytest.raises(ValueError, match=r"Invalid reduction. Must be one of \('none', 'mean', "
                                         r"'sum'\)\."):
        fn(*call_args, reduction="avg")


def test_losses_are_differentiable():
    x, t = A(randn(4, 3)), A(randn(4, 3))
    g = mx.grad(lambda x: L.mse_loss(x, t))(x)
    assert_same(g, 2 * (np.array(x) - np.array(t)) / 12, rtol=1e-5, atol=1e-6)
    idx = A(np.int32([0, 2, 1, 1]))
    g = mx.grad(lambda x: L.cross_entropy(x, idx, reduction="sum"))(x)
    sm = np.exp(_log_softmax(np.array(x)))
    want = sm - np.eye(3)[np.array(idx)]
    assert_same(g, f32(want), rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------
# initializers
# ----------------------------------------------------------------------------------------
I = nn.init  # noqa: E741


def test_constant_identity_and_dtypes():
    assert_same(I.constant(0.5, mx.float16)(mx.zeros((2, 3))), np.full((2, 3), 0.5, np.float16))
    assert_same(I.identity()(mx.zeros((3, 3))), np.eye(3, dtype=np.float32))
    assert I.normal(dtype=mx.float16)(mx.zeros((2,))).dtype == mx.float16
    assert I.uniform(dtype=mx.bfloat16)(mx.zeros((2,))).dtype == mx.bfloat16
    with pytest.raises(ValueError, match=r"The input array must be a square matrix but got "
                                         r"shape \(2, 3\)\."):
        I.identity()(mx.zeros((2, 3)))


def test_normal_and_uniform_statistics():
    x = np.array(I.normal(mean=2.0, std=0.5)(mx.zeros((200, 100))))
    assert abs(x.mean() - 2.0) < 0.02 and abs(x.std() - 0.5) < 0.02
    u = np.array(I.uniform(low=-3.0, high=-1.0)(mx.zeros((200, 100))))
    assert u.min() >= -3.0 and u.max() < -1.0 and abs(u.mean() + 2.0) < 0.02


@pytest.mark.parametrize("shape", [(300, 200), (64, 3, 3, 16)])
def test_glorot_and_he_scales(shape):
    receptive = math.prod(shape[1:-1])
    fan_in, fan_out = shape[-1] * receptive, shape[0] * receptive
    a = mx.zeros(shape)
    g = np.array(I.glorot_normal()(a, gain=2.0))
    assert abs(g.std() / (2 * math.sqrt(2 / (fan_in + fan_out))) - 1) < 0.05
    limit = math.sqrt(6 / (fan_in + fan_out))
    g = np.array(I.glorot_uniform()(a))
    assert np.abs(g).max() <= limit and np.abs(g).max() > 0.95 * limit
    h = np.array(I.he_normal()(a, mode="fan_out"))
    assert abs(h.std() * math.sqrt(fan_out) - 1) < 0.05
    h = np.array(I.he_uniform()(a, gain=0.5))
    limit = 0.5 * math.sqrt(3 / fan_in)
    assert np.abs(h).max() <= limit and np.abs(h).max() > 0.95 * limit


def test_fan_errors():
    with pytest.raises(ValueError, match="Glorot / He initialization requires at least 2 "
                                         "dimensional input but input with 1 dimensions."):
        I.glorot_uniform()(mx.zeros((3,)))
    with pytest.raises(ValueError, match="Invalid mode: fan_avg. Valid modes are: fan_in, "
                                         "fan_out"):
        I.he_normal()(mx.zeros((3, 3)), mode="fan_avg")


def test_sparse_zeroes_a_fixed_share_of_every_row():
    x = np.array(I.sparse(0.3, std=2.0)(mx.zeros((20, 10))))
    assert np.all((x == 0).sum(1) == 3)
    with pytest.raises(ValueError, match="Only tensors with 2 dimensions are supported"):
        I.sparse(0.5)(mx.zeros((3,)))


@pytest.mark.parametrize("shape", [(4, 4), (3, 6), (6, 3)])
def test_orthogonal(shape, monkeypatch):
    for fallback in (False, True):
        if fallback:
            monkeypatch.delattr(mx.linalg, "qr", raising=False)
        q = np.array(I.orthogonal(gain=2.0)(mx.zeros(shape))).astype(np.float64)
        assert q.shape == shape
        small = min(shape)
        gram = q @ q.T if shape[0] == small else q.T @ q
        np.testing.assert_allclose(gram, 4 * np.eye(small), atol=1e-4)
    with pytest.raises(ValueError, match="Orthogonal initialization requires a 2D array but got "
                                         "a 1D array."):
        I.orthogonal()(mx.zeros((3,)))
