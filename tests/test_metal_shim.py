"""The Metal shim checked off macOS: shim/metal/mx_metal.m defines the whole ABI of
shim/mx_shim.h; with clang installed it parses as Objective-C with ARC and compiles to a macOS
object against the stub headers of shim/metal/check/ (on macOS: against the SDK); the build
and the Python side (mx/backend/gpu/metal.py) are wired as macOS needs. Nothing here runs
Metal: that needs a Mac."""
import os
import re
import shutil
import subprocess
import sys

import pytest

from mx.backend.gpu import kernels, metal, translate
from mx.backend.gpu.shim import ShimError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM = os.path.join(ROOT, "shim")
HEADER = os.path.join(SHIM, "mx_shim.h")
METAL_SRC = os.path.join(SHIM, "metal", "mx_metal.m")
CUDA_SRC = os.path.join(SHIM, "cuda", "mx_cuda.c")
STUBS = os.path.join(SHIM, "metal", "check")

CLANG = shutil.which("clang")
needs_clang = pytest.mark.skipif(
    CLANG is None,
    reason="clang is not installed (apt-get install clang): the Objective-C check of the Metal shim needs it")


def _read(path):
    with open(path) as f:
        return f.read()


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def abi_functions():
    """Names of the functions declared between the MX-CDEF markers of mx_shim.h."""
    body = _read(HEADER).split("/* MX-CDEF-BEGIN */", 1)[1].split("/* MX-CDEF-END */", 1)[0]
    body = _strip_comments(body)
    body = re.sub(r"typedef\s+struct\s*\{.*?\}\s*\w+\s*;", " ", body, flags=re.S)
    return re.findall(r"\b(mx_\w+)\s*\(", body)


def missing_definitions(source, names):
    """The names in `names` that `source` (C or Objective-C) does not define at top level."""
    text = _strip_comments(source)
    return [n for n in names
            if not re.search(rf"^[A-Za-z_][\w \t\*]*\b{n}\s*\([^;{{}}]*\)\s*\{{", text, re.M)]


# -- the ABI --------------------------------------------------------------------------------

def test_header_declares_the_abi():
    names = abi_functions()
    assert len(names) == len(set(names)) >= 30
    for n in ("mx_last_error", "mx_host_alloc", "mx_library_new", "mx_dispatch", "mx_gemm",
              "mx_stream_native", "mx_event_elapsed_ms"):
        assert n in names


def test_metal_shim_defines_every_abi_function():
    missing = missing_definitions(_read(METAL_SRC), abi_functions())
    assert not missing, f"shim/metal/mx_metal.m does not define {missing}"


def test_cuda_shim_defines_every_abi_function():
    missing = missing_definitions(_read(CUDA_SRC), abi_functions())
    assert not missing, f"shim/cuda/mx_cuda.c does not define {missing}"


def test_missing_definition_is_noticed():
    src = _read(METAL_SRC)
    cut = re.sub(r"\nvoid \*mx_stream_native\(mx_stream \*s\) \{", "\nstatic int gone(void) {", src)
    assert cut != src
    assert missing_definitions(cut, abi_functions()) == ["mx_stream_native"]
    # a declaration is not a definition
    assert missing_definitions("void *mx_stream_native(mx_stream *s);\n", ["mx_stream_native"]) \
        == ["mx_stream_native"]


def test_metal_shim_has_no_python_c_api():
    src = _strip_comments(_read(METAL_SRC))
    assert "Python.h" not in src and not re.search(r"\bPy[A-Z_]\w*\(", src)


# -- clang ----------------------------------------------------------------------------------

def _clang(args, cwd=ROOT):
    return subprocess.run([CLANG] + args, cwd=cwd, capture_output=True, text=True, timeout=120)


