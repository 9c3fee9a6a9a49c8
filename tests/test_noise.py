"""Every (sample, timestep, draw) gets its own Gaussian noise, and that noise destroys information.

The noise is a pure function of (seed, sample bytes, timestep, draw): these
tests check that it is standard normal, independent across samples, timesteps
and draws, identical for identical rows, and that with it a probe at the
noisiest timestep falls to chance, as the paper's dynamics require. A pattern
shared by every sample (diffrep 0.1) fails that last test.
"""

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import diffrep._engine.extraction
from diffrep import DiffusionFeaturizer
from diffrep._engine.noise import _multiply32, gaussian_noise, mix32, row_hashes, row_keys

from .helpers import TINY, assert_equal_to_float32_rounding, extraction_noise


def noise_of(samples, timesteps=50, draws=0, seed=0):
    """Noise of each row of ``samples`` (a float tensor) at the given timesteps and draws."""
    rows = len(samples)
    timesteps = torch.as_tensor(timesteps, dtype=torch.long).expand(rows)
    draws = torch.as_tensor(draws, dtype=torch.long).expand(rows)
    return gaussian_noise(row_keys(row_hashes(samples), timesteps, draws, seed), tuple(samples.shape[1:]))


@pytest.fixture(scope="module")
def distinct_rows():
    """2,000 distinct 56-feature rows (an odd shape: 7 x 8 pixels)."""
    return torch.randn(2000, 1, 7, 8, generator=torch.Generator().manual_seed(0))


def off_diagonal_correlations(matrix):
    correlations = np.corrcoef(matrix)
    return correlations[np.triu_indices(len(matrix), 1)]


# --------------------------------------------------------------- the bits
def test_32_bit_products_are_exact():
    """The hash's products keep their exact low 32 bits, even where int64 wraps around."""
    values = np.random.default_rng(0).integers(0, 2**32, size=10_000, dtype=np.int64)
    for constant in (0x7FEB352D, 0x846CA68B, 2**32 - 1):
        expected = np.array([(int(v) * constant) % 2**32 for v in values])
        np.testing.assert_array_equal(_multiply32(torch.from_numpy(values), constant).numpy(), expected)


def test_mixing_is_a_bijection_with_avalanche():
    x = torch.arange(2**16, dtype=torch.int64) * 65_537  # distinct 32-bit values
    mixed = mix32(x)
    assert len(torch.unique(mixed)) == len(x)
    assert int(mixed.min()) >= 0 and int(mixed.max()) < 2**32
    flipped = mix32(x ^ 1)  # one input bit flipped: about half the output bits change
    changed = np.unpackbits((mixed ^ flipped).numpy().astype("<u4").view(np.uint8)).mean() * 32
    assert 15 < changed < 17


# ------------------------------------------------------ the distribution
def test_noise_is_standard_normal(distinct_rows):
    values = noise_of(distinct_rows).numpy().ravel()
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1) < 0.01
    assert abs(stats.skew(values)) < 0.03 and abs(stats.kurtosis(values)) < 0.06
    assert stats.kstest(values, "norm").pvalue > 1e-3


def test_ks_p_values_over_seeds_are_uniform(distinct_rows):
    """A subtle bias shows as p-values piling up near 0 across many independent seeds."""
    p_values = [stats.kstest(noise_of(distinct_rows[:500], seed=s).numpy().ravel(), "norm").pvalue
                for s in range(20)]
    assert stats.kstest(p_values, "uniform").pvalue > 1e-3


def test_different_samples_get_uncorrelated_noise(distinct_rows):
    noise = noise_of(distinct_rows).numpy().reshape(len(distinct_rows), -1)
    correlations = off_diagonal_correlations(noise[:800])
    expected_spread = 1 / np.sqrt(noise.shape[1] - 1)  # of the correlation of independent rows
    assert abs(correlations.mean()) < 0.01
    assert abs(correlations.std() - expected_spread) < 0.1 * expected_spread
    # and pixel j of one sample is unrelated to pixel j of the others (no shared pattern)
    per_pixel_mean = noise.mean(axis=0)
    assert np.abs(per_pixel_mean).max() < 4.5 / np.sqrt(len(noise))


def test_samples_that_differ_in_one_pixel_get_unrelated_noise():
    """Near-identical inputs (one pixel apart, as in images) still get independent noise."""
    base = torch.zeros(500, 64)
    base[torch.arange(500), torch.arange(500) % 64] = torch.arange(1, 501, dtype=torch.float32) / 500
    correlations = off_diagonal_correlations(noise_of(base).numpy())
    assert np.abs(correlations).max() < 0.6 and abs(correlations.mean()) < 0.01


@pytest.mark.parametrize("change", [{"timesteps": 51}, {"draws": 1}, {"seed": 1}])
def test_other_timesteps_draws_and_seeds_get_independent_noise(distinct_rows, change):
    reference = noise_of(distinct_rows).numpy().ravel()
    other = noise_of(distinct_rows, **change).numpy().ravel()
    assert abs(np.corrcoef(reference, other)[0, 1]) < 4 / np.sqrt(len(reference))


