"""The Module base class: a dict whose array, list, dict and Module members form a tree of
parameters and sub-modules (MLX's mlx.nn.Module)."""
from __future__ import annotations

import os
import textwrap
from typing import Any, Callable, List, Optional, Tuple, Union

import mx.core as mx
from mx.utils import tree_flatten, tree_unflatten

# attribute values that live in the dict (and so in the module's tree) rather than as
# ordinary Python attributes
_TREE_TYPES = (mx.array, dict, list, tuple)


class Module(dict):
    """Base class of every layer and model.

    Arrays, lists, dicts and sub-modules assigned as attributes are stored as dict entries;
    `parameters()` collects the arrays recursively (skipping names that start with an
    underscore) and `children()` the sub-modules. Parameters can be frozen, which excludes
    them from `trainable_parameters()` and therefore from `mx.nn.value_and_grad`'s
    gradients.
    """

    __call__: Callable

    def __init__(self):
        """Subclasses must call this before assigning attributes."""
        self._no_grad = set()
        self._training = True

    # ------------------------------------------------------------------ attributes
    @property
    def training(self):
        """True in training mode (see `train` and `eval`)."""
        return self._training

    @property
    def state(self):
        """The module itself: its dict holds every array / container member, and changes
        made through it change the module."""
        return self

    def __getattr__(self, key: str):
        # only reached when ordinary attribute lookup failed
        value = self.get(key, None)
        if value is not None:
            return value
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{key}'")

    def __setattr__(self, key: str, val: Any):
        if isinstance(val, _TREE_TYPES):
            # a plain attribute of the same name would shadow the dict entry
            if key not in self and hasattr(self, key):
                object.__delattr__(self, key)
            self[key] = val
        else:
            object.__setattr__(self, key, val)
            self.pop(key, None)

    def __delattr__(self, name):
        if self.get(name, None) is not None:
            del self[name]
        else:
            object.__delattr__(self, name)

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self._extra_repr()}"]
        children = tree_flatten(self.children(), is_leaf=self.is_module)
        for name, child in children:
            lines.append(textwrap.indent(f"({name}): {child!r}", "  "))
        return "\n".join(lines) + ("\n)" if children else ")")

    # ------------------------------------------------------------------ filters
    @staticmethod
    def is_module(value):
        return isinstance(value, Module)

    @staticmethod
    def valid_child_filter(module, key, value):
        return isinstance(value, (dict, list))

    @staticmethod
    def valid_parameter_filter(module, key, value):
        return isinstance(value, (dict, list, mx.array)) and not key.startswith("_")

    @staticmethod
    def trainable_parameter_filter(module, key, value):
        return Module.valid_parameter_filter(module, key, value) and key not in module._no_grad

    def filter_and_map(self, filter_fn: Callable[[Module, str, Any], bool],
                       map_fn: Optional[Callable] = None,
                       is_leaf_fn: Optional[Callable[[Module, str, Any], bool]] = None):
        """The members of this module, recursively, kept where filter_fn(module, key, value)
        is true and mapped with map_fn at the leaves (by default anything that is not a
        Module, dict or list). Inside dicts and lists the key passed to the filter is the
        dotted path from the owning module ("layers.0"); a rejected entry there leaves an
        empty dict so that list positions are preserved."""
        map_fn = map_fn or (lambda v: v)
        if is_leaf_fn is None:
            def is_leaf_fn(m, k, v):
                return not isinstance(v, (Module, dict, list))
        return {k: _walk(self, k, v, filter_fn, map_fn, is_leaf_fn)
                for k, v in self.items() if filter_fn(self, k, v)}

    def parameters(self):
        """All array members, recursively, as a tree of dicts and lists."""
        return self.filter_and_map(self.valid_parameter_filter)

    def trainable_parameters(self):
        """The array members that are not frozen, recursively."""
        return self.filter_and_map(self.trainable_parameter_filter)

    def children(self):
        """The direct sub-modules (inside the dicts and lists that hold them)."""
        return self.filter_and_map(self.valid_child_filter,
                                   is_leaf_fn=lambda m, k, v: isinstance(v, Module))

    def leaf_modules(self):
        """The sub-modules that have no sub-modules of their own."""
        def is_leaf_module(m, k, v):
            return isinstance(v, Module) and not tree_flatten(v.children())
        return self.filter_and_map(self.valid_child_filter, is_leaf_fn=is_leaf_module)

    # ------------------------------------------------------------------ updating
    def update(self, parameters: dict, strict: bool = True) -> Module:
        """Replace parameters with the arrays of `parameters`, a full or partial tree shaped
        like `parameters()`. With strict, every key must name an existing member and every
        replaced array must be replaced by an array."""
        _update_parameters(self, parameters, strict)
        return self

    def update_modules(self, modules: dict, strict: bool = True) -> Module:
        """Replace sub-modules with those of `modules`, a full or partial tree shaped like
        `children()`."""
        _update_modules(self, modules, strict)
        return self

    def apply(self, map_fn: Callable[[mx.array], mx.array],
              filter_fn: Optional[Callable[[Module, str, Any], bool]] = None) -> Module:
        """Map the parameters selected by filter_fn (default: all) with map_fn, in place;
        e.g. ``model.apply(lambda p: p.astype(mx.float16))``."""
        self.update(self.filter_and_map(filter_fn or Module.valid_parameter_filter, map_fn))
        return self

    def apply_to_modules(self, apply_fn: Callable[[str, Module], Any]) -> Module:
        """Call apply_fn(dotted_name, module) on this module ("") and every sub-module."""
        pending = [("", self)]
        while pending:
            name, module = pending.pop()
            apply_fn(name, module)
            prefix = "." + name if name else ""
            pending.extend(tree_flatten(module.children(), prefix=prefix,
                                        is_leaf=self.is_module))
        return self

    def modules(self):
        """This module and all its sub-modules, as a list."""
        found = []
        self.apply_to_modules(lambda name, m: found.append(m))
        return found

    def named_modules(self):
        """(dotted name, module) for this module ("") and all its sub-modules."""
        found = []
        self.apply_to_modules(lambda name, m: found.append((name, m)))
        return found

    # ------------------------------------------------------------------ freezing
    def _validate_keys(self, keys, strict):
        keys = keys if isinstance(keys, list) else [keys]
        if strict:
            for k in keys:
                if k not in self:
                    raise KeyError(f"Module doesn't contain member {k}.")
        return keys

    def _validate_keys_recursive(self, keys):
        # with recursion a key only has to exist somewhere in the model
        keys = keys if isinstance(keys, list) else [keys]
        modules = self.modules()
        for k in keys:
            if not any(k in m for m in modules):
                raise KeyError(f"Module doesn't contain member {k}.")

    def _own_parameter_keys(self):
        own = self.filter_and_map(
            lambda m, k, v: not isinstance(v, Module) and m.valid_parameter_filter(m, k, v))
        return [k for k, _ in tree_flatten(own)]

    def freeze(self, *, recurse: bool = True, keys: Optional[Union[str, List[str]]] = None,
               strict: bool = False) -> Module:
        """Exclude parameters (all, or those named by `keys`, e.g. "bias") from the
        trainable ones, in this module and with `recurse` its sub-modules. With `strict`
        the keys must exist. Freezing twice is harmless."""
        def freeze_one(_, m):
            local = m._own_parameter_keys() if keys is None else keys
            m._no_grad.update(m._validate_keys(local, local_strict))

        local_strict = strict
        if recurse:
            if strict and keys is not None:
                self._validate_keys_recursive(keys)
                local_strict = False
            self.apply_to_modules(freeze_one)
        else:
            freeze_one("", self)
        return self

    def unfreeze(self, *, recurse: bool = True, keys: Optional[Union[str, List[str]]] = None,
                 strict: bool = False) -> Module:
        """Make frozen parameters (all, or those named by `keys`) trainable again."""
        def unfreeze_one(_, m):
            if keys is None:
                m._no_grad.clear()
            else:
                m._no_grad.difference_update(m._validate_keys(keys, local_strict))

        local_strict = strict
        if recurse:
            if strict and keys is not None:
                self._validate_keys_recursive(keys)
                local_strict = False
            self.apply_to_modules(unfreeze_one)
        else:
            unfreeze_one("", self)
        return self

    # ------------------------------------------------------------------ modes and dtypes
    def _set_training_mode(self, mode: bool) -> None:
        self._training = mode

    def train(self, mode: bool = True) -> Module:
        """Put this module and its sub-modules in training (or, with False, evaluation)
        mode; layers such as Dropout and BatchNorm behave differently in each."""
        self.apply_to_modules(lambda _, m: m._set_training_mode(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def set_dtype(self, dtype: mx.Dtype,
                  predicate: Optional[Callable[[mx.Dtype], bool]] =
                  lambda x: mx.issubdtype(x, mx.floating)):
        """Cast the parameters whose dtype satisfies `predicate` (default: floating point
        ones; None casts all) to `dtype`."""
        if predicate is None:
            def predicate(_):
                return True
        self.apply(lambda p: p.astype(dtype) if predicate(p.dtype) else p)

    # ------------------------------------------------------------------ files
    def save_weights(self, file: str):
        """Write the parameters, keyed by dotted name, to a .npz or .safetensors file."""
        flat = tree_flatten(self.parameters(), destination={})
        name = os.fspath(file)
        if name.endswith(".npz"):
            mx.savez(name, **flat)
        elif name.endswith(".safetensors"):
            mx.save_safetensors(name, flat)
        else:
            raise ValueError(
                f"Unsupported file extension for {name}. Use '.npz' or '.safetensors'.")

    def load_weights(self, file_or_weights: Union[str, List[Tuple[str, mx.array]]],
                     strict: bool = True) -> Module:
        """Set the parameters from a .npz / .safetensors file or a list of (dotted name,
        array) pairs. With `strict` (the default) the names must be exactly the model's and
        the shapes must match; otherwise only the given names are updated."""
        weights = file_or_weights
        if isinstance(weights, (str, os.PathLike)):
            weights = list(mx.load(os.fspath(weights)).items())
        if strict:
            _check_weights(dict(weights), tree_flatten(self.parameters(), destination={}))
        if len(weights) != 0:
            self.update(tree_unflatten(list(weights)), strict=False)
        return self


def _check_weights(new, current):
    extra = new.keys() - current.keys()
    if extra:
        names = ",\n".join(sorted(extra))
        raise ValueError(f"Received {len(extra)} parameters not in model: \n{names}.")
    missing = current.keys() - new.keys()
    if missing:
        names = ",\n".join(sorted(missing))
        raise ValueError(f"Missing {len(missing)} parameters: \n{names}.")
    for k, v in current.items():
        given = new[k]
        if not isinstance(given, mx.array):
            raise ValueError(f"Expected mx.array but received {type(given)} for parameter {k}")
        if given.shape != v.shape:
            raise ValueError(f"Expected shape {v.shape} but received shape {given.shape} "
                             f"for parameter {k}")


def _walk(owner, key, value, filter_fn, map_fn, is_leaf_fn):
    """filter_and_map's recursion: `owner` is the module whose member `value` is (perhaps
    nested in dicts / lists), `key` its dotted path from there."""
    if is_leaf_fn(owner, key, value):
        return map_fn(value)
    if isinstance(value, Module):
        return {k: _walk(value, k, v, filter_fn, map_fn, is_leaf_fn)
                for k, v in value.items() if filter_fn(value, k, v)}
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            path = f"{key}.{k}"
            out[k] = (_walk(owner, path, v, filter_fn, map_fn, is_leaf_fn)
                      if filter_fn(owner, path, v) else {})
        return out
    if isinstance(value, list):
        out = []
        for i, v in enumerate(value):
            path = f"{key}.{i}"
            out.append(_walk(owner, path, v, filter_fn, map_fn, is_leaf_fn)
                       if filter_fn(owner, path, v) else {})
        return out
    raise RuntimeError("Unexpected leaf found while traversing the module")


def _pairs(dst, src, strict, what):
    """(index or key, current value, new value) for the entries of `src` present in `dst`,
    raising (when strict) for the others."""
    if isinstance(src, dict):
        for k in src:
            if k in dst:
                yield k, dst[k], src[k]
            elif strict:
                raise ValueError(f'Module does not have {what} named "{k}".')
    elif isinstance(src, list):
        for i, v in enumerate(src):
            if i >= len(dst):
                if strict:
                    raise ValueError(f"List index {i} is out of bounds for destination of "
                                     f"length {len(dst)}.")
                continue
            yield i, dst[i], v
    elif strict:
        raise ValueError(f"Received invalid type: {type(src).__name__}.")


def _update_parameters(dst, params, strict):
    for k, current, new in _pairs(dst, params, strict, "parameter"):
        if isinstance(current, mx.array):
            if strict and not isinstance(new, mx.array):
                raise ValueError(f"Received invalid type: {type(new).__name__}.")
            dst[k] = new
        else:
            _update_parameters(current, new, strict)


def _update_modules(dst, modules, strict):
    for k, current, new in _pairs(dst, modules, strict, "sub-module"):
        if isinstance(current, Module) and isinstance(new, Module):
            dst[k] = new
        elif isinstance(current, (dict, list)):
            _update_modules(current, new, strict)
        elif strict and new != {}:
            raise ValueError(f"Received invalid type: {type(new).__name__}.")
