"""Optimizers with MLX's API: an Optimizer base class that walks a gradient tree and applies a
per-parameter rule, the usual first-order methods, MultiOptimizer and clip_grad_norm.

Every update is written with mx ops and only replaces entries of the optimizer's state dict
(never the dict itself), so a whole training step can be traced by ``mx.compile`` with
``inputs=[..., optimizer.state]`` / ``outputs=[..., optimizer.state]``.
"""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple, Union

import mx.core as mx
from mx.utils import tree_flatten, tree_map, tree_merge, tree_unflatten

__all__ = ["Optimizer", "MultiOptimizer", "SGD", "RMSprop", "Adagrad", "AdaDelta", "Adam",
           "AdamW", "Adamax", "Lion", "Adafactor", "Muon", "clip_grad_norm"]

_HYPER = Union[float, Callable[[mx.array], mx.array]]


def _rsqrt(x):
    # mx.rsqrt's CPU kernel fails on 0-d inputs (NumPy hands back a scalar there)
    return mx.rsqrt(x) if x.ndim else 1.0 / mx.sqrt(x)


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def _describe(x):
    return type(x).__name__


def _check_betas(name, betas):
    betas = list(betas)
    if len(betas) != 2:
        raise ValueError(f"[{name}] betas must hold two coefficients, got {len(betas)}.")
    for i, beta in enumerate(betas):
        if not 0.0 <= beta < 1.0:
            raise ValueError(
                f"[{name}] beta{i + 1} should be in [0, 1), {beta} was provided instead")
    return betas


