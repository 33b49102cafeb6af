"""Source generators for fused elementwise graphs.

A fusion pass (mx/backend/cpu/fusion.py) describes a group of elementwise steps as a
`FusedGraph`; a renderer turns it into source for one device: `c.py` writes C99 for the
CPU. The description is deliberately backend neutral (op names are the primitive names,
dtypes are mx dtype names, values are referenced by position) so that a CUDA or Metal
renderer can consume the same graph.

A graph computes ONE output of n elements. Each input is either a buffer of n elements
(read at the loop index) or a scalar (a buffer of one element, read once). Nodes are in
topological order; the last node is the output.
"""
from __future__ import annotations

from typing import NamedTuple


class Input(NamedTuple):
    dtype: str           # "float32", "int32", "bool", ...
    scalar: bool         # one element broadcast to all n, instead of n elements


class Node(NamedTuple):
    op: str              # primitive name: "add", "exp", "select", "astype", ...
    dtype: str           # output dtype name
    args: tuple          # references: ("in", k), ("node", j) or ("lit", number, dtype name)
    params: tuple = ()   # sorted (name, value) pairs, e.g. (("dtype", "float32"),)


class FusedGraph(NamedTuple):
    inputs: tuple        # of Input
    nodes: tuple         # of Node; nodes[-1] is the output

    @property
    def out_dtype(self):
        return self.nodes[-1].dtype

    def arg_dtype(self, ref):
        """The dtype name of a reference."""
        kind = ref[0]
        if kind == "in":
            return self.inputs[ref[1]].dtype
        if kind == "node":
            return self.nodes[ref[1]].dtype
        return ref[2]


__all__ = ["Input", "Node", "FusedGraph"]
