"""The Metal side of the GPU backend: the Metal shim's module and kernel compilation for it.

A Metal library is compiled from ``translate.metal_source(fname, instances)``, which
instantiates each template instance under a ``[[host_name]]`` (``translate.host_name``), and
the shim finds kernels by those names. Metal has no double, so the compile groups are those
of ``kernels.METAL_TYPES``: a float64 instance has no Metal kernel.
"""
from __future__ import annotations

from mx.backend.gpu import kernels, translate
from mx.backend.gpu.shim import ShimError


def load_metal():
    """The Metal shim's cffi module (ffi, lib); ImportError when it was not built (it is built
    on macOS only)."""
    from mx.backend.gpu import _metal_shim
    return _metal_shim.ffi, _metal_shim.lib


# {group key: (shader file, [instances])} without float64, and each group's instances as a set
GROUPS = kernels.groups(kernels.METAL_TYPES)
_MEMBERS = {key: frozenset(insts) for key, (_, insts) in GROUPS.items()}


class MetalKernelCache(kernels.KernelCache):
    """KernelCache for the Metal shim: a group is compiled into one library whose functions
    are the host names of its instances; each kernel's pipeline state is made by the shim the
    first time that kernel is asked for, not for the whole group at once."""

    types = kernels.METAL_TYPES

    def __init__(self, shim):
        super().__init__(shim)
        self._libraries = {}            # group key -> the shim's library

    def has_kernel(self, kind, name, inst) -> bool:
        """Whether instance `inst` of group (kind, name) exists on Metal."""
        return inst in _MEMBERS.get((kind, name), ())

    def source(self, fname):
        """The Metal view of shaders/`fname` without instantiations (each group adds its
        own; see compile_group)."""
        src = self._sources.get(fname)
        if src is None:
            src = self._sources[fname] = translate.metal_source(fname, ())
        return src

    def get(self, kind, name, inst):
        k = self._kernels.get(inst)
        if k is not None:
            return k
        if not self.has_kernel(kind, name, inst):
            raise ShimError(f"[gpu] no Metal kernel {inst} for {kind} {name} "
                            f"(Metal kernels exist for {', '.join(self.types)})")
        lib = self._libraries.get((kind, name))
        if lib is None:
            self.compile_group(kind, name)
            lib = self._libraries[(kind, name)]
        k = self.shim.kernel(lib, translate.host_name(inst))
        with self._lock:
            self._kernels[inst] = k
        return k

    def compile_group(self, kind, name):
        key = (kind, name)
        if key in self._libraries:
            return
        entry = GROUPS.get(key)
        if entry is None:
            raise ShimError(f"[gpu] no Metal kernels for {kind} {name}")
        fname, insts = entry
        lib = self.shim.library(translate.metal_source(fname, insts),
                                [translate.host_name(i) for i in insts])
        with self._lock:
            if key not in self._libraries:
                self._libraries[key] = lib
                self.compiled_groups += 1

    def warm_up(self, keys=None, threads=8):
        """Compile the groups `keys` (all Metal groups when None) in parallel threads;
        groups without Metal kernels are skipped."""
        keys = list(GROUPS) if keys is None else [k for k in keys if k in GROUPS]
        super().warm_up(keys, threads)
