"""mx.nn: layers against NumPy / PyTorch references, parameter names and shapes against
literals recorded from MLX 0.32, the Module API, value_and_grad and checkpoint."""
import math
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mx.core as mx
import mx.nn as nn
from mx.core.primitives import REGISTRY
from mx.utils import tree_flatten, tree_map
from oracle import assert_same

RNG = np.random.default_rng(0)


def randn(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def npa(x):
    return np.array(x)


def close(got, want, rtol=1e-4, atol=1e-5):
    np.testing.assert_allclose(npa(got), want, rtol=rtol, atol=atol)


@pytest.fixture(autouse=True)
def _seeded():
    mx.random.seed(0)


needs_matmul_grad = pytest.mark.skipif(
    REGISTRY["matmul"].vjp is None,
    reason="matmul has no vjp rule yet (mx/core/ops/products.py); Linear cannot be "
           "differentiated")


# ----------------------------------------------------------------------------------------
# parameter names, shapes and frozen keys, recorded from MLX 0.32.4
# ----------------------------------------------------------------------------------------
PARAMS = {
    'nn.Linear(3, 4)': ([('weight', (4, 3)), ('bias', (4,))], []),
    'nn.Linear(3, 4, bias=False)': ([('weight', (4, 3))], []),
    'nn.Bilinear(2, 3, 4)': ([('weight', (4, 3, 2)), ('bias', (4,))], []),
    'nn.Embedding(10, 4)': ([('weight', (10, 4))], []),
    'nn.Conv1d(4, 6, 3, groups=2)': ([('weight', (6, 3, 2)), ('bias', (6,))], []),
    'nn.Conv2d(3, 5, (3, 2), bias=False)': ([('weight', (5, 3, 2, 3))], []),
    'nn.Conv3d(2, 3, 2)': ([('weight', (3, 2, 2, 2, 2)), ('bias', (3,))], []),
    'nn.ConvTranspose1d(4, 3, 3)': ([('weight', (3, 3, 4)), ('bias', (3,))], []),
    'nn.ConvTranspose2d(3, 2, (2, 3))': ([('weight', (2, 2, 3, 3)), ('bias', (2,))], []),
    'nn.ConvTranspose3d(2, 3, 2, bias=False)': ([('weight', (3, 2, 2, 2, 2))], []),
    'nn.LayerNorm(4)': ([('weight', (4,)), ('bias', (4,))], []),
    'nn.LayerNorm(4, bias=False)': ([('weight', (4,))], []),
    'nn.LayerNorm(4, affine=False)': ([], []),
    'nn.RMSNorm(4)': ([('weight', (4,))], []),
    'nn.GroupNorm(2, 4)': ([('bias', (4,)), ('weight', (4,))], []),
    'nn.GroupNorm(2, 4, affine=False)': ([], []),
    'nn.InstanceNorm(4)': ([], []),
    'nn.InstanceNorm(4, affine=True)': ([('weight', (4,)), ('bias', (4,))], []),
    'nn.BatchNorm(4)': ([('weight', (4,)), ('bias', (4,)), ('running_mean', (4,)),
                         ('running_var', (4,))], ['running_mean', 'running_var']),
    'nn.BatchNorm(4, affine=False, track_running_stats=False)': ([], []),
    'nn.PReLU(3)': ([('weight', (3,))], []),
    'nn.RNN(4, 5)': ([('Wxh', (5, 4)), ('Whh', (5, 5)), ('bias', (5,))], []),
    'nn.RNN(4, 5, bias=False)': ([('Wxh', (5, 4)), ('Whh', (5, 5))], []),
    'nn.GRU(4, 5)': ([('Wx', (15, 4)), ('Wh', (15, 5)), ('b', (15,)), ('bhn', (5,))], []),
    'nn.GRU(4, 5, bias=False)': ([('Wx', (15, 4)), ('Wh', (15, 5))], []),
    'nn.LSTM(4, 5)': ([('Wx', (20, 4)), ('Wh', (20, 5)), ('bias', (20,))], []),
    'nn.MultiHeadAttention(8, 2)': ([('query_proj.weight', (8, 8)), ('key_proj.weight', (8, 8)),
                                     ('value_proj.weight', (8, 8)), ('out_proj.weight', (8, 8))],
                                    []),
    'nn.MultiHeadAttention(8, 2, query_input_dims=3, key_input_dims=5, value_dims=6, '
    'value_output_dims=7, bias=True)': (
        [('query_proj.weight', (8, 3)), ('query_proj.bias', (8,)), ('key_proj.weight', (8, 5)),
         ('key_proj.bias', (8,)), ('value_proj.weight', (6, 5)), ('value_proj.bias', (6,)),
         ('out_proj.weight', (7, 6)), ('out_proj.bias', (7,))], []),
    'nn.TransformerEncoderLayer(8, 2, mlp_dims=16)': (
        [('attention.query_proj.weight', (8, 8)), ('attention.key_proj.weight', (8, 8)),
         ('attention.value_proj.weight', (8, 8)), ('attention.out_proj.weight', (8, 8)),
         ('ln1.weight', (8,)), ('ln1.bias', (8,)), ('ln2.weight', (8,)), ('ln2.bias', (8,)),
         ('linear1.weight', (16, 8)), ('linear1.bias', (16,)), ('linear2.weight', (8, 16)),
         ('linear2.bias', (8,))], []),
    'nn.TransformerDecoderLayer(8, 2)': (
        [('self_attention.query_proj.weight', (8, 8)), ('self_attention.key_proj.weight', (8, 8)),
         ('self_attention.value_proj.weight', (8, 8)), ('self_attention.out_proj.weight', (8, 8)),
         ('cross_attention.query_proj.weight', (8, 8)),
         ('cross_attention.key_proj.weight', (8, 8)),
         ('cross_attention.value_proj.weight', (8, 8)),
         ('cross_attention.out_proj.weight', (8, 8)), ('ln1.weight', (8,)), ('ln1.bias', (8,)),
         ('ln2.weight', (8,)), ('ln2.bias', (8,)), ('ln3.weight', (8,)), ('ln3.bias', (8,)),
         ('linear1.weight', (32, 8)), ('linear1.bias', (32,)), ('linear2.weight', (8, 32)),
         ('linear2.bias', (8,))], []),
    'nn.Transformer(8, 2, 1, 1, 16)': (
        [('encoder.layers.0.attention.query_proj.weight', (8, 8)),
         ('encoder.layers.0.attention.key_proj.weight', (8, 8)),
         ('encoder.layers.0.attention.value_proj.weight', (8, 8)),
         ('encoder.layers.0.attention.out_proj.weight', (8, 8)),
         ('encoder.layers.0.ln1.weight', (8,)), ('encoder.layers.0.ln1.bias', (8,)),
         ('encoder.layers.0.ln2.weight', (8,)), ('encoder.layers.0.ln2.bias', (8,)),
         ('encoder.layers.0.linear1.weight', (16, 8)), ('encoder.layers.0.linear1.bias', (16,)),
         ('encoder.layers.0.linear2.weight', (8, 16)), ('encoder.layers.0.linear2.bias', (8,)),
         ('encoder.ln.weight', (8,)), ('encoder.ln.bias', (8,)),
         ('decoder.layers.0.self_attention.query_proj.weight', (8, 8)),
         ('decoder.layers.0.self_attention.key_proj.weight', (8, 8)),
         ('decoder.layers.0.self_attention.value_proj.weight', (8, 8)),
         ('decoder.layers.0.self_attention.out_proj.weight', (8, 8)),
         ('decoder.layers.0.cross_attention.query_proj.weight', (8, 8)),
         ('decoder.layers.0.cross_attention.key_proj.weight', (8, 8)),
         ('decoder.layers.0.cross_attention.value_proj.weight', (8, 8)),
         ('decoder.layers.0.cross_attention.out_proj.weight', (8, 8)),
         ('decoder.layers.0.ln1.weight', (8,)), ('decoder.layers.0.ln1.bias', (8,)),
         ('decoder.layers.0.ln2.weight', (8,)), ('decoder.layers.0.ln2.bias', (8,)),
         ('decoder.layers.0.ln3.weight', (8,)), ('decoder.layers.0.ln3.bias', (8,)),
         ('decoder.layers.0.linear1.weight', (16, 8)), ('decoder.layers.0.linear1.bias', (16,)),
         ('decoder.layers.0.linear2.weight', (8, 16)), ('decoder.layers.0.linear2.bias', (8,)),
         ('decoder.ln.weight', (8,)), ('decoder.ln.bias', (8,))], []),
    'nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))': (
        [('layers.0.weight', (3, 2)), ('layers.0.bias', (3,)),
         ('layers.2.layers.0.weight', (1, 3)), ('layers.2.layers.0.bias', (1,))], []),
    'nn.SinusoidalPositionalEncoding(8)': ([], []),
    'nn.RoPE(4)': ([], []),
    'nn.Dropout(0.25)': ([], []),
}


@pytest.mark.parametrize("ctor", list(PARAMS))
def test_parameter_names_shapes_and_frozen_keys_match_mlx(ctor):
    m = eval(ctor)
    expected, frozen = PARAMS[ctor]
    got = [(k, v.shape) for k, v in tree_flatten(m.parameters())]
    assert got == expected
    trainable = {k for k, _ in tree_flatten(m.trainable_parameters())}
    assert sorted({k for k, _ in expected} - trainable) == frozen
    assert all(v.dtype == mx.float32 for _, v in tree_flatten(m.parameters()))


REPRS = {
    'nn.Linear(3, 4)': 'Linear(input_dims=3, output_dims=4, bias=True)',
    'nn.Bilinear(2, 3, 4)': 'Bilinear(input1_dims=2, input2_dims=3, output_dims=4, bias=True)',
    'nn.Embedding(10, 4)': 'Embedding(10, 4)',
    'nn.Conv1d(4, 6, 3, groups=2)':
        'Conv1d(4, 6, kernel_size=3, stride=1, padding=0, dilation=1, groups=2, bias=True)',
    'nn.Conv2d(3, 5, (3, 2), bias=False)':
        'Conv2d(3, 5, kernel_size=(3, 2), stride=(1, 1), padding=(0, 0), dilation=1, groups=1, '
        'bias=False)',
    'nn.Conv3d(2, 3, 2)': 'Conv3d(2, 3, kernel_size=(2, 2, 2), stride=(1, 1, 1), '
                          'padding=(0, 0, 0), dilation=1, bias=True)',
    'nn.ConvTranspose1d(4, 3, 3)': 'ConvTranspose1d(4, 3, kernel_size=3, stride=1, padding=0, '
                                   'dilation=1, output_padding=0, bias=True)',
    'nn.ConvTranspose2d(3, 2, (2, 3))':
        'ConvTranspose2d(3, 2, kernel_size=(2, 3), stride=(1, 1), padding=(0, 0), dilation=1, '
        'output_padding=(0, 0), bias=True)',
    'nn.ConvTranspose3d(2, 3, 2, bias=False)':
        'ConvTranspose3d(2, 3, kernel_size=(2, 2, 2), stride=(1, 1, 1), padding=(0, 0, 0), '
        'dilation=1, output_padding=(0, 0, 0), bias=False)',
    'nn.LayerNorm(4, affine=False)': 'LayerNorm(4, eps=1e-05, affine=False)',
    'nn.RMSNorm(4)': 'RMSNorm(4, eps=1e-05)',
    'nn.GroupNorm(2, 4)': 'GroupNorm(2, 4, eps=1e-05, affine=True, pytorch_compatible=False)',
    'nn.InstanceNorm(4)': 'InstanceNorm(4, eps=1e-05, affine=False)',
    'nn.BatchNorm(4)':
        'BatchNorm(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)',
    'nn.PReLU(3)': 'PReLU()',
    'nn.GRU(4, 5, bias=False)': 'GRU(input_dims=4, hidden_size=5, bias=False)',
    'nn.LSTM(4, 5)': 'LSTM(input_dims=4, hidden_size=5, bias=True)',
    'nn.MultiHeadAttention(8, 2)':
        'MultiHeadAttention(\n  (query_proj): Linear(input_dims=8, output_dims=8, bias=False)\n'
        '  (key_proj): Linear(input_dims=8, output_dims=8, bias=False)\n'
        '  (value_proj): Linear(input_dims=8, output_dims=8, bias=False)\n'
        '  (out_proj): Linear(input_dims=8, output_dims=8, bias=False)\n)',
    'nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Sequential(nn.Linear(3, 1)))':
        'Sequential(\n  (layers.0): Linear(input_dims=2, output_dims=3, bias=True)\n'
        '  (layers.1): ReLU()\n  (layers.2): Sequential(\n'
        '    (layers.0): Linear(input_dims=3, output_dims=1, bias=True)\n  )\n)',
    'nn.SinusoidalPositionalEncoding(8)': 'SinusoidalPositionalEncoding()',
    'nn.RoPE(4)': 'RoPE(4, traditional=False)',
    'nn.Dropout(0.25)': 'Dropout(p=0.25)',
    'nn.Dropout3d(0.1)': 'Dropout3d(p=0.09999999999999998)',
    'nn.MaxPool2d(2, 1, 1)': 'MaxPool2d(kernel_size=(2, 2), stride=(1, 1), padding=(1, 1))',
    'nn.AvgPool1d(3)': 'AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))',
    'nn.MaxPool3d((1, 2, 3), padding=(0, 1, 0))':
        'MaxPool3d(kernel_size=(1, 2, 3), stride=(1, 2, 3), padding=(0, 1, 0))',
    "nn.Upsample((2, 3), 'linear', antialias=True)":
        "Upsample(scale_factor=(2.0, 3.0), mode='linear', align_corners=False, antialias=True)",
    'nn.Upsample(2)': "Upsample(scale_factor=2.0, mode='nearest', align_corners=False)",
    'nn.GELU()': 'GELU()',
}


@pytest.mark.parametrize("ctor", list(REPRS))
def test_repr_matches_mlx(ctor):
    assert repr(eval(ctor)) == REPRS[ctor]


def test_rnn_repr_names_the_nonlinearity():
    assert repr(nn.RNN(4, 5)) == (f"RNN(input_dims=4, hidden_size=5, nonlinearity={nn.tanh}, "
                                  "bias=True)")


# ----------------------------------------------------------------------------------------
# initialisation ranges
# ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("ctor, name, bound", [
    ("nn.Linear(16, 300)", "weight", 1 / 4),
    ("nn.Linear(16, 300)", "bias", 1 / 4),
    ("nn.Bilinear(9, 5, 100)", "weight", 1 / 3),
    ("nn.Conv1d(6, 100, 3, groups=2)", "weight", 1 / 3),
    ("nn.Conv2d(2, 100, 3)", "weight", 1 / math.sqrt(18)),
    ("nn.Conv3d(2, 50, 2)", "weight", 1 / 4),
    ("nn.ConvTranspose2d(2, 100, 3)", "weight", 1 / math.sqrt(18)),
    ("nn.RNN(3, 16)", "Whh", 1 / 4),
    ("nn.GRU(3, 100)", "bhn", 1 / 10),
    ("nn.LSTM(3, 16)", "Wx", 1 / 4),
])
def test_uniform_initialisation_bounds(ctor, name, bound):
    w = npa(eval(ctor)[name])
    assert np.abs(w).max() <= bound
    # enough samples to get close to the bound from below
    assert np.abs(w).max() > 0.8 * bound
    assert abs(w.mean()) < 0.2 * bound


