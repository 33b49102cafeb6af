"""DLPack with device type CUDA on the GPU machine: zero-copy exchange with PyTorch, CuPy and
JAX (skipped where a library or the GPU is missing)."""
from __future__ import annotations

import numpy as np
import pytest

import mx.core as mx
from mx.backend import gpu as G

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def _needs_gpu():
    if not G.is_available():
        pytest.skip("needs a GPU")


def _address(a):
    return np.asarray(a).__array_interface__["data"][0]


def test_device_is_cuda_and_numpy_still_imports():
    a = mx.arange(6, dtype=mx.float32).reshape(2, 3) * 2
    mx.eval(a)
    assert a.__dlpack_device__() == (2, 0)
    # NumPy names no stream and no device: it gets the CPU form of the same memory
    n = np.from_dlpack(a)
    np.testing.assert_array_equal(n, np.arange(6, dtype=np.float32).reshape(2, 3) * 2)
    assert n.__array_interface__["data"][0] == _address(a)


@pytest.mark.parametrize("dt", ["float32", "float16", "bfloat16", "int32", "bool"])
def test_torch_round_trip_shares_memory(dt):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    d = mx.bool_ if dt == "bool" else getattr(mx, dt)
    a = (mx.arange(12) % 5).astype(d).reshape(3, 4)
    mx.eval(a)
    t = torch.from_dlpack(a)
    assert t.is_cuda and t.data_ptr() == _address(a)
    assert str(t.dtype) == f"torch.{dt}"
    want = np.array(a)      # a copy: `a` is about to change
    np.testing.assert_array_equal(t.cpu().to(torch.float32 if dt == "bfloat16" else t.dtype).numpy(),
                                  want.astype(np.float32) if dt == "bfloat16" else want)
    # a torch kernel's write is visible to mx, and mx imports it back without a copy
    if dt == "float32":
        t.mul_(10)
        torch.cuda.synchronize()
        np.testing.assert_array_equal(np.asarray(a), want * 10)
    b = mx.from_dlpack(t)
    assert _address(b) == t.data_ptr()
    np.testing.assert_array_equal(np.asarray(b), np.asarray(a))


def test_torch_tensor_in_its_own_memory_is_copied():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = torch.arange(10, device="cuda", dtype=torch.float32).reshape(2, 5)[:, 1:]
    b = mx.from_dlpack(t)
    np.testing.assert_array_equal(np.asarray(b), t.cpu().numpy())
    np.testing.assert_array_equal(np.asarray(mx.sum(b * 2, axis=1)), (t * 2).sum(1).cpu().numpy())


def test_cupy_and_jax_share_memory():
    a = mx.arange(8, dtype=mx.float32) + 1
    mx.eval(a)
    try:
        import cupy
    except Exception:
        cupy = None
    if cupy is not None:
        c = cupy.from_dlpack(a)
        assert c.data.ptr == _address(a)
        np.testing.assert_array_equal(cupy.asnumpy(c * 2), np.asarray(a) * 2)
        back = mx.from_dlpack(c)
        assert _address(back) == c.data.ptr
    try:
        import jax
        import jax.numpy as jnp
    except Exception:
        jax = None
    if jax is not None and any(d.platform == "gpu" for d in jax.devices()):
        j = jax.dlpack.from_dlpack(a) if hasattr(jax.dlpack, "from_dlpack") else jnp.from_dlpack(a)
        np.testing.assert_array_equal(np.asarray(j * 2), np.asarray(a) * 2)
