# cython: language_level=3
"""The array object, dtypes and primitives: the typed core every op builds on.

An `array` is either evaluated (`_data` holds a NumPy array of exactly its shape and dtype)
or a graph node (`_prim` applied to `_inputs`). Ops check their arguments when they are
called and return nodes; `_scheduler.eval_arrays` runs the graph. Public functions are
thin Python wrappers in mx/core/ops; the hot paths (elementwise builders, broadcasting,
promotion, scalar wrapping) live here, typed, because every op call goes through them.
"""
cimport cython
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject

cdef extern from "Python.h":
    Py_ssize_t Py_REFCNT(object o)
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release
from cpython.object cimport Py_EQ, Py_NE

import numpy as _np
import ml_dtypes as _ml

from mx.core._memory import using_mx_allocator as _using_mx_allocator

cdef object ndarray = _np.ndarray
cdef object np_asarray = _np.asarray

# ---------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------
DEF KIND_BOOL = 0
DEF KIND_UINT = 1
DEF KIND_INT = 2
DEF KIND_FLOAT = 3
DEF KIND_COMPLEX = 4

KINDS = {"bool": KIND_BOOL, "uint": KIND_UINT, "int": KIND_INT, "float": KIND_FLOAT,
         "complex": KIND_COMPLEX}


cdef class Dtype:
    """An object holding the type of an array's elements (``mx.float32`` and friends)."""

    def __init__(self, *args, **kwargs):
        raise TypeError("mx.core.Dtype cannot be instantiated; use the predefined dtypes "
                        "such as mx.float32")

    def __repr__(self):
        return "mx.core." + self.name

    def __str__(self):
        return "mx.core." + self.name

    def __hash__(self):
        return hash(("mx.Dtype", self.name))

    def __richcmp__(self, other, int op):
        if op == Py_EQ:
            return self is other
        if op == Py_NE:
            return self is not other
        return NotImplemented

    def __reduce__(self):
        return (_dtype_by_name, (self.name,))


cdef list DTYPES = []            # by index
cdef dict NP_TO_DTYPE = {}       # numpy dtype -> Dtype
cdef int PROMOTE[14][14]
cdef Dtype D_BOOL, D_INT32, D_INT64, D_FLOAT32, D_COMPLEX64


def _make_dtype(str name, int size, str kind, object npdtype):
    cdef Dtype d = Dtype.__new__(Dtype)
    d.name = name
    d.size = size
    d.kind = KINDS[kind]
    d.np = _np.dtype(npdtype)
    d.index = len(DTYPES)
    DTYPES.append(d)
    NP_TO_DTYPE[d.np] = d
    return d


def _set_promotion_table(list table):
    """table[i][j] is the index of the dtype that dtypes i and j promote to."""
    global D_BOOL, D_INT32, D_INT64, D_FLOAT32, D_COMPLEX64
    cdef int i, j
    for i in range(len(table)):
        for j in range(len(table)):
            PROMOTE[i][j] = table[i][j]
    by_name = {d.name: d for d in DTYPES}
    D_BOOL = by_name["bool"]
    D_INT32 = by_name["int32"]
    D_INT64 = by_name["int64"]
    D_FLOAT32 = by_name["float32"]
    D_COMPLEX64 = by_name["complex64"]


def _dtype_by_name(str name):
    for d in DTYPES:
        if (<Dtype>d).name == name:
            return d
    raise ValueError(f"Unknown dtype {name!r}")


cpdef Dtype promote_types(Dtype a, Dtype b):
    return <Dtype>DTYPES[PROMOTE[a.index][b.index]]


cpdef Dtype dtype_from_numpy(object npdtype):
    """The mx dtype for a NumPy dtype, applying MLX's narrowing (float64 stays float64 here;
    the caller narrows where MLX does)."""
    cdef object d = NP_TO_DTYPE.get(npdtype)
    if d is None:
        d = NP_TO_DTYPE.get(_np.dtype(npdtype))
    if d is None:
        kind = _np.dtype(npdtype).kind
        if kind == "c":
            return D_COMPLEX64
        raise TypeError(f"[array] Unsupported NumPy dtype {npdtype!s}: mx arrays hold bool, "
                        "(u)int8-64, float16, bfloat16, float32, float64 and complex64.")
    return <Dtype>d


# ---------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------
cdef class Primitive:
    """Everything about one primitive operation in one object: its shape/dtype rule, its
    kernels and its transformation rules. Declared in mx/core/ops through `declare`."""

    def __init__(self, str name, rule=None, cpu=None, *, gpu=None, vjp=None, jvp=None,
                 vmap=None, int nout=1, bint donates=False, str doc=""):
        self.name = name
        self.rule = rule
        self.cpu = cpu
        self.gpu = gpu
        self.vjp = vjp
        self.jvp = jvp
        self.vmap = vmap
        self.nout = nout
        self.donates = donates
        self.doc = doc

    def __repr__(self):
        return f"Primitive({self.name})"


# ---------------------------------------------------------------------------------------
# hooks filled in by mx.core at import (the Python layer lives above this module)
# ---------------------------------------------------------------------------------------
cdef object _SIBLING_PROXY = Primitive("sibling_proxy", None, lambda x: x)
cdef object _OPS = None          # namespace with the public op functions
cdef object _EVAL = None         # scheduler entry: eval_arrays(list)
cdef object _CHECK_STREAM = None # validates a stream= argument