def _darwin_args():
    """clang arguments that compile for macOS 11 (Python's usual deployment target on Apple
    silicon): the SDK on macOS, else the stub headers and glibc's."""
    strict = ["-Wall", "-Wextra", "-Werror", "-Werror=unguarded-availability",
              "-Werror=unguarded-availability-new"]
    if sys.platform == "darwin":
        return ["-x", "objective-c", "-fobjc-arc", "-mmacosx-version-min=11.0"] + strict + ["-I", SHIM]
    multiarch = subprocess.run([CLANG, "-print-multiarch"], capture_output=True, text=True).stdout.strip()
    include = os.path.join("/usr/include", multiarch) if multiarch else ""
    if not multiarch or not os.path.isdir(include):
        pytest.skip(f"no multiarch include directory for glibc ({include or 'clang -print-multiarch is empty'})")
    arch = {"x86_64": "x86_64", "aarch64": "arm64"}.get(multiarch.split("-")[0])
    if arch is None:
        pytest.skip(f"no macOS target for {multiarch}")
    return (["-x", "objective-c", "-fobjc-arc", "-target", f"{arch}-apple-macos11.0",
             "-isystem", include, "-U__nonnull"] + strict + ["-I", STUBS, "-I", SHIM])


@needs_clang
def test_metal_shim_parses_as_objective_c_with_arc():
    """The brief's check: `clang -fsyntax-only -x objective-c -fobjc-arc -I shim/metal/check`."""
    if sys.platform == "darwin":
        args = ["-fsyntax-only", "-x", "objective-c", "-fobjc-arc", "-Wall", "-Wextra", "-Werror", "-I", SHIM]
    else:
        args = ["-fsyntax-only", "-x", "objective-c", "-fobjc-arc", "-fobjc-runtime=macosx-11.0",
                "-fblocks", "-Wall", "-Wextra", "-Werror", "-I", STUBS, "-I", SHIM]
    r = _clang(args + [METAL_SRC])
    assert r.returncode == 0, r.stderr


@needs_clang
def test_metal_shim_compiles_for_macos_11(tmp_path):
    """A Mach-O object for macOS 11, every newer API behind @available."""
    obj = tmp_path / "mx_metal.o"
    r = _clang(["-c", "-O2"] + _darwin_args() + [METAL_SRC, "-o", str(obj)])
    assert r.returncode == 0, r.stderr
    assert obj.stat().st_size > 0


@needs_clang
@pytest.mark.skipif(sys.platform == "darwin", reason="checks the stub headers, which macOS does not use")
@pytest.mark.parametrize("body, message", [
    ("(void)dev.architecture;", "'architecture' is only available on macOS 14.0 or newer"),
    ("[dev newCommandQueueX];", "newCommandQueueX"),
    ("void *p = (void *)dev; (void)p;", "requires a bridged cast"),
])
def test_stub_check_catches_mistakes(tmp_path, body, message):
    """The stubs carry Apple's availability, selectors and ARC's rules: mistakes fail."""
    src = tmp_path / "bad.m"
    src.write_text("#import <Metal/Metal.h>\nvoid f(id<MTLDevice> dev) {\n    " + body + "\n}\n")
    r = _clang(["-fsyntax-only"] + _darwin_args() + [str(src)])
    assert r.returncode != 0
    assert message in r.stderr, r.stderr


# -- the build ------------------------------------------------------------------------------

def _build_shims():
    sys.path.insert(0, SHIM)
    try:
        import build_shims
    finally:
        sys.path.pop(0)
    return build_shims


def test_build_makes_the_metal_shim_on_macos_only(tmp_path):
    b = _build_shims()
    (linux,) = b.extensions(str(tmp_path / "linux"), "linux")
    assert linux.name == "mx.backend.gpu._cuda_shim"
    assert linux.extra_compile_args == ["-O2"] and linux.extra_link_args == []
    assert not any(s.endswith(".m") for s in linux.sources)
    (mac,) = b.extensions(str(tmp_path / "mac"), "darwin")
    assert mac.name == "mx.backend.gpu._metal_shim"
    assert any(s.endswith(os.path.join("metal", "mx_metal.m")) for s in mac.sources)
    assert "-fobjc-arc" in mac.extra_compile_args
    assert mac.extra_link_args == ["-framework", "Metal", "-framework", "MetalPerformanceShaders",
                                   "-framework", "Foundation"]
    assert b.extensions(str(tmp_path / "win"), "win32") == []


