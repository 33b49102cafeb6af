"""Run by tests/test_distributed.py under mpirun (2 processes): every collective, send/recv,
split groups, the transformation rules, compile, async_eval and average_gradients. Each
rank pickles {case: value} (its inputs and mx's outputs as NumPy arrays) into
OUTDIR/rank<r>.pkl; the test computes what NumPy says they should be."""
import os
import pickle
import sys

import ml_dtypes
import numpy as np

import mx.core as mx
import mx.nn as nn

d = mx.distributed
g = d.init(strict=True)
r, n = g.rank(), g.size()
peer_next, peer_prev = (r + 1) % n, (r - 1) % n
out = {"rank": r, "size": n}

DTYPES = ["float32", "float64", "float16", "bfloat16", "int8", "int32", "uint64", "bool",
          "complex64"]
SHAPES = [(), (5,), (4, 3), (0, 2)]


def np_dtype(name):
    return np.dtype(ml_dtypes.bfloat16) if name == "bfloat16" else np.dtype(name)


def make(name, shape, seed):
    """Deterministic data of this rank (small integers so that ties and wraparound occur)."""
    rng = np.random.default_rng([seed, r])
    if name == "bool":
        return rng.random(shape) < 0.5
    if name == "complex64":
        return (rng.integers(-3, 4, shape) + 1j * rng.integers(-3, 4, shape)).astype(np.complex64)
    if name.startswith("float") or name == "bfloat16":
        return (rng.integers(-8, 9, shape) * 0.375).astype(np_dtype(name))
    if name == "int8":
        return rng.integers(-128, 128, shape).astype(np.int8)   # sums wrap around
    if name == "uint64":
        return rng.integers(0, 2 ** 40, shape).astype(np.uint64)
    return rng.integers(-50, 50, shape).astype(np_dtype(name))


def mxa(x):
    return mx.array(x, dtype=getattr(mx, "bool_" if x.dtype == np.bool_ else x.dtype.name))


def npv(a):
    return np.asarray(a)


def error_of(fn):
    try:
        mx.eval(fn())
    except Exception as e:  # the message is what the test checks
        return f"{type(e).__name__}: {e}"
    return None


# ---- reductions, gather, reduce-scatter ----------------------------------------------
for i, dt in enumerate(DTYPES):
    for j, shape in enumerate(SHAPES):
        x = make(dt, shape, 100 * i + j)
        out[("in", dt, shape)] = x
        for op in ("sum", "max", "min"):
            out[(op, dt, shape)] = npv(getattr(d, "all_" + op)(mxa(x)))
        out[("gather", dt, shape)] = npv(d.all_gather(mxa(x)))
        if shape and shape[0] % n == 0:
            out[("scatter", dt, shape)] = npv(d.sum_scatter(mxa(x)))

nan_in = np.array([np.nan if r == 0 else 1.0, 2.0, np.nan, -1.0], np.float32)
out["nan_in"] = nan_in
out["nan_max"] = npv(d.all_max(mx.array(nan_in)))
out["nan_min"] = npv(d.all_min(mx.array(nan_in)))
out["python_scalar"] = npv(d.all_sum(2.5))
out["scatter_err_shape"] = error_of(lambda: d.sum_scatter(mx.ones((3,))))
out["scatter_err_scalar"] = error_of(lambda: d.sum_scatter(mx.array(1.0)))
out["gather_scalar_shape"] = d.all_gather(mx.array(1.0)).shape

# an input that dies at the reduction lends it its buffer (in-place MPI reduction)
donated = []
real_all_reduce = g._impl.all_reduce
g._impl.all_reduce = lambda a, op, out=None: (donated.append(out is not None),
                                              real_all_reduce(a, op, out))[1]
base = make("float32", (6, 5), 77)
out["donate_in"] = base
kept = mx.array(base)
doubled = kept * 2
mx.eval(doubled)
reduced = d.all_sum(doubled)
del doubled                                             # now only the reduction holds it
out["donate_sum"] = npv(reduced)
out["donate_max"] = npv(d.all_max(kept))                # kept is still referenced
g._impl.all_reduce = real_all_reduce
out["donated"] = donated

