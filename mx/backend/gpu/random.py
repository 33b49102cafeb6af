"""GPU handler of random_bits (shaders/random.metal): mx.random's Threefry-2x32 words,
bit for bit those of the CPU kernel (mx/core/random.py `_bits_np`) for every key layout
(a key, or a batch of keys from vmap), shape and width, so a seed gives the same numbers on
either device. One thread enciphers one counter pair of one key and writes the bytes of its
two words that the output keeps.
"""
from __future__ import annotations

import numpy as np

from mx.backend.gpu import kernels as K
from mx.backend.gpu.copies import contiguous_copy
from mx.backend.gpu.elementwise import _size

_U32 = np.dtype(np.uint32)
# width in bytes -> (output dtype, shader word type)
_WIDTHS = {1: (np.dtype(np.uint8), "uint8"), 2: (np.dtype(np.uint16), "uint16"),
           4: (_U32, "uint32")}


def groups(dtypes=K.REAL):
    """The compile group of random_bits (kernels.groups adds it)."""
    return {("random", "bits"): ("random.metal",
                                 [K.typed("random_bits", t) for _, t in _WIDTHS.values()
                                  if t in dtypes])}


def bits_handler(gpu, node, args, stream):
    keys = args[0]
    p = node._params
    width = p["width"]
    if width not in _WIDTHS or keys.dtype != _U32 or keys.ndim < 1 or keys.shape[-1] != 2:
        return None
    dt, t = _WIDTHS[width]
    if node._dtype.np != dt:
        return None
    n = int(np.prod(p["shape"], dtype=np.int64))
    words = (n * width + 3) // 4
    half = (words + 1) // 2
    if 2 * half >= 2 ** 32:             # the counters are uint32 words
        return None
    batch = int(np.prod(keys.shape[:-1], dtype=np.int64))
    made = gpu.output(node._shape, dt)
    if made is None:
        return None
    out, obuf, ooff = made
    if out.size == 0:
        return out
    if not keys.flags.c_contiguous:
        keys = contiguous_copy(gpu, keys, stream)
        if keys is None:
            return None
    src = gpu.operand(keys)
    if src is None:
        return None
    gpu.launch("random", "bits", K.typed("random_bits", t), batch * half, stream,
               [src[:2], (obuf, ooff)], [_size(batch), _size(n), _size(words)])
    gpu.keep(src[2])
    return out


def handlers():
    """{primitive name: GPU handler} of mx.random."""
    return {"random_bits": bits_handler}
