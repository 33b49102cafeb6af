"""mx: an MLX-compatible array framework (``import mx.core as mx``)."""
__version__ = "0.1.0"
