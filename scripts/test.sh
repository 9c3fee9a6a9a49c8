#!/usr/bin/env bash
# Set up everything the test suite needs (in ./.venv, see setup.sh) and run it.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m slow`.
set -euo pipefail
DIFFREP_EXTRAS=test . "$(dirname "$0")/setup.sh"
# One torch thread unless told otherwise: the suite's models are tiny, and on a 2-core machine with another
# job running two threads ran 13x slower than one (see diffrep/app/threads.py).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
# The public API's type hints (the modules and settings in pyproject.toml's [tool.mypy]).
python -m mypy
# One worker per CPU core (pytest-xdist): each test is one-threaded and independent (tmp_path, no shared
# files), so on 2 cores the default run took 410 s instead of 723 s (1,365 tests, measured one after the other).
python -m pytest -n auto "$@"
