"""(c) Reductions of a 2048x2048 float32 matrix (target: mx within 15% of NumPy)."""
import pytest


SHAPE = (2048, 2048)

CASES = {
    "sum all": ("sum", lambda be, x: be.sum(x)),
    "sum axis 0": ("sum", lambda be, x: be.sum(x, axis=0)),
    "sum axis 1": ("sum", lambda be, x: be.sum(x, axis=1)),
    "mean all": ("mean", lambda be, x: be.mean(x)),
    "max all": ("max", lambda be, x: be.max(x)),
    "argmax all": ("argmax", lambda be, x: be.argmax(x)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_reduction(timed, backend, data, case):
    op, fn = CASES[case]
    backend.require(op)
    x = backend.to(data(SHAPE, 4))
    timed(f"c: {case} 2048x2048 float32", fn, backend, x,
          target={"vs": "numpy", "max_ratio": 1.15})
