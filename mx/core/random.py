"""mx.random: counter-based pseudo random numbers with MLX's keys and streams.

A key is a uint32 array of shape (2,). Random bits come from the Threefry-2x32 block cipher
(20 rounds) applied to a counter, so for the same key these functions produce the numbers
MLX produces:

* ``bits(shape, 4, key)`` for n words enciphers the counter pairs (i, i + ceil(n/2)),
  i < ceil(n/2), under the key (the counter past the end of an odd n reads 0) and lays out
  all first output words, then all second ones, keeping the first n.
* ``split(key, num)`` is ``bits((num, 2), 4, key)``.
* uniform floats are ``bits / 2**32`` in float32, capped just below 1 in the target dtype,
  then scaled to [low, high); the other distributions are built from uniforms.

Only ``bits`` (and the two helpers of permutation and multivariate_normal) are primitives;
every sampler is a composition of lazy ops whose only random input is the key, so samples
are lazy, differentiable in their float parameters and batchable over keys.

Functions called without ``key=`` split the global key ``state[0]`` and use the second half,
keeping the first as the new global key. ``state`` is a plain list so that a compiled
function can capture and update it.
"""
from __future__ import annotations

import math
import numbers
import operator
import time

import numpy as np

from mx.core._array import Dtype, array, broadcast_shapes_pair, make_node, shape_str, wrap
from mx.core.dtypes import (bfloat16, bool_, complex64, float16, float32, float64, int32,
                            integer, issubdtype, uint8, uint16, uint32)
from mx.core.primitives import declare
from mx.core.ops._util import AxisError

__all__ = ["key", "seed", "split", "bits", "uniform", "normal", "randint", "bernoulli",
           "categorical", "gumbel", "laplace", "multivariate_normal", "permutation",
           "truncated_normal", "state"]


def _mx():
    import mx.core as mx
    return mx


# ---------------------------------------------------------------------------------------
# Threefry-2x32 in NumPy uint32 arithmetic (wraps modulo 2**32)
# ---------------------------------------------------------------------------------------
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _threefry2x32(k0, k1, x0, x1):
    """Encipher the counter words (x0, x1) under the key (k0, k1); all uint32 arrays that
    broadcast together. Returns the two output words."""
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + k0
    x1 = x1 + k1
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x0 += x1
            x1 = (x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))
            x1 ^= x0
        # key injection after every four rounds
        x0 += ks[(i + 1) % 3]
        x1 += ks[(i + 2) % 3]
        x1 += np.uint32(i + 1)
    return x0, x1


def _words(keys, n):
    """n random uint32 words for each key of `keys` (shape (*batch, 2)): (prod(batch), n)."""
    flat = np.asarray(keys, dtype=np.uint32).reshape(-1, 2)
    k0 = flat[:, 0:1]
    k1 = flat[:, 1:2]
    half = (n + 1) // 2
    x0 = np.arange(half, dtype=np.uint32)
    x1 = np.arange(half, 2 * half, dtype=np.uint32)
    if n % 2:
        x1[-1] = 0
    x0 = np.broadcast_to(x0, (flat.shape[0], half))
    y0, y1 = _threefry2x32(k0, k1, x0, x1)
    return np.concatenate([y0, y1], axis=-1)[:, :n]


_WIDTH_DTYPES = {1: (uint8, np.uint8), 2: (uint16, np.uint16), 4: (uint32, np.uint32)}


