"""The theory's denoisers run through the same DiffusionFeaturizer as trained networks."""

import numpy as np
import pytest

from diffrep import DiffusionFeaturizer, MoLRGDenoiser, SubspaceClassifier, make_molrg
from diffrep.molrg import molrg_representation, stack_bases


@pytest.fixture(scope="module")
def molrg():
    X, y, bases = make_molrg(600, 20, 3, 2, 0.2, random_state=0, return_bases=True)
    return X, y, bases


def test_h_features_equal_the_closed_form_representation(molrg):
    X, y, bases = molrg
    feat = DiffusionFeaturizer(denoiser=MoLRGDenoiser(bases, 0.2), timesteps=(100,), device="cpu", random_state=0)
    features = feat.fit(X).transform(X)
    assert feat.layers_ == ("h",) and feat.loss_curve_ == []
    sigma = feat.sigmas_[0]
    noise = feat.noise_bank_[0].numpy().astype(np.float64)
    expected = molrg_representation(X + sigma * noise, sigma, bases, 0.2)
    np.testing.assert_allclose(features, expected, rtol=1e-4, atol=1e-5)


def test_x0_source_is_the_posterior_mean_projected_back(molrg):
    X, _, bases = molrg
    feat = DiffusionFeaturizer(
        denoiser=MoLRGDenoiser(bases, 0.2), timesteps=(50,), layers=("h", "x0"), device="cpu", random_state=0
    ).fit(X)
    features = feat.transform(X[:10])
    h, x0 = features[:, :6], features[:, 6:]
    basis, _ = stack_bases(bases)
    np.testing.assert_allclose(x0, h @ basis.T, rtol=1e-4, atol=1e-5)


def test_subspace_probe_on_featurizer_output_beats_chance(molrg):
    X, y, bases = molrg
    feat = DiffusionFeaturizer(denoiser=MoLRGDenoiser(bases, 0.2), timesteps=(100,), device="cpu", random_state=0)
    Z = feat.fit_transform(X)
    probe = SubspaceClassifier(n_components=2).fit(Z[:400], y[:400])
    assert probe.score(Z[400:], y[400:]) > 0.75  # chance is 1/3
