"""One kernel source, three readings: Metal, CUDA and (for CI) plain C++.

mx's GPU kernels are written once, as .metal files in shaders/, in a subset of the Metal
Shading Language:

* kernels are ``[[kernel]] void name(...)`` functions, usually templates, whose parameters are
  ``device [const] T* name [[buffer(i)]]`` (buffers), ``constant [const] T& name [[buffer(i)]]``
  (small constants passed by value) or ``uintN name [[thread_position_in_grid]]`` and the other
  thread-coordinate attributes listed in ``THREAD_ATTRIBUTES``;
* helpers are ordinary functions, structs and templates; math is called as ``metal::name``;
* element types are bool, (u)int8/16/32/64_t, half, bfloat, float and -- only inside
  ``#if MX_DOUBLE`` or in templates instantiated for it -- double;
* ``#include "other.metal"`` pulls in another file of shaders/ (once); ``#include
  <metal_stdlib>`` marks where the dialect's prelude goes.

For CUDA, `cuda_source` puts shaders/prelude/cuda.h in front and rewrites each kernel
signature mechanically (``__global__``, buffer parameters become pointers, constants become
by-value parameters, thread attributes become locals computed from CUDA's built-ins); NVRTC
then compiles the very same kernel bodies Metal would. `metal_source` adds the host_name
instantiations a Metal library needs; `cpp_check_source` is the Metal view with attributes
stripped and a compatibility header, for a C++ compiler's syntax check.
"""
from __future__ import annotations

import os
import re

# shaders/ of the source tree (editable installs), or the copy a wheel carries as mx/_shaders
# (setup.py's build_py puts it there)
_PACKAGED = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "_shaders"))
SHADER_DIR = _PACKAGED if os.path.isdir(_PACKAGED) else \
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "shaders"))

THREAD_ATTRIBUTES = (
    "thread_position_in_grid",
    "threads_per_grid",
    "thread_position_in_threadgroup",
    "threadgroup_position_in_grid",
    "threads_per_threadgroup",
)

_INCLUDE = re.compile(r'^\s*#\s*include\s+(?:"([^"]+)"|<([^>]+)>)\s*$', re.M)
_KERNEL = re.compile(r"\[\[\s*kernel\s*\]\]\s*void\s+(\w+)\s*\(")
_ATTR = re.compile(r"\[\[\s*(\w+)(?:\s*\(([^)]*)\))?\s*\]\]\s*$")


class TranslationError(ValueError):
    """A shader uses something outside the supported MSL subset."""


def shader_path(name: str) -> str:
    return os.path.join(SHADER_DIR, name)


def shader_files() -> list[str]:
    """The .metal files of shaders/, sorted."""
    return sorted(f for f in os.listdir(SHADER_DIR) if f.endswith(".metal"))


def _read(path):
    with open(path) as f:
        return f.read()


def expand(name: str) -> str:
    """The source of shaders/`name` with its quoted includes inlined (each file once) and
    every ``#include <metal_stdlib>`` replaced by the marker line ``// @prelude``."""
    seen = set()

    def inline(fname):
        if fname in seen:
            return f"// (already included: {fname})\n"
        seen.add(fname)
        text = _read(shader_path(fname))

        def repl(m):
            local, system = m.group(1), m.group(2)
            if system is not None:
                if system != "metal_stdlib":
                    raise TranslationError(f"{fname}: only <metal_stdlib> may be included, not <{system}>")
                return "// @prelude"
            return inline(local).rstrip("\n")

        return f"// ---- {fname} ----\n" + _INCLUDE.sub(repl, text)

    return inline(name)


def _with_prelude(text: str, prelude: str) -> str:
    """Replace the first prelude marker by `prelude` and drop the others."""
    first = text.find("// @prelude")
    if first < 0:
        return prelude + "\n" + text
    head, tail = text[:first], text[first + len("// @prelude"):]
    return head + prelude + tail.replace("// @prelude", "")


def _split_params(params: str) -> list[str]:
    """Split a parameter list on top-level commas (templates and attributes nest)."""
    out, depth, cur = [], 0, []
    i = 0
    while i < len(params):
        c = params[i]
        if c in "<([":
            depth += 1
        elif c in ">)]":
            depth -= 1
        if c == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    if "".join(cur).strip():
        out.append("".join(cur).strip())
    return out


