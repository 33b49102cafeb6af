# The array object and the dtype object: the two types every other module touches.

cdef class Dtype:
    cdef readonly str name
    cdef readonly int size
    cdef readonly int index
    cdef readonly int kind          # KIND_* below
    cdef readonly object np         # the matching numpy dtype (ml_dtypes for bfloat16)


cdef class array:
    cdef public object _data        # numpy.ndarray once evaluated, else None
    cdef public object _prim        # Primitive that computes it (None when evaluated)
    cdef public tuple _inputs       # input arrays of _prim
    cdef public object _params      # dict of static parameters of _prim, or None
    cdef public tuple _shape
    cdef public Dtype _dtype
    cdef public object _stream      # Stream/Device the op was issued on, None = default
    cdef public tuple _siblings     # all outputs of a multi-output primitive, or None
    cdef public int _index          # which output of _prim this array is
    cdef public bint _weak          # made from a Python scalar: promotes weakly
    cdef public unsigned long _mark # scheduler's visit marker
    cdef public object _pending     # future of an async_eval that will fill _data
    cdef public int _version        # bumped by __setitem__ when consumers may hold this array
    cdef public dict _history       # version -> the array's value at that version
    cdef public tuple _in_versions  # versions of _inputs when this node was built (None: all 0)
    cdef public unsigned int _depth # longest path from a leaf: the scheduler runs deep inputs first
    cdef object __weakref__
    cdef object _np(self)


cdef inline array resolve_input(array node, Py_ssize_t i, array inp):
    """The value input i of `node` had when node was built (a later `inp[...] = v` gives
    inp a new value; node still reads the old one)."""
    cdef int expected
    if inp._history is None:
        return inp
    expected = <int>node._in_versions[i] if node._in_versions is not None else 0
    if expected == inp._version:
        return inp
    return <array>inp._history[expected]


cdef array new_node(object prim, tuple inputs, object params, tuple shape, Dtype dtype, object stream)
cdef array from_data(object data, Dtype dtype)
cpdef array to_array(object x, Dtype like=*)


cdef class Primitive:
    cdef readonly str name
    cdef public object rule         # (params, *input arrays) -> (shape, Dtype) [or lists of them]
    cdef public object cpu          # CPU kernel: cpu(*numpy inputs, **params) -> ndarray (tuple if nout>1)
    cdef public object gpu          # GPU kernel description (GPU issue); None = runs on the CPU
    cdef public object vjp          # (primals, cotangents, outputs, **params) -> input cotangents
    cdef public object jvp          # (primals, tangents, **params) -> output tangents
    cdef public object vmap         # (inputs, axes, **params) -> (outputs, out axes)
    cdef public int nout            # number of outputs
    cdef public bint donates        # cpu kernel accepts out= for buffer donation (ufuncs)
    cdef public str doc
