"""Setting up the test environment with ``scripts/setup.sh`` (uv) vs plain pip, side by side in one run.

Each candidate gets a fresh clone of this repository, a fresh ``.venv`` and empty
package caches (``PIP_CACHE_DIR``, ``UV_CACHE_DIR``), as on a new CI machine:

- **pip**: what ``scripts/setup.sh`` ran before it used uv: ``pip install
  torch==2.13.0``, then ``pip install -e ".[test]"``;
- **setup.sh**: the script itself (uv, installed into the venv by pip, with
  bytecode compiled at install time).

It prints each wall time and their ratio, and checks that both venvs hold the
same package versions. Needs network access to the package index; about four
minutes on 2 CPU cores. Run from anywhere::

    python benchmarks/install_time.py
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PIP_BASELINE = (
    "python3 -m venv .venv && . .venv/bin/activate"
    " && python -m pip install -q torch==2.13.0 && python -m pip install -q -e '.[test]'"
)
SETUP_SCRIPT = "DIFFREP_EXTRAS=test . scripts/setup.sh"


def timed_setup(command, workdir):
    """Clone the repository into ``workdir``, run ``command`` there with empty caches, return seconds."""
    clone = workdir / "repo"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "PIP_CACHE_DIR": str(workdir / "pip-cache"), "UV_CACHE_DIR": str(workdir / "uv-cache")}
    start = time.perf_counter()
    subprocess.run(["bash", "-c", f"set -e; {command}"], cwd=clone, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def installed_versions(workdir):
    """The ``pip freeze`` lines of the clone's venv, without the editable project and uv itself."""
    freeze = subprocess.run([str(workdir / "repo/.venv/bin/python"), "-m", "pip", "freeze"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    return {line for line in freeze if not line.startswith(("-e ", "uv==", "diffrep"))}


def main():
    """Time both set-ups one after the other and print the comparison."""
    with tempfile.TemporaryDirectory() as pip_dir, tempfile.TemporaryDirectory() as setup_dir:
        pip_seconds = timed_setup(PIP_BASELINE, Path(pip_dir))
        setup_seconds = timed_setup(SETUP_SCRIPT, Path(setup_dir))
        differing = installed_versions(Path(pip_dir)) ^ installed_versions(Path(setup_dir))
    print(f"pip (torch, then the test extra):  {pip_seconds:6.1f} s")
    print(f"scripts/setup.sh (uv):             {setup_seconds:6.1f} s")
    print(f"ratio setup.sh / pip:              {setup_seconds / pip_seconds:6.2f}")
    print("same package versions" if not differing else f"versions differ: {sorted(differing)}")
    return 0 if not differing else 1


if __name__ == "__main__":
    sys.exit(main())
