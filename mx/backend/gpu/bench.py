"""python -m mx.backend.gpu.bench: the GPU measurements of docs/gpu.md, mx beside PyTorch
(when installed) in one process on one card.

Every timing is wall-clock over a loop that ends in a synchronization, after warm-up runs
(so kernels are compiled and managed pages have moved to the GPU); the best of `repeats`
loops is reported.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def _best(fn, repeats):
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bench_mx(n_mm=8192, n_ew=1 << 26, iters=20, repeats=3):
    import mx.core as mx
    out = {}
    a = mx.random.normal((n_mm, n_mm)).astype(mx.bfloat16)
    b = mx.random.normal((n_mm, n_mm)).astype(mx.bfloat16)
    mx.eval(a, b)
    for _ in range(3):
        mx.eval(a @ b)
    t = _best(lambda: mx.eval([a @ b for _ in range(iters)]), repeats)
    out["matmul_bf16_tflops"] = 2 * n_mm ** 3 * iters / t / 1e12

    def one_by_one():
        for _ in range(iters):
            mx.eval(a @ b)
    t = _best(one_by_one, repeats)
    out["matmul_bf16_tflops_eval_each"] = 2 * n_mm ** 3 * iters / t / 1e12
    del a, b

    x = mx.random.uniform(shape=(n_ew,))
    y = mx.random.uniform(shape=(n_ew,))
    mx.eval(x, y)
    for _ in range(3):
        mx.eval(x + y)
    t = _best(lambda: mx.eval([x + y for _ in range(iters)]), repeats)
    out["add_f32_2^26_ms"] = t / iters * 1e3
    out["add_f32_2^26_TBps"] = 3 * 4 * n_ew * iters / t / 1e12
    for _ in range(3):
        mx.eval(mx.exp(x))
    t = _best(lambda: mx.eval([mx.exp(x) for _ in range(iters)]), repeats)
    out["exp_f32_2^26_TBps"] = 2 * 4 * n_ew * iters / t / 1e12
    for _ in range(3):
        mx.eval(mx.sum(x))
    t = _best(lambda: mx.eval([mx.sum(x) for _ in range(iters)]), repeats)
    out["sum_f32_2^26_ms"] = t / iters * 1e3
    out["sum_f32_2^26_TBps"] = 4 * n_ew * iters / t / 1e12
    want = float(np.asarray(x).astype(np.float64).sum())
    out["sum_f32_2^26_rel_err"] = abs(float(mx.sum(x).item()) - want) / want
    del x, y

    s = mx.array(np.ones(4, np.float32))

    def chain():
        z = s
        for _ in range(1000):
            z = z + 1.0
        mx.eval(z)
    chain()
    out["chained_add_shape4_us_per_op"] = _best(chain, repeats) / 1000 * 1e6
    out.update(mlp_step_mx(repeats=repeats))
    out.update(mlp_step_mx(repeats=repeats, compiled=True))
    return out


# the MLP of the measurement: 784-512-512-10, batch 256, Adam, eager
MLP = (784, 512, 512, 10)
BATCH = 256
STEPS = 50


def mlp_step_mx(repeats=3, compiled=False):
    """The eager (or, with `compiled`, mx.compile'd) training step's time, in ms."""
    import mx.core as mx
    import mx.nn as nn
    import mx.optimizers as optim
    from mx.backend import gpu
    rng = np.random.default_rng(0)
    model = nn.Sequential(nn.Linear(MLP[0], MLP[1]), nn.ReLU(), nn.Linear(MLP[1], MLP[2]),
                          nn.ReLU(), nn.Linear(MLP[2], MLP[3]))
    opt = optim.Adam(learning_rate=1e-3)
    x = mx.array(rng.standard_normal((BATCH, MLP[0])).astype(np.float32))
    y = mx.array(rng.integers(0, MLP[3], BATCH).astype(np.int32))

    def loss_fn(m, xb, yb):
        return nn.losses.cross_entropy(m(xb), yb, reduction="mean")

    step = nn.value_and_grad(model, loss_fn)

    def one_step(xb, yb):
        loss, grads = step(model, xb, yb)
        opt.update(model, grads)
        return loss

    if compiled:
        from functools import partial
        state = [model.state, opt.state]
        one_step = partial(mx.compile, inputs=state, outputs=state)(one_step)

    def train():
        for _ in range(STEPS):
            loss = one_step(x, y)
            mx.eval(model.parameters(), opt.state, loss)
    train()
    gpu.reset_counts()
    t = _best(train, repeats)
    out = {("mlp_adam_step_compiled_ms" if compiled else "mlp_adam_step_ms"): t / STEPS * 1e3}
    fb = gpu.fallback_counts()
    if fb:
        print("mlp step: primitives that ran on the CPU:", fb, file=sys.stderr)
    return out


def mlp_step_torch(repeats=3):
    import torch
    torch.manual_seed(0)
    dev = "cuda"
    model = torch.nn.Sequential(torch.nn.Linear(MLP[0], MLP[1]), torch.nn.ReLU(),
                                torch.nn.Linear(MLP[1], MLP[2]), torch.nn.ReLU(),
                                torch.nn.Linear(MLP[2], MLP[3])).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(BATCH, MLP[0], device=dev)
    y = torch.randint(0, MLP[3], (BATCH,), device=dev)
    lossf = torch.nn.CrossEntropyLoss()

    def train():
        for _ in range(STEPS):
            opt.zero_grad()
            loss = lossf(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
    train()
    return {"mlp_adam_step_ms": _best(train, repeats) / STEPS * 1e3}


def bench_torch(n_mm=8192, n_ew=1 << 26, iters=20, repeats=3):
    import torch
    out = {}
    dev = "cuda"
    a = torch.randn(n_mm, n_mm, device=dev, dtype=torch.bfloat16)
    b = torch.randn(n_mm, n_mm, device=dev, dtype=torch.bfloat16)
    sync = torch.cuda.synchronize

    def mm_batch():
        for _ in range(iters):
            a @ b
        sync()
    mm_batch()
    out["matmul_bf16_tflops"] = 2 * n_mm ** 3 * iters / _best(mm_batch, repeats) / 1e12

    def mm_each():
        for _ in range(iters):
            a @ b
            sync()
    out["matmul_bf16_tflops_eval_each"] = 2 * n_mm ** 3 * iters / _best(mm_each, repeats) / 1e12
    del a, b
    x = torch.rand(n_ew, device=dev)
    y = torch.rand(n_ew, device=dev)

    def add():
        for _ in range(iters):
            x + y
        sync()
    add()
    t = _best(add, repeats)
    out["add_f32_2^26_ms"] = t / iters * 1e3
    out["add_f32_2^26_TBps"] = 3 * 4 * n_ew * iters / t / 1e12

    def exp():
        for _ in range(iters):
            torch.exp(x)
        sync()
    exp()
    out["exp_f32_2^26_TBps"] = 2 * 4 * n_ew * iters / _best(exp, repeats) / 1e12

    def reduce_sum():
        for _ in range(iters):
            x.sum()
        sync()
    reduce_sum()
    t = _best(reduce_sum, repeats)
    out["sum_f32_2^26_ms"] = t / iters * 1e3
    out["sum_f32_2^26_TBps"] = 4 * n_ew * iters / t / 1e12
    s = torch.ones(4, device=dev)

    def chain():
        z = s
        for _ in range(1000):
            z = z + 1.0
        sync()
    chain()
    out["chained_add_shape4_us_per_op"] = _best(chain, repeats) / 1000 * 1e6
    out.update(mlp_step_torch(repeats=repeats))
    return out


def main(argv):
    import mx.core as mx
    if not mx.cuda.is_available():
        from mx.backend import gpu
        print(f"no GPU: {gpu.unavailable_reason()}")
        return 1
    res = {"device": mx.device_info(mx.gpu)["device_name"], "mx": bench_mx()}
    try:
        res["torch"] = bench_torch()
    except ImportError:
        res["torch"] = None
    print(json.dumps(res, indent=1))
    # the same side by side, one line a measurement (mx / PyTorch for rates, PyTorch / mx
    # for times)
    torch_res = res["torch"] or {}
    for key, v in res["mx"].items():
        w = torch_res.get(key)
        if w is None:
            print(f"{key:32s} mx {v:.4g}")
            continue
        ratio = v / w if ("TBps" in key or "tflops" in key) else w / v
        # (for times, the percentage is PyTorch's time over mx's: above 100% mx is faster)
        print(f"{key:32s} mx {v:.4g}  torch {w:.4g}  ({100 * ratio:.1f}%)")
    if len(argv) > 1:
        with open(argv[1], "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
