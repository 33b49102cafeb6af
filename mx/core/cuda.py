"""mx.core.cuda: the CUDA backend's public switches."""
from mx.backend import gpu as _gpu

_gpu.load()


def is_available() -> bool:
    """True when the CUDA GPU backend can run work in this process."""
    return _gpu.cuda_available()
