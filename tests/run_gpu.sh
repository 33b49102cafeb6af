#!/usr/bin/env bash
# The GPU tests on the GPU machine (docs/gpu.md, "Running the GPU tests"): install the wheels
# carried in .device-wheels (prepared with ../shared/tools/device-wheels; that machine has no
# package registry), build the extensions in place, run every test marked gpu. Extra
# arguments go to pytest. About 3 minutes on the H100 machine (16 cores), a cold kernel
# cache included.
set -euo pipefail
cd "$(dirname "$0")/.."
if ls .device-wheels/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps .device-wheels/*.whl
fi
python3 setup.py -q build_ext --inplace -j "$(nproc)" >/dev/null
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m pytest -q -m gpu "$@"
