"""mx against NumPy, interleaved: a cross-check of the pytest-benchmark suites' ratios that
holds up on a busy machine.

pytest-benchmark times one case after another, so when other processes come and go the
NumPy and mx cases of a workload can see different machines. Here every round times each
variant once, back to back, so load changes hit all of them alike. A third variant runs
NumPy on the buffers mx allocated (`np.asarray` of the mx inputs): it separates what mx's
buffer allocator costs (memory layout, pages) from what mx itself adds (graph building,
scheduling, evaluation).

    python bench/interleaved.py [--rounds 400]

Prints min and median per variant and the median ratios to NumPy.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import mx.core as mx

N = 4 * 1024 * 1024
SHAPE = (2048, 2048)


def _cases():
    rng = np.random.default_rng(0)
    v, w = (rng.standard_normal(N).astype(np.float32) for _ in range(2))
    x = rng.standard_normal(SHAPE).astype(np.float32)
    mv, mw, mxx = mx.array(v), mx.array(w), mx.array(x)
    bv, bw, bx = np.asarray(mv), np.asarray(mw), np.asarray(mxx)  # mx's buffers
    ev = mx.eval
    return {
        "add 4M": (lambda: v + w, lambda: bv + bw, lambda: ev(mv + mw)),
        "multiply 4M": (lambda: v * w, lambda: bv * bw, lambda: ev(mv * mw)),
        "exp 4M": (lambda: np.exp(v), lambda: np.exp(bv), lambda: ev(mx.exp(mv))),
        "sum all": (lambda: x.sum(), lambda: bx.sum(), lambda: ev(mx.sum(mxx))),
        "sum axis 0": (lambda: x.sum(0), lambda: bx.sum(0), lambda: ev(mx.sum(mxx, axis=0))),
        "sum axis 1": (lambda: x.sum(1), lambda: bx.sum(1), lambda: ev(mx.sum(mxx, axis=1))),
        "mean all": (lambda: x.mean(), lambda: bx.mean(), lambda: ev(mx.mean(mxx))),
        "max all": (lambda: x.max(), lambda: bx.max(), lambda: ev(mx.max(mxx))),
        "argmax all": (lambda: x.argmax(), lambda: bx.argmax(), lambda: ev(mx.argmax(mxx))),
    }


def _time_interleaved(fns, rounds):
    times = [[] for _ in fns]
    clock = time.perf_counter
    for _ in range(rounds):
        for fn, ts in zip(fns, times):
            start = clock()
            fn()
            ts.append(clock() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=400)
    args = parser.parse_args(argv)
    print("| workload | NumPy min / median | NumPy on mx buffers | mx | "
          "mx buffers ÷ NumPy | mx ÷ NumPy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fns in _cases().items():
        for fn in fns:  # warm-up: caches, the allocator's block cache
            fn()
        times = _time_interleaved(fns, args.rounds)
        mins = [min(t) for t in times]
        meds = [statistics.median(t) for t in times]
        cells = " | ".join(f"{a * 1e6:,.0f} / {m * 1e6:,.0f} µs" for a, m in zip(mins, meds))
        print(f"| {name} | {cells} | {meds[1] / meds[0]:.2f}× | {meds[2] / meds[0]:.2f}× |")


if __name__ == "__main__":
    main()
