"""mx.core.metal: the Metal backend's public switches."""


def is_available() -> bool:
    """True when the Metal GPU backend can run work in this process."""
    return False
