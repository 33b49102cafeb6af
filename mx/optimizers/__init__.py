"""mx.optimizers: MLX's optimizers, learning-rate schedules and clip_grad_norm
(``import mx.optimizers as optim``)."""
from mx.optimizers.optimizers import *  # noqa: F401,F403
from mx.optimizers.optimizers import __all__ as _optimizers_all
from mx.optimizers.schedulers import *  # noqa: F401,F403
from mx.optimizers.schedulers import __all__ as _schedulers_all

__all__ = _optimizers_all + _schedulers_all
