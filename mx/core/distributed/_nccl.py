"""The NCCL backend: collectives between the GPUs of a job through NVIDIA's NCCL.

The library is loaded when first needed, through cffi's ABI mode (no build step, no NCCL
headers): $MX_NCCL_LIBRARY when set (that file and nothing else), else "libnccl.so.2" from
the system's library path, else nvidia/nccl/lib/libnccl.so.2 of an installed NCCL wheel
(the one PyTorch uses). The backend is available when the library loads and mx's GPU
backend is active.

Memory is unified: mx's arrays are NumPy arrays in the GPU shim's managed memory, so NCCL
reads and writes them in place (an array from elsewhere is first copied into the shim's
memory). A communication is queued on the CUDA stream under mx's default GPU stream (after
the GPU work already queued there) and waited for before the CPU kernel that asked for it
returns, since the distributed primitives' kernels hand back finished NumPy arrays.

Processes: one per GPU. Alone (no launcher variable, or a launcher of one process) a
process makes a communicator of one rank. Started by mpirun or `python -m mx.launch -n N`,
the processes meet through MPI (mpi4py): rank 0's NCCL unique id travels to the others
with the host names and PCI bus ids of their GPUs. The process of local rank l on a host
with n visible GPUs should run on GPU l % n; mx's GPU backend always opens the first GPU a
process sees, so on a host with several GPUs each process must be started with
CUDA_VISIBLE_DEVICES naming its own GPU. Two processes found on the same GPU make init
raise, on every process, before NCCL is asked.

Nothing waits forever: communicators are non-blocking (NCCL >= 2.14), so their creation,
NCCL's connection set-up and every collective are polled against MX_DISTRIBUTED_TIMEOUT
(default 300 s) together with NCCL's asynchronous error state; on a timeout or an error
every communicator of the process is aborted (ncclCommAbort), later communications raise
at once, and when the processes met through MPI the MPI job is aborted at exit so the
peers still waiting end too. MX_NCCL_BLOCKING=1 makes the communicators blocking (NCCL's
default): slightly less work per call, but a peer that never arrives then hangs inside
NCCL until the process is killed.

Semantics that differ from the MPI backend: all_max/all_min of floating-point arrays
follow NCCL's floating-point max/min for NaNs; send waits until the matching recv is
posted (NCCL's point-to-point is a rendezvous), so two processes that both send before
they receive deadlock (and time out); recv cannot check the size of what was sent.
"""
from __future__ import annotations

import atexit
import functools
import os
import socket
import sys
import threading
import time

import numpy as np

from mx.core.distributed._backend import Backend, launched_size, timeout_seconds

LIBRARY_VAR = "MX_NCCL_LIBRARY"
BLOCKING_VAR = "MX_NCCL_BLOCKING"
LIBRARY_NAME = "libnccl.so.2"

# -- nccl.h (2.x): the few declarations mx needs. The enums are ints in the C ABI. ---------
_CDEF = """
typedef struct ncclComm *ncclComm_t;
typedef struct { char internal[128]; } ncclUniqueId;

/* ncclConfig_t as of NCCL 2.17; NCCL reads the first `size` bytes of a caller's config
   and keeps its own defaults for the fields that come after them */
typedef struct {
    size_t size;
    unsigned int magic;
    unsigned int version;
    int blocking;
    int cgaClusterSize;
    int minCTAs;
    int maxCTAs;
    const char *netName;
} mx_nccl_config;

int ncclGetVersion(int *version);
int ncclGetUniqueId(ncclUniqueId *uniqueId);
int ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank);
int ncclCommInitRankConfig(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank,
                           mx_nccl_config *config);
int ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t *newcomm,
                  mx_nccl_config *config);
int ncclCommDestroy(ncclComm_t comm);
int ncclCommAbort(ncclComm_t comm);
const char *ncclGetErrorString(int result);
const char *ncclGetLastError(ncclComm_t comm);
int ncclCommGetAsyncError(ncclComm_t comm, int *asyncError);
int ncclCommCount(ncclComm_t comm, int *count);
int ncclCommUserRank(ncclComm_t comm, int *rank);
int ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, int datatype, int op,
                  ncclComm_t comm, void *stream);
int ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, int datatype,
                  ncclComm_t comm, void *stream);
int ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount, int datatype,
                      int op, ncclComm_t comm, void *stream);
int ncclSend(const void *sendbuff, size_t count, int datatype, int peer, ncclComm_t comm,
             void *stream);
int ncclRecv(void *recvbuff, size_t count, int datatype, int peer, ncclComm_t comm,
             void *stream);
int ncclGroupStart(void);
int ncclGroupEnd(void);

/* the CUDA driver (already loaded by mx's GPU shim): polling a stream, the context */
int cuInit(unsigned int flags);
int cuDeviceGet(int *device, int ordinal);
int cuDeviceGetPCIBusId(char *pciBusId, int len, int dev);
int cuDevicePrimaryCtxRetain(void **pctx, int dev);
int cuCtxGetCurrent(void **pctx);
int cuCtxSetCurrent(void *ctx);
int cuStreamQuery(void *hStream);
int cuGetErrorString(int error, const char **pStr);
"""

