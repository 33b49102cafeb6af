"""Build the Cython core (array object, scheduler, tree walking).

Metadata lives in pyproject.toml; this file only declares the compiled extensions.
"""
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_py import build_py
from Cython.Build import cythonize
import numpy

# Bounds checks and negative indexing stay on: these modules index Python lists the Python
# way, and a wrong index must raise, not read past the end. Typed hot loops (the special
# functions) switch them off in their own file headers.
directives = {
    "language_level": "3",
    "embedsignature": True,
}

extensions = [
    Extension("mx.core._array", ["mx/core/_array.pyx"]),
    Extension("mx.core._scheduler", ["mx/core/_scheduler.pyx"]),
    Extension("mx.core._tree", ["mx/core/_tree.pyx"]),
    Extension("mx.core._program", ["mx/core/_program.pyx"]),
    Extension("mx.core._memory", ["mx/core/_memory.pyx"], include_dirs=[numpy.get_include()],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]),
    Extension("mx.backend.cpu._special", ["mx/backend/cpu/_special.pyx"], libraries=["m"]),
    Extension("mx.backend.gpu._launch", ["mx/backend/gpu/_launch.pyx"],
              include_dirs=[numpy.get_include()],
              define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]),
]


def shim_extensions():
    """The GPU shims as cffi API-mode modules (shim/build_shims.py): on Linux the CUDA shim,
    which dlopens the GPU libraries at run time and so builds on machines without a GPU; on
    macOS the Metal shim, linked against Apple's Metal frameworks."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim"))
    try:
        import build_shims
    finally:
        sys.path.pop(0)
    return build_shims.extensions()


class build_py_with_shaders(build_py):
    """Also copy shaders/ (the .metal kernels and their preludes) into the built package as
    mx/_shaders, so that a wheel carries them (mx.backend.gpu.translate looks there first)."""

    def run(self):
        super().run()
        root = os.path.dirname(os.path.abspath(__file__))
        src = os.path.join(root, "shaders")
        dst = os.path.join(self.build_lib, "mx", "_shaders")
        for folder, _dirs, files in os.walk(src):
            out = os.path.join(dst, os.path.relpath(folder, src))
            self.mkpath(out)
            for name in files:
                if name.endswith((".metal", ".h")):
                    self.copy_file(os.path.join(folder, name), os.path.join(out, name))


setup(ext_modules=cythonize(extensions, compiler_directives=directives) + shim_extensions(),
      cmdclass={"build_py": build_py_with_shaders})
