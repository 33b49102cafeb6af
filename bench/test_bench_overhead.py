"""Per-operation overhead on tiny arrays: where graph building and scheduling costs show.

(a) build and evaluate a chain of 1,000 adds on shape-(4,) arrays (target: mx <= 2 us/op);
(e) 10,000 steps of `x = x * 0.5 + 1` on a (4,) array, evaluating after every step.
NumPy and PyTorch are eager, so for them the evaluation step is a no-op.
"""

CHAIN = 1_000
STEPS = 10_000


def add_chain(x, y):
    for _ in range(CHAIN):
        x = x + y
    return x


def test_add_chain_1000(timed, backend, data):
    x, y = backend.to(data((4,), 1)), backend.to(data((4,), 2))
    timed("a: chain of 1000 adds, (4,)", add_chain, x, y, ops=CHAIN,
          target={"max_us_per_op": 2.0})


def lazy_loop(x, eval):
    for _ in range(STEPS):
        x = x * 0.5 + 1
        eval(x)
    return x


def eager_loop(x):
    for _ in range(STEPS):
        x = x * 0.5 + 1
    return x


def test_eval_loop_10000(timed, backend, data):
    # Lazy libraries call their own eval every step (what a training loop does); the
    # harness still syncs the final result.
    if backend.lazy:
        def loop(x):
            return lazy_loop(x, backend.xp.eval)
    else:
        loop = eager_loop
    timed("e: 10000 x (x*0.5+1; eval), (4,)", loop, backend.to(data((4,), 3)),
          ops=STEPS, unit="step")