@pytest.mark.skipif(sys.platform == "darwin", reason="the Metal shim is built on macOS")
def test_load_metal_without_the_shim():
    with pytest.raises(ImportError, match="_metal_shim"):
        metal.load_metal()


# -- kernels for Metal ----------------------------------------------------------------------

class FakeShim:
    """Records what MetalKernelCache asks of the shim."""

    def __init__(self):
        self.libraries = []     # (source, names)
        self.lookups = []

    def library(self, source, names, options=""):
        self.libraries.append((source, list(names)))
        return len(self.libraries) - 1

    def kernel(self, lib, name):
        if name not in self.libraries[lib][1]:
            raise ShimError(f"[gpu] the library has no kernel {name}")
        self.lookups.append(name)
        return ("kernel", name)


def test_metal_groups_have_no_double_and_unique_host_names():
    names = {}
    for key, (_, insts) in metal.GROUPS.items():
        assert insts, key
        for inst in insts:
            assert "double" not in inst
            names.setdefault(translate.host_name(inst), set()).add(inst)
    clashes = {h: i for h, i in names.items() if len(i) > 1}
    assert not clashes
    assert set(metal.GROUPS) <= set(kernels.groups())


def test_kernel_cache_compiles_a_group_and_finds_kernels_by_host_name():
    shim = FakeShim()
    cache = metal.MetalKernelCache(shim)
    inst = kernels.instance("unary_v", "float32", "float32", "Exp")
    k = cache.get("unary", "exp", inst)
    assert k == ("kernel", "unary_v_float_float_Exp")
    ((source, names),) = shim.libraries
    fname, insts = metal.GROUPS[("unary", "exp")]
    assert source == translate.metal_source(fname, insts)
    assert 'template [[host_name("unary_v_float_float_Exp")]]' in source
    assert names == [translate.host_name(i) for i in insts]
    # pipelines are asked for one kernel at a time, and each group is compiled once
    assert shim.lookups == ["unary_v_float_float_Exp"]
    assert cache.get("unary", "exp", inst) is k
    cache.get("unary", "exp", kernels.instance("unary_g", "float16", "float16", "Exp"))
    assert len(shim.libraries) == 1 and cache.compiled_groups == 1
    assert shim.lookups == ["unary_v_float_float_Exp", "unary_g_half_half_Exp"]


def test_kernel_cache_has_no_double_kernels():
    shim = FakeShim()
    cache = metal.MetalKernelCache(shim)
    inst = kernels.instance("unary_v", "float64", "float64", "Exp")
    assert inst in kernels.group_of("unary", "exp")[1]
    assert not cache.has_kernel("unary", "exp", inst)
    with pytest.raises(ShimError, match=r"no Metal kernel unary_v<double, double, Exp> for unary exp"):
        cache.get("unary", "exp", inst)
    with pytest.raises(ShimError, match=r"no Metal kernels for astype float64"):
        cache.compile_group("astype", "float64")
    assert shim.libraries == []


def test_kernel_cache_warm_up_skips_groups_without_metal_kernels():
    shim = FakeShim()
    cache = metal.MetalKernelCache(shim)
    cache.warm_up([("unary", "exp"), ("astype", "float64"), ("binary", "add")], threads=2)
    assert cache.compiled_groups == 2
    assert sorted(n[0] for _, n in shim.libraries) == sorted(
        translate.host_name(metal.GROUPS[k][1][0]) for k in [("unary", "exp"), ("binary", "add")])
    assert cache.source("unary.metal") == translate.metal_source("unary.metal", ())
