"""Shared fixtures: small data and featurizer settings that train in a fraction of a second."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import diffrep.featurizer
from diffrep._engine.noise import gaussian_noise, row_hashes, row_keys

# One intra-op thread: the tiny test models gain nothing from more, and on a
# 2-core machine shared with sklearn's BLAS, more threads oversubscribe it.
torch.set_num_threads(1)

# A featurizer configuration small enough for 2 CPU cores.
TINY = dict(model_width=8, max_steps=3, batch_size=64, device="cpu", random_state=0)


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


def scaled_samples(featurizer, X):
    """``X`` scaled as the fitted featurizer scales it, shaped ``(n, *sample_shape_)``."""
    return featurizer.scaler_.transform(np.asarray(X, dtype=float)).reshape(-1, *featurizer.sample_shape_)


def extraction_noise(featurizer, X, timestep, draw=0):
    """The noise a fitted featurizer adds to each sample of ``X`` at one timestep and draw.

    Computed the slow, unbatched way from :mod:`diffrep._engine.noise`: the reference
    that batched extraction must reproduce.
    """
    x0 = torch.from_numpy(scaled_samples(featurizer, X))
    rows = len(x0)
    keys = row_keys(
        row_hashes(x0),
        torch.full((rows,), int(timestep), dtype=torch.long),
        torch.full((rows,), int(draw), dtype=torch.long),
        featurizer.noise_seed_,
    )
    return gaussian_noise(keys, featurizer.sample_shape_)
