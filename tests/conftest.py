"""Shared fixtures: small data and featurizer settings that train in a fraction of a second."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import diffrep.featurizer

from .helpers import TINY

# One intra-op thread: the tiny test models gain nothing from more, and on a
# 2-core machine shared with sklearn's BLAS, more threads oversubscribe it.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits():
    """sklearn digits: 8x8 images flattened to 64 features, labels 0-9."""
    X, y = load_digits(return_X_y=True)
    return X, y


@pytest.fixture(scope="session")
def digits_small(digits):
    """The first 120 digits."""
    X, y = digits
    return X[:120], y[:120]


@pytest.fixture(scope="module")
def images(digits_small):
    """40 digit images, flattened to 64 columns."""
    return digits_small[0][:40]


@pytest.fixture(scope="module")
def fitted(images):
    """A tiny image featurizer capturing a module and the clean estimate at two timesteps."""
    from diffrep import DiffusionFeaturizer

    feat = DiffusionFeaturizer(timesteps=(10, 50), layers=("mid_block", "x0"), image_shape=(1, 8, 8), **TINY)
    return feat.fit(images)


@pytest.fixture(scope="session")
def table():
    """A small tabular classification problem."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture
def trainings(monkeypatch):
    """Counts denoiser trainings (the real training still runs)."""
    calls = []
    real = diffrep.featurizer.train_denoiser

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(diffrep.featurizer, "train_denoiser", counting)
    return calls