def test_constant_initialisations():
    assert np.all(npa(nn.Conv2d(2, 4, 3).bias) == 0)
    assert np.all(npa(nn.ConvTranspose1d(2, 4, 3).bias) == 0)
    assert np.all(npa(nn.PReLU(3, init=0.1).weight) == np.float32(0.1))
    bn = nn.BatchNorm(3)
    assert np.all(npa(bn.running_var) == 1) and np.all(npa(bn.running_mean) == 0)
    ln = nn.LayerNorm(3)
    assert np.all(npa(ln.weight) == 1) and np.all(npa(ln.bias) == 0)


def test_embedding_initialisation_is_normal_with_std_one_over_sqrt_dims():
    w = npa(nn.Embedding(400, 16).weight)
    assert abs(w.std() - 0.25) < 0.02 and abs(w.mean()) < 0.02


# ----------------------------------------------------------------------------------------
# activations
# ----------------------------------------------------------------------------------------
_erf = np.vectorize(math.erf)


def _np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _np_softplus(x):
    return np.logaddexp(x, 0)


def _np_elu(x, a=1.0):
    return np.where(x > 0, x, a * (np.exp(x) - 1))


NP_ACTIVATIONS = {
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0),
    "relu2": lambda x: np.maximum(x, 0) ** 2,
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "log_softmax": lambda x: np.log(_np_softmax(x)),
    "elu": _np_elu,
    "softmax": _np_softmax,
    "softplus": _np_softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "softshrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
    "celu": lambda x: np.maximum(x, 0) + np.minimum(0, np.exp(x) - 1),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "log_sigmoid": lambda x: -_np_softplus(-x),
    "gelu": lambda x: x * (1 + _erf(x / np.sqrt(2))) / 2,
    "gelu_approx": lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
    "gelu_fast_approx": lambda x: x / (1 + np.exp(-1.702 * x)),
    "glu": lambda x: x[:, :2] / (1 + np.exp(-x[:, 2:])),
    "selu": lambda x: 1.0507 * _np_elu(x, 1.67326),
    "mish": lambda x: x * np.tanh(_np_softplus(x)),
    "hardswish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "hard_tanh": lambda x: np.clip(x, -1, 1),
    "hard_shrink": lambda x: np.where(np.abs(x) > 0.5, x, 0),
    "softmin": lambda x: _np_softmax(-x),
    "tanh": np.tanh,
}
MODULE_OF = {"sigmoid": "Sigmoid", "relu": "ReLU", "relu2": "ReLU2", "relu6": "ReLU6",
             "leaky_relu": "LeakyReLU", "log_softmax": "LogSoftmax", "elu": "ELU",
             "softmax": "Softmax", "softplus": "Softplus", "softsign": "Softsign",
             "softshrink": "Softshrink", "celu": "CELU", "silu": "SiLU",
             "log_sigmoid": "LogSigmoid", "gelu": "GELU", "glu": "GLU", "selu": "SELU",
             "mish": "Mish", "hardswish": "Hardswish", "hard_tanh": "HardTanh",
             "hard_shrink": "HardShrink", "softmin": "Softmin", "tanh": "Tanh"}


@pytest.mark.parametrize("name", list(NP_ACTIVATIONS))
def test_activation_function_and_module_match_numpy(name):
    x = randn(5, 4) * 3
    want = NP_ACTIVATIONS[name](x.astype(np.float64)).astype(np.float32)
    assert_same(getattr(nn, name)(mx.array(x)), want, rtol=1e-5, atol=1e-6)
    if name in MODULE_OF:
        assert_same(getattr(nn, MODULE_OF[name])()(mx.array(x)), want, rtol=1e-5, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=5),
                  elements=st.floats(-20, 20, width=32)))
