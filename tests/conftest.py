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
