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
    assert "600 samples: 450 to train the denoiser and the probes, 150 to test" in out
    assert "CV 40% (sd)" in out and "smoke test" in out


def test_curve_on_an_npz_file(tmp_path, digits, capsys):
    X, y = digits
    np.savez(tmp_path / "data.npz", X=X[:200], y=y[:200])
    assert main(["curve", str(tmp_path / "data.npz"), "--image-shape", "1,8,8", "--out", str(tmp_path), *FAST]) == 0
    assert "UNet2DModel" in capsys.readouterr().out
    assert (tmp_path / "data_curve.png").is_file()  # named after the data, so runs on two files keep both


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
        (["curve", "{tmp}/unlabelled"], "no labels found"),
        (["curve", "{tmp}/broken"], "not_an_image.png"),
    ],
)
def test_user_errors_exit_1_with_a_message(tmp_path, capsys, args, message):
    (tmp_path / "data.txt").write_text("1 2 3")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n3,4\n")
    from PIL import Image

    (tmp_path / "unlabelled").mkdir()
    (tmp_path / "broken" / "cats").mkdir(parents=True)
    (tmp_path / "broken" / "cats" / "not_an_image.png").write_text("hello")
    for i in range(3):
        Image.fromarray(np.full((8, 8), 40 * i, dtype=np.uint8)).save(tmp_path / "unlabelled" / f"{i}.png")
    args = [arg.format(tmp=tmp_path) for arg in args]
    assert main(args + ["--max-steps", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run([sys.executable, "-m", "diffrep", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and "diffrep" in done.stdout


@pytest.mark.parametrize("n_samples", [7, 100, 1797, 2001])
def test_the_announced_test_size_is_the_split_size(n_samples):
    from sklearn.model_selection import train_test_split

    from diffrep.app.demo import TEST_FRACTION, held_out_count

    y = np.arange(n_samples) % 2
    test = train_test_split(y, test_size=TEST_FRACTION, stratify=y, random_state=0)[1]
    assert held_out_count(n_samples) == len(test)


@pytest.mark.parametrize("load, affinity, expected", [(0.0, 2, 2), (0.2, 2, 2), (1.0, 2, 1), (1.3, 2, 1),
                                                      (3.0, 2, 1), (2.0, 16, 14)])
def test_auto_threads_leave_the_busy_cores_alone(monkeypatch, load, affinity, expected):
    from diffrep.app import threads

    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load, load, load))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(affinity)), raising=False)
    assert threads.choose_threads("auto") == expected
    assert threads.choose_threads(3) == 3


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "many"])
def test_a_bad_thread_count_is_refused(bad):
    from diffrep.app.threads import choose_threads

    with pytest.raises(ValueError, match="threads must be"):
        choose_threads(bad)


def test_threads_option_sets_torch_threads_for_the_run_and_restores_them(monkeypatch, tmp_path):
    import torch

    from diffrep.app import demo

    from threadpoolctl import threadpool_info, threadpool_limits

    seen = []

    def fake_run(*args, **kwargs):
        seen.append(torch.get_num_threads())
        blas_pools.extend(pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas")
        raise ValueError("stop here")

    blas_pools = []

    monkeypatch.setattr(demo, "run", fake_run)
    before = torch.get_num_threads()
    with threadpool_limits(limits=2, user_api="blas"):  # as on a machine whose BLAS takes every core
        assert main(["demo", "--threads", "3", "--out", str(tmp_path), *FAST]) == 1
    assert seen == [3] and torch.get_num_threads() == before
    assert blas_pools and set(blas_pools) == {1}  # numpy's BLAS (the probes' solvers): one thread, measured faster
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--threads", "0"])
    assert exit_info.value.code == 2


@pytest.mark.parametrize("quiet", [True, False])
def test_quiet_silences_the_probes_convergence_warnings(monkeypatch, tmp_path, quiet):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    from diffrep.app import demo

    def fake_run(*args, **kwargs):
        warnings.warn("lbfgs failed to converge", ConvergenceWarning)
        raise ValueError("stop here")

    monkeypatch.setattr(demo, "run", fake_run)
    options = ["--out", str(tmp_path), "--max-steps", "1"] + (["--quiet"] if quiet else [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["demo", *options]) == 1
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught) is not quiet


def test_a_second_run_announces_the_cache_hit(tmp_path, digits, capsys):
    X, y = digits
    np.savez(tmp_path / "data.npz", X=X[:100], y=y[:100])
    # The announcement is all this test is about: one timestep and clean labels keep the two runs short.
    args = ["curve", str(tmp_path / "data.npz"), "--image-shape", "1,8,8", "--out", str(tmp_path),
            "--memory", str(tmp_path / "cache"), *FAST, "--timesteps", "10", "--rates", "0"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    second = capsys.readouterr().out
    assert "reused from the cache" not in first
    assert f"3 training steps reused from the cache {tmp_path / 'cache'}" in second
