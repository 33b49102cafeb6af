"""(being written) repr/str of arrays and print options."""
import numpy as np


def array_repr(a):
    return f"array({np.asarray(a)!r}, dtype={a.dtype.name})"


def array_str(a):
    return str(np.asarray(a))

__all__ = []
