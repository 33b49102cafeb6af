"""mx.utils: tree utilities (MLX's mlx.utils), walked in Cython (mx/core/_tree.pyx)."""
from mx.core._tree import (FlatTree, tree_flatten, tree_map, tree_map_with_path, tree_merge,
                           tree_reduce, tree_unflatten)

__all__ = ["tree_flatten", "tree_unflatten", "tree_map", "tree_map_with_path", "tree_reduce",
           "tree_merge", "FlatTree"]
