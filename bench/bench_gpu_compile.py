"""python bench/bench_gpu_compile.py: compiled tanh-GELU over 2^26 float32 on the GPU, mx
(mx.compile: one fused kernel) beside PyTorch (torch.compile, and eager for reference), in
one process on one card. Skips (exit 0, saying why) without a GPU for mx or without torch
with CUDA.

Every timing is wall-clock over a loop that ends in a synchronization, after warm-up calls
(kernels compiled, managed pages moved to the GPU); the best of `repeats` loops is
reported. Bandwidth counts one read and one write of the array per call.

    python bench/bench_gpu_compile.py [--n 67108864] [--iters 20] [--repeats 3] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

C = math.sqrt(2.0 / math.pi)


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _rates(prefix, t, n, iters, out):
    out[f"{prefix}_ms"] = t / iters * 1e3
    out[f"{prefix}_TBps"] = 2 * 4 * n * iters / t / 1e12


def bench_mx(n, iters, repeats):
    import mx.core as mx
    from mx.backend import gpu as G
    if not G.is_available():
        return None, f"no GPU for mx ({G.unavailable_reason()})"

    from mx.core.primitives import DYNAMIC_GPU_HANDLERS
    if "compiled" not in DYNAMIC_GPU_HANDLERS:     # a backend that does not install them
        from mx.backend.gpu import program
        program.install()

    def gelu(x):
        return 0.5 * x * (1 + mx.tanh(C * (x + 0.044715 * x ** 3)))

    out = {}
    x = mx.random.normal((n,))
    mx.eval(x)
    cf = mx.compile(gelu)
    for _ in range(3):
        mx.eval(cf(x))
    G.reset_counts()
    mx.eval(cf(x))
    b = G.active_backend()
    out["mx_fused_kernel_runs"] = sum(v for k, v in b.gpu_runs.items() if k.startswith("fused("))
    out["mx_compiled_runs_on_gpu"] = sum(v for k, v in b.gpu_runs.items() if k.startswith("compiled("))
    _rates("mx_compile_queued", _best(lambda: mx.eval([cf(x) for _ in range(iters)]), repeats),
           n, iters, out)

    def each():
        for _ in range(iters):
            mx.eval(cf(x))
    _rates("mx_compile_eval_each", _best(each, repeats), n, iters, out)

    # GPU time between events on mx's stream around the queued calls (the kernels alone,
    # without the host's issue and wait), as for torch below
    s = b.stream_for(mx.default_stream(mx.gpu).index)
    e0, e1 = b.shim.new_event(timing=True), b.shim.new_event(timing=True)
    ms = b.ffi.new("float *")

    def timed():
        b.lib.mx_event_record(e0, s)
        mx.eval([cf(x) for _ in range(iters)])
        b.lib.mx_event_record(e1, s)
        b.lib.mx_event_synchronize(e1)
        b.lib.mx_event_elapsed_ms(e0, e1, ms)
        return ms[0] / 1e3
    _rates("mx_compile_gpu_time", min(timed() for _ in range(repeats)), n, iters, out)
    for _ in range(2):
        mx.eval(gelu(x))
    _rates("mx_eager_queued", _best(lambda: mx.eval([gelu(x) for _ in range(iters)]), repeats),
           n, iters, out)
    # accuracy against float64 on the host
    x_np = np.asarray(x).astype(np.float64)
    want = 0.5 * x_np * (1 + np.tanh(C * (x_np + 0.044715 * x_np ** 3)))
    got = np.asarray(cf(x)).astype(np.float64)
    out["mx_compile_max_abs_err"] = float(np.max(np.abs(got - want)))
    return out, None


def bench_torch(n, iters, repeats):
    try:
        import torch
    except ImportError as e:
        return None, f"no torch ({e})"
    if not torch.cuda.is_available():
        return None, "torch has no CUDA device"
    out = {}
    sync = torch.cuda.synchronize
    x = torch.randn(n, device="cuda")

    def gelu(x):
        return 0.5 * x * (1 + torch.tanh(C * (x + 0.044715 * x ** 3)))

    def loop(fn):
        def run():
            for _ in range(iters):
                fn(x)
            sync()
        return run

    try:
        cf = torch.compile(gelu)
        for _ in range(3):
            cf(x)
        sync()
        _rates("torch_compile", _best(loop(cf), repeats), n, iters, out)

        def timed():
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            for _ in range(iters):
                cf(x)
            e1.record()
            e1.synchronize()
            return e0.elapsed_time(e1) / 1e3
        _rates("torch_compile_gpu_time", min(timed() for _ in range(repeats)), n, iters, out)
    except Exception as e:      # no triton / no compiler on this machine
        out["torch_compile_error"] = f"{type(e).__name__}: {e}"[:300]
    gelu(x)
    sync()
    _rates("torch_eager", _best(loop(gelu), repeats), n, iters, out)
    return out, None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1 << 26)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = {"n": a.n, "iters": a.iters}
    m, why = bench_mx(a.n, a.iters, a.repeats)
    if m is None:
        print(f"skipped: {why}")
        return 0
    res.update(m)
    t, why = bench_torch(a.n, a.iters, a.repeats)
    if t is None:
        res["torch_skipped"] = why
    else:
        res.update(t)
    try:
        import mx.core as mx
        res["device"] = mx.device_info(mx.gpu).get("device_name")
    except Exception:
        pass
    if a.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"tanh-GELU over {a.n} float32 on {res.get('device', 'the GPU')} "
          f"(best of {a.repeats} loops of {a.iters} calls)")
    print("| measurement | ms a call | TB/s |")
    print("| --- | --- | --- |")
    for key, label in [("mx_compile_queued", "mx.compile, calls queued, one eval"),
                       ("mx_compile_eval_each", "mx.compile, eval after each call"),
                       ("mx_compile_gpu_time", "mx.compile, GPU time between events"),
                       ("mx_eager_queued", "mx uncompiled (one kernel per op), queued"),
                       ("torch_compile", "torch.compile"),
                       ("torch_compile_gpu_time", "torch.compile, GPU time between events"),
                       ("torch_eager", "torch eager")]:
        if f"{key}_ms" in res:
            print(f"| {label} | {res[key + '_ms']:.3f} | {res[key + '_TBps']:.2f} |")
    if "torch_compile_ms" in res:
        print(f"mx.compile / torch.compile time: {res['mx_compile_queued_ms'] / res['torch_compile_ms']:.2f}")
    if "torch_compile_gpu_time_ms" in res:
        print("mx.compile / torch.compile GPU time: "
              f"{res['mx_compile_gpu_time_ms'] / res['torch_compile_gpu_time_ms']:.2f}")
    for k in ("torch_skipped", "torch_compile_error"):
        if k in res:
            print(f"{k}: {res[k]}")
    print(f"fused kernel runs per call: {res['mx_fused_kernel_runs']}, "
          f"max abs error vs float64: {res['mx_compile_max_abs_err']:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
