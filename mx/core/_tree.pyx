# cython: language_level=3
"""Walking Python trees (lists, tuples, dicts and their subclasses, Modules included).

A tree's containers are lists, tuples (namedtuples too) and dicts; everything else is a
leaf unless `is_leaf` says otherwise. These walks back eval, the transforms and mx.utils.
"""
from mx.core._array cimport array


def collect_arrays(tuple trees):
    """Every mx array inside `trees`, in depth-first order (used by eval)."""
    cdef list out = []
    cdef list stack = list(reversed(trees))
    cdef object x
    while stack:
        x = stack.pop()
        if isinstance(x, array):
            out.append(x)
        elif isinstance(x, (list, tuple)):
            stack.extend(reversed(x))
        elif isinstance(x, dict):
            stack.extend(reversed(list(x.values())))
    return out


cdef inline bint is_container(object x):
    return isinstance(x, (list, tuple, dict))


cdef inline bint is_namedtuple(object x):
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


cdef object rebuild(object like, list children):
    """A container of like's kind holding `children` (values in like's order)."""
    if isinstance(like, dict):
        keys = list(like.keys())
        d = {k: v for k, v in zip(keys, children)}
        if type(like) is dict:
            return d
        try:
            out = type(like)()
            out.update(d)
            return out
        except TypeError:
            return d
    if is_namedtuple(like):
        return type(like)(*children)
    if isinstance(like, tuple):
        return tuple(children) if type(like) is tuple else type(like)(children)
    return children if type(like) is list else type(like)(children)


cdef list children_of(object x):
    if isinstance(x, dict):
        return list(x.values())
    return list(x)


cdef list keys_of(object x):
    if isinstance(x, dict):
        return [str(k) for k in x.keys()]
    return [str(i) for i in range(len(x))]


def tree_map(fn, tree, *rest, is_leaf=None):
    """Apply `fn` to the leaves of `tree` (and the matching leaves of each tree in `rest`)
    and return a tree of the same structure holding the results."""
    return _map(fn, tree, rest, is_leaf, None, False)


def tree_map_with_path(fn, tree, *rest, is_leaf=None, path=None):
    """Like tree_map, but `fn` receives the leaf's dotted path first."""
    return _map(fn, tree, rest, is_leaf, path, True)


cdef object _map(object fn, object tree, tuple rest, object is_leaf, object path, bint with_path):
    if (is_leaf is not None and is_leaf(tree)) or not is_container(tree):
        if with_path:
            return fn(path, tree, *rest)
        return fn(tree, *rest)
    cdef list out = []
    cdef list keys
    if isinstance(tree, dict):
        for k, v in tree.items():
            sub = tuple(r[k] for r in rest)
            p = (str(k) if path is None else f"{path}.{k}") if with_path else None
            out.append(_map(fn, v, sub, is_leaf, p, with_path))
    else:
        for i, v in enumerate(tree):
            sub = tuple(r[i] for r in rest)
            p = (str(i) if path is None else f"{path}.{i}") if with_path else None
            out.append(_map(fn, v, sub, is_leaf, p, with_path))
    return rebuild(tree, out)


class FlatTree(list):
    """The list tree_flatten returns: (key, leaf) pairs, plus the structure they came from,
    so that tree_unflatten restores namedtuples, tuples and empty subtrees exactly."""

    __slots__ = ("structure",)


cdef object _skeleton(object tree, object is_leaf):
    """The tree with every leaf replaced by None (containers kept, empty ones too)."""
    if (is_leaf is not None and is_leaf(tree)) or not is_container(tree):
        return None
    return rebuild(tree, [_skeleton(c, is_leaf) for c in children_of(tree)])


cdef void _flatten(object tree, str prefix, object is_leaf, list out):
    if (is_leaf is not None and is_leaf(tree)) or not is_container(tree):
        out.append((prefix[1:], tree))
        return
    cdef list keys = keys_of(tree)
    cdef list vals = children_of(tree)
    for i in range(len(keys)):
        _flatten(vals[i], prefix + "." + keys[i], is_leaf, out)


