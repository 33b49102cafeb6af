"""mx.core.metal: the Metal backend's public switches."""


def is_available() -> bool:
    """True when the Metal GPU backend can run work in this process."""
    from mx.backend import gpu
    return gpu.metal_available()
