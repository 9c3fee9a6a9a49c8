"""Memory pressure: an out-of-memory error during transform halves the batch and retries.

No GPU is needed: the denoiser's forward raises the error a CUDA (or MPS)
device would raise whenever a batch has more input rows than ``limit``.
"""

import re

import numpy as np
import pytest
import torch

from diffrep.exceptions import DeviceWarning
from diffrep import DiffusionFeaturizer

from .helpers import TINY


def fitted(X, **params):
    return DiffusionFeaturizer(**dict(TINY, image_shape=(1, 8, 8), **params)).fit(X)


def limit_memory(monkeypatch, network, limit, error=torch.cuda.OutOfMemoryError):
    """Make ``network`` fail on batches of more than ``limit`` rows; return every batch size tried."""
    forward = network.forward
    tried = []

    def constrained(x_t, t, *args, **kwargs):
        tried.append(len(x_t))
        if len(x_t) > limit:
            raise error(f"CUDA out of memory. Tried to allocate {len(x_t)} rows; the limit is {limit}.")
        return forward(x_t, t, *args, **kwargs)

    monkeypatch.setattr(network, "forward", constrained)
    return tried


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError, RuntimeError])  # CUDA, MPS
def test_out_of_memory_halves_the_batch_and_keeps_the_features(digits_small, monkeypatch, error):
    X = digits_small[0]
    featurizer = fitted(X, timesteps=(20, 300), layers=("mid_block", "x0"))
    expected = featurizer.transform(X)
    tried = limit_memory(monkeypatch, featurizer.network_, limit=10, error=error)

    with pytest.warns(DeviceWarning, match="ran out of memory") as caught:
        features = featurizer.transform(X)

    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    halvings = [re.search(r"from (\d+) .* retrying with (\d+)", str(w.message)).groups() for w in caught]
    assert halvings == [("64", "32"), ("32", "16"), ("16", "8")]
    assert tried[:4] == [64, 32, 16, 8]
    assert max(tried[4:]) == 8  # later batches keep the size that fitted


def test_noise_draws_of_one_pair_stay_in_one_batch(digits_small, monkeypatch):
    X = digits_small[0][:20]
    featurizer = fitted(X, n_noise_draws=3, timesteps=(50, 500))
    expected = featurizer.transform(X)
    tried = limit_memory(monkeypatch, featurizer.network_, limit=4)
    with pytest.warns(DeviceWarning, match="ran out of memory"):
        features = featurizer.transform(X)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)
    assert set(tried) == {63, 30, 15, 6, 3}  # 21 pairs of 3 draws, then 10, 5, 2 and 1


def test_out_of_memory_with_a_single_pair_gives_up_with_a_clear_error(digits_small, monkeypatch):
    X = digits_small[0][:10]
    featurizer = fitted(X)
    tried = limit_memory(monkeypatch, featurizer.network_, limit=0)
    with pytest.warns(DeviceWarning, match="ran out of memory"), pytest.raises(
        torch.cuda.OutOfMemoryError, match="even from one \\(sample, timestep\\) pair"
    ) as raised:
        featurizer.transform(X)
    assert tried == [10, 5, 2, 1]
    assert isinstance(raised.value.__cause__, torch.cuda.OutOfMemoryError)


def test_other_errors_are_not_retried(digits_small, monkeypatch):
    X = digits_small[0][:10]
    featurizer = fitted(X)
    forward_calls = []

    def broken(*args, **kwargs):
        forward_calls.append(1)
        raise RuntimeError("Expected all tensors to be on the same device")

    monkeypatch.setattr(featurizer.network_, "forward", broken)
    with pytest.raises(RuntimeError, match="same device"):
        featurizer.transform(X)
    assert forward_calls == [1]
