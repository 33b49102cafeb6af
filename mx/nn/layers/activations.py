"""Activation functions and their Module wrappers (MLX's mlx.nn activations)."""
from __future__ import annotations

import math
from typing import Any

import mx.core as mx
from mx.nn.layers.base import Module


# ---------------------------------------------------------------------------- functions
def sigmoid(x):
    r"""Logistic sigmoid, :math:`1 / (1 + e^{-x})`, element-wise."""
    return mx.sigmoid(x)


def relu(x):
    """Rectified linear unit: ``max(x, 0)``."""
    return mx.maximum(x, 0)


def relu2(x):
    """Squared ReLU: ``max(x, 0) ** 2``."""
    return mx.square(mx.maximum(x, 0))


def relu6(x):
    """ReLU capped at 6: ``min(max(x, 0), 6)``."""
    return mx.minimum(mx.maximum(x, 0), 6.0)


def leaky_relu(x, negative_slope=0.01):
    """Leaky ReLU: ``max(negative_slope * x, x)``."""
    return mx.maximum(negative_slope * x, x)


def log_softmax(x, axis=-1):
    """Logarithm of the softmax along `axis`, computed after subtracting the maximum so
    that large inputs keep their precision."""
    x = x - mx.stop_gradient(mx.max(x, axis=axis, keepdims=True))
    return x - mx.logsumexp(x, axis=axis, keepdims=True)


def elu(x, alpha=1.0):
    """Exponential linear unit: x where positive, ``alpha * (exp(x) - 1)`` elsewhere."""
    return mx.where(x > 0, x, alpha * (mx.exp(x) - 1))


def softmax(x, axis=-1):
    """Softmax along `axis`."""
    return mx.softmax(x, axis=axis)


def softplus(x):
    """Softplus: ``log(1 + exp(x))``."""
    return mx.logaddexp(x, 0)


def softsign(x):
    """Softsign: ``x / (1 + |x|)``."""
    return mx.divide(x, 1 + mx.abs(x))


def softshrink(x, lambd: float = 0.5):
    """Soft shrinkage: moves x towards 0 by `lambd`, and zeroes |x| <= lambd."""
    return mx.where(mx.abs(x) > lambd, x - mx.sign(x) * lambd, 0)


def celu(x, alpha=1.0):
    """Continuously differentiable ELU: ``max(x, 0) + alpha * (exp(min(x, 0) / alpha) - 1)``."""
    return mx.maximum(x, 0.0) + alpha * (mx.exp(mx.minimum(x, 0.0) / alpha) - 1)


def silu(x):
    """Sigmoid linear unit (swish): ``x * sigmoid(x)``."""
    return x * mx.sigmoid(x)


def log_sigmoid(x):
    """Logarithm of the sigmoid: ``-softplus(-x)``."""
    return -softplus(-x)


def gelu(x) -> mx.array:
    """Gaussian error linear unit, exactly: ``x * Phi(x)`` with Phi the normal CDF."""
    return x * (1 + mx.erf(x / math.sqrt(2))) / 2


