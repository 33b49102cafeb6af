# cython: boundscheck=False, wraparound=False
"""The hot path of GPU dispatch: queue a kernel over NumPy arrays in unified memory with one
C call through the shim's mx_launch (its address comes from cffi), so a small op costs no
cffi argument marshalling and no per-array lookups in Python."""
cimport numpy as cnp
from libc.stdint cimport uint32_t, uint64_t, uintptr_t

cnp.import_array()

ctypedef int (*launch_fn)(void *kernel, void *stream, uint64_t threads, uint32_t tg,
                          const uint64_t *addrs, int n_addrs, const void *consts,
                          const uint32_t *const_sizes, int n_consts) nogil

DEF MAX_ARRAYS = 8


cdef class Launcher:
    """Binds mx_launch; `elementwise` queues kernels whose constants are just the element
    count (the contiguous elementwise variants)."""
    cdef launch_fn fn
    cdef uint32_t threadgroup

    def __init__(self, uintptr_t fn_address, uint32_t threadgroup):
        self.fn = <launch_fn>fn_address
        self.threadgroup = threadgroup

    def elementwise(self, uintptr_t kernel, uintptr_t stream, uint64_t n, uint64_t work,
                    tuple arrays):
        """Queue `kernel` over n elements, `work` a thread, with the arrays' data as its
        buffer arguments and n as its one constant. Returns the shim's status (0, or
        MX_NOT_UNIFIED when an array is outside unified memory)."""
        cdef uint64_t addrs[MAX_ARRAYS]
        cdef uint32_t size_bytes = 8
        cdef Py_ssize_t i, k = len(arrays)
        if k > MAX_ARRAYS:
            return -4
        for i in range(k):
            addrs[i] = <uint64_t><uintptr_t>cnp.PyArray_DATA(<cnp.ndarray>arrays[i])
        return self.fn(<void *>kernel, <void *>stream, (n + work - 1) // work, self.threadgroup,
                       addrs, <int>k, &n, &size_bytes, 1)

    def aligned(self, tuple arrays, uint64_t mask, uint64_t work):
        """Whether every array j with bit j of `mask` set starts on a boundary of `work`
        of its elements (the wide-load kernels' MxVec alignment)."""
        cdef Py_ssize_t i
        cdef cnp.ndarray a
        for i in range(len(arrays)):
            if (mask >> i) & 1:
                a = <cnp.ndarray>arrays[i]
                if (<uintptr_t>cnp.PyArray_DATA(a)) % (<uint64_t>cnp.PyArray_ITEMSIZE(a) * work):
                    return False
        return True