def _bind(ops, eval_fn, check_stream):
    global _OPS, _EVAL, _CHECK_STREAM
    _OPS = ops
    _EVAL = eval_fn
    _CHECK_STREAM = check_stream


# ---------------------------------------------------------------------------------------
# node construction
# ---------------------------------------------------------------------------------------
cdef array new_node(object prim, tuple inputs, object params, tuple shape, Dtype dtype,
                    object stream):
    cdef array a = array.__new__(array)
    a._prim = prim
    a._inputs = inputs
    a._params = params
    a._shape = shape
    a._dtype = dtype
    a._stream = stream
    cdef unsigned int depth = 0
    for x in inputs:
        if (<array>x)._version != 0 and a._in_versions is None:
            a._in_versions = tuple([(<array>y)._version for y in inputs])
        if (<array>x)._depth > depth:
            depth = (<array>x)._depth
    a._depth = depth + 1
    return a


def inputs_of(array node):
    """The input arrays of `node` as they were when it was built (see resolve_input)."""
    if node._inputs is None:
        return ()
    return tuple([resolve_input(node, i, <array>node._inputs[i]) for i in range(len(node._inputs))])


cdef array from_data(object data, Dtype dtype):
    cdef array a = array.__new__(array)
    a._data = data
    a._shape = data.shape
    a._dtype = dtype
    return a


def make_node(Primitive prim, tuple inputs, params, tuple shape, Dtype dtype, stream=None):
    """Build an unevaluated array computing `prim` of `inputs` (used by the op modules)."""
    if stream is not None:
        _CHECK_STREAM(stream)
    return new_node(prim, inputs, params, shape, dtype, stream)


def make_nodes(Primitive prim, tuple inputs, params, list shapes, list dtypes, stream=None):
    """Build the sibling outputs of a multi-output primitive."""
    if stream is not None:
        _CHECK_STREAM(stream)
    cdef list outs = []
    cdef int i
    cdef array a
    for i in range(len(shapes)):
        a = new_node(prim, inputs, params, tuple(shapes[i]), <Dtype>dtypes[i], stream)
        a._index = i
        outs.append(a)
    cdef tuple sib = tuple(outs)
    for a in outs:
        a._siblings = sib
    return sib


cdef array clone(array src):
    """A new array object standing for the same value (and graph) as `src`."""
    cdef array a = array.__new__(array)
    a._data = src._data
    a._prim = src._prim
    # a tuple of its own: input reference counts must count both consumers, or the first
    # evaluation could donate a buffer the other still needs
    a._inputs = None if src._inputs is None else tuple(list(src._inputs))
    a._params = src._params
    a._shape = src._shape
    a._dtype = src._dtype
    a._stream = src._stream
    a._index = src._index
    a._pending = src._pending
    a._in_versions = src._in_versions
    a._depth = src._depth
    if src._siblings is not None:
        # the clone stands in for src among its siblings, so evaluating either fills both
        # only when they are the same object; evaluate through src instead
        a._prim = _SIBLING_PROXY
        a._inputs = (src,)
        a._params = None
    return a


def wrap(object data, Dtype dtype=None):
    """An evaluated array around a NumPy array (no copy)."""
    if dtype is None:
        dtype = dtype_from_numpy(data.dtype)
    return from_data(data, dtype)


# ---------------------------------------------------------------------------------------
# conversion of Python objects
# ---------------------------------------------------------------------------------------
cdef dict _SCALAR_CACHE = {}


cdef array scalar_array(object value, Dtype dtype):
    """A weakly typed 0-d constant (a Python scalar taking part in an op)."""
    cdef object key = None
    cdef object t = type(value)
    cdef array a
    if t is int or (t is float and value != 0.0 and value == value):
        key = (dtype.index, t, value)
        a = _SCALAR_CACHE.get(key)
        if a is not None:
            return a
    if t is int and (dtype.kind == KIND_INT or dtype.kind == KIND_UINT):
        info = _np.iinfo(dtype.np)
        if value < info.min or value > info.max:
            raise ValueError(f"Converting {value} to {dtype.name} would result in overflow.")
    try:
        data = np_asarray(value, dtype=dtype.np)
    except OverflowError:
        raise ValueError(f"Converting {value} to {dtype.name} would result in overflow.") from None
    a = from_data(data, dtype)
    a._weak = True
    if key is not None:
        if len(_SCALAR_CACHE) > 4096:
            _SCALAR_CACHE.clear()
        _SCALAR_CACHE[key] = a
    return a


cdef inline bint is_py_scalar(object x):
    cdef object t = type(x)
    return t is float or t is int or t is bool or t is complex


cdef Dtype weak_dtype(object x, Dtype other):
    """MLX's rule for a Python scalar meeting an array of dtype `other`."""
    cdef object t = type(x)
    if t is bool:
        return other
    if t is int:
        return D_INT32 if other.kind == KIND_BOOL else other
    if t is float:
        return other if other.kind >= KIND_FLOAT else D_FLOAT32
    return D_COMPLEX64


cdef Dtype default_scalar_dtype(object x):
    cdef object t = type(x)
    if t is bool:
        return D_BOOL
    if t is int:
        return D_INT32 if -2147483648 <= x <= 2147483647 else D_INT64
    if t is float:
        return D_FLOAT32
    return D_COMPLEX64


