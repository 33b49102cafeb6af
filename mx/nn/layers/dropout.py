"""Dropout layers: element-wise and channel-wise (2-d and 3-d)."""
from __future__ import annotations

import mx.core as mx
from mx.nn.layers.base import Module


class _DropoutBase(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        if p < 0 or p >= 1:
            raise ValueError(f"The dropout probability {p} is not in [0, 1)")
        self._p_1 = 1 - p

    def _extra_repr(self) -> str:
        return f"p={1 - self._p_1}"

    def _drop(self, x, mask_shape):
        # keep with probability 1 - p and rescale so that the expectation is unchanged
        mask = mx.random.bernoulli(self._p_1, mask_shape)
        return (mask * x) * (1 / self._p_1)


class Dropout(_DropoutBase):
    """In training, zeroes each element with probability `p` and scales the others by
    1 / (1 - p); the identity in evaluation mode."""

    def __call__(self, x: mx.array) -> mx.array:
        if self._p_1 == 1 or not self.training:
            return x
        return self._drop(x, x.shape)


class Dropout2d(_DropoutBase):
    """Channel-wise dropout for NHWC or HWC inputs: whole channels (the same for every
    spatial position) are zeroed with probability `p` during training."""

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim not in (3, 4):
            raise ValueError(f"Received input with {x.ndim} dimensions. Expected 3 or 4 "
                             "dimensions.")
        if self._p_1 == 1 or not self.training:
            return x
        shape = list(x.shape)
        shape[-3] = shape[-2] = 1
        return self._drop(x, shape)


class Dropout3d(_DropoutBase):
    """Channel-wise dropout for NDHWC or DHWC inputs."""

    def __call__(self, x: mx.array) -> mx.array:
        if x.ndim not in (4, 5):
            raise ValueError(f"Received input with {x.ndim} dimensions. Expected 4 or 5 "
                             "dimensions.")
        if self._p_1 == 1 or not self.training:
            return x
        shape = list(x.shape)
        shape[-4] = shape[-3] = shape[-2] = 1
        return self._drop(x, shape)
