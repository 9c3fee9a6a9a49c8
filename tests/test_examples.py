"""Every script in examples/ runs to the end in its quick mode, so examples cannot rot."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
WITH_FIGURE = {"label_noise_digits.py", "molrg_theory.py", "generalization_digits.py", "molrg_memorization.py"}


def test_every_example_is_covered():
    assert {path.name for path in EXAMPLES} >= WITH_FIGURE | {
        "pipeline_grid_search.py",
        "tabular_mlp.py",
        "pretrained_local.py",
        "pandas_output.py",
        "tabular_kaggle.py",
        "image_folder_kaggle.py",
    }


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs_in_quick_mode(script, tmp_path):
    command = [sys.executable, str(script), "--quick"]
    if script.name in WITH_FIGURE:
        command += ["--out", str(tmp_path / "figure.png")]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip(), "an example should print what it found"
    if script.name in WITH_FIGURE:
        assert (tmp_path / "figure.png").stat().st_size > 10_000