# ---- point to point ------------------------------------------------------------------
ring = make("float32", (3, 4), 7)
out["ring_in"] = ring
sent = d.send(mx.array(ring), peer_next)
got = d.recv((3, 4), mx.float32, peer_prev)
mx.eval(sent, got)
out["ring_sent"], out["ring_got"] = npv(sent), npv(got)

# both processes send 4 MiB before receiving: needs sends that do not wait for the receiver
big = np.full((1 << 20,), r + 1, np.float32)
sent = d.send(mx.array(big), peer_next)
got = d.recv_like(mx.zeros(big.shape), peer_prev)
mx.eval(sent, got)
out["big_got"] = npv(got)[[0, -1]]

bf = make("bfloat16", (5,), 8)
out["bf_in"] = bf
mx.eval(d.send(mxa(bf), peer_next))
out["bf_got"] = npv(d.recv((5,), mx.bfloat16, peer_prev))
mx.eval(d.send(mx.zeros((0, 3)), peer_next))
out["empty_got_shape"] = npv(d.recv((0, 3), mx.float32, peer_prev)).shape
mx.eval(d.send(mx.array([r, 10 * r]), r))          # to itself
out["self_got"] = npv(d.recv((2,), mx.int32, r))

mx.eval(d.send(mx.ones((10,)), peer_next))
out["recv_too_small"] = error_of(lambda: d.recv((5,), mx.float32, peer_prev))
mx.eval(d.send(mx.ones((2,)), peer_next))
out["recv_too_large"] = error_of(lambda: d.recv((5,), mx.float32, peer_prev))
out["send_bad_dst"] = error_of(lambda: d.send(mx.ones(2), n))
out["recv_bad_src"] = error_of(lambda: d.recv((2,), mx.float32, -1))

# ---- groups --------------------------------------------------------------------------
rev = g.split(0, key=n - 1 - r)
out["rev_rank"], out["rev_size"] = rev.rank(), rev.size()
out["rev_gather"] = npv(d.all_gather(mx.array([r]), group=rev))
alone = g.split(r)
out["alone"] = (alone.rank(), alone.size())
x = mx.array([float(r + 1)])
out["alone_sum"] = npv(d.all_sum(x, group=alone))
same = g.split(5)
out["same_sum"] = npv(d.all_sum(x, group=same))
out["same_rank"] = same.rank()
out["split_negative"] = error_of(lambda: g.split(-1))