class Optimizer:
    """The base class of all optimizers.

    A subclass describes one parameter: ``init_single(parameter, state)`` fills that
    parameter's state dict and ``apply_single(gradient, parameter, state)`` returns the
    updated parameter (updating ``state``). The base class walks the gradient tree, keeps
    ``state`` as a tree parallel to the parameters (plus the ``"step"`` counter and the
    hyper-parameters such as ``"learning_rate"``), and evaluates schedules.

    Args:
        schedulers (dict, optional): maps state entries (e.g. ``"learning_rate"``) to
            schedules, callables of the step returning the entry's value.
    """

    def __init__(self, schedulers=None):
        self._state = {"step": mx.array(0, mx.uint64)}
        if schedulers is None:
            schedulers = {}
        if not isinstance(schedulers, dict) or not all(callable(f) for f in schedulers.values()):
            raise TypeError(f"[{self._name}] schedulers must be a dict mapping state entries to "
                            f"callables of the step, got {schedulers!r}.")
        self._schedulers = {}
        for name, schedule in schedulers.items():
            self._maybe_schedule(name, schedule)

    @property
    def _name(self):
        return type(self).__name__

    # -- the public protocol -------------------------------------------------------------
    def update(self, model, gradients: dict):
        """Apply ``gradients`` to the model's parameters and write the results back with
        ``model.update``. Parameters without a gradient are left as they are."""
        # A Module is a dict of its children (as in MLX), which spares building the
        # parameter tree; anything else is asked for its trainable parameters.
        parameters = model if isinstance(model, dict) else model.trainable_parameters()
        model.update(self.apply_gradients(gradients, parameters))

    def init(self, parameters: dict):
        """Create the state of every parameter in ``parameters`` that has none yet.

        Optional: the first update creates missing state itself; calling ``init`` first
        makes ``state`` complete before any update (e.g. to compile a step or to load a
        checkpoint into it)."""
        self._walk(parameters, parameters, self._state, "", None)

    def init_single(self, parameter: mx.array, state: dict):
        """Fill ``state`` (an empty dict) for one parameter. Stateless optimizers keep this."""

    def apply_gradients(self, gradients: dict, parameters: dict):
        """Return the updated parameters for ``gradients``.

        ``parameters`` may hold more than ``gradients``; the result has the structure of
        ``gradients`` (``model.update(opt.apply_gradients(grads, model))`` is what
        :meth:`update` does). Either the whole update happens (state, step) or, if a
        gradient does not fit its parameter, none of it."""
        state = self._state
        saved = {k: state[k] for k in ("step", *self._schedulers) if k in state}
        try:
            # Schedules see the step count before this update, the rule the one after it.
            for name, schedule in self._schedulers.items():
                state[name] = self._value(schedule(state["step"]), name)
            state["step"] = state["step"] + 1
            pending = []
            updated = self._walk(gradients, parameters, state, "", pending)
        except BaseException:
            state.update(saved)
            raise
        for target, new in pending:
            target.update(new)
        return updated

    def apply_single(self, gradient: mx.array, parameter: mx.array, state: dict):
        """Return ``parameter`` updated with ``gradient``; subclasses implement it."""
        raise NotImplementedError(f"[{self._name}] apply_single is implemented by the "
                                  "optimizer subclasses (SGD, Adam, ...).")

    @property
    def state(self):
        """The optimizer's state: a dict holding ``"step"``, the hyper-parameters and one
        entry per parameter (same nesting as the parameters). Settable, e.g. to restore a
        checkpoint; the given dict is used (and updated) as is."""
        return self._state

    @state.setter
    def state(self, state: dict):
        if not isinstance(state, dict):
            raise TypeError(f"[{self._name}.state] the state must be a dict, got "
                            f"{_describe(state)}.")
        if "step" not in state:
            raise ValueError(f"[{self._name}.state] the state has no 'step' entry (the "
                             f"number of updates so far); got keys {list(state)}.")
        self._state = state

    @property
    def step(self):
        """The number of updates applied so far (a uint64 array)."""
        return self._state["step"]

    @property
    def learning_rate(self):
        """The current learning rate (an array). Set it to a number/array for a constant
        rate or to a schedule (a callable of the step)."""
        try:
            return self._state["learning_rate"]
        except KeyError:
            raise AttributeError(f"[{self._name}] the optimizer has no learning_rate; set "
                                 "optimizer.learning_rate first.") from None

    @learning_rate.setter
    def learning_rate(self, learning_rate: Union[float, mx.array, Callable]):
        # A constant replaces a schedule rather than being overwritten by it next step.
        self._schedulers.pop("learning_rate", None)
        self._maybe_schedule("learning_rate", learning_rate)

    # -- helpers for subclasses ----------------------------------------------------------
    def _maybe_schedule(self, name: str, param: _HYPER):
        """Store hyper-parameter ``name`` in the state: a callable becomes a schedule
        evaluated at every update, anything else a constant array."""
        if callable(param):
            self._schedulers[name] = param
            param = param(self.step)
        self._state[name] = self._value(param, name)

    def _value(self, value, name):
        if isinstance(value, mx.array):
            return value
        try:
            return mx.array(value)
        except (TypeError, ValueError):
            raise TypeError(f"[{self._name}] {name} must be a number, an array or a schedule "
                            f"(a callable of the step), got {_describe(value)}.") from None

    # -- the tree walk -------------------------------------------------------------------
    def _walk(self, grads, params, state, path, pending):
        """Walk ``grads`` with the matching ``params`` and ``state`` nodes, creating missing
        state. With ``pending`` a list, apply the rule and return the updated tree; each
        leaf's new state goes to ``pending`` for the caller to commit. Without, only
        initialise (``init``)."""
        if isinstance(grads, dict):
            out = {}
            for key, g in grads.items():
                p = self._param_child(params, key, path)
                s = self._state_child(state, key, g, path)
                out[key] = self._walk(g, p, s, _join(path, key), pending)
            return out
        if isinstance(grads, (list, tuple)):
            out = [self._walk(g, self._param_child(params, i, path),
                              self._state_child(state, i, g, path), _join(path, i), pending)
                   for i, g in enumerate(grads)]
            return out if type(grads) is list else tuple(out)
        return self._leaf(grads, params, state, path, pending)

    def _leaf(self, g, p, s, path, pending):
        where = path or "<root>"
        if not isinstance(g, mx.array):
            raise TypeError(f"[{self._name}] the gradient at '{where}' is a {_describe(g)}, "
                            "not an array.")
        if not isinstance(p, mx.array):
            raise TypeError(f"[{self._name}] the parameter at '{where}' is a {_describe(p)}, "
                            "not an array.")
        if not s:
            self.init_single(p, s)
        if pending is None:
            return p
        new = dict(s)
        result = self.apply_single(g, p, new)
        pending.append((s, new))
        return result

    def _param_child(self, params, key, path):
        try:
            return params[key]
        except (KeyError, IndexError, TypeError):
            raise ValueError(f"[{self._name}] '{_join(path, key)}' is in the gradients but "
                             "not in the parameters.") from None

    def _state_child(self, state, key, grad, path):
        """The state node under ``key`` for gradient node ``grad``, created (or turned from
        an empty placeholder/tuple into a list) when needed; ``state`` is a dict or list."""
        if isinstance(state, dict):
            node = state.get(key)
        elif key < len(state):
            node = state[key]
        else:
            node = None
            state.extend({} for _ in range(key + 1 - len(state)))
        if isinstance(grad, (list, tuple)):
            fresh = node is None or (isinstance(node, dict) and not node)
            if fresh or isinstance(node, tuple):
                node = [] if fresh else list(node)
                state[key] = node
            elif not isinstance(node, list):
                self._mismatch(state, key, node, "a list", path)
        else:
            if node is None:
                node = {}
                state[key] = node
            elif not isinstance(node, dict):
                self._mismatch(state, key, node, "a dict", path)
        return node

    def _mismatch(self, state, key, node, expected, path):
        hint = ""
        if state is self._state and isinstance(node, mx.array):
            hint = (f" (a parameter named '{key}' collides with the optimizer's own "
                    "state entry)")
        raise ValueError(f"[{self._name}] the state at '{_join(path, key)}' is a "
                         f"{_describe(node)} where the parameters need {expected}{hint}.")


