"""The primitive registry: `declare` creates the one object that holds everything about a
primitive (shape/dtype rule, CPU and GPU kernels, vjp, jvp, vmap)."""
from __future__ import annotations

from mx.core._array import Primitive

REGISTRY: dict[str, Primitive] = {}

# Primitives made per use (a compiled program's, a fused step's) get their GPU kernel from a
# factory the GPU backend installs here, so that core names no device: "compiled" ->
# f(program, traced input shapes), "fused" -> f(fused kernel); each returns a GPU handler.
DYNAMIC_GPU_HANDLERS: dict = {}


def declare(name, rule=None, cpu=None, *, gpu=None, vjp=None, jvp=None, vmap=None,
            nout=1, donates=False, doc="") -> Primitive:
    """Create and register a primitive; a name may be declared once."""
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is declared twice")
    p = Primitive(name, rule, cpu, gpu=gpu, vjp=vjp, jvp=jvp, vmap=vmap, nout=nout,
                  donates=donates, doc=doc)
    REGISTRY[name] = p
    return p
