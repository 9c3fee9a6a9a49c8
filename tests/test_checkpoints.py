"""Checkpoints: written atomically, resumed exactly, never resumed for other data or settings."""

import os

import numpy as np
import pytest
import torch

from diffrep import DiffusionFeaturizer, checkpoints

from .conftest import TINY
from .test_interrupt import assert_same_weights, interrupt_training_at

SETTINGS = dict(TINY, denoiser="mlp", max_steps=10, checkpoint_every=4)


def only_checkpoint(directory):
    (path,) = directory.glob("diffrep-*.pt")
    return path


def saved_steps(path):
    return len(torch.load(path, weights_only=True)["loss_curve"])


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
    with pytest.warns(UserWarning, match="after 6 of 10 steps.*resumes from the checkpoint"):
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
    with pytest.warns(UserWarning, match="written for other training data or settings"):
        refit = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=mine).fit(X)
    assert len(calls) == 10
    assert_same_weights(refit.network_, fresh.network_)


@pytest.mark.parametrize("failure", [OSError("No space left on device"), KeyboardInterrupt()])
def test_a_crash_while_writing_leaves_the_previous_checkpoint_intact(table, monkeypatch, tmp_path, failure):
    X, _ = table
    reference = DiffusionFeaturizer(**SETTINGS).fit(X)
    real_save = torch.save
    saves = []

    def crash_on_second_save(obj, file):
        saves.append(None)
        if len(saves) == 2:  # the step-8 checkpoint: half written, then the crash
            file.write(b"\x00" * 100)
            raise failure
        real_save(obj, file)

    monkeypatch.setattr(checkpoints.torch, "save", crash_on_second_save)
    with pytest.warns(UserWarning) if isinstance(failure, KeyboardInterrupt) else pytest.raises(OSError):
        DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    monkeypatch.setattr(checkpoints.torch, "save", real_save)

    assert os.listdir(tmp_path) == [only_checkpoint(tmp_path).name]  # no temporary file left over
    assert saved_steps(only_checkpoint(tmp_path)) == 4
    resumed = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert_same_weights(resumed.network_, reference.network_)


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("content", ["pickle", "truncated"])
def test_an_unreadable_checkpoint_is_ignored_and_never_runs_code(table, monkeypatch, tmp_path, content):
    X, _ = table
    fresh = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    path = only_checkpoint(tmp_path)
    marker = tmp_path.parent / f"{tmp_path.name}-code-ran"
    if content == "pickle":
        torch.save({"loss_curve": _WritesMarker(marker)}, path)
    else:
        path.write_bytes(path.read_bytes()[:200])

    calls = interrupt_training_at(monkeypatch)
    with pytest.warns(UserWarning, match=f"Ignoring the checkpoint {path}: it cannot be read safely"):
        refit = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path).fit(X)
    assert not marker.exists()
    assert len(calls) == 10
    assert_same_weights(refit.network_, fresh.network_)
    assert saved_steps(path) == 10  # replaced by a good one


@pytest.mark.parametrize(
    "params, error, message",
    [
        (dict(checkpoint_dir=3), TypeError, "checkpoint_dir must be None or a directory path"),
        (dict(checkpoint_every=0), ValueError, "checkpoint_every must be >= 1"),
        (dict(checkpoint_every=2.5), TypeError, "checkpoint_every must be an integer"),
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
