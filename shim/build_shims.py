"""cffi builders for the GPU shims (used by setup.py; importable on any machine).

The ABI is read from mx_shim.h itself (the part between its MX-CDEF markers), so the header
is the single statement of it. Each shim becomes an API-mode extension module of the
mx.backend.gpu package: `_cuda_shim` on Linux (it dlopens CUDA at run time, so it builds
without CUDA), `_metal_shim` on macOS (Objective-C with ARC, linked against Apple's Metal,
MetalPerformanceShaders and Foundation frameworks).
"""
from __future__ import annotations

import os
import re
import sys

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def cdef_text() -> str:
    """The cdef for cffi: the header's declarations, with #define values fetched from C."""
    with open(os.path.join(HERE, "mx_shim.h")) as f:
        text = f.read()
    body = text.split("/* MX-CDEF-BEGIN */", 1)[1].split("/* MX-CDEF-END */", 1)[0]
    out = []
    for line in body.splitlines():
        m = re.match(r"\s*#define\s+(\w+)\s+\S", line)
        out.append(f"#define {m.group(1)} ..." if m else line)
    return "\n".join(out)


def _rel(path: str) -> str:
    # setuptools wants source paths relative to the project root (setup.py's directory)
    return os.path.relpath(os.path.join(HERE, path), os.path.dirname(HERE))


def cuda_ffi() -> FFI:
    ffi = FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        "mx.backend.gpu._cuda_shim",
        '#include "mx_shim.h"',
        sources=[_rel("cuda/mx_cuda.c")],
        include_dirs=[_rel(".")],
        libraries=["dl", "pthread"],
        extra_compile_args=["-O2"],
    )
    return ffi


METAL_FRAMEWORKS = ("Metal", "MetalPerformanceShaders", "Foundation")


def metal_ffi() -> FFI:
    """The Metal shim (macOS only: it links Apple's frameworks)."""
    ffi = FFI()
    ffi.cdef(cdef_text())
    ffi.set_source(
        "mx.backend.gpu._metal_shim",
        '#include "mx_shim.h"',
        sources=[_rel("metal/mx_metal.m")],
        include_dirs=[_rel(".")],
        # (-fobjc-arc also reaches cffi's generated C wrapper, where clang ignores it)
        extra_compile_args=["-O2", "-fobjc-arc"],
        extra_link_args=[arg for fw in METAL_FRAMEWORKS for arg in ("-framework", fw)],
    )
    return ffi


def extensions(tmpdir: str = "build/cffi", platform: str | None = None) -> list:
    """The shim extension modules to build on `platform` (default: this one)."""
    platform = sys.platform if platform is None else platform
    exts = []
    if platform.startswith("linux"):
        exts.append(cuda_ffi().distutils_extension(tmpdir=tmpdir))
    elif platform == "darwin":
        exts.append(metal_ffi().distutils_extension(tmpdir=tmpdir))
    return exts


if __name__ == "__main__":
    build = cuda_ffi if sys.platform.startswith("linux") else metal_ffi
    build().compile(tmpdir=os.path.join(os.path.dirname(HERE), "build", "cffi"), verbose=True)
