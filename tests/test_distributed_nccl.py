"""mx.distributed's NCCL backend. Without a GPU: when it is available, how init() treats it
(strict or not, backend="any"), where the library is looked for, the dtype plan, the GPU
placement check. Marked gpu (one GPU, NCCL installed): a communicator of one rank running
every collective through NCCL (the primitives' nodes are built directly, since the ops
return their input in a group of one, as MLX's do), under grad and compile, and the
timeout path in a subprocess."""
import ctypes.util
import os
import subprocess
import sys
import textwrap
import time

import ml_dtypes
import numpy as np
import pytest

import mx.core as mx
from mx.core import distributed as dist
from mx.core._array import make_node
from mx.core.distributed import _backend, _mpi, _nccl

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def fresh(monkeypatch):
    """No launcher variables, no NCCL library variable, no group made yet."""
    for var in _backend.LAUNCH_SIZE_VARS + (_nccl.LIBRARY_VAR,):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(dist, "_WORLD", {})
    monkeypatch.setattr(dist, "_BACKENDS", dict(dist._BACKENDS))
    monkeypatch.setattr(dist, "_ANY_ORDER", list(dist._ANY_ORDER))
    monkeypatch.setattr(dist, "_ANY_WHEN", dict(dist._ANY_WHEN))
    return monkeypatch


@pytest.fixture
def no_gpu(fresh):
    fresh.setattr(_nccl, "_gpu", lambda: None)
    from mx.backend import gpu
    fresh.setattr(gpu, "_reason", "no GPU in this test")
    return fresh


@pytest.fixture
def fake_gpu(fresh):
    """A GPU backend that looks active (only the library checks are reached)."""
    fresh.setattr(_nccl, "_gpu", lambda: object())
    return fresh


