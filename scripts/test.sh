#!/usr/bin/env bash
# Set up everything the test suite needs (in ./.venv, see setup.sh) and run it.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
DIFFREP_EXTRAS=test . "$(dirname "$0")/setup.sh"
# The public API's type hints (the modules and settings in pyproject.toml's [tool.mypy]).
python -m mypy
python -m pytest "$@"
