"""Shared fixtures: small data and featurizer settings that train in a fraction of a second."""

import importlib
import pkgutil
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_diabetes, load_digits
from sklearn.frozen import FrozenEstimator

import diffrep
from diffrep._engine import training

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


@pytest.fixture(scope="session")
def diabetes():
    """The first 150 rows of sklearn's diabetes regression table (integer-valued targets)."""
    X, y = load_diabetes(return_X_y=True)
    return X[:150], y[:150]


@pytest.fixture(scope="module")
def frozen(digits_small):
    """One tiny image featurizer, trained once on the small digits and frozen."""
    from diffrep import DiffusionFeaturizer

    return FrozenEstimator(DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(digits_small[0]))


@pytest.fixture(scope="session")
def training_lookups():
    """Every ``(module, name)`` of diffrep through which the training function can be reached.

    Patching only ``diffrep.featurizer.train_denoiser`` would miss a training
    started from any other module (or from the training module itself), and a
    test asserting "no training happened" would then pass without checking
    anything. So every diffrep module is imported and searched for the function.
    """
    for module in pkgutil.walk_packages(diffrep.__path__, "diffrep."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
    real = training.train_denoiser
    lookups = [
        (module, name)
        for module_name, module in list(sys.modules.items())
        if module_name == "diffrep" or module_name.startswith("diffrep.")
        for name, value in list(vars(module).items())
        if value is real
    ]
    assert (training, "train_denoiser") in lookups
    return lookups


def _replace_training(monkeypatch, lookups, replacement):
    for module, name in lookups:
        monkeypatch.setattr(module, name, replacement)


@pytest.fixture
def trainings(monkeypatch, training_lookups):
    """Counts denoiser trainings, wherever they are started from (the real training still runs)."""
    calls = []
    real = training.train_denoiser

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    _replace_training(monkeypatch, training_lookups, counting)
    return calls


@pytest.fixture
def skipped_trainings(monkeypatch, training_lookups):
    """Counts denoiser trainings and skips them: each network stays as initialized, with no losses."""
    calls = []

    def skipped(network, *args, **kwargs):
        calls.append(1)
        return network, []

    _replace_training(monkeypatch, training_lookups, skipped)
    return calls


@pytest.fixture
def training_forbidden(monkeypatch, training_lookups):
    """Fails the test as soon as a denoiser training starts, wherever it is started from."""

    def fail(*args, **kwargs):
        raise AssertionError("a denoiser was trained where no training may happen")

    _replace_training(monkeypatch, training_lookups, fail)