cdef Dtype _narrow_numpy_dtype(object npd, bint from_python):
    """MLX's mapping of NumPy's inferred dtypes: float64 -> float32 and complex128 ->
    complex64 for values that did not come with an explicit dtype."""
    cdef str k = npd.kind
    if k == "f" and npd.itemsize == 8:
        return D_FLOAT32
    if k == "c":
        return D_COMPLEX64
    if k in "OUSVMm" and npd != _ml.bfloat16:
        raise TypeError(f"[array] Cannot convert data of NumPy dtype {npd} to an mx array.")
    return dtype_from_numpy(npd)


def _list_has_arrays(obj):
    for x in obj:
        if isinstance(x, array):
            return True
        if isinstance(x, (list, tuple)):
            if _list_has_arrays(x):
                return True
    return False


def _materialize(obj):
    if isinstance(obj, array):
        return (<array>obj)._np()
    if isinstance(obj, (list, tuple)):
        return [_materialize(x) for x in obj]
    return obj


cpdef array to_array(object x, Dtype like=None):
    """Convert `x` to an array; Python scalars become weak constants of a dtype chosen
    against `like` (the other operand's dtype)."""
    if isinstance(x, array):
        return <array>x
    if is_py_scalar(x):
        if like is None:
            return scalar_array(x, default_scalar_dtype(x))
        return scalar_array(x, weak_dtype(x, like))
    return convert(x, None)


cdef array convert(object obj, Dtype dtype):
    """The conversion behind mx.array(obj, dtype)."""
    cdef object data
    cdef Dtype d
    if isinstance(obj, array):
        if dtype is None or dtype is (<array>obj)._dtype:
            return <array>obj
        return _OPS.astype(obj, dtype)
    if is_py_scalar(obj):
        d = default_scalar_dtype(obj) if dtype is None else dtype
        try:
            data = _np.array(obj, dtype=d.np)
        except OverflowError:
            raise ValueError(f"[array] The Python int {obj} does not fit in {d.name}.") from None
        return from_data(data, d)
    if isinstance(obj, (list, tuple)):
        if _list_has_arrays(obj):
            obj = _materialize(obj)
        try:
            data = _np.array(obj)
        except ValueError as e:
            raise ValueError(f"[array] Initialization encountered non-uniform length: {e}") from None
        if data.dtype.kind == "O":
            raise ValueError("[array] Initialization encountered non-uniform length or "
                             "unsupported element types.")
        if dtype is None:
            if data.dtype == _np.uint64:
                d = dtype_from_numpy(data.dtype)
            elif data.dtype.kind in "iu":
                if data.size and (data.max() > 2147483647 or data.min() < -2147483648):
                    d = D_INT64
                else:
                    d = D_INT32
            else:
                d = _narrow_numpy_dtype(data.dtype, True)
        else:
            d = dtype
        data = data.astype(d.np, copy=False)
        if not data.flags.c_contiguous:
            data = _np.ascontiguousarray(data)
        return from_data(data, d)
    if isinstance(obj, (_np.ndarray, _np.generic)):
        data = obj
    elif hasattr(obj, "__array__") or hasattr(obj, "__array_interface__"):
        data = _np.asarray(obj)
    else:
        try:
            data = _np.asarray(memoryview(obj))
        except TypeError:
            raise TypeError(f"[array] Cannot convert an object of type {type(obj).__name__} "
                            "to an mx array.") from None
    if dtype is None:
        d = _narrow_numpy_dtype(data.dtype, False)
    else:
        d = dtype
    # copy: later writes to the source must not reach the (immutable) mx array
    data = _np.array(data, dtype=d.np, copy=True, order="C")
    return from_data(data, d)


# ---------------------------------------------------------------------------------------
# elementwise builders (the hot path of every operator)
# ---------------------------------------------------------------------------------------
# binary dtype rules
DEF B_ARITH = 0      # result = promoted dtype
DEF B_DIVIDE = 1     # promoted; integers and bool go to float32
DEF B_COMPARE = 2    # computed in the promoted dtype, result bool
DEF B_LOGICAL = 3    # inputs as bool, result bool
DEF B_INTEGER = 4    # integers and bool only
DEF B_NOCOMPLEX = 5  # arithmetic, but complex is refused (floor_divide, remainder...)
DEF B_REAL_FLOAT = 6 # promoted, to float32 when integral, complex refused (arctan2)
DEF B_SHIFT = 7      # integers only; bool with bool shifts as uint8

BINARY_RULES = {"arith": B_ARITH, "divide": B_DIVIDE, "compare": B_COMPARE,
                "logical": B_LOGICAL, "integer": B_INTEGER, "nocomplex": B_NOCOMPLEX,
                "real_float": B_REAL_FLOAT, "shift": B_SHIFT}

cdef Primitive ASTYPE = None


def _set_astype_primitive(Primitive p):
    global ASTYPE
    ASTYPE = p


cdef array cast(array x, Dtype d, object stream):
    if x._dtype is d:
        return x
    if x._data is not None and x._weak:
        return scalar_array(x._data.item(), d) if d.kind != KIND_BOOL else from_data(x._data.astype(d.np), d)
    return new_node(ASTYPE, (x,), {"dtype": d}, x._shape, d, stream)


