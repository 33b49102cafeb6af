"""The mx_benchmark fixture (mx/pytest_plugin.py), exercised through pytester runs.

The inner test files patch mx.eval / mx.synchronize with recording wrappers and give
pytest-benchmark a recording timer, so the event log shows whether evaluation ran
between the two timer reads of a timed call, i.e. inside the measurement.
"""
import json

import pytest

import mx.core as mx
from mx import pytest_plugin

pytest_plugins = ["pytester"]

# Fast benchmark settings: these tests check behaviour, not speed.
QUICK = ("--benchmark-max-time=0.002", "--benchmark-min-rounds=2", "--benchmark-warmup=off",
         "-p", "no:cacheprovider")

# Shared by the inner test files: record timer reads, calls, evals and synchronizations.
RECORDER = '''
import pytest
import mx.core as mx

LOG = []

def timer():
    LOG.append("T")
    import time
    return time.perf_counter()

@pytest.fixture
def record(monkeypatch):
    LOG.clear()
    real_eval, real_sync = mx.eval, mx.synchronize
    def eval(*args):
        LOG.append(("eval", args))
        real_eval(*args)
    def synchronize(*args):
        LOG.append("sync")
        real_sync(*args)
    monkeypatch.setattr(mx, "eval", eval)
    monkeypatch.setattr(mx, "synchronize", synchronize)
    return LOG

def kinds(log):
    return [e if isinstance(e, str) else e[0] for e in log]
'''


@pytest.fixture
def recorder(pytester):
    pytester.makeconftest(RECORDER)
    return pytester


def test_fixture_returns_the_evaluated_result(recorder):
    recorder.makepyfile('''
        import numpy as np
        import mx.core as mx
        from conftest import kinds

        def test_it(mx_benchmark, record):
            a = mx.array(np.arange(4, dtype=np.float32))
            made = []
            def build():
                made.append(a * 2 + 1)
                return made[-1]
            out = mx_benchmark(build)
            assert out is made[-1]
            # every built array was handed to mx.eval, then synchronized
            evals = [e[1] for e in record if e[0] == "eval"]
            assert len(evals) == len(made) >= 2
            assert all(args[0] is m for args, m in zip(evals, made))
            assert kinds(record).count("sync") == len(made)
            np.testing.assert_array_equal(np.array(out), [1, 3, 5, 7])
    ''')
    result = recorder.runpytest(*QUICK)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*benchmark: 1 tests*", "*test_it*"])


def test_pedantic_evaluates_between_the_timer_reads(recorder):
    recorder.makepyfile('''
        import pytest
        import mx.core as mx
        from conftest import timer, kinds

        @pytest.mark.benchmark(timer=timer)
        def test_it(mx_benchmark, record):
            a = mx.array([1.0, 2.0])
            def build(x, scale):
                record.append("call")
                return {"y": x * scale, "n": 3}
            out = mx_benchmark.pedantic(build, args=(a,), kwargs={"scale": 2.0}, rounds=3)
            assert kinds(record) == ["T", "call", "eval", "sync", "T"] * 3
            assert out["n"] == 3 and out["y"].tolist() == [2.0, 4.0]
            assert mx_benchmark.stats.stats.rounds == 3
    ''')
    recorder.runpytest(*QUICK).assert_outcomes(passed=1)


def test_plain_mode_evaluates_inside_each_timed_call(recorder):
    recorder.makepyfile('''
        import pytest
        import mx.core as mx
        from conftest import timer, kinds

        @pytest.mark.benchmark(timer=timer)
        def test_it(mx_benchmark, record):
            a = mx.array([1.0, 2.0])
            def build():
                record.append("call")
                return [a + 1, (a - 1,)]
            mx_benchmark(build)
            log = kinds(record)
            calls = [i for i, e in enumerate(log) if e == "call"]
            assert len(calls) >= 3
            # each call is evaluated and synchronized before anything else happens ...
            assert all(log[i + 1:i + 3] == ["eval", "sync"] for i in calls)
            # ... and a timer read closes a window holding exactly one evaluated call
            assert "T call eval sync T" in " ".join(log)
    ''')
    recorder.runpytest(*QUICK).assert_outcomes(passed=1)