def test_activation_identities(x):
    a = mx.array(x)
    # silu = x sigmoid(x); log_sigmoid = log(sigmoid); softmax sums to one
    close(nn.silu(a), x * npa(nn.sigmoid(a)), atol=1e-5)
    close(nn.log_sigmoid(a), -np.logaddexp(0, -x.astype(np.float64)), rtol=1e-5, atol=1e-5)
    if x.size:
        close(mx.sum(nn.softmax(a), axis=-1), np.ones(x.shape[:-1]), atol=1e-5)
    assert np.all(npa(nn.relu6(a)) <= 6) and np.all(npa(nn.hard_tanh(a)) >= -1)


def test_parametrised_activations():
    x = randn(6, 3) * 3
    a = mx.array(x)
    close(nn.LeakyReLU(0.2)(a), np.where(x > 0, x, 0.2 * x))
    close(nn.ELU(0.5)(a), np.where(x > 0, x, 0.5 * (np.exp(x) - 1)))
    close(nn.CELU(2.0)(a), np.maximum(x, 0) + 2 * (np.exp(np.minimum(x, 0) / 2) - 1))
    close(nn.Softshrink(1.0)(a), np.where(x > 1, x - 1, np.where(x < -1, x + 1, 0)))
    close(nn.HardShrink(1.0)(a), np.where(np.abs(x) > 1, x, 0))
    close(nn.hard_tanh(a, -0.5, 2.0), np.clip(x, -0.5, 2.0))
    close(nn.GLU(axis=0)(a), x[:3] / (1 + np.exp(-x[3:])))
    close(nn.GELU("precise")(a), NP_ACTIVATIONS["gelu_approx"](x), atol=1e-5)
    close(nn.GELU("tanh")(a), NP_ACTIVATIONS["gelu_approx"](x), atol=1e-5)
    close(nn.GELU("fast")(a), NP_ACTIVATIONS["gelu_fast_approx"](x), atol=1e-5)
    w = np.float32([0.1, 0.2, 0.3])
    close(nn.prelu(a, mx.array(w)), np.maximum(x, 0) + w * np.minimum(x, 0))
    close(nn.PReLU()(a), np.maximum(x, 0) + 0.25 * np.minimum(x, 0))
    assert_same(nn.step(a, 0.5), (x >= 0.5).astype(np.int32))
    assert_same(nn.Step(0.5)(a), (x >= 0.5).astype(np.int32))


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(ValueError, match=r"The approximation should be in \['none', 'precise', "
                                         r"'tanh', 'fast'\] but 'exact' was given"):
        nn.GELU("exact")


# ----------------------------------------------------------------------------------------
# linear layers
# ----------------------------------------------------------------------------------------
def test_linear_and_bilinear_match_numpy():
    x = randn(2, 3, 4)
    lin = nn.Linear(4, 5)
    assert_same(lin(mx.array(x)), x @ npa(lin.weight).T + npa(lin.bias), rtol=1e-5, atol=1e-5)
    lin = nn.Linear(4, 5, bias=False)
    assert_same(lin(mx.array(x[0, 0])), x[0, 0] @ npa(lin.weight).T, rtol=1e-5, atol=1e-5)
    bil = nn.Bilinear(4, 3, 6)
    x2 = randn(2, 3, 3)
    want = np.einsum("bsi,oji,bsj->bso", x, npa(bil.weight), x2) + npa(bil.bias)
    assert_same(bil(mx.array(x), mx.array(x2)), want, rtol=1e-4, atol=1e-5)


def test_identity_ignores_arguments_and_returns_input():
    x = mx.array(randn(3))
    assert nn.Identity(1, 2, foo=3)(x) is x


