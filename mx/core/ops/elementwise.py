"""Elementwise ops: unary math, binary arithmetic/comparison/logic, ternary select, casts.

Each primitive is declared once here with its dtype rule and CPU kernel (a NumPy ufunc
where one exists, so that the scheduler can donate a dying input as `out=`). Inputs reach
kernels already cast to the compute dtype by the Cython builders.
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from mx.core import _array
from mx.core._array import (BINARY_RULES, UNARY_RULES, Dtype, array, binary_op, make_node,
                            operand_dtype, to_array, unary_op, broadcast_shapes_pair,
                            promote_types)
from mx.core.primitives import declare
from mx.core.ops._util import as_array, check_dtype
from mx.backend.cpu import _special

# ---------------------------------------------------------------------------------------
# casts
# ---------------------------------------------------------------------------------------


def _astype_kernel(x, dtype):
    if x.dtype.kind == "c" and dtype.np.kind != "c":
        x = x.real
    return x.astype(dtype.np)


ASTYPE = declare("astype", cpu=_astype_kernel, doc="cast to another dtype")
_array._set_astype_primitive(ASTYPE)


def astype(a, dtype, stream=None):
    """A copy of `a` with its elements converted to `dtype`."""
    x = as_array(a, "astype")
    check_dtype(dtype, "astype")
    if x.dtype is dtype:
        return x
    return make_node(ASTYPE, (x,), {"dtype": dtype}, x.shape, dtype, stream)


def _view_kernel(x, dtype):
    return np.asarray(x, order="C").view(dtype.np)


VIEW = declare("view", cpu=_view_kernel, doc="reinterpret bytes")


def view(a, dtype, *, stream=None):
    """The bytes of `a` read as `dtype`; the last axis scales by the ratio of item sizes."""
    x = as_array(a, "view")
    check_dtype(dtype, "view")
    shape = x.shape
    if dtype.size != x.dtype.size:
        if x.ndim == 0:
            raise ValueError(f"[view] Changing the type size of a 0-d array ({x.dtype.name} "
                             f"to {dtype.name}) is not supported.")
        nbytes = shape[-1] * x.dtype.size
        if nbytes % dtype.size:
            raise ValueError(f"[view] The last axis of shape {shape} ({nbytes} bytes) is not "
                             f"divisible by the size of {dtype.name} ({dtype.size}).")
        shape = shape[:-1] + (nbytes // dtype.size,)
    return make_node(VIEW, (x,), {"dtype": dtype}, shape, dtype, stream)


# ---------------------------------------------------------------------------------------
# unary
# ---------------------------------------------------------------------------------------
UNARY = {}


def _unary(name, kernel, rule="same", doc="", donates=None):
    code = UNARY_RULES[rule]
    prim = declare(name, cpu=kernel, donates=isinstance(kernel, np.ufunc) if donates is None else donates,
                   doc=doc)
    UNARY[name] = (prim, rule)

    def op(a, /, *, stream=None):
        return unary_op(prim, code, a, stream)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


def _sigmoid(x):
    # exp of -|x| only: no overflow, and full relative precision in both tails
    e = np.exp(-np.abs(x))
    d = e + 1
    return np.where(x >= 0, 1 / d, e / d).astype(x.dtype, copy=False)


def _rsqrt(x):
    y = np.sqrt(x)
    if type(y) is not np.ndarray:   # 0-d inputs give NumPy scalars
        return np.reciprocal(y)
    np.reciprocal(y, out=y)
    return y


def _square(x):
    return np.multiply(x, x)


def _bitwise_invert(x):
    return np.invert(x)


abs = _unary("abs", np.absolute, "real", "Elementwise absolute value.")
_negative = _unary("negative", np.negative, "same", "Elementwise negation.")


def negative(a, /, *, stream=None):
    """Elementwise negation (not defined for bool: use logical_not)."""
    x = as_array(a, "negative")
    if x.dtype.name == "bool":
        raise ValueError("[negative] The negation operator is not supported for bool arrays; use logical_not.")
    return _negative(x, stream=stream)
sign = _unary("sign", lambda x: x.copy() if x.dtype == np.bool_ else np.sign(x), "same", "Elementwise sign: -1, 0 or 1 (x/|x| for complex).")
exp = _unary("exp", np.exp, "float", "Elementwise exponential.")
expm1 = _unary("expm1", np.expm1, "float_nocomplex", "exp(x) - 1, accurate for small x.")
log = _unary("log", np.log, "float", "Elementwise natural logarithm.")
log2 = _unary("log2", np.log2, "float", "Elementwise base-2 logarithm.")
log10 = _unary("log10", np.log10, "float", "Elementwise base-10 logarithm.")
log1p = _unary("log1p", np.log1p, "float", "log(1 + x), accurate for small x.")
sqrt = _unary("sqrt", np.sqrt, "float", "Elementwise square root.")
rsqrt = _unary("rsqrt", _rsqrt, "float", "Elementwise reciprocal square root.")
square = _unary("square", _square, "same", "Elementwise square.")
reciprocal = _unary("reciprocal", np.reciprocal, "float", "Elementwise 1/x.")
sin = _unary("sin", np.sin, "float", "Elementwise sine.")
cos = _unary("cos", np.cos, "float", "Elementwise cosine.")
tan = _unary("tan", np.tan, "float", "Elementwise tangent.")
arcsin = _unary("arcsin", np.arcsin, "float", "Elementwise inverse sine.")
arccos = _unary("arccos", np.arccos, "float", "Elementwise inverse cosine.")
arctan = _unary("arctan", np.arctan, "float", "Elementwise inverse tangent.")
sinh = _unary("sinh", np.sinh, "float", "Elementwise hyperbolic sine.")
cosh = _unary("cosh", np.cosh, "float", "Elementwise hyperbolic cosine.")
tanh = _unary("tanh", np.tanh, "float", "Elementwise hyperbolic tangent.")
arcsinh = _unary("arcsinh", np.arcsinh, "float", "Elementwise inverse hyperbolic sine.")
arccosh = _unary("arccosh", np.arccosh, "float", "Elementwise inverse hyperbolic cosine.")
arctanh = _unary("arctanh", np.arctanh, "float", "Elementwise inverse hyperbolic tangent.")
sigmoid = _unary("sigmoid", _sigmoid, "float_nocomplex", "Elementwise logistic sigmoid 1/(1+exp(-x)).")
erf = _unary("erf", _special.erf, "float_nocomplex", "Elementwise error function.")
erfinv = _unary("erfinv", _special.erfinv, "float_nocomplex", "Elementwise inverse of erf.")
floor = _unary("floor", np.floor, "nocomplex", "Elementwise floor.")
ceil = _unary("ceil", np.ceil, "nocomplex", "Elementwise ceiling.")
degrees = _unary("degrees", lambda x: np.multiply(x, x.dtype.type(180.0 / np.pi)), "float", "Radians to degrees.")
radians = _unary("radians", lambda x: np.multiply(x, x.dtype.type(np.pi / 180.0)), "float", "Degrees to radians.")
isnan = _unary("isnan", np.isnan, "bool", "True where the element is NaN.")
isinf = _unary("isinf", np.isinf, "bool", "True where the element is +-inf.")
isfinite = _unary("isfinite", np.isfinite, "bool", "True where the element is finite.")
isposinf = _unary("isposinf", lambda x: np.isposinf(x) if x.dtype.kind != "c" else np.isinf(x.real) & (x.real > 0), "bool", "True where the element is +inf.")
isneginf = _unary("isneginf", lambda x: np.isneginf(x) if x.dtype.kind != "c" else np.isinf(x.real) & (x.real < 0), "bool", "True where the element is -inf.")
conjugate = _unary("conjugate", np.conjugate, "same", "Elementwise complex conjugate.")
real = _unary("real", lambda x: np.real(x).copy() if x.dtype.kind == "c" else x, "real", "The real part.", donates=False)
imag = _unary("imag", lambda x: np.imag(x).copy() if x.dtype.kind == "c" else np.zeros_like(x), "real", "The imaginary part.", donates=False)
bitwise_invert = _unary("bitwise_invert", _bitwise_invert, "integer", "Elementwise bitwise NOT (logical NOT for bool).")
stop_gradient = _unary("stop_gradient", lambda x: x, "same", "The identity whose gradient is zero.", donates=False)
copy = _unary("copy", np.copy, "same", "A copy of the array.", donates=False)
conj = conjugate


def logical_not(a, /, *, stream=None):
    """Elementwise logical NOT (the input is read as bool)."""
    x = as_array(a, "logical_not")
    from mx.core.dtypes import bool_
    return unary_op(_LOGICAL_NOT, UNARY_RULES["bool"], astype(x, bool_, stream=stream), stream)


_LOGICAL_NOT = declare("logical_not", cpu=np.logical_not, donates=True, doc="logical not")
UNARY["logical_not"] = (_LOGICAL_NOT, "bool")


def _round_kernel(x, decimals):
    return np.round(x, decimals)


ROUND = declare("round", cpu=_round_kernel, doc="round half to even")


def round(a, /, decimals=0, stream=None):
    """Round to `decimals` decimal places (halfway cases to even)."""
    x = as_array(a, "round")
    if x.dtype.name in ("bool",) or x.dtype.name.startswith(("int", "uint")):
        if decimals >= 0:
            return x
    return make_node(ROUND, (x,), {"decimals": int(decimals)}, x.shape, x.dtype, stream)


_BFLOAT16 = np.dtype(ml_dtypes.bfloat16)


def _nan_to_num_kernel(x, nan, posinf, neginf):
    if x.dtype == _BFLOAT16:
        # NumPy does not count ml_dtypes' bfloat16 as inexact and would return it unchanged:
        # through float32, which holds every bfloat16 value (the replacements round once)
        with np.errstate(over="ignore"):
            return np.nan_to_num(x.astype(np.float32), copy=False, nan=nan, posinf=posinf,
                                 neginf=neginf).astype(_BFLOAT16)
    return np.nan_to_num(x, copy=True, nan=nan, posinf=posinf, neginf=neginf)


NAN_TO_NUM = declare("nan_to_num", cpu=_nan_to_num_kernel, doc="replace nan/inf")


def nan_to_num(a, nan=0.0, posinf=None, neginf=None, *, stream=None):
    """Replace NaN with `nan` and +-inf with `posinf`/`neginf` (the dtype's finite
    extremes by default)."""
    x = as_array(a, "nan_to_num")
    if x.dtype.name not in ("float16", "bfloat16", "float32", "float64", "complex64"):
        return x
    from mx.core.dtypes import finfo
    fi = finfo(x.dtype)
    params = {"nan": float(nan), "posinf": fi.max if posinf is None else float(posinf),
              "neginf": fi.min if neginf is None else float(neginf)}
    return make_node(NAN_TO_NUM, (x,), params, x.shape, x.dtype, stream)


# ---------------------------------------------------------------------------------------
# binary
# ---------------------------------------------------------------------------------------
BINARY = {}


def _binary(name, kernel, rule, doc, donates=None):
    code = BINARY_RULES[rule]
    prim = declare(name, cpu=kernel, donates=isinstance(kernel, np.ufunc) if donates is None else donates,
                   doc=doc)
    BINARY[name] = (prim, code)

    def op(a, b, /, *, stream=None):
        return binary_op(prim, code, a, b, stream)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = doc
    return op


def _power(x, y):
    if x.dtype.kind == "i" and np.any(y < 0):
        # integer x ** negative n truncates toward zero as in C (MLX's result), where
        # NumPy would raise: only 1 and -1 survive
        pos = np.power(x, np.maximum(y, 0))
        odd = np.remainder(y, 2).astype(bool)
        neg = np.where(x == 1, 1, np.where(x == -1, np.where(odd, -1, 1), 0)).astype(x.dtype)
        return np.where(y < 0, neg, pos)
    return np.power(x, y)


def _subtract(x, y, out=None):
    # NumPy refuses bool - bool; MLX gives their exclusive or
    if x.dtype == np.bool_:
        return np.not_equal(x, y, out=out)
    return np.subtract(x, y, out=out)


def _logaddexp(x, y):
    return np.logaddexp(x, y)


add = _binary("add", np.add, "arith", "Elementwise a + b with broadcasting.")
subtract = _binary("subtract", _subtract, "arith", "Elementwise a - b with broadcasting.", donates=True)
multiply = _binary("multiply", np.multiply, "arith", "Elementwise a * b with broadcasting.")
divide = _binary("divide", np.true_divide, "divide", "Elementwise true division (integers give float32).")
floor_divide = _binary("floor_divide", np.floor_divide, "nocomplex", "Elementwise floor(a / b).")
remainder = _binary("remainder", np.remainder, "nocomplex", "Elementwise remainder with the sign of b (Python's %).")
power = _binary("power", _power, "arith", "Elementwise a ** b.", donates=False)
maximum = _binary("maximum", np.maximum, "arith", "Elementwise maximum (NaN propagates).")
minimum = _binary("minimum", np.minimum, "arith", "Elementwise minimum (NaN propagates).")
logaddexp = _binary("logaddexp", _logaddexp, "real_float", "log(exp(a) + exp(b)), computed stably.")
arctan2 = _binary("arctan2", np.arctan2, "real_float", "Elementwise arctan(a / b) in the right quadrant.")
equal = _binary("equal", np.equal, "compare", "Elementwise a == b.")
not_equal = _binary("not_equal", np.not_equal, "compare", "Elementwise a != b.")
less = _binary("less", np.less, "compare", "Elementwise a < b.")
less_equal = _binary("less_equal", np.less_equal, "compare", "Elementwise a <= b.")
greater = _binary("greater", np.greater, "compare", "Elementwise a > b.")
greater_equal = _binary("greater_equal", np.greater_equal, "compare", "Elementwise a >= b.")
logical_and = _binary("logical_and", np.logical_and, "logical", "Elementwise logical AND.")
logical_or = _binary("logical_or", np.logical_or, "logical", "Elementwise logical OR.")
bitwise_and = _binary("bitwise_and", np.bitwise_and, "integer", "Elementwise bitwise AND.")
bitwise_or = _binary("bitwise_or", np.bitwise_or, "integer", "Elementwise bitwise OR.")
bitwise_xor = _binary("bitwise_xor", np.bitwise_xor, "integer", "Elementwise bitwise XOR.")
left_shift = _binary("left_shift", np.left_shift, "shift", "Elementwise a << b.")
right_shift = _binary("right_shift", np.right_shift, "shift", "Elementwise a >> b.")

_array._set_operator_primitives({k: v for k, v in BINARY.items()} | {"negative": UNARY["negative"]})


def divmod(a, b, /, *, stream=None):
    """(floor_divide(a, b), remainder(a, b))."""
    return floor_divide(a, b, stream=stream), remainder(a, b, stream=stream)


# ---------------------------------------------------------------------------------------
# ternary and compositions
# ---------------------------------------------------------------------------------------
def _select_kernel(c, x, y):
    return np.where(c, x, y)


SELECT = declare("select", cpu=_select_kernel, doc="where(condition, x, y)")


def where(condition, x, y, /, *, stream=None):
    """Elements of `x` where `condition` is true, else of `y` (all three broadcast)."""
    from mx.core.dtypes import bool_
    c = as_array(condition, "where")
    if isinstance(x, array) or not isinstance(y, array):
        xa = as_array(x, "where")
        ya = to_array(y, xa.dtype)
    else:
        ya = y
        xa = to_array(x, ya.dtype)
    dt = operand_dtype(xa, ya)
    shape = broadcast_shapes_pair(broadcast_shapes_pair(c.shape, xa.shape, "where"), ya.shape, "where")
    return make_node(SELECT, (astype(c, bool_), astype(xa, dt), astype(ya, dt)), None, shape, dt, stream)


def clip(a, /, a_min, a_max, *, stream=None):
    """Limit the values of `a` to [a_min, a_max]; either bound may be None."""
    if a_min is None and a_max is None:
        raise ValueError("[clip] At most one of a_min and a_max may be None.")
    x = as_array(a, "clip")
    if a_min is not None:
        x = maximum(x, a_min, stream=stream)
    if a_max is not None:
        x = minimum(x, a_max, stream=stream)
    return x


def isclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """Elementwise |a - b| <= atol + rtol * |b|; infinities match when equal."""
    a = as_array(a, "isclose")
    b = to_array(b, a.dtype)
    diff = abs(subtract(a, b, stream=stream), stream=stream)
    tol = add(atol, multiply(rtol, abs(b, stream=stream), stream=stream), stream=stream)
    close = less_equal(diff, tol, stream=stream)
    close = logical_or(close, equal(a, b, stream=stream), stream=stream)
    if equal_nan:
        close = logical_or(close, logical_and(isnan(a, stream=stream), isnan(b, stream=stream), stream=stream), stream=stream)
    return close


def allclose(a, b, /, rtol=1e-05, atol=1e-08, *, equal_nan=False, stream=None):
    """True when every element of isclose(a, b) is true."""
    from mx.core.ops.reduction import all as _all
    return _all(isclose(a, b, rtol, atol, equal_nan=equal_nan, stream=stream), stream=stream)


def array_equal(a, b, equal_nan=False, *, stream=None):
    """True when a and b have the same shape and values (dtypes may differ)."""
    from mx.core.ops.reduction import all as _all
    from mx.core.dtypes import bool_
    a = as_array(a, "array_equal")
    b = as_array(b, "array_equal")
    if a.shape != b.shape:
        return _array.wrap(np.array(False), bool_)
    eq = equal(a, b, stream=stream)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a), isnan(b)))
    return _all(eq, stream=stream)


__all__ = sorted(
    [n for n in list(UNARY) + list(BINARY) if n in globals()]
    + ["astype", "view", "round", "nan_to_num", "divmod", "where", "clip", "isclose",
       "allclose", "array_equal", "conj", "logical_not"]
)


# ---------------------------------------------------------------------------------------
# transformation rules (docs/transforms.md). Derivatives are written with mx ops so that
# they are themselves differentiable.
# ---------------------------------------------------------------------------------------
def _mx():
    import mx.core as mx
    return mx


def _unary_derivatives():
    mx = _mx()
    ln2, ln10 = float(np.log(2.0)), float(np.log(10.0))
    return {
        "abs": lambda x, y: mx.sign(x) if x.dtype.name != "complex64" else mx.conjugate(x) / mx.maximum(y, 1e-30),
        "negative": lambda x, y: -mx.ones_like(x),
        "sign": None, "floor": None, "ceil": None, "round": None, "trunc": None,
        "exp": lambda x, y: y,
        "expm1": lambda x, y: y + 1,
        "log": lambda x, y: 1 / x,
        "log2": lambda x, y: 1 / (x * ln2),
        "log10": lambda x, y: 1 / (x * ln10),
        "log1p": lambda x, y: 1 / (x + 1),
        "sqrt": lambda x, y: 0.5 / y,
        "rsqrt": lambda x, y: -0.5 * y / x,
        "square": lambda x, y: 2 * x,
        "reciprocal": lambda x, y: -(y * y),
        "sin": lambda x, y: mx.cos(x),
        "cos": lambda x, y: -mx.sin(x),
        "tan": lambda x, y: 1 + y * y,
        "arcsin": lambda x, y: mx.rsqrt(1 - x * x),
        "arccos": lambda x, y: -mx.rsqrt(1 - x * x),
        "arctan": lambda x, y: 1 / (1 + x * x),
        "sinh": lambda x, y: mx.cosh(x),
        "cosh": lambda x, y: mx.sinh(x),
        "tanh": lambda x, y: 1 - y * y,
        "arcsinh": lambda x, y: mx.rsqrt(x * x + 1),
        "arccosh": lambda x, y: mx.rsqrt(x * x - 1),
        "arctanh": lambda x, y: 1 / (1 - x * x),
        "sigmoid": lambda x, y: y * (1 - y),
        "erf": lambda x, y: (2.0 / float(np.sqrt(np.pi))) * mx.exp(-(x * x)),
        "erfinv": lambda x, y: (float(np.sqrt(np.pi)) / 2.0) * mx.exp(y * y),
        "degrees": lambda x, y: mx.full_like(x, 180.0 / np.pi) if hasattr(mx, "full_like") else mx.ones_like(x) * (180.0 / np.pi),
        "radians": lambda x, y: mx.ones_like(x) * (np.pi / 180.0),
        "conjugate": None,
        "stop_gradient": None,
        "copy": lambda x, y: mx.ones_like(x),
    }


def _conj_if_complex(d):
    if isinstance(d, array) and d.dtype.name == "complex64":
        return _mx().conjugate(d)
    return d


def _is_float(d):
    return d.name in ("float16", "bfloat16", "float32", "float64", "complex64")


def _install_unary_rules():
    derivs = _unary_derivatives()
    zero_grad = {"sign", "floor", "ceil", "isnan", "isinf", "isfinite", "isposinf", "isneginf",
                 "bitwise_invert", "logical_not", "round", "trunc"}
    for name, (prim, rule) in UNARY.items():
        code = UNARY_RULES[rule]

        def vmap_rule(inputs, axes, out, _p=prim, _c=code):
            return unary_op(_p, _c, inputs[0], None), axes[0]

        prim.vmap = vmap_rule
        if name in zero_grad:
            prim.vjp = lambda primals, ct, out: [None]
            prim.jvp = lambda primals, tangents, out: _mx().zeros(out.shape, out.dtype)
            continue
        if name == "stop_gradient":
            prim.vjp = lambda primals, ct, out: [None]
            prim.jvp = lambda primals, tangents, out: _mx().zeros(out.shape, out.dtype)
            continue
        if name == "conjugate":
            prim.vjp = lambda primals, ct, out: [_mx().conjugate(ct)]
            prim.jvp = lambda primals, tangents, out: _mx().conjugate(tangents[0])
            continue
        if name in ("real", "imag"):
            mx = _mx()
            if name == "real":
                prim.vjp = lambda primals, ct, out: [ct.astype(primals[0].dtype)]
                prim.jvp = lambda primals, tangents, out: _mx().real(tangents[0])
            else:
                prim.vjp = lambda primals, ct, out: [
                    (ct.astype(primals[0].dtype) * 1j) if primals[0].dtype.name == "complex64"
                    else _mx().zeros(primals[0].shape, primals[0].dtype)]
                prim.jvp = lambda primals, tangents, out: _mx().imag(tangents[0])
            continue
        d = derivs.get(name)
        if d is None:
            continue

        def vjp_rule(primals, ct, out, _d=d):
            # complex inputs: MLX's convention, the cotangent times the conjugate derivative
            return [ct * _conj_if_complex(_d(primals[0], out))]

        def jvp_rule(primals, tangents, out, _d=d, _name=name):
            if _name == "abs" and primals[0].dtype.name == "complex64":
                mx = _mx()
                return mx.real(mx.conjugate(primals[0]) * tangents[0]) / mx.maximum(out, 1e-30)
            return tangents[0] * _d(primals[0], out)

        prim.vjp = vjp_rule
        prim.jvp = jvp_rule


def _binary_derivatives():
    mx = _mx()

    def power_da(x, y, out):
        return y * mx.power(x, y - 1)

    def power_db(x, y, out):
        safe = mx.where(x > 0, x, mx.ones_like(x)) if x.dtype.name != "complex64" else x
        return mx.where(x > 0, out * mx.log(safe), mx.zeros(out.shape, out.dtype)) if x.dtype.name != "complex64" else out * mx.log(x)

    def maxmin(sel):
        def da(x, y, out):
            return sel(x, y).astype(out.dtype)

        return da

    return {
        "add": (lambda x, y, o: 1, lambda x, y, o: 1),
        "subtract": (lambda x, y, o: 1, lambda x, y, o: -1),
        "multiply": (lambda x, y, o: y, lambda x, y, o: x),
        "divide": (lambda x, y, o: 1 / y, lambda x, y, o: -(o / y)),
        "power": (power_da, power_db),
        "maximum": (maxmin(lambda x, y: x >= y), maxmin(lambda x, y: x < y)),
        "minimum": (maxmin(lambda x, y: x <= y), maxmin(lambda x, y: x > y)),
        "logaddexp": (lambda x, y, o: mx.exp(x - o), lambda x, y, o: mx.exp(y - o)),
        "arctan2": (lambda x, y, o: y / (x * x + y * y), lambda x, y, o: -x / (x * x + y * y)),
        "remainder": (lambda x, y, o: 1, lambda x, y, o: -mx.floor_divide(x, y)),
    }


def _install_binary_rules():
    derivs = _binary_derivatives()
    from mx.core.transforms import broadcast_batch
    for name, (prim, code) in BINARY.items():
        def vmap_rule(inputs, axes, out, _p=prim, _c=code):
            x, y = broadcast_batch(inputs, axes)
            return binary_op(_p, _c, x, y, None), 0

        prim.vmap = vmap_rule
        pair = derivs.get(name)
        if pair is None:
            # comparisons, logic, bitwise and floor_divide: piecewise constant
            prim.vjp = lambda primals, ct, out: [None, None]
            prim.jvp = lambda primals, tangents, out: _mx().zeros(out.shape, out.dtype)
            continue
        da, db = pair

        def vjp_rule(primals, ct, out, _da=da, _db=db):
            x, y = primals
            return [ct * _conj_if_complex(_da(x, y, out)) if _is_float(x.dtype) else None,
                    ct * _conj_if_complex(_db(x, y, out)) if _is_float(y.dtype) else None]

        def jvp_rule(primals, tangents, out, _da=da, _db=db):
            x, y = primals
            tx, ty = tangents
            res = None
            if tx is not None:
                res = tx * _da(x, y, out)
            if ty is not None:
                t = ty * _db(x, y, out)
                res = t if res is None else res + t
            mx = _mx()
            return mx.broadcast_to(res, out.shape) if res.shape != out.shape else res

        prim.vjp = vjp_rule
        prim.jvp = jvp_rule


def _install_misc_rules():
    mx = _mx()
    from mx.core.transforms import broadcast_batch

    def astype_vjp(primals, ct, out, dtype):
        return [ct.astype(primals[0].dtype) if _is_float(primals[0].dtype) else None]

    ASTYPE.vjp = astype_vjp
    ASTYPE.jvp = lambda primals, tangents, out, dtype: tangents[0].astype(dtype) if _is_float(dtype) else mx.zeros(out.shape, out.dtype)
    ASTYPE.vmap = lambda inputs, axes, out, dtype: (astype(inputs[0], dtype), axes[0])

    VIEW.vjp = lambda primals, ct, out, dtype: [None]
    VIEW.jvp = lambda primals, tangents, out, dtype: mx.zeros(out.shape, out.dtype)

    def view_vmap(inputs, axes, out, dtype):
        x = mx.moveaxis(inputs[0], axes[0], 0) if axes[0] != 0 else inputs[0]
        if x.ndim == 1 and dtype.size != x.dtype.size:
            x = mx.expand_dims(x, -1)
            return mx.squeeze(view(x, dtype), -1) if dtype.size == x.dtype.size else view(x, dtype), 0
        return view(x, dtype), 0

    VIEW.vmap = view_vmap

    ROUND.vjp = lambda primals, ct, out, decimals: [None]
    ROUND.jvp = lambda primals, tangents, out, decimals: mx.zeros(out.shape, out.dtype)
    ROUND.vmap = lambda inputs, axes, out, decimals: (round(inputs[0], decimals), axes[0])

    def ntn_vjp(primals, ct, out, nan, posinf, neginf):
        return [ct * isfinite(primals[0]).astype(ct.dtype)]

    NAN_TO_NUM.vjp = ntn_vjp
    NAN_TO_NUM.jvp = lambda primals, tangents, out, **kw: tangents[0] * isfinite(primals[0]).astype(out.dtype)
    NAN_TO_NUM.vmap = lambda inputs, axes, out, **kw: (
        make_node(NAN_TO_NUM, (inputs[0],), kw, inputs[0].shape, inputs[0].dtype), axes[0])

    def select_vjp(primals, ct, out):
        c, x, y = primals
        zero = mx.zeros_like(ct)
        return [None, where(c, ct, zero) if _is_float(x.dtype) else None,
                where(c, zero, ct) if _is_float(y.dtype) else None]

    def select_jvp(primals, tangents, out):
        c, x, y = primals
        _, tx, ty = tangents
        tx = mx.zeros(out.shape, out.dtype) if tx is None else tx
        ty = mx.zeros(out.shape, out.dtype) if ty is None else ty
        return where(c, tx, ty)

    def select_vmap(inputs, axes, out):
        c, x, y = broadcast_batch(inputs, axes)
        return where(c, x, y), 0

    SELECT.vjp = select_vjp
    SELECT.jvp = select_jvp
    SELECT.vmap = select_vmap

    from mx.core.transforms import _IDENTITY  # noqa: F401  (leaf rules live with it)


def install_rules():
    _install_unary_rules()
    _install_binary_rules()
    _install_misc_rules()
    _LOGICAL_NOT.vjp = lambda primals, ct, out: [None]
    _LOGICAL_NOT.jvp = lambda primals, tangents, out: _mx().zeros(out.shape, out.dtype)
    _LOGICAL_NOT.vmap = lambda inputs, axes, out: (unary_op(_LOGICAL_NOT, UNARY_RULES["bool"], inputs[0], None), axes[0])
