"""Identity, Linear and Bilinear layers."""
from __future__ import annotations

import math
from typing import Any

import mx.core as mx
from mx.nn.layers.base import Module


class Identity(Module):
    """Returns its input unchanged; accepts and ignores any constructor arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def __call__(self, x: mx.array) -> mx.array:
        return x


class Linear(Module):
    r"""Affine map ``y = x W^T + b`` with `weight` of shape (output_dims, input_dims) and
    `bias` of shape (output_dims,) (omitted with bias=False), both drawn from
    U(-k, k), k = 1 / sqrt(input_dims)."""

    def __init__(self, input_dims: int, output_dims: int, bias: bool = True) -> None:
        super().__init__()
        k = math.sqrt(1.0 / input_dims)
        self.weight = mx.random.uniform(low=-k, high=k, shape=(output_dims, input_dims))
        if bias:
            self.bias = mx.random.uniform(low=-k, high=k, shape=(output_dims,))

    def _extra_repr(self) -> str:
        return (f"input_dims={self.weight.shape[1]}, output_dims={self.weight.shape[0]}, "
                f"bias={'bias' in self}")

    def __call__(self, x: mx.array) -> mx.array:
        y = x @ self["weight"].T
        if "bias" in self:
            y = y + self["bias"]
        return y


class Bilinear(Module):
    r"""Bilinear map ``y_i = x_2^T W_i x_1 + b_i`` with `weight` of shape
    (output_dims, input2_dims, input1_dims) and `bias` of shape (output_dims,), drawn from
    U(-k, k), k = 1 / sqrt(input1_dims)."""

    def __init__(self, input1_dims: int, input2_dims: int, output_dims: int,
                 bias: bool = True) -> None:
        super().__init__()
        k = math.sqrt(1.0 / input1_dims)
        self.weight = mx.random.uniform(low=-k, high=k,
                                        shape=(output_dims, input2_dims, input1_dims))
        if bias:
            self.bias = mx.random.uniform(low=-k, high=k, shape=(output_dims,))

    def _extra_repr(self) -> str:
        out, in2, in1 = self.weight.shape
        return (f"input1_dims={in1}, input2_dims={in2}, output_dims={out}, "
                f"bias={'bias' in self}")

    def __call__(self, x1: mx.array, x2: mx.array) -> mx.array:
        out, in2, in1 = self.weight.shape
        batch_shape = x1.shape[:-1]
        x1 = x1.reshape(-1, in1)
        x2 = x2.reshape(-1, 1, in2)
        # contract x1 with W first: (B, out * in2) -> (B, in2, out), then x2 on the left
        w1 = (x1 @ self.weight.reshape(out * in2, in1).T).reshape(-1, out, in2)
        y = (x2 @ w1.swapaxes(-2, -1)).squeeze(1)
        y = y.reshape(*batch_shape, out)
        if "bias" in self:
            y = y + self.bias
        return y
