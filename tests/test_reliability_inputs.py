"""Inputs that used to give a bare KeyError, a torch error after training, or NaN features without a word."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from diffrep import DiffusionFeaturizer, NoiseEnsembleClassifier

from .helpers import TINY


def test_an_unfitted_frozen_featurizer_in_the_ensemble_is_reported_as_unfitted(table):
    X, y = table
    ensemble = NoiseEnsembleClassifier(featurizer=FrozenEstimator(DiffusionFeaturizer(**TINY)), timesteps=(10, 20))
    with pytest.raises(NotFittedError, match="DiffusionFeaturizer instance is not fitted"):
        ensemble.fit(X, y)


@pytest.mark.parametrize("image_shape", [(1, 1, 1), (3, 1, 1)])
def test_single_pixel_images_are_refused_before_training(image_shape, training_forbidden):
    X = np.random.default_rng(0).normal(size=(10, int(np.prod(image_shape))))
    with pytest.raises(ValueError, match=rf"denoiser='unet' needs images of at least 2 pixels.*{image_shape}"):
        DiffusionFeaturizer(image_shape=image_shape, **TINY).fit(X)


def test_features_that_overflow_on_inputs_far_outside_the_training_range_are_refused(table):
    X, _ = table
    featurizer = DiffusionFeaturizer(**dict(TINY, denoiser="mlp")).fit(X)
    far = X[:5].copy()
    far[3] *= 1e30
    assert np.isfinite(featurizer.transform(far[:3])).all()
    with pytest.raises(ValueError, match=r"features of 1 of 5 samples \(e\.g\. row 3 of X\) are NaN or infinite"):
        featurizer.transform(far)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")
def test_mps_without_mps_is_a_clear_parameter_error(table):
    with pytest.raises(ValueError, match=r"device='mps' was requested but Apple MPS is not available here"):
        DiffusionFeaturizer(**dict(TINY, denoiser="mlp", device="mps")).fit(table[0])
