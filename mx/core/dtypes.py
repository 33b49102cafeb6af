"""The 14 dtypes, their categories, MLX's promotion table and dtype queries."""
from __future__ import annotations

import enum

import ml_dtypes
import numpy as np

from mx.core._array import Dtype, _make_dtype, _set_promotion_table, promote_types

# name, bytes, kind, numpy dtype  (order fixes Dtype.index and the promotion table below)
_SPECS = [
    ("bool", 1, "bool", np.bool_),
    ("uint8", 1, "uint", np.uint8),
    ("uint16", 2, "uint", np.uint16),
    ("uint32", 4, "uint", np.uint32),
    ("uint64", 8, "uint", np.uint64),
    ("int8", 1, "int", np.int8),
    ("int16", 2, "int", np.int16),
    ("int32", 4, "int", np.int32),
    ("int64", 8, "int", np.int64),
    ("float16", 2, "float", np.float16),
    ("bfloat16", 2, "float", ml_dtypes.bfloat16),
    ("float32", 4, "float", np.float32),
    ("float64", 8, "float", np.float64),
    ("complex64", 8, "complex", np.complex64),
]
_ALL = [_make_dtype(*spec) for spec in _SPECS]
(bool_, uint8, uint16, uint32, uint64, int8, int16, int32, int64,
 float16, bfloat16, float32, float64, complex64) = _ALL

# MLX's promotion table (read off MLX 0.32 for every pair): rows/columns in _SPECS order.
_B, _U8, _U16, _U32, _U64, _I8, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64 = range(14)
_TABLE = [
    [_B, _U8, _U16, _U32, _U64, _I8, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_U8, _U8, _U16, _U32, _U64, _I16, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_U16, _U16, _U16, _U32, _U64, _I32, _I32, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_U32, _U32, _U32, _U32, _U64, _I64, _I64, _I64, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_U64, _U64, _U64, _U64, _U64, _F32, _F32, _F32, _F32, _F16, _BF16, _F32, _F64, _C64],
    [_I8, _I16, _I32, _I64, _F32, _I8, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_I16, _I16, _I32, _I64, _F32, _I16, _I16, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_I32, _I32, _I32, _I64, _F32, _I32, _I32, _I32, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_I64, _I64, _I64, _I64, _F32, _I64, _I64, _I64, _I64, _F16, _BF16, _F32, _F64, _C64],
    [_F16, _F16, _F16, _F16, _F16, _F16, _F16, _F16, _F16, _F16, _F32, _F32, _F64, _C64],
    [_BF16, _BF16, _BF16, _BF16, _BF16, _BF16, _BF16, _BF16, _BF16, _F32, _BF16, _F32, _F64, _C64],
    [_F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32, _F64, _C64],
    [_F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _F64, _C64],
    [_C64] * 14,
]
_set_promotion_table(_TABLE)

ALL_DTYPES = tuple(_ALL)
_BY_NAME = {d.name: d for d in _ALL}
_BY_NAME["bool_"] = bool_


class DtypeCategory(enum.Enum):
    """Abstract groups of dtypes, for issubdtype."""

    complexfloating = "complexfloating"
    floating = "floating"
    inexact = "inexact"
    signedinteger = "signedinteger"
    unsignedinteger = "unsignedinteger"
    integer = "integer"
    number = "number"
    generic = "generic"

    def __repr__(self):
        return f"DtypeCategory.{self.name}"


complexfloating = DtypeCategory.complexfloating
floating = DtypeCategory.floating
inexact = DtypeCategory.inexact
signedinteger = DtypeCategory.signedinteger
unsignedinteger = DtypeCategory.unsignedinteger
integer = DtypeCategory.integer
number = DtypeCategory.number
generic = DtypeCategory.generic

# category -> the categories it belongs to (itself included)
_PARENTS = {
    complexfloating: {complexfloating, inexact, number, generic},
    floating: {floating, inexact, number, generic},
    inexact: {inexact, number, generic},
    signedinteger: {signedinteger, integer, number, generic},
    unsignedinteger: {unsignedinteger, integer, number, generic},
    integer: {integer, number, generic},
    number: {number, generic},
    generic: {generic},
}


def _category_of(d: Dtype):
    name = d.name
    if name == "bool":
        return generic
    if name.startswith("uint"):
        return unsignedinteger
    if name.startswith("int"):
        return signedinteger
    if name == "complex64":
        return complexfloating
    return floating


def issubdtype(arg1, arg2) -> bool:
    """True when arg1 (a Dtype or DtypeCategory) is arg2 or belongs to category arg2."""
    for a in (arg1, arg2):
        if not isinstance(a, (Dtype, DtypeCategory)):
            raise TypeError(f"[issubdtype] Expected a Dtype or DtypeCategory, got {a!r}.")
    if isinstance(arg1, Dtype) and isinstance(arg2, Dtype):
        return arg1 is arg2
    if isinstance(arg2, Dtype):
        return False
    if isinstance(arg1, Dtype):
        if arg1 is bool_:
            return arg2 is generic
        return arg2 in _PARENTS[_category_of(arg1)]
    return arg2 in _PARENTS[arg1]