SUCCESS, IN_PROGRESS = 0, 7
CUDA_ERROR_NOT_READY = 600
CONFIG_MAGIC = 0xCAFEBEEF
CONFIG_VERSION = 21700               # NCCL_VERSION(2, 17, 0): the layout of mx_nccl_config
UNDEF_INT = -2 ** 31                 # NCCL_CONFIG_UNDEF_INT

# ncclDataType_t and ncclRedOp_t (nccl.h 2.x)
NCCL_TYPES = {"int8": 0, "uint8": 1, "int32": 2, "uint32": 3, "int64": 4, "uint64": 5,
              "float16": 6, "float32": 7, "float64": 8, "bfloat16": 9}
NCCL_OPS = {"sum": 0, "max": 2, "min": 3}
# reduced in a wider integer type and narrowed back (wrap-around sums stay exact)
_WIDEN = {"int16": "int32", "uint16": "uint32"}
# summed as (real, imaginary) pairs
_COMPLEX = {"complex64": "float32", "complex128": "float64"}

# the device of mx's GPU backend (it opens the first one a process sees); NCCL runs there
_GPU_DEVICE = 0


# ---------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------
def _site_dirs():
    import site
    dirs = []
    try:
        dirs += site.getsitepackages()
    except AttributeError:      # some virtualenvs' site module
        pass
    try:
        dirs.append(site.getusersitepackages())
    except AttributeError:
        pass
    dirs += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    out = []
    for d in dirs:
        if d and d not in out:
            out.append(d)
    return out


def library_candidates():
    """The NCCL libraries tried, in order: [$MX_NCCL_LIBRARY] alone when it is set, else
    "libnccl.so.2" (the dynamic loader's search) and the nvidia/nccl/lib/libnccl.so.2 of
    every site-packages folder that has one."""
    explicit = os.environ.get(LIBRARY_VAR, "").strip()
    if explicit:
        return [explicit]
    out = [LIBRARY_NAME]
    for d in _site_dirs():
        path = os.path.join(d, "nvidia", "nccl", "lib", LIBRARY_NAME)
        if os.path.isfile(path) and path not in out:
            out.append(path)
    return out


class _Library:
    """NCCL and the CUDA driver as cffi libraries, and NCCL's version."""

    def __init__(self, ffi, nccl, path, code):
        self.ffi = ffi
        self.nccl = nccl
        self.path = path
        self.code = code
        self.version = _decode_version(code)
        self.nonblocking = self.version >= (2, 14, 0) and _has(nccl, "ncclCommInitRankConfig")
        self.can_split = _has(nccl, "ncclCommSplit")
        self._cuda = None

    @property
    def cuda(self):
        if self._cuda is None:
            name = os.environ.get("MX_CUDA_DRIVER", "").strip() or "libcuda.so.1"
            self._cuda = self.ffi.dlopen(name)
        return self._cuda

    def error_string(self, rc):
        try:
            return self.ffi.string(self.nccl.ncclGetErrorString(rc)).decode("utf-8", "replace")
        except AttributeError:
            return f"NCCL error {rc}"

    def last_error(self, comm):
        if not _has(self.nccl, "ncclGetLastError"):
            return ""
        s = self.nccl.ncclGetLastError(self.ffi.NULL if comm is None else comm)
        return "" if s == self.ffi.NULL else self.ffi.string(s).decode("utf-8", "replace")


def _has(lib, name):
    try:
        getattr(lib, name)
        return True
    except AttributeError:
        return False


