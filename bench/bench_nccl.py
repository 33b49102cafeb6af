"""all_sum through NCCL on one GPU: mx's NCCL backend next to torch.distributed's NCCL
process group, both a communicator of one rank in this process.

In a group of one process mx.distributed.all_sum returns its input without communicating
(as MLX's does), so the "mx" row evaluates the all_sum primitive's node itself: the NCCL
backend's out-of-place ncclAllReduce into a new result array, on mx's GPU stream, waited
for. "mx-in-place" calls the backend's all-reduce into its input's own buffer (what the
kernel does when the scheduler donates a dying input). The "torch" row is
torch.distributed.all_reduce (in place, its only form) of a CUDA tensor followed by
torch.cuda.synchronize(); its process group is made with a FileStore in a temporary
folder (world size 1). With one rank NCCL's all-reduce is a device copy (out of place) or
nothing (in place), so the rows measure what each library adds around NCCL: at 1 GiB the
copy and the waits, at 4 KiB the per-call overhead.

    python -m pytest bench/bench_nccl.py --benchmark-only
    python bench/bench_nccl.py                 # the same measurement as a plain table
    MX_BENCH_NCCL_MIB=256 ...                  # a smaller large array

Skipped without a GPU and NCCL (torch's row also without torch.distributed's NCCL).
"""
from __future__ import annotations

import os
import tempfile
import time

MIB = int(os.environ.get("MX_BENCH_NCCL_MIB", "1024"))
ROUNDS = int(os.environ.get("MX_BENCH_NCCL_ROUNDS", "10"))
SIZES = {f"{MIB} MiB": MIB * 2 ** 20, "4 KiB": 4096}


def missing_mx():
    try:
        from mx.core.distributed import _nccl
    except ImportError as e:
        return f"mx is not importable ({e})"
    if not _nccl.available():
        return f"mx's NCCL backend is not available: {_nccl.unavailable_reason()}"
    return None


def missing_torch():
    try:
        import torch
        import torch.distributed as td
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "torch sees no GPU"
    if not td.is_available() or not td.is_nccl_available():
        return "torch.distributed has no NCCL"
    return None


