"""python -m mx: version, devices and a short demo of lazy evaluation."""
import time

import mx.core as mx


def main():
    print(f"mx {mx.__version__}")
    for kind in (mx.cpu, mx.gpu):
        state = "available" if mx.is_available(kind) else "not available"
        print(f"  {kind!r}: {state}")
    print(f"  default device: {mx.default_device()!r}")
    print(f"  metal: {mx.metal.is_available()}, cuda: {mx.cuda.is_available()}")
    print()
    print("Lazy evaluation:")
    a = mx.array([1.0, 2.0, 3.0])
    b = mx.exp(a) * 2 + 1
    print("  b = mx.exp(a) * 2 + 1  ->  built a graph; nothing computed yet")
    t = time.perf_counter()
    mx.eval(b)
    print(f"  mx.eval(b)              ->  computed in {1e6 * (time.perf_counter() - t):.1f} us")
    print(f"  b = {b!r}")
    x = mx.ones((4,))
    t = time.perf_counter()
    for _ in range(1000):
        x = x * 0.5 + 1
    mx.eval(x)
    dt = (time.perf_counter() - t) / 2000
    print(f"  2,000 chained small ops built and evaluated at {1e6 * dt:.2f} us per op")
    print(f"  x = {x!r}")


if __name__ == "__main__":
    main()
