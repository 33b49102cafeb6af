"""Training workloads: a 3-layer MLP (batch 256, 784-512-512-10, ReLU, cross-entropy).

(f) value_and_grad: loss and the gradients of all six parameters, functional style
    (mx.value_and_grad / mlx.core.value_and_grad; PyTorch: forward + torch.autograd.grad).
    Target: mx within 1.5x of PyTorch.
(g) one training step with Adam on nn modules: forward, backward, optimizer update, with
    the new parameters and optimizer state materialised. Eager in every library; target: mx
    within 1.5x of PyTorch.
(h) the same step compiled (mx.compile / mlx.core.compile with the model, optimizer and
    random state captured, the pattern of MLX's docs); PyTorch runs eagerly as the
    reference. Target: compiled mx no slower than PyTorch eager.

Every library starts from the same weights (NumPy data from the `data` fixture), so the
workloads do identical arithmetic. NumPy has no autodiff and skips these workloads.
"""
from functools import partial

import numpy as np
import pytest

BATCH = 256
SIZES = [784, 512, 512, 10]
LEARNING_RATE = 1e-3


def _weights(data):
    """[(w, b)] per layer, NumPy float32, Kaiming-uniform-like scale; w is (in, out)."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        scale = np.float32(1.0 / np.sqrt(n_in))
        layers.append((data((n_in, n_out), 10 + 2 * i) * scale, data((n_out,), 11 + 2 * i) * scale))
    return layers


def _batch(data):
    x = data((BATCH, SIZES[0]), 20)
    y = np.random.default_rng(21).integers(0, SIZES[-1], BATCH).astype(np.int32)
    return x, y


def _skip_numpy(backend):
    if backend.name == "numpy":
        pytest.skip("NumPy has no automatic differentiation")


# ---------------------------------------------------------------------------------------
# (f) value_and_grad, functional
# ---------------------------------------------------------------------------------------
def _mlp_loss(xp, losses, params, x, y):
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w + b
        if i < len(params) - 1:
            h = xp.maximum(h, 0)
    return losses.cross_entropy(h, y, reduction="mean")


def _value_and_grad_lazy(backend, layers, x, y):
    """mx or MLX: the library's value_and_grad over a list of (w, b) pairs."""
    xp = backend.xp
    nn = pytest.importorskip("mx.nn" if backend.name == "mx" else "mlx.nn")
    params = [(backend.to(w), backend.to(b)) for w, b in layers]
    vg = xp.value_and_grad(partial(_mlp_loss, xp, nn.losses))
    return vg, (params, backend.to(x), xp.array(y))


def _value_and_grad_torch(backend, layers, x, y):
    torch = backend.xp
    params = [(backend.to(w).requires_grad_(), backend.to(b).requires_grad_()) for w, b in layers]
    flat = [p for pair in params for p in pair]
    target = torch.from_numpy(y.astype(np.int64))

    def vg(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = torch.addmm(b, h, w)
            if i < len(params) - 1:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        # autograd.grad returns the gradients without accumulating into .grad: the same
        # contract as value_and_grad.
        return loss, torch.autograd.grad(loss, flat)

    return vg, (params, backend.to(x), target)


def test_value_and_grad_mlp(timed, backend, data):
    _skip_numpy(backend)
    layers, (x, y) = _weights(data), _batch(data)
    make = _value_and_grad_torch if backend.name == "torch" else _value_and_grad_lazy
    fn, args = make(backend, layers, x, y)
    loss, grads = timed("f: value_and_grad, MLP 784-512-512-10, batch 256", fn, *args)
    # Every library computes the same loss from the same weights and batch.
    assert _loss_of(loss) == pytest.approx(_numpy_loss(layers, x, y), rel=1e-4)


def _numpy_loss(layers, x, y):
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0)
    h = h - h.max(1, keepdims=True)
    logp = h - np.log(np.exp(h).sum(1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean())


# ---------------------------------------------------------------------------------------
# (g, h) a training step with Adam
# ---------------------------------------------------------------------------------------
def _step_lazy(backend, layers, x, y, compiled):
    """mx or MLX: nn.Linear layers, optimizers.Adam, nn.value_and_grad; compiled with the
    state capture of MLX's 'Compiling Training Graphs' guide."""
    xp = backend.xp
    lib = "mx" if backend.name == "mx" else "mlx"
    nn = pytest.importorskip(f"{lib}.nn")
    optim = pytest.importorskip(f"{lib}.optimizers")

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = [nn.Linear(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])]

        def __call__(self, h):
            for layer in self.layers[:-1]:
                h = nn.relu(layer(h))
            return self.layers[-1](h)

    model = MLP()
    for layer, (w, b) in zip(model.layers, layers):
        layer.weight = backend.to(np.ascontiguousarray(w.T))   # nn.Linear holds (out, in)
        layer.bias = backend.to(b)
    optimizer = optim.Adam(learning_rate=LEARNING_RATE)
    optimizer.init(model.trainable_parameters())
    xp.eval(model.parameters(), optimizer.state)

    def loss_fn(model, x, y):
        return nn.losses.cross_entropy(model(x), y, reduction="mean")

    loss_and_grad = nn.value_and_grad(model, loss_fn)
    state = [model.state, optimizer.state, xp.random.state]

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        optimizer.update(model, grads)
        return loss

    if compiled:
        step = partial(xp.compile, inputs=state, outputs=state)(step)

    def train_step(x, y):
        # The harness evaluates what is returned: the loss and the whole new state.
        return step(x, y), state

    return train_step, (backend.to(x), xp.array(y))


def _step_torch(backend, layers, x, y):
    torch = backend.xp
    model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
    with torch.no_grad():
        for layer, (w, b) in zip(model[::2], layers):
            layer.weight.copy_(torch.from_numpy(w.T))
            layer.bias.copy_(torch.from_numpy(b))
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return train_step, (backend.to(x), torch.from_numpy(y.astype(np.int64)))


def _run_step(timed, backend, data, group, compiled):
    _skip_numpy(backend)
    layers, (x, y) = _weights(data), _batch(data)
    if backend.name == "torch":
        fn, args = _step_torch(backend, layers, x, y)
    else:
        fn, args = _step_lazy(backend, layers, x, y, compiled)
    first = _loss_of(fn(*args))
    # The step trains: the first loss is the common starting point, later ones fall.
    assert first == pytest.approx(_numpy_loss(layers, x, y), rel=1e-4)
    timed(group, fn, *args)
    assert _loss_of(fn(*args)) < first


def _loss_of(result):
    loss = result[0] if isinstance(result, tuple) else result
    return float(loss.detach().item() if hasattr(loss, "detach") else loss.item())


def test_training_step_eager(timed, backend, data):
    _run_step(timed, backend, data, "g: Adam training step, MLP 784-512-512-10, batch 256, eager",
              compiled=False)


def test_training_step_compiled(timed, backend, data):
    _run_step(timed, backend, data, "h: Adam training step, MLP 784-512-512-10, batch 256, "
              "compiled (PyTorch eager)", compiled=True)
