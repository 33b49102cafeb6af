"""mx.core.distributed: communication between processes, with MLX's mx.distributed API.

    group = mx.distributed.init()          # every process of the job calls it
    total = mx.distributed.all_sum(x)      # a lazy node: communicates when evaluated

The collectives (all_sum, all_max, all_min, all_gather, sum_scatter) and the point-to-point
ops (send, recv, recv_like) are primitives like any other: they build graph nodes, run
when the graph is evaluated (in the same order on every process, since every process
evaluates the same graph), and carry vjp/jvp/vmap rules. In a group of one process the
collectives return their input unchanged.

Backends: "mpi" (mpi4py over the system's MPI; start the processes with
``python -m mx.launch -n 2 script.py`` or mpirun) and "nccl" (NVIDIA's NCCL between the
GPUs of the job, one process per GPU, meeting through MPI; see _nccl.py). backend="any"
takes NCCL when the GPU backend is active and a launcher started several processes, else
MPI.

Failures are loud: when a launcher says it started N processes and the group comes up
with one, init(strict=True) raises and init() warns; a communication whose peers do not
answer within MX_DISTRIBUTED_TIMEOUT seconds (default 300) raises TimeoutError.

Gradient convention (MLX's): the output of all_sum, all_max, all_min and all_gather is the
same on every process, and a loss computed from it counts once, so the vjp of all_sum
passes the cotangent through unchanged and that of all_gather keeps this process's rows;
sum_scatter's output is sharded, so its vjp gathers the cotangents of all processes.
"""
from __future__ import annotations

import itertools
import operator
import warnings

from mx.core._array import Dtype, make_node
from mx.core.ops._util import as_array, check_shape
from mx.core.primitives import declare
from mx.core.distributed import _mpi, _nccl
from mx.core.distributed._backend import Backend, SingletonBackend, launched_size

__all__ = ["Group", "init", "is_available", "all_sum", "all_max", "all_min", "all_gather",
           "sum_scatter", "send", "recv", "recv_like", "register_backend", "Backend"]

_VALID_BACKENDS = ("any", "mpi", "nccl", "jaccl", "ring")


# ---------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------
def _mpi_unavailable_reason():
    import importlib.util
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install mpi4py)"
    return "no MPI library (libmpi) was found (apt-get install openmpi-bin libopenmpi-dev)"


# name -> (available() -> bool, reason() -> str, start() -> Backend of the whole job)
_BACKENDS = {"mpi": (_mpi.available, _mpi_unavailable_reason, _mpi.init),
             "nccl": (_nccl.available, _nccl.unavailable_reason, _nccl.init)}
_ANY_ORDER = ["nccl", "mpi"]   # what backend="any" tries, in order
# name -> wanted(expected) for backends that backend="any" tries only when it says so
# (NCCL: a launched job of several processes on GPUs; a process alone gets the singleton
# group rather than a GPU communicator of one rank)
_ANY_WHEN = {"nccl": _nccl.wanted_by_any}
_WORLD = {}               # backend name -> its world Group; "fallback:<backend>" -> singleton


def register_backend(name, available, start, reason=None, first=False):
    """Make a communication backend known to init() and is_available(). `available()`
    says whether it can be instantiated, `start()` returns the `Backend` of all the job's
    processes, `reason()` says why it is unavailable; `first` puts it before the others for
    backend="any"."""
    if name not in _VALID_BACKENDS or name == "any":
        raise ValueError(f"[distributed] Cannot register a backend named {name!r}.")
    _BACKENDS[name] = (available, reason or (lambda: f"the {name} backend is not available"), start)
    if name in _ANY_ORDER:
        _ANY_ORDER.remove(name)
    _ANY_ORDER.insert(0 if first else len(_ANY_ORDER), name)


def _check_backend_name(backend):
    if not isinstance(backend, str) or backend not in _VALID_BACKENDS:
        raise ValueError("[distributed] The only valid values for backend are 'any', 'mpi', "
                         f"'nccl', 'jaccl' and 'ring' but {backend!r} was provided.")


