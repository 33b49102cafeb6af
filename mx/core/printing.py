"""repr/str of arrays and the global print options, with MLX's exact layout.

MLX prints every element on its own terms (no column alignment, no line wrapping):

* floats use C's ``%g`` (6 significant digits) by default; once a precision is set they
  use fixed notation with that many decimals (``%.{p}f``; a negative precision other than
  -1 means the C default of 6 decimals). float16/bfloat16/float64 print the same way.
* a NaN with its sign bit set prints as ``-nan``, ``-0.0`` as ``-0``.
* complex numbers print as ``real`` then ``+`` unless the imaginary part is < 0, then
  ``imag`` and ``j`` (so ``-0+-0j`` and ``1+-nanj`` are possible, as in MLX).
* bools print as ``True``/``False``; integers in full.
* every axis longer than 6 is summarised to its first and last 3 entries around ``...``,
  whatever the total size.
* nested rows go on new lines indented by ``7 + depth`` spaces (the width of
  ``array(`` plus the brackets already open).

``repr(a)`` and ``str(a)`` are identical. MLX's only print option is ``precision``; its
summarisation thresholds and line layout are fixed, so this module does not offer NumPy's
``threshold``/``edgeitems``/``linewidth`` either (MLX rejects them as unknown keywords).
"""
from __future__ import annotations

import operator

import numpy as np

_EDGE = 3  # entries kept at each end of a summarised axis
_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def _check_precision(value, fn):
    # MLX takes a C int: anything with __index__ (bools and NumPy ints too) in 32-bit range
    try:
        p = operator.index(value)
    except TypeError:
        raise TypeError(f"[{fn}] precision must be an int; got {type(value).__name__}.") from None
    if not _INT32_MIN <= p <= _INT32_MAX:
        raise TypeError(f"[{fn}] precision must fit in a 32-bit int; got {p}.")
    return p


class PrintOptions:
    """The options that control how arrays print.

    Args:
        precision (int): decimals printed for floating-point values in fixed notation;
            -1 (the default) prints 6 significant digits in ``%g`` style instead.
    """

    __slots__ = ("_precision",)

    def __init__(self, precision=-1):
        self._precision = _check_precision(precision, "PrintOptions")

    @property
    def precision(self):
        """Decimals for floating-point values; -1 for 6 significant digits."""
        return self._precision

    @precision.setter
    def precision(self, value):
        self._precision = _check_precision(value, "PrintOptions")


_options = PrintOptions()


def set_printoptions(precision=-1):
    """Set how arrays print from now on.

    Args:
        precision (int): number of decimals printed for floating-point values (fixed
            notation). The default, -1, restores the standard 6-significant-digit form.
    """
    _options.precision = _check_precision(precision, "set_printoptions")


def get_printoptions():
    """Return a copy of the current print options as a :class:`PrintOptions`."""
    return PrintOptions(_options.precision)


class _PrintOptionsContext:
    """Applies a :class:`PrintOptions` while a ``with`` block runs, then restores the
    options that were in force before it."""

    def __init__(self, options):
        if not isinstance(options, PrintOptions):
            raise TypeError(f"[printoptions] expected PrintOptions; got {type(options).__name__}.")
        self._options = options
        self._saved = []  # a stack, so one context object may be re-entered

    def __enter__(self):
        self._saved.append(_options.precision)
        _options.precision = self._options.precision
        return self

    def __exit__(self, *exc):
        _options.precision = self._saved.pop()


def printoptions(precision=-1):
    """Context manager that sets the print options for the duration of a ``with`` block.

    Args:
        precision (int): number of decimals for floating-point values; -1 (the default)
            for the standard 6-significant-digit form.

    Example:
        >>> with mx.printoptions(precision=3):
        ...     print(x)
    """
    return _PrintOptionsContext(PrintOptions(_check_precision(precision, "printoptions")))


# -- element formatting ----------------------------------------------------------------------

def _float_strings(x):
    """Format a real float array (any precision) element by element, C-printf style."""
    x = x.astype(np.float64)  # exact for every float dtype we hold
    p = _options.precision
    fmt = "%g" if p == -1 else f"%.{p if p >= 0 else 6}f"
    out = np.array([fmt % v for v in x.ravel().tolist()], dtype=object).reshape(x.shape)
    # Python drops the sign of NaN; C printf keeps it
    neg_nan = np.isnan(x) & np.signbit(x)
    if neg_nan.any():
        out[neg_nan] = "-nan"
    return out


def _complex_strings(x):
    re, im = _float_strings(x.real), _float_strings(x.imag)
    sign = np.where(x.imag < 0, "", "+").astype(object)
    return re + sign + im + "j"


def _element_strings(x):
    """An object array of the printed form of each element of NumPy array `x`."""
    kind = x.dtype.kind
    if kind == "b":
        return np.where(x, "True", "False").astype(object)
    if kind in "iu":
        return x.astype(str).astype(object)
    if kind == "c":
        return _complex_strings(x)
    return _float_strings(x)  # f, and ml_dtypes' bfloat16 (kind "V")


# -- layout ----------------------------------------------------------------------------------

def _summarise(x):
    """Keep the first and last `_EDGE` entries of every axis longer than 2 * `_EDGE`;
    returns the reduced array and, per axis, whether it was cut."""
    cut = []
    for ax, n in enumerate(x.shape):
        long = n > 2 * _EDGE
        if long:
            keep = np.r_[0:_EDGE, n - _EDGE:n]
            x = np.take(x, keep, axis=ax)
        cut.append(long)
    return x, cut


def _nest(s, cut, dim):
    """The bracketed text of the (already summarised) string array `s`, at depth `dim`."""
    n = s.shape[0]
    last = s.ndim == 1
    if last:
        items = list(s)
    else:
        items = [_nest(s[i], cut, dim + 1) for i in range(n)]
    if cut[dim]:
        items.insert(_EDGE, "...")
    sep = ", " if last else ",\n" + " " * (7 + dim)
    return "[" + sep.join(items) + "]"


def _body(x):
    if x.ndim == 0:
        return _element_strings(x.reshape(1))[0]
    if x.size == 0:
        return _empty_body(x.shape, 0)
    small, cut = _summarise(x)
    return _nest(_element_strings(small), cut, 0)


def _empty_body(shape, dim):
    # brackets only, down to the first zero-length axis
    n = shape[0]
    if n == 0:
        return "[]"
    items = [_empty_body(shape[1:], dim + 1) for _ in range(min(n, 2 * _EDGE))]
    if n > 2 * _EDGE:
        items.insert(_EDGE, "...")
    return "[" + (",\n" + " " * (7 + dim)).join(items) + "]"


def array_repr(a):
    """``repr(a)``: ``array(<values>, dtype=<name>)`` in MLX's layout (evaluates `a`)."""
    return f"array({_body(np.asarray(a))}, dtype={a.dtype.name})"


def array_str(a):
    """``str(a)``: the same text as ``repr(a)``, as in MLX."""
    return array_repr(a)


__all__ = ["PrintOptions", "_PrintOptionsContext", "get_printoptions", "printoptions",
           "set_printoptions"]
