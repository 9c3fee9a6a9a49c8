"""Helpers shared by the test modules: tiny settings, reference computations and user stories to repeat.

Not a test module: tests import from here, never from each other.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from diffrep import DiffusionFeaturizer
from diffrep._engine import training
from diffrep._engine.noise import gaussian_noise, row_hashes, row_keys

# A featurizer configuration small enough for 2 CPU cores.
TINY = dict(model_width=8, max_steps=3, batch_size=64, device="cpu", random_state=0)


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


def interrupt_training_at(monkeypatch, call=None):
    """Make the ``call``-th training step raise ``KeyboardInterrupt`` (never when None).

    Returns
    -------
    calls : list
        Grows by one item per training step started, so tests can count steps.
    """
    real_loss = training.denoising_loss
    calls = []

    def loss(*args, **kwargs):
        calls.append(None)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(training, "denoising_loss", loss)
    return calls


# float32's machine epsilon: the spacing of float32 numbers just above 1.
FLOAT32_EPS = float(np.finfo(np.float32).eps)
# Features of a sample are computed from bitwise identical noise whatever the batch, order or
# subset it comes in, but the network's convolutions and matrix products run in float32 through
# kernels that torch picks by the batch's shape, and they sum in different orders. Each layer can
# then round differently by a few units in the last place, and the network compounds that:
# benchmarks/batch_invariance.py measured at most 7.9 eps of the largest feature (4.4e-6 on
# features of magnitude 5; 11 eps in a 300-sample run). 64 eps leaves room for other CPUs'
# kernels while staying about 10,000 times below what a change of the noise does to a feature.
FLOAT32_ROUNDING_EPS = 64


def assert_equal_to_float32_rounding(actual, expected):
    """``actual`` equals ``expected`` up to the float32 rounding of batch-dependent kernels.

    The tolerance is ``FLOAT32_ROUNDING_EPS`` float32 epsilons of the largest
    ``|expected|`` (see the comment above it), applied to every element.
    """
    expected = np.asarray(expected)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(actual, expected, rtol=0, atol=FLOAT32_ROUNDING_EPS * FLOAT32_EPS * scale)


def assert_same_weights(network, other):
    first, second = network.state_dict(), other.state_dict()
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


class _WritesMarker:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


TINY_NO_SEED = {key: value for key, value in TINY.items() if key != "random_state"}


EXPECTED_FAILURES = {
    "check_methods_subset_invariance": (
        "float32 denoiser features of a sample differ by a few float32 epsilons with the batch size "
        "(kernel choice, see assert_equal_to_float32_rounding); the probes' logits amplify that to "
        "~1e-6, above the check's 1e-7 tolerance. "
        "Predictions are unaffected."
    ),
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight weights the probes and the selection scores, but the denoiser is trained "
        "on the rows of X without labels or weights, so a repeated row is not the same as a weight "
        "of 2 (and the cross-validation folds differ too)."
    ),
}


TIMESTEPS = [10, 50, 100, 200, 300, 400, 500, 600]


TABLE = dict(TINY, denoiser="mlp")


def grid_search(X, y, memory, timesteps=TIMESTEPS, n_jobs=1):
    """The user's search: featurizer + logistic regression, one candidate per timestep, 3 folds.

    No refit, so that only the candidates and folds train (a refit trains once more, on all of ``X``).
    """
    pipeline = Pipeline(
        [("feat", DiffusionFeaturizer(memory=memory, **TABLE)), ("clf", LogisticRegression(max_iter=200))]
    )
    return GridSearchCV(pipeline, {"feat__timesteps": timesteps}, cv=3, refit=False, n_jobs=n_jobs).fit(X, y)


def assert_same_scores(search, reference):
    """Every per-split and mean test score is identical."""
    keys = [key for key in reference.cv_results_ if key.endswith("test_score")]
    assert keys
    for key in keys:
        np.testing.assert_array_equal(search.cv_results_[key], reference.cv_results_[key], err_msg=key)


def cached_entries(location):
    """Paths of the trained denoisers stored under a cache directory."""
    return sorted(str(path) for path in location.rglob("*.safetensors"))
