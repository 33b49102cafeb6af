"""(b) Large elementwise ops on 4M float32 elements (target: mx within 15% of NumPy)."""
import operator

import pytest


N = 4 * 1024 * 1024
VS_NUMPY = {"vs": "numpy", "max_ratio": 1.15}


@pytest.mark.parametrize("name, fn", [pytest.param("add", operator.add, id="add"),
                                      pytest.param("multiply", operator.mul, id="multiply")])
def test_binary(timed, backend, data, name, fn):
    a, b = backend.to(data((N,), 1)), backend.to(data((N,), 2))
    timed(f"b: {name} 4M float32", fn, a, b, target=VS_NUMPY)


def test_exp(timed, backend, data):
    backend.require("exp")
    exp = backend.xp.exp
    timed("b: exp 4M float32", exp, backend.to(data((N,), 3)), target=VS_NUMPY)
