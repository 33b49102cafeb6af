"""Array-API spellings MLX also exposes, and the few small ops that exist only as
compositions or aliases of ops declared elsewhere."""
from __future__ import annotations

import numpy as np

from mx.core._array import BINARY_RULES, UNARY_RULES, binary_op, unary_op
from mx.core.primitives import declare
from mx.core.ops import elementwise as _e
from mx.core.ops._util import as_array

acos = _e.arccos
acosh = _e.arccosh
asin = _e.arcsin
asinh = _e.arcsinh
atan = _e.arctan
atanh = _e.arctanh
atan2 = _e.arctan2
pow = _e.power
bitwise_left_shift = _e.left_shift
bitwise_right_shift = _e.right_shift

_TRUNC = declare("trunc", cpu=np.trunc, donates=True, doc="round toward zero")
_LOGICAL_XOR = declare("logical_xor", cpu=np.logical_xor, donates=True, doc="logical xor")


def trunc(a, /, *, stream=None):
    """Elementwise rounding toward zero (integers pass through)."""
    return unary_op(_TRUNC, UNARY_RULES["nocomplex"], a, stream)


def logical_xor(a, b, /, *, stream=None):
    """Elementwise logical exclusive or (inputs read as bool)."""
    return binary_op(_LOGICAL_XOR, BINARY_RULES["logical"], a, b, stream)


def positive(a, /, *, stream=None):
    """Elementwise unary plus: a copy of `a`."""
    return _e.copy(as_array(a, "positive"), stream=stream)


def matrix_transpose(a, /, *, stream=None):
    """`a` with its last two axes swapped."""
    from mx.core.ops.shape import swapaxes
    x = as_array(a, "matrix_transpose")
    if x.ndim < 2:
        raise ValueError(f"[matrix_transpose] The array must have at least 2 dimensions; got shape {x.shape}.")
    return swapaxes(x, -1, -2, stream=stream)


def empty_like(a, /, dtype=None, *, stream=None):
    """An array shaped like `a` (MLX returns zeros, so does mx: memory is never left
    uninitialised)."""
    from mx.core.ops.creation import zeros_like
    return zeros_like(a, dtype, stream=stream)


def matrix_norm(a, /, ord=None, axis=None, keepdims=False, *, stream=None):
    """Matrix or vector norm (mx.linalg.norm under the name MLX also exports)."""
    from mx.core.linalg import norm
    return norm(a, ord, axis, keepdims, stream=stream)


__all__ = ["empty_like", "matrix_norm", "acos", "acosh", "asin", "asinh", "atan", "atanh", "atan2", "pow",
           "bitwise_left_shift", "bitwise_right_shift", "trunc", "logical_xor", "positive",
           "matrix_transpose"]


def install_rules():
    """trunc and logical_xor are piecewise constant: no gradient; they batch elementwise."""
    import mx.core as mx
    from mx.core.transforms import broadcast_batch

    def no_grad(n):
        return lambda primals, ct, out: [None] * n

    def zero_tangent(primals, tangents, out):
        return mx.zeros(out.shape, out.dtype)

    _TRUNC.vjp = no_grad(1)
    _TRUNC.jvp = zero_tangent
    _TRUNC.vmap = lambda inputs, axes, out: (trunc(inputs[0]), axes[0])
    _LOGICAL_XOR.vjp = no_grad(2)
    _LOGICAL_XOR.jvp = zero_tangent

    def xor_vmap(inputs, axes, out):
        x, y = broadcast_batch(inputs, axes)
        return logical_xor(x, y), 0

    _LOGICAL_XOR.vmap = xor_vmap
