"""Shared harness of the benchmark suites: one workload, several array libraries.

Every benchmark takes the parametrized `backend` fixture (mx, NumPy, PyTorch, MLX; a
library that is not importable skips its cases) and times its workload with `timed`,
which evaluates lazy results (mx, MLX) inside the timed call and puts all backends of a
workload into one pytest-benchmark group, so they print side by side.

Run (see docs/benchmarks.md):  python -m pytest bench/ --benchmark-only
The project's testpaths is tests/, so a plain `pytest` never collects these files.
"""
from __future__ import annotations

import os
import platform

import numpy as np
import pytest

BACKENDS = ["mx", "numpy", "torch", "mlx"]

# Run order. Thread pools (OpenBLAS, PyTorch's OpenMP, MLX's) keep spinning for a while
# after work, so on small machines one library's idle threads can steal the next one's
# cores: PyTorch and MLX run after all NumPy and mx cases. NumPy and mx run each workload
# back to back, so the pair the targets compare sees the same machine conditions.
TIERS = {"numpy": (0, 0), "mx": (0, 1), "mlx": (1, 0), "torch": (2, 0)}


HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_collection_modifyitems(items):
    position = {}

    def key(item):
        params = dict(getattr(getattr(item, "callspec", None), "params", {}))
        if not str(item.path).startswith(HERE + os.sep):  # another directory's: keep its place
            return -1, position.setdefault(("other", item.nodeid), len(position)), 0
        tier, rank = TIERS.get(params.pop("backend", None), (3, 0))
        workload = (item.path, item.originalname, repr(sorted(params.items())))
        return tier, position.setdefault(workload, len(position)), rank

    items.sort(key=key)


def _version(module):
    try:
        return __import__(module, fromlist=["_"]).__version__
    except ImportError:
        return None


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib():
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        return round(kib / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        return None


def _os_name():
    try:
        return platform.freedesktop_os_release()["PRETTY_NAME"] + " / " + platform.release()
    except (OSError, AttributeError, KeyError):
        return platform.platform()


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what docs/benchmarks.md reports next to the numbers (in --benchmark-json)."""
    machine_info["mx_bench"] = {
        "cpu_model": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "os": _os_name(),
        "python": platform.python_version(),
        "versions": {name: _version(mod) for name, mod in
                     [("mx", "mx"), ("numpy", "numpy"), ("torch", "torch"), ("mlx", "mlx.core")]},
    }


class Backend:
    """One array library behind a small common interface.

    `to(np_array)` converts NumPy data to the library's array (evaluated), `sync(tree)`
    forces lazy results and waits for them, and the reduction/product methods paper over
    the few spelling differences (PyTorch's `dim=`, `amax`)."""

    lazy = False

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def to(self, data):
        return self.xp.array(data)

    def sync(self, tree):
        return tree

    def has(self, op):
        return hasattr(self.xp, op)

    def require(self, *ops):
        """Skip the benchmark when the library lacks one of `ops` (mx grows op by op)."""
        missing = [op for op in ops if not self.has(op)]
        if missing:
            pytest.skip(f"{self.name} has no {', '.join(missing)}")

    def sum(self, x, axis=None):
        return self.xp.sum(x, axis=axis)

    def mean(self, x):
        return self.xp.mean(x)

    def max(self, x):
        return self.xp.max(x)

    def argmax(self, x):
        return self.xp.argmax(x)

    def matmul(self, a, b):
        return self.xp.matmul(a, b)


class MxBackend(Backend):
    lazy = True

    def sync(self, tree):
        # The same evaluation the mx_benchmark fixture performs: mx.eval + mx.synchronize.
        from mx.pytest_plugin import evaluate
        return evaluate(tree)


class MlxBackend(Backend):
    lazy = True

    def sync(self, tree):
        self.xp.eval(tree)
        self.xp.synchronize()
        return tree


class NumpyBackend(Backend):
    def to(self, data):
        return np.array(data)


class TorchBackend(Backend):
    def to(self, data):
        return self.xp.from_numpy(np.array(data))

    def has(self, op):
        return True

    def sum(self, x, axis=None):
        return self.xp.sum(x) if axis is None else self.xp.sum(x, dim=axis)

    def max(self, x):
        return self.xp.amax(x)


def _load(name):
    if name == "mx":
        return MxBackend(name, pytest.importorskip("mx.core"))
    if name == "numpy":
        return NumpyBackend(name, np)
    if name == "torch":
        torch = pytest.importorskip("torch")
        # PyTorch would otherwise pick its own count; give every library the whole machine.
        torch.set_num_threads(os.cpu_count() or 1)
        return TorchBackend(name, torch)
    if name == "mlx":
        mlx = pytest.importorskip("mlx.core")
        mlx.set_default_device(mlx.cpu)
        return MlxBackend(name, mlx)
    raise ValueError(name)


@pytest.fixture(params=BACKENDS)
def backend(request):
    return _load(request.param)


_DATA = {}


def _make_data(shape, seed=0, dtype=np.float32):
    key = (tuple(shape), seed, np.dtype(dtype).str)
    if key not in _DATA:
        _DATA[key] = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return _DATA[key]


@pytest.fixture
def data():
    """data(shape, seed): deterministic standard-normal float32 NumPy data, made once per
    shape and seed and shared by all backends (each converts it with backend.to)."""
    return _make_data


class Timed:
    """`timed(group, fn, *args, ops=1, unit="op", target=None)`: benchmark fn(*args) with
    its result evaluated inside the timing, in group `group`, and return fn's result.

    `ops` (how many `unit`s one call does) lets the report give per-op/per-step times. `target` is the goal
    the report checks mx's row against: {"max_us_per_op": 2.0} or
    {"vs": "numpy", "max_ratio": 1.15} (mx's median over that library's median)."""

    def __init__(self, benchmark, backend):
        self.benchmark = benchmark
        self.backend = backend

    def __call__(self, group, fn, *args, ops=1, unit="op", target=None):
        sync = self.backend.sync
        self.benchmark.group = group
        self.benchmark.extra_info.update(backend=self.backend.name, ops=ops, unit=unit)
        if target is not None:
            self.benchmark.extra_info["target"] = dict(target)

        def run(*a):
            return sync(fn(*a))

        return self.benchmark(run, *args)


@pytest.fixture
def timed(backend, benchmark):
    # backend first: a library that is missing skips before pytest-benchmark starts
    # (which would otherwise warn that its fixture went unused)
    return Timed(benchmark, backend)
