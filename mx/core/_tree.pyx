# cython: language_level=3
"""Walking Python trees (lists, tuples, dicts and their subclasses) without recursion."""
from mx.core._array cimport array


def collect_arrays(tuple trees):
    """Every mx array inside `trees`, in depth-first order (used by eval)."""
    cdef list out = []
    cdef list stack = list(reversed(trees))
    cdef object x
    while stack:
        x = stack.pop()
        if isinstance(x, array):
            out.append(x)
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
    return out
