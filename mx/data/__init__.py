"""Small data sets for examples and tests, generated deterministically at run time."""
from mx.data import digits

__all__ = ["digits"]
