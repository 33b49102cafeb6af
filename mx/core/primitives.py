"""The primitive registry: `declare` creates the one object that holds everything about a
primitive (shape/dtype rule, CPU and GPU kernels, vjp, jvp, vmap)."""
from __future__ import annotations

from mx.core._array import Primitive

REGISTRY: dict[str, Primitive] = {}


def declare(name, rule=None, cpu=None, *, gpu=None, vjp=None, jvp=None, vmap=None,
            nout=1, donates=False, doc="") -> Primitive:
    """Create and register a primitive; a name may be declared once."""
    if name in REGISTRY:
        raise ValueError(f"primitive {name!r} is declared twice")
    p = Primitive(name, rule, cpu, gpu=gpu, vjp=vjp, jvp=jvp, vmap=vmap, nout=nout,
                  donates=donates, doc=doc)
    REGISTRY[name] = p
    return p
