"""The `diffrep` console command: demo, curve on the user's own data, help and errors."""

import subprocess
import sys

import numpy as np
import pytest

from diffrep.app.cli import main

FAST = ["--max-steps", "3", "--timesteps", "10,100", "--rates", "0,0.4", "--quiet"]


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "demo" in out and "curve" in out


def test_bad_option_exits_with_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--timesteps", "ten"])
    assert exit_info.value.code == 2
    assert "comma-separated integers" in capsys.readouterr().err


def test_demo_quick_prints_the_table_and_saves_the_figure(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), *FAST]) == 0
    out = capsys.readouterr().out
    for expected in ("timestep", "sigma", "noise 40%", "best single t", "ensemble", "raw, same probe",
                     "PCA32, same probe"):
        assert expected in out
    assert (tmp_path / "demo_curve.png").stat().st_size > 10_000


def test_curve_on_an_npz_file(tmp_path, digits, capsys):
    X, y = digits
    np.savez(tmp_path / "data.npz", X=X[:200], y=y[:200])
    assert main(["curve", str(tmp_path / "data.npz"), "--image-shape", "1,8,8", "--out", str(tmp_path), *FAST]) == 0
    assert "UNet2DModel" in capsys.readouterr().out
    assert (tmp_path / "curve_curve.png").is_file()


def test_curve_on_a_csv_table_uses_the_mlp(tmp_path, table, capsys):
    X, y = table
    rows = ["a,b,c,d,e,f,target"] + [",".join(map(str, [*row, label])) for row, label in zip(X, y)]
    (tmp_path / "data.csv").write_text("\n".join(rows))
    args = ["curve", str(tmp_path / "data.csv"), "--label-column", "target", "--out", str(tmp_path), *FAST]
    assert main(args) == 0
    assert "MLPDenoiser" in capsys.readouterr().out


def test_curve_on_an_image_folder(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("cats", "dogs"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 255, size=(8, 8), dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(tmp_path / "images" / label / f"{i}.png")
    assert main(["curve", str(tmp_path / "images"), "--out", str(tmp_path), *FAST]) == 0
    assert "UNet2DModel" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["curve", "no/such/file.npz"], "no such file"),
        (["curve", "{tmp}/data.txt"], "unsupported format"),
        (["curve", "{tmp}/bad.csv", "--label-column", "y"], "no label column"),
        (["demo", "--timesteps", "5000"], "timesteps must lie in"),
    ],
)
def test_user_errors_exit_1_with_a_message(tmp_path, capsys, args, message):
    (tmp_path / "data.txt").write_text("1 2 3")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4\n")
    args = [arg.format(tmp=tmp_path) for arg in args]
    assert main(args + ["--max-steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "diffrep", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "diffrep" in done.stdout