def gelu_approx(x):
    """GELU through the tanh approximation (absolute error < 0.0005 on [-6, 6])."""
    return 0.5 * x * (1 + mx.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_fast_approx(x):
    """GELU through ``x * sigmoid(1.702 x)`` (absolute error < 0.015 on [-6, 6])."""
    return x * mx.sigmoid(1.702 * x)


def glu(x: mx.array, axis: int = -1) -> mx.array:
    """Gated linear unit: splits `axis` into halves a, b and returns ``a * sigmoid(b)``."""
    a, b = mx.split(x, indices_or_sections=2, axis=axis)
    return a * mx.sigmoid(b)


def step(x: mx.array, threshold: float = 0.0):
    """Binary step: 1 where x >= threshold, else 0."""
    return mx.where(x >= threshold, 1, 0)


def selu(x):
    """Scaled ELU: ``1.0507 * elu(x, 1.67326)``."""
    return elu(x, 1.67326) * 1.0507


def prelu(x: mx.array, alpha: mx.array) -> mx.array:
    """Parametric ReLU: ``max(0, x) + alpha * min(0, x)``."""
    return mx.maximum(0, x) + alpha * mx.minimum(0, x)


def mish(x: mx.array) -> mx.array:
    """Mish: ``x * tanh(softplus(x))``."""
    return x * mx.tanh(softplus(x))


def hardswish(x):
    """Hard swish: ``x * min(max(x + 3, 0), 6) / 6``."""
    return x * mx.minimum(mx.maximum(x + 3, 0), 6) / 6


def hard_tanh(x, min_val=-1.0, max_val=1.0):
    """x clipped to [min_val, max_val]."""
    return mx.minimum(mx.maximum(x, min_val), max_val)


def hard_shrink(x, lambd=0.5):
    """Hard shrinkage: zeroes the entries with |x| <= lambd."""
    return mx.where(mx.abs(x) > lambd, x, 0)


def softmin(x, axis=-1):
    """Softmin along `axis`: ``softmax(-x)``."""
    return mx.softmax(-x, axis=axis)


def tanh(x):
    """Hyperbolic tangent."""
    return mx.tanh(x)


# ---------------------------------------------------------------------------- modules
def _stateless(fn, doc):
    """A Module class with no parameters whose call applies `fn`."""
    def call(self, x):
        return fn(x)
    return {"__call__": call, "__doc__": doc}


Sigmoid = type("Sigmoid", (Module,), _stateless(sigmoid, "Applies :func:`sigmoid`."))
Mish = type("Mish", (Module,), _stateless(mish, "Applies :func:`mish`."))
ReLU = type("ReLU", (Module,), _stateless(relu, "Applies :func:`relu`."))
ReLU2 = type("ReLU2", (Module,), _stateless(relu2, "Applies :func:`relu2`."))
ReLU6 = type("ReLU6", (Module,), _stateless(relu6, "Applies :func:`relu6`."))
Softmax = type("Softmax", (Module,), _stateless(softmax, "Applies :func:`softmax`."))
Softplus = type("Softplus", (Module,), _stateless(softplus, "Applies :func:`softplus`."))
Softsign = type("Softsign", (Module,), _stateless(softsign, "Applies :func:`softsign`."))
SiLU = type("SiLU", (Module,), _stateless(silu, "Applies :func:`silu`."))
LogSoftmax = type("LogSoftmax", (Module,),
                  _stateless(log_softmax, "Applies :func:`log_softmax`."))
LogSigmoid = type("LogSigmoid", (Module,),
                  _stateless(log_sigmoid, "Applies :func:`log_sigmoid`."))
Tanh = type("Tanh", (Module,), _stateless(tanh, "Applies :func:`tanh`."))
Hardswish = type("Hardswish", (Module,), _stateless(hardswish, "Applies :func:`hardswish`."))
SELU = type("SELU", (Module,), _stateless(selu, "Applies :func:`selu`."))
HardTanh = type("HardTanh", (Module,), _stateless(hard_tanh, "Applies :func:`hard_tanh`."))
Softmin = type("Softmin", (Module,), _stateless(softmin, "Applies :func:`softmin`."))
for _cls in (Sigmoid, Mish, ReLU, ReLU2, ReLU6, Softmax, Softplus, Softsign, SiLU, LogSoftmax,
             LogSigmoid, Tanh, Hardswish, SELU, HardTanh, Softmin):
    _cls.__module__ = __name__
del _cls


class GLU(Module):
    """Applies :func:`glu` along `axis` (default -1)."""

    def __init__(self, axis: int = -1):
        super().__init__()
        self.axis = axis

    def __call__(self, x) -> Any:
        return glu(x=x, axis=self.axis)


class LeakyReLU(Module):
    """Applies :func:`leaky_relu` with the given `negative_slope` (default 0.01)."""

    def __init__(self, negative_slope=1e-2):
        super().__init__()
        self._negative_slope = negative_slope

    def __call__(self, x):
        return leaky_relu(x, self._negative_slope)


class ELU(Module):
    """Applies :func:`elu` with the given `alpha` (default 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return elu(x, self._alpha)


class CELU(Module):
    """Applies :func:`celu` with the given `alpha` (default 1)."""

    def __init__(self, alpha=1.0):
        super().__init__()
        self._alpha = alpha

    def __call__(self, x):
        return celu(x, self._alpha)


class Softshrink(Module):
    """Applies :func:`softshrink` with the given `lambd` (default 0.5)."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return softshrink(x, self.lambd)


class HardShrink(Module):
    """Applies :func:`hard_shrink` with the given `lambd` (default 0.5)."""

    def __init__(self, lambd=0.5):
        super().__init__()
        self.lambd = lambd

    def __call__(self, x):
        return hard_shrink(x, self.lambd)


class Step(Module):
    """Applies :func:`step` with the given `threshold` (default 0)."""

    def __init__(self, threshold: float = 0.0):
        super().__init__()
        self.threshold = threshold

    def __call__(self, x: mx.array):
        return step(x, self.threshold)


class PReLU(Module):
    """Parametric ReLU with a learned slope `weight` of shape (num_parameters,), initialised
    to `init` (default 0.25)."""

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.weight = mx.full([num_parameters], init)

    def __call__(self, x: mx.array):
        return prelu(x, self.weight)


class GELU(Module):
    """Applies :func:`gelu` (approx="none"), :func:`gelu_approx` ("precise", or its alias
    "tanh") or :func:`gelu_fast_approx` ("fast")."""

    def __init__(self, approx="none"):
        super().__init__()
        allowed = ["none", "precise", "tanh", "fast"]
        if approx not in allowed:
            raise ValueError(
                f"The approximation should be in {allowed} but '{approx}' was given")
        self._approx = approx

    def __call__(self, x):
        if self._approx == "none":
            return gelu(x)
        if self._approx in ("precise", "tanh"):
            return gelu_approx(x)
        return gelu_fast_approx(x)