def is_available(backend="any"):
    """Whether mx can instantiate the communication backend `backend` ("any": one of them).
    This says nothing about whether a group of several processes can be formed; for that,
    call init(strict=True)."""
    _check_backend_name(backend)
    names = _ANY_ORDER if backend == "any" else [backend]
    return any(name in _BACKENDS and _BACKENDS[name][0]() for name in names)


# ---------------------------------------------------------------------------------------
# groups
# ---------------------------------------------------------------------------------------
class Group:
    """A group of processes that communicate; the global one comes from init(), smaller
    ones from Group.split()."""

    __slots__ = ("_impl", "__weakref__")

    def __init__(self, *args, **kwargs):
        raise TypeError("mx.core.distributed.Group: no constructor defined! Groups come from "
                        "mx.distributed.init() and Group.split().")

    @classmethod
    def _of(cls, impl: Backend) -> "Group":
        g = object.__new__(cls)
        g._impl = impl
        return g

    def rank(self) -> int:
        """The rank of this process in the group."""
        return self._impl.rank

    def size(self) -> int:
        """The number of processes in the group."""
        return self._impl.size

    def split(self, color, key=-1) -> "Group":
        """The group of the processes that pass the same `color` (every process of this group
        must call split). Ranks in the new group follow `key` (smaller first); a negative key
        uses the rank in this group."""
        color = _int(color, "color", "split")
        key = _int(key, "key", "split")
        if isinstance(self._impl, SingletonBackend):
            return Group._of(self._impl.split(color, key))
        if color < 0:
            raise ValueError(f"[split] color must be non-negative, got {color}.")
        return Group._of(self._impl.split(color, key if key >= 0 else self.rank()))

    def __repr__(self):
        return f"Group(rank={self.rank()}, size={self.size()}, backend={self._impl.name!r})"


def _int(x, what, op):
    try:
        return operator.index(x)
    except TypeError:
        raise TypeError(f"[{op}] {what} must be an integer, got {type(x).__name__}.") from None


def init(strict=False, backend="any"):
    """Initialize the communication backend and return the group of all the job's processes
    (later calls return the same group).

    backend: "mpi", "nccl", "jaccl", "ring" or "any" (the first that works). With
    strict=False a process that cannot join a backend gets a group of its own (size 1);
    strict=True raises instead. Either way, when a launcher's environment says the job has
    N > 1 processes but the group has one, strict=True raises and strict=False warns.
    backend="any" without a launcher gives the single-process group without starting MPI;
    with a launcher it tries NCCL (GPU backend active, several processes, MPI to meet
    through), then MPI, and a backend that fails to start gives way to the next one."""
    _check_backend_name(backend)
    names = list(_ANY_ORDER) if backend == "any" else [backend]
    for name in names:
        if name in _WORLD:
            group = _WORLD[name]
            if strict and group.size() == 1:
                expected, var = launched_size()
                if expected is not None and expected > 1:
                    _size_mismatch(True, expected, var, _came_up_alone(name))
            return group
    key = "fallback:" + backend
    if not strict and key in _WORLD:
        return _WORLD[key]
    expected, var = launched_size()
    if backend == "any":
        names = [n for n in names if n not in _ANY_WHEN or _ANY_WHEN[n](expected)]
    reasons = []
    failure = None
    for name in names:
        entry = _BACKENDS.get(name)
        if entry is None:
            reasons.append(f"{name}: not implemented in mx")
            continue
        available, reason, start = entry
        if not available():
            reasons.append(f"{name}: {reason()}")
            continue
        if backend == "any" and not strict and expected is None:
            break      # not launched as a job: a group of one, without starting MPI
        try:
            impl = start()
        except Exception as e:  # the library's own error, kept as the cause
            reasons.append(f"{name}: initialization failed: {e}")
            if failure is None:
                failure = (name, e)
            continue
        group = Group._of(impl)
        _WORLD[name] = group
        if expected is not None and expected > 1 and impl.size == 1:
            _size_mismatch(strict, expected, var, _came_up_alone(name))
        return group
    if strict and failure is not None:
        name, e = failure
        raise RuntimeError(f"[distributed] Could not initialize the {name} backend: {e}") from e
    if strict:
        raise RuntimeError("[distributed] Couldn't initialize any backend"
                           + (f": {'; '.join(reasons)}." if reasons else "."))
    if key not in _WORLD:
        _WORLD[key] = Group._of(SingletonBackend())
        if expected is not None and expected > 1:
            _size_mismatch(False, expected, var, "; ".join(reasons) or "no backend was started")
    return _WORLD[key]