def tree_flatten(tree, prefix="", is_leaf=None, destination=None):
    """Flatten `tree` into (dotted key, leaf) pairs: list indices and dict keys joined with
    dots ("layers.0.weight"). The first character of `prefix` is dropped (MLX's rule). With a
    `destination` list or dict, the pairs are added to it and it is returned."""
    cdef list out = []
    _flatten(tree, prefix, is_leaf, out)
    if destination is None:
        flat = FlatTree(out)
        flat.structure = (_skeleton(tree, is_leaf), prefix)
        return flat
    if isinstance(destination, dict):
        destination.update(out)
    elif isinstance(destination, list):
        destination.extend(out)
    else:
        raise TypeError("[tree_flatten] destination must be a list or a dict.")
    return destination


cdef object _fill(object skel, object it):
    if skel is None:
        return next(it)
    return rebuild(skel, [_fill(c, it) for c in children_of(skel)])


def tree_unflatten(tree):
    """Rebuild a tree from tree_flatten's pairs (a list of (key, value) or a dict). Keys made
    of digits become list positions; a gap in a list (an empty subtree dropped on the way)
    is filled with an empty dict instead of shifting the later entries."""
    if isinstance(tree, FlatTree) and getattr(tree, "structure", None) is not None:
        skel, prefix = tree.structure
        if prefix == "" or prefix is None:
            return _fill(skel, iter([v for _, v in tree]))
    items = list(tree.items()) if isinstance(tree, dict) else list(tree)
    if len(items) == 1 and items[0][0] == "":
        return items[0][1]
    root = {}
    for key, value in items:
        parts = str(key).split(".")
        node = root
        for p in parts[:-1]:
            nxt = node.get(p)
            if not isinstance(nxt, dict):
                nxt = node[p] = {}
            node = nxt
        node[parts[-1]] = value
    return _listify(root)


cdef object _listify(object node):
    if not isinstance(node, dict) or type(node) is not dict:
        return node
    if node and all(isinstance(k, str) and k.isdigit() for k in node):
        n = max(int(k) for k in node) + 1
        out = [{} for _ in range(n)]
        for k, v in node.items():
            out[int(k)] = _listify(v)
        return out
    return {k: _listify(v) for k, v in node.items()}


def tree_reduce(fn, tree, initializer=None, is_leaf=None):
    """Fold `fn(accumulator, leaf)` over the leaves of `tree`."""
    cdef list leaves = []
    _flatten(tree, "", is_leaf, leaves)
    acc = initializer
    first = initializer is None
    for _, leaf in leaves:
        if first:
            acc = leaf
            first = False
        else:
            acc = fn(acc, leaf)
    return acc


def tree_merge(tree_a, tree_b, merge_fn=None):
    """Merge two trees of the same shape where each position is empty (None, or an empty
    container) in at least one of them; `merge_fn(a, b)` resolves positions set in both."""
    if tree_a is None or (is_container(tree_a) and len(tree_a) == 0):
        return tree_b
    if tree_b is None or (is_container(tree_b) and len(tree_b) == 0):
        return tree_a
    if is_container(tree_a) and is_container(tree_b):
        if isinstance(tree_a, dict) != isinstance(tree_b, dict) or (
                not isinstance(tree_a, dict) and isinstance(tree_a, tuple) != isinstance(tree_b, tuple)):
            raise TypeError("[tree_merge] Trees of different container types cannot be merged.")
        if isinstance(tree_a, dict):
            keys = list(tree_a.keys()) + [k for k in tree_b.keys() if k not in tree_a]
            merged = {k: tree_merge(tree_a.get(k), tree_b.get(k), merge_fn) for k in keys}
            return rebuild(tree_a, list(merged.values())) if list(tree_a.keys()) == keys else merged
        n = max(len(tree_a), len(tree_b))
        a = list(tree_a) + [None] * (n - len(tree_a))
        b = list(tree_b) + [None] * (n - len(tree_b))
        return rebuild(tree_a if len(tree_a) == n else tree_b,
                       [tree_merge(x, y, merge_fn) for x, y in zip(a, b)])
    if merge_fn is None:
        raise ValueError("[tree_merge] Both trees have a value at the same position; pass merge_fn.")
    return merge_fn(tree_a, tree_b)
