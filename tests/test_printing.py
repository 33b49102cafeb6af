"""repr/str of arrays against strings recorded from real MLX, and the print options."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import mx.core as mx
from mx.core import printing

DTYPE_NAMES = ["bool", "uint8", "uint16", "uint32", "uint64", "int8", "int16", "int32",
               "int64", "float16", "bfloat16", "float32", "float64", "complex64"]


@pytest.fixture(autouse=True)
def _default_options():
    mx.set_printoptions()
    yield
    mx.set_printoptions()


# (construction, repr, str) recorded from MLX 0.32.4 (`import mlx.core as mx`)
CASES = [
    ('mx.array([1, 2, 3])',
     'array([1, 2, 3], dtype=int32)',
     'array([1, 2, 3], dtype=int32)'),
    ('mx.array(7)',
     'array(7, dtype=int32)',
     'array(7, dtype=int32)'),
    ('mx.array([-1, 10, 100])',
     'array([-1, 10, 100], dtype=int32)',
     'array([-1, 10, 100], dtype=int32)'),
    ('mx.array([[1, 2], [30, 4]])',
     'array([[1, 2],\n       [30, 4]], dtype=int32)',
     'array([[1, 2],\n       [30, 4]], dtype=int32)'),
    ('mx.array([1, -2, 127, -128], dtype=mx.int8)',
     'array([1, -2, 127, -128], dtype=int8)',
     'array([1, -2, 127, -128], dtype=int8)'),
    ('mx.array([0, 250, 255], dtype=mx.uint8)',
     'array([0, 250, 255], dtype=uint8)',
     'array([0, 250, 255], dtype=uint8)'),
    ('mx.array([-32768, 32767], dtype=mx.int16)',
     'array([-32768, 32767], dtype=int16)',
     'array([-32768, 32767], dtype=int16)'),
    ('mx.array([0, 65535], dtype=mx.uint16)',
     'array([0, 65535], dtype=uint16)',
     'array([0, 65535], dtype=uint16)'),
    ('mx.array([0, 4294967295], dtype=mx.uint32)',
     'array([0, 4294967295], dtype=uint32)',
     'array([0, 4294967295], dtype=uint32)'),
    ('mx.array(np.array([9223372036854775807, -9223372036854775808]), dtype=mx.int64)',
     'array([9223372036854775807, -9223372036854775808], dtype=int64)',
     'array([9223372036854775807, -9223372036854775808], dtype=int64)'),
    ('mx.array(np.array([0, 18446744073709551615], dtype=np.uint64), dtype=mx.uint64)',
     'array([0, 18446744073709551615], dtype=uint64)',
     'array([0, 18446744073709551615], dtype=uint64)'),
    ('mx.array(2**40)',
     'array(1099511627776, dtype=int64)',
     'array(1099511627776, dtype=int64)'),
    ('mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    ('mx.array(True)',
     'array(True, dtype=bool)',
     'array(True, dtype=bool)'),
    ('mx.array(False)',
     'array(False, dtype=bool)',
     'array(False, dtype=bool)'),
    ('mx.array([[True], [False]])',
     'array([[True],\n       [False]], dtype=bool)',
     'array([[True],\n       [False]], dtype=bool)'),
    ('mx.array(2.36788)',
     'array(2.36788, dtype=float32)',
     'array(2.36788, dtype=float32)'),
    ('mx.array([1.5, 2])',
     'array([1.5, 2], dtype=float32)',
     'array([1.5, 2], dtype=float32)'),
    ('mx.array([1.0, 2.0])',
     'array([1, 2], dtype=float32)',
     'array([1, 2], dtype=float32)'),
    ('mx.array(3.0)',
     'array(3, dtype=float32)',
     'array(3, dtype=float32)'),
    ('mx.array([0.1, 0.2, 1 / 3])',
     'array([0.1, 0.2, 0.333333], dtype=float32)',
     'array([0.1, 0.2, 0.333333], dtype=float32)'),
    ('mx.array(-0.0)',
     'array(-0, dtype=float32)',
     'array(-0, dtype=float32)'),
    ('mx.array([-1.5, 0.0, 2.25])',
     'array([-1.5, 0, 2.25], dtype=float32)',
     'array([-1.5, 0, 2.25], dtype=float32)'),
    ("mx.array([float('nan'), float('inf'), -float('inf')])",
     'array([nan, inf, -inf], dtype=float32)',
     'array([nan, inf, -inf], dtype=float32)'),
    ('mx.array(np.array([-np.nan, np.nan], dtype=np.float32))',
     'array([-nan, nan], dtype=float32)',
     'array([-nan, nan], dtype=float32)'),
    ('mx.array([1e10, 1e-10, 123456789.0, 1234567.0, 123456.0, 0.0001, 0.00001])',
     'array([1e+10, 1e-10, 1.23457e+08, ..., 123456, 0.0001, 1e-05], dtype=float32)',
     'array([1e+10, 1e-10, 1.23457e+08, ..., 123456, 0.0001, 1e-05], dtype=float32)'),
    ('mx.array([1e-3, 1e-4, 1e-5, 999999.4, 999999.5, 1e6])',
     'array([0.001, 0.0001, 1e-05, 999999, 1e+06, 1e+06], dtype=float32)',
     'array([0.001, 0.0001, 1e-05, 999999, 1e+06, 1e+06], dtype=float32)'),
    ('mx.array([100000.0, 1e6, 1e15, 1e16, 3e38])',
     'array([100000, 1e+06, 1e+15, 1e+16, 3e+38], dtype=float32)',
     'array([100000, 1e+06, 1e+15, 1e+16, 3e+38], dtype=float32)'),
    ('mx.array(123456.7)',
     'array(123457, dtype=float32)',
     'array(123457, dtype=float32)'),
    ('mx.array(0.000123456789)',
     'array(0.000123457, dtype=float32)',
     'array(0.000123457, dtype=float32)'),
    ('mx.array(np.array(1.5e-45, dtype=np.float32))',
     'array(1.4013e-45, dtype=float32)',
     'array(1.4013e-45, dtype=float32)'),
    ('mx.array(np.float32(1e20))',
     'array(1e+20, dtype=float32)',
     'array(1e+20, dtype=float32)'),
    ('mx.array([1 / 3, 65504.0, -2.5], dtype=mx.float16)',
     'array([0.333252, 65504, -2.5], dtype=float16)',
     'array([0.333252, 65504, -2.5], dtype=float16)'),
    ('mx.array([6e-8, 1e-4, 1000.5], dtype=mx.float16)',
     'array([5.96046e-08, 0.000100017, 1000.5], dtype=float16)',
     'array([5.96046e-08, 0.000100017, 1000.5], dtype=float16)'),
    ('mx.array(np.array([np.nan, -np.nan, np.inf], dtype=np.float16), dtype=mx.float16)',
     'array([nan, -nan, inf], dtype=float16)',
     'array([nan, -nan, inf], dtype=float16)'),
    ('mx.array([1 / 3, 1.0, 2.5], dtype=mx.bfloat16)',
     'array([0.333984, 1, 2.5], dtype=bfloat16)',
     'array([0.333984, 1, 2.5], dtype=bfloat16)'),
    ('mx.array([-1.5e-5, 7e5, 3e38], dtype=mx.bfloat16)',
     'array([-1.50204e-05, 700416, 3.00406e+38], dtype=bfloat16)',
     'array([-1.50204e-05, 700416, 3.00406e+38], dtype=bfloat16)'),
    ('mx.array(1 / 3, dtype=mx.bfloat16)',
     'array(0.333984, dtype=bfloat16)',
     'array(0.333984, dtype=bfloat16)'),
    ('mx.array([1 / 3, 1e-7, 1e300], dtype=mx.float64)',
     'array([0.333333, 1e-07, 1e+300], dtype=float64)',
     'array([0.333333, 1e-07, 1e+300], dtype=float64)'),
    ('mx.array(np.array([-np.nan, -np.inf, 5e-324]), dtype=mx.float64)',
     'array([-nan, -inf, 4.94066e-324], dtype=float64)',
     'array([-nan, -inf, 4.94066e-324], dtype=float64)'),
    ('mx.array(1e-7, dtype=mx.float64)',
     'array(1e-07, dtype=float64)',
     'array(1e-07, dtype=float64)'),
    ('mx.array([1.5 + 2j, 3 - 4j])',
     'array([1.5+2j, 3-4j], dtype=complex64)',
     'array([1.5+2j, 3-4j], dtype=complex64)'),
    ('mx.array(1 + 0j)',
     'array(1+0j, dtype=complex64)',
     'array(1+0j, dtype=complex64)'),
    ('mx.array(-1 - 1j)',
     'array(-1-1j, dtype=complex64)',
     'array(-1-1j, dtype=complex64)'),
    ('mx.array(complex(-0.0, -0.0))',
     'array(-0+-0j, dtype=complex64)',
     'array(-0+-0j, dtype=complex64)'),
    ("mx.array(complex(float('nan'), float('inf')))",
     'array(nan+infj, dtype=complex64)',
     'array(nan+infj, dtype=complex64)'),
    ('mx.array(np.array([complex(-np.nan, -np.nan), complex(1, -np.inf)], dtype=np.complex64))',
     'array([-nan+-nanj, 1-infj], dtype=complex64)',
     'array([-nan+-nanj, 1-infj], dtype=complex64)'),
    ('mx.array([[1 + 2j, 3], [1e-7j, 1e7 + 0.5j]])',
     'array([[1+2j, 3+0j],\n       [0+1e-07j, 1e+07+0.5j]], dtype=complex64)',
     'array([[1+2j, 3+0j],\n       [0+1e-07j, 1e+07+0.5j]], dtype=complex64)'),
    ('mx.array([1, 2], dtype=mx.complex64)',
     'array([1+0j, 2+0j], dtype=complex64)',
     'array([1+0j, 2+0j], dtype=complex64)'),
    ('mx.array(np.arange(24, dtype=np.int32).reshape(2, 3, 4))',
     'array([[[0, 1, 2, 3],\n        [4, 5, 6, 7],\n        [8, 9, 10, 11]],\n       [[12, 13, 14, 15],\n        [16, 17, 18, 19],\n        [20, 21, 22, 23]]], dtype=int32)',
     'array([[[0, 1, 2, 3],\n        [4, 5, 6, 7],\n        [8, 9, 10, 11]],\n       [[12, 13, 14, 15],\n        [16, 17, 18, 19],\n        [20, 21, 22, 23]]], dtype=int32)'),
    ('mx.array(np.arange(16, dtype=np.int32).reshape(2, 2, 2, 2))',
     'array([[[[0, 1],\n         [2, 3]],\n        [[4, 5],\n         [6, 7]]],\n       [[[8, 9],\n         [10, 11]],\n        [[12, 13],\n         [14, 15]]]], dtype=int32)',
     'array([[[[0, 1],\n         [2, 3]],\n        [[4, 5],\n         [6, 7]]],\n       [[[8, 9],\n         [10, 11]],\n        [[12, 13],\n         [14, 15]]]], dtype=int32)'),
    ('mx.array(np.ones((1, 1, 1), dtype=np.float32))',
     'array([[[1]]], dtype=float32)',
     'array([[[1]]], dtype=float32)'),
    ('mx.array(np.ones((3, 1), dtype=np.float32))',
     'array([[1],\n       [1],\n       [1]], dtype=float32)',
     'array([[1],\n       [1],\n       [1]], dtype=float32)'),
    ('mx.array(np.ones((1,) * 9, dtype=np.float32))',
     'array([[[[[[[[[1]]]]]]]]], dtype=float32)',
     'array([[[[[[[[[1]]]]]]]]], dtype=float32)'),
    ('mx.array(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))',
     'array([[-1, -0.6, -0.2],\n       [0.2, 0.6, 1]], dtype=float32)',
     'array([[-1, -0.6, -0.2],\n       [0.2, 0.6, 1]], dtype=float32)'),
    ('mx.array(np.arange(12, dtype=np.int32).reshape(3, 4).T)',
     'array([[0, 4, 8],\n       [1, 5, 9],\n       [2, 6, 10],\n       [3, 7, 11]], dtype=int32)',
     'array([[0, 4, 8],\n       [1, 5, 9],\n       [2, 6, 10],\n       [3, 7, 11]], dtype=int32)'),
    ('mx.array(np.arange(6, dtype=np.int32))',
     'array([0, 1, 2, 3, 4, 5], dtype=int32)',
     'array([0, 1, 2, 3, 4, 5], dtype=int32)'),
    ('mx.array(np.arange(7, dtype=np.int32))',
     'array([0, 1, 2, ..., 4, 5, 6], dtype=int32)',
     'array([0, 1, 2, ..., 4, 5, 6], dtype=int32)'),
    ('mx.array(np.arange(1000, dtype=np.int32))',
     'array([0, 1, 2, ..., 997, 998, 999], dtype=int32)',
     'array([0, 1, 2, ..., 997, 998, 999], dtype=int32)'),
    ('mx.array(np.arange(2000, dtype=np.int32))',
     'array([0, 1, 2, ..., 1997, 1998, 1999], dtype=int32)',
     'array([0, 1, 2, ..., 1997, 1998, 1999], dtype=int32)'),
    ('mx.array(np.arange(14, dtype=np.int32).reshape(7, 2))',
     'array([[0, 1],\n       [2, 3],\n       [4, 5],\n       ...,\n       [8, 9],\n       [10, 11],\n       [12, 13]], dtype=int32)',
     'array([[0, 1],\n       [2, 3],\n       [4, 5],\n       ...,\n       [8, 9],\n       [10, 11],\n       [12, 13]], dtype=int32)'),
    ('mx.array(np.arange(14, dtype=np.int32).reshape(2, 7))',
     'array([[0, 1, 2, ..., 4, 5, 6],\n       [7, 8, 9, ..., 11, 12, 13]], dtype=int32)',
     'array([[0, 1, 2, ..., 4, 5, 6],\n       [7, 8, 9, ..., 11, 12, 13]], dtype=int32)'),
    ('mx.array(np.arange(100, dtype=np.int32).reshape(10, 10))',
     'array([[0, 1, 2, ..., 7, 8, 9],\n       [10, 11, 12, ..., 17, 18, 19],\n       [20, 21, 22, ..., 27, 28, 29],\n       ...,\n       [70, 71, 72, ..., 77, 78, 79],\n       [80, 81, 82, ..., 87, 88, 89],\n       [90, 91, 92, ..., 97, 98, 99]], dtype=int32)',
     'array([[0, 1, 2, ..., 7, 8, 9],\n       [10, 11, 12, ..., 17, 18, 19],\n       [20, 21, 22, ..., 27, 28, 29],\n       ...,\n       [70, 71, 72, ..., 77, 78, 79],\n       [80, 81, 82, ..., 87, 88, 89],\n       [90, 91, 92, ..., 97, 98, 99]], dtype=int32)'),
    ('mx.array(np.arange(49, dtype=np.int32).reshape(7, 7).T)',
     'array([[0, 7, 14, ..., 28, 35, 42],\n       [1, 8, 15, ..., 29, 36, 43],\n       [2, 9, 16, ..., 30, 37, 44],\n       ...,\n       [4, 11, 18, ..., 32, 39, 46],\n       [5, 12, 19, ..., 33, 40, 47],\n       [6, 13, 20, ..., 34, 41, 48]], dtype=int32)',
     'array([[0, 7, 14, ..., 28, 35, 42],\n       [1, 8, 15, ..., 29, 36, 43],\n       [2, 9, 16, ..., 30, 37, 44],\n       ...,\n       [4, 11, 18, ..., 32, 39, 46],\n       [5, 12, 19, ..., 33, 40, 47],\n       [6, 13, 20, ..., 34, 41, 48]], dtype=int32)'),
    ('mx.array(np.arange(112, dtype=np.int32).reshape(2, 7, 8))',
     'array([[[0, 1, 2, ..., 5, 6, 7],\n        [8, 9, 10, ..., 13, 14, 15],\n        [16, 17, 18, ..., 21, 22, 23],\n        ...,\n        [32, 33, 34, ..., 37, 38, 39],\n        [40, 41, 42, ..., 45, 46, 47],\n        [48, 49, 50, ..., 53, 54, 55]],\n       [[56, 57, 58, ..., 61, 62, 63],\n        [64, 65, 66, ..., 69, 70, 71],\n        [72, 73, 74, ..., 77, 78, 79],\n        ...,\n        [88, 89, 90, ..., 93, 94, 95],\n        [96, 97, 98, ..., 101, 102, 103],\n        [104, 105, 106, ..., 109, 110, 111]]], dtype=int32)',
     'array([[[0, 1, 2, ..., 5, 6, 7],\n        [8, 9, 10, ..., 13, 14, 15],\n        [16, 17, 18, ..., 21, 22, 23],\n        ...,\n        [32, 33, 34, ..., 37, 38, 39],\n        [40, 41, 42, ..., 45, 46, 47],\n        [48, 49, 50, ..., 53, 54, 55]],\n       [[56, 57, 58, ..., 61, 62, 63],\n        [64, 65, 66, ..., 69, 70, 71],\n        [72, 73, 74, ..., 77, 78, 79],\n        ...,\n        [88, 89, 90, ..., 93, 94, 95],\n        [96, 97, 98, ..., 101, 102, 103],\n        [104, 105, 106, ..., 109, 110, 111]]], dtype=int32)'),
    ('mx.array(np.arange(8 * 2 * 7, dtype=np.int32).reshape(8, 2, 7))',
     'array([[[0, 1, 2, ..., 4, 5, 6],\n        [7, 8, 9, ..., 11, 12, 13]],\n       [[14, 15, 16, ..., 18, 19, 20],\n        [21, 22, 23, ..., 25, 26, 27]],\n       [[28, 29, 30, ..., 32, 33, 34],\n        [35, 36, 37, ..., 39, 40, 41]],\n       ...,\n       [[70, 71, 72, ..., 74, 75, 76],\n        [77, 78, 79, ..., 81, 82, 83]],\n       [[84, 85, 86, ..., 88, 89, 90],\n        [91, 92, 93, ..., 95, 96, 97]],\n       [[98, 99, 100, ..., 102, 103, 104],\n        [105, 106, 107, ..., 109, 110, 111]]], dtype=int32)',
     'array([[[0, 1, 2, ..., 4, 5, 6],\n        [7, 8, 9, ..., 11, 12, 13]],\n       [[14, 15, 16, ..., 18, 19, 20],\n        [21, 22, 23, ..., 25, 26, 27]],\n       [[28, 29, 30, ..., 32, 33, 34],\n        [35, 36, 37, ..., 39, 40, 41]],\n       ...,\n       [[70, 71, 72, ..., 74, 75, 76],\n        [77, 78, 79, ..., 81, 82, 83]],\n       [[84, 85, 86, ..., 88, 89, 90],\n        [91, 92, 93, ..., 95, 96, 97]],\n       [[98, 99, 100, ..., 102, 103, 104],\n        [105, 106, 107, ..., 109, 110, 111]]], dtype=int32)'),
    ('mx.array(np.linspace(0, 1, 10, dtype=np.float32))',
     'array([0, 0.111111, 0.222222, ..., 0.777778, 0.888889, 1], dtype=float32)',
     'array([0, 0.111111, 0.222222, ..., 0.777778, 0.888889, 1], dtype=float32)'),
    ('mx.array(np.arange(10) % 2 == 0)',
     'array([True, False, True, ..., False, True, False], dtype=bool)',
     'array([True, False, True, ..., False, True, False], dtype=bool)'),
    ('mx.array(np.arange(10, dtype=np.float32) * (1 + 1j))',
     'array([0+0j, 1+1j, 2+2j, ..., 7+7j, 8+8j, 9+9j], dtype=complex64)',
     'array([0+0j, 1+1j, 2+2j, ..., 7+7j, 8+8j, 9+9j], dtype=complex64)'),
    ('mx.add(mx.array([1, 2]), 1)',
     'array([2, 3], dtype=int32)',
     'array([2, 3], dtype=int32)'),
    ('mx.multiply(mx.array([[0.5, 1.5], [2.0, -3.0]]), 2)',
     'array([[1, 3],\n       [4, -6]], dtype=float32)',
     'array([[1, 3],\n       [4, -6]], dtype=float32)'),
    ('mx.sqrt(mx.array([2.0, 4.0]))',
     'array([1.41421, 2], dtype=float32)',
     'array([1.41421, 2], dtype=float32)'),
    ('mx.divide(mx.array([1.0, -1.0]), 0.0)',
     'array([inf, -inf], dtype=float32)',
     'array([inf, -inf], dtype=float32)'),
    ('mx.array(np.zeros((0,), dtype=np.float32))',
     'array([], dtype=float32)',
     'array([], dtype=float32)'),
    ('mx.array(np.zeros((2, 0), dtype=np.float32))',
     'array([[],\n       []], dtype=float32)',
     'array([[],\n       []], dtype=float32)'),
    ('mx.array(np.zeros((0, 3), dtype=np.float32))',
     'array([], dtype=float32)',
     'array([], dtype=float32)'),
    ('mx.array(np.zeros((7, 0), dtype=np.float32))',
     'array([[],\n       [],\n       [],\n       ...,\n       [],\n       [],\n       []], dtype=float32)',
     'array([[],\n       [],\n       [],\n       ...,\n       [],\n       [],\n       []], dtype=float32)'),
    ('mx.array(np.zeros((2, 0, 3), dtype=np.float32))',
     'array([[],\n       []], dtype=float32)',
     'array([[],\n       []], dtype=float32)'),
    ('mx.array(np.zeros((2, 3, 0), dtype=np.int32))',
     'array([[[],\n        [],\n        []],\n       [[],\n        [],\n        []]], dtype=int32)',
     'array([[[],\n        [],\n        []],\n       [[],\n        [],\n        []]], dtype=int32)'),
    ('mx.array(np.zeros((0,), dtype=bool))',
     'array([], dtype=bool)',
     'array([], dtype=bool)'),
    ('mx.array(np.zeros((8, 1, 0), dtype=np.float32))',
     'array([[[]],\n       [[]],\n       [[]],\n       ...,\n       [[]],\n       [[]],\n       [[]]], dtype=float32)',
     'array([[[]],\n       [[]],\n       [[]],\n       ...,\n       [[]],\n       [[]],\n       [[]]], dtype=float32)'),
]

# (precision, construction, repr, str) recorded from MLX 0.32.4 inside mx.printoptions(precision=...)
PRECISION_CASES = [
    (3, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0.333, 2.000, 1234567.000, ..., 123.456, 0.500, 1.250], dtype=float32)',
     'array([0.333, 2.000, 1234567.000, ..., 123.456, 0.500, 1.250], dtype=float32)'),
    (3, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0.333, 2.000, 123.438, ..., 1.250, -0.000, inf], dtype=float16)',
     'array([0.333, 2.000, 123.438, ..., 1.250, -0.000, inf], dtype=float16)'),
    (3, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0.334, 2.000, 123.500, 0.500, 1.250], dtype=bfloat16)',
     'array([0.334, 2.000, 123.500, 0.500, 1.250], dtype=bfloat16)'),
    (3, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0.333, 2.000, 1234567.000, ..., 123.456, 0.500, 1.250], dtype=float64)',
     'array([0.333, 2.000, 1234567.000, ..., 123.456, 0.500, 1.250], dtype=float64)'),
    (3, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1.000-0.333j, -2.500-0.000j, -0.000+-0.000j], dtype=complex64)',
     'array([1.000-0.333j, -2.500-0.000j, -0.000+-0.000j], dtype=complex64)'),
    (3, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (3, 'mx.array(2.5)',
     'array(2.500, dtype=float32)',
     'array(2.500, dtype=float32)'),
    (3, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (3, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    (0, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0, 2, 1234567, ..., 123, 0, 1], dtype=float32)',
     'array([0, 2, 1234567, ..., 123, 0, 1], dtype=float32)'),
    (0, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0, 2, 123, ..., 1, -0, inf], dtype=float16)',
     'array([0, 2, 123, ..., 1, -0, inf], dtype=float16)'),
    (0, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0, 2, 124, 0, 1], dtype=bfloat16)',
     'array([0, 2, 124, 0, 1], dtype=bfloat16)'),
    (0, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0, 2, 1234567, ..., 123, 0, 1], dtype=float64)',
     'array([0, 2, 1234567, ..., 123, 0, 1], dtype=float64)'),
    (0, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1-0j, -2-0j, -0+-0j], dtype=complex64)',
     'array([1-0j, -2-0j, -0+-0j], dtype=complex64)'),
    (0, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (0, 'mx.array(2.5)',
     'array(2, dtype=float32)',
     'array(2, dtype=float32)'),
    (0, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (0, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    (1, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0.3, 2.0, 1234567.0, ..., 123.5, 0.5, 1.2], dtype=float32)',
     'array([0.3, 2.0, 1234567.0, ..., 123.5, 0.5, 1.2], dtype=float32)'),
    (1, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0.3, 2.0, 123.4, ..., 1.2, -0.0, inf], dtype=float16)',
     'array([0.3, 2.0, 123.4, ..., 1.2, -0.0, inf], dtype=float16)'),
    (1, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0.3, 2.0, 123.5, 0.5, 1.2], dtype=bfloat16)',
     'array([0.3, 2.0, 123.5, 0.5, 1.2], dtype=bfloat16)'),
    (1, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0.3, 2.0, 1234567.0, ..., 123.5, 0.5, 1.2], dtype=float64)',
     'array([0.3, 2.0, 1234567.0, ..., 123.5, 0.5, 1.2], dtype=float64)'),
    (1, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1.0-0.3j, -2.5-0.0j, -0.0+-0.0j], dtype=complex64)',
     'array([1.0-0.3j, -2.5-0.0j, -0.0+-0.0j], dtype=complex64)'),
    (1, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (1, 'mx.array(2.5)',
     'array(2.5, dtype=float32)',
     'array(2.5, dtype=float32)'),
    (1, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (1, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    (10, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0.3333333433, 2.0000000000, 1234567.0000000000, ..., 123.4560012817, 0.5000000000, 1.2500000000], dtype=float32)',
     'array([0.3333333433, 2.0000000000, 1234567.0000000000, ..., 123.4560012817, 0.5000000000, 1.2500000000], dtype=float32)'),
    (10, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0.3332519531, 2.0000000000, 123.4375000000, ..., 1.2500000000, -0.0000000000, inf], dtype=float16)',
     'array([0.3332519531, 2.0000000000, 123.4375000000, ..., 1.2500000000, -0.0000000000, inf], dtype=float16)'),
    (10, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0.3339843750, 2.0000000000, 123.5000000000, 0.5000000000, 1.2500000000], dtype=bfloat16)',
     'array([0.3339843750, 2.0000000000, 123.5000000000, 0.5000000000, 1.2500000000], dtype=bfloat16)'),
    (10, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0.3333333333, 2.0000000000, 1234567.0000000000, ..., 123.4560000000, 0.5000000000, 1.2500000000], dtype=float64)',
     'array([0.3333333333, 2.0000000000, 1234567.0000000000, ..., 123.4560000000, 0.5000000000, 1.2500000000], dtype=float64)'),
    (10, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1.0000000000-0.3333333433j, -2.5000000000-0.0000001000j, -0.0000000000+-0.0000000000j], dtype=complex64)',
     'array([1.0000000000-0.3333333433j, -2.5000000000-0.0000001000j, -0.0000000000+-0.0000000000j], dtype=complex64)'),
    (10, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (10, 'mx.array(2.5)',
     'array(2.5000000000, dtype=float32)',
     'array(2.5000000000, dtype=float32)'),
    (10, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (10, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    (20, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0.33333334326744079590, 2.00000000000000000000, 1234567.00000000000000000000, ..., 123.45600128173828125000, 0.50000000000000000000, 1.25000000000000000000], dtype=float32)',
     'array([0.33333334326744079590, 2.00000000000000000000, 1234567.00000000000000000000, ..., 123.45600128173828125000, 0.50000000000000000000, 1.25000000000000000000], dtype=float32)'),
    (20, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0.33325195312500000000, 2.00000000000000000000, 123.43750000000000000000, ..., 1.25000000000000000000, -0.00000000000000000000, inf], dtype=float16)',
     'array([0.33325195312500000000, 2.00000000000000000000, 123.43750000000000000000, ..., 1.25000000000000000000, -0.00000000000000000000, inf], dtype=float16)'),
    (20, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0.33398437500000000000, 2.00000000000000000000, 123.50000000000000000000, 0.50000000000000000000, 1.25000000000000000000], dtype=bfloat16)',
     'array([0.33398437500000000000, 2.00000000000000000000, 123.50000000000000000000, 0.50000000000000000000, 1.25000000000000000000], dtype=bfloat16)'),
    (20, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0.33333333333333331483, 2.00000000000000000000, 1234567.00000000000000000000, ..., 123.45600000000000306954, 0.50000000000000000000, 1.25000000000000000000], dtype=float64)',
     'array([0.33333333333333331483, 2.00000000000000000000, 1234567.00000000000000000000, ..., 123.45600000000000306954, 0.50000000000000000000, 1.25000000000000000000], dtype=float64)'),
    (20, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1.00000000000000000000-0.33333334326744079590j, -2.50000000000000000000-0.00000010000000116861j, -0.00000000000000000000+-0.00000000000000000000j], dtype=complex64)',
     'array([1.00000000000000000000-0.33333334326744079590j, -2.50000000000000000000-0.00000010000000116861j, -0.00000000000000000000+-0.00000000000000000000j], dtype=complex64)'),
    (20, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (20, 'mx.array(2.5)',
     'array(2.50000000000000000000, dtype=float32)',
     'array(2.50000000000000000000, dtype=float32)'),
    (20, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (20, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
    (-2, "mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, -0.0, float('nan'), float('inf'), 123.456, 0.5, 1.25])",
     'array([0.333333, 2.000000, 1234567.000000, ..., 123.456001, 0.500000, 1.250000], dtype=float32)',
     'array([0.333333, 2.000000, 1234567.000000, ..., 123.456001, 0.500000, 1.250000], dtype=float32)'),
    (-2, "mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25, -0.0, float('inf')], dtype=mx.float16)",
     'array([0.333252, 2.000000, 123.437500, ..., 1.250000, -0.000000, inf], dtype=float16)',
     'array([0.333252, 2.000000, 123.437500, ..., 1.250000, -0.000000, inf], dtype=float16)'),
    (-2, 'mx.array([1 / 3, 2.0, 123.456, 0.5, 1.25], dtype=mx.bfloat16)',
     'array([0.333984, 2.000000, 123.500000, 0.500000, 1.250000], dtype=bfloat16)',
     'array([0.333984, 2.000000, 123.500000, 0.500000, 1.250000], dtype=bfloat16)'),
    (-2, 'mx.array([1 / 3, 2.0, 1234567.0, 1e-7, 1e20, 123.456, 0.5, 1.25], dtype=mx.float64)',
     'array([0.333333, 2.000000, 1234567.000000, ..., 123.456000, 0.500000, 1.250000], dtype=float64)',
     'array([0.333333, 2.000000, 1234567.000000, ..., 123.456000, 0.500000, 1.250000], dtype=float64)'),
    (-2, 'mx.array([1 + 1 / 3j, -2.5 - 1e-7j, complex(-0.0, -0.0)])',
     'array([1.000000-0.333333j, -2.500000-0.000000j, -0.000000+-0.000000j], dtype=complex64)',
     'array([1.000000-0.333333j, -2.500000-0.000000j, -0.000000+-0.000000j], dtype=complex64)'),
    (-2, 'mx.array(np.array([-np.nan, -np.inf], dtype=np.float32))',
     'array([-nan, -inf], dtype=float32)',
     'array([-nan, -inf], dtype=float32)'),
    (-2, 'mx.array(2.5)',
     'array(2.500000, dtype=float32)',
     'array(2.500000, dtype=float32)'),
    (-2, 'mx.array([[1, 2], [3, 4]])',
     'array([[1, 2],\n       [3, 4]], dtype=int32)',
     'array([[1, 2],\n       [3, 4]], dtype=int32)'),
    (-2, 'mx.array([True, False])',
     'array([True, False], dtype=bool)',
     'array([True, False], dtype=bool)'),
]


# -- recorded tables ---------------------------------------------------------------------------

def _build(expr):
    return eval(expr, {"mx": mx, "np": np})


@pytest.mark.parametrize("expr, want_repr, want_str", CASES, ids=[c[0] for c in CASES])
def test_matches_mlx(expr, want_repr, want_str):
    a = _build(expr)
    assert repr(a) == want_repr
    assert str(a) == want_str


@pytest.mark.parametrize("precision, expr, want_repr, want_str", PRECISION_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in PRECISION_CASES])
def test_precision_matches_mlx(precision, expr, want_repr, want_str):
    a = _build(expr)
    with mx.printoptions(precision=precision):
        assert repr(a) == want_repr
        assert str(a) == want_str
    # and back to the default form afterwards
    assert repr(a) == dict((c[0], c[1]) for c in CASES).get(expr, repr(a))


def test_tables_cover_every_dtype():
    names = {_build(c[0]).dtype.name for c in CASES}
    assert names == set(DTYPE_NAMES)


def test_print_and_format_use_str(capsys):
    a = mx.array([[1.5, 2], [3, -4]])
    print(a)
    assert capsys.readouterr().out == "array([[1.5, 2],\n       [3, -4]], dtype=float32)\n"
    assert f"{a}" == str(a)
    assert f"{mx.array(0.25)}" == "array(0.25, dtype=float32)"


def test_printing_does_not_change_the_array():
    x = np.arange(100, dtype=np.float32).reshape(10, 10)
    a = mx.array(x)
    repr(a)
    np.testing.assert_array_equal(np.asarray(a), x)
    assert a.shape == (10, 10) and a.dtype == mx.float32


# -- properties --------------------------------------------------------------------------------

def _parse(text):
    """Evaluate printed text back into (nested list, dtype name)."""
    ns = {"array": lambda v, dtype: (v, dtype), "nan": math.nan, "inf": math.inf,
          "True": True, "False": False}
    ns.update({n: n for n in DTYPE_NAMES})
    return eval(text, ns)


_finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
_small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.int32, _small_shapes))
def test_int_roundtrip(x):
    values, name = _parse(repr(mx.array(x)))
    assert name == "int32"
    got = np.array(values, dtype=np.int32).reshape(x.shape)  # [] loses inner dims
    np.testing.assert_array_equal(got, x)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, _small_shapes, elements=st.floats(width=32)))
def test_float_roundtrip_six_significant_digits(x):
    values, name = _parse(repr(mx.array(x)))
    assert name == "float32"
    got = np.array(values, dtype=np.float64).reshape(x.shape)
    np.testing.assert_allclose(got, x.astype(np.float64), rtol=5.1e-6, atol=0, equal_nan=True)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, _small_shapes,
                  elements=st.floats(-1e6, 1e6, allow_nan=False)),
       st.integers(0, 8))
def test_fixed_precision_roundtrip(x, p):
    with mx.printoptions(precision=p):
        text = repr(mx.array(x, dtype=mx.float64))
    values, _ = _parse(text)
    got = np.array(values, dtype=np.float64).reshape(x.shape)
    np.testing.assert_allclose(got, x, rtol=1e-12, atol=0.5 * 10.0 ** -p * (1 + 1e-9))
    # every printed number has exactly p decimals
    for tok in re.findall(r"-?\d+(?:\.\d*)?", text.split(", dtype=")[0]):
        assert len(tok.partition(".")[2]) == p


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.complex64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=6),
                  elements=st.builds(complex, _finite32, _finite32)))
def test_complex_roundtrip(x):
    values, name = _parse(repr(mx.array(x)))
    assert name == "complex64"
    got = np.array(values, dtype=np.complex128).reshape(x.shape)
    np.testing.assert_allclose(got.real, x.real, rtol=5.1e-6, atol=1e-45)
    np.testing.assert_allclose(got.imag, x.imag, rtol=5.1e-6, atol=1e-45)


@settings(max_examples=60, deadline=None)
@given(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=9))
def test_summarised_layout(shape):
    x = np.arange(math.prod(shape), dtype=np.int32).reshape(shape)
    text = repr(mx.array(x))
    body = text[len("array("):-len(", dtype=int32)")]
    # one "..." per printed row of each axis longer than 6, which shows its 3 + 3 edge items
    kept = [min(n, 6) for n in shape]
    rows_before = [math.prod(kept[:d]) for d in range(len(shape))]
    assert body.count("...") == sum(r for r, n in zip(rows_before, shape) if n > 6)
    want = x
    for ax, n in enumerate(shape):
        if n > 6:
            want = np.take(want, [0, 1, 2, n - 3, n - 2, n - 1], axis=ax)
    assert [int(t) for t in re.findall(r"\d+", body)] == want.ravel().tolist()
    # nested rows start on their own line, indented past "array(" and the open brackets
    for line in body.split("\n")[1:]:
        depth = len(line) - len(line.lstrip(" "))
        assert 7 <= depth < 7 + len(shape)
        assert line.lstrip(" ")[0] in "[."


# -- print options -----------------------------------------------------------------------------

def test_exported_names():
    for name in ("set_printoptions", "printoptions", "get_printoptions", "PrintOptions"):
        assert getattr(mx, name) is getattr(printing, name)


def test_default_options():
    assert mx.get_printoptions().precision == -1
    assert repr(mx.array(1 / 3)) == "array(0.333333, dtype=float32)"


def test_set_printoptions_persists_and_resets():
    a = mx.array(1 / 3)
    mx.set_printoptions(precision=4)
    assert mx.get_printoptions().precision == 4
    assert repr(a) == "array(0.3333, dtype=float32)"
    assert repr(a) == "array(0.3333, dtype=float32)"
    mx.set_printoptions(2)  # positional, like MLX
    assert repr(a) == "array(0.33, dtype=float32)"
    mx.set_printoptions()
    assert mx.get_printoptions().precision == -1
    assert repr(a) == "array(0.333333, dtype=float32)"


def test_set_printoptions_accepts_index_like_ints():
    mx.set_printoptions(precision=np.int64(3))
    assert mx.get_printoptions().precision == 3
    mx.set_printoptions(precision=True)
    assert mx.get_printoptions().precision == 1
    mx.set_printoptions(precision=-2 ** 31)
    assert mx.get_printoptions().precision == -2 ** 31
    # any negative precision other than -1 means fixed notation with 6 decimals (as MLX)
    assert repr(mx.array([1 / 3, 1e20])) == \
        "array([0.333333, 100000002004087734272.000000], dtype=float32)"


def test_printoptions_context_restores():
    a = mx.array(1 / 3)
    ctx = mx.printoptions(precision=2)
    assert isinstance(ctx, mx._PrintOptionsContext)
    assert repr(a) == "array(0.333333, dtype=float32)"  # not applied until entered
    with ctx as entered:
        assert entered is ctx
        assert repr(a) == "array(0.33, dtype=float32)"
        assert mx.get_printoptions().precision == 2
    assert repr(a) == "array(0.333333, dtype=float32)"
    with ctx:  # reusable
        assert repr(a) == "array(0.33, dtype=float32)"
    assert mx.get_printoptions().precision == -1


def test_printoptions_nested_and_over_a_global_setting():
    a = mx.array(1 / 3)
    mx.set_printoptions(precision=5)
    with mx.printoptions(precision=2):
        with mx.printoptions(precision=4):
            assert repr(a) == "array(0.3333, dtype=float32)"
        assert repr(a) == "array(0.33, dtype=float32)"
        with mx.printoptions():  # the default -1 applies inside, as in MLX
            assert repr(a) == "array(0.333333, dtype=float32)"
    assert repr(a) == "array(0.33333, dtype=float32)"


def test_printoptions_restores_on_error():
    with pytest.raises(KeyError):
        with mx.printoptions(precision=1):
            raise KeyError("boom")
    assert mx.get_printoptions().precision == -1


def test_printoptions_same_object_reentered():
    ctx = mx.printoptions(precision=3)
    mx.set_printoptions(precision=7)
    with ctx:
        mx.set_printoptions(precision=1)
        with ctx:
            assert mx.get_printoptions().precision == 3
        assert mx.get_printoptions().precision == 1
    assert mx.get_printoptions().precision == 7


def test_get_printoptions_is_a_copy():
    opts = mx.get_printoptions()
    opts.precision = 2
    assert opts.precision == 2
    assert mx.get_printoptions().precision == -1
    assert mx.PrintOptions().precision == -1
    assert mx.PrintOptions(3).precision == 3
    with mx._PrintOptionsContext(mx.PrintOptions(precision=3)):
        assert repr(mx.array(1 / 3)) == "array(0.333, dtype=float32)"


@pytest.mark.parametrize("fn", ["set_printoptions", "printoptions", "PrintOptions"])
@pytest.mark.parametrize("bad, what", [(1.5, "float"), ("3", "str"), (None, "NoneType")])
def test_precision_type_errors(fn, bad, what):
    with pytest.raises(TypeError, match=rf"\[{fn}\] precision must be an int; got {what}"):
        getattr(mx, fn)(precision=bad)
    assert mx.get_printoptions().precision == -1


@pytest.mark.parametrize("bad", [2 ** 31, -2 ** 31 - 1])
def test_precision_range_errors(bad):
    with pytest.raises(TypeError, match=rf"\[set_printoptions\] precision must fit in a 32-bit int; got {bad}"):
        mx.set_printoptions(precision=bad)
    assert mx.get_printoptions().precision == -1


def test_precision_setter_error():
    opts = mx.PrintOptions()
    with pytest.raises(TypeError, match=r"\[PrintOptions\] precision must be an int; got float"):
        opts.precision = 2.0
    assert opts.precision == -1


def test_context_needs_print_options():
    with pytest.raises(TypeError, match=r"\[printoptions\] expected PrintOptions; got int"):
        mx._PrintOptionsContext(3)


def test_unknown_option_rejected():
    # MLX has no threshold/edgeitems/linewidth options
    with pytest.raises(TypeError):
        mx.set_printoptions(threshold=10)
    with pytest.raises(TypeError):
        mx.printoptions(linewidth=10)
