"""mx.nn: neural network layers, losses and initializers with MLX's mlx.nn API
(``import mx.nn as nn``)."""
from mx.nn import init, losses
from mx.nn.layers import *  # noqa: F401,F403
from mx.nn.utils import average_gradients, value_and_grad
