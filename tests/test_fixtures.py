"""The shared fixtures of conftest.py catch what they promise to, so tests built on them can fail."""

import pytest

from diffrep._engine import training


def test_training_forbidden_catches_a_training_started_outside_the_featurizer(training_forbidden):
    with pytest.raises(AssertionError, match="trained where no training may happen"):
        training.train_denoiser(None, None, None, None)


def test_trainings_counts_a_training_started_outside_the_featurizer(trainings):
    with pytest.raises(TypeError):  # not a training's arguments: only the count matters here
        training.train_denoiser(None, None, None, None)
    assert trainings == [1]

