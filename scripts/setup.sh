#!/usr/bin/env bash
# Source me: create ./.venv if needed, activate it and install diffrep with the given extras.
#
# Keeps a torch that is already importable (a GPU user's own build). Otherwise it
# installs torch==2.13.0 before the package, so the `torch>=2.2` requirement is
# already met and pip never pulls a multi-GB CUDA build on a CPU-only machine.
# Set DIFFREP_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) to take
# torch from a specific index.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
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
python -m pip install -q -e ".[${DIFFREP_EXTRAS:-test}]"