def _bits_np(keys, shape, width):
    """The kernel of `bits`: keys (*batch, 2) -> (*batch, *shape) words of `width` bytes."""
    n = math.prod(shape)
    words = _words(keys, (n * width + 3) // 4)
    if width != 4:
        # the bytes of the words in little-endian order, cut to n items
        words = words.astype("<u4", copy=False).view(_WIDTH_DTYPES[width][1])[:, :n]
    return np.ascontiguousarray(words).reshape(keys.shape[:-1] + tuple(shape))


BITS = declare("random_bits", cpu=_bits_np,
               doc="Threefry-2x32 random words of a key (keys may carry leading batch axes)")


def _argsort_kernel(words):
    return np.argsort(words, axis=-1, kind="stable").astype(np.uint32)


ARGSORT = declare("random_argsort", cpu=_argsort_kernel,
                  doc="stable argsort of random words along the last axis (permutations)")


def _sqrt_cov_kernel(cov):
    u, s, vt = np.linalg.svd(cov.astype(np.float32, copy=False))
    return np.matmul(u * np.sqrt(s)[..., None, :], vt).astype(np.float32)


SQRT_COV = declare("random_sqrt_cov", cpu=_sqrt_cov_kernel,
                   doc="U sqrt(S) Vt from the SVD of a covariance (multivariate_normal)")


# ---------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------
def _shape_arg(shape, op):
    if not isinstance(shape, (list, tuple)):
        raise TypeError(f"[{op}] shape must be a sequence of integers, got "
                        f"{type(shape).__name__}.")
    try:
        shape = tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"[{op}] shape must be a sequence of integers, got {shape!r}.") from None
    if any(s < 0 for s in shape):
        raise ValueError("[bits] Negative dimensions not allowed.")
    return shape


def _int_arg(x, name, op):
    if isinstance(x, bool):
        raise TypeError(f"[{op}] {name} must be an integer, got bool.")
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"[{op}] {name} must be an integer, got {type(x).__name__}.") from None


def _dtype_arg(dtype, default, op):
    if dtype is None:
        return default
    if not isinstance(dtype, Dtype):
        raise TypeError(f"[{op}] dtype must be an mx Dtype such as mx.float32, got {dtype!r}.")
    return dtype


def _is_real_float(dtype):
    return dtype in (float16, bfloat16, float32, float64)


def _scalar_or_array(x, dtype, name, op, stream=None):
    """`x` (a Python/NumPy scalar or an array) as an array of `dtype`."""
    mx = _mx()
    if isinstance(x, array):
        return x if x.dtype is dtype else mx.astype(x, dtype, stream=stream)
    if isinstance(x, (numbers.Number, np.generic)) and not isinstance(x, complex):
        return mx.array(x, dtype=dtype)
    raise TypeError(f"[{op}] {name} must be a scalar or an array, got {type(x).__name__}.")


def _check_key(k):
    if not isinstance(k, array):
        raise TypeError(f"[bits] key must be an mx array of dtype uint32 and shape (2,), got "
                        f"{type(k).__name__}.")
    if k.dtype is not uint32:
        raise ValueError(f"[bits] Expected key type uint32 but received {k.dtype.name}.")
    if k.shape != (2,):
        raise ValueError(f"[bits] Expected key shape (2) but received {shape_str(k.shape)}.")
    return k


# ---------------------------------------------------------------------------------------
# keys and the global key
# ---------------------------------------------------------------------------------------
def _key_data(seed_value, op):
    s = _int_arg(seed_value, "seed", op)
    if not 0 <= s < 2 ** 64:
        raise TypeError(f"[{op}] seed must be an integer in [0, 2**64), got {s}.")
    return np.array([s >> 32, s & 0xFFFFFFFF], dtype=np.uint32)


def key(seed: int) -> array:
    """A PRNG key for `seed` (an integer in [0, 2**64)): the uint32 pair
    (seed >> 32, seed & 0xFFFFFFFF)."""
    return wrap(_key_data(seed, "key"), uint32)


state = [key(time.time_ns() % 2 ** 64)]


def seed(seed: int) -> None:
    """Reset the global key (``state[0]``) to ``key(seed)``."""
    state[0] = wrap(_key_data(seed, "seed"), uint32)


