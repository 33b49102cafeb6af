"""Sequential container."""
from __future__ import annotations

from mx.nn.layers.base import Module


class Sequential(Module):
    """Calls the given callables (modules or plain functions) one after another; they are
    kept in the `layers` list."""

    def __init__(self, *modules):
        super().__init__()
        self.layers = list(modules)

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x
