"""Checkpoints: written atomically, verified, resumed exactly, never resumed for other data or settings."""

import errno
import io
import os
import stat

import numpy as np
import pytest
import torch

from diffrep.exceptions import CheckpointWarning
from diffrep import DiffusionFeaturizer
from diffrep._engine import checkpoints
from diffrep._engine import files as _files

from .helpers import TINY, _WritesMarker, assert_same_weights, interrupt_training_at

SETTINGS = dict(TINY, denoiser="mlp", max_steps=10, checkpoint_every=4)


def only_checkpoint(directory):
    (path,) = directory.glob("diffrep-*.pt")
    return path


def saved_steps(path):
    return len(checkpoints.read_checkpoint(path)["loss_curve"])


def write_sealed(path, state):
    """Write ``state`` as a checkpoint with a valid header and checksum, as a forger would."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    path.write_bytes(_files.sealed(checkpoints._MAGIC, buffer.getvalue()))


def test_a_longer_run_continues_a_shorter_one_and_ends_like_a_fresh_long_run(table, monkeypatch, tmp_path):
    """Warm start: "train longer" (or a halving search over max_steps) reuses the steps already done."""
    X = table[0]
    reference = DiffusionFeaturizer(**SETTINGS).fit(X)  # 10 steps from scratch
    DiffusionFeaturizer(**dict(SETTINGS, max_steps=6), checkpoint_dir=tmp_path).fit(X)
    assert saved_steps(only_checkpoint(tmp_path)) == 6

    calls = interrupt_training_at(monkeypatch)  # counts the steps run, interrupts none
    longer = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert len(calls) == 4  # steps 6-9 only
    assert longer.loss_curve_ == reference.loss_curve_
    assert_same_weights(longer.network_, reference.network_)
    np.testing.assert_array_equal(longer.transform(X), reference.transform(X))


def test_a_shorter_run_does_not_resume_a_longer_runs_checkpoint(table, tmp_path):
    X = table[0]
    DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    reference = DiffusionFeaturizer(**dict(SETTINGS, max_steps=6)).fit(X)
    with pytest.warns(CheckpointWarning, match=r"further along \(10 steps\) than this run of max_steps=6"):
        shorter = DiffusionFeaturizer(**dict(SETTINGS, max_steps=6), checkpoint_dir=tmp_path).fit(X)
    assert shorter.loss_curve_ == reference.loss_curve_
    assert_same_weights(shorter.network_, reference.network_)


@pytest.mark.parametrize("denoiser, data", [("unet", "digits_small"), ("mlp", "table")])
def test_resuming_after_ctrl_c_ends_with_the_weights_of_an_uninterrupted_fit(
    denoiser, data, request, monkeypatch, tmp_path
):
    X = request.getfixturevalue(data)[0]
    settings = dict(SETTINGS, denoiser=denoiser)
    if denoiser == "unet":
        settings["image_shape"] = (1, 8, 8)
    reference = DiffusionFeaturizer(**settings).fit(X)

    interrupt_training_at(monkeypatch, 7)  # Ctrl-C during step 6: steps 0-5 are done
    with pytest.raises(KeyboardInterrupt, match="after 6 of 10 steps.*resumes from the checkpoint"):
        DiffusionFeaturizer(**settings, checkpoint_dir=tmp_path).fit(X)
    assert saved_steps(only_checkpoint(tmp_path)) == 4

    calls = interrupt_training_at(monkeypatch)
    resumed = DiffusionFeaturizer(**settings, checkpoint_dir=tmp_path).fit(X)
    assert len(calls) == 6  # steps 4-9 only
    assert resumed.n_steps_ == 10
    assert resumed.loss_curve_ == reference.loss_curve_
    assert_same_weights(resumed.network_, reference.network_)
    np.testing.assert_array_equal(resumed.transform(X), reference.transform(X))


def test_a_finished_training_is_checkpointed_and_not_repeated(table, monkeypatch, tmp_path):
    X, _ = table
    first = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert saved_steps(only_checkpoint(tmp_path)) == 10  # the last step is always saved
    calls = interrupt_training_at(monkeypatch)
    again = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert not calls
    assert again.n_steps_ == 10 and again.loss_curve_ == first.loss_curve_
    assert_same_weights(again.network_, first.network_)


@pytest.mark.parametrize(
    "change",
    [
        dict(X="reversed"),
        dict(learning_rate=2e-3),
        dict(batch_size=32),
        dict(ema_decay=0.99),
        dict(random_state=1),
        dict(model_width=16),
        dict(scaling="minmax"),
    ],
    ids=lambda change: next(iter(change)),
)
def test_other_data_or_settings_never_resume_a_checkpoint(table, monkeypatch, tmp_path, change):
    X, _ = table
    DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    first = only_checkpoint(tmp_path)
    first_bytes = first.read_bytes()

    change = dict(change)
    X_other = X[::-1] if change.pop("X", None) else X
    settings = dict(SETTINGS, **change)
    fresh = DiffusionFeaturizer(**settings).fit(X_other)
    calls = interrupt_training_at(monkeypatch)
    other = DiffusionFeaturizer(**settings, checkpoint_dir=tmp_path).fit(X_other)

    assert len(calls) == 10  # trained from step 0 ...
    assert_same_weights(other.network_, fresh.network_)  # ... to what a fit without checkpoints gives
    assert first.read_bytes() == first_bytes  # and the other run's checkpoint is left alone
    assert len(list(tmp_path.glob("diffrep-*.pt"))) == 2


def test_a_checkpoint_of_another_run_under_this_runs_name_is_ignored(table, monkeypatch, tmp_path):
    """The fingerprint stored inside is checked, not only the file name."""
    X, _ = table
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    fresh = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=mine).fit(X)
    DiffusionFeaturizer(**dict(SETTINGS, learning_rate=5e-3), checkpoint_dir=theirs).fit(X)
    only_checkpoint(theirs).replace(only_checkpoint(mine))

    calls = interrupt_training_at(monkeypatch)
    with pytest.warns(CheckpointWarning, match="written for other training data or settings"):
        refit = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=mine).fit(X)
    assert len(calls) == 10
    assert_same_weights(refit.network_, fresh.network_)


def fail_file_syncs_after(monkeypatch, count, failure):
    """Make every fsync of a file after the first ``count`` raise ``failure``: the data is written, not durable."""
    real_fsync = os.fsync
    synced = []

    def fsync(fd):
        if stat.S_ISREG(os.fstat(fd).st_mode):
            synced.append(None)
            if len(synced) > count:
                raise failure
        real_fsync(fd)

    monkeypatch.setattr(_files.os, "fsync", fsync)


def test_a_ctrl_c_while_writing_leaves_the_previous_checkpoint_intact(table, monkeypatch, tmp_path):
    X, _ = table
    reference = DiffusionFeaturizer(**SETTINGS).fit(X)
    fail_file_syncs_after(monkeypatch, 1, KeyboardInterrupt())  # the step-8 checkpoint is cut short
    with pytest.raises(KeyboardInterrupt, match="after 8 of 10 steps"):
        DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    monkeypatch.undo()

    assert os.listdir(tmp_path) == [only_checkpoint(tmp_path).name]  # no temporary file left over
    assert saved_steps(only_checkpoint(tmp_path)) == 4
    resumed = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert_same_weights(resumed.network_, reference.network_)


def test_a_full_disk_warns_naming_the_directory_and_training_goes_on(table, monkeypatch, tmp_path):
    """Decision: checkpointing stops with one warning; the fit finishes with the weights of an uninterrupted one."""
    X, _ = table
    reference = DiffusionFeaturizer(**SETTINGS).fit(X)
    fail_file_syncs_after(monkeypatch, 1, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    with pytest.warns(CheckpointWarning, match=rf"Cannot write training checkpoints to checkpoint_dir='{tmp_path}' "
                      rf"\({os.strerror(errno.ENOSPC)}\); training goes on without checkpoints") as caught:
        fitted = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert len(caught) == 1  # the step-10 checkpoint is not tried again
    assert fitted.n_steps_ == 10
    assert_same_weights(fitted.network_, reference.network_)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [only_checkpoint(tmp_path).name]
    assert saved_steps(only_checkpoint(tmp_path)) == 4


def test_stray_temporary_files_of_a_killed_write_are_removed_at_the_next_start(table, tmp_path):
    X, _ = table
    DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    path = only_checkpoint(tmp_path)
    stray = tmp_path / f".{path.name}.k1ll3d.tmp"  # what a process killed in the middle of a write leaves
    stray.write_bytes(b"\x00" * 100)
    other = tmp_path / ".another-file.pt.abc.tmp"  # another run's write in progress: not ours to remove
    other.write_bytes(b"")
    DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert not stray.exists()
    assert other.exists()


def _plant_pickle(path, marker):
    torch.save({"loss_curve": _WritesMarker(marker)}, path)


def _plant_sealed_pickle(path, marker):
    write_sealed(path, {"loss_curve": _WritesMarker(marker)})


def _truncate(path, marker):
    path.write_bytes(path.read_bytes()[:200])


def _flip_a_weight_byte(path, marker):
    data = bytearray(path.read_bytes())
    data[-2000] ^= 0x40  # inside the tensor data, near the end of the file
    path.write_bytes(bytes(data))


def _nan_ema(path, marker):
    state = checkpoints.read_checkpoint(path)
    next(iter(state["ema"].values())).fill_(float("nan"))
    write_sealed(path, state)


def _shorten_loss_curve(path, marker):
    state = checkpoints.read_checkpoint(path)
    state["loss_curve"] = state["loss_curve"][:6]
    write_sealed(path, state)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (_plant_pickle, "it is not in this format"),
        (_plant_sealed_pickle, "it holds objects other than tensors and plain containers, which could run code"),
        (_truncate, "its checksum does not match its content"),
        (_flip_a_weight_byte, "its checksum does not match its content"),
        (_nan_ema, "it holds NaN or infinite weights"),
        (_shorten_loss_curve, r"its loss curve has 6 steps but its optimizer ran \[10\]"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
def test_a_damaged_checkpoint_is_ignored_and_never_runs_code(table, monkeypatch, tmp_path, damage, reason):
    X, _ = table
    fresh = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    path = only_checkpoint(tmp_path)
    marker = tmp_path.parent / f"{tmp_path.name}-code-ran"
    damage(path, marker)

    calls = interrupt_training_at(monkeypatch)
    with pytest.warns(CheckpointWarning, match=f"Ignoring the checkpoint {path}: {reason}") as caught:
        refit = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert len(caught) == 1
    assert not marker.exists()
    assert len(calls) == 10  # trained from step 0 ...
    assert_same_weights(refit.network_, fresh.network_)  # ... to the weights of an undamaged fit
    assert saved_steps(path) == 10  # and the damaged file is replaced by a good one


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(checkpoint_dir=3), TypeError, "'checkpoint_dir' parameter .* 'str', .*'os.PathLike' or None"),
        (dict(checkpoint_every=0), ValueError, r"\'checkpoint_every\' parameter .* \[1, inf\)"),
        (dict(checkpoint_every=2.5), TypeError, "\'checkpoint_every\' parameter .* int"),
    ],
)
def test_invalid_checkpoint_parameters_are_rejected(table, params, error, message):
    with pytest.raises(error, match=message):
        DiffusionFeaturizer(**dict(SETTINGS, **params)).fit(table[0])


def test_a_checkpoint_dir_that_is_a_file_is_rejected_before_training(table, monkeypatch, tmp_path):
    path = tmp_path / "a-file"
    path.write_text("not a directory")
    calls = interrupt_training_at(monkeypatch)
    with pytest.raises(ValueError, match="exists and is not a directory"):
        DiffusionFeaturizer(**SETTINGS, checkpoint_dir=path).fit(table[0])
    assert not calls


def test_a_halving_search_over_max_steps_continues_each_folds_training(table, monkeypatch, tmp_path):
    """Rounds with more max_steps resume the previous round's checkpoint instead of starting over."""
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import HalvingGridSearchCV
    from sklearn.pipeline import make_pipeline

    X, y = table
    featurizer = DiffusionFeaturizer(**dict(SETTINGS, checkpoint_every=2), checkpoint_dir=tmp_path)
    search = HalvingGridSearchCV(
        make_pipeline(featurizer, LogisticRegression()),
        {"diffusionfeaturizer__timesteps": [(5,), (10,), (20,), (40,)]},
        resource="diffusionfeaturizer__max_steps", min_resources=2, max_resources=8, factor=2, cv=2,
    )
    steps = interrupt_training_at(monkeypatch)  # counts the steps run
    search.fit(X, y)
    assert search.n_resources_ == [2, 4, 8]
    # per fold the rounds add up to one 8-step training; the refit on all data is a third trajectory
    assert len(steps) == 3 * 8