def _next_key():
    """A fresh key from the global stream: split the global key, keep the first half."""
    k = _check_key(state[0])
    if k._data is not None and k._pending is None:
        # an evaluated global key is split right away: a chain of lazy splits would grow
        # with every call made without evaluating
        halves = _bits_np(k._data, (2, 2), 4)
        state[0] = wrap(halves[0].copy(), uint32)
        return wrap(halves[1].copy(), uint32)
    # a traced key (inside a transform or compile) stays lazy
    halves = split(k)
    state[0] = halves[0]
    return halves[1]


def _resolve_key(k):
    return _next_key() if k is None else _check_key(k)


def _bits(shape, width, k, stream):
    dtype = _WIDTH_DTYPES[width][0]
    return make_node(BITS, (_resolve_key(k),), {"shape": shape, "width": width}, shape, dtype,
                     stream)


def bits(shape=[], width=4, key=None, stream=None):  # noqa: B006 (MLX's signature)
    """Random bits: an array of `shape` of unsigned integers `width` bytes wide (1, 2 or 4:
    uint8, uint16 or uint32)."""
    shape = _shape_arg(shape, "bits")
    width = _int_arg(width, "width", "bits")
    if width not in _WIDTH_DTYPES:
        raise ValueError(f"[bits] width must be 1, 2 or 4 bytes, got {width}.")
    return _bits(shape, width, key, stream)


def split(key, num=2, stream=None):
    """Split `key` into `num` new keys: an array of shape (num, 2)."""
    num = _int_arg(num, "num", "split")
    if num < 0:
        raise ValueError("[bits] Negative dimensions not allowed.")
    return _bits((num, 2), 4, _check_key(key), stream)


# ---------------------------------------------------------------------------------------
# uniform and the distributions built on it
# ---------------------------------------------------------------------------------------
_BELOW_ONE = {float16: np.nextafter(np.float16(1), np.float16(0)),
              bfloat16: np.float32(1 - 2.0 ** -8),
              float32: np.nextafter(np.float32(1), np.float32(0))}
_SQRT2 = math.sqrt(2.0)


def _check_float_dtype(dtype):
    if not _is_real_float(dtype):
        raise ValueError("[uniform] Can only generate uniform numbers with real floating point "
                         "type.")
    if dtype not in _BELOW_ONE:
        # as in MLX, which has no float64 uniform
        raise RuntimeError("[uniform] Unsupported type.")


def _uniform(lo, hi, shape, dtype, k, stream):
    """Uniform samples of `shape` in [lo, hi) (arrays of `dtype`)."""
    mx = _mx()
    _check_float_dtype(dtype)
    width = mx.subtract(hi, lo, stream=stream)
    full = broadcast_shapes_pair(shape, width.shape, "broadcast_shapes")
    if full != shape:
        raise ValueError(f"[uniform] Cannot generate random values of shape {shape_str(shape)} "
                         f"from broadcasted shape {shape_str(full)}.")
    words = _bits(shape, 4, k, stream)
    u = mx.divide(mx.astype(words, float32, stream=stream), mx.array(np.float32(2.0 ** 32)),
                  stream=stream)
    # float32 rounding can reach 1.0 (and narrower dtypes more so): cap below 1
    u = mx.minimum(u, mx.array(np.float32(_BELOW_ONE[dtype])), stream=stream)
    u = mx.astype(u, dtype, stream=stream)
    return mx.add(mx.multiply(width, u, stream=stream), lo, stream=stream)


def _f32(x):
    return _mx().array(np.float32(x))


def uniform(low=0, high=1, shape=[], dtype=float32, key=None, stream=None):  # noqa: B006
    """Samples drawn uniformly from [low, high). `low` and `high` (scalars or arrays) must
    broadcast to `shape`; the result has `shape` and `dtype` (a real floating type)."""
    shape = _shape_arg(shape, "uniform")
    dtype = _dtype_arg(dtype, float32, "uniform")
    _check_float_dtype(dtype)
    lo = _scalar_or_array(low, dtype, "low", "uniform", stream)
    hi = _scalar_or_array(high, dtype, "high", "uniform", stream)
    return _uniform(lo, hi, shape, dtype, key, stream)