class MultiOptimizer(Optimizer):
    """Use different optimizers for different parameters.

    ``filters[i](path, gradient)`` (``path`` a dotted name such as ``"layers.0.weight"``)
    says whether ``optimizers[i]`` handles that parameter; the first match wins and the last
    optimizer, which takes no filter, gets the rest.

    Args:
        optimizers (list[Optimizer]): the optimizers, the fallback last.
        filters (list[Callable[[str, array], bool]]): one predicate per optimizer but the
            last.
    """

    def __init__(self, optimizers, filters: list = []):  # noqa: B006 (MLX's signature)
        super().__init__()
        self._state = {}
        optimizers = list(optimizers)
        filters = list(filters)
        if not optimizers:
            raise ValueError("[MultiOptimizer] needs at least one optimizer.")
        if len(filters) != len(optimizers) - 1:
            raise ValueError(f"[MultiOptimizer] Given {len(filters)} filters but "
                             f"{len(optimizers) - 1} needed.")
        self.optimizers = optimizers
        self.filters = filters + [lambda *args, **kwargs: True]

    def _split(self, tree):
        """``tree`` cut into one sub-tree per optimizer, by the filters."""
        if len(self.optimizers) == 1:
            return [tree]
        parts = [[] for _ in self.optimizers]
        for path, leaf in tree_flatten(tree):
            for part, accepts in zip(parts, self.filters):
                if accepts(path, leaf):
                    part.append((path, leaf))
                    break
        return [tree_unflatten(part) if part else {} for part in parts]

    def init(self, parameters: dict):
        for opt, part in zip(self.optimizers, self._split(parameters)):
            opt.init(part)

    def apply_gradients(self, gradients: dict, parameters: dict):
        merged = {}
        for opt, part in zip(self.optimizers, self._split(gradients)):
            merged = tree_merge(merged, opt.apply_gradients(part, parameters))
        return merged

    @property
    def state(self):
        """``{"states": [each optimizer's state]}``; settable with the same structure."""
        return {"states": [opt.state for opt in self.optimizers]}

    @state.setter
    def state(self, state: dict):
        if (not isinstance(state, dict) or not isinstance(state.get("states"), (list, tuple))
                or len(state["states"]) != len(self.optimizers)):
            raise ValueError(f"[MultiOptimizer.state] expected {{'states': [...]}} with one "
                             f"state per optimizer ({len(self.optimizers)}).")
        for opt, sub in zip(self.optimizers, state["states"]):
            opt.state = sub

    @property
    def step(self):
        return self.optimizers[0].step

    @property
    def learning_rate(self):
        return self.optimizers[0].learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        for opt in self.optimizers:
            opt.learning_rate = learning_rate


