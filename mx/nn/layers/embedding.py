"""The Embedding lookup table."""
from __future__ import annotations

import math

import mx.core as mx
from mx.nn.layers.base import Module


class Embedding(Module):
    """Maps integer tokens to rows of `weight`, shape (num_embeddings, dims), initialised
    from N(0, 1 / dims)."""

    def __init__(self, num_embeddings: int, dims: int):
        super().__init__()
        self.weight = mx.random.normal(shape=(num_embeddings, dims), scale=math.sqrt(1 / dims))

    def _extra_repr(self):
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}"

    def __call__(self, x):
        return self.weight[x]

    def as_linear(self, x):
        """Use the table as an output projection ``x @ weight.T`` (tied embeddings)."""
        return x @ self.weight.T
