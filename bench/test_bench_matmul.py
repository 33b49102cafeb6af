"""(d) Square float32 matrix products (target: mx within 15% of NumPy)."""
import pytest


@pytest.mark.parametrize("n", [1024, 256])
def test_matmul(timed, backend, data, n):
    backend.require("matmul")
    a, b = backend.to(data((n, n), 5)), backend.to(data((n, n), 6))
    timed(f"d: matmul {n}x{n} float32", backend.matmul, a, b,
          target={"vs": "numpy", "max_ratio": 1.15})