cdef tuple broadcast2(tuple a, tuple b, str opname):
    if a == b:
        return a
    cdef Py_ssize_t la = len(a), lb = len(b), n, i
    n = la if la > lb else lb
    cdef list out = [0] * n
    cdef Py_ssize_t da, db
    for i in range(n):
        da = <Py_ssize_t>a[la - n + i] if la - n + i >= 0 else 1
        db = <Py_ssize_t>b[lb - n + i] if lb - n + i >= 0 else 1
        if da == db or db == 1:
            out[i] = da
        elif da == 1:
            out[i] = db
        else:
            raise ValueError(f"[{opname}] Shapes {shape_str(a)} and {shape_str(b)} cannot be broadcast.")
    return tuple(out)


def broadcast_shapes_pair(tuple a, tuple b, str opname="broadcast_shapes"):
    return broadcast2(a, b, opname)


def shape_str(tuple s):
    return "(" + ",".join(str(d) for d in s) + ")"


cdef Dtype binary_compute_dtype(Primitive prim, int rule, Dtype pd):
    """The dtype the kernel computes in; the output is bool for comparisons and logic."""
    if rule == B_ARITH:
        return pd
    if rule == B_DIVIDE:
        return D_FLOAT32 if pd.kind < KIND_FLOAT else pd
    if rule == B_COMPARE:
        return pd
    if rule == B_LOGICAL:
        return D_BOOL
    if rule == B_INTEGER or rule == B_SHIFT:
        if rule == B_SHIFT and pd.kind == KIND_BOOL:
            return <Dtype>DTYPES[1]
        if pd.kind >= KIND_FLOAT:
            raise TypeError(f"[{prim.name}] Only integer and boolean types are supported; got {pd.name}.")
        return pd
    if pd.kind == KIND_COMPLEX:
        raise TypeError(f"[{prim.name}] Complex inputs are not supported.")
    if rule == B_REAL_FLOAT and pd.kind < KIND_FLOAT:
        return D_FLOAT32
    return pd


cpdef array binary_op(Primitive prim, int rule, object a, object b, object stream):
    """Build `prim(a, b)` with MLX's promotion (Python scalars are weak) and broadcasting."""
    cdef array x, y
    cdef Dtype pd, out, comp
    if isinstance(a, array):
        x = <array>a
        y = <array>b if isinstance(b, array) else to_array(b, x._dtype)
    elif isinstance(b, array):
        y = <array>b
        x = to_array(a, y._dtype)
    else:
        x = to_array(a, None)
        y = to_array(b, x._dtype)
    if stream is not None:
        _CHECK_STREAM(stream)
    pd = operand_dtype(x, y)
    comp = binary_compute_dtype(prim, rule, pd)
    out = D_BOOL if (rule == B_COMPARE or rule == B_LOGICAL) else comp
    cdef tuple shape = broadcast2(x._shape, y._shape, prim.name)
    x = cast(x, comp, stream)
    y = cast(y, comp, stream)
    return new_node(prim, (x, y), None, shape, out, stream)


cpdef Dtype operand_dtype(array x, array y):
    """The dtype two operands meet in: MLX's table, except that a weakly typed scalar takes
    the other operand's dtype when its kind fits (int scalar with a float16 array...)."""
    if x._dtype is y._dtype:
        return x._dtype
    if x._weak and not y._weak and x._data is not None and _weak_fits(x, y._dtype):
        return y._dtype
    if y._weak and not x._weak and y._data is not None and _weak_fits(y, x._dtype):
        return x._dtype
    return <Dtype>DTYPES[PROMOTE[x._dtype.index][y._dtype.index]]


cdef bint _weak_fits(array w, Dtype other):
    # a weak scalar's dtype was chosen against some array; it stays weak against `other`
    # when its kind does not exceed other's (float scalar vs int array promotes).
    cdef int k = w._dtype.kind
    if k == KIND_BOOL:
        return True
    if k <= KIND_INT:
        return other.kind >= KIND_UINT
    if k == KIND_FLOAT:
        return other.kind >= KIND_FLOAT
    return other.kind == KIND_COMPLEX


# unary dtype rules
DEF U_SAME = 0        # result dtype = input dtype
DEF U_FLOAT = 1       # integers and bool computed and returned as float32
DEF U_BOOL = 2        # result bool (isnan...)
DEF U_REAL = 3        # complex -> float32 (abs), else same
DEF U_NOCOMPLEX = 4   # same, complex refused (floor, ceil...)
DEF U_INTEGER = 5     # integers/bool only (bitwise invert)
DEF U_FLOAT_NOCOMPLEX = 6  # like U_FLOAT but complex refused (erf...)

UNARY_RULES = {"same": U_SAME, "float": U_FLOAT, "bool": U_BOOL, "real": U_REAL,
               "nocomplex": U_NOCOMPLEX, "integer": U_INTEGER, "float_nocomplex": U_FLOAT_NOCOMPLEX}


