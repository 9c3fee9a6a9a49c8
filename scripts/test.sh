#!/usr/bin/env bash
# Set up everything the test suite needs (in ./.venv) and run it.
#
# Keeps a torch that is already importable (a GPU user's own build). Otherwise it
# installs torch==2.13.0 before the package, so the `torch>=2.2` requirement is
# already met and pip never pulls a multi-GB CUDA build on a CPU-only machine.
# Set DIFFREP_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) to take
# torch from a specific index. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
if ! python -c "import torch" 2>/dev/null; then
    if [ -n "${DIFFREP_TORCH_INDEX:-}" ]; then
        python -m pip install -q "torch==2.13.0" --index-url "$DIFFREP_TORCH_INDEX"
    else
        python -m pip install -q "torch==2.13.0"
    fi
fi
python -m pip install -q -e ".[test]"
python -m pytest "$@"
