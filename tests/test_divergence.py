"""A diverging training stops at the first non-finite loss and leaves the featurizer unfitted.

Decision: a fit whose loss becomes NaN or infinite raises ``FloatingPointError``
(naming the step and suggesting a lower learning rate) and the featurizer is
unfitted afterwards, also when it was fitted before (no mix of old weights and
new scaling). Checkpoints written before the divergence stay on disk, but a fit
with a lower ``learning_rate`` is another run: it starts from step 0.
"""

import re

import pytest
from sklearn.exceptions import NotFittedError

from diffrep import DiffusionFeaturizer

from .conftest import TINY
from .test_interrupt import assert_same_weights, interrupt_training_at

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