def test_slow_evaluation_shows_in_the_measured_time(recorder):
    # Building the graph is instant; only evaluation is slow. If evaluation ran outside
    # the timing, the minimum would be microseconds.
    recorder.makepyfile('''
        import time
        import mx.core as mx

        def test_it(mx_benchmark, monkeypatch):
            real = mx.eval
            def slow_eval(*args):
                time.sleep(0.02)
                real(*args)
            monkeypatch.setattr(mx, "eval", slow_eval)
            a = mx.array([1.0])
            mx_benchmark.pedantic(lambda: a + 1, rounds=2)
            assert mx_benchmark.stats.stats.min >= 0.02
    ''')
    recorder.runpytest(*QUICK).assert_outcomes(passed=1)


def test_group_and_extra_info_reach_the_report(pytester):
    pytester.makepyfile('''
        import mx.core as mx

        def test_it(mx_benchmark):
            mx_benchmark.group = "adds"
            mx_benchmark.extra_info["ops"] = 1
            a = mx.array([1.0])
            mx_benchmark(lambda: a + a)
    ''')
    result = pytester.runpytest(*QUICK, "--benchmark-json=out.json")
    result.assert_outcomes(passed=1)
    (bench,) = json.loads((pytester.path / "out.json").read_text())["benchmarks"]
    assert bench["group"] == "adds"
    assert bench["extra_info"] == {"ops": 1}
    assert bench["stats"]["rounds"] >= 2


def test_benchmark_only_and_skip_see_mx_benchmark_tests(pytester):
    pytester.makepyfile('''
        import mx.core as mx

        def test_bench(mx_benchmark):
            mx_benchmark(lambda: mx.array([1.0]) + 1)

        def test_plain():
            pass
    ''')
    only = pytester.runpytest(*QUICK, "--benchmark-only", "-rs")
    only.assert_outcomes(passed=1, skipped=1)
    only.stdout.fnmatch_lines(["*Skipping non-benchmark*"])
    skip = pytester.runpytest(*QUICK, "--benchmark-skip", "-rs")
    skip.assert_outcomes(passed=1, skipped=1)
    skip.stdout.fnmatch_lines(["*Skipping benchmark*"])


def test_disabled_benchmarks_still_evaluate_once(recorder):
    recorder.makepyfile('''
        import mx.core as mx
        from conftest import kinds

        def test_it(mx_benchmark, record):
            out = mx_benchmark(lambda: mx.array([2.0]) * 3)
            assert kinds(record) == ["eval", "sync"]
            assert out.item() == 6.0
    ''')
    recorder.runpytest("--benchmark-disable").assert_outcomes(passed=1)


def test_without_pytest_benchmark_the_fixture_skips(pytester):
    pytester.makepyfile('''
        def test_it(mx_benchmark):
            raise AssertionError("must not run")

        def test_plain():
            pass
    ''')
    result = pytester.runpytest("-p", "no:benchmark", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*mx_benchmark needs the pytest-benchmark plugin*"])


def test_plugin_is_loaded_from_the_entry_point_without_importing_mx_core(pytester):
    # A fresh interpreter: the entry point must provide the fixture, and merely loading
    # the plugin must not import the array library.
    pytester.makepyfile('''
        import sys

        def test_it(request):
            assert "mx.core" not in sys.modules
            assert request.config.pluginmanager.has_plugin("mx_benchmark")
    ''')
    result = pytester.runpytest_subprocess("--fixtures")
    result.stdout.fnmatch_lines(["mx_benchmark*", "*evaluating mx results inside the timing*"])
    pytester.runpytest_subprocess("-p", "no:benchmark").assert_outcomes(passed=1)


def test_evaluate_handles_trees_and_non_arrays():
    a = mx.array([1.0, 2.0])
    tree = {"x": [a + 1, (a * 2, "label")], "n": None}
    assert pytest_plugin.evaluate(tree) is tree
    assert tree["x"][0].tolist() == [2.0, 3.0]
    assert pytest_plugin.evaluate(7) == 7


def test_evaluating_keeps_the_wrapped_functions_name_and_arguments():
    def scaled(x, *, by):
        return x * by
    wrapped = pytest_plugin.evaluating(scaled)
    assert wrapped.__name__ == "scaled" and wrapped.__wrapped__ is scaled
    assert wrapped(mx.array([1.0, 2.0]), by=3.0).tolist() == [3.0, 6.0]