# ---- transformation rules (float64) --------------------------------------------------
rng = np.random.default_rng([42, r])
shared = np.random.default_rng(43)
X = rng.standard_normal((4, 3))                   # distinct values: no ties across ranks
T = rng.standard_normal((4, 3))
CT_MINE = {"all_sum": rng.standard_normal((4, 3)), "all_max": rng.standard_normal((4, 3)),
           "all_min": rng.standard_normal((4, 3)), "all_gather": rng.standard_normal((4 * n, 3)),
           "sum_scatter": rng.standard_normal((4 // n, 3))}
# replicated outputs are differentiated with the same cotangent on every process
CT_SHARED = {"all_sum": shared.standard_normal((4, 3)), "all_max": shared.standard_normal((4, 3)),
             "all_min": shared.standard_normal((4, 3)),
             "all_gather": shared.standard_normal((4 * n, 3))}
out["X"], out["T"], out["CT_MINE"], out["CT_SHARED"] = X, T, CT_MINE, CT_SHARED
f64 = lambda a: mx.array(a, dtype=mx.float64)  # noqa: E731
eps = 1e-6
for name in ("all_sum", "all_max", "all_min", "all_gather", "sum_scatter"):
    f = getattr(d, name)
    _, (vjp_mine,) = mx.vjp(f, [f64(X)], [f64(CT_MINE[name])])
    out[("vjp", name)] = npv(vjp_mine)
    _, (jv,) = mx.jvp(f, [f64(X)], [f64(T)])
    fd = (npv(f(f64(X + eps * T))) - npv(f(f64(X - eps * T)))) / (2 * eps)
    out[("jvp", name)] = (npv(jv), fd)
    ct = CT_SHARED.get(name, CT_MINE[name])
    _, (vj,) = mx.vjp(f, [f64(X)], [f64(ct)])
    # adjoint identity, summed over ranks by the test: sum_p <vjp_p(ct), t_p> = <ct, J t>
    out[("adjoint", name)] = (float(np.sum(npv(vj) * T)), float(np.sum(ct * npv(jv))))

ties = np.array([1.0, 5.0, 3.0]) if r == 0 else np.array([1.0, 2.0, 4.0])
out["ties_grad_max"] = npv(mx.grad(lambda a: d.all_max(a).sum())(f64(ties)))
out["ties_grad_min"] = npv(mx.grad(lambda a: d.all_min(a).sum())(f64(ties)))
w = np.arange(1.0, 4.0)
out["grad_weighted_sum"] = npv(mx.grad(lambda a: (d.all_sum(a) * f64(w)).sum())(f64(ties)))
# second order: the rules are differentiable again
out["grad_grad"] = npv(mx.grad(lambda a: mx.grad(lambda b: (d.all_sum(b) ** 3).sum())(a).sum())(f64(ties)))

XB = rng.standard_normal((2, 4, 2)).astype(np.float32)
out["XB"] = XB
for name in ("all_sum", "all_max", "all_min", "all_gather", "sum_scatter"):
    f = getattr(d, name)
    for ax in (0, 1):
        batched = npv(mx.vmap(f, in_axes=ax)(mx.array(XB)))
        loop = np.stack([npv(f(mx.array(np.take(XB, i, axis=ax)))) for i in range(XB.shape[ax])])
        out[("vmap", name, ax)] = (batched, loop)
scalars = np.array([1.0, 2.0, 3.0], np.float32) * (r + 1)
out[("vmap", "gather_scalars")] = (npv(mx.vmap(d.all_gather)(mx.array(scalars))),
                                   np.stack([npv(d.all_gather(mx.array(s))) for s in scalars]))
sent = mx.vmap(lambda a: d.send(a, peer_next))(mx.array(XB))
got = mx.vmap(lambda a: d.recv_like(a, peer_prev))(mx.zeros(XB.shape))
mx.eval(sent, got)
out["vmap_send"], out["vmap_recv"] = npv(sent), npv(got)
out["grad_through_recv_like"] = npv(
    mx.grad(lambda a: (d.recv_like(a, peer_prev) + d.send(a, peer_next) * 2).sum())(mx.ones(3)))

# ---- compile, async_eval -------------------------------------------------------------
fn = mx.compile(lambda a: d.all_sum(a) * 2 + d.all_max(a))
A1, A2 = rng.standard_normal(6).astype(np.float32), rng.standard_normal(6).astype(np.float32)
out["compile_in"] = (A1, A2)
out["compile_out"] = (npv(fn(mx.array(A1))), npv(fn(mx.array(A2))))
out["compile_recv"] = error_of(lambda: mx.compile(lambda a: a + d.recv((6,), mx.float32, peer_prev))(mx.array(A1)))
y = d.all_sum(mx.array(A1))
mx.async_eval(y)
out["async"] = npv(y)

# ---- average_gradients ---------------------------------------------------------------
gr = np.random.default_rng([900, r])
grads = {"a": gr.standard_normal((3, 2)).astype(np.float32),
         "b": [gr.standard_normal(5).astype(np.float32), gr.standard_normal((2, 2)).astype(np.float16)],
         "c": gr.standard_normal(7).astype(np.float32)}
out["grads_in"] = grads
mxg = {"a": mxa(grads["a"]), "b": [mxa(grads["b"][0]), mxa(grads["b"][1])], "c": mxa(grads["c"])}
for label, kw in [("grouped", dict(all_reduce_size=4 * 7)), ("single", dict(all_reduce_size=0)),
                  ("default", {}), ("bf16", dict(communication_type=mx.bfloat16))]:
    calls = []
    real_all_sum = d.all_sum
    d.all_sum = lambda a, **k: (calls.append((a.shape, a.dtype.name)), real_all_sum(a, **k))[1]
    try:
        avg = nn.average_gradients(mxg, **kw)
    finally:
        d.all_sum = real_all_sum
    out[("avg_calls", label)] = calls
    out[("avg", label)] = {"a": npv(avg["a"]), "b": [npv(avg["b"][0]), npv(avg["b"][1])],
                           "c": npv(avg["c"])}

with open(os.path.join(sys.argv[1], f"rank{r}.pkl"), "wb") as f:
    pickle.dump(out, f)
