"""Transformations of functions of a Module's parameters: value_and_grad, checkpoint, and
gradient averaging across processes."""
from __future__ import annotations

import contextlib
from functools import wraps
from typing import Any, Callable, Optional

import mx.core as mx
from mx.utils import tree_flatten, tree_map, tree_unflatten

from .layers.base import Module


@contextlib.contextmanager
def _parameters_swapped(model: Module, params):
    """Runs the body with `params` (a partial parameter tree) in the model, then puts the
    previous arrays back wherever the body left the swapped-in ones in place (an array the
    body assigned itself, e.g. a running statistic, is kept)."""
    previous = dict(tree_flatten(model.parameters()))
    model.update(params)
    swapped = tree_flatten(params)
    try:
        yield
    finally:
        now = dict(tree_flatten(model.parameters()))
        restore = [(k, previous[k]) for k, v in swapped
                   if k in previous and now.get(k) is v]
        if restore:
            model.update(tree_unflatten(restore), strict=False)


def value_and_grad(model: Module, fn: Callable):
    """Turn `fn` into a function returning ``(fn(*args, **kwargs), gradients)``, the
    gradients being taken with respect to ``model.trainable_parameters()`` (and shaped
    like that tree). While `fn` runs, the model holds the arrays being differentiated."""
    def with_parameters(params, *args, **kwargs):
        with _parameters_swapped(model, params):
            return fn(*args, **kwargs)

    value_grad = mx.value_and_grad(with_parameters)

    @wraps(fn)
    def wrapped(*args, **kwargs):
        return value_grad(model.trainable_parameters(), *args, **kwargs)

    return wrapped


def checkpoint(module: Module, fn: Optional[Callable] = None):
    """Gradient checkpointing of `fn` (default: the module itself) with respect to the
    module's trainable parameters and the array arguments: the intermediate values of the
    forward pass are recomputed during the backward pass instead of being kept. Arguments
    that are not arrays (None masks, Python numbers) and keyword arguments are held
    constant."""
    if fn is None:
        # the module, not module.__call__, so that a later patched __call__ is used
        fn = module

    @wraps(fn)
    def wrapped(*args, **kwargs):
        flat = tree_flatten(module.trainable_parameters())
        keys = [k for k, _ in flat]
        array_pos = [i for i, a in enumerate(args) if isinstance(a, mx.array)]

        def inner(*arrays):
            params = tree_unflatten(list(zip(keys, arrays[:len(keys)])))
            call_args = list(args)
            for i, a in zip(array_pos, arrays[len(keys):]):
                call_args[i] = a
            with _parameters_swapped(module, params):
                return fn(*call_args, **kwargs)

        inputs = [v for _, v in flat] + [args[i] for i in array_pos]
        return mx.checkpoint(inner)(*inputs)

    return wrapped


def _chunks(sizes, itemsize, limit):
    """Consecutive index groups whose byte sizes first reach `limit` (the last group may be
    smaller)."""
    groups, current, nbytes = [], [], 0
    for i, size in enumerate(sizes):
        current.append(i)
        nbytes += size * itemsize
        if nbytes >= limit:
            groups.append(current)
            current, nbytes = [], 0
    if current:
        groups.append(current)
    return groups


def average_gradients(gradients: Any, group: Optional[Any] = None,
                      all_reduce_size: int = 32 * 1024**2,
                      communication_stream: Optional[mx.Stream] = None, *,
                      communication_type: Optional[mx.Dtype] = None):
    """Average a gradient tree over the processes of a distributed `group` (default: the
    global group). Small arrays are concatenated into all-reduce messages of at least
    `all_reduce_size` bytes (<= 0: one all-reduce per array); arrays of different dtypes
    travel in separate messages. `communication_type` (e.g. mx.bfloat16) casts the
    gradients for the communication only, halving the traffic of float32 gradients. In a
    single process the gradients are returned unchanged."""
    dist = mx.distributed
    if group is None:
        group = dist.init()
    n = group.size()
    if n == 1:
        return gradients

    def wire(x):
        return x if communication_type is None else x.astype(communication_type)

    def all_mean(x, like_dtype):
        total = dist.all_sum(x, group=group, stream=communication_stream)
        if total.dtype != like_dtype:
            total = total.astype(like_dtype)
        return total / n

    flat = tree_flatten(gradients)
    if not flat:
        return gradients
    if all_reduce_size <= 0:
        return tree_map(lambda g: all_mean(wire(g), g.dtype), gradients)
    # one run of messages per wire dtype, in order of first appearance (the same order on
    # every process, as the collectives require)
    by_dtype = {}
    for i, (_, g) in enumerate(flat):
        by_dtype.setdefault(g.dtype if communication_type is None else communication_type,
                            []).append(i)
    averaged = [None] * len(flat)
    for dtype, members in by_dtype.items():
        sizes = [flat[i][1].size for i in members]
        for chunk in _chunks(sizes, dtype.size, all_reduce_size):
            idx = [members[j] for j in chunk]
            joined = mx.concatenate([wire(flat[i][1]).reshape(-1) for i in idx])
            total = dist.all_sum(joined, group=group, stream=communication_stream)
            offsets, pos = [], 0
            for i in idx[:-1]:
                pos += flat[i][1].size
                offsets.append(pos)
            for i, part in zip(idx, mx.split(total, offsets) if offsets else [total]):
                g = flat[i][1]
                if part.dtype != g.dtype:      # back from the communication dtype
                    part = part.astype(g.dtype)
                averaged[i] = (flat[i][0], (part / n).reshape(g.shape))
    return tree_unflatten(averaged)