def test_identical_rows_get_identical_noise_whatever_the_sign_of_zero(distinct_rows):
    rows = distinct_rows[:5].clone()
    rows[:, 0, 0, 0] = 0.0
    negative_zero = rows.clone()
    negative_zero[:, 0, 0, 0] = -0.0
    stacked = torch.cat([rows, rows.flip(0), negative_zero])
    noise = noise_of(stacked)
    torch.testing.assert_close(noise[:5], noise[5:10].flip(0), rtol=0, atol=0)
    torch.testing.assert_close(noise[:5], noise[10:], rtol=0, atol=0)


def test_a_row_gets_bitwise_the_same_noise_alone_in_a_batch_or_in_another_order(distinct_rows):
    rows = distinct_rows[:300]
    together = noise_of(rows)
    alone = torch.cat([noise_of(rows[i : i + 1]) for i in range(len(rows))])
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(alone, together, rtol=0, atol=0)
    torch.testing.assert_close(noise_of(rows[order]), together[order], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_noise_equals_the_cpu_noise(distinct_rows):
    timesteps, draws = torch.arange(len(distinct_rows)) % 1000, torch.arange(len(distinct_rows)) % 3
    cpu = noise_of(distinct_rows, timesteps, draws, seed=7)
    cuda = noise_of(distinct_rows.cuda(), timesteps.cuda(), draws.cuda(), seed=7)
    assert (cuda.cpu() - cpu).abs().max().item() <= 1e-6


# ------------------------------------------------------- in the featurizer
@pytest.fixture(scope="module")
def featurizer(digits_small):
    return DiffusionFeaturizer(timesteps=(0, 999), n_noise_draws=2, image_shape=(1, 8, 8), **TINY).fit(
        digits_small[0]
    )


def test_duplicates_and_subsets_get_the_features_they_get_alone(featurizer, digits_small):
    X = digits_small[0]
    features = featurizer.transform(X)
    subset = [7, 3, 3, 50, 7]
    assert_equal_to_float32_rounding(featurizer.transform(X[subset]), features[subset])


def test_extraction_adds_the_reference_noise(featurizer, digits_small, monkeypatch):
    """What the network sees is ``sqrt(abar) x0 + sqrt(1 - abar) eps`` with each row's own eps."""
    X = digits_small[0][:10]
    seen = []
    real = diffrep._engine.extraction.run_with_capture

    def recording(network, x_t, timesteps, *args, **kwargs):
        seen.append((x_t.clone(), timesteps.clone()))
        return real(network, x_t, timesteps, *args, **kwargs)

    monkeypatch.setattr(diffrep._engine.extraction, "run_with_capture", recording)
    featurizer.extract(X, (999,))
    x_t, timesteps = torch.cat([x for x, _ in seen]), torch.cat([t for _, t in seen])
    assert timesteps.eq(999).all()
    abar = featurizer.schedule_.alphas_cumprod[999].item()
    x0 = featurizer.scaler_.transform(X).reshape(-1, 1, 8, 8)
    for draw in range(2):
        rows = x_t[draw::2].numpy()  # rows are ordered sample, timestep, then draw
        eps = extraction_noise(featurizer, X, 999, draw).numpy()
        np.testing.assert_allclose(rows, np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps, atol=1e-5)


def probe_accuracy(featurizer, X, y, timestep):
    Z = featurizer.extract(X, (timestep,))
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    return probe.fit(Z[::2], y[::2]).score(Z[1::2], y[1::2])


class PredictsNoNoise(torch.nn.Module):
    """An epsilon-predicting denoiser that always predicts 0: its ``"x0"`` is ``x_t / sqrt(abar_t)``."""

    def forward(self, x_t, timesteps):
        return torch.zeros_like(x_t)


def noisy_input_probe(X, y, timestep):
    """Probe accuracy on the noisy inputs themselves (rescaled to ``x0 + sigma * eps``)."""
    featurizer = DiffusionFeaturizer(denoiser=PredictsNoNoise(), layers="x0", pooling="none",
                                     image_shape=(1, 8, 8), device="cpu", random_state=0).fit(X)
    return probe_accuracy(featurizer, X, y, timestep)


def shared_pattern(keys, sample_shape):
    """diffrep 0.1's noise: one fixed pattern for every row."""
    return gaussian_noise(torch.zeros_like(keys[:1]), sample_shape).expand(len(keys), *sample_shape)


def test_noise_destroys_the_information_in_the_input(digits, monkeypatch):
    """At t=999 (sigma ~ 157) the noisy inputs carry no class; one shared pattern is learned away."""
    X, y = digits[0][:600], digits[1][:600]
    assert noisy_input_probe(X, y, 999) <= 0.25
    assert noisy_input_probe(X, y, 0) >= 0.9
    monkeypatch.setattr(diffrep._engine.extraction, "gaussian_noise", shared_pattern)
    assert noisy_input_probe(X, y, 999) >= 0.9  # an affine shift of the clean inputs


def test_the_noisiest_timestep_leaves_a_trained_unet_near_chance(digits):
    X, y = digits[0][:600], digits[1][:600]
    featurizer = DiffusionFeaturizer(image_shape=(1, 8, 8), **TINY).fit(X)
    assert probe_accuracy(featurizer, X, y, 999) <= 0.3
    assert probe_accuracy(featurizer, X, y, 0) >= 0.45