def test_embedding_lookup_and_as_linear():
    emb = nn.Embedding(10, 4)
    idx = np.int32([[1, 2, 9], [0, 0, 3]])
    w = npa(emb.weight)
    assert_same(emb(mx.array(idx)), w[idx])
    x = randn(2, 4)
    assert_same(emb.as_linear(mx.array(x)), x @ w.T, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------
# convolutions (against PyTorch, channels first)
# ----------------------------------------------------------------------------------------
def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("nd, ctor, shape", [
    (1, lambda: nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=1, groups=2), (2, 9, 4)),
    (1, lambda: nn.Conv1d(4, 3, 2, dilation=2, bias=False), (2, 7, 4)),
    (2, lambda: nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 0)), (2, 7, 6, 3)),
    (2, lambda: nn.Conv2d(4, 4, 3, padding=1, dilation=2, groups=4), (1, 7, 7, 4)),
    (3, lambda: nn.Conv3d(2, 3, 2, padding=1, stride=2), (1, 5, 4, 3, 2)),
])
def test_convolutions_match_torch(nd, ctor, shape):
    torch = _torch()
    conv = ctor()
    x = randn(*shape)
    w = npa(conv.weight)
    # (out, *k, in) -> (out, in, *k)
    tw = torch.from_numpy(np.moveaxis(w, -1, 1).copy())
    tb = torch.from_numpy(npa(conv.bias)) if "bias" in conv else None
    tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    fn = getattr(torch.nn.functional, f"conv{nd}d")
    kwargs = dict(stride=conv.stride, padding=conv.padding, dilation=conv.dilation)
    if nd < 3:
        kwargs["groups"] = conv.groups
    want = np.moveaxis(fn(tx, tw, tb, **kwargs).numpy(), 1, -1)
    assert_same(conv(mx.array(x)), want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("nd, ctor, shape", [
    (1, lambda: nn.ConvTranspose1d(4, 3, 3, stride=2, padding=1, output_padding=1), (2, 5, 4)),
    (2, lambda: nn.ConvTranspose2d(3, 2, (3, 2), stride=2, dilation=1), (1, 4, 3, 3)),
    (3, lambda: nn.ConvTranspose3d(2, 3, 2, stride=1, bias=False), (1, 3, 2, 3, 2)),
])
def test_transposed_convolutions_match_torch(nd, ctor, shape):
    torch = _torch()
    conv = ctor()
    x = randn(*shape)
    # (out, *k, in) -> (in, out, *k)
    tw = torch.from_numpy(np.moveaxis(npa(conv.weight), (0, -1), (1, 0)).copy())
    tb = torch.from_numpy(npa(conv.bias)) if "bias" in conv else None
    tx = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    fn = getattr(torch.nn.functional, f"conv_transpose{nd}d")
    want = fn(tx, tw, tb, stride=conv.stride, padding=conv.padding,
              output_padding=conv.output_padding, dilation=conv.dilation)
    assert_same(conv(mx.array(x)), np.moveaxis(want.numpy(), 1, -1), rtol=1e-4, atol=1e-5)


def test_conv_rejects_channels_not_divisible_by_groups():
    with pytest.raises(ValueError, match=r"The number of input channels \(3\) must be divisible "
                                         r"by the number of groups \(2\)"):
        nn.Conv1d(3, 4, 2, groups=2)
    with pytest.raises(ValueError, match="must be divisible"):
        nn.Conv2d(5, 4, 2, groups=3)


# ----------------------------------------------------------------------------------------
# pooling
# ----------------------------------------------------------------------------------------
def _np_pool(x, k, s, p, reduce, pad_value):
    nd = len(k)
    x = np.pad(x, [(0, 0)] + [(q, q) for q in p] + [(0, 0)], constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, k, axis=tuple(range(1, nd + 1)))
    win = win[(slice(None),) + tuple(slice(None, None, q) for q in s)]
    axes = tuple(range(-nd, 0))
    return win.max(axes) if reduce == "max" else win.mean(axes)


@pytest.mark.parametrize("cls, k, s, p, shape", [
    ("MaxPool1d", 3, 2, 1, (2, 9, 3)),
    ("AvgPool1d", 2, None, 0, (2, 9, 3)),
    ("MaxPool2d", 2, None, 0, (2, 8, 6, 3)),
    ("MaxPool2d", (3, 2), (1, 2), (1, 0), (1, 7, 5, 2)),
    ("AvgPool2d", (3, 2), (2, 1), (1, 1), (1, 7, 5, 2)),
    ("MaxPool3d", 2, 1, 0, (1, 4, 5, 3, 2)),
    ("AvgPool3d", (2, 1, 2), None, (1, 0, 1), (1, 4, 5, 3, 2)),
])
def test_pooling_matches_numpy_sliding_windows(cls, k, s, p, shape):
    nd = int(cls[-2])
    layer = getattr(nn, cls)(k, s, p)
    tup = lambda v: (v,) * nd if isinstance(v, int) else tuple(v)  # noqa: E731
    kk = tup(k)
    ss = kk if s is None else tup(s)
    x = randn(*shape)
    reduce = "max" if cls.startswith("Max") else "mean"
    want = _np_pool(x, kk, ss, tup(p), reduce, -np.inf if reduce == "max" else 0)
    assert_same(layer(mx.array(x)), want, rtol=1e-5, atol=1e-6)


def test_avg_pool_of_integers_is_float_and_max_pool_keeps_ints():
    x = np.arange(12, dtype=np.int32).reshape(1, 6, 2)
    assert_same(nn.AvgPool1d(2)(mx.array(x)), x.reshape(1, 3, 2, 2).mean(2).astype(np.float32))
    assert_same(nn.MaxPool1d(3)(mx.array(x)), x.reshape(1, 2, 3, 2).max(2))


@pytest.mark.parametrize("make, msg", [
    (lambda: nn.MaxPool2d((1, 2, 3)),
     r"\[MaxPool2d\] 'kernel_size' must be an integer or a tuple containing 2 integers"),
    (lambda: nn.MaxPool1d("a"),
     r"\[MaxPool1d\] 'kernel_size' must be an integer or a tuple containing 1 integer"),
    (lambda: nn.AvgPool3d(2, stride=(1, 1)),
     r"\[AvgPool3d\] 'stride' must be an integer or a tuple containing 3 integers"),
    (lambda: nn.MaxPool1d(0), r"\[MaxPool1d\] 'kernel_size' must be positive but got \(0,\)\."),
    (lambda: nn.AvgPool2d(2, (1, 0)), r"\[AvgPool2d\] 'stride' must be positive but got \(1, 0\)"),
    (lambda: nn.AvgPool2d(2, padding=-1),
     r"\[AvgPool2d\] 'padding' must be non-negative but got \(-1, -1\)\."),
])
def test_pooling_argument_errors(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_pooling_input_errors():
    with pytest.raises(ValueError, match=r"at least 1 spatial dimension \(3 total\) is needed but "
                                         r"the input only has 2 dimensions"):
        nn.MaxPool1d(2)(mx.zeros((2, 3)))
    with pytest.raises(ValueError, match="the signal has 1 dims and the window shape has 2 and "
                                         "strides have 2"):
        nn.MaxPool2d(2)(mx.zeros((2, 3, 4)))


# ----------------------------------------------------------------------------------------
# normalisation
# ----------------------------------------------------------------------------------------
def _np_norm(x, axes, eps=1e-5):
    mean = x.mean(axes, keepdims=True)
    var = x.var(axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def _set(module, **arrays):
    module.update({k: mx.array(v) for k, v in arrays.items()})
    return module


def test_layer_norm_and_rms_norm_match_numpy():
    x = randn(3, 5, 6)
    w, b = randn(6), randn(6)
    ln = _set(nn.LayerNorm(6, eps=1e-3), weight=w, bias=b)
    assert_same(ln(mx.array(x)), _np_norm(x, -1, 1e-3) * w + b, rtol=1e-4, atol=1e-5)
    assert_same(nn.LayerNorm(6, affine=False)(mx.array(x)), _np_norm(x, -1), rtol=1e-4,
                atol=1e-5)
    assert_same(_set(nn.LayerNorm(6, bias=False), weight=w)(mx.array(x)),
                _np_norm(x, -1) * w, rtol=1e-4, atol=1e-5)
    rms = _set(nn.RMSNorm(6), weight=w)
    want = x / np.sqrt((x**2).mean(-1, keepdims=True) + 1e-5) * w
    assert_same(rms(mx.array(x)), want, rtol=1e-4, atol=1e-5)


def test_norm_fallbacks_without_fast_kernels(monkeypatch):
    x = randn(4, 6)
    w, b = randn(6), randn(6)
    ln = _set(nn.LayerNorm(6), weight=w, bias=b)
    rms = _set(nn.RMSNorm(6), weight=w)
    xh = mx.array(x).astype(mx.float16)
    fast = [ln(mx.array(x)), rms(mx.array(x)), ln(xh), rms(xh)]
    for name in ("layer_norm", "rms_norm"):
        monkeypatch.delattr(mx.fast, name, raising=False)
    plain = [ln(mx.array(x)), rms(mx.array(x)), ln(xh), rms(xh)]
    for f, p in zip(fast, plain):
        assert f.dtype == p.dtype
        close(p, npa(f), rtol=2e-3, atol=2e-3)


def test_group_norm_both_groupings_match_numpy():
    x = randn(2, 3, 5, 6)
    w, b = randn(6), randn(6)
    gn = _set(nn.GroupNorm(3, 6), weight=w, bias=b)
    # MLX's grouping: group g holds features g, g + 3 (strided)
    g = x.reshape(2, -1, 3)
    want = _np_norm(g, 1).reshape(x.shape) * w + b
    assert_same(gn(mx.array(x)), want, rtol=1e-4, atol=1e-5)
    gn = _set(nn.GroupNorm(3, 6, pytorch_compatible=True), weight=w, bias=b)
    g = x.reshape(2, 3, 5, 3, 2)
    want = _np_norm(g, (1, 2, 4)).reshape(x.shape) * w + b
    assert_same(gn(mx.array(x)), want, rtol=1e-4, atol=1e-5)


def test_group_norm_pytorch_compatible_matches_torch():
    torch = _torch()
    x = randn(2, 4, 6)
    gn = nn.GroupNorm(2, 6, affine=False, pytorch_compatible=True)
    want = torch.nn.functional.group_norm(torch.from_numpy(np.moveaxis(x, -1, 1).copy()), 2,
                                          eps=1e-5).numpy()
    assert_same(gn(mx.array(x)), np.moveaxis(want, 1, -1), rtol=1e-4, atol=1e-5)


def test_instance_norm_matches_numpy():
    x = randn(2, 4, 3, 5)
    assert_same(nn.InstanceNorm(5)(mx.array(x)), _np_norm(x, (1, 2)), rtol=1e-4, atol=1e-5)
    w, b = randn(5), randn(5)
    inorm = _set(nn.InstanceNorm(5, affine=True), weight=w, bias=b)
    assert_same(inorm(mx.array(x)), _np_norm(x, (1, 2)) * w + b, rtol=1e-4, atol=1e-5)


def test_batch_norm_training_updates_running_stats_and_eval_uses_them():
    x = randn(6, 5, 3) * 2 + 1
    bn = nn.BatchNorm(3, momentum=0.3)
    y = bn(mx.array(x))
    assert_same(y, _np_norm(x, (0, 1)), rtol=1e-4, atol=1e-5)
    mean, var = x.mean((0, 1)), x.var((0, 1), ddof=1)
    close(bn.running_mean, 0.3 * mean, rtol=1e-5)
    close(bn.running_var, 0.7 + 0.3 * var, rtol=1e-5)
    bn.eval()
    want = (x - 0.3 * mean) / np.sqrt(0.7 + 0.3 * var + 1e-5)
    assert_same(bn(mx.array(x)), want, rtol=1e-4, atol=1e-5)
    close(bn.running_mean, 0.3 * mean, rtol=1e-5)  # unchanged in evaluation
    plain = nn.BatchNorm(3, affine=False, track_running_stats=False).eval()
    assert_same(plain(mx.array(x)), _np_norm(x, (0, 1)), rtol=1e-4, atol=1e-5)


def test_batch_norm_running_stats_stay_frozen():
    bn = nn.BatchNorm(3)
    bn.unfreeze()
    assert sorted(bn.trainable_parameters()) == ["bias", "weight"]
    bn.freeze()
    bn.unfreeze(keys="weight")
    assert sorted(bn.trainable_parameters()) == ["weight"]


@pytest.mark.parametrize("make, msg", [
    (lambda: nn.LayerNorm(3, eps=0), r"\[LayerNorm\] 'eps' must be positive but got 0\."),
    (lambda: nn.RMSNorm(3, eps=-1.0), r"\[RMSNorm\] 'eps' must be positive but got -1\.0\."),
    (lambda: nn.InstanceNorm(3, eps=0.0), r"\[InstanceNorm\] 'eps' must be positive"),
    (lambda: nn.BatchNorm(3, eps=0.0), r"\[BatchNorm\] 'eps' must be positive"),
    (lambda: nn.GroupNorm(2, 4, eps=0.0), r"\[GroupNorm\] 'eps' must be positive"),
    (lambda: nn.GroupNorm(0, 4), r"The number of groups \(0\) must be a positive integer\."),
    (lambda: nn.GroupNorm(2, 0), r"The number of features \(0\) must be a positive integer\."),
    (lambda: nn.GroupNorm(3, 4), r"The number of features \(4\) must be evenly divisible by "
                                 r"the number of groups \(3\)\."),
    (lambda: nn.InstanceNorm(3)(mx.zeros((2, 3))),
     r"InstanceNorm expects inputs with at least 3 dimensions \(N, \.\.\., C\) but the input "
     r"has 2 dimensions\."),
    (lambda: nn.BatchNorm(3)(mx.zeros((3,))),
     "Expected input tensor to have 2, 3 or 4 dimensions, but got 1"),
    (lambda: nn.BatchNorm(3)(mx.zeros((1, 3))),
     "BatchNorm training requires more than one value per channel."),
])
def test_normalisation_errors(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


# ----------------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------------
def test_dropout_statistics_and_eval_identity():
    x = mx.ones((200, 100))
    d = nn.Dropout(0.25)
    y = npa(d(x))
    kept = y != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y[kept], 1 / 0.75, rtol=1e-6)
    assert d.eval()(x) is x
    assert nn.Dropout(0.0)(x) is x


@pytest.mark.parametrize("cls, shape, spatial", [
    ("Dropout2d", (8, 5, 4, 30), (1, 2)),
    ("Dropout2d", (5, 4, 60), (0, 1)),
    ("Dropout3d", (4, 3, 2, 2, 30), (1, 2, 3)),
    ("Dropout3d", (3, 2, 2, 60), (0, 1, 2)),
])
def test_channel_dropout_zeroes_whole_channels(cls, shape, spatial):
    y = npa(getattr(nn, cls)(0.5)(mx.ones(shape)))
    # every spatial position of a channel shares its fate
    assert np.all(y.min(spatial) == y.max(spatial))
    assert set(np.unique(y)) <= {0.0, 2.0}
    assert 0.3 < (y != 0).mean() < 0.7


def test_dropout_errors():
    with pytest.raises(ValueError, match=r"The dropout probability 1\.0 is not in \[0, 1\)"):
        nn.Dropout(1.0)
    with pytest.raises(ValueError, match=r"The dropout probability -0\.1 is not in \[0, 1\)"):
        nn.Dropout2d(-0.1)
    with pytest.raises(ValueError, match="Received input with 2 dimensions. Expected 3 or 4 "
                                         "dimensions."):
        nn.Dropout2d()(mx.zeros((3, 3)))
    with pytest.raises(ValueError, match="Received input with 3 dimensions. Expected 4 or 5 "
                                         "dimensions."):
        nn.Dropout3d()(mx.zeros((3, 3, 3)))


# ----------------------------------------------------------------------------------------
# recurrent layers
# ----------------------------------------------------------------------------------------
def _sig(x):
    return 1 / (1 + np.exp(-x))


def test_rnn_matches_numpy():
    x = randn(2, 5, 3)
    rnn = nn.RNN(3, 4)
    wx, wh, b = npa(rnn.Wxh), npa(rnn.Whh), npa(rnn.bias)
    h = np.zeros((2, 4), np.float32)
    want = []
    for t in range(5):
        h = np.tanh(x[:, t] @ wx.T + b + h @ wh.T)
        want.append(h)
    assert_same(rnn(mx.array(x)), np.stack(want, 1), rtol=1e-4, atol=1e-5)
    relu_rnn = nn.RNN(3, 4, bias=False, nonlinearity=nn.relu)
    h0 = randn(4)
    wx, wh = npa(relu_rnn.Wxh), npa(relu_rnn.Whh)
    h, want = h0, []
    for t in range(5):
        h = np.maximum(x[0, t] @ wx.T + h @ wh.T, 0)
        want.append(h)
    assert_same(relu_rnn(mx.array(x[0]), mx.array(h0)), np.stack(want), rtol=1e-4, atol=1e-5)


def test_rnn_rejects_non_callable_nonlinearity():
    with pytest.raises(ValueError, match="Nonlinearity must be callable. Current value: 3."):
        nn.RNN(2, 3, nonlinearity=3)


@pytest.mark.parametrize("bias, with_hidden", [(True, False), (True, True), (False, True)])
def test_gru_matches_numpy(bias, with_hidden):
    x = randn(2, 4, 3)
    gru = nn.GRU(3, 5, bias=bias)
    wx, wh = npa(gru.Wx), npa(gru.Wh)
    b = npa(gru.b) if bias else np.zeros(15, np.float32)
    bhn = npa(gru.bhn) if bias else np.zeros(5, np.float32)
    h0 = randn(2, 5) if with_hidden else np.zeros((2, 5), np.float32)
    h, want = h0, []
    for t in range(4):
        gx = x[:, t] @ wx.T + b
        gh = h @ wh.T
        r = _sig(gx[:, :5] + gh[:, :5])
        z = _sig(gx[:, 5:10] + gh[:, 5:10])
        n = np.tanh(gx[:, 10:] + r * (gh[:, 10:] + bhn))
        h = (1 - z) * n + z * h
        want.append(h)
    got = gru(mx.array(x), mx.array(h0)) if with_hidden else gru(mx.array(x))
    assert_same(got, np.stack(want, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("with_state", [False, True])
def test_lstm_matches_numpy(with_state):
    x = randn(2, 4, 3)
    lstm = nn.LSTM(3, 5)
    wx, wh, b = npa(lstm.Wx), npa(lstm.Wh), npa(lstm.bias)
    h = randn(2, 5) if with_state else np.zeros((2, 5), np.float32)
    c = randn(2, 5) if with_state else np.zeros((2, 5), np.float32)
    args = (mx.array(h), mx.array(c)) if with_state else ()
    hs, cs = [], []
    for t in range(4):
        g = x[:, t] @ wx.T + b + h @ wh.T
        i, f, gg, o = _sig(g[:, :5]), _sig(g[:, 5:10]), np.tanh(g[:, 10:15]), _sig(g[:, 15:])
        c = f * c + i * gg
        h = o * np.tanh(c)
        hs.append(h)
        cs.append(c)
    got_h, got_c = lstm(mx.array(x), *args)
    assert_same(got_h, np.stack(hs, 1), rtol=1e-4, atol=1e-5)
    assert_same(got_c, np.stack(cs, 1), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------
# attention and transformers
# ----------------------------------------------------------------------------------------
def _np_lin(layer, x):
    y = x @ npa(layer.weight).T
    return y + npa(layer.bias) if "bias" in layer else y


def _np_mha(att, q, k, v, mask=None):
    heads = att.num_heads

    def split(t):
        b, n, d = t.shape
        return t.reshape(b, n, heads, d // heads).transpose(0, 2, 1, 3)

    q, k, v = split(_np_lin(att.query_proj, q)), split(_np_lin(att.key_proj, k)), split(
        _np_lin(att.value_proj, v))
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores + mask
    out = _np_softmax(scores) @ v
    b, h, n, d = out.shape
    return _np_lin(att.out_proj, out.transpose(0, 2, 1, 3).reshape(b, n, h * d))


def _np_ln(ln, x):
    return _np_norm(x, -1) * npa(ln.weight) + npa(ln.bias)


def test_multi_head_attention_matches_numpy():
    att = nn.MultiHeadAttention(8, 2, query_input_dims=6, key_input_dims=5, value_dims=4,
                                value_output_dims=3, bias=True)
    q, k, v = randn(2, 4, 6), randn(2, 7, 5), randn(2, 7, 5)
    assert_same(att(mx.array(q), mx.array(k), mx.array(v)), _np_mha(att, q, k, v), rtol=1e-4,
                atol=1e-5)
    att = nn.MultiHeadAttention(8, 4)
    x = randn(2, 5, 8)
    mask = nn.MultiHeadAttention.create_additive_causal_mask(5)
    got = att(mx.array(x), mx.array(x), mx.array(x), mask)
    assert_same(got, _np_mha(att, x, x, x, npa(mask)), rtol=1e-4, atol=1e-5)


def test_additive_causal_mask():
    m = npa(nn.MultiHeadAttention.create_additive_causal_mask(3))
    lowest = np.finfo(np.float32).min
    np.testing.assert_array_equal(m, np.float32([[0, lowest, lowest], [0, 0, lowest], [0, 0, 0]]))
    assert nn.MultiHeadAttention.create_additive_causal_mask(2, mx.float16).dtype == mx.float16


def test_attention_fallback_without_fast_kernel(monkeypatch):
    from mx.nn.layers.transformer import scaled_dot_product_attention as sdpa
    q, k, v = (mx.array(randn(1, 4, 3, 5)), mx.array(randn(1, 2, 6, 5)),
               mx.array(randn(1, 2, 6, 5)))
    masks = [None, "causal", mx.array(randn(3, 6)), mx.array(RNG.random((3, 6)) > 0.3)]
    fast = [mx.fast.scaled_dot_product_attention(q, k, v, scale=0.5, mask=m) for m in masks]
    monkeypatch.delattr(mx.fast, "scaled_dot_product_attention", raising=False)
    for f, m in zip(fast, masks):
        close(sdpa(q, k, v, 0.5, m), npa(f), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="the only supported string is 'causal'"):
        sdpa(q, k, v, 0.5, "full")


def test_attention_dims_must_divide_heads():
    with pytest.raises(ValueError, match=r"divisible by the number of heads \(5 % 2\) != 0"):
        nn.MultiHeadAttention(5, 2)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_encoder_matches_numpy(norm_first):
    enc = nn.TransformerEncoder(2, 8, 2, mlp_dims=12, norm_first=norm_first)
    x = randn(2, 5, 8)
    mask = npa(nn.MultiHeadAttention.create_additive_causal_mask(5))
    h = x
    for layer in enc.layers:
        def mlp(t, layer=layer):
            return _np_lin(layer.linear2, np.maximum(_np_lin(layer.linear1, t), 0))
        if norm_first:
            y = _np_ln(layer.ln1, h)
            h = h + _np_mha(layer.attention, y, y, y, mask)
            h = h + mlp(_np_ln(layer.ln2, h))
        else:
            h = _np_ln(layer.ln1, h + _np_mha(layer.attention, h, h, h, mask))
            h = _np_ln(layer.ln2, h + mlp(h))
    want = _np_ln(enc.ln, h)
    assert_same(enc(mx.array(x), mx.array(mask)), want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("norm_first", [True, False])
def test_transformer_matches_numpy_composition(norm_first):
    model = nn.Transformer(8, 2, 1, 1, 16, activation=nn.gelu, norm_first=norm_first)
    src, tgt = randn(2, 5, 8), randn(2, 3, 8)
    tmask = npa(nn.MultiHeadAttention.create_additive_causal_mask(3))
    gelu = NP_ACTIVATIONS["gelu"]
    e = model.encoder.layers[0]
    if norm_first:
        y = _np_ln(e.ln1, src)
        m = src + _np_mha(e.attention, y, y, y)
        m = m + _np_lin(e.linear2, gelu(_np_lin(e.linear1, _np_ln(e.ln2, m))))
    else:
        m = _np_ln(e.ln1, src + _np_mha(e.attention, src, src, src))
        m = _np_ln(e.ln2, m + _np_lin(e.linear2, gelu(_np_lin(e.linear1, m))))
    m = _np_ln(model.encoder.ln, m)
    d = model.decoder.layers[0]
    h = tgt
    if norm_first:
        y = _np_ln(d.ln1, h)
        h = h + _np_mha(d.self_attention, y, y, y, tmask)
        y = _np_ln(d.ln2, h)
        h = h + _np_mha(d.cross_attention, y, m, m)
        h = h + _np_lin(d.linear2, gelu(_np_lin(d.linear1, _np_ln(d.ln3, h))))
    else:
        h = _np_ln(d.ln1, h + _np_mha(d.self_attention, h, h, h, tmask))
        h = _np_ln(d.ln2, h + _np_mha(d.cross_attention, h, m, m))
        h = _np_ln(d.ln3, h + _np_lin(d.linear2, gelu(_np_lin(d.linear1, h))))
    want = _np_ln(model.decoder.ln, h).astype(np.float32)  # gelu's erf is float64
    got = model(mx.array(src), mx.array(tgt), None, mx.array(tmask), None)
    assert_same(got, want, rtol=1e-3, atol=1e-4)


def test_transformer_custom_encoder_and_decoder():
    enc, dec = nn.Identity(), nn.TransformerDecoder(1, 4, 2)
    model = nn.Transformer(4, 2, custom_encoder=enc, custom_decoder=dec)
    assert model.encoder is enc and model.decoder is dec


def test_transformer_dropout_only_in_training():
    enc = nn.TransformerEncoder(1, 8, 2, dropout=0.5)
    x = mx.array(randn(2, 5, 8))
    enc.eval()
    a, b = npa(enc(x, None)), npa(enc(x, None))
    np.testing.assert_array_equal(a, b)
    enc.train()
    assert not np.allclose(npa(enc(x, None)), a)


# ----------------------------------------------------------------------------------------
# positional encodings
# ----------------------------------------------------------------------------------------
def _np_rope(x, dims, traditional, base, scale, offset):
    half = dims // 2
    pos = (np.arange(x.shape[-2]) + offset) * scale
    theta = pos[:, None] * base ** (-np.arange(half) * 2 / dims)[None]
    cos, sin = np.cos(theta), np.sin(theta)
    out = x.copy()
    if traditional:
        a, b = x[..., 0:dims:2], x[..., 1:dims:2]
        out[..., 0:dims:2] = a * cos - b * sin
        out[..., 1:dims:2] = a * sin + b * cos
    else:
        a, b = x[..., :half], x[..., half:dims]
        out[..., :half] = a * cos - b * sin
        out[..., half:dims] = a * sin + b * cos
    return out


@pytest.mark.parametrize("dims, traditional, base, scale, offset, shape", [
    (6, False, 10000, 1.0, 0, (2, 5, 6)),
    (4, False, 10000, 1.0, 3, (2, 3, 5, 6)),
    (6, True, 100, 0.5, 0, (2, 5, 6)),
    (4, True, 10000, 2.0, 1, (1, 2, 4, 8)),
])
def test_rope_matches_numpy_with_and_without_fast_kernel(monkeypatch, dims, traditional, base,
                                                         scale, offset, shape):
    x = randn(*shape)
    rope = nn.RoPE(dims, traditional=traditional, base=base, scale=scale)
    want = _np_rope(x.astype(np.float64), dims, traditional, base, scale, offset)
    close(rope(mx.array(x), offset=offset), want, atol=1e-5)
    monkeypatch.delattr(mx.fast, "rope", raising=False)
    assert_same(rope(mx.array(x), offset=offset), want.astype(np.float32), rtol=1e-4, atol=1e-5)


def test_sinusoidal_positional_encoding_matches_numpy():
    x = np.arange(5, dtype=np.float32)
    pe = nn.SinusoidalPositionalEncoding(8)
    freqs = np.exp(np.linspace(0, 1, 4)[::-1] * (np.log(1) - np.log(1e-4)) + np.log(1e-4))
    y = x[:, None] * freqs
    want = np.concatenate([np.sin(y), np.cos(y)], -1) * np.sqrt(2 / 8)
    assert_same(pe(mx.array(x)), want.astype(np.float32), rtol=1e-4, atol=1e-5)
    pe = nn.SinusoidalPositionalEncoding(4, min_freq=0.01, max_freq=2, scale=1.0, cos_first=True,
                                         full_turns=True)
    freqs = 2 * np.pi * np.float64([2, 0.01])
    y = x[:, None] * freqs
    want = np.concatenate([np.cos(y), np.sin(y)], -1)
    assert_same(pe(mx.array(x)), want.astype(np.float32), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=r"\[SinusoidalPositionalEncoding\] dims must be "
                                         r"positive and even but got 3\."):
        nn.SinusoidalPositionalEncoding(3)


def test_alibi_slopes_and_bias():
    slopes = npa(nn.ALiBi.create_alibi_slope(8)).ravel()
    np.testing.assert_allclose(slopes, 2.0 ** -np.arange(1, 9), rtol=1e-6)
    # 6 heads: the 4-head sequence then every other slope of the 8-head one
    six = npa(nn.ALiBi.create_alibi_slope(6)).ravel()
    np.testing.assert_allclose(six, [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3], rtol=1e-6)
    scores = randn(1, 4, 3, 5)
    mask = randn(3, 5)
    got = nn.ALiBi()(mx.array(scores), offset=2, mask=mx.array(mask))
    q = np.arange(2, 5)[:, None]
    k = np.arange(5)[None]
    slopes4 = 2.0 ** -(2 * np.arange(1, 5))
    want = scores - np.abs(q - k) * slopes4[:, None, None] + mask
    assert_same(got, want.astype(np.float32), rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------
# upsampling (against PyTorch's interpolate and MLX's documented example)
# ----------------------------------------------------------------------------------------
def test_upsample_docstring_example():
    x = mx.arange(1, 5).reshape((1, 2, 2, 1))
    assert_same(nn.Upsample(scale_factor=2, mode="nearest")(x).squeeze(),
                np.int32([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]))
    assert_same(nn.Upsample(scale_factor=2, mode="linear")(x).squeeze(),
                np.float32([[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5],
                            [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]]))
    third = 1 / 3
    assert_same(nn.Upsample(scale_factor=2, mode="linear", align_corners=True)(x).squeeze(),
                np.float32([[1, 1 + third, 1 + 2 * third, 2],
                            [1 + 2 * third, 2, 2 + third, 2 + 2 * third],
                            [2 + third, 2 + 2 * third, 3, 3 + third],
                            [3, 3 + third, 3 + 2 * third, 4]]), rtol=1e-5, atol=1e-5)


def test_upsample_cubic_values_recorded_from_mlx():
    x = mx.array([[[[1.0], [2.0]], [[3.0], [4.0]]]])
    got = nn.Upsample(2, "cubic")(x).squeeze()
    want = [[0.68359375, 1.015625, 1.5625, 1.89453125],
            [1.34765625, 1.6796875, 2.2265625, 2.55859375],
            [2.44140625, 2.7734375, 3.3203125, 3.65234375],
            [3.10546875, 3.4375, 3.984375, 4.31640625]]
    assert_same(got, np.float32(want), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("layer, mode, kwargs", [
    (lambda: nn.Upsample(2), "nearest", {}),
    (lambda: nn.Upsample((3, 2)), "nearest", {}),
    (lambda: nn.Upsample(2, "linear"), "bilinear", {"align_corners": False}),
    (lambda: nn.Upsample((3, 2), "linear", align_corners=True), "bilinear",
     {"align_corners": True}),
    (lambda: nn.Upsample(2, "cubic"), "bicubic", {"align_corners": False}),
    (lambda: nn.Upsample(3, "cubic", align_corners=True), "bicubic", {"align_corners": True}),
    (lambda: nn.Upsample(0.5, "linear", antialias=True), "bilinear",
     {"align_corners": False, "antialias": True}),
])
def test_upsample_matches_torch_interpolate(layer, mode, kwargs):
    torch = _torch()
    up = layer()
    x = randn(2, 6, 4, 3)
    scale = up.scale_factor if isinstance(up.scale_factor, tuple) else (up.scale_factor,) * 2
    want = torch.nn.functional.interpolate(torch.from_numpy(np.moveaxis(x, -1, 1).copy()),
                                           scale_factor=scale, mode=mode, **kwargs)
    assert_same(up(mx.array(x)), np.moveaxis(want.numpy(), 1, -1), rtol=1e-4, atol=1e-5)


def test_upsample_fractional_nearest_and_1d_linear():
    x = randn(1, 5, 2)
    # 1-d linear with half-pixel centres: output i samples (i + .5) / 2 - .5, clipped
    pos = np.clip((np.arange(10) + 0.5) / 2 - 0.5, 0, 4)
    lo, hi = np.floor(pos).astype(int), np.ceil(pos).astype(int)
    w = (pos - lo)[None, :, None]
    want = x[:, lo] * (1 - w) + x[:, hi] * w
    assert_same(nn.Upsample(2, "linear")(mx.array(x)), want.astype(np.float32), rtol=1e-5,
                atol=1e-6)
    # growing by 1.5 picks rounded half-pixel positions; shrinking truncates
    idx = np.round((np.arange(7) + 0.5) * (5 / 7) - 0.5).astype(int)
    assert_same(nn.Upsample(1.5)(mx.array(x)), x[:, idx])
    idx = (np.arange(2) * (5 / 2)).astype(int)
    assert_same(nn.Upsample(0.5)(mx.array(x)), x[:, idx])


@pytest.mark.parametrize("make, msg", [
    (lambda: nn.Upsample(2, "bicubic"), r"\[Upsample\] Got unsupported upsampling algorithm: "
                                        "bicubic"),
    (lambda: nn.Upsample(2, antialias=True),
     r"\[Upsample\] Antialiasing is not supported for nearest neighbor upsampling"),
    (lambda: nn.Upsample(2, "linear", align_corners=True, antialias=True),
     r"\[Upsample\] antialias=True with align_corners=True is not supported"),
    (lambda: nn.Upsample(2)(mx.zeros((2, 3))),
     r"\[Upsample\] The input should have at least 1 spatial dimension which means it should "
     r"be at least 3D but 2D was provided"),
    (lambda: nn.Upsample((2, 2))(mx.zeros((2, 3, 3))),
     r"\[Upsample\] One scale per spatial dimension is required but scale_factor=\(2\.0, "
     r"2\.0\) and the number of spatial dimensions were 1"),
])
def test_upsample_errors(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


# ----------------------------------------------------------------------------------------
# Module API
# ----------------------------------------------------------------------------------------
class Tree(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(2, 3)
        self.blocks = [nn.Linear(3, 3), {"x": nn.LayerNorm(3), "y": mx.zeros((2,))}]
        self.w = mx.ones((4,))
        self._hidden = mx.ones((1,))
        self.d = {"p": mx.zeros((1,)), "q": [mx.zeros((2,)), nn.ReLU()]}
        self.n = 5


def _keys(tree):
    return [k for k, _ in tree_flatten(tree)]


def _names(tree):
    return tree_map(lambda m: type(m).__name__, tree, is_leaf=nn.Module.is_module)


def test_module_tree_queries_match_mlx():
    m = Tree()
    assert _keys(m.parameters()) == [
        "a.weight", "a.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.x.weight",
        "blocks.1.x.bias", "blocks.1.y", "w", "d.p", "d.q.0"]
    children = {"a": "Linear", "blocks": ["Linear", {"x": "LayerNorm", "y": {}}],
                "d": {"p": {}, "q": [{}, "ReLU"]}}
    assert _names(m.children()) == children
    assert _names(m.leaf_modules()) == children
    assert [k for k, _ in m.named_modules()] == ["", "d.q.1", "blocks.1.x", "blocks.0", "a"]
    assert [type(x).__name__ for x in m.modules()] == ["Tree", "ReLU", "LayerNorm", "Linear",
                                                       "Linear"]
    assert repr(m) == ("Tree(\n  (a): Linear(input_dims=2, output_dims=3, bias=True)\n"
                       "  (blocks.0): Linear(input_dims=3, output_dims=3, bias=True)\n"
                       "  (blocks.1.x): LayerNorm(3, eps=1e-05, affine=True)\n"
                       "  (d.q.1): ReLU()\n)")
    # MLX counts a module whose children are all parameterless as a leaf
    assert _names(nn.Sequential(nn.Sequential(nn.ReLU())).leaf_modules()) == {
        "layers": ["Sequential"]}


def test_attributes_live_in_the_dict_or_on_the_object():
    m = Tree()
    assert m.state is m and "w" in m and "n" not in m and m.n == 5
    assert "_hidden" in m and "_hidden" not in m.parameters()
    m.w = 3  # a non-array replaces the dict entry with a plain attribute
    assert "w" not in m and m.w == 3
    m.w = mx.zeros((2,))
    assert "w" in m and m.w.shape == (2,) and "w" not in vars(m)
    m.t = (1, 2)
    assert m["t"] == (1, 2) and "t" not in m.parameters()
    del m.w
    assert "w" not in m
    del m.n
    with pytest.raises(AttributeError, match="'Tree' object has no attribute 'n'"):
        m.n
    with pytest.raises(AttributeError, match="'Tree' object has no attribute 'missing'"):
        m.missing


def test_freeze_and_unfreeze_match_mlx():
    m = Tree()
    m.freeze(keys="bias")
    assert _keys(m.trainable_parameters()) == [
        "a.weight", "blocks.0.weight", "blocks.1.x.weight", "blocks.1.y", "w", "d.p", "d.q.0"]
    m.unfreeze()
    m.freeze(recurse=False)
    assert _keys(m.trainable_parameters()) == [
        "a.weight", "a.bias", "blocks.0.weight", "blocks.0.bias", "blocks.1.x.weight",
        "blocks.1.x.bias"]
    assert m._no_grad == {"w", "d.p", "d.q.0", "blocks.1.y"}
    m.unfreeze()
    m.a.freeze()
    assert "a" not in _keys(m.trainable_parameters())[0]
    m.unfreeze()
    m.freeze()
    assert _keys(m.trainable_parameters()) == []
    m.unfreeze(keys=["weight"])
    assert _keys(m.trainable_parameters()) == ["a.weight", "blocks.0.weight",
                                               "blocks.1.x.weight"]
    m.freeze(keys="weight").freeze(keys="weight")  # idempotent, chainable
    assert _keys(m.trainable_parameters()) == []
    m.unfreeze(recurse=False)
    assert _keys(m.trainable_parameters()) == ["blocks.1.y", "w", "d.p", "d.q.0"]


def test_freeze_strict_key_validation():
    m = Tree()
    with pytest.raises(KeyError, match="Module doesn't contain member nope."):
        m.freeze(keys="nope", strict=True)
    with pytest.raises(KeyError, match="Module doesn't contain member weight."):
        m.freeze(keys="weight", strict=True, recurse=False)
    with pytest.raises(KeyError, match="Module doesn't contain member zzz."):
        m.unfreeze(keys=["w", "zzz"], strict=True)
    m.freeze(keys="weight", strict=True)  # exists somewhere in the model: fine
    assert "a.weight" not in _keys(m.trainable_parameters())


def test_update_strictness_and_messages():
    m = Tree()
    with pytest.raises(ValueError, match='Module does not have parameter named "nope".'):
        m.update({"nope": mx.zeros((1,))})
    with pytest.raises(ValueError, match="Received invalid type: int."):
        m.update({"w": 3})
    with pytest.raises(ValueError, match="List index 2 is out of bounds for destination of "
                                         "length 2."):
        m.update({"blocks": [{}, {}, {}]})
    with pytest.raises(ValueError, match="Received invalid type: int."):
        m.update({"blocks": 5})
    new = mx.full((3, 2), 7.0)
    assert m.update({"a": {"weight": new}, "nope": 1, "blocks": [{}, {}, {}]},
                    strict=False) is m
    assert m.a.weight is new
    m.update({"w": 3}, strict=False)
    assert m["w"] == 3


def test_update_modules_strictness_and_messages():
    m = Tree()
    lin = nn.Linear(2, 3, bias=False)
    m.update_modules({"a": lin, "blocks": [nn.ReLU(), {"x": nn.Identity()}]})
    assert m.a is lin and isinstance(m.blocks[0], nn.ReLU)
    assert isinstance(m.blocks[1]["x"], nn.Identity)
    with pytest.raises(ValueError, match='Module does not have sub-module named "zz".'):
        m.update_modules({"zz": nn.ReLU()})
    with pytest.raises(ValueError, match="Received invalid type: Linear."):
        m.update_modules({"w": nn.Linear(1, 1)})
    m.update_modules({"w": nn.ReLU()})  # an empty module compares equal to {}: ignored
    with pytest.raises(ValueError, match="List index 2 is out of bounds"):
        m.update_modules({"blocks": [{}, {}, nn.ReLU()]})
    m.update_modules({"blocks": [{}, {}, nn.ReLU()], "w": nn.ReLU()}, strict=False)


def test_apply_set_dtype_and_apply_to_modules():
    m = Tree()
    m.set_dtype(mx.float16)
    assert {v.dtype for _, v in tree_flatten(m.parameters())} == {mx.float16}
    m.w = mx.array([1, 2], mx.int32)
    m.set_dtype(mx.float32)
    assert m.w.dtype == mx.int32 and m.a.weight.dtype == mx.float32
    m.set_dtype(mx.bfloat16, predicate=None)
    assert m.w.dtype == mx.bfloat16
    m.apply(lambda p: p * 0, filter_fn=lambda mod, k, v: k == "a" or k == "weight")
    assert float(mx.sum(mx.abs(m.a.weight))) == 0 and float(mx.sum(m.a.bias != 0)) > 0
    seen = []
    m.apply_to_modules(lambda name, mod: seen.append(name))
    assert seen == ["", "d.q.1", "blocks.1.x", "blocks.0", "a"]


def test_train_and_eval_reach_every_module():
    m = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.Dropout()))
    assert m.training and m.layers[1].layers[0].training
    assert m.eval() is m
    assert not m.training and not m.layers[1].layers[0].training
    m.train()
    assert m.layers[1].layers[0].training


def test_load_weights_strict_messages():
    m = nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1))
    full = tree_flatten(m.parameters())
    with pytest.raises(ValueError, match="Received 2 parameters not in model: \nextra,\nextra2."):
        m.load_weights(full + [("extra", mx.zeros((1,))), ("extra2", mx.zeros((1,)))])
    with pytest.raises(ValueError, match=r"Missing 2 parameters: \nlayers.1.bias,\n"
                                         r"layers.1.weight."):
        m.load_weights(full[:2])
    bad = [(k, mx.zeros((5,)) if k == "layers.0.bias" else v) for k, v in full]
    with pytest.raises(ValueError, match=r"Expected shape \(3,\) but received shape \(5,\) for "
                                         r"parameter layers.0.bias"):
        m.load_weights(bad)
    bad = [(k, 3.0 if k == "layers.0.bias" else v) for k, v in full]
    with pytest.raises(ValueError, match="Expected mx.array but received <class 'float'> for "
                                         "parameter layers.0.bias"):
        m.load_weights(bad)
    # not strict: the given names are set, shapes are not checked
    assert m.load_weights([("layers.0.bias", mx.zeros((5,)))], strict=False) is m
    assert m.layers[0].bias.shape == (5,)
    assert m.load_weights([], strict=False) is m


def test_load_weights_from_pairs_sets_values():
    m = nn.Linear(2, 3)
    w, b = randn(3, 2), randn(3)
    m.load_weights([("weight", mx.array(w)), ("bias", mx.array(b))])
    np.testing.assert_array_equal(npa(m.weight), w)
    np.testing.assert_array_equal(npa(m.bias), b)


@pytest.mark.parametrize("ext", [".npz", ".safetensors"])
def test_save_and_load_weights_round_trip(tmp_path, ext):
    needed = "savez" if ext == ".npz" else "save_safetensors"
    if not (hasattr(mx, needed) and hasattr(mx, "load")):
        pytest.skip(f"mx.{needed} / mx.load not written yet (mx/core/io.py)")
    src = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm(3))
    src.layers[1].running_mean = mx.array(randn(3))
    path = str(tmp_path / f"w{ext}")
    src.save_weights(path)
    dst = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm(3))
    dst.load_weights(path)
    for (k1, v1), (k2, v2) in zip(tree_flatten(src.parameters()),
                                  tree_flatten(dst.parameters())):
        assert k1 == k2
        np.testing.assert_array_equal(npa(v1), npa(v2))
    # names in the file that the model lacks are reported before missing ones
    with pytest.raises(ValueError, match="Received 2 parameters not in model: "
                                         "\nlayers.1.running_mean,\nlayers.1.running_var."):
        nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 3)).load_weights(path)


def test_save_weights_rejects_unknown_extension(tmp_path):
    path = str(tmp_path / "w.txt")
    with pytest.raises(ValueError, match=f"Unsupported file extension for {path}. Use '.npz' or "
                                         "'.safetensors'."):
        nn.Linear(2, 2).save_weights(path)


# ----------------------------------------------------------------------------------------
# value_and_grad, checkpoint, average_gradients
# ----------------------------------------------------------------------------------------
class Affine(nn.Module):
    """Element-wise parameters only, so that gradients need no matmul rule."""

    def __init__(self):
        super().__init__()
        self.scale = mx.array([1.0, 2.0, 3.0])
        self.shift = mx.array([0.5, -0.5, 0.0])
        self.inner = {"gain": mx.array(2.0)}

    def __call__(self, x):
        return (x * self.scale + self.shift) * self.inner["gain"]


def test_value_and_grad_of_elementwise_model_matches_numpy():
    model = Affine()
    x = randn(4, 3)
    t = randn(4, 3)

    def loss_fn(m, x, t, power=2):
        return mx.mean((m(x) - t) ** power)

    vg = nn.value_and_grad(model, loss_fn)
    assert vg.__name__ == "loss_fn"
    before = model.scale
    loss, grads = vg(model, mx.array(x), mx.array(t), power=2)
    s, b, g = np.float32([1, 2, 3]), np.float32([0.5, -0.5, 0]), 2.0
    r = (x * s + b) * g - t
    close(loss, (r**2).mean())
    n = r.size
    close(grads["scale"], (2 * r * g * x).sum(0) / n, rtol=1e-4)
    close(grads["shift"], (2 * r * g).sum(0) / n, rtol=1e-4)
    close(grads["inner"]["gain"], (2 * r * (x * s + b)).sum() / n, rtol=1e-4)
    # the model gets its own arrays back after the call
    assert model.scale is before


def test_value_and_grad_skips_frozen_parameters_and_passes_aux_outputs():
    model = Affine()
    model.freeze(keys=["shift"])
    (loss, aux), grads = nn.value_and_grad(
        model, lambda m, x: (mx.sum(m(x)), "aux"))(model, mx.ones((3,)))
    assert aux == "aux" and float(loss) == pytest.approx(2 * (1 + 2 + 3 + 0))
    assert sorted(grads) == ["inner", "scale"]
    close(grads["scale"], np.full(3, 2.0))


def test_value_and_grad_keeps_state_assigned_inside_the_function():
    model = Affine()

    def loss_fn(m, x):
        y = m(x)
        m.seen = mx.stop_gradient(mx.sum(y))  # e.g. a running statistic
        return mx.sum(y)

    loss, _ = nn.value_and_grad(model, loss_fn)(model, mx.ones((3,)))
    assert float(model.seen) == pytest.approx(float(loss))


def test_checkpoint_gives_the_same_value_and_gradients():
    from mx.nn.utils import checkpoint
    model = Affine()
    x = mx.array(randn(5, 3))

    def plain(m, x):
        return mx.sum(mx.sin(m(x)))

    def checkpointed(m, x):
        return mx.sum(mx.sin(checkpoint(m)(x)))

    v1, g1 = nn.value_and_grad(model, plain)(model, x)
    v2, g2 = nn.value_and_grad(model, checkpointed)(model, x)
    close(v2, float(v1), rtol=1e-6)
    for (k, a), (_, b) in zip(tree_flatten(g1), tree_flatten(g2)):
        close(b, npa(a), rtol=1e-5)
    # a separate fn, non-array arguments held constant
    ck = checkpoint(model, lambda x, mask, k=1.0: m_call(model, x, mask) * k)
    close(ck(x, None, k=2.0), 2 * npa(model(x)), rtol=1e-6)


def m_call(model, x, mask):
    assert mask is None
    return model(x)


def test_average_gradients_single_process_is_identity():
    grads = {"a": mx.ones((2,)), "b": [mx.zeros((3, 3))]}
    assert nn.average_gradients(grads) is grads


def test_average_gradients_groups_arrays_into_messages(monkeypatch):
    import types
    calls = []

    def all_sum(x, group=None, stream=None):
        calls.append(x.shape)
        return x * group.size()  # every process holds the same gradients

    class Group:
        def size(self):
            return 4

    monkeypatch.setattr(mx, "distributed", types.SimpleNamespace(all_sum=all_sum,
                                                                 init=Group), raising=False)
    grads = {"a": mx.array(randn(3, 2)), "b": [mx.array(randn(5)), mx.array(randn(2, 2))]}
    out = nn.average_gradients(grads, all_reduce_size=4 * 7)
    # 6 + 5 floats reach 28 bytes, the last 4 go alone
    assert calls == [(11,), (4,)]
    for (k1, v1), (k2, v2) in zip(tree_flatten(grads), tree_flatten(out)):
        assert k1 == k2
        assert_same(v2, npa(v1), rtol=1e-6)
    calls.clear()
    nn.average_gradients(grads, all_reduce_size=0)
    assert calls == [(3, 2), (5,), (2, 2)]
    calls.clear()
    mixed = {"a": mx.ones((2,)), "b": mx.ones((2,), mx.float16)}
    nn.average_gradients(mixed)
    assert calls == [(2,), (2,)]


@needs_matmul_grad
def test_value_and_grad_of_linear_model_matches_numpy():
    model = nn.Linear(3, 2)
    x, t = randn(5, 3), randn(5, 2)
    loss, g = nn.value_and_grad(model, lambda m, x, t: nn.losses.mse_loss(m(x), t))(
        model, mx.array(x), mx.array(t))
    w, b = npa(model.weight), npa(model.bias)
    r = x @ w.T + b - t
    close(loss, (r**2).mean())
    close(g["weight"], 2 * r.T @ x / r.size, rtol=1e-4)
    close(g["bias"], 2 * r.sum(0) / r.size, rtol=1e-4)


@needs_matmul_grad
def test_checkpointed_transformer_encoder_has_the_same_gradients():
    enc = nn.TransformerEncoder(1, 8, 2, mlp_dims=8)
    x = mx.array(randn(2, 3, 8))

    def loss_fn(m, x):
        return mx.sum(m(x, None) ** 2)

    v1, g1 = nn.value_and_grad(enc, loss_fn)(enc, x)
    enc.checkpoint = True
    v2, g2 = nn.value_and_grad(enc, loss_fn)(enc, x)
    close(v2, float(v1), rtol=1e-5)
    for (k, a), (_, b) in zip(tree_flatten(g1), tree_flatten(g2)):
        close(b, npa(a), rtol=1e-4, atol=1e-5)


@needs_matmul_grad
def test_seed_training_loop_uncompiled_decreases_loss():
    optim = pytest.importorskip("mx.optimizers")
    if not hasattr(optim, "SGD"):
        pytest.skip("mx.optimizers.SGD not written yet")
    mx.random.seed(0)
    x = mx.random.uniform(shape=(4, 10))
    y = mx.array([0, 1, 0, 1])
    model = nn.Linear(10, 1)
    optimizer = optim.SGD(learning_rate=0.1, momentum=0.8)

    def loss_fn(model, x, y):
        logits = model(x).squeeze()
        return nn.losses.binary_cross_entropy(logits, y)

    loss_and_grad_fn = nn.value_and_grad(model, loss_fn)
    losses = []
    for _ in range(10):
        loss, grads = loss_and_grad_fn(model, x, y)
        optimizer.update(model, grads)
        mx.eval(model.parameters(), optimizer.state)
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@needs_matmul_grad
def test_small_mlp_learns_with_manual_sgd():
    mx.random.seed(1)
    x = randn(32, 2)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int32)
    model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    vg = nn.value_and_grad(
        model, lambda m, x, y: nn.losses.cross_entropy(m(x), y, reduction="mean"))
    losses = []
    for _ in range(30):
        loss, g = vg(model, mx.array(x), mx.array(y))
        model.update(tree_map(lambda p, d: p - 0.5 * d, model.trainable_parameters(), g))
        mx.eval(model.parameters())
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_package_layout():
    import mx.nn.layers.base as base
    assert nn.Module is base.Module
    assert os.path.basename(nn.losses.__file__) == "losses.py"
    assert nn.convolution_transpose.ConvTranspose2d is nn.ConvTranspose2d
    for name in ("Conv1d", "ConvTranspose3d", "AvgPool3d", "ALiBi", "Upsample", "Sequential",
                 "TransformerDecoderLayer", "Dropout3d", "InstanceNorm", "average_gradients"):
        assert hasattr(nn, name)
