#!/usr/bin/env bash
# Source me: create ./.venv if needed, activate it and install diffrep with the given extras.
#
# Keeps a torch that is already importable (a GPU user's own build). Otherwise it
# installs torch==2.13.0 before the package, so the `torch>=2.2` requirement is
# already met and no multi-GB CUDA build is pulled on a CPU-only machine.
# Set DIFFREP_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) to take
# torch from a specific index.
#
# Packages are installed by uv (itself installed into the venv by pip; pip if
# that fails): it resolves the same versions as pip in 0.42x pip's time for a fresh test venv with empty
# caches (67 s vs 160 s on a 2-core machine, benchmarks/install_time.py). Its
# bytecode is compiled at install time, as pip does, so that imports stay fast
# where PYTHONDONTWRITEBYTECODE is set.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
# uv does not read pip's configuration: pass on pip's find-links, so torch comes from where pip would take it.
uv_options=(--quiet --compile-bytecode)
for link in ${PIP_FIND_LINKS:-$(python -m pip config get global.find-links 2>/dev/null || true)}; do
    uv_options+=(--find-links "$link")
done
# pip stays the fallback, should uv be unavailable or fail.
install_packages() {
    uv pip install "${uv_options[@]}" "$@" || {
        echo "setup.sh: uv could not install $*; trying pip" >&2
        python -m pip install -q "$@"
    }
}
python -m pip install -q uv || echo "setup.sh: could not install uv; using pip" >&2
if ! python -c "import torch" 2>/dev/null; then
    if [ -n "${DIFFREP_TORCH_INDEX:-}" ]; then
        install_packages "torch==2.13.0" --index-url "$DIFFREP_TORCH_INDEX"
    else
        install_packages "torch==2.13.0"
    fi
fi
install_packages -e ".[${DIFFREP_EXTRAS:-test}]"
