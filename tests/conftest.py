import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))


def _gpu_available():
    try:
        import mx.core as mx
        return mx.is_available(mx.gpu)
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a GPU (Metal or CUDA)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _cpu_default_for_unmarked_tests(request):
    """Tests not marked `gpu` check CPU behaviour (donation, kernel calls): on a machine
    with a GPU they run with the CPU as the default device."""
    if "gpu" in request.keywords or not _gpu_available():
        yield
        return
    import mx.core as mx
    prev = mx.default_device()
    mx.set_default_device(mx.cpu)
    try:
        yield
    finally:
        mx.set_default_device(prev)


@pytest.fixture(autouse=True)
def _gpu_default_for_gpu_tests(request):
    """Tests marked `gpu` run with mx.gpu as the default stream, also when the suite runs
    with MX_DEFAULT_DEVICE=cpu."""
    if "gpu" not in request.keywords or not _gpu_available():
        yield
        return
    import mx.core as mx
    with mx.stream(mx.gpu):
        yield