cpdef array unary_op(Primitive prim, int rule, object a, object stream):
    cdef array x = to_array(a, None)
    cdef Dtype d = x._dtype, out
    if stream is not None:
        _CHECK_STREAM(stream)
    if rule == U_SAME:
        out = d
    elif rule == U_FLOAT or rule == U_FLOAT_NOCOMPLEX:
        if rule == U_FLOAT_NOCOMPLEX and d.kind == KIND_COMPLEX:
            raise TypeError(f"[{prim.name}] Complex inputs are not supported.")
        out = d if d.kind >= KIND_FLOAT else D_FLOAT32
        x = cast(x, out, stream)
    elif rule == U_BOOL:
        out = D_BOOL
    elif rule == U_REAL:
        out = D_FLOAT32 if d.kind == KIND_COMPLEX else d
    elif rule == U_NOCOMPLEX:
        if d.kind == KIND_COMPLEX:
            raise TypeError(f"[{prim.name}] Complex inputs are not supported.")
        out = d
    else:
        if d.kind >= KIND_FLOAT:
            raise TypeError(f"[{prim.name}] Only integer and boolean types are supported; got {d.name}.")
        out = d
    return new_node(prim, (x,), None, x._shape, out, stream)


# ---------------------------------------------------------------------------------------
# the array
# ---------------------------------------------------------------------------------------
cdef object _OP_PRIMS = {}    # operator name -> (Primitive, rule)
cdef Primitive P_ADD, P_SUB, P_MUL, P_DIV, P_FLOORDIV, P_MOD, P_POW
cdef Primitive P_EQ, P_NE, P_LT, P_LE, P_GT, P_GE, P_AND, P_OR, P_XOR, P_LSHIFT, P_RSHIFT
cdef Primitive P_NEG
cdef int R_ADD, R_SUB, R_MUL, R_DIV, R_FLOORDIV, R_MOD, R_POW, R_CMP, R_BIT, R_SHIFT


def _set_operator_primitives(dict prims):
    """Operator dunders build these primitives directly (no Python call in between)."""
    global P_ADD, P_SUB, P_MUL, P_DIV, P_FLOORDIV, P_MOD, P_POW, P_EQ, P_NE, P_LT, P_LE
    global P_GT, P_GE, P_AND, P_OR, P_XOR, P_LSHIFT, P_RSHIFT, P_NEG
    global R_ADD, R_SUB, R_MUL, R_DIV, R_FLOORDIV, R_MOD, R_POW, R_CMP, R_BIT, R_SHIFT
    P_ADD, R_ADD = prims["add"]
    P_SUB, R_SUB = prims["subtract"]
    P_MUL, R_MUL = prims["multiply"]
    P_DIV, R_DIV = prims["divide"]
    P_FLOORDIV, R_FLOORDIV = prims["floor_divide"]
    P_MOD, R_MOD = prims["remainder"]
    P_POW, R_POW = prims["power"]
    P_EQ, R_CMP = prims["equal"]
    P_NE = prims["not_equal"][0]
    P_LT = prims["less"][0]
    P_LE = prims["less_equal"][0]
    P_GT = prims["greater"][0]
    P_GE = prims["greater_equal"][0]
    P_AND, R_BIT = prims["bitwise_and"]
    P_OR = prims["bitwise_or"][0]
    P_XOR = prims["bitwise_xor"][0]
    P_LSHIFT, R_SHIFT = prims["left_shift"]
    P_RSHIFT = prims["right_shift"][0]
    P_NEG = prims["negative"][0]


cdef inline bint _operand(object x):
    # NumPy arrays on the right convert (mx result); on the left NumPy converts us (NumPy
    # result), as with MLX
    return isinstance(x, array) or is_py_scalar(x) or isinstance(x, (_np.ndarray, _np.generic, list, tuple))