def _matching_paren(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise TranslationError("unbalanced parentheses in a kernel signature")


def _cuda_param(param: str, kernel: str):
    """(parameter text or None, prologue line or None) for one MSL kernel parameter."""
    m = _ATTR.search(param)
    if not m:
        raise TranslationError(f"kernel {kernel}: parameter {param!r} has no [[attribute]]")
    attr, arg = m.group(1), m.group(2)
    decl = param[:m.start()].strip()
    if attr == "buffer":
        if decl.startswith("device "):
            decl = decl[len("device "):].strip()
            if "*" not in decl:
                raise TranslationError(f"kernel {kernel}: device parameter {param!r} must be a pointer")
            star = decl.rindex("*")
            return f"{decl[:star + 1]} __restrict__ {decl[star + 1:].strip()}", None
        if decl.startswith("constant "):
            decl = decl[len("constant "):].strip()
            if decl.startswith("const "):
                decl = decl[len("const "):].strip()
            if "&" not in decl:
                raise TranslationError(f"kernel {kernel}: constant parameter {param!r} must be a reference")
            amp = decl.rindex("&")
            return f"const {decl[:amp].strip()} {decl[amp + 1:].strip()}", None
        raise TranslationError(f"kernel {kernel}: buffer parameter {param!r} needs device or constant")
    if attr in THREAD_ATTRIBUTES:
        parts = decl.split()
        if len(parts) != 2 or parts[0] not in ("uint", "uint2", "uint3"):
            raise TranslationError(f"kernel {kernel}: {param!r} must be `uint|uint2|uint3 name`")
        ty, name = parts
        return None, f"const {ty} {name} = mx_{attr}_{ty}();"
    raise TranslationError(f"kernel {kernel}: attribute [[{attr}]] is not in mx's MSL subset")


def to_cuda(text: str) -> str:
    """Rewrite every ``[[kernel]]`` signature of `text` for CUDA."""
    out = []
    pos = 0
    for m in _KERNEL.finditer(text):
        name = m.group(1)
        open_at = m.end() - 1
        close_at = _matching_paren(text, open_at)
        brace = text.index("{", close_at)
        if text[close_at + 1:brace].strip():
            raise TranslationError(f"kernel {name}: unexpected text before its body")
        params, prologue = [], []
        for p in _split_params(text[open_at + 1:close_at]):
            decl, pro = _cuda_param(p, name)
            if decl is not None:
                params.append(decl)
            if pro is not None:
                prologue.append(pro)
        out.append(text[pos:m.start()])
        out.append(f"__global__ void {name}(\n    " + ",\n    ".join(params) + ") {")
        out.extend("\n  " + line for line in prologue)
        pos = brace + 1
    out.append(text[pos:])
    result = "".join(out)
    if "[[" in re.sub(r"//[^\n]*", "", result):
        raise TranslationError("an [[attribute]] is left outside kernel signatures")
    return result


def prelude(dialect: str) -> str:
    return _read(os.path.join(SHADER_DIR, "prelude", f"{dialect}.h"))


def cuda_source(name: str) -> str:
    """shaders/`name` as CUDA C++ for NVRTC."""
    return to_cuda(_with_prelude(expand(name), prelude("cuda")))


def expand_text(text: str, label: str = "<source>") -> str:
    """Like `expand`, for a source string (a generated kernel) instead of a file of
    shaders/: its quoted includes name files of shaders/ and are inlined once each."""
    seen = set()

    def inline(fname, body):
        seen.add(fname)

        def repl(m):
            local, system = m.group(1), m.group(2)
            if system is not None:
                if system != "metal_stdlib":
                    raise TranslationError(f"{fname}: only <metal_stdlib> may be included, not <{system}>")
                return "// @prelude"
            if local in seen:
                return f"// (already included: {local})"
            return inline(local, _read(shader_path(local))).rstrip("\n")

        return f"// ---- {fname} ----\n" + _INCLUDE.sub(repl, body)

    return inline(label, text)


def cuda_source_text(text: str) -> str:
    """A kernel source string in mx's MSL subset (its includes resolved from shaders/) as
    CUDA C++ for NVRTC, as `cuda_source` does for a shader file."""
    return to_cuda(_with_prelude(expand_text(text), prelude("cuda")))


def metal_source_text(text: str) -> str:
    """A kernel source string in mx's MSL subset (its includes resolved from shaders/) for
    Metal; its kernels are not templates, so each is found under its own name."""
    return _with_prelude(expand_text(text), prelude("metal"))


def cpp_check_text(text: str) -> str:
    """The Metal view of a kernel source string as C++ for a syntax check, as
    `cpp_check_source` gives for a shader file (the string's kernels are not templates, so
    nothing needs instantiating)."""
    text = _with_prelude(expand_text(text), prelude("cpp_check"))
    return re.sub(r"\[\[[^\]]*\]\]", "", text)


def host_name(instance: str) -> str:
    """The Metal function name of a template instance: ``unary_v<float, bool, IsNan>`` ->
    ``unary_v_float_bool_IsNan``."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z]+", "_", instance)).strip("_")


def metal_source(name: str, instances) -> str:
    """shaders/`name` for Metal, with an explicit [[host_name]] instantiation per instance."""
    lines = [_with_prelude(expand(name), prelude("metal")), "\n// instantiations"]
    for inst in instances:
        lines.append(f'template [[host_name("{host_name(inst)}")]] [[kernel]] decltype({inst}) {inst};')
    return "\n".join(lines) + "\n"


def cpp_check_source(name: str, instances=()) -> str:
    """The Metal view of shaders/`name` as C++ for a syntax check: attributes stripped, the
    compatibility header in front, and each instance instantiated (so template bodies are
    checked for every element type)."""
    text = _with_prelude(expand(name), prelude("cpp_check"))
    text = re.sub(r"\[\[[^\]]*\]\]", "", text)
    lines = [text, "\n// instantiations"]
    for i, inst in enumerate(instances):
        lines.append(f"static auto* mx_instance_{i} = &{inst};")
    return "\n".join(lines) + "\n"
