"""mx.core.cuda: the CUDA backend's public switches."""


def is_available() -> bool:
    """True when the CUDA GPU backend can run work in this process."""
    return False
