"""python -m mx.demo: train a small network end to end and report its test accuracy.

The data are 16x16 handwritten-style digits rendered procedurally by mx.data.digits
(6,000 training and 1,000 test images, the same on every run; nothing is downloaded). The
model is a multi-layer perceptron with dropout, trained with Adam and a cross-entropy
loss. The whole training step (forward, backward and optimizer update) is one compiled
function, following MLX's pattern for compiling training graphs:

    state = [model.state, optimizer.state, mx.random.state]

    @partial(mx.compile, inputs=state, outputs=state)
    def step(x, y):
        loss, grads = nn.value_and_grad(model, loss_fn)(model, x, y)
        optimizer.update(model, grads)
        return loss

`mx.random.state` is part of the captured state because dropout draws random masks.

    python -m mx.demo [--device cpu|gpu] [--epochs N] [--batch-size B] [--seed S]
                      [--learning-rate LR] [--no-compile]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time
from functools import partial

import numpy as np

import mx.core as mx
import mx.nn as nn
import mx.optimizers as optim
from mx.data import digits
from mx.utils import tree_flatten

EXIT_NO_DEVICE = 2
BAR_WIDTH = 24


class MLP(nn.Module):
    """Flattened image -> hidden ReLU layers with dropout -> class logits."""

    def __init__(self, in_dims: int, hidden: list[int], classes: int, dropout: float = 0.1):
        super().__init__()
        sizes = [in_dims] + list(hidden)
        self.layers = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.head = nn.Linear(sizes[-1], classes)
        self.dropout = nn.Dropout(dropout)

    def __call__(self, x):
        x = x.reshape(x.shape[0], -1)
        for layer in self.layers:
            x = self.dropout(nn.relu(layer(x)))
        return self.head(x)


def loss_fn(model, x, y):
    return nn.losses.cross_entropy(model(x), y, reduction="mean")


def make_step(model, optimizer, compiled: bool = True):
    """The training step: forward, backward and Adam update of `model` in place; returns
    the batch loss (lazy). Compiled, it is traced once and replayed as one graph node."""
    loss_and_grad = nn.value_and_grad(model, loss_fn)

    def step(x, y):
        loss, grads = loss_and_grad(model, x, y)
        optimizer.update(model, grads)
        return loss

    if not compiled:
        return step
    state = [model.state, optimizer.state, mx.random.state]
    return partial(mx.compile, inputs=state, outputs=state)(step)


def build(seed: int, learning_rate: float = 1e-3):
    """(model, optimizer), initialised from `seed` (parameters and dropout masks)."""
    mx.random.seed(seed)
    model = MLP(digits.SIZE * digits.SIZE, [256, 128], digits.CLASSES)
    optimizer = optim.Adam(learning_rate=learning_rate)
    # Creating Adam's moments now (instead of in the first update) gives the compiled step
    # the same state structure on every call, so it is traced only once.
    optimizer.init(model.trainable_parameters())
    mx.eval(model.parameters(), optimizer.state)
    return model, optimizer


def accuracy(model, images, labels, batch_size: int = 1000) -> float:
    """Fraction of `images` whose most likely class is the label (model in eval mode)."""
    model.eval()
    correct = 0
    for lo in range(0, len(images), batch_size):
        logits = model(mx.array(images[lo:lo + batch_size]))
        hits = mx.sum(mx.argmax(logits, axis=1) == mx.array(labels[lo:lo + batch_size]))
        correct += hits.item()
    model.train()
    return correct / len(images)


class Progress:
    """A plain-text progress bar redrawn in place with carriage returns."""

    def __init__(self, out, epoch: int, epochs: int, steps: int, min_interval: float = 0.1):
        self.out, self.steps, self.min_interval = out, steps, min_interval
        self.prefix = f"epoch {epoch:>{len(str(epochs))}}/{epochs}"
        self.start = self.last = time.perf_counter()
        self.width = 0

    def update(self, step: int, loss: float, samples: int, final: bool = False):
        now = time.perf_counter()
        if not final and now - self.last < self.min_interval:
            return
        self.last = now
        filled = BAR_WIDTH * step // self.steps
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        rate = samples / max(now - self.start, 1e-9)
        line = (f"{self.prefix} [{bar}] {step:>{len(str(self.steps))}}/{self.steps}"
                f"  loss {loss:.4f}  {rate:,.0f} samples/s")
        # Pad to the previous line's width so a shorter line leaves no stale characters.
        self.out.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.out.flush()


def train_epoch(step, state, x_train, y_train, batch_size, rng, progress):
    """One pass over the shuffled training set, evaluating the loss and `state` after
    every step; returns (mean loss, samples seen)."""
    order = rng.permutation(len(x_train))
    steps = math.ceil(len(order) / batch_size)
    losses, seen = [], 0
    for i in range(steps):
        idx = order[i * batch_size:(i + 1) * batch_size]
        loss = step(mx.array(x_train[idx]), mx.array(y_train[idx]))
        mx.eval(loss, state)
        losses.append(loss.item())
        seen += len(idx)
        # The bar shows the mean loss over the last few batches: less jumpy than one batch.
        progress.update(i + 1, float(np.mean(losses[-10:])), seen, final=i + 1 == steps)
    return float(np.mean(losses)), seen


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m mx.demo",
        description="Train an MLP on procedurally rendered 16x16 digits with a compiled "
                    "training step and report test accuracy.")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu",
                        help="device to train on (default: cpu)")
    parser.add_argument("--epochs", type=_positive, default=6, help="passes over the training set (default: 6)")
    parser.add_argument("--batch-size", type=_positive, default=64, help="samples per step (default: 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and dropout (default: 0)")
    parser.add_argument("--learning-rate", type=float, default=2e-3, help="Adam learning rate (default: 2e-3)")
    parser.add_argument("--no-compile", action="store_true", help="run the training step eagerly")
    return parser.parse_args(argv)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def select_device(name: str, err) -> bool:
    """Make `name` the default device; False (after explaining why on `err`) if it has none."""
    device = mx.gpu if name == "gpu" else mx.cpu
    if not mx.is_available(device):
        err.write("error: --device gpu was requested but no GPU is available to mx "
                  f"(Metal: {mx.metal.is_available()}, CUDA: {mx.cuda.is_available()}); "
                  "run with --device cpu\n")
        return False
    mx.set_default_device(device)
    return True


def main(argv=None, out=None, err=None) -> int:
    """Run the demo; returns the process exit status (0, or 2 when the device is missing).
    `out`/`err` default to sys.stdout/sys.stderr (tests pass their own streams)."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    args = parse_args(argv)
    if not select_device(args.device, err):
        return EXIT_NO_DEVICE

    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = digits.load()
    out.write(f"mx {mx.__version__} on {mx.default_device()!r}: {len(x_train):,} training and "
              f"{len(x_test):,} test digits ({digits.SIZE}x{digits.SIZE}), "
              f"made in {time.perf_counter() - t0:.1f} s\n")

    model, optimizer = build(args.seed, args.learning_rate)
    step = make_step(model, optimizer, compiled=not args.no_compile)
    params = sum(p.size for _, p in tree_flatten(model.parameters()))
    out.write(f"model: MLP {digits.SIZE * digits.SIZE}-256-128-{digits.CLASSES} ({params:,} "
              f"parameters), Adam lr={args.learning_rate:g}, batch {args.batch_size}, "
              f"{'eager step' if args.no_compile else 'compiled step (traced and built in the first steps)'}\n")

    # What each step changes, evaluated after it: the parameters, Adam's moments and the
    # random key that dropout advances.
    state = [model.state, optimizer.state, mx.random.state]
    rng = np.random.default_rng(args.seed)
    steps = math.ceil(len(x_train) / args.batch_size)
    total_samples, train_time, acc = 0, 0.0, accuracy(model, x_test, y_test)
    for epoch in range(1, args.epochs + 1):
        progress = Progress(out, epoch, args.epochs, steps)
        start = time.perf_counter()
        loss, seen = train_epoch(step, state, x_train, y_train, args.batch_size, rng, progress)
        elapsed = time.perf_counter() - start
        train_time += elapsed
        total_samples += seen
        acc = accuracy(model, x_test, y_test)
        out.write(f"  test accuracy {100 * acc:.1f}%  ({elapsed:.1f} s)\n")

    out.write(f"test accuracy: {100 * acc:.2f}% ({round(acc * len(x_test))}/{len(x_test)}) "
              f"after {args.epochs} epoch{'s' if args.epochs != 1 else ''}; "
              f"{total_samples / max(train_time, 1e-9):,.0f} samples/s, "
              f"total {time.perf_counter() - t0:.1f} s\n")
    out.flush()
    return 0


def _cli():
    try:
        return main()
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly, as other command-line tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ninterrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(_cli())
