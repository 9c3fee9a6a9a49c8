"""Ctrl-C during fit: training stops, the weights learned so far are kept, and the interrupt propagates.

A ``KeyboardInterrupt`` is injected from inside the training loop, where a
real Ctrl-C lands: the ``call``-th loss computation raises it.
"""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.utils.validation import check_is_fitted

from diffrep import DiffusionFeaturizer
from diffrep._engine import training
from diffrep._engine.training_config import TrainingConfig
from diffrep._engine.extraction import FeatureExtractor
from diffrep.schedules import NoiseSchedule

from .helpers import TINY, assert_same_weights, interrupt_training_at

SETTINGS = dict(TINY, denoiser="mlp", max_steps=10)


@pytest.mark.parametrize("call", [1, 7])
def test_ctrl_c_keeps_the_weights_of_the_completed_steps_then_propagates(table, monkeypatch, call):
    X, _ = table
    done = call - 1
    expected = DiffusionFeaturizer(**dict(SETTINGS, max_steps=done)).fit(X) if done else None
    interrupt_training_at(monkeypatch, call)

    featurizer = DiffusionFeaturizer(**SETTINGS)
    with pytest.raises(training.TrainingInterrupted, match=rf"interrupted \(KeyboardInterrupt\) after {done} of 10"):
        featurizer.fit(X)

    assert featurizer.n_steps_ == done == len(featurizer.loss_curve_)
    check_is_fitted(featurizer)  # usable with what was learned
    features = featurizer.transform(X)
    assert features.shape[0] == X.shape[0] and np.isfinite(features).all()
    if expected is not None:  # the EMA weights are those of a run of exactly `done` steps
        assert_same_weights(featurizer.network_, expected.network_)
        assert featurizer.loss_curve_ == expected.loss_curve_


def test_ctrl_c_stops_a_cross_validation_instead_of_scoring_partial_trainings(table, monkeypatch):
    """The interrupt reaches the caller: no further fold trains or is scored."""
    X, y = table
    calls = interrupt_training_at(monkeypatch, 3)
    pipeline = make_pipeline(DiffusionFeaturizer(**SETTINGS), LogisticRegression())
    with pytest.raises(KeyboardInterrupt):
        cross_val_score(pipeline, X, y, cv=3)
    assert len(calls) == 3  # the first fold's third step, then nothing


def test_a_second_ctrl_c_while_finishing_fit_aborts_it(table, monkeypatch):
    """A Ctrl-C while fit computes ``feature_info_`` leaves no half-updated estimator behind."""
    X, _ = table
    featurizer = DiffusionFeaturizer(**SETTINGS).fit(X)
    interrupt_training_at(monkeypatch, 4)

    def second_ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(FeatureExtractor, "describe", second_ctrl_c)
    with pytest.raises(KeyboardInterrupt) as caught:
        featurizer.fit(X)
    assert not isinstance(caught.value, training.TrainingInterrupted)
    with pytest.raises(NotFittedError):
        featurizer.transform(X)


def test_an_interrupted_training_is_not_cached(table, monkeypatch, tmp_path):
    """With ``memory=``, the partial denoiser must not be served to later fits as if complete."""
    X, _ = table
    settings = dict(SETTINGS, memory=tmp_path)
    interrupt_training_at(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt, match="after 4 of 10 steps"):
        DiffusionFeaturizer(**settings).fit(X)
    interrupt_training_at(monkeypatch)
    assert DiffusionFeaturizer(**settings).fit(X).n_steps_ == 10
    calls = interrupt_training_at(monkeypatch)
    assert DiffusionFeaturizer(**settings).fit(X).n_steps_ == 10
    assert not calls  # the finished training is cached


def test_train_denoiser_raises_a_keyboard_interrupt_carrying_the_partial_result(monkeypatch):
    from diffrep.denoisers.mlp import MLPDenoiser

    interrupt_training_at(monkeypatch, 3)
    data = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    config = TrainingConfig(max_steps=5, batch_size=8, learning_rate=1e-3, ema_decay=0.9, seed=0)
    with pytest.raises(KeyboardInterrupt) as caught:
        training.train_denoiser(
            MLPDenoiser(n_features=4, width=8), data, NoiseSchedule(), config, device=torch.device("cpu")
        )
    assert isinstance(caught.value, training.TrainingInterrupted)
    assert len(caught.value.loss_curve) == 2
    assert not caught.value.network.training
