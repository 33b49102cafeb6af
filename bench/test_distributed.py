"""all_sum bandwidth between 2 CPU processes: mx.distributed.all_sum of a 1 GiB float32
array against mpi4py's own Allreduce on NumPy buffers (target: mx within 10% of it).

Both run in the same 2-process MPI job, started once (module fixture) with mpirun; rank 0
takes orders from this pytest process over a local socket, so pytest-benchmark times each
all-reduce from here (an order costs tens of microseconds, an all-reduce of 1 GiB hundreds
of milliseconds). In the "numpy" row the array library is NumPy and the reduction is
mpi4py's Comm.Allreduce into a preallocated buffer; "mpi4py-iallreduce" is the non-blocking
MPI_Iallreduce (+ Wait) that mx's MPI backend posts; the "mx" row evaluates
mx.distributed.all_sum, which returns a new array each time (as MLX's does).

    python -m pytest bench/test_distributed.py --benchmark-only
    python bench/test_distributed.py            # the same measurement as a plain table
    MX_BENCH_ALLSUM_MIB=256 ...                 # a smaller array where memory is short

Each process holds 4 arrays of that size (mx's input and output, NumPy's two buffers).
Skipped without mpirun or mpi4py.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time

MIB = int(os.environ.get("MX_BENCH_ALLSUM_MIB", "1024"))
ROUNDS = int(os.environ.get("MX_BENCH_ALLSUM_ROUNDS", "5"))
GROUP = f"distributed: all_sum {MIB} MiB float32, 2 processes (numpy = mpi4py Allreduce)"


# ---------------------------------------------------------------------------------------
# the MPI job (this file run by mpirun)
# ---------------------------------------------------------------------------------------
def worker(port):
    import numpy as np
    from mpi4py import MPI

    import mx.core as mx

    group = mx.distributed.init(strict=True)
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    n = MIB * 2 ** 20 // 4
    a = np.full(n, rank + 1, np.float32)
    b = np.zeros_like(a)
    x = mx.array(a)
    mx.eval(x)
    expected = float(sum(range(1, group.size() + 1)))
    conn = None
    if rank == 0:
        conn = socket.create_connection(("127.0.0.1", port))
        orders = conn.makefile("r")
    y = None
    while True:
        order = orders.readline().strip() if rank == 0 else None
        order = comm.bcast(order, root=0)
        if order == "mx":
            y = None           # the previous result's buffer goes back to mx's cache
            y = mx.distributed.all_sum(x)
            mx.eval(y)
            reply = "ok"
        elif order == "numpy":
            b[[0, -1]] = 0
            comm.Allreduce(a, b)
            reply = "ok"
        elif order == "mpi4py-iallreduce":
            b[[0, -1]] = 0
            comm.Iallreduce(a, b).Wait()
            reply = "ok"
        elif order.startswith("check "):
            ends = [y[0].item(), y[-1].item()] if order == "check mx" else [b[0], b[-1]]
            ok = ends == [expected, expected]
            reply = "ok" if comm.allreduce(ok, op=MPI.LAND) else "wrong"
        else:
            break
        if rank == 0:
            conn.sendall((reply + "\n").encode())
    if conn is not None:
        conn.close()


# ---------------------------------------------------------------------------------------
# the driver (pytest, or this file run directly)
# ---------------------------------------------------------------------------------------
def missing():
    if shutil.which("mpirun") is None:
        return "mpirun is not installed"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed"
    return None


class Job:
    """The running 2-process job and the socket that gives its rank 0 orders."""

    def __init__(self):
        from mx.launch import mpi_flavor
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(120)
        mpirun = shutil.which("mpirun")
        cmd = [mpirun, "-n", "2"]
        if mpi_flavor(mpirun) == "openmpi":
            cmd += ["--oversubscribe", "--allow-run-as-root"]
        cmd += [sys.executable, os.path.abspath(__file__), "--worker", str(server.getsockname()[1])]
        env = dict(os.environ, MX_DISTRIBUTED_TIMEOUT="600")
        self.proc = subprocess.Popen(cmd, env=env)
        try:
            self.conn, _ = server.accept()
        finally:
            server.close()
        self.conn.settimeout(600)
        self.replies = self.conn.makefile("r")

    def run(self, order):
        self.conn.sendall((order + "\n").encode())
        reply = self.replies.readline().strip()
        if reply != "ok":
            raise RuntimeError(f"the job answered {reply!r} to {order!r}")

    def close(self):
        try:
            self.conn.sendall(b"quit\n")
            self.conn.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _bandwidth(seconds):
    return MIB / 1024 / seconds


try:
    import pytest
except ImportError:  # run directly without pytest installed
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def job():
        if missing():
            pytest.skip(missing())
        j = Job()
        yield j
        j.close()

    @pytest.mark.parametrize("backend", ["numpy", "mpi4py-iallreduce", "mx"])
    def test_all_sum_bandwidth(benchmark, job, backend):
        benchmark.group = GROUP
        benchmark.extra_info.update(backend=backend, ops=1, bytes=MIB * 2 ** 20, processes=2)
        benchmark.pedantic(job.run, args=(backend,), rounds=ROUNDS, iterations=1,
                           warmup_rounds=1)
        job.run("check " + backend)
        median = benchmark.stats.stats.median
        benchmark.extra_info["GiB/s (median)"] = round(_bandwidth(median), 3)


def main():
    if missing():
        print(f"skipped: {missing()}")
        return
    j = Job()
    try:
        labels = {"numpy": "mpi4py Allreduce (NumPy)",
                  "mpi4py-iallreduce": "mpi4py Iallreduce+Wait",
                  "mx": "mx.distributed.all_sum"}
        times = {b: [] for b in labels}
        for b in times:
            j.run(b)                                   # warm-up
            j.run("check " + ("mx" if b == "mx" else "numpy"))
        for _ in range(ROUNDS):
            for b in times:                            # interleaved: the same conditions
                start = time.perf_counter()
                j.run(b)
                times[b].append(time.perf_counter() - start)
    finally:
        j.close()
    medians = {b: sorted(ts)[len(ts) // 2] for b, ts in times.items()}
    print(f"all_sum of {MIB} MiB float32 between 2 processes, {ROUNDS} rounds")
    print(f"{'':28s}{'median':>10s}{'min':>10s}{'GiB/s (median)':>16s}{'mx / this':>11s}")
    for b, label in labels.items():
        print(f"{label:28s}{medians[b] * 1e3:8.0f}ms{min(times[b]) * 1e3:8.0f}ms"
              f"{_bandwidth(medians[b]):16.2f}{medians['mx'] / medians[b]:10.2f}x")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(int(sys.argv[2]))
    else:
        main()