def _decode_version(code):
    # NCCL_VERSION: X*1000 + Y*100 + Z up to 2.8, X*10000 + Y*100 + Z after
    if code >= 10000:
        return code // 10000, code // 100 % 100, code % 100
    return code // 1000, code // 100 % 10, code % 100


_LOADED = {}      # tuple of candidates -> _Library or the error message


def load_library():
    """The loaded NCCL (a _Library); RuntimeError saying what was tried and why it failed."""
    import cffi
    candidates = tuple(library_candidates())
    hit = _LOADED.get(candidates)
    if isinstance(hit, _Library):
        return hit
    if hit is None:
        ffi = cffi.FFI()
        ffi.cdef(_CDEF)
        errors = []
        for name in candidates:
            try:
                lib = ffi.dlopen(name)
            except OSError as e:
                errors.append(f"{name}: {e}")
                continue
            try:
                code = ffi.new("int *")
                rc = lib.ncclGetVersion(code)
            except AttributeError:
                errors.append(f"{name}: loads but is not NCCL (it has no ncclGetVersion)")
                continue
            if rc != SUCCESS:
                errors.append(f"{name}: ncclGetVersion failed with NCCL error {rc}")
                continue
            hit = _Library(ffi, lib, name, int(code[0]))
            break
        else:
            if os.environ.get(LIBRARY_VAR, "").strip():
                hit = (f"{LIBRARY_VAR}={candidates[0]} could not be loaded as NCCL ("
                       + "; ".join(e.split(": ", 1)[1] for e in errors) + ")")
            else:
                hit = ("the NCCL library was not found (tried " + "; ".join(errors)
                       + "); install it (apt-get install libnccl2, or pip install "
                       "nvidia-nccl-cu12) or name it with " + LIBRARY_VAR)
        _LOADED[candidates] = hit
    if isinstance(hit, str):
        raise RuntimeError(f"[nccl] {hit}.")
    return hit


def _gpu():
    from mx.backend import gpu
    return gpu.active_backend()


def available() -> bool:
    """Whether an NCCL communicator can be made here: mx's GPU backend is active and the
    NCCL library loads."""
    if _gpu() is None:
        return False
    try:
        load_library()
    except RuntimeError:
        return False
    return True


def unavailable_reason() -> str:
    """Why available() is False ('' when it is True)."""
    if _gpu() is None:
        from mx.backend import gpu
        why = gpu.unavailable_reason() or "no GPU"
        return f"the mx GPU backend is not active ({why})"
    try:
        load_library()
    except RuntimeError as e:
        return str(e)[len("[nccl] "):].rstrip(".")
    return ""


def wanted_by_any(expected):
    """Whether init(backend="any") tries NCCL before MPI: a launcher started several
    processes, mx's GPU backend is active and MPI is there for the processes to meet."""
    if expected is None or expected < 2 or _gpu() is None:
        return False
    from mx.core.distributed import _mpi
    return _mpi.available()


def version():
    """(major, minor, patch) of the NCCL library mx loads; RuntimeError when none loads."""
    return load_library().version


