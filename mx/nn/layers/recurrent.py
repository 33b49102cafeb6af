"""Recurrent layers: Elman RNN, GRU and LSTM over (N, L, D) or (L, D) sequences."""
from __future__ import annotations

import math
from typing import Callable, Optional

import mx.core as mx
from mx.nn.layers.activations import tanh
from mx.nn.layers.base import Module


def _uniform(scale, shape):
    return mx.random.uniform(low=-scale, high=scale, shape=shape)


def _project(x, w, b):
    y = x @ w.T
    return y if b is None else y + b


class RNN(Module):
    """Elman recurrence ``h_{t+1} = nonlinearity(W_xh x_t + W_hh h_t + b)`` (tanh by
    default). Parameters `Wxh` (H, D), `Whh` (H, H) and `bias` (H,) are drawn from
    U(-1/sqrt(H), 1/sqrt(H)). Returns the hidden states of every step, (N, L, H) or
    (L, H)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: Optional[Callable] = None):
        super().__init__()
        self.nonlinearity = nonlinearity or tanh
        if not callable(self.nonlinearity):
            raise ValueError(f"Nonlinearity must be callable. Current value: {nonlinearity}.")
        k = 1.0 / math.sqrt(hidden_size)
        self.hidden_size = hidden_size
        self.Wxh = _uniform(k, (hidden_size, input_size))
        self.Whh = _uniform(k, (hidden_size, hidden_size))
        self.bias = _uniform(k, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wxh.shape[1]}, hidden_size={self.hidden_size}, "
                f"nonlinearity={self.nonlinearity}, bias={self.bias is not None}")

    def __call__(self, x, hidden=None):
        x = _project(x, self.Wxh, self.bias)
        states = []
        for t in range(x.shape[-2]):
            h = x[..., t, :]
            if hidden is not None:
                h = h + hidden @ self.Whh.T
            hidden = self.nonlinearity(h)
            states.append(hidden)
        return mx.stack(states, axis=-2)


class GRU(Module):
    """Gated recurrent unit. `Wx` (3H, D) and `Wh` (3H, H) hold the reset, update and
    candidate blocks in that order; `b` (3H,) is the input bias and `bhn` (H,) the bias of
    the hidden candidate projection. All are drawn from U(-1/sqrt(H), 1/sqrt(H)). Returns
    the hidden states of every step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(k, (3 * hidden_size, input_size))
        self.Wh = _uniform(k, (3 * hidden_size, hidden_size))
        self.b = _uniform(k, (3 * hidden_size,)) if bias else None
        self.bhn = _uniform(k, (hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.b is not None}")

    def __call__(self, x, hidden=None):
        H = self.hidden_size
        x = _project(x, self.Wx, self.b)
        x_rz, x_n = x[..., :-H], x[..., -H:]
        states = []
        for t in range(x.shape[-2]):
            rz = x_rz[..., t, :]
            n = x_n[..., t, :]
            if hidden is not None:
                h_proj = hidden @ self.Wh.T
                h_n = h_proj[..., -H:]
                if self.bhn is not None:
                    h_n = h_n + self.bhn
                rz = rz + h_proj[..., :-H]
            r, z = mx.split(mx.sigmoid(rz), 2, axis=-1)
            if hidden is not None:
                n = n + r * h_n
            elif self.bhn is not None:
                n = n + r * self.bhn
            n = mx.tanh(n)
            hidden = (1 - z) * n if hidden is None else (1 - z) * n + z * hidden
            states.append(hidden)
        return mx.stack(states, axis=-2)


class LSTM(Module):
    """Long short-term memory. `Wx` (4H, D), `Wh` (4H, H) and `bias` (4H,) hold the input,
    forget, cell and output gate blocks in that order, drawn from
    U(-1/sqrt(H), 1/sqrt(H)). Returns (hidden states, cell states) of every step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True):
        super().__init__()
        self.hidden_size = hidden_size
        k = 1.0 / math.sqrt(hidden_size)
        self.Wx = _uniform(k, (4 * hidden_size, input_size))
        self.Wh = _uniform(k, (4 * hidden_size, hidden_size))
        self.bias = _uniform(k, (4 * hidden_size,)) if bias else None

    def _extra_repr(self):
        return (f"input_dims={self.Wx.shape[1]}, hidden_size={self.hidden_size}, "
                f"bias={self.bias is not None}")

    def __call__(self, x, hidden=None, cell=None):
        x = _project(x, self.Wx, self.bias)
        hiddens, cells = [], []
        for t in range(x.shape[-2]):
            gates = x[..., t, :]
            if hidden is not None:
                gates = gates + hidden @ self.Wh.T
            i, f, g, o = mx.split(gates, 4, axis=-1)
            i, f, g, o = mx.sigmoid(i), mx.sigmoid(f), mx.tanh(g), mx.sigmoid(o)
            cell = i * g if cell is None else f * cell + i * g
            hidden = o * mx.tanh(cell)
            hiddens.append(hidden)
            cells.append(cell)
        return mx.stack(hiddens, axis=-2), mx.stack(cells, axis=-2)