_ISDTYPE_KINDS = {
    "bool": lambda d: d is bool_,
    "signed integer": lambda d: issubdtype(d, signedinteger),
    "unsigned integer": lambda d: issubdtype(d, unsignedinteger),
    "integral": lambda d: issubdtype(d, integer),
    "real floating": lambda d: issubdtype(d, floating),
    "complex floating": lambda d: issubdtype(d, complexfloating),
    "numeric": lambda d: d is not bool_,
}


def isdtype(dtype, kind) -> bool:
    """Array-API dtype test: `kind` is a Dtype, one of the kind names ('bool', 'signed
    integer', 'unsigned integer', 'integral', 'real floating', 'complex floating',
    'numeric') or a tuple of these."""
    if not isinstance(dtype, Dtype):
        raise TypeError(f"[isdtype] Expected a Dtype, got {dtype!r}.")
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, Dtype):
        return dtype is kind
    if isinstance(kind, str):
        if kind not in _ISDTYPE_KINDS:
            raise ValueError(f"[isdtype] Unknown kind {kind!r}; expected one of {sorted(_ISDTYPE_KINDS)}.")
        return _ISDTYPE_KINDS[kind](dtype)
    raise TypeError(f"[isdtype] kind must be a Dtype, a str or a tuple, got {kind!r}.")


def _as_dtype(x, op):
    from mx.core._array import array
    if isinstance(x, Dtype):
        return x
    if isinstance(x, array):
        return x.dtype
    raise TypeError(f"[{op}] Expected a Dtype or an array, got {type(x).__name__}.")


def result_type(*arrays_and_dtypes) -> Dtype:
    """The dtype MLX's promotion gives for these arrays and dtypes; Python scalars are weak."""
    from mx.core._array import array
    strong = [_as_dtype(x, "result_type") for x in arrays_and_dtypes
              if isinstance(x, (Dtype, array))]
    weak = [x for x in arrays_and_dtypes if not isinstance(x, (Dtype, array))]
    if not strong and not weak:
        raise ValueError("[result_type] Need at least one array or dtype.")
    out = None
    for d in strong:
        out = d if out is None else promote_types(out, d)
    for s in weak:
        if not isinstance(s, (bool, int, float, complex)):
            raise TypeError(f"[result_type] Unsupported argument {s!r}.")
        if out is None:
            out = (bool_ if isinstance(s, bool) else int32 if isinstance(s, int)
                   else float32 if isinstance(s, float) else complex64)
        elif isinstance(s, bool):
            continue        # a Python bool never changes an array's dtype
        elif isinstance(s, int):
            out = int32 if out is bool_ else out
        elif isinstance(s, float):
            out = out if issubdtype(out, inexact) else float32
        else:
            out = complex64
    return out


def can_cast(from_, to) -> bool:
    """True when a value of dtype `from_` converts to `to` without loss (NumPy's 'safe' rule,
    with bfloat16 handled through ml_dtypes)."""
    f = _as_dtype(from_, "can_cast")
    t = _as_dtype(to, "can_cast")
    if f is t:
        return True
    if f is bfloat16:
        return t in (float32, float64, complex64)
    if t is bfloat16:
        return f in (bool_, uint8, int8)
    if t is complex64:
        return f not in (float64, int64, uint64, int32, uint32) or f is complex64
    return bool(np.can_cast(f.np, t.np, casting="safe"))


class finfo:
    """Machine limits of a floating-point dtype: min, max, eps, tiny, bits, dtype."""

    def __init__(self, dtype):
        d = _as_dtype(dtype, "finfo")
        if not issubdtype(d, inexact):
            raise ValueError(f"[finfo] dtype {d} is not inexact.")
        info = ml_dtypes.finfo(d.np) if d is bfloat16 else np.finfo(np.float32 if d is complex64 else d.np)
        self.dtype = d
        self.bits = int(info.bits)
        self.min = float(info.min)
        self.max = float(info.max)
        self.eps = float(info.eps)
        self.tiny = float(info.tiny)
        self.smallest_normal = self.tiny
        self.resolution = float(info.resolution)

    def __repr__(self):
        return f"finfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype.name})"


class iinfo:
    """Limits of an integer dtype: min, max, bits, dtype."""

    def __init__(self, dtype):
        d = _as_dtype(dtype, "iinfo")
        if not issubdtype(d, integer):
            raise ValueError(f"[iinfo] dtype {d} is not an integer type.")
        info = np.iinfo(d.np)
        self.dtype = d
        self.bits = int(info.bits)
        self.min = int(info.min)
        self.max = int(info.max)

    def __repr__(self):
        return f"iinfo(min={self.min}, max={self.max}, dtype={self.dtype.name})"


def dtype_from_name(name: str) -> Dtype:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown dtype name {name!r}.") from None
