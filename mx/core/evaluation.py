"""eval and async_eval over pytrees of arrays."""
from __future__ import annotations

from mx.core._scheduler import async_eval_arrays, eval_arrays
from mx.core._tree import collect_arrays


def eval(*args) -> None:
    """Evaluate every array in `args` (arrays or trees of them: lists, tuples, dicts)."""
    arrays = collect_arrays(args)
    if arrays:
        eval_arrays(arrays)


def async_eval(*args) -> None:
    """Start evaluating the arrays in `args` and return at once; reading one of them
    (printing, item(), eval) waits until its value is ready."""
    arrays = collect_arrays(args)
    if arrays:
        async_eval_arrays(arrays)
