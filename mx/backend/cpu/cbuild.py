"""Build generated C into Python extension modules with cffi, cached on disk and in memory.

`load(cdef, source)` returns the cffi module (`.lib` with the functions, `.ffi`) for a C
source. The built extension is named after a SHA-256 of the source, the compiler (path and
version), the flags, the CPU (flags include -march=native) and the Python ABI, and lives in
$XDG_CACHE_HOME/mx/kernels (default ~/.cache/mx/kernels), so a second process loads it
without compiling. Builds happen in a temporary folder and are moved into the cache
atomically: concurrent processes building the same kernel both end with a valid file. A
cache entry that cannot be loaded (truncated, corrupt, unreadable) is rebuilt.

`toolchain()` probes once per process for a working compiler (the one setuptools would
use) and for the optional flags it accepts (-march=native, -fopenmp); None when there is
none, in which case `load` raises CompilerUnavailable.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sysconfig
import tempfile
import threading
from typing import NamedTuple

# -fno-math-errno and -fno-trapping-math let sqrt/floor inline and branches become selects
# (so loops vectorise) without changing any value (no -ffast-math: NaN, inf and signed
# zeros keep their meaning); -ffp-contract=off keeps a*b+c rounded twice, as NumPy does;
# -w: the generated code is not the user's to fix.
BASE_FLAGS = ("-O3", "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off", "-w")
OPTIONAL_FLAGS = (("-march=native",), ("-fopenmp",))

_lock = threading.RLock()
_loaded = {}          # cache key -> module
_state = {"toolchain": None, "probed": False}


class CompilerUnavailable(RuntimeError):
    """No working C compiler (or cffi) in this process."""


class Toolchain(NamedTuple):
    cc: tuple            # compiler command
    identity: str        # path + version text, part of the cache key
    flags: tuple         # compile flags
    link: tuple          # link flags


def find_compiler():
    """The C compiler command setuptools will run (a list), or None when it is missing."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    argv = shlex.split(cc)
    if not argv:
        return None
    path = shutil.which(argv[0])
    return [path] + argv[1:] if path else None


_PROBE_SOURCE = r"""
#include <math.h>
#include <stdint.h>
void probe(int64_t n, const float *restrict x, float *restrict y)
{
    #pragma omp parallel for if(n > 65536)
    for (int64_t i = 0; i < n; i++) y[i] = sqrtf(x[i]) + floorf(x[i]);
}
"""


def _compiles(cc, flags, workdir):
    src = os.path.join(workdir, "probe.c")
    with open(src, "w") as f:
        f.write(_PROBE_SOURCE)
    cmd = list(cc) + list(flags) + ["-fPIC", "-shared", src, "-o", os.path.join(workdir, "probe.so")]
    try:
        r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def _probe():
    try:
        import cffi  # noqa: F401
    except ImportError:
        return None
    cc = find_compiler()
    if cc is None:
        return None
    try:
        version = subprocess.run(cc + ["--version"], capture_output=True, text=True,
                                 timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    with tempfile.TemporaryDirectory(prefix="mx-probe-") as work:
        # the most capable flag set the compiler accepts (one run in the common case)
        candidates = [[]]
        for opt in OPTIONAL_FLAGS:
            candidates = [c + list(opt) for c in candidates] + candidates
        for extra in candidates:
            flags = list(BASE_FLAGS) + extra
            if _compiles(cc, flags, work):
                link = ["-fopenmp"] if "-fopenmp" in flags else []
                identity = " ".join(cc) + "\n" + version + _cpu_id(flags)
                return Toolchain(tuple(cc), identity, tuple(flags), tuple(link))
    return None


def _cpu_id(flags):
    """With -march=native the code depends on the CPU: its model and feature flags."""
    if "-march=native" not in flags:
        return ""
    import platform
    ident = platform.machine() + platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags", "Features")):
                    ident += line
                    if line.startswith(("flags", "Features")):
                        break
    except OSError:
        pass
    return ident


def toolchain():
    """The probed Toolchain, or None without a working compiler (probed once)."""
    with _lock:
        if not _state["probed"]:
            _state["toolchain"] = _probe()
            _state["probed"] = True
        return _state["toolchain"]


def reset():
    """Forget the probed compiler and the loaded modules (tests)."""
    with _lock:
        _state["probed"] = False
        _state["toolchain"] = None
        _loaded.clear()


def cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "mx", "kernels")


def module_name(cdef, source, tc=None):
    """The cache name of the module built from (cdef, source) with the toolchain."""
    tc = tc or toolchain()
    import cffi
    h = hashlib.sha256()
    for part in (cdef, source, tc.identity, " ".join(tc.flags), " ".join(tc.link),
                 sysconfig.get_config_var("EXT_SUFFIX") or "", cffi.__version__):
        h.update(part.encode())
        h.update(b"\0")
    return "_mxk_" + h.hexdigest()[:40]


def module_path(name):
    return os.path.join(cache_dir(), name + (sysconfig.get_config_var("EXT_SUFFIX") or ".so"))


def load(cdef, source):
    """The cffi module compiled from `source` (functions declared by `cdef`)."""
    tc = toolchain()
    if tc is None:
        raise CompilerUnavailable("no working C compiler")
    name = module_name(cdef, source, tc)
    with _lock:
        mod = _loaded.get(name)
        if mod is None:
            path = module_path(name)
            mod = _import(name, path) if os.path.exists(path) else None
            if mod is None:
                mod = _import(name, _build(name, cdef, source, tc, path), must=True)
            _loaded[name] = mod
        return mod


def _passive_openmp():
    """GNU OpenMP's idle workers spin by default, and on a small machine they then take the
    cores BLAS needs for the matrix products between fused kernels (a compiled training step
    ran 3x slower). Ask for sleeping workers unless the user chose; this only takes effect if
    libgomp is not loaded yet (another library, PyTorch for one, may have loaded it)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _import(name, path, must=False):
    _passive_openmp()
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.lib, mod.ffi      # noqa: B018 (a cffi module has both)
        return mod
    except Exception:
        if must:
            raise
        # a corrupt or unreadable cache entry: a miss, rebuilt by the caller
        try:
            os.remove(path)
        except OSError:
            pass
        return None


def _build(name, cdef, source, tc, path):
    """Compile into a temporary folder; move the extension to `path` atomically. Returns
    the path of the extension (a temporary one when the cache folder is not writable)."""
    import cffi
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        work = tempfile.mkdtemp(prefix="build-", dir=folder)
    except OSError:
        folder, work = None, tempfile.mkdtemp(prefix="mx-build-")
    ffi = cffi.FFI()
    ffi.cdef(cdef)
    ffi.set_source(name, source, extra_compile_args=list(tc.flags), extra_link_args=list(tc.link))
    try:
        built = ffi.compile(tmpdir=work, verbose=False)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if folder is None:
        return built
    try:
        os.replace(built, path)
    except OSError:
        return built
    shutil.rmtree(work, ignore_errors=True)
    return path


__all__ = ["CompilerUnavailable", "Toolchain", "cache_dir", "find_compiler", "load",
           "module_name", "module_path", "reset", "toolchain"]