def _erfinv_samples(shape, dtype, k, stream):
    """erfinv of uniforms in (-1, 1): erfinv(u) * sqrt(2) is standard normal. Computed in
    float32 (float64 for float64)."""
    mx = _mx()
    lo = _f32(np.nextafter(np.float32(-1), np.float32(0)))
    u = _uniform(lo, _f32(1.0), shape, float32, k, stream)
    if dtype is float64:
        u = mx.astype(u, float64, stream=stream)
    return mx.erfinv(u, stream=stream)


def _broadcast_param(x, samples):
    # MLX reports a loc/scale that does not broadcast with the samples in this order
    broadcast_shapes_pair(x.shape, samples.shape, "broadcast_shapes")
    return x


def normal(shape=[], dtype=float32, loc=None, scale=None, key=None, stream=None):  # noqa: B006
    """Normally distributed samples of `shape`: standard normal, or with mean `loc` and
    standard deviation `scale` (scalars or arrays) when given. For complex64 the real and
    imaginary parts are independent normals of variance 1/2 each."""
    mx = _mx()
    shape = _shape_arg(shape, "normal")
    dtype = _dtype_arg(dtype, float32, "normal")
    if not (_is_real_float(dtype) or dtype is complex64):
        raise ValueError("[normal] Only floating point and complex64 types are supported.")
    if dtype is complex64:
        # two float32 draws per element, read as (real, imag); erfinv alone has variance 1/2
        e = _erfinv_samples(shape + (2,), float32, key, stream)
        samples = mx.reshape(mx.view(e, complex64, stream=stream), shape, stream=stream)
        factor = None
    else:
        e = _erfinv_samples(shape, dtype, key, stream)
        samples = mx.astype(e, dtype, stream=stream)
        factor = mx.array(_SQRT2, dtype=dtype)
    if scale is not None:
        s = _broadcast_param(_scalar_or_array(scale, dtype, "scale", "normal", stream), samples)
        # MLX folds sqrt(2) into the scale before multiplying
        factor = s if factor is None else mx.multiply(factor, s, stream=stream)
    if factor is not None:
        samples = mx.multiply(samples, factor, stream=stream)
    if loc is not None:
        m = _broadcast_param(_scalar_or_array(loc, dtype, "loc", "normal", stream), samples)
        samples = mx.add(samples, m, stream=stream)
    return samples


def randint(low, high, shape=[], dtype=int32, key=None, stream=None):  # noqa: B006
    """Random integers from [low, high) of `shape` and `dtype` (an integer type or bool).
    As in MLX they come from a float32 uniform, floored and clamped to [low, high - 1], so
    bounds beyond float32's 2**24 integer resolution do not reach every integer."""
    mx = _mx()
    shape = _shape_arg(shape, "randint")
    dtype = _dtype_arg(dtype, int32, "randint")
    if not (issubdtype(dtype, integer) or dtype is bool_):
        raise ValueError("[randint] randint only accepts integer dtypes and bool.")
    lo = _scalar_or_array(low, float32, "low", "randint", stream)
    hi = _scalar_or_array(high, float32, "high", "randint", stream)
    u = mx.floor(_uniform(lo, hi, shape, float32, key, stream), stream=stream)
    top = mx.subtract(hi, _f32(1.0), stream=stream)
    out = mx.maximum(mx.minimum(u, top, stream=stream), lo, stream=stream)
    return mx.astype(out, dtype, stream=stream)