class SGD(Optimizer):
    r"""Stochastic gradient descent, with optional momentum, dampening, Nesterov momentum
    and L2 weight decay:

    .. math::

        g &\leftarrow g_t + \text{wd}\, w_t \\
        v_{t+1} &= \mu v_t + (1 - \tau) g \\
        w_{t+1} &= w_t - \lambda v_{t+1} \quad (\text{Nesterov: } w_t - \lambda (g + \mu v_{t+1}))

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        momentum (float, optional): momentum :math:`\mu`. Default: ``0``.
        weight_decay (float, optional): L2 penalty added to the gradient. Default: ``0``.
        dampening (float, optional): dampening :math:`\tau` of the momentum. Default: ``0``.
        nesterov (bool, optional): use Nesterov momentum. Default: ``False``.
    """

    def __init__(self, learning_rate: _HYPER, momentum: float = 0.0, weight_decay: float = 0.0,
                 dampening: float = 0.0, nesterov: bool = False):
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening.")
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.dampening = dampening
        self.nesterov = nesterov

    def init_single(self, parameter, state):
        # Plain SGD keeps no velocity (MLX stores a zero one anyway).
        if self.momentum > 0:
            state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        if self.weight_decay != 0:
            gradient = gradient + self.weight_decay * parameter
        lr = self.learning_rate.astype(gradient.dtype)
        if self.momentum <= 0:
            return parameter - lr * gradient
        v = state.get("v")
        v = self.momentum * (mx.zeros_like(parameter) if v is None else v)
        v = v + ((1 - self.dampening) * gradient if self.dampening > 0 else gradient)
        state["v"] = v
        step = gradient + self.momentum * v if self.nesterov else v
        return parameter - lr * step


