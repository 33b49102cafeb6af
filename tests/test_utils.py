"""mx.utils tree functions: MLX's documented behaviour, plus exact round trips for
namedtuples and empty subtrees."""
from collections import namedtuple

import pytest

import mx.core as mx
from mx.utils import (tree_flatten, tree_map, tree_map_with_path, tree_merge, tree_reduce,
                      tree_unflatten)

P = namedtuple("P", "a b")


def test_tree_map_like_mlx():
    t = {"a": [mx.array(1.0), mx.array(2.0)], "b": (mx.array(3.0),)}
    r = tree_map(lambda x, y: x + y, t, t)
    assert r["a"][1].item() == 4.0 and isinstance(r["b"], tuple)
    r = tree_map(lambda x: len(x) if isinstance(x, list) else x, t,
                 is_leaf=lambda x: isinstance(x, list))
    assert r["a"] == 2
    assert tree_map(lambda x: x * 2, P(1, [2, 3])) == P(2, [4, 6])


def test_tree_map_with_path():
    out = tree_map_with_path(lambda p, x: p, {"a": [1, 2], "b": (3,)})
    assert out == {"a": ["a.0", "a.1"], "b": ("b.0",)}


def test_tree_flatten_keys_and_prefix():
    assert tree_flatten([[1, 2], {"a": 3}, (4,)]) == [("0.0", 1), ("0.1", 2), ("1.a", 3), ("2.0", 4)]
    # MLX drops the first character of the prefix
    assert tree_flatten([[1, 2]], prefix=".p") == [("p.0.0", 1), ("p.0.1", 2)]
    assert tree_flatten(5) == [("", 5)]
    d = {}
    assert tree_flatten({"a": 1}, destination=d) is d and d == {"a": 1}
    lst = []
    tree_flatten({"a": 1}, destination=lst)
    assert lst == [("a", 1)]
    with pytest.raises(TypeError, match=r"\[tree_flatten\]"):
        tree_flatten({"a": 1}, destination=3)


def test_tree_unflatten_like_mlx():
    assert tree_unflatten([("0.0", 1), ("0.1", 2), ("1.a", 3)]) == [[1, 2], {"a": 3}]
    assert tree_unflatten([("a.b", 1), ("a.c", 2)]) == {"a": {"b": 1, "c": 2}}
    assert tree_unflatten({"a.0": 1, "a.1": 2}) == {"a": [1, 2]}
    assert tree_unflatten([("", 5)]) == 5


def test_round_trip_keeps_namedtuples_and_empty_subtrees():
    t = {"x": P(1, [2, ()]), "e": {}, "l": [{}, {"w": 3}], "t": (4, 5)}
    flat = tree_flatten(t)
    assert [k for k, _ in flat] == ["x.0", "x.1.0", "l.1.w", "t.0", "t.1"]
    back = tree_unflatten(flat)
    assert back == t and isinstance(back["x"], P) and back["e"] == {} and back["l"][0] == {}


def test_keys_only_round_trip_fills_gaps_instead_of_shifting():
    # optimizer state of a model whose first layer has no parameters: after saving by key
    # and loading back, layer 1's state must stay at index 1 (MLX shifts it to 0)
    state = {"layers": [{}, {"weight": {"m": 1, "v": 2}}]}
    keys_only = list(tree_flatten(state))
    back = tree_unflatten(keys_only)
    assert back == state


def test_tree_reduce_and_merge():
    assert tree_reduce(lambda acc, x: acc + x, {"a": [1, 2], "b": (3,)}, 0) == 6
    assert tree_reduce(lambda acc, x: acc * x, [2, 3, 4]) == 24
    assert tree_merge({"a": [1, None]}, {"a": [None, 2], "b": 3}) == {"a": [1, 2], "b": 3}
    assert tree_merge({"a": 1}, {"a": 2}, lambda x, y: x + y) == {"a": 3}
    with pytest.raises(ValueError, match=r"\[tree_merge\]"):
        tree_merge({"a": 1}, {"a": 2})


def test_flatten_of_arrays_for_eval():
    params = {"w": mx.array([1.0]) * 2, "b": [mx.array(1.0) + 1]}
    mx.eval(params)
    assert all(v._data is not None for _, v in tree_flatten(params))