@cython.trashcan(True)
cdef class array:
    """An N-dimensional array, evaluated lazily.

    ``array(val, dtype=None)`` builds one from a Python scalar, a (nested) list or tuple, a
    NumPy array, a buffer or another array. Python ints become int32 (int64 when they do
    not fit), floats float32 and bools bool_; NumPy float64 becomes float32 unless `dtype`
    says otherwise.
    """

    def __init__(self, val, dtype=None):
        cdef array src
        if dtype is not None and not isinstance(dtype, Dtype):
            raise TypeError(f"[array] dtype must be an mx Dtype, got {dtype!r}.")
        if isinstance(val, array) and ((<array>val)._prim is not None or (<array>val)._data is None):
            # an array that is (or stems from) a graph node: the new array refers to it, so
            # it stays on the graph (differentiable, traced) instead of copying its recipe
            src = <array>_OPS.reference(val)
            if dtype is not None and dtype is not src._dtype:
                src = <array>_OPS.astype(src, dtype)
        else:
            with _using_mx_allocator():
                src = clone(convert(val, dtype))
        self._data = src._data
        self._in_versions = src._in_versions
        self._depth = src._depth
        self._prim = src._prim
        self._inputs = src._inputs
        self._params = src._params
        self._shape = src._shape
        self._dtype = src._dtype
        self._stream = src._stream
        self._index = src._index
        self._pending = src._pending

    # -- evaluation ---------------------------------------------------------------------
    cdef object _np(self):
        if self._data is None:
            _EVAL([self])
        elif self._pending is not None:
            _EVAL([self])
        return self._data

    def _eval_data(self):
        """The NumPy array holding this array's values (evaluates)."""
        return self._np()

    # -- properties -----------------------------------------------------------------------
    @property
    def shape(self):
        """The array's dimensions as a tuple of ints."""
        return self._shape

    @property
    def dtype(self):
        """The array's element type."""
        return self._dtype

    @property
    def ndim(self):
        """The number of dimensions."""
        return len(self._shape)

    @property
    def size(self):
        """The number of elements."""
        cdef Py_ssize_t n = 1
        for d in self._shape:
            n *= <Py_ssize_t>d
        return n

    @property
    def itemsize(self):
        """The size of one element in bytes."""
        return self._dtype.size

    @property
    def nbytes(self):
        """The number of bytes the array's elements occupy."""
        return self.size * self._dtype.size

    @property
    def T(self):
        """The array with its axes reversed (``transpose()``)."""
        return _OPS.transpose(self)

    @property
    def mT(self):
        """The array with its last two axes swapped."""
        if len(self._shape) < 2:
            raise ValueError(f"[mT] The array must have at least 2 dimensions; got shape {shape_str(self._shape)}.")
        return _OPS.swapaxes(self, -1, -2)

    @property
    def real(self):
        """The real part of a complex array."""
        return _OPS.real(self)

    @property
    def imag(self):
        """The imaginary part of a complex array."""
        return _OPS.imag(self)

    @property
    def at(self):
        """Functional scatter updates: ``a.at[idx].add(v)`` accumulates over repeated
        indices, unlike ``a[idx] += v``."""
        return _OPS.ArrayAt(self)

    # -- conversion -----------------------------------------------------------------------
    def item(self):
        """The value of a one-element array as a Python scalar."""
        data = self._np()
        if data.size != 1:
            raise ValueError(f"[item] item can only be called on arrays of size 1; got shape {shape_str(self._shape)}.")
        v = data.reshape(()).item()
        if self._dtype.kind == KIND_FLOAT and not isinstance(v, float):
            v = float(v)
        return v

    def tolist(self):
        """The array as nested Python lists of Python scalars (a scalar for 0-d)."""
        data = self._np()
        if self._dtype.kind == KIND_FLOAT and data.dtype.itemsize < 4:
            data = data.astype(_np.float32)
        return data.tolist()

    def __array__(self, dtype=None, copy=None):
        data = self._np()
        if dtype is not None and _np.dtype(dtype) != data.dtype:
            return data.astype(dtype)
        if copy:
            return data.copy()
        return data

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        data = self._np()
        if self._dtype.name == "bfloat16":
            raise BufferError("[array] bfloat16 arrays have no buffer format; use np.asarray(a), "
                              "which goes through ml_dtypes.")
        cdef Py_buffer view
        PyObject_GetBuffer(data, &view, flags)
        # hand the consumer NumPy's own view; it keeps `data` alive and releases it itself
        Py_XDECREF(<PyObject*>buffer.obj)
        buffer[0] = view

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        from mx.core import interop
        return interop.to_dlpack(self._np(), stream, max_version, dl_device, copy)

    def __dlpack_device__(self):
        from mx.core import interop
        return interop.dlpack_device()

    def __reduce__(self):
        return (_unpickle, (self._np(), self._dtype.name))

    def __copy__(self):
        return clone(self)

    def __deepcopy__(self, memo):
        return clone(self)

    # -- Python protocols -----------------------------------------------------------------
    def __repr__(self):
        return _OPS.array_repr(self)

    def __str__(self):
        return _OPS.array_str(self)

    def __format__(self, spec):
        if not spec:
            return str(self)
        if len(self._shape) != 0:
            raise TypeError(f"[format] Format specifiers are only supported for 0-d arrays; got shape {shape_str(self._shape)}.")
        return format(self.item(), spec)

    def __len__(self):
        if len(self._shape) == 0:
            raise TypeError("len() 0-dimensional array.")
        return self._shape[0]

    def __iter__(self):
        if len(self._shape) == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self._shape[0]))

    def __bool__(self):
        data = self._np()
        if data.size != 1:
            raise ValueError(f"The truth value of an array with more than one element is ambiguous; got shape {shape_str(self._shape)}.")
        return bool(data.reshape(()).item())

    def __int__(self):
        return int(self.item())

    def __float__(self):
        return float(self.item())

    def __complex__(self):
        return complex(self.item())

    def __index__(self):
        if self._dtype.kind not in (KIND_INT, KIND_UINT, KIND_BOOL) or len(self._shape) != 0:
            raise TypeError("only integer scalar arrays can be converted to a scalar index")
        return int(self.item())

    def __hash__(self):
        return id(self)

    def __getitem__(self, idx):
        return _OPS.getitem(self, idx)

    def __setitem__(self, idx, val):
        # MLX semantics: this array now stands for the updated graph; views taken before
        # keep the old values (arrays are values, not buffers).
        if self._siblings is not None:
            # a multi-output sibling is evaluated first so that no graph refers to it
            self._np()
        cdef array old = clone(self)
        if Py_REFCNT(self) > 2:
            # graph nodes (or aliases) may hold this array: nodes built so far must keep
            # reading the value it has now, which `old` holds
            if self._history is None:
                self._history = {}
            self._history[self._version] = old
            self._version += 1
        # operands that are this very array read its old value too
        if val is self:
            val = old
        if type(idx) is tuple:
            idx = tuple([old if x is self else x for x in idx])
        elif idx is self:
            idx = old
        cdef array new = <array>_OPS.setitem(old, idx, val)
        self._data = new._data
        self._prim = new._prim
        self._inputs = new._inputs
        self._params = new._params
        self._shape = new._shape
        self._dtype = new._dtype
        self._stream = new._stream
        self._siblings = None
        self._index = 0
        self._pending = new._pending
        self._in_versions = new._in_versions
        self._depth = new._depth

    # -- arithmetic operators -------------------------------------------------------------
    def __add__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_ADD, R_ADD, self, other, None)

    def __radd__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_ADD, R_ADD, other, self, None)

    def __sub__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_SUB, R_SUB, self, other, None)

    def __rsub__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_SUB, R_SUB, other, self, None)

    def __mul__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_MUL, R_MUL, self, other, None)

    def __rmul__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_MUL, R_MUL, other, self, None)

    def __truediv__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_DIV, R_DIV, self, other, None)

    def __rtruediv__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_DIV, R_DIV, other, self, None)

    def __floordiv__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_FLOORDIV, R_FLOORDIV, self, other, None)

    def __rfloordiv__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_FLOORDIV, R_FLOORDIV, other, self, None)

    def __mod__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_MOD, R_MOD, self, other, None)

    def __rmod__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_MOD, R_MOD, other, self, None)

    def __divmod__(self, other):
        if not _operand(other):
            return NotImplemented
        return _OPS.divmod(self, other)

    def __rdivmod__(self, other):
        if not _operand(other):
            return NotImplemented
        return _OPS.divmod(other, self)

    def __pow__(self, other, mod=None):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_POW, R_POW, self, other, None)

    def __rpow__(self, other, mod=None):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_POW, R_POW, other, self, None)

    def __matmul__(self, other):
        if not _operand(other):
            return NotImplemented
        return _OPS.matmul(self, other)

    def __rmatmul__(self, other):
        if not _operand(other):
            return NotImplemented
        return _OPS.matmul(other, self)

    def __neg__(self):
        if self._dtype.kind == KIND_BOOL:
            raise ValueError("[negative] The negation operator is not supported for bool arrays; use logical_not.")
        return unary_op(P_NEG, U_SAME, self, None)

    def __pos__(self):
        return self

    def __abs__(self):
        return _OPS.abs(self)

    def __invert__(self):
        return _OPS.bitwise_invert(self)

    def __and__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_AND, R_BIT, self, other, None)

    def __rand__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_AND, R_BIT, other, self, None)

    def __or__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_OR, R_BIT, self, other, None)

    def __ror__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_OR, R_BIT, other, self, None)

    def __xor__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_XOR, R_BIT, self, other, None)

    def __rxor__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_XOR, R_BIT, other, self, None)

    def __lshift__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_LSHIFT, R_SHIFT, self, other, None)

    def __rlshift__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_LSHIFT, R_SHIFT, other, self, None)

    def __rshift__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_RSHIFT, R_SHIFT, self, other, None)

    def __rrshift__(self, other):
        if not _operand(other):
            return NotImplemented
        return binary_op(P_RSHIFT, R_SHIFT, other, self, None)

    def __richcmp__(self, other, int op):
        if not _operand(other):
            if op == Py_EQ:
                return False
            if op == Py_NE:
                return True
            return NotImplemented
        if op == 0:
            return binary_op(P_LT, R_CMP, self, other, None)
        if op == 1:
            return binary_op(P_LE, R_CMP, self, other, None)
        if op == 2:
            return binary_op(P_EQ, R_CMP, self, other, None)
        if op == 3:
            return binary_op(P_NE, R_CMP, self, other, None)
        if op == 4:
            return binary_op(P_GT, R_CMP, self, other, None)
        return binary_op(P_GE, R_CMP, self, other, None)

    # -- methods (each delegates to the op of the same name) ------------------------------
    def astype(self, dtype, stream=None):
        """A copy of the array cast to `dtype`."""
        return _OPS.astype(self, dtype, stream=stream)

    def view(self, dtype, *, stream=None):
        """The same bytes reinterpreted as `dtype`."""
        return _OPS.view(self, dtype, stream=stream)

    def reshape(self, *shape, stream=None):
        """The array with a new shape (given as a tuple or as separate ints)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _OPS.reshape(self, shape, stream=stream)

    def flatten(self, start_axis=0, end_axis=-1, *, stream=None):
        """The axes from start_axis to end_axis merged into one."""
        return _OPS.flatten(self, start_axis, end_axis, stream=stream)

    def squeeze(self, axis=None, *, stream=None):
        """The array without its size-1 axes (or only those in `axis`)."""
        return _OPS.squeeze(self, axis, stream=stream)

    def transpose(self, *axes, stream=None):
        """The array with its axes permuted (reversed when none are given)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _OPS.transpose(self, axes if axes else None, stream=stream)

    def swapaxes(self, axis1, axis2, *, stream=None):
        """The array with two axes exchanged."""
        return _OPS.swapaxes(self, axis1, axis2, stream=stream)

    def moveaxis(self, source, destination, *, stream=None):
        """The array with one axis moved to a new position."""
        return _OPS.moveaxis(self, source, destination, stream=stream)

    def split(self, indices_or_sections, axis=0, *, stream=None):
        """Split into equal parts or at the given indices along `axis`."""
        return _OPS.split(self, indices_or_sections, axis, stream=stream)

    def diagonal(self, offset=0, axis1=0, axis2=1, stream=None):
        """The diagonal of the 2-D sub-arrays on axis1 and axis2."""
        return _OPS.diagonal(self, offset, axis1, axis2, stream=stream)

    def diag(self, k=0, *, stream=None):
        """The k-th diagonal of a 2-D array, or a 2-D array with this 1-D array on it."""
        return _OPS.diag(self, k, stream=stream)

    def all(self, axis=None, keepdims=False, *, stream=None):
        """True where all elements along `axis` are true."""
        return _OPS.all(self, axis, keepdims, stream=stream)

    def any(self, axis=None, keepdims=False, *, stream=None):
        """True where any element along `axis` is true."""
        return _OPS.any(self, axis, keepdims, stream=stream)

    def sum(self, axis=None, keepdims=False, *, stream=None):
        """The sum along `axis`."""
        return _OPS.sum(self, axis, keepdims, stream=stream)

    def prod(self, axis=None, keepdims=False, *, stream=None):
        """The product along `axis`."""
        return _OPS.prod(self, axis, keepdims, stream=stream)

    def mean(self, axis=None, keepdims=False, *, stream=None):
        """The mean along `axis`."""
        return _OPS.mean(self, axis, keepdims, stream=stream)

    def var(self, axis=None, keepdims=False, ddof=0, *, stream=None):
        """The variance along `axis`."""
        return _OPS.var(self, axis, keepdims, ddof, stream=stream)

    def std(self, axis=None, keepdims=False, ddof=0, *, stream=None):
        """The standard deviation along `axis`."""
        return _OPS.std(self, axis, keepdims, ddof, stream=stream)

    def max(self, axis=None, keepdims=False, *, stream=None):
        """The maximum along `axis`."""
        return _OPS.max(self, axis, keepdims, stream=stream)

    def min(self, axis=None, keepdims=False, *, stream=None):
        """The minimum along `axis`."""
        return _OPS.min(self, axis, keepdims, stream=stream)

    def argmax(self, axis=None, keepdims=False, *, stream=None):
        """Indices of the maxima along `axis`."""
        return _OPS.argmax(self, axis, keepdims, stream=stream)

    def argmin(self, axis=None, keepdims=False, *, stream=None):
        """Indices of the minima along `axis`."""
        return _OPS.argmin(self, axis, keepdims, stream=stream)

    def logsumexp(self, axis=None, keepdims=False, *, stream=None):
        """log(sum(exp(a))) along `axis`, computed stably."""
        return _OPS.logsumexp(self, axis, keepdims, stream=stream)

    def cumsum(self, axis=None, *, reverse=False, inclusive=True, stream=None):
        """The cumulative sum along `axis` (flattened when None)."""
        return _OPS.cumsum(self, axis, reverse=reverse, inclusive=inclusive, stream=stream)

    def cumprod(self, axis=None, *, reverse=False, inclusive=True, stream=None):
        """The cumulative product along `axis`."""
        return _OPS.cumprod(self, axis, reverse=reverse, inclusive=inclusive, stream=stream)

    def cummax(self, axis=None, *, reverse=False, inclusive=True, stream=None):
        """The cumulative maximum along `axis`."""
        return _OPS.cummax(self, axis, reverse=reverse, inclusive=inclusive, stream=stream)

    def cummin(self, axis=None, *, reverse=False, inclusive=True, stream=None):
        """The cumulative minimum along `axis`."""
        return _OPS.cummin(self, axis, reverse=reverse, inclusive=inclusive, stream=stream)

    def logcumsumexp(self, axis=None, *, reverse=False, inclusive=True, stream=None):
        """The cumulative logsumexp along `axis`."""
        return _OPS.logcumsumexp(self, axis, reverse=reverse, inclusive=inclusive, stream=stream)

    def round(self, decimals=0, *, stream=None):
        """Round to the given number of decimals (halves to even)."""
        return _OPS.round(self, decimals, stream=stream)

    def conj(self, *, stream=None):
        """The complex conjugate."""
        return _OPS.conjugate(self, stream=stream)

    def abs(self, *, stream=None):
        return _OPS.abs(self, stream=stream)

    def square(self, *, stream=None):
        return _OPS.square(self, stream=stream)

    def sqrt(self, *, stream=None):
        return _OPS.sqrt(self, stream=stream)

    def rsqrt(self, *, stream=None):
        return _OPS.rsqrt(self, stream=stream)

    def reciprocal(self, *, stream=None):
        return _OPS.reciprocal(self, stream=stream)

    def exp(self, *, stream=None):
        return _OPS.exp(self, stream=stream)

    def log(self, *, stream=None):
        return _OPS.log(self, stream=stream)

    def log2(self, *, stream=None):
        return _OPS.log2(self, stream=stream)

    def log10(self, *, stream=None):
        return _OPS.log10(self, stream=stream)

    def log1p(self, *, stream=None):
        return _OPS.log1p(self, stream=stream)

    def sin(self, *, stream=None):
        return _OPS.sin(self, stream=stream)

    def cos(self, *, stream=None):
        return _OPS.cos(self, stream=stream)

    def maximum(self, other, *, stream=None):
        return _OPS.maximum(self, other, stream=stream)

    def minimum(self, other, *, stream=None):
        return _OPS.minimum(self, other, stream=stream)


def _unpickle(data, str dtype_name):
    cdef Dtype d = _dtype_by_name(dtype_name)
    return from_data(_np.asarray(data, dtype=d.np, order="C"), d)