def _came_up_alone(name):
    # NCCL's processes meet through MPI too
    hint = (" (is mpi4py built for the MPI library of the launcher?)"
            if name in ("mpi", "nccl") else "")
    return f"the {name} backend came up with a group of size 1{hint}"


def _size_mismatch(strict, expected, var, why):
    msg = (f"[distributed] The launcher started {expected} processes ({var}={expected}) but "
           f"this process is in a group of size 1: {why}. The processes will not communicate.")
    if strict:
        raise RuntimeError(msg)
    warnings.warn(msg, RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------
# kernels (NumPy buffers in and out; the group's backend does the communication)
# ---------------------------------------------------------------------------------------
# The reductions accept out=: when the input array dies at this node, the scheduler hands
# its buffer over and the reduction happens in place (no second buffer of the size of,
# say, average_gradients' concatenated gradients).
def _all_sum_kernel(x, *, group, out=None):
    return group._impl.all_reduce(x, "sum", out)


def _all_max_kernel(x, *, group, out=None):
    return group._impl.all_reduce(x, "max", out)


def _all_min_kernel(x, *, group, out=None):
    return group._impl.all_reduce(x, "min", out)


def _all_gather_kernel(x, *, group):
    out = group._impl.all_gather(x.reshape(1) if x.ndim == 0 else x)
    return out


def _sum_scatter_kernel(x, *, group):
    return group._impl.sum_scatter(x)


def _send_kernel(x, *, group, dst, token):
    group._impl.send(x, dst)
    return x


def _recv_kernel(*like, group, src, shape, dtype, token):
    # recv_like's input only gave the shape and dtype
    return group._impl.recv(shape, dtype.np, src)


ALL_SUM = declare("all_sum", cpu=_all_sum_kernel, donates=True,
                  doc="sum over the processes of a group")
ALL_MAX = declare("all_max", cpu=_all_max_kernel, donates=True,
                  doc="maximum over the processes of a group")
ALL_MIN = declare("all_min", cpu=_all_min_kernel, donates=True,
                  doc="minimum over the processes of a group")
ALL_GATHER = declare("all_gather", cpu=_all_gather_kernel,
                     doc="concatenation (axis 0) of every process's array")
SUM_SCATTER = declare("sum_scatter", cpu=_sum_scatter_kernel,
                      doc="this process's shard (axis 0) of the sum over the processes")
SEND = declare("send", cpu=_send_kernel, doc="sends its input to another process; returns it")
RECV = declare("recv", cpu=_recv_kernel, doc="an array received from another process")

# send and recv nodes are never merged with look-alikes (mx.compile merges repeated
# primitives on the same inputs): each one is a message of its own
_TOKENS = itertools.count()


# ---------------------------------------------------------------------------------------
# the ops
# ---------------------------------------------------------------------------------------
def _group_arg(group, op):
    if group is None:
        return init()
    if not isinstance(group, Group):
        raise TypeError(f"[{op}] group must be an mx.distributed.Group or None, got "
                        f"{type(group).__name__}.")
    return group


def _array_arg(x, op):
    if isinstance(x, (list, tuple)):
        raise ValueError(f"[{op}] Invalid type {type(x).__name__} received in array initialization.")
    return as_array(x, op)


def _reduce(prim, op, x, group, stream):
    x = _array_arg(x, op)
    g = _group_arg(group, op)
    if g.size() == 1:
        return x
    return make_node(prim, (x,), {"group": g}, x.shape, x.dtype, stream)


def all_sum(x, *, group=None, stream=None):
    """The elementwise sum of `x` over the processes of `group` (default: the global group).
    Every process passes an array of the same shape and dtype and gets the same result."""
    return _reduce(ALL_SUM, "all_sum", x, group, stream)


def all_max(x, *, group=None, stream=None):
    """The elementwise maximum of `x` over the processes of `group` (NaNs propagate)."""
    return _reduce(ALL_MAX, "all_max", x, group, stream)


def all_min(x, *, group=None, stream=None):
    """The elementwise minimum of `x` over the processes of `group` (NaNs propagate)."""
    return _reduce(ALL_MIN, "all_min", x, group, stream)


def all_gather(x, *, group=None, stream=None):
    """The arrays `x` of all processes of `group`, concatenated along the first axis in rank
    order (scalars are stacked into a 1-d array). Every process passes the same shape."""
    x = _array_arg(x, "all_gather")
    g = _group_arg(group, "all_gather")
    n = g.size()
    if n == 1:
        return x
    shape = (n,) if x.ndim == 0 else (n * x.shape[0],) + x.shape[1:]
    return make_node(ALL_GATHER, (x,), {"group": g}, shape, x.dtype, stream)


def sum_scatter(x, *, group=None, stream=None):
    """This process's part of the sum of `x` over the processes of `group`: the sum is cut
    along its first axis (whose length the group size must divide) into one block per
    rank, i.e. all_sum(x)[rank * k:(rank + 1) * k] with k = x.shape[0] // size, computed with
    a single reduce-scatter."""
    x = _array_arg(x, "sum_scatter")
    g = _group_arg(group, "sum_scatter")
    n = g.size()
    if n == 1:
        return x
    if x.ndim == 0 or x.shape[0] % n != 0:
        raise ValueError(f"[sum_scatter] Invalid shape={_shape(x.shape)} for a group of size {n}. "
                         "The first dimension (axis 0) must be divisible by the group size and "
                         "the input must have at least one dimension.")
    shape = (x.shape[0] // n,) + x.shape[1:]
    return make_node(SUM_SCATTER, (x,), {"group": g}, shape, x.dtype, stream)


def _shape(shape):
    return "(" + ",".join(str(d) for d in shape) + ")"


def _peer(g, rank, what, op):
    rank = _int(rank, what, op)
    if not 0 <= rank < g.size():
        raise ValueError(f"[{op}] Invalid {what}={rank} for a group of size {g.size()}.")
    return rank


def send(x, dst, *, group=None, stream=None):
    """Send `x` to the process of rank `dst` in `group`, which receives it with recv or
    recv_like. Returns an array equal to `x`: the message leaves when that array is
    evaluated (the send does not wait for the receiver; it completes in the background)."""
    x = _array_arg(x, "send")
    g = _group_arg(group, "send")
    if g.size() == 1:
        raise ValueError("[send] Cannot send to a singleton group.")
    dst = _peer(g, dst, "destination", "send")
    params = {"group": g, "dst": dst, "token": next(_TOKENS)}
    return make_node(SEND, (x,), params, x.shape, x.dtype, stream)


def _recv_node(inputs, shape, dtype, src, group, stream, op):
    g = _group_arg(group, op)
    if g.size() == 1:
        raise ValueError(f"[{op}] Cannot recv from a singleton group.")
    src = _peer(g, src, "source", op)
    if not inputs and _compiling():
        raise ValueError(f"[{op}] recv has no inputs, so mx.compile would receive once while "
                         "tracing and replay that value; call it outside the compiled function, "
                         "or use recv_like on an array computed from the function's inputs.")
    params = {"group": g, "src": src, "shape": shape, "dtype": dtype, "token": next(_TOKENS)}
    return make_node(RECV, inputs, params, shape, dtype, stream)


def _compiling():
    from mx.core.compiler import _state
    return _state["tracing"] > 0


def recv(shape, dtype, src, *, group=None, stream=None):
    """Receive an array of shape `shape` and dtype `dtype` sent by the process of rank `src`
    in `group` (with send). The message is taken when the result is evaluated."""
    shape = check_shape(shape, "recv")
    if not isinstance(dtype, Dtype):
        raise TypeError(f"[recv] dtype must be an mx Dtype such as mx.float32, got {dtype!r}.")
    return _recv_node((), shape, dtype, src, group, stream, "recv")


def recv_like(x, src, *, group=None, stream=None):
    """recv(x.shape, x.dtype, src): receive an array shaped like `x` (whose values are not
    used) from the process of rank `src`."""
    x = _array_arg(x, "recv_like")
    return _recv_node((x,), x.shape, x.dtype, src, group, stream, "recv_like")


# ---------------------------------------------------------------------------------------
# transformation rules
# ---------------------------------------------------------------------------------------
def _mx():
    import mx.core as mx
    return mx


def _extremum_share(x, out, group):
    """Each process's share of an all_max/all_min result: 1/k where this process holds the
    winning value (k processes tie for it), 0 elsewhere."""
    mx = _mx()
    hit = mx.equal(x, out)
    dt = x.dtype if x.dtype.name in ("float16", "bfloat16", "float32", "float64", "complex64") \
        else mx.float32
    hit = hit.astype(dt)
    return hit / all_sum(hit, group=group)


def _install_reduce_rules(prim, fn, extremum):
    if extremum:
        def vjp(primals, ct, out, *, group):
            return [ct * _extremum_share(primals[0], out, group).astype(ct.dtype)]

        def jvp(primals, tangents, out, *, group):
            t = tangents[0]
            return all_sum(t * _extremum_share(primals[0], out, group).astype(t.dtype), group=group)
    else:
        def vjp(primals, ct, out, *, group):
            # the result is the same on every process and a loss on it counts once (MLX)
            return [ct]

        def jvp(primals, tangents, out, *, group):
            return all_sum(tangents[0], group=group)

    def vmap(inputs, axes, out, *, group):
        # elementwise across processes: the batch axis stays where it is
        return fn(inputs[0], group=group), axes[0]

    prim.vjp, prim.jvp, prim.vmap = vjp, jvp, vmap


def _all_gather_vjp(primals, ct, out, *, group):
    x = primals[0]
    rank = group.rank()
    if x.ndim == 0:
        return [ct[rank]]
    k = x.shape[0]
    return [ct[rank * k:(rank + 1) * k]]


def _all_gather_vmap(inputs, axes, out, *, group):
    mx = _mx()
    x, a = inputs[0], axes[0]
    if x.ndim == 1:
        # scalars per example: gathering (1, B) rows stacks them along axis 0
        return all_gather(mx.reshape(x, (1,) + x.shape), group=group), 1
    return all_gather(mx.moveaxis(x, a, 1), group=group), 1


def _sum_scatter_vmap(inputs, axes, out, *, group):
    return sum_scatter(_mx().moveaxis(inputs[0], axes[0], 1), group=group), 1


def install_rules():
    _install_reduce_rules(ALL_SUM, all_sum, False)
    _install_reduce_rules(ALL_MAX, all_max, True)
    _install_reduce_rules(ALL_MIN, all_min, True)

    ALL_GATHER.vjp = _all_gather_vjp
    ALL_GATHER.jvp = lambda primals, tangents, out, *, group: all_gather(tangents[0], group=group)
    ALL_GATHER.vmap = _all_gather_vmap

    # the output is sharded: each process's input reaches every shard
    SUM_SCATTER.vjp = lambda primals, ct, out, *, group: [all_gather(ct, group=group)]
    SUM_SCATTER.jvp = lambda primals, tangents, out, *, group: sum_scatter(tangents[0], group=group)
    SUM_SCATTER.vmap = _sum_scatter_vmap

    # send's value is its input; the message itself carries no gradient
    SEND.vjp = lambda primals, ct, out, **p: [ct]
    SEND.jvp = lambda primals, tangents, out, **p: tangents[0]
    SEND.vmap = lambda inputs, axes, out, *, group, dst, token: (
        send(inputs[0], dst, group=group), axes[0])

    # a received value does not depend on recv_like's input
    RECV.vjp = lambda primals, ct, out, **p: [None] * len(primals)
    RECV.jvp = lambda primals, tangents, out, **p: _mx().zeros(out.shape, out.dtype)
    RECV.vmap = lambda inputs, axes, out, *, group, src, shape, dtype, token: (
        recv_like(inputs[0], src, group=group), axes[0])
