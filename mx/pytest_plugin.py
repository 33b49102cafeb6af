"""pytest plugin: the ``mx_benchmark`` fixture, pytest-benchmark's ``benchmark`` for lazy arrays.

mx builds graphs lazily, so timing ``benchmark(lambda: a + b)`` measures only how long it
takes to *describe* the addition. ``mx_benchmark(fn, *args, **kwargs)`` times ``fn`` and,
inside the same timed call, evaluates every mx array in what ``fn`` returned (``mx.eval``)
and waits for outstanding asynchronous work (``mx.synchronize``)::

    def test_add(mx_benchmark):
        a = mx.ones((1024, 1024))
        out = mx_benchmark(lambda: a + a)      # the addition itself is timed
        assert out.item(0, 0) == 2.0           # ... and `out` is already evaluated

``mx_benchmark.pedantic(target, args=..., ...)`` does the same for pytest-benchmark's
pedantic mode. Every other attribute (``group``, ``extra_info``, ``stats``, ``name``...)
is the wrapped ``benchmark`` fixture's.

The plugin is registered through the ``pytest11`` entry point. It imports mx.core only when
the fixture is used, so merely having mx installed never slows down or breaks pytest runs.
Without pytest-benchmark (not installed, or disabled with ``-p no:benchmark``) tests
using the fixture are skipped with a message saying so.
"""
from __future__ import annotations

import functools

import pytest

MISSING_MESSAGE = ("mx_benchmark needs the pytest-benchmark plugin, which is not installed or "
                   "is disabled (pip install pytest-benchmark)")


def evaluate(tree):
    """Evaluate every mx array in `tree` (arrays, lists, tuples, dicts) and wait for all
    queued asynchronous work; returns `tree` unchanged."""
    import mx.core as mx
    # Looked up on the module at each call (not bound once) so a wrapped or patched
    # mx.eval is the one that runs.
    mx.eval(tree)
    mx.synchronize()
    return tree


def evaluating(fn):
    """`fn` followed by `evaluate` of its result: the function a benchmark should time."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        return evaluate(fn(*args, **kwargs))
    return run


class MxBenchmark:
    """pytest-benchmark's fixture, with every timed call evaluating its lazy result."""

    def __init__(self, benchmark):
        object.__setattr__(self, "_benchmark", benchmark)

    def __call__(self, fn, *args, **kwargs):
        return self._benchmark(evaluating(fn), *args, **kwargs)

    def pedantic(self, target, args=(), kwargs=None, setup=None, teardown=None, rounds=1,
                 warmup_rounds=0, iterations=1):
        return self._benchmark.pedantic(evaluating(target), args=args, kwargs=kwargs,
                                        setup=setup, teardown=teardown, rounds=rounds,
                                        warmup_rounds=warmup_rounds, iterations=iterations)

    # `group`, `extra_info`, `stats`... live on the wrapped fixture, read and written.
    def __getattr__(self, name):
        return getattr(self._benchmark, name)

    def __setattr__(self, name, value):
        setattr(self._benchmark, name, value)

    def __repr__(self):
        return f"MxBenchmark({self._benchmark!r})"


class _WithBenchmark:
    """Registered when pytest-benchmark is active. The fixture requests `benchmark` by
    name, so pytest-benchmark sees these tests as benchmarks (--benchmark-only/-skip)."""

    @pytest.fixture
    def mx_benchmark(self, benchmark):
        """pytest-benchmark's `benchmark`, evaluating mx results inside the timing."""
        return MxBenchmark(benchmark)


class _WithoutBenchmark:
    """Registered when pytest-benchmark is missing: the fixture exists and skips."""

    @pytest.fixture
    def mx_benchmark(self):
        """Skips: pytest-benchmark is not available."""
        pytest.skip(MISSING_MESSAGE)


def pytest_configure(config):
    # Decided here rather than at import: `-p no:benchmark` is only known once the
    # command line has been read.
    pm = config.pluginmanager
    active = pm.hasplugin("benchmark") or pm.hasplugin("pytest_benchmark.plugin")
    pm.register(_WithBenchmark() if active else _WithoutBenchmark(), "mx_benchmark-fixtures")
