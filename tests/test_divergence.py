"""A diverging training stops at the first non-finite loss or weights and leaves the featurizer unfitted.

Decision: a fit whose loss or weights become NaN or infinite, or whose trained
network's outputs overflow after the last step, raises ``FloatingPointError``
(naming the step and suggesting a lower learning rate) and the featurizer is
unfitted afterwards, also when it was fitted before (no mix of old weights and
new scaling). Such a network is never checkpointed nor cached. Checkpoints
written before the divergence stay on disk, but a fit with a lower
``learning_rate`` is another run: it starts from step 0.
"""

import re

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from diffrep import DiffusionFeaturizer
from diffrep._engine import checkpoints, training

from .helpers import TINY, assert_same_weights, interrupt_training_at

SETTINGS = dict(TINY, denoiser="mlp", max_steps=10)
DIVERGING = dict(SETTINGS, learning_rate=1e6)
MESSAGE = (
    r"The denoising loss became (nan|inf|-inf) at training step (\d+); "
    r"try a lower learning_rate \(now 1000000.0\)"
)


def test_a_diverging_loss_stops_training_at_once_with_a_clear_error(table, monkeypatch):
    X, _ = table
    calls = interrupt_training_at(monkeypatch)
    featurizer = DiffusionFeaturizer(**DIVERGING)
    with pytest.raises(FloatingPointError, match=MESSAGE) as caught:
        featurizer.fit(X)
    step = int(re.search(MESSAGE, str(caught.value)).group(2))
    assert len(calls) == step + 1 < 10  # no step ran after the bad one
    with pytest.raises(NotFittedError):
        featurizer.transform(X)


def test_a_diverging_refit_does_not_leave_the_previous_model_behind(table):
    X, _ = table
    featurizer = DiffusionFeaturizer(**SETTINGS).fit(X)
    featurizer.set_params(learning_rate=1e6)
    with pytest.raises(FloatingPointError, match=MESSAGE):
        featurizer.fit(X * 10.0)
    with pytest.raises(NotFittedError):
        featurizer.transform(X)


def test_checkpoints_of_a_diverged_run_are_kept_but_a_lower_learning_rate_starts_afresh(
    table, monkeypatch, tmp_path
):
    X, _ = table
    with pytest.raises(FloatingPointError, match=MESSAGE):
        DiffusionFeaturizer(**DIVERGING, checkpoint_dir=tmp_path, checkpoint_every=1).fit(X)
    kept = list(tmp_path.glob("diffrep-*.pt"))
    assert len(kept) == 1

    fresh = DiffusionFeaturizer(**SETTINGS).fit(X)
    calls = interrupt_training_at(monkeypatch)
    refit = DiffusionFeaturizer(**SETTINGS, checkpoint_dir=tmp_path, checkpoint_every=1).fit(X)
    assert len(calls) == 10
    assert_same_weights(refit.network_, fresh.network_)
    assert kept[0].exists()


def test_finite_weights_that_overflow_on_the_last_step_are_caught_and_not_cached(table, tmp_path):
    """One step at a huge learning rate: the loss was finite, the weights are finite, the outputs are not."""
    X, _ = table
    featurizer = DiffusionFeaturizer(**dict(DIVERGING, max_steps=1), memory=tmp_path)
    with pytest.raises(FloatingPointError, match=r"outputs on the training data overflow.*lower learning_rate"):
        featurizer.fit(X)
    with pytest.raises(NotFittedError):
        featurizer.transform(X)
    assert not list(tmp_path.rglob("*.safetensors"))  # nothing cached


def test_non_finite_weights_are_never_checkpointed_cached_or_kept(table, monkeypatch, tmp_path):
    X, _ = table
    real_update = training.ExponentialMovingAverage.update

    def update_then_break(self, network, step):
        real_update(self, network, step)
        if step == 2:  # the average goes bad while the loss still looks fine
            next(self.network.parameters()).data.fill_(float("inf"))

    monkeypatch.setattr(training.ExponentialMovingAverage, "update", update_then_break)
    checkpointed = dict(SETTINGS, checkpoint_every=1, checkpoint_dir=tmp_path / "checkpoints")
    with pytest.raises(FloatingPointError, match=r"weights became NaN or infinite \(e\.g\. \S+\) at training step 2"):
        DiffusionFeaturizer(**checkpointed, memory=tmp_path / "cache").fit(X)
    (path,) = (tmp_path / "checkpoints").glob("diffrep-*.pt")
    assert len(checkpoints.read_checkpoint(path)["loss_curve"]) == 2  # steps 0 and 1, not the bad one
    assert not list((tmp_path / "cache").rglob("*.safetensors"))


@pytest.mark.parametrize("learning_rate", [1e39, float(np.finfo(np.float32).max) * 2])
def test_a_learning_rate_beyond_float32_is_rejected_before_training(table, monkeypatch, learning_rate):
    calls = interrupt_training_at(monkeypatch)
    with pytest.raises(ValueError, match=r"\'learning_rate\' parameter .* range \(0\.0, 3\.40\d*e\+38\]"):
        DiffusionFeaturizer(**dict(SETTINGS, learning_rate=learning_rate)).fit(table[0])
    assert not calls
