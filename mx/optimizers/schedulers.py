"""Learning-rate schedules: functions of the optimizer's step (an mx array) built from mx ops,
so a schedule can run inside a compiled training step."""
from __future__ import annotations

import math
from typing import Callable, List

import mx.core as mx

__all__ = ["exponential_decay", "step_decay", "cosine_decay", "join_schedules",
           "linear_schedule"]


def exponential_decay(init: float, decay_rate: float) -> Callable:
    """A schedule returning ``init * decay_rate ** step``.

    Example: ``optim.SGD(learning_rate=optim.exponential_decay(1e-1, 0.9))`` starts at 0.1
    and multiplies the rate by 0.9 after every update.
    """

    def schedule(step):
        return init * decay_rate ** step

    return schedule


def step_decay(init: float, decay_rate: float, step_size: int) -> Callable:
    """A schedule that multiplies ``init`` by ``decay_rate`` once every ``step_size`` steps:
    ``init * decay_rate ** (step // step_size)``."""
    if step_size < 1:
        raise ValueError(f"[step_decay] step_size must be greater than 0, but got {step_size}.")

    def schedule(step):
        return init * decay_rate ** (step // step_size)

    return schedule


def cosine_decay(init: float, decay_steps: int, end: float = 0.0) -> Callable:
    """A schedule following half a cosine from ``init`` down to ``end`` over ``decay_steps``
    steps, and staying at ``end`` afterwards."""
    if decay_steps < 1:
        raise ValueError(
            f"[cosine_decay] decay_steps must be greater than 0, but got {decay_steps}.")
    # The angle grows by pi / decay_steps per step; clamping the step keeps it at pi.
    rate = math.pi / decay_steps

    def schedule(step):
        angle = rate * mx.minimum(step, decay_steps)
        return end + 0.5 * (1.0 + mx.cos(angle)) * (init - end)

    return schedule


def join_schedules(schedules: List[Callable], boundaries: List[int]) -> Callable:
    """Chain schedules: ``schedules[0]`` runs until ``boundaries[0]``, then ``schedules[1]``
    restarts from step 0 until ``boundaries[1]``, and so on (one boundary fewer than
    schedules). Typical use: a linear warm-up joined to a cosine decay."""
    schedules = list(schedules)
    boundaries = list(boundaries)
    if len(schedules) == 0:
        raise ValueError("[join_schedules] Must provide at least 1 schedule to join.")
    if len(schedules) != len(boundaries) + 1:
        raise ValueError(f"[join_schedules] Received {len(boundaries)} boundaries but expected "
                         f"{len(schedules) - 1}.")

    def schedule(step):
        value = schedules[0](step)
        # Later schedules see the steps since their boundary; before it, `where` keeps the
        # earlier value (the shifted step may wrap around for unsigned counters, unused then).
        for boundary, later in zip(boundaries, schedules[1:]):
            value = mx.where(step < boundary, value, later(step - boundary))
        return value

    return schedule


def linear_schedule(init: float, end: float, steps: int) -> Callable:
    """A schedule moving linearly from ``init`` to ``end`` over ``steps`` steps and staying
    at ``end`` afterwards (e.g. a warm-up from 0)."""
    if steps < 1:
        raise ValueError(f"[linear_schedule] steps must be greater than 0, but got {steps}.")
    slope = (end - init) / steps

    def schedule(step):
        return mx.minimum(step, steps) * slope + init

    return schedule
