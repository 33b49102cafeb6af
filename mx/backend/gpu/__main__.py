"""python -m mx.backend.gpu: the GPU backend's status and the primitive lists of docs/gpu.md."""
from __future__ import annotations

import textwrap


def _wrap(names):
    return "\n".join(textwrap.wrap(", ".join(f"`{n}`" for n in names), 92))


def main():
    import mx.core as mx
    from mx.backend import gpu
    from mx.core.primitives import REGISTRY
    if gpu.is_available():
        print(f"GPU backend: {gpu.active_backend().kind}, {mx.device_info(mx.gpu)}")
    else:
        print(f"GPU backend: unavailable ({gpu.unavailable_reason()})")
    native = gpu.native_primitives()
    print(f"\n## GPU-native primitives ({len(native)})\n")
    print(_wrap(native))
    fallback = sorted(set(REGISTRY) - set(native))
    print(f"\n## Primitives that run on the CPU ({len(fallback)})\n")
    print(_wrap(fallback))


if __name__ == "__main__":
    main()