# ---------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------
def reduction_plan(dtype, op, name):
    """How NCCL reduces arrays of NumPy `dtype` with `op` ("sum", "max", "min") for the op
    called `name`: (wire dtype, ncclDataType_t, ncclRedOp_t). The flat array is viewed as
    the wire dtype when the item sizes allow (bool as uint8, complex as float pairs),
    else converted (int16 and uint16 widen to 32 bits). ValueError when NCCL cannot."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        # bool stays bool: a sum or a max is "any", a min "all"
        return np.dtype(np.uint8), NCCL_TYPES["uint8"], NCCL_OPS["min" if op == "min" else "max"]
    if dtype.name in NCCL_TYPES:
        return dtype, NCCL_TYPES[dtype.name], NCCL_OPS[op]
    if dtype.name in _WIDEN:
        wire = np.dtype(_WIDEN[dtype.name])
        return wire, NCCL_TYPES[wire.name], NCCL_OPS[op]
    if dtype.name in _COMPLEX and op == "sum":
        wire = np.dtype(_COMPLEX[dtype.name])
        return wire, NCCL_TYPES[wire.name], NCCL_OPS["sum"]
    what = ("complex numbers have no order" if dtype.name in _COMPLEX
            else "NCCL has no such type")
    raise ValueError(f"[{name}] The NCCL backend cannot reduce arrays of dtype {dtype.name} "
                     f"with {op} ({what}). It reduces bool, int8, uint8, int16, uint16, int32, "
                     "uint32, int64, uint64, float16, bfloat16, float32 and float64 arrays, and "
                     "sums complex64 and complex128 ones.")


def _to_wire(x, wire):
    """x (C-contiguous) as a flat array of `wire` items: a view when the bytes allow."""
    flat = x.reshape(-1)
    if flat.dtype == wire:
        return flat
    if flat.dtype.kind in "bc" or flat.dtype.itemsize == wire.itemsize:
        return flat.view(wire)
    return flat.astype(wire)


def _from_wire(buf, dtype, shape):
    if buf.dtype == dtype:
        return buf.reshape(shape)
    if dtype.kind in "bc" or dtype.itemsize == buf.dtype.itemsize:
        return buf.view(dtype).reshape(shape)
    return buf.astype(dtype).reshape(shape)


def _contiguous(a):
    # not np.ascontiguousarray, which turns 0-d arrays into 1-d ones
    return a if a.flags.c_contiguous else a.copy(order="C")


# ---------------------------------------------------------------------------------------
# process state
# ---------------------------------------------------------------------------------------
class _State:
    """What all NCCL communicators of this process share."""

    def __init__(self, lib):
        self.lib = lib
        self.ffi = lib.ffi
        self.timeout = timeout_seconds()
        self.blocking = os.environ.get(BLOCKING_VAR, "").strip() in ("1", "true", "yes")
        self.failed = None       # the message of the communication that failed
        self.comms = []          # every communicator made here (aborted at exit)
        self.handles = []        # where NCCL delivers split communicators
        self.lock = threading.RLock()
        self.mpi = None          # the MPI backend the processes met through, if they did
        self.ctx = None

    # -- the CUDA context ---------------------------------------------------------------
    def make_current(self):
        """Make the GPU backend's context (the primary context of its device) current on
        this thread, which decides the device NCCL uses; kernels may run on any thread."""
        ffi, cuda = self.ffi, self.lib.cuda
        if self.ctx is None:
            cuda.cuInit(0)
            dev = ffi.new("int *")
            ctx = ffi.new("void **")
            _cuda_check(self, cuda.cuDeviceGet(dev, _GPU_DEVICE), "cuDeviceGet")
            _cuda_check(self, cuda.cuDevicePrimaryCtxRetain(ctx, dev[0]),
                        "cuDevicePrimaryCtxRetain")
            self.ctx = ctx[0]
            self.device = dev[0]
        cur = ffi.new("void **")
        cuda.cuCtxGetCurrent(cur)
        if cur[0] != self.ctx:
            _cuda_check(self, cuda.cuCtxSetCurrent(self.ctx), "cuCtxSetCurrent")

    def bus_id(self):
        buf = self.ffi.new("char[64]")
        if self.lib.cuda.cuDeviceGetPCIBusId(buf, 64, self.device) != 0:
            return f"device {self.device}"
        return self.ffi.string(buf).decode("ascii", "replace")

    # -- configs --------------------------------------------------------------------
    def config(self):
        if self.blocking or not self.lib.nonblocking:
            return None
        c = self.ffi.new("mx_nccl_config *")
        c.size = self.ffi.sizeof("mx_nccl_config")
        c.magic = CONFIG_MAGIC
        c.version = CONFIG_VERSION
        c.blocking = 0
        c.cgaClusterSize = c.minCTAs = c.maxCTAs = UNDEF_INT
        c.netName = self.ffi.NULL
        return c

    def deadline(self):
        return None if self.timeout is None else time.monotonic() + self.timeout

    # -- failures -------------------------------------------------------------------
    def fail(self, msg):
        """Record a failed communication and abort every communicator: an NCCL operation
        cannot be cancelled, and peers blocked in one are released only by an abort."""
        if self.failed is None:
            self.failed = msg
        for comm in self.comms:
            self.lib.nccl.ncclCommAbort(comm)
        self.comms = []
        if self.mpi is not None:
            # the MPI backend's exit handler aborts the MPI job when its state has failed
            from mx.core.distributed import _mpi
            if _mpi._STATE is not None and _mpi._STATE.failed is None:
                _mpi._STATE.failed = msg


def _cuda_check(st, rc, what):
    if rc != 0:
        s = st.ffi.new("const char **")
        st.lib.cuda.cuGetErrorString(rc, s)
        text = st.ffi.string(s[0]).decode() if s[0] != st.ffi.NULL else "unknown error"
        raise RuntimeError(f"[nccl] {what} failed: {text} (CUDA error {rc}).")


_STATE = None


def _state():
    global _STATE
    if _STATE is None:
        _STATE = _State(load_library())
        atexit.register(_at_exit)
    return _STATE


def _at_exit():
    # Aborting is local and never waits for peers (ncclCommDestroy may); at exit nothing
    # more will be communicated.
    st = _STATE
    if st is None:
        return
    for comm in st.comms:
        st.lib.nccl.ncclCommAbort(comm)
    st.comms = []


def _settle(st, comm, rc, op, deadline, rank, size, others=()):
    """Finish the NCCL call on `comm` that returned rc: a non-blocking communicator answers
    ncclInProgress and completes in the background; poll it until the deadline."""
    nccl, ffi = st.lib.nccl, st.ffi
    if rc == IN_PROGRESS:
        state = ffi.new("int *")
        pause = 0.0
        while True:
            r = nccl.ncclCommGetAsyncError(comm, state)
            if r != SUCCESS:
                rc = r
                break
            if state[0] != IN_PROGRESS:
                rc = state[0]
                break
            if deadline is not None and time.monotonic() > deadline:
                _timed_out(st, op, rank, size)
            pause = min(pause * 2 or 1e-5, 1e-3)
            time.sleep(pause)
    if rc != SUCCESS:
        detail = st.lib.last_error(comm)
        msg = (f"[{op}] NCCL error on rank {rank} of {size}: {st.lib.error_string(rc)}"
               + (f" ({detail})" if detail else "") + ".")
        st.fail(msg)
        raise RuntimeError(msg)


def _timed_out(st, op, rank, size):
    msg = (f"[{op}] Rank {rank} of a group of {size} waited {st.timeout:g} s for the other "
           "processes without an answer: a peer died, hangs, or took a different path through "
           "the program (every process must run the same communications in the same order). "
           "Raise MX_DISTRIBUTED_TIMEOUT to wait longer.")
    st.fail(msg)
    raise TimeoutError(msg)


def _new_comm(st, nranks, uid, rank, op):
    """An initialized communicator of `nranks` ranks, this process being `rank`."""
    ffi, nccl = st.ffi, st.lib.nccl
    comm_p = ffi.new("ncclComm_t *")
    cfg = st.config()
    deadline = st.deadline()
    with st.lock:
        st.make_current()
        if cfg is not None:
            rc = nccl.ncclCommInitRankConfig(comm_p, nranks, uid[0], rank, cfg)
        else:
            rc = nccl.ncclCommInitRank(comm_p, nranks, uid[0], rank)
        comm = comm_p[0]
        if comm != ffi.NULL:
            st.comms.append(comm)
        _settle(st, comm if comm != ffi.NULL else None, rc, op, deadline, rank, nranks)
    return comm


# ---------------------------------------------------------------------------------------
# rendezvous
# ---------------------------------------------------------------------------------------
_ID, _HOST, _BUS = 128, 64, 32            # bytes of each field of a process's card
_CARD = _ID + _HOST + _BUS + 8


def _card(uid, host, bus, device_count):
    card = np.zeros(_CARD, np.uint8)
    card[:_ID] = np.frombuffer(bytes(uid), np.uint8)
    h = host.encode("utf-8")[:_HOST]
    card[_ID:_ID + len(h)] = np.frombuffer(h, np.uint8)
    b = bus.encode("ascii", "replace")[:_BUS]
    card[_ID + _HOST:_ID + _HOST + len(b)] = np.frombuffer(b, np.uint8)
    card[_ID + _HOST + _BUS:] = np.frombuffer(np.int64(device_count).tobytes(), np.uint8)
    return card


def _read_cards(cards):
    out = []
    for c in cards:
        field = lambda a, b: bytes(c[a:b]).rstrip(b"\0").decode("utf-8", "replace")
        out.append({"id": bytes(c[:_ID]), "host": field(_ID, _ID + _HOST),
                    "bus": field(_ID + _HOST, _ID + _HOST + _BUS),
                    "devices": int(np.frombuffer(bytes(c[_ID + _HOST + _BUS:]), np.int64)[0])})
    return out


def assign_devices(hosts, buses, device_counts):
    """Each rank's (local rank, GPU it should use = local rank % GPUs on its host), from
    every rank's host name, GPU bus id and visible GPU count (rank order). RuntimeError,
    the same on every process, when two processes of a host share a GPU."""
    seen = {}
    local = {}
    out = []
    for r, (host, bus, n) in enumerate(zip(hosts, buses, device_counts)):
        lr = local.get(host, 0)
        local[host] = lr + 1
        out.append((lr, lr % max(n, 1)))
        other = seen.setdefault((host, bus), r)
        if other != r:
            raise RuntimeError(
                f"[nccl] Ranks {other} and {r} both run on the GPU at {bus} of host {host}, "
                "but NCCL needs a GPU of its own for each process. mx's GPU backend opens the "
                "first GPU a process sees: start the process of local rank l with "
                "CUDA_VISIBLE_DEVICES=l (its GPU l % n of the host's n), e.g. through "
                "$OMPI_COMM_WORLD_LOCAL_RANK or $MPI_LOCALRANKID in a wrapper script.")
    return out


def _needs_mpi(expected, var):
    from mx.core.distributed import _mpi
    if not _mpi.available():
        raise RuntimeError(
            f"[nccl] NCCL with several processes ({var}={expected}) needs mpi4py and an MPI "
            "library to exchange NCCL's unique id between the processes (pip install mpi4py; "
            "apt-get install openmpi-bin libopenmpi-dev), and the processes started by "
            "mpirun or python -m mx.launch.")
    return _mpi


def init():
    """The world's NCCL backend: a communicator of one rank when this process runs alone,
    else one of all the processes of the MPI job that started it."""
    expected, var = launched_size()
    mpi_module = _needs_mpi(expected, var) if expected is not None and expected > 1 else None
    if _gpu() is None:
        raise RuntimeError(f"[nccl] {unavailable_reason()}.")
    st = _state()
    if st.failed is not None:
        raise RuntimeError(f"[nccl] The NCCL backend is unusable: {st.failed}")
    nccl, ffi = st.lib.nccl, st.ffi
    uid = ffi.new("ncclUniqueId *")
    with st.lock:
        st.make_current()
    world = mpi_module.init() if mpi_module is not None else None
    if world is None or world.size == 1:
        _check(st, nccl.ncclGetUniqueId(uid), "init")
        comm = _new_comm(st, 1, uid, 0, "init")
        return NCCLBackend(comm, st, local_rank=0)
    st.mpi = world
    if world.rank == 0:
        _check(st, nccl.ncclGetUniqueId(uid), "init")
    gpu = _gpu()
    mine = _card(ffi.buffer(uid), socket.gethostname(), st.bus_id(), gpu.device_count())
    cards = _read_cards(world.all_gather(mine[None]))
    placement = assign_devices([c["host"] for c in cards], [c["bus"] for c in cards],
                               [c["devices"] for c in cards])
    ffi.memmove(uid, cards[0]["id"], _ID)
    comm = _new_comm(st, world.size, uid, world.rank, "init")
    return NCCLBackend(comm, st, local_rank=placement[world.rank][0])


def _check(st, rc, op):
    if rc != SUCCESS:
        raise RuntimeError(f"[{op}] NCCL error: {st.lib.error_string(rc)}.")


# ---------------------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------------------
def _in_gpu_memory(method):
    """Run a backend method with mx's allocator installed, so that the arrays it makes
    (results, staged copies) lie in the GPU shim's memory also when it is called outside
    an evaluation (the kernels run inside one)."""
    @functools.wraps(method)
    def run(*args, **kwargs):
        from mx.core._memory import using_mx_allocator
        with using_mx_allocator():
            return method(*args, **kwargs)
    return run


class NCCLBackend(Backend):
    name = "nccl"

    def __init__(self, comm, state, local_rank=0):
        self.comm = comm
        self.state = state
        n = state.ffi.new("int *")
        _check(state, state.lib.nccl.ncclCommUserRank(comm, n), "init")
        self.rank = int(n[0])
        _check(state, state.lib.nccl.ncclCommCount(comm, n), "init")
        self.size = int(n[0])
        self.local_rank = local_rank

    # -- running one communication ------------------------------------------------------
    def _start(self, op):
        st = self.state
        if st.failed is not None:
            raise RuntimeError(f"[{op}] The distributed group is unusable: an earlier "
                               f"communication did not complete ({st.failed})")
        gpu = _gpu()
        if gpu is None:
            raise RuntimeError(f"[{op}] The NCCL group cannot communicate: the mx GPU backend "
                               "is not active (in a forked child process, CUDA is gone).")
        return gpu

    @staticmethod
    def _on_gpu(gpu, a, op):
        """`a` itself when it lies in the GPU shim's memory, else a copy there."""
        staged = gpu.operand(a)
        if staged is None:
            raise RuntimeError(f"[{op}] Could not place a {a.nbytes}-byte buffer in GPU memory.")
        return staged[2]

    @staticmethod
    def _output(gpu, shape, dtype, op):
        made = gpu.output(shape, dtype)
        if made is None:
            raise RuntimeError(f"[{op}] Could not allocate a result in GPU memory.")
        return made[0]

    def _ptr(self, a):
        return self.state.ffi.cast("void *", a.__array_interface__["data"][0])

    def _run(self, op, gpu, enqueue):
        """Queue `enqueue(stream)` (NCCL calls) on mx's default GPU stream, after the GPU
        work queued there, and wait for it, polling against the deadline and NCCL's error
        state."""
        from mx.core import devices
        st = self.state
        ffi, nccl = st.ffi, st.lib.nccl
        deadline = st.deadline()
        with st.lock:
            st.make_current()
            index = devices.default_stream(devices.gpu).index
            stream = ffi.cast("void *", gpu.native_stream(index))
            rc = nccl.ncclGroupStart()
            if rc != SUCCESS:
                _settle(st, self.comm, rc, op, deadline, self.rank, self.size)
            try:
                rc = enqueue(stream)
            finally:
                end = nccl.ncclGroupEnd()
            # the buffers stay referenced here until the wait below
            gpu.queued()
            if rc not in (SUCCESS, IN_PROGRESS):
                _settle(st, self.comm, rc, op, deadline, self.rank, self.size)
            _settle(st, self.comm, end, op, deadline, self.rank, self.size)
            self._wait_stream(stream, op, deadline)
        gpu.synchronize()

    def _wait_stream(self, stream, op, deadline):
        st = self.state
        cuda, nccl, ffi = st.lib.cuda, st.lib.nccl, st.ffi
        state = ffi.new("int *")
        spins = 0
        pause = 0.0
        while True:
            r = cuda.cuStreamQuery(stream)
            if r == 0:
                return
            if r != CUDA_ERROR_NOT_READY:
                msg = f"[{op}] The GPU failed while NCCL ran"
                try:
                    _cuda_check(st, r, "cuStreamQuery")
                except RuntimeError as e:
                    msg += ": " + str(e)[len("[nccl] "):]
                st.fail(msg)
                raise RuntimeError(msg)
            spins += 1
            if spins & 63 == 0:
                # a peer's failure or a network error shows here, not on the stream
                if nccl.ncclCommGetAsyncError(self.comm, state) == SUCCESS and \
                        state[0] not in (SUCCESS, IN_PROGRESS):
                    _settle(st, self.comm, state[0], op, None, self.rank, self.size)
                if deadline is not None and time.monotonic() > deadline:
                    _timed_out(st, op, self.rank, self.size)
            if spins > 256:
                # past the first microseconds, poll without holding a core
                pause = min(pause * 2 or 2e-5, 1e-3)
                time.sleep(pause)

    # -- groups -------------------------------------------------------------------------
    def split(self, color, key):
        self._start("split")
        st = self.state
        if not st.lib.can_split:
            raise RuntimeError("[split] Splitting an NCCL group needs NCCL 2.18 or newer; this "
                               "is NCCL {}.{}.{}.".format(*st.lib.version))
        ffi, nccl = st.ffi, st.lib.nccl
        new_p = ffi.new("ncclComm_t *")
        cfg = st.config()
        deadline = st.deadline()
        with st.lock:
            st.make_current()
            # NCCL writes the new communicator into new_p when the split completes, in the
            # background for a non-blocking parent: new_p must outlive a failed wait
            st.handles.append(new_p)
            rc = nccl.ncclCommSplit(self.comm, int(color), int(key), new_p,
                                    cfg if cfg is not None else ffi.NULL)
            if rc not in (SUCCESS, IN_PROGRESS):
                _settle(st, self.comm, rc, "split", deadline, self.rank, self.size)
            state = ffi.new("int *")
            pause = 0.0
            while new_p[0] == ffi.NULL:
                # polling the parent also completes the split's background job
                r = nccl.ncclCommGetAsyncError(self.comm, state)
                err = r if r != SUCCESS else state[0]
                if err not in (SUCCESS, IN_PROGRESS):
                    _settle(st, self.comm, err, "split", deadline, self.rank, self.size)
                if new_p[0] != ffi.NULL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    _timed_out(st, "split", self.rank, self.size)
                pause = min(pause * 2 or 1e-5, 1e-3)
                time.sleep(pause)
            new = new_p[0]
            st.comms.append(new)
            _settle(st, new, IN_PROGRESS, "split", deadline, self.rank, self.size)
        return NCCLBackend(new, st, self.local_rank)

    # -- collectives ----------------------------------------------------------------------
    @_in_gpu_memory
    def all_reduce(self, x, op, out=None):
        name = "all_" + op
        gpu = self._start(name)
        wire, dt, rop = reduction_plan(x.dtype, op, name)
        if x.size == 0:
            return x.copy() if out is None else out
        in_place = out is not None and out is x and x.flags.c_contiguous
        x = _contiguous(x)
        src = self._on_gpu(gpu, _to_wire(x, wire), name)
        if in_place and np.may_share_memory(src, x):
            dst = src                         # the donated buffer receives the result
        else:
            dst = self._output(gpu, src.shape, wire, name)
        nccl = self.state.lib.nccl
        self._run(name, gpu, lambda s: nccl.ncclAllReduce(
            self._ptr(src), self._ptr(dst), dst.size, dt, rop, self.comm, s))
        result = _from_wire(dst, x.dtype, x.shape)
        if out is None:
            return result
        if not np.may_share_memory(result, out):
            np.copyto(out, result)
        return out

    @_in_gpu_memory
    def all_gather(self, x):
        gpu = self._start("all_gather")
        x = _contiguous(x)
        out = self._output(gpu, (self.size * x.shape[0],) + x.shape[1:], x.dtype, "all_gather")
        if x.size == 0:
            return out
        src = self._on_gpu(gpu, x.reshape(-1).view(np.uint8), "all_gather")
        dst = out.reshape(-1).view(np.uint8)
        nccl = self.state.lib.nccl
        self._run("all_gather", gpu, lambda s: nccl.ncclAllGather(
            self._ptr(src), self._ptr(dst), src.size, NCCL_TYPES["uint8"], self.comm, s))
        return out

    @_in_gpu_memory
    def sum_scatter(self, x):
        gpu = self._start("sum_scatter")
        wire, dt, rop = reduction_plan(x.dtype, "sum", "sum_scatter")
        x = _contiguous(x)
        shape = (x.shape[0] // self.size,) + x.shape[1:]
        if x.size == 0:
            return np.empty(shape, x.dtype)
        src = self._on_gpu(gpu, _to_wire(x, wire), "sum_scatter")
        dst = self._output(gpu, (src.size // self.size,), wire, "sum_scatter")
        nccl = self.state.lib.nccl
        self._run("sum_scatter", gpu, lambda s: nccl.ncclReduceScatter(
            self._ptr(src), self._ptr(dst), dst.size, dt, rop, self.comm, s))
        return _from_wire(dst, x.dtype, shape)

    # -- point to point -------------------------------------------------------------------
    @_in_gpu_memory
    def send(self, x, dst):
        gpu = self._start("send")
        x = _contiguous(x)
        if x.size == 0:
            return
        src = self._on_gpu(gpu, x.reshape(-1).view(np.uint8), "send")
        nccl = self.state.lib.nccl
        self._run("send", gpu, lambda s: nccl.ncclSend(
            self._ptr(src), src.size, NCCL_TYPES["uint8"], int(dst), self.comm, s))

    @_in_gpu_memory
    def recv(self, shape, dtype, src):
        gpu = self._start("recv")
        out = self._output(gpu, tuple(shape), np.dtype(dtype), "recv")
        if out.size == 0:
            return out
        buf = out.reshape(-1).view(np.uint8)
        nccl = self.state.lib.nccl
        self._run("recv", gpu, lambda s: nccl.ncclRecv(
            self._ptr(buf), buf.size, NCCL_TYPES["uint8"], int(src), self.comm, s))
        return out
