"""mx.core: lazily evaluated arrays with MLX's API (``import mx.core as mx``)."""
from __future__ import annotations

import types as _types

from mx import __version__
from mx.core._array import Dtype, Primitive, array
from mx.core.dtypes import (DtypeCategory, bfloat16, bool_, can_cast, complex64,
                            complexfloating, finfo, float16, float32, float64, floating,
                            generic, iinfo, inexact, int8, int16, int32, int64, integer,
                            isdtype, issubdtype, number, result_type, signedinteger, uint8,
                            uint16, uint32, uint64, unsignedinteger)
from mx.core.devices import (Device, DeviceType, Stream, cpu, default_device, default_stream,
                             device_count, device_info, gpu, is_available, new_stream,
                             set_default_device, set_default_stream, stream, synchronize)
from mx.core.evaluation import async_eval, eval
from mx.core.ops._util import AxisError
from mx.core.ops.elementwise import *  # noqa: F401,F403
from mx.core.ops.reduction import *  # noqa: F401,F403
from mx.core.ops.shape import *  # noqa: F401,F403
from mx.core.ops.indexing import *  # noqa: F401,F403
from mx.core.ops.creation import *  # noqa: F401,F403
from mx.core.ops.products import *  # noqa: F401,F403
from mx.core.ops.products_extra import *  # noqa: F401,F403
from mx.core.ops.aliases import *  # noqa: F401,F403
from mx.core.ops.sorting import *  # noqa: F401,F403
from mx.core.ops.conv import *  # noqa: F401,F403
from mx.core.ops.einsum import *  # noqa: F401,F403
from mx.core import random, linalg, fft, fast  # noqa: F401
from mx.core.io import *  # noqa: F401,F403
from mx.core.transforms import *  # noqa: F401,F403
from mx.core.compiler import compile, disable_compile, enable_compile  # noqa: F401
from mx.core.printing import *  # noqa: F401,F403
from mx.core.memory import *  # noqa: F401,F403
from mx.core.interop import from_dlpack  # noqa: F401
from mx.core import metal, cuda  # noqa: F401
from mx.core import distributed  # noqa: F401

from mx.core.ops.indexing import ArrayAt  # noqa: F401,E402

newaxis = None
pi = 3.141592653589793
e = 2.718281828459045
euler_gamma = 0.5772156649015329
inf = float("inf")
nan = float("nan")


def _bind():
    from mx.core import _array, _scheduler, printing
    from mx.core.devices import check_stream
    from mx.core.ops import (elementwise, reduction, shape, indexing, creation, products,
                             products_extra, aliases, sorting, conv, einsum)
    ns = _types.SimpleNamespace()
    for mod in (elementwise, reduction, shape, indexing, creation, products, products_extra,
                aliases, sorting, conv, einsum):
        for name in mod.__all__:
            setattr(ns, name, getattr(mod, name))
    # internals the array's methods call
    for name in ("getitem", "setitem", "ArrayAt"):
        setattr(ns, name, getattr(indexing, name, None))
    from mx.core.transforms import _IDENTITY
    from mx.core._array import make_node
    ns.reference = lambda x: make_node(_IDENTITY, (x,), None, x.shape, x.dtype)
    ns.array_repr = printing.array_repr
    ns.array_str = printing.array_str
    ns.abs = elementwise.abs
    ns.divmod = elementwise.divmod
    ns.round = elementwise.round
    _array._bind(ns, _scheduler.eval_arrays, check_stream)


_bind()
del _bind


def _install_transform_rules():
    from mx.core.ops import (elementwise, reduction, shape, indexing, creation, products,
                             products_extra, aliases, sorting, conv, einsum)
    from mx.core import random, linalg, fft, fast, io, distributed
    for mod in (elementwise, reduction, shape, indexing, creation, products, products_extra,
                aliases, sorting, conv, einsum, random, linalg, fft, fast, io, distributed):
        install = getattr(mod, "install_rules", None)
        if install is not None:
            install()


_install_transform_rules()
del _install_transform_rules

asarray = array
