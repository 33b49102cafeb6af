"""MLX keeps the transposed convolutions in their own module; they live in convolution.py
here and are re-exported under MLX's module path."""
from mx.nn.layers.convolution import ConvTranspose1d, ConvTranspose2d, ConvTranspose3d

__all__ = ["ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]