def bernoulli(p=0.5, shape=None, key=None, stream=None):
    """Boolean samples that are True with probability `p` (a float scalar or array that
    broadcasts to `shape`; `shape` defaults to p's shape)."""
    mx = _mx()
    if isinstance(p, array):
        prob = p
    elif isinstance(p, (numbers.Number, np.generic)) and not isinstance(p, complex):
        prob = mx.array(p)
    else:
        raise TypeError(f"[bernoulli] p must be a scalar or an array, got {type(p).__name__}.")
    if not issubdtype(prob.dtype, mx.floating):
        raise ValueError("[bernoulli] bernoulli probability `p` must be a float type.")
    if shape is None:
        shape = prob.shape
    else:
        shape = _shape_arg(shape, "bernoulli")
        if broadcast_shapes_pair(shape, prob.shape, "broadcast_shapes") != shape:
            raise ValueError("[bernoulli] shape of `p` is incompatible with argument `shape`.")
    u = _uniform(_f32(0.0), _f32(1.0), shape, float32, key, stream)
    return mx.less(u, prob, stream=stream)


def truncated_normal(lower, upper, shape=None, dtype=float32, key=None, stream=None):
    """Normal samples restricted to (lower, upper) (scalars or arrays that broadcast to
    `shape`; `shape` defaults to their broadcast shape), by inverting the normal CDF on a
    uniform between the bounds' CDF values."""
    mx = _mx()
    dtype = _dtype_arg(dtype, float32, "truncated_normal")
    if not _is_real_float(dtype):
        raise ValueError("[trunc_normal] trunc_normal only accepts floating point dtypes.")
    lo = _scalar_or_array(lower, dtype, "lower", "truncated_normal", stream)
    hi = _scalar_or_array(upper, dtype, "upper", "truncated_normal", stream)
    if shape is None:
        shape = broadcast_shapes_pair(lo.shape, hi.shape, "broadcast_shapes")
    else:
        shape = _shape_arg(shape, "truncated_normal")
    sqrt2 = mx.array(_SQRT2, dtype=dtype)
    a = mx.erf(mx.divide(lo, sqrt2, stream=stream), stream=stream)
    b = mx.erf(mx.divide(hi, sqrt2, stream=stream), stream=stream)
    u = _uniform(a, b, shape, dtype, key, stream)
    out = mx.multiply(sqrt2, mx.erfinv(u, stream=stream), stream=stream)
    # rounding can step outside the bounds: clamp back into them
    return mx.maximum(mx.minimum(hi, out, stream=stream), lo, stream=stream)


def gumbel(shape=[], dtype=float32, key=None, stream=None):  # noqa: B006
    """Samples of the standard Gumbel distribution (CDF exp(-exp(-x))): -log(-log(u)) for
    u uniform in [float32's smallest normal, 1)."""
    mx = _mx()
    shape = _shape_arg(shape, "gumbel")
    dtype = _dtype_arg(dtype, float32, "gumbel")
    _check_float_dtype(dtype)
    lo = mx.array(np.finfo(np.float32).tiny, dtype=dtype)
    u = _uniform(lo, mx.array(1.0, dtype=dtype), shape, dtype, key, stream)
    return mx.negative(mx.log(mx.negative(mx.log(u, stream=stream), stream=stream),
                              stream=stream), stream=stream)


def _python_float(x, name, op):
    if isinstance(x, (bool, complex)) or not isinstance(x, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"[{op}] {name} must be a Python float, got {type(x).__name__}.")
    return np.float32(x)


def laplace(shape=[], dtype=float32, loc=0.0, scale=1.0, key=None, stream=None):  # noqa: B006
    """Samples of the Laplace distribution with mean `loc` and scale `scale` (Python
    floats): loc + scale * sign(u) * log(1 - |u|) for u uniform in (-1, 1)."""
    mx = _mx()
    shape = _shape_arg(shape, "laplace")
    dtype = _dtype_arg(dtype, float32, "laplace")
    if not _is_real_float(dtype):
        raise ValueError("[laplace] Only real floating point types are supported.")
    # MLX takes loc and scale as C floats: they are rounded to float32 first
    loc32 = _python_float(loc, "loc", "laplace")
    scale32 = _python_float(scale, "scale", "laplace")
    lo = _f32(np.nextafter(np.float32(-1), np.float32(0)))
    u = _uniform(lo, _f32(1.0), shape, float32, key, stream)
    if dtype is float64:
        u = mx.astype(u, float64, stream=stream)
    mag = mx.log1p(mx.negative(mx.abs(u, stream=stream), stream=stream), stream=stream)
    samples = mx.astype(mx.multiply(mx.sign(u, stream=stream), mag, stream=stream), dtype,
                        stream=stream)
    scaled = mx.multiply(samples, mx.array(scale32, dtype=dtype), stream=stream)
    return mx.add(scaled, mx.array(loc32, dtype=dtype), stream=stream)


