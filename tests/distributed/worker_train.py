"""Run by tests/test_distributed.py under mpirun (2 processes): data-parallel training of
an MLP, each process on its half of every batch with nn.average_gradients, eagerly and
with a compiled step. Rank 0 also trains the same model alone on the full batches. Each
rank pickles its final parameters and losses into OUTDIR/rank<r>.pkl."""
import os
import pickle
import sys

import numpy as np

import mx.core as mx
import mx.nn as nn
import mx.optimizers as optim
from mx.utils import tree_flatten

STEPS = 12
BATCH = 32

group = mx.distributed.init(strict=True)
rank, size = group.rank(), group.size()
rng = np.random.default_rng(0)
X = rng.standard_normal((STEPS, BATCH, 6)).astype(np.float32)
Y = np.tanh(X @ rng.standard_normal((6, 3))).astype(np.float32)


def make_model():
    mx.random.seed(1)          # the same initial parameters in every process
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.Tanh(),
                         nn.Linear(16, 3))


def loss_fn(model, x, y):
    return nn.losses.mse_loss(model(x), y, reduction="mean")


def train(shard, distributed, compiled):
    model = make_model()
    opt = optim.SGD(learning_rate=0.2, momentum=0.9)
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        if distributed:
            grads = nn.average_gradients(grads)
            loss = mx.distributed.all_sum(loss) / size
        opt.update(model, grads)
        return loss

    if compiled:
        state = [model.state, opt.state]
        step = mx.compile(step, inputs=state, outputs=state)
    losses = []
    for i in range(STEPS):
        lo, hi = shard
        loss = step(mx.array(X[i, lo:hi]), mx.array(Y[i, lo:hi]))
        mx.eval(loss, model.parameters(), opt.state)
        losses.append(loss.item())
    params = {k: np.asarray(v) for k, v in tree_flatten(model.parameters())}
    return params, losses


half = BATCH // size
mine = (rank * half, (rank + 1) * half)
out = {"eager": train(mine, True, False), "compiled": train(mine, True, True)}
if rank == 0:
    out["alone"] = train((0, BATCH), False, False)
with open(os.path.join(sys.argv[1], f"rank{rank}.pkl"), "wb") as f:
    pickle.dump(out, f)