class Job(_backend.Backend):
    """A backend standing for a started job of two processes."""
    rank, size = 0, 2

    def __init__(self, name):
        self.name = name

    def split(self, color, key):
        return self

    def all_reduce(self, x, op, out=None):
        return x

    def all_gather(self, x):
        return np.concatenate([x, x])

    def sum_scatter(self, x):
        return x[: x.shape[0] // 2]

    def send(self, x, dst):
        pass

    def recv(self, shape, dtype, src):
        return np.zeros(shape, dtype)


def _refuse(name):
    def start():
        raise AssertionError(f"{name} must not be started here")
    return start


# ---------------------------------------------------------------------------------------
# availability and init()
# ---------------------------------------------------------------------------------------
def test_registered_first_for_any():
    assert dist._ANY_ORDER[:2] == ["nccl", "mpi"]
    assert dist._BACKENDS["nccl"] == (_nccl.available, _nccl.unavailable_reason, _nccl.init)


def test_unavailable_without_the_gpu_backend(no_gpu):
    assert _nccl.available() is False
    assert dist.is_available("nccl") is False
    assert _nccl.unavailable_reason() == "the mx GPU backend is not active (no GPU in this test)"


def test_strict_init_raises_and_plain_init_is_a_group_of_one(no_gpu):
    with pytest.raises(RuntimeError, match=r"\[distributed\] Couldn't initialize any backend: "
                                           r"nccl: the mx GPU backend is not active \(no GPU "
                                           r"in this test\)\."):
        dist.init(strict=True, backend="nccl")
    # as MLX: an unavailable backend, not strict, gives the group of this process alone
    g = dist.init(backend="nccl")
    assert (g.rank(), g.size()) == (0, 1)
    assert repr(g) == "Group(rank=0, size=1, backend='singleton')"
    assert dist.init(backend="nccl") is g
    x = mx.arange(4)
    assert dist.all_sum(x, group=g) is x


def test_the_backend_itself_refuses_to_start_without_a_gpu(no_gpu):
    with pytest.raises(RuntimeError, match=r"^\[nccl\] the mx GPU backend is not active"):
        _nccl.init()


def test_init_of_several_processes_needs_mpi4py(fake_gpu):
    fake_gpu.setenv("MX_WORLD_SIZE", "2")
    fake_gpu.setattr(_mpi, "available", lambda: False)
    msg = (r"\[nccl\] NCCL with several processes \(MX_WORLD_SIZE=2\) needs mpi4py and an MPI "
           r"library to exchange NCCL's unique id")
    with pytest.raises(RuntimeError, match=msg):
        _nccl.init()
    fake_gpu.setitem(dist._BACKENDS, "nccl", (lambda: True, lambda: "", _nccl.init))
    with pytest.raises(RuntimeError, match=r"Could not initialize the nccl backend: " + msg):
        dist.init(strict=True, backend="nccl")
    with pytest.warns(RuntimeWarning, match=r"started 2 processes \(MX_WORLD_SIZE=2\).*nccl: "
                                            "initialization failed: .*needs mpi4py"):
        assert dist.init(backend="nccl").size() == 1


# ---------------------------------------------------------------------------------------
# backend="any"
# ---------------------------------------------------------------------------------------
def _two_backends(fresh, nccl_start, mpi_start, nccl_wanted=None):
    fresh.setitem(dist._BACKENDS, "nccl", (lambda: True, lambda: "", nccl_start))
    fresh.setitem(dist._BACKENDS, "mpi", (lambda: True, lambda: "", mpi_start))
    if nccl_wanted is None:
        nccl_wanted = lambda expected: expected is not None and expected > 1  # noqa: E731
    fresh.setitem(dist._ANY_WHEN, "nccl", nccl_wanted)


def test_any_prefers_nccl_in_a_job_of_several_processes(fresh):
    _two_backends(fresh, lambda: Job("nccl"), _refuse("mpi"))
    fresh.setenv("OMPI_COMM_WORLD_SIZE", "2")
    g = dist.init(strict=True)
    assert repr(g) == "Group(rank=0, size=2, backend='nccl')"
    assert dist.init() is g


def test_any_without_a_launcher_starts_nothing(fresh):
    _two_backends(fresh, _refuse("nccl"), _refuse("mpi"))
    assert repr(dist.init()) == "Group(rank=0, size=1, backend='singleton')"


def test_any_with_one_launched_process_takes_mpi(fresh):
    _two_backends(fresh, _refuse("nccl"), lambda: Job("mpi"))
    fresh.setenv("MX_WORLD_SIZE", "1")
    assert dist.init(strict=True)._impl.name == "mpi"


def test_any_takes_mpi_when_nccl_is_not_wanted(fresh):
    _two_backends(fresh, _refuse("nccl"), lambda: Job("mpi"), nccl_wanted=lambda e: False)
    fresh.setenv("PMI_SIZE", "2")
    assert dist.init(strict=True)._impl.name == "mpi"


def test_any_falls_back_to_mpi_when_nccl_fails_to_start(fresh):
    def broken():
        raise RuntimeError("no NCCL today")

    _two_backends(fresh, broken, lambda: Job("mpi"))
    fresh.setenv("MX_WORLD_SIZE", "2")
    assert dist.init(strict=True)._impl.name == "mpi"


def test_strict_any_reports_the_first_failure(fresh):
    def broken(what):
        def start():
            raise RuntimeError(what)
        return start

    _two_backends(fresh, broken("no NCCL today"), broken("no MPI either"))
    fresh.setenv("MX_WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="Could not initialize the nccl backend: no NCCL today"):
        dist.init(strict=True)
    with pytest.warns(RuntimeWarning, match="nccl: initialization failed: no NCCL today; mpi: "
                                            "initialization failed: no MPI either"):
        assert dist.init().size() == 1


def test_wanted_by_any(fresh):
    fresh.setattr(_mpi, "available", lambda: True)
    fresh.setattr(_nccl, "_gpu", lambda: None)
    assert not _nccl.wanted_by_any(2)
    fresh.setattr(_nccl, "_gpu", lambda: object())
    assert _nccl.wanted_by_any(2) and _nccl.wanted_by_any(8)
    assert not _nccl.wanted_by_any(None) and not _nccl.wanted_by_any(1)
    fresh.setattr(_mpi, "available", lambda: False)
    assert not _nccl.wanted_by_any(2)


# ---------------------------------------------------------------------------------------
# the library
# ---------------------------------------------------------------------------------------
def test_library_search_order(fresh, tmp_path):
    lib = tmp_path / "nvidia" / "nccl" / "lib"
    lib.mkdir(parents=True)
    (lib / "libnccl.so.2").write_bytes(b"")
    fresh.setattr(_nccl, "_site_dirs", lambda: [str(tmp_path / "elsewhere"), str(tmp_path)])
    assert _nccl.library_candidates() == ["libnccl.so.2", str(lib / "libnccl.so.2")]
    fresh.setenv("MX_NCCL_LIBRARY", "/opt/nccl/libnccl.so.2")
    assert _nccl.library_candidates() == ["/opt/nccl/libnccl.so.2"]


def test_a_bad_library_path_is_a_clear_error(fake_gpu):
    fake_gpu.setenv("MX_NCCL_LIBRARY", "/nonexistent/libnccl.so.2")
    msg = (r"MX_NCCL_LIBRARY=/nonexistent/libnccl\.so\.2 could not be loaded as NCCL "
           r"\(.*/nonexistent/libnccl\.so\.2.*\)")
    with pytest.raises(RuntimeError, match=r"^\[nccl\] " + msg + r"\.$"):
        _nccl.load_library()
    with pytest.raises(RuntimeError, match=r"^\[nccl\] " + msg):
        _nccl.version()
    assert _nccl.available() is False
    assert _nccl.unavailable_reason().startswith("MX_NCCL_LIBRARY=/nonexistent/libnccl.so.2 "
                                                 "could not be loaded as NCCL (")
    with pytest.raises(RuntimeError, match=r"Couldn't initialize any backend: nccl: " + msg):
        dist.init(strict=True, backend="nccl")
    assert dist.init(backend="nccl").size() == 1


def test_a_library_that_is_not_nccl(fake_gpu):
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no C library found by name")
    fake_gpu.setenv("MX_NCCL_LIBRARY", libc)
    with pytest.raises(RuntimeError, match=rf"MX_NCCL_LIBRARY={libc} could not be loaded as NCCL "
                                           r"\(loads but is not NCCL \(it has no "
                                           r"ncclGetVersion\)\)"):
        _nccl.load_library()


def test_the_library_variable_is_read_at_each_load(fake_gpu):
    fake_gpu.setenv("MX_NCCL_LIBRARY", "/nonexistent/a.so")
    with pytest.raises(RuntimeError, match="a.so"):
        _nccl.load_library()
    fake_gpu.setenv("MX_NCCL_LIBRARY", "/nonexistent/b.so")
    with pytest.raises(RuntimeError, match="b.so"):
        _nccl.load_library()


def test_versions_are_decoded_both_ways():
    assert _nccl._decode_version(2708) == (2, 7, 8)
    assert _nccl._decode_version(21803) == (2, 18, 3)
    assert _nccl._decode_version(22803) == (2, 28, 3)


# ---------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------
def test_enum_values_are_nccl_h():
    # ncclDataType_t and ncclRedOp_t of nccl.h 2.x
    assert _nccl.NCCL_TYPES == {"int8": 0, "uint8": 1, "int32": 2, "uint32": 3, "int64": 4,
                                "uint64": 5, "float16": 6, "float32": 7, "float64": 8,
                                "bfloat16": 9}
    assert _nccl.NCCL_OPS == {"sum": 0, "max": 2, "min": 3}
    assert (_nccl.SUCCESS, _nccl.IN_PROGRESS) == (0, 7)


BF16 = np.dtype(ml_dtypes.bfloat16)


@pytest.mark.parametrize("dtype, op, plan", [
    (np.float32, "sum", ("float32", 7, 0)),
    (np.float16, "max", ("float16", 6, 2)),
    (BF16, "min", ("bfloat16", 9, 3)),
    (np.int32, "sum", ("int32", 2, 0)),
    (np.uint64, "max", ("uint64", 5, 2)),
    (np.float64, "sum", ("float64", 8, 0)),
    (np.bool_, "sum", ("uint8", 1, 2)),       # any
    (np.bool_, "max", ("uint8", 1, 2)),
    (np.bool_, "min", ("uint8", 1, 3)),       # all
    (np.int16, "sum", ("int32", 2, 0)),
    (np.uint16, "min", ("uint32", 3, 3)),
    (np.complex64, "sum", ("float32", 7, 0)),
    (np.complex128, "sum", ("float64", 8, 0)),
])
def test_reduction_plan(dtype, op, plan):
    wire, dt, rop = _nccl.reduction_plan(np.dtype(dtype), op, "all_" + op)
    assert (wire.name, dt, rop) == plan


@pytest.mark.parametrize("dtype, op, why", [
    (np.complex64, "max", "complex numbers have no order"),
    (np.complex128, "min", "complex numbers have no order"),
    (np.str_, "sum", "NCCL has no such type"),
    (np.longdouble, "sum", "NCCL has no such type"),
])
def test_reduction_plan_refuses(dtype, op, why):
    name = np.dtype(dtype).name
    if name == "float64":
        pytest.skip("long double is double here")
    with pytest.raises(ValueError, match=rf"^\[all_{op}\] The NCCL backend cannot reduce arrays "
                                         rf"of dtype {name} with {op} \({why}\)\. It reduces "
                                         "bool, int8"):
        _nccl.reduction_plan(np.dtype(dtype), op, "all_" + op)


@pytest.mark.parametrize("dtype", [np.bool_, np.int16, np.uint16, np.complex64, np.float32, BF16])
def test_wire_round_trip(dtype):
    x = (np.arange(12) % 5 - 2).astype(dtype).reshape(3, 4)
    wire, _, _ = _nccl.reduction_plan(np.dtype(dtype), "sum", "all_sum")
    w = _nccl._to_wire(x, wire)
    assert w.ndim == 1 and w.dtype == wire
    # a view, except where the item size changes
    assert np.shares_memory(w, x) == (np.dtype(dtype).name not in ("int16", "uint16"))
    back = _nccl._from_wire(w, x.dtype, x.shape)
    assert back.dtype == x.dtype and back.shape == x.shape
    np.testing.assert_array_equal(back, x)


# ---------------------------------------------------------------------------------------
# placing processes on GPUs
# ---------------------------------------------------------------------------------------
def test_each_process_gets_local_rank_modulo_gpus():
    got = _nccl.assign_devices(["a", "a", "b", "a"],
                               ["0000:01:00.0", "0000:02:00.0", "0000:01:00.0", "0000:03:00.0"],
                               [2, 2, 1, 2])
    assert got == [(0, 0), (1, 1), (0, 0), (2, 0)]


def test_two_processes_on_one_gpu_is_an_error():
    with pytest.raises(RuntimeError, match=r"^\[nccl\] Ranks 0 and 2 both run on the GPU at "
                                           r"0000:01:00\.0 of host a, but NCCL needs a GPU of its "
                                           r"own for each process\..*CUDA_VISIBLE_DEVICES"):
        _nccl.assign_devices(["a", "b", "a"], ["0000:01:00.0"] * 3, [1, 1, 1])


def test_the_rendezvous_card_round_trips():
    uid = bytes(range(128))
    card = _nccl._card(uid, "node-7", "0000:3B:00.0", 8)
    assert card.shape == (_nccl._CARD,) and card.dtype == np.uint8
    (back,) = _nccl._read_cards(card[None])
    assert back == {"id": uid, "host": "node-7", "bus": "0000:3B:00.0", "devices": 8}


# ---------------------------------------------------------------------------------------
# the backend over a stand-in for NCCL and the CUDA driver (no GPU needed)
# ---------------------------------------------------------------------------------------
FAKE_C = r"""
/* A stand-in for libnccl.so.2 and libcuda.so.1 with one rank's semantics (collectives are
   copies), to test mx's NCCL backend where there is no GPU. FAKE_NCCL_MODE: "hang" (a
   non-blocking communicator never finishes its set-up), "busy" (the stream never drains),
   "fail" (the communicator reports an asynchronous error after its set-up). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { char internal[128]; } ncclUniqueId;
typedef struct { size_t size; unsigned magic, version; int blocking; } cfg_t;
typedef struct comm { int nranks, rank, pending, aborted; char id[128];
                     struct comm **split_out, *split_child; } comm_t;

static const char *mode(void) { const char *m = getenv("FAKE_NCCL_MODE"); return m ? m : ""; }
static int sizes[] = {1, 1, 4, 4, 8, 8, 2, 4, 8, 2};
int fake_aborts = 0, fake_inits = 0, fake_blocking = -1;
char fake_last_id[128];
static unsigned char p2p[1 << 16];

int ncclGetVersion(int *v) { *v = 22803; return 0; }
int ncclGetUniqueId(ncclUniqueId *u) {
    for (int i = 0; i < 128; i++) u->internal[i] = (char)(i * 7 + getpid());
    return 0;
}
static comm_t *make(int nranks, ncclUniqueId id, int rank, int blocking) {
    comm_t *c = calloc(1, sizeof *c);
    c->nranks = nranks; c->rank = rank; c->pending = blocking ? 0 : 3;
    memcpy(c->id, id.internal, 128); memcpy(fake_last_id, id.internal, 128);
    fake_inits++; fake_blocking = blocking;
    return c;
}
int ncclCommInitRank(comm_t **c, int n, ncclUniqueId id, int r) { *c = make(n, id, r, 1); return 0; }
int ncclCommInitRankConfig(comm_t **c, int n, ncclUniqueId id, int r, cfg_t *cfg) {
    if (cfg && cfg->magic != 0xcafebeef) return 4;
    int blocking = !(cfg && cfg->blocking == 0);
    *c = make(n, id, r, blocking);
    return blocking ? 0 : 7;
}
int ncclCommSplit(comm_t *c, int color, int key, comm_t **out, cfg_t *cfg) {
    ncclUniqueId id; memcpy(id.internal, c->id, 128);
    comm_t *child = make(1, id, 0, !(cfg && cfg->blocking == 0));
    if (!child->pending) { *out = child; return 0; }
    /* as NCCL 2.28: a non-blocking split hands the child over once the parent settles */
    *out = NULL; c->split_out = out; c->split_child = child; c->pending = 2;
    return 7;
}
int ncclCommDestroy(comm_t *c) { return 0; }
int ncclCommAbort(comm_t *c) { if (c) c->aborted = 1; fake_aborts++; return 0; }
const char *ncclGetErrorString(int r) { return r == 6 ? "remote process exited or there was a network error" : "fake NCCL error"; }
const char *ncclGetLastError(comm_t *c) { return "the fake's last error"; }
int ncclCommGetAsyncError(comm_t *c, int *e) {
    if (!strcmp(mode(), "hang")) { *e = 7; return 0; }
    if (c->pending > 0) { c->pending--; *e = 7; return 0; }
    if (c->split_out) { *c->split_out = c->split_child; c->split_out = NULL; }
    *e = !strcmp(mode(), "fail") ? 6 : 0;
    return 0;
}
int ncclCommCount(comm_t *c, int *n) { *n = c->nranks; return 0; }
int ncclCommUserRank(comm_t *c, int *r) { *r = c->rank; return 0; }
int ncclAllReduce(const void *s, void *r, size_t n, int dt, int op, comm_t *c, void *st) {
    if (dt < 0 || dt > 9 || (op != 0 && op != 2 && op != 3)) return 4;
    memmove(r, s, n * sizes[dt]); return 0;
}
int ncclAllGather(const void *s, void *r, size_t n, int dt, comm_t *c, void *st) {
    for (int i = 0; i < c->nranks; i++) memmove((char *)r + i * n * sizes[dt], s, n * sizes[dt]);
    return 0;
}
int ncclReduceScatter(const void *s, void *r, size_t n, int dt, int op, comm_t *c, void *st) {
    memmove(r, (const char *)s + c->rank * n * sizes[dt], n * sizes[dt]); return 0;
}
int ncclSend(const void *s, size_t n, int dt, int peer, comm_t *c, void *st) {
    memcpy(p2p, s, n * sizes[dt]); return 0;
}
int ncclRecv(void *r, size_t n, int dt, int peer, comm_t *c, void *st) {
    memcpy(r, p2p, n * sizes[dt]); return 0;
}
int ncclGroupStart(void) { return 0; }
int ncclGroupEnd(void) { return 0; }

static void *current = NULL;
int cuInit(unsigned f) { return 0; }
int cuDeviceGet(int *d, int i) { *d = i; return 0; }
int cuDeviceGetPCIBusId(char *b, int len, int d) {
    const char *bus = getenv("FAKE_BUS");
    snprintf(b, len, "%s", bus ? bus : "0000:01:00.0"); return 0;
}
int cuDevicePrimaryCtxRetain(void **c, int d) { *c = (void *)0x1000; return 0; }
int cuCtxGetCurrent(void **c) { *c = current; return 0; }
int cuCtxSetCurrent(void *c) { current = c; return 0; }
int cuStreamQuery(void *s) { return !strcmp(mode(), "busy") || !strcmp(mode(), "fail") ? 600 : 0; }
int cuGetErrorString(int e, const char **s) { *s = "fake CUDA error"; return 0; }
"""


class FakeGPU:
    """mx's GPU backend as the NCCL backend sees it, over ordinary memory."""

    def __init__(self):
        self.streams = 0
        self.syncs = 0

    def device_count(self):
        return 1

    def native_stream(self, index):
        self.streams += 1
        return 0x5000 + index

    def queued(self, *arrays):
        pass

    def synchronize(self):
        self.syncs += 1

    def operand(self, x):
        return None, 0, x

    def output(self, shape, dtype):
        return np.empty(shape, dtype), None, 0


@pytest.fixture(scope="module")
def fake_library(tmp_path_factory):
    import shutil
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the stand-in library")
    d = tmp_path_factory.mktemp("fake_nccl")
    (d / "fake.c").write_text(FAKE_C)
    subprocess.run([cc, "-shared", "-fPIC", "-O1", "-o", str(d / "libfake.so"), str(d / "fake.c")],
                   check=True, capture_output=True)
    return str(d / "libfake.so")


class Fake:
    """The stand-in's counters (globals of the loaded library) and switches."""

    def __init__(self, path, monkeypatch):
        self.lib = ctypes.CDLL(path)
        self.mp = monkeypatch
        for name in ("fake_aborts", "fake_inits"):
            ctypes.c_int.in_dll(self.lib, name).value = 0
        ctypes.c_int.in_dll(self.lib, "fake_blocking").value = -1

    def count(self, name):
        return ctypes.c_int.in_dll(self.lib, "fake_" + name).value

    def mode(self, m):
        self.mp.setenv("FAKE_NCCL_MODE", m)


@pytest.fixture
def fake(fresh, fake_library):
    """The NCCL backend over the stand-in: its own library load and process state."""
    for var in ("FAKE_NCCL_MODE", "FAKE_BUS", _nccl.BLOCKING_VAR):
        fresh.delenv(var, raising=False)
    fresh.setenv("MX_NCCL_LIBRARY", fake_library)
    fresh.setenv("MX_CUDA_DRIVER", fake_library)
    fresh.setenv("MX_DISTRIBUTED_TIMEOUT", "0.3")
    fresh.setattr(_nccl, "_STATE", None)
    fresh.setattr(_nccl, "_LOADED", {})
    gpu = FakeGPU()
    fresh.setattr(_nccl, "_gpu", lambda: gpu)
    f = Fake(fake_library, fresh)
    f.gpu = gpu
    return f


def _node(prim, x, g):
    shape = (g.size() * x.shape[0],) + x.shape[1:] if prim is dist.ALL_GATHER else x.shape
    return make_node(prim, (x,), {"group": g}, shape, x.dtype)


def test_fake_init_is_non_blocking_and_polled(fake):
    assert _nccl.available() and _nccl.version() == (2, 28, 3)
    g = dist.init(strict=True, backend="nccl")
    assert repr(g) == "Group(rank=0, size=1, backend='nccl')"
    assert fake.count("blocking") == 0 and fake.count("inits") == 1


def test_fake_blocking_communicators_on_request(fake):
    fake.mp.setenv("MX_NCCL_BLOCKING", "1")
    dist.init(strict=True, backend="nccl")
    assert fake.count("blocking") == 1


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int32", "bool", "int16", "complex64"])
def test_fake_collectives_through_the_graph(fake, dtype):
    g = dist.init(strict=True, backend="nccl")
    a = (np.arange(12).reshape(4, 3) % 5).astype(BF16 if dtype == "bfloat16" else dtype)
    x = mx.array(a)
    for prim in PRIMS.values():
        if dtype == "complex64" and prim in (dist.ALL_MAX, dist.ALL_MIN):
            with pytest.raises(ValueError, match=rf"\[{prim.name}\] The NCCL backend cannot "
                                                 "reduce arrays of dtype complex64"):
                mx.eval(_node(prim, x, g))
            continue
        y = _node(prim, x, g)
        np.testing.assert_array_equal(np.asarray(y), a)
        assert np.asarray(y).dtype == a.dtype
    # a dying input is reduced in its own buffer
    np.testing.assert_array_equal(np.asarray(_node(dist.ALL_SUM, x + x, g)), a + a)
    assert fake.gpu.streams >= 4 and fake.gpu.syncs >= 4


def test_fake_grad_compile_and_async_eval(fake):
    g = dist.init(strict=True, backend="nccl")
    x = mx.array(np.arange(5, dtype=np.float32))
    grad = mx.grad(lambda x: (_node(dist.ALL_SUM, x * x, g) + _node(dist.ALL_MAX, x, g)).sum())
    np.testing.assert_array_equal(np.asarray(grad(x)), 2 * np.arange(5) + 1)
    f = mx.compile(lambda x: _node(dist.ALL_GATHER, x, g) * 2)
    np.testing.assert_array_equal(np.asarray(f(x)), 2 * np.arange(5))
    y = _node(dist.SUM_SCATTER, x, g)
    mx.async_eval(y)
    np.testing.assert_array_equal(np.asarray(y), np.arange(5))


def test_fake_split_send_and_recv(fake):
    g = dist.init(strict=True, backend="nccl")
    sub = g.split(2)
    assert repr(sub) == "Group(rank=0, size=1, backend='nccl')" and sub._impl.comm != g._impl.comm
    impl = g._impl
    impl.send(np.arange(4, dtype=np.int64), 0)
    np.testing.assert_array_equal(impl.recv((4,), np.int64, 0), np.arange(4))


def test_fake_set_up_that_never_completes_times_out(fake):
    fake.mode("hang")
    with pytest.raises(RuntimeError, match=r"Could not initialize the nccl backend: \[init\] Rank 0 "
                                           r"of a group of 1 waited 0\.3 s for the other processes "
                                           "without an answer.*MX_DISTRIBUTED_TIMEOUT"):
        dist.init(strict=True, backend="nccl")
    assert fake.count("aborts") == 1
    with pytest.raises(RuntimeError, match=r"^\[nccl\] The NCCL backend is unusable: \[init\] Rank 0"):
        _nccl.init()


def test_fake_collective_that_never_completes_times_out(fake):
    g = dist.init(strict=True, backend="nccl")
    fake.mode("busy")
    x = mx.ones((3,))
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^\[all_sum\] Rank 0 of a group of 1 waited 0\.3 s"):
        mx.eval(_node(dist.ALL_SUM, x, g))
    assert time.monotonic() - start < 5
    assert fake.count("aborts") == 1
    fake.mode("")
    with pytest.raises(RuntimeError, match=r"\[all_gather\] The distributed group is unusable: "
                                           r"an earlier communication did not complete \(\[all_sum\]"):
        mx.eval(_node(dist.ALL_GATHER, x, g))


def test_fake_asynchronous_error_raises(fake):
    g = dist.init(strict=True, backend="nccl")
    fake.mode("fail")
    with pytest.raises(RuntimeError, match=r"^\[all_max\] NCCL error on rank 0 of 1: remote process "
                                           r"exited or there was a network error \(the fake's last "
                                           r"error\)\.$"):
        g._impl.all_reduce(np.ones(3, np.float32), "max")
    assert fake.count("aborts") == 1


_RENDEZVOUS = """
import json, os, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from test_distributed_nccl import FakeGPU
from mx.core import distributed as dist
from mx.core.distributed import _nccl
rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0")))
if sys.argv[3] == "own":
    os.environ["FAKE_BUS"] = "0000:0%d:00.0" % (rank + 1)
gpu = FakeGPU()
_nccl._gpu = lambda: gpu
out = {}
try:
    # backend="any" picks NCCL; it would fall back to MPI when NCCL fails
    g = dist.init(strict=True, backend="any" if sys.argv[3] == "own" else "nccl")
    import ctypes
    lib = ctypes.CDLL(os.environ["MX_NCCL_LIBRARY"])
    uid = bytes((ctypes.c_char * 128).in_dll(lib, "fake_last_id"))
    out = {"rank": g.rank(), "size": g.size(), "backend": g._impl.name,
           "local": g._impl.local_rank, "id": uid.hex()}
except Exception as e:
    out = {"error": f"{type(e).__name__}: {e}"}
with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
    json.dump(out, f)
"""


@pytest.mark.parametrize("gpus", ["own", "shared"])
def test_fake_processes_meet_through_mpi(fake, fake_library, tmp_path, gpus):
    import json
    import shutil
    mpirun = shutil.which("mpirun")
    if mpirun is None or not _mpi.available():
        pytest.skip("needs mpirun and mpi4py")
    from mx import launch
    script = tmp_path / "worker.py"
    script.write_text(_RENDEZVOUS)
    cmd = [mpirun, "-n", "2"]
    if launch.mpi_flavor(mpirun) == "openmpi":
        cmd += ["--oversubscribe", "--allow-run-as-root"]
    env = dict(os.environ, MX_WORLD_SIZE="2", MX_DISTRIBUTED_TIMEOUT="60",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd + [sys.executable, str(script), str(tmp_path),
                                 os.path.dirname(os.path.abspath(__file__)), gpus],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    got = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    if gpus == "shared":
        for r in got:
            assert r["error"].startswith("RuntimeError: [distributed] Could not initialize the "
                                         "nccl backend: [nccl] Ranks 0 and 1 both run on the GPU "
                                         "at 0000:01:00.0 of host "), r
        return
    assert [(r["rank"], r["size"], r["backend"], r["local"]) for r in got] == \
        [(0, 2, "nccl", 0), (1, 2, "nccl", 1)]
    assert got[0]["id"] == got[1]["id"]      # rank 0's unique id reached rank 1


# ---------------------------------------------------------------------------------------
# on a GPU with NCCL
# ---------------------------------------------------------------------------------------
def _nccl_missing():
    try:
        return None if _nccl.available() else _nccl.unavailable_reason()
    except Exception as e:  # an unexpected failure is a reason to skip, shown
        return f"{type(e).__name__}: {e}"


needs_nccl = pytest.mark.skipif(_nccl_missing() is not None, reason=f"NCCL: {_nccl_missing()}")

DTYPES = {"float32": mx.float32, "float16": mx.float16, "bfloat16": mx.bfloat16,
          "int32": mx.int32}


@pytest.fixture(scope="module")
def group():
    """One NCCL communicator of one rank for the module's tests (made with no launcher
    variable set, whatever the environment)."""
    saved = {v: os.environ.pop(v) for v in _backend.LAUNCH_SIZE_VARS if v in os.environ}
    try:
        g = dist.Group._of(_nccl.init())
    finally:
        os.environ.update(saved)
    return g


@pytest.fixture
def spy(group, monkeypatch):
    """The names of the NCCL communications the group ran."""
    calls = []
    impl = group._impl
    run = type(impl)._run

    def counting(op, gpu, enqueue):
        calls.append(op)
        return run(impl, op, gpu, enqueue)

    monkeypatch.setattr(impl, "_run", counting)
    return calls


def node(prim, x, g):
    """The primitive's node itself (the op functions return x in a group of one)."""
    return make_node(prim, (x,), {"group": g}, x.shape, x.dtype)


PRIMS = {"all_sum": dist.ALL_SUM, "all_max": dist.ALL_MAX, "all_min": dist.ALL_MIN,
         "all_gather": dist.ALL_GATHER, "sum_scatter": dist.SUM_SCATTER}


def _data(name, shape=(6, 5), seed=0):
    rng = np.random.default_rng(seed)
    if name == "int32":
        return rng.integers(-1000, 1000, shape).astype(np.int32)
    npd = BF16 if name == "bfloat16" else np.dtype(name)
    return (rng.integers(-64, 64, shape) * 0.25).astype(npd)


@pytest.mark.gpu
@needs_nccl
def test_init_on_one_gpu(fresh):
    # backend="any" in a process alone is the singleton group: NCCL is not started
    assert dist.init()._impl.name == "singleton"
    g = dist.init(backend="nccl")
    assert (g.rank(), g.size()) == (0, 1)
    assert repr(g) == "Group(rank=0, size=1, backend='nccl')"
    assert dist.init(strict=True, backend="nccl") is g
    # once made, the NCCL group is the one backend="any" returns
    assert dist.init() is g
    assert dist.is_available("nccl") and dist.is_available()
    assert _nccl.version() >= (2, 0, 0)


@pytest.mark.gpu
@needs_nccl
@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("op", list(PRIMS))
def test_collectives_are_the_identity_on_one_gpu(group, spy, dtype, op):
    a = _data(dtype)
    x = mx.array(a, dtype=DTYPES[dtype])
    y = node(PRIMS[op], x, group)
    mx.eval(y)
    assert spy == [op]
    assert y.dtype == DTYPES[dtype] and y.shape == a.shape
    np.testing.assert_array_equal(np.asarray(y), a)
    # the public op: the identity without communicating, as in MLX
    f = getattr(dist, op)
    assert f(x, group=group) is x


@pytest.mark.gpu
@needs_nccl
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_under_grad(group, spy, dtype):
    a = _data(dtype, (8,))
    x = mx.array(a, dtype=DTYPES[dtype])

    def loss(x):
        s = node(dist.ALL_SUM, x * x, group)
        m = node(dist.ALL_MAX, x, group) * 3
        gth = node(dist.ALL_GATHER, x, group)
        sc = node(dist.SUM_SCATTER, x, group) * 2
        return (s + m + gth * gth + sc).sum()

    # value_and_grad: grad alone skips the forward nodes its rules do not read
    value, g = mx.value_and_grad(loss)(x)
    mx.eval(value, g)
    assert set(spy) == {"all_sum", "all_max", "all_gather", "sum_scatter"}
    f = a.astype(np.float32)
    np.testing.assert_allclose(value.item(), (f * f + 3 * f + f * f + 2 * f).sum(), rtol=1e-2)
    expected = (4 * a.astype(np.float32) + 5).astype(a.dtype)
    np.testing.assert_allclose(np.asarray(g).astype(np.float32),
                               expected.astype(np.float32), rtol=1e-2)


@pytest.mark.gpu
@needs_nccl
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_under_compile(group, spy, dtype):
    a = _data(dtype, (4, 8))
    x = mx.array(a, dtype=DTYPES[dtype])

    @mx.compile
    def f(x):
        return (node(dist.ALL_SUM, x, group) + node(dist.ALL_MIN, x, group)
                + node(dist.ALL_GATHER, x, group))

    for _ in range(2):
        y = f(x)
        mx.eval(y)
        np.testing.assert_array_equal(np.asarray(y), (a + a + a).astype(a.dtype))
    assert spy.count("all_sum") >= 2


@pytest.mark.gpu
@needs_nccl
def test_grad_under_compile(group, spy):
    a = _data("float32", (16,))
    x = mx.array(a)
    g = mx.compile(mx.grad(lambda x: (node(dist.ALL_SUM, x, group) ** 2).sum()))(x)
    np.testing.assert_allclose(np.asarray(g), 2 * a, rtol=1e-6)
    assert "all_sum" in spy


@pytest.mark.gpu
@needs_nccl
def test_a_256_mib_all_sum(group, spy):
    n = 64 * 2 ** 20
    # values that stay exact under +1 in float32
    x = (mx.arange(n, dtype=mx.int32) % 4096).astype(mx.float32) * 0.5
    y = node(dist.ALL_SUM, x, group)
    diff = mx.max(mx.abs(y - x))
    assert diff.item() == 0.0
    assert y[n - 1].item() == ((n - 1) % 4096) * 0.5
    # a dying input: reduced in its own buffer
    z = node(dist.ALL_SUM, x + 1, group)
    assert mx.max(mx.abs(z - x - 1)).item() == 0.0
    assert spy == ["all_sum", "all_sum"]


@pytest.mark.gpu
@needs_nccl
def test_an_unsupported_dtype_raises(group):
    x = mx.array(np.array([1 + 2j, 3 - 1j], np.complex64))
    with pytest.raises(ValueError, match=r"\[all_max\] The NCCL backend cannot reduce arrays of "
                                         r"dtype complex64 with max \(complex numbers have no "
                                         r"order\)"):
        mx.eval(node(dist.ALL_MAX, x, group))
    with pytest.raises(ValueError, match=r"\[all_min\] The NCCL backend cannot reduce arrays of "
                                         "dtype complex64"):
        group._impl.all_reduce(np.zeros(3, np.complex64), "min")


@pytest.mark.gpu
@needs_nccl
@pytest.mark.parametrize("dtype", [np.bool_, np.int16, np.uint16, np.complex64, np.int8,
                                   np.uint64, np.float64])
def test_converted_and_other_dtypes(group, spy, dtype):
    a = (np.arange(10) % 4).astype(dtype)
    for op in ("sum", "max", "min"):
        if np.dtype(dtype).kind == "c" and op != "sum":
            continue
        out = group._impl.all_reduce(a, op)
        assert out.dtype == a.dtype
        np.testing.assert_array_equal(out, a)
    np.testing.assert_array_equal(group._impl.all_gather(a), a)
    np.testing.assert_array_equal(group._impl.sum_scatter(a), a)


@pytest.mark.gpu
@needs_nccl
def test_backend_methods_on_host_memory_and_in_place(group, spy):
    impl = group._impl
    # memory that is not the GPU shim's: staged in, results in GPU memory
    a = np.frombuffer(bytearray(np.arange(6, dtype=np.float32).tobytes()), np.float32)
    np.testing.assert_array_equal(impl.all_reduce(a, "sum"), a)
    # a donated buffer receives the result
    from mx.core._memory import using_mx_allocator
    with using_mx_allocator():
        b = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert impl.all_reduce(b, "max", out=b) is b
    np.testing.assert_array_equal(b, np.arange(6).reshape(2, 3))
    # non-contiguous, 0-d and empty arrays
    c = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(impl.all_reduce(c, "min"), c)
    assert impl.all_reduce(np.float32(2.5).reshape(()), "sum").shape == ()
    assert impl.all_gather(np.zeros((0, 3), np.float32)).shape == (0, 3)
    assert impl.all_reduce(np.zeros((0,), np.float32), "sum").shape == (0,)


@pytest.mark.gpu
@needs_nccl
def test_split_and_async_eval(group, spy):
    sub = group.split(3)
    assert (sub.rank(), sub.size()) == (0, 1) and sub._impl.name == "nccl"
    x = mx.array(np.arange(5, dtype=np.float32))
    y = node(dist.ALL_SUM, x, sub)
    mx.async_eval(y)
    np.testing.assert_array_equal(np.asarray(y), np.arange(5))


@pytest.mark.gpu
@needs_nccl
def test_a_failed_group_refuses_further_work(group, monkeypatch):
    monkeypatch.setattr(group._impl.state, "failed", "an earlier timeout")
    with pytest.raises(RuntimeError, match=r"\[all_sum\] The distributed group is unusable: an "
                                           r"earlier communication did not complete \(an "
                                           r"earlier timeout\)"):
        group._impl.all_reduce(np.ones(3, np.float32), "sum")


_TIMEOUT_SCRIPT = textwrap.dedent("""
    import numpy as np
    import mx.core as mx
    from mx.core import distributed as dist
    from mx.core._array import make_node
    from mx.core.distributed import _nccl
    try:
        g = dist.init(strict=True, backend="nccl")
        x = mx.zeros((256 * 2 ** 20,))
        mx.eval(x)
        for _ in range(50):
            mx.eval(make_node(dist.ALL_SUM, (x,), {"group": g}, x.shape, x.dtype))
        print("no timeout")
    except TimeoutError as e:
        print("timeout:", e)
    except RuntimeError as e:   # init(strict=True) wraps the TimeoutError of its own wait
        print("timeout:" if "waited" in str(e) else "error:", e)
    try:
        _nccl._STATE.lib and g._impl.all_reduce(np.ones(2, np.float32), "sum")
        print("still usable")
    except NameError:
        print("unusable: no group")
    except RuntimeError as e:
        print("unusable:", e)
""")


@pytest.mark.gpu
@needs_nccl
def test_a_deadline_aborts_instead_of_hanging():
    """With a deadline far below any GPU work, the wait gives up, the communicators are
    aborted and later communications raise; the process still exits at once."""
    env = dict(os.environ, MX_DISTRIBUTED_TIMEOUT="0.000001",
               PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    for var in _backend.LAUNCH_SIZE_VARS:
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", _TIMEOUT_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("timeout:") and "waited 1e-06 s" in lines[0], proc.stdout
    assert lines[1].startswith("unusable:"), proc.stdout