class MxCase:
    """mx's all_sum primitive on a communicator of one rank."""

    def __init__(self):
        import mx.core as mx
        from mx.core import distributed as dist
        from mx.core._array import make_node
        from mx.core.distributed import _nccl
        self.mx, self.dist, self.make_node = mx, dist, make_node
        self.group = dist.Group._of(_nccl.init())
        self.inputs = {}

    def prepare(self, nbytes):
        mx = self.mx
        x = mx.full((nbytes // 4,), 1.0)
        mx.eval(x)
        self.inputs[nbytes] = x

    def run(self, nbytes):
        x = self.inputs[nbytes]
        y = self.make_node(self.dist.ALL_SUM, (x,), {"group": self.group}, x.shape, x.dtype)
        self.mx.eval(y)
        return y

    def check(self, result):
        return self.mx.all(result == 1.0).item()

    def close(self):
        self.inputs.clear()


class MxInPlaceCase(MxCase):
    """The NCCL backend's all-reduce into its input's own buffer: what the all_sum kernel
    does when the scheduler donates a dying input (called here without a graph)."""

    def prepare(self, nbytes):
        import numpy as np
        super().prepare(nbytes)
        self.buffers = getattr(self, "buffers", {})
        self.buffers[nbytes] = np.asarray(self.inputs[nbytes])   # the same memory

    def run(self, nbytes):
        data = self.buffers[nbytes]
        self.group._impl.all_reduce(data, "sum", out=data)
        return self.inputs[nbytes]


class TorchCase:
    """torch.distributed.all_reduce with the NCCL process group of one rank."""

    def __init__(self):
        import torch
        import torch.distributed as td
        self.torch, self.td = torch, td
        self.tmp = tempfile.TemporaryDirectory(prefix="mx-bench-nccl-")
        store = td.FileStore(os.path.join(self.tmp.name, "store"), 1)
        td.init_process_group("nccl", store=store, rank=0, world_size=1,
                              device_id=torch.device("cuda", 0))
        self.inputs = {}

    def prepare(self, nbytes):
        self.inputs[nbytes] = self.torch.ones(nbytes // 4, device="cuda")
        self.torch.cuda.synchronize()

    def run(self, nbytes):
        t = self.inputs[nbytes]
        self.td.all_reduce(t)
        self.torch.cuda.synchronize()
        return t

    def check(self, result):
        return bool((result == 1.0).all().item())

    def close(self):
        self.inputs.clear()
        self.td.destroy_process_group()
        self.tmp.cleanup()


CASES = {"mx": (missing_mx, MxCase), "mx-in-place": (missing_mx, MxInPlaceCase),
         "torch": (missing_torch, TorchCase)}


def _gib_per_s(nbytes, seconds):
    return nbytes / 2 ** 30 / seconds


try:
    import pytest
except ImportError:  # run directly without pytest installed
    pytest = None

if pytest is not None:
    _made = {}

    @pytest.fixture(scope="module")
    def cases():
        yield _made
        for case in _made.values():
            case.close()

    def _case(cases, lib, nbytes):
        if missing_mx():
            pytest.skip(missing_mx())      # no NCCL through mx: nothing to compare with
        missing, make = CASES[lib]
        if missing():
            pytest.skip(missing())
        if lib not in cases:
            cases[lib] = make()
        case = cases[lib]
        if nbytes not in case.inputs:
            case.prepare(nbytes)
        return case

    @pytest.mark.parametrize("size", list(SIZES))
    @pytest.mark.parametrize("lib", list(CASES))
    def test_nccl_all_sum_one_gpu(benchmark, cases, lib, size):
        nbytes = SIZES[size]
        case = _case(cases, lib, nbytes)
        benchmark.group = f"distributed: NCCL all_sum {size} float32, 1 GPU, 1 rank"
        benchmark.extra_info.update(backend=lib, ops=1, bytes=nbytes, processes=1)
        result = benchmark.pedantic(case.run, args=(nbytes,), rounds=ROUNDS, iterations=1,
                                    warmup_rounds=2)
        assert case.check(result)
        benchmark.extra_info["GiB/s (median)"] = round(
            _gib_per_s(nbytes, benchmark.stats.stats.median), 3)


def main():
    if missing_mx():
        print(f"skipped: {missing_mx()}")
        return
    made = {}
    for lib, (missing, make) in CASES.items():
        if missing():
            print(f"{lib}: skipped ({missing()})")
        else:
            made[lib] = make()
    try:
        from mx.core.distributed import _nccl
        lib = _nccl.load_library()
        print(f"mx: NCCL {'.'.join(map(str, lib.version))} from {lib.path}")
        if "torch" in made:
            print(f"torch {made['torch'].torch.__version__}: NCCL "
                  f"{'.'.join(map(str, made['torch'].torch.cuda.nccl.version()))}")
        print(f"all_sum through NCCL on one GPU (one rank), {ROUNDS} rounds, interleaved")
        print(f"{'':12s}{'size':>10s}{'median':>12s}{'min':>12s}{'GiB/s':>9s}{'mx / this':>11s}")
        for size, nbytes in SIZES.items():
            times = {lib: [] for lib in made}
            for case in made.values():
                case.prepare(nbytes)
                for _ in range(2):                     # warm-up
                    assert case.check(case.run(nbytes))
            for _ in range(ROUNDS):
                for lib, case in made.items():         # interleaved: the same conditions
                    start = time.perf_counter()
                    case.run(nbytes)
                    times[lib].append(time.perf_counter() - start)
            med = {lib: sorted(ts)[len(ts) // 2] for lib, ts in times.items()}
            for lib in made:
                print(f"{lib:12s}{size:>10s}{med[lib] * 1e3:10.3f}ms{min(times[lib]) * 1e3:10.3f}ms"
                      f"{_gib_per_s(nbytes, med[lib]):9.1f}{med['mx'] / med[lib]:10.2f}x")
            for case in made.values():
                case.inputs.clear()
    finally:
        for case in made.values():
            case.close()


if __name__ == "__main__":
    main()