class RMSprop(Optimizer):
    r"""RMSprop (Tieleman and Hinton, 2012):

    .. math::

        v_{t+1} &= \alpha v_t + (1 - \alpha) g_t^2 \\
        w_{t+1} &= w_t - \lambda \frac{g_t}{\sqrt{v_{t+1}} + \epsilon}

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        alpha (float, optional): smoothing constant :math:`\alpha`. Default: ``0.99``.
        eps (float, optional): :math:`\epsilon` added to the denominator. Default: ``1e-8``.
    """

    def __init__(self, learning_rate: _HYPER, alpha: float = 0.99, eps: float = 1e-8):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.alpha = alpha
        self.eps = eps
        if alpha < 0.0:
            raise ValueError(f"[RMSprop] alpha should be >=0, {alpha} was provided instead")
        if eps <= 0.0:
            raise ValueError(f"[RMSprop] epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter, state):
        state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        v = self.alpha * state["v"] + (1 - self.alpha) * mx.square(gradient)
        state["v"] = v
        return parameter - lr * gradient / (mx.sqrt(v) + self.eps)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi, Hazan and Singer, 2011):

    .. math::

        v_{t+1} &= v_t + g_t^2 \\
        w_{t+1} &= w_t - \lambda \frac{g_t}{\sqrt{v_{t+1}} + \epsilon}

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        eps (float, optional): :math:`\epsilon` added to the denominator. Default: ``1e-8``.
    """

    def __init__(self, learning_rate: _HYPER, eps: float = 1e-8):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.eps = eps
        if eps <= 0.0:
            raise ValueError(f"[Adagrad] epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter, state):
        state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        v = state["v"] + mx.square(gradient)
        state["v"] = v
        return parameter - lr * gradient / (mx.sqrt(v) + self.eps)


class AdaDelta(Optimizer):
    r"""AdaDelta (Zeiler, 2012), scaled by a learning rate:

    .. math::

        v_{t+1} &= \rho v_t + (1 - \rho) g_t^2 \\
        \Delta w_{t+1} &= \frac{\sqrt{u_t + \epsilon}}{\sqrt{v_{t+1} + \epsilon}} g_t \\
        u_{t+1} &= \rho u_t + (1 - \rho) \Delta w_{t+1}^2 \\
        w_{t+1} &= w_t - \lambda \Delta w_{t+1}

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        rho (float, optional): decay :math:`\rho` of the running averages. Default: ``0.9``.
        eps (float, optional): :math:`\epsilon` inside the square roots. Default: ``1e-6``.
    """

    def __init__(self, learning_rate: _HYPER, rho: float = 0.9, eps: float = 1e-6):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.rho = rho
        self.eps = eps
        if rho < 0.0:
            raise ValueError(f"[AdaDelta] rho should be >=0, {rho} was provided instead")
        if eps <= 0.0:
            raise ValueError(f"[AdaDelta] epsilon should be >0, {eps} was provided instead")

    def init_single(self, parameter, state):
        state["v"] = mx.zeros_like(parameter)
        state["u"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        rho, eps = self.rho, self.eps
        v = rho * state["v"] + (1 - rho) * mx.square(gradient)
        delta = mx.sqrt(state["u"] + eps) / mx.sqrt(v + eps) * gradient
        state["v"] = v
        state["u"] = rho * state["u"] + (1 - rho) * mx.square(delta)
        return parameter - lr * delta


class Adam(Optimizer):
    r"""Adam (Kingma and Ba, 2015):

    .. math::

        m_{t+1} &= \beta_1 m_t + (1 - \beta_1) g_t \\
        v_{t+1} &= \beta_2 v_t + (1 - \beta_2) g_t^2 \\
        w_{t+1} &= w_t - \lambda \frac{m_{t+1}}{\sqrt{v_{t+1}} + \epsilon}

    With ``bias_correction`` the moments are divided by :math:`1 - \beta_i^t` (as PyTorch
    does); without it (the default, as MLX) they are used as they are.

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`.
            Default: ``(0.9, 0.999)``.
        eps (float, optional): :math:`\epsilon` added to the denominator. Default: ``1e-8``.
        bias_correction (bool, optional): apply bias correction. Default: ``False``.
    """

    def __init__(self, learning_rate: _HYPER, betas: List[float] = [0.9, 0.999],  # noqa: B006
                 eps: float = 1e-8, bias_correction: bool = False):
        super().__init__()
        betas = _check_betas("Adam", betas)
        if not 0.0 <= eps:
            raise ValueError(f"[Adam] epsilon should be >=0, {eps} was provided instead")
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = betas
        self.eps = eps
        self.bias_correction = bias_correction

    def init_single(self, parameter, state):
        state["m"] = mx.zeros_like(parameter)
        state["v"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        b1, b2 = self.betas
        m = b1 * state["m"] + (1 - b1) * gradient
        v = b2 * state["v"] + (1 - b2) * mx.square(gradient)
        state["m"] = m
        state["v"] = v
        if not self.bias_correction:
            return parameter - lr * m / (mx.sqrt(v) + self.eps)
        step = self.step
        scale_m = (lr / (1 - b1 ** step)).astype(gradient.dtype)
        scale_v = _rsqrt(1 - b2 ** step).astype(gradient.dtype)
        return parameter - scale_m * m / (mx.sqrt(v) * scale_v + self.eps)


class AdamW(Adam):
    r"""AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, the
    parameter shrinks by :math:`1 - \lambda \cdot \text{wd}` before the Adam step.

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`.
            Default: ``(0.9, 0.999)``.
        eps (float, optional): :math:`\epsilon` added to the denominator. Default: ``1e-8``.
        weight_decay (float, optional): the weight decay. Default: ``0.01``.
        bias_correction (bool, optional): apply bias correction. Default: ``False``.
    """

    def __init__(self, learning_rate: _HYPER, betas: List[float] = [0.9, 0.999],  # noqa: B006
                 eps: float = 1e-8, weight_decay: float = 0.01, bias_correction: bool = False):
        super().__init__(learning_rate=learning_rate, betas=betas, eps=eps,
                         bias_correction=bias_correction)
        self.weight_decay = weight_decay

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        return super().apply_single(gradient, parameter * (1 - lr * self.weight_decay), state)


class Adamax(Adam):
    r"""Adamax (Kingma and Ba, 2015), Adam with an infinity-norm second moment and no bias
    correction:

    .. math::

        m_{t+1} &= \beta_1 m_t + (1 - \beta_1) g_t \\
        v_{t+1} &= \max(\beta_2 v_t, |g_t|) \\
        w_{t+1} &= w_t - \lambda \frac{m_{t+1}}{v_{t+1} + \epsilon}

    Args:
        learning_rate (float or callable): the learning rate :math:`\lambda`.
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`.
            Default: ``(0.9, 0.999)``.
        eps (float, optional): :math:`\epsilon` added to the denominator. Default: ``1e-8``.
    """

    def __init__(self, learning_rate: _HYPER, betas: List[float] = [0.9, 0.999],  # noqa: B006
                 eps: float = 1e-8):
        super().__init__(learning_rate, betas, eps)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        b1, b2 = self.betas
        m = b1 * state["m"] + (1 - b1) * gradient
        v = mx.maximum(b2 * state["v"], mx.abs(gradient))
        state["m"] = m
        state["v"] = v
        return parameter - lr * m / (v + self.eps)


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023): the step is the sign of an interpolation of momentum and
    gradient, so use a learning rate 3-10x smaller (and a weight decay 3-10x larger) than
    with AdamW.

    .. math::

        c_{t+1} &= \beta_1 m_t + (1 - \beta_1) g_t \\
        m_{t+1} &= \beta_2 m_t + (1 - \beta_2) g_t \\
        w_{t+1} &= w_t - \eta (\text{sign}(c_{t+1}) + \lambda w_t)

    Args:
        learning_rate (float or callable): the learning rate :math:`\eta`.
        betas (Tuple[float, float], optional): :math:`(\beta_1, \beta_2)`.
            Default: ``(0.9, 0.99)``.
        weight_decay (float, optional): the weight decay :math:`\lambda`. Default: ``0``.
    """

    def __init__(self, learning_rate: _HYPER, betas: List[float] = [0.9, 0.99],  # noqa: B006
                 weight_decay: float = 0.0):
        super().__init__()
        betas = _check_betas("Lion", betas)
        self._maybe_schedule("learning_rate", learning_rate)
        self.betas = betas
        self.weight_decay = weight_decay

    def init_single(self, parameter, state):
        state["m"] = mx.zeros_like(parameter)

    def apply_single(self, gradient, parameter, state):
        lr = self.learning_rate.astype(gradient.dtype)
        b1, b2 = self.betas
        m = state["m"]
        direction = b1 * m + (1 - b1) * gradient
        state["m"] = b2 * m + (1 - b2) * gradient
        if self.weight_decay > 0:
            parameter = (1 - lr * self.weight_decay) * parameter
        return parameter - lr * mx.sign(direction)


class Adafactor(Optimizer):
    r"""Adafactor (Shazeer and Stern, 2018): Adam-like steps whose second moment of a
    matrix (or stack of matrices) is kept factored as row and column averages.

    Args:
        learning_rate (float or callable, optional): the learning rate, used only when
            ``relative_step`` is ``False``. Default: ``None``.
        eps (tuple(float, float), optional): :math:`\epsilon_1` added to the squared
            gradients and :math:`\epsilon_2`, the smallest parameter scale.
            Default: ``(1e-30, 1e-3)``.
        clip_threshold (float, optional): clip the unscaled update's RMS at this value.
            Default: ``1.0``.
        decay_rate (float, optional): the second-moment decay is
            :math:`1 - t^{\text{decay\_rate}}`. Default: ``-0.8``.
        beta_1 (float, optional): keep a first moment with this decay. Default: ``None``.
        weight_decay (float, optional): the weight decay. Default: ``0``.
        scale_parameter (bool, optional): scale the step by the parameter's RMS (at least
            :math:`\epsilon_2`). Default: ``True``.
        relative_step (bool, optional): use :math:`\min(10^{-2}, 1/\sqrt{t})` as the step
            size instead of ``learning_rate``. Default: ``True``.
        warmup_init (bool, optional): with ``relative_step``, grow the step size as
            :math:`10^{-6} t` at first. Default: ``False``.
    """

    def __init__(self, learning_rate: Union[float, Callable, None] = None,
                 eps: Tuple[float, float] = (1e-30, 1e-3), clip_threshold: float = 1.0,
                 decay_rate: float = -0.8, beta_1: Optional[float] = None,
                 weight_decay: float = 0.0, scale_parameter: bool = True,
                 relative_step: bool = True, warmup_init: bool = False):
        super().__init__()
        if learning_rate is not None:
            self._maybe_schedule("learning_rate", learning_rate)
        eps = tuple(eps)
        if len(eps) != 2:
            raise ValueError(f"[Adafactor] eps must hold two values, got {len(eps)}.")
        self.eps = eps
        self.clip_threshold = clip_threshold
        self.decay_rate = decay_rate
        self.beta_1 = beta_1
        self.weight_decay = weight_decay
        self.scale_parameter = scale_parameter
        self.relative_step = relative_step
        self.warmup_init = warmup_init

    def init_single(self, parameter, state):
        shape, dtype = parameter.shape, parameter.dtype
        if parameter.ndim >= 2:
            state["exp_avg_sq_row"] = mx.zeros(shape[:-1], dtype=dtype)
            state["exp_avg_sq_col"] = mx.zeros(shape[:-2] + shape[-1:], dtype=dtype)
        else:
            state["exp_avg_sq"] = mx.zeros_like(parameter)
        if self.beta_1 is not None:
            state["exp_avg"] = mx.zeros_like(parameter)

    @staticmethod
    def _rms(x):
        return mx.sqrt(mx.mean(mx.square(x)))

    def _step_size(self, step, parameter_rms):
        if self.relative_step:
            ceiling = 1e-6 * step if self.warmup_init else 1e-2
            size = mx.minimum(ceiling, _rsqrt(step.astype(mx.float32)))
        elif "learning_rate" in self.state:
            size = self.learning_rate
        else:
            raise ValueError("[Adafactor] relative_step=False needs a learning_rate: pass one "
                             "or set optimizer.learning_rate.")
        size = size.astype(parameter_rms.dtype)
        if self.scale_parameter:
            return mx.maximum(self.eps[1], parameter_rms) * size
        return size

    def apply_single(self, gradient, parameter, state):
        step = self.step
        parameter_rms = self._rms(parameter)
        step_size = self._step_size(step, parameter_rms)
        beta_2 = 1.0 - (step ** self.decay_rate).astype(parameter_rms.dtype)
        squared = mx.square(gradient) + self.eps[0]
        if gradient.ndim >= 2:
            row = beta_2 * state["exp_avg_sq_row"] + (1 - beta_2) * mx.mean(squared, axis=-1)
            col = beta_2 * state["exp_avg_sq_col"] + (1 - beta_2) * mx.mean(squared, axis=-2)
            state["exp_avg_sq_row"] = row
            state["exp_avg_sq_col"] = col
            # The factored estimate of 1/sqrt(v): rows normalised by their mean, times columns.
            row_factor = _rsqrt(row / mx.mean(row, axis=-1, keepdims=True))
            col_factor = _rsqrt(col)
            update = mx.expand_dims(row_factor, -1) * mx.expand_dims(col_factor, -2) * gradient
        else:
            avg = beta_2 * state["exp_avg_sq"] + (1 - beta_2) * squared
            state["exp_avg_sq"] = avg
            update = _rsqrt(avg) * gradient
        update = update / mx.maximum(1.0, self._rms(update) / self.clip_threshold)
        update = step_size * update
        if self.beta_1 is not None:
            update = self.beta_1 * state["exp_avg"] + (1 - self.beta_1) * update
            state["exp_avg"] = update
        if self.weight_decay != 0:
            parameter = parameter + parameter * (-self.weight_decay * step_size)
        return parameter - update


class Muon(Optimizer):
    r"""Muon (MomentUm Orthogonalized by Newton-Schulz, K. Jordan 2024): SGD with momentum
    whose step for a matrix is replaced by the nearest semi-orthogonal matrix, found with a
    quintic Newton-Schulz iteration. Arrays of more than two dimensions are flattened to
    (first dimension, rest); 0-d and 1-d parameters get the plain momentum step (better
    optimise those, the embedding and the output layer with e.g. AdamW).

    Args:
        learning_rate (float or callable): the learning rate.
        momentum (float, optional): momentum strength. Default: ``0.95``.
        weight_decay (float, optional): L2 penalty added to the gradient. Default: ``0.01``.
        nesterov (bool, optional): use Nesterov momentum. Default: ``True``.
        ns_steps (int, optional): Newton-Schulz iterations. Default: ``5``.
    """

    # Coefficients of the quintic iteration X <- aX + b(XX^T)X + c(XX^T)^2 X, tuned to push
    # all singular values towards 1 quickly.
    _NS_COEFFS = (3.4445, -4.7750, 2.0315)

    def __init__(self, learning_rate: _HYPER, momentum: float = 0.95,
                 weight_decay: float = 0.01, nesterov: bool = True, ns_steps: int = 5):
        super().__init__()
        self._maybe_schedule("learning_rate", learning_rate)
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        self.ns_steps = ns_steps

    def init_single(self, parameter, state):
        state["v"] = mx.zeros_like(parameter)

    def _orthogonalize(self, x):
        a, b, c = self._NS_COEFFS
        # Iterate on the wide orientation so X X^T is the smaller Gram matrix.
        tall = x.shape[0] > x.shape[1]
        if tall:
            x = x.T
        x = x / (mx.sqrt(mx.sum(mx.square(x))) + 1e-7)
        for _ in range(self.ns_steps):
            gram = x @ x.T
            poly = mx.addmm(b * gram, gram, gram, alpha=c, beta=1.0)
            x = mx.addmm(a * x, poly, x, alpha=1.0, beta=1.0)
        return x.T if tall else x

    def apply_single(self, gradient, parameter, state):
        if self.weight_decay != 0:
            gradient = gradient + self.weight_decay * parameter
        mu = self.momentum
        v = mu * state["v"] + (1 - mu) * gradient
        state["v"] = v
        update = gradient * (1 - mu) + v * mu if self.nesterov else v
        lr = self.learning_rate.astype(gradient.dtype)
        if update.ndim >= 2:
            shape = update.shape
            update = self._orthogonalize(mx.reshape(update, (shape[0], -1)))
            update = mx.reshape(update, shape)
            # MLX scales by the last two dimensions of the parameter's own shape (for 2-d
            # parameters: the matrix that was orthogonalised).
            lr = lr * max(1, shape[-2] / shape[-1]) ** 0.5
        return parameter - lr * update


def clip_grad_norm(grads, max_norm):
    """Scale ``grads`` down so that their global L2 norm is at most ``max_norm``.

    Returns ``(clipped_grads, total_norm)``, ``total_norm`` being the norm before clipping
    (an array). float16 gradients are squared and summed in float32 so the norm does not
    overflow; floating gradients keep their dtype.

    Example:
        >>> grads = {"w1": mx.array([2.0, 3.0]), "w2": mx.array([1.0])}
        >>> clipped, norm = clip_grad_norm(grads, max_norm=2.0)
    """
    if max_norm < 0:
        raise ValueError(
            f"[clip_grad_norm] max_norm should be >=0, {max_norm} was provided instead")
    leaves = [g for _, g in tree_flatten(grads)]
    for g in leaves:
        if not isinstance(g, mx.array):
            raise TypeError(f"[clip_grad_norm] gradients must be arrays, got {_describe(g)}.")

    def squared_norm(g):
        if g.dtype == mx.float16:
            g = g.astype(mx.float32)
        return mx.sum(mx.square(g))

    total = 0.0
    for g in leaves:
        total = total + squared_norm(g)
    total_norm = mx.sqrt(total)
    normalizer = mx.minimum(max_norm / (total_norm + 1e-6), 1.0)

    def scale(g):
        # Scale in the norm's precision, then cast back, so a tiny factor does not
        # underflow in float16.
        scaled = g * normalizer
        return scaled.astype(g.dtype) if mx.issubdtype(g.dtype, mx.floating) else scaled

    return tree_map(scale, grads), total_norm
