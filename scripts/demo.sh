#!/usr/bin/env bash
# Set up diffrep (in ./.venv, see setup.sh) and run `diffrep demo`.
# Extra arguments go to the demo, e.g. `bash scripts/demo.sh --quick`.
set -euo pipefail
DIFFREP_EXTRAS=plot . "$(dirname "$0")/setup.sh"
diffrep demo "$@"