def categorical(logits, axis=-1, shape=None, num_samples=None, key=None, stream=None):
    """Category indices (uint32) drawn from the distributions given by unnormalised
    `logits` along `axis` (the Gumbel-max trick). By default one sample per distribution;
    `shape` (broadcast-compatible with logits' shape without `axis`) or `num_samples` (per
    distribution, as a new last axis) ask for more."""
    mx = _mx()
    if not isinstance(logits, array):
        raise TypeError(f"[categorical] logits must be an mx array, got {type(logits).__name__}.")
    ndim = logits.ndim
    ax = _int_arg(axis, "axis", "categorical")
    if not -ndim <= ax < ndim:
        raise AxisError(f"[categorical] Invalid axis {ax} for logits with {ndim} dimensions.")
    ax %= ndim
    if shape is not None and num_samples is not None:
        raise ValueError("[categorical] At most one of shape or num_samples can be specified.")
    if num_samples is not None:
        n = _int_arg(num_samples, "num_samples", "categorical")
        if n < 0:
            raise ValueError("[bits] Negative dimensions not allowed.")
        g = gumbel(logits.shape + (n,), float32, key, stream)
        scores = mx.add(mx.expand_dims(logits, -1, stream=stream), g, stream=stream)
        return mx.argmax(scores, axis=ax, stream=stream)
    if shape is None:
        g = gumbel(logits.shape, float32, key, stream)
        return mx.argmax(mx.add(logits, g, stream=stream), axis=ax, stream=stream)
    shape = _shape_arg(shape, "categorical")
    reduced = logits.shape[:ax] + logits.shape[ax + 1:]
    if broadcast_shapes_pair(shape, reduced, "broadcast_shapes") != shape:
        raise ValueError(f"[categorical] Requested shape {shape_str(shape)} is not broadcast "
                         f"compatible with reduced logits shape{shape_str(reduced)}.")
    # the category axis sits where it lines up with logits' axis (counted from the end)
    pos = len(shape) + ax - ndim + 1
    g = gumbel(shape[:pos] + (logits.shape[ax],) + shape[pos:], float32, key, stream)
    return mx.argmax(mx.add(logits, g, stream=stream), axis=pos, stream=stream)


def _permutation_indices(n, k, stream):
    words = _bits((n,), 4, k, stream)
    return make_node(ARGSORT, (words,), None, (n,), uint32, stream)


def permutation(x, axis=0, key=None, stream=None):
    """A random permutation of ``arange(x)`` (uint32) when `x` is an int, else `x` with its
    entries along `axis` randomly permuted. The order sorts random words of the key."""
    mx = _mx()
    if isinstance(x, array):
        ax = _int_arg(axis, "axis", "permutation")
        if not -x.ndim <= ax < x.ndim:
            raise AxisError(f"[permutation] Axis {ax} is out of bounds for array with "
                            f"{x.ndim} dimensions.")
        ax %= x.ndim
        idx = _permutation_indices(x.shape[ax], key, stream)
        return mx.take(x, idx, axis=ax, stream=stream)
    n = _int_arg(x, "x", "permutation")
    if n < 0:
        raise ValueError("[bits] Negative dimensions not allowed.")
    return _permutation_indices(n, key, stream)


def _sqrt_cov(cov, stream=None):
    """The symmetric square root U sqrt(S) Vt of covariance matrices (..., n, n), float32."""
    cov = _mx().astype(cov, float32, stream=stream)
    return make_node(SQRT_COV, (cov,), None, cov.shape, float32, stream)


def multivariate_normal(mean, cov, shape=[], dtype=float32, key=None, stream=None):  # noqa: B006
    """Jointly normal samples with mean `mean` (..., n) and covariance `cov` (..., n, n),
    positive semi-definite. The output has shape ``shape + (n,)`` broadcast with the batch
    shapes of mean and cov; only float32 is supported (as in MLX). The samples are
    ``mean + z @ sqrt(cov)`` for standard normal z, with sqrt(cov) = U sqrt(S) Vt from the
    SVD of cov (no gradient with respect to cov)."""
    mx = _mx()
    for name, v in (("mean", mean), ("cov", cov)):
        if not isinstance(v, array):
            raise TypeError(f"[multivariate_normal] {name} must be an mx array, got "
                            f"{type(v).__name__}.")
    shape = _shape_arg(shape, "multivariate_normal")
    dtype = _dtype_arg(dtype, float32, "multivariate_normal")
    if dtype is not float32:
        raise ValueError("[multivariate_normal] dtype must be float32.")
    if mean.ndim < 1:
        raise ValueError("[multivariate_normal] mean must have at least one dimension.")
    if cov.ndim < 2:
        raise ValueError("[multivariate_normal] cov must have at least two dimensions.")
    if cov.shape[-1] != cov.shape[-2]:
        raise ValueError("[multivariate_normal] last two dimensions of cov must be equal.")
    if mean.shape[-1] != cov.shape[-1]:
        raise ValueError("[multivariate_normal] mean and cov must have compatible shapes.")
    n = mean.shape[-1]
    batch = broadcast_shapes_pair(cov.shape[:-2], mean.shape[:-1], "broadcast_shapes")
    batch = broadcast_shapes_pair(batch, shape, "broadcast_shapes")
    factor = _sqrt_cov(cov, stream)
    z = normal(batch + (n,), float32, key=key, stream=stream)
    out = mx.matmul(mx.expand_dims(z, -2, stream=stream), factor, stream=stream)
    out = mx.squeeze(out, -2, stream=stream)
    return mx.add(out, mx.astype(mean, float32, stream=stream), stream=stream)


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def _no_grad(primals, cotangent, output, **params):
    return [None] * len(primals)


def _zero_tangent(primals, tangents, output, **params):
    return _mx().zeros(output.shape, output.dtype)


def _batched_node(prim, x, axis, output, params):
    """`prim` applied to `x` with its batch axis moved first: each kernel here maps leading
    axes independently, so the batched output gains that axis in front."""
    from mx.core.transforms import move_batch_axis
    x = move_batch_axis(x, axis, 0)
    return make_node(prim, (x,), params or None, (x.shape[0],) + output.shape, output.dtype), 0


def _bits_vmap(inputs, axes, output, **params):
    # a batch of keys gives one independent stream per key, stacked in front
    return _batched_node(BITS, inputs[0], axes[0], output, params)


def _argsort_vmap(inputs, axes, output, **params):
    return _batched_node(ARGSORT, inputs[0], axes[0], output, params)


def _sqrt_cov_vmap(inputs, axes, output, **params):
    return _batched_node(SQRT_COV, inputs[0], axes[0], output, params)


def _sqrt_cov_no_derivative(*args, **params):
    raise ValueError("[multivariate_normal] Derivatives with respect to cov are not supported: "
                     "its square root comes from an SVD, which has no vjp or jvp (as in MLX).")


def install_rules():
    for prim in (BITS, ARGSORT):
        prim.vjp = _no_grad
        prim.jvp = _zero_tangent
    BITS.vmap = _bits_vmap
    ARGSORT.vmap = _argsort_vmap
    SQRT_COV.vjp = _sqrt_cov_no_derivative
    SQRT_COV.jvp = _sqrt_cov_no_derivative
    SQRT_COV.vmap = _sqrt_cov_vmap
