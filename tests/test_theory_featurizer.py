"""The theory's denoisers run through the same DiffusionFeaturizer as trained networks."""

import numpy as np
import pytest

from diffrep import DiffusionFeaturizer, MoLRGDenoiser, SubspaceClassifier, make_molrg
from diffrep.theory.model import molrg_representation, stack_bases

from .helpers import extraction_noise


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
    noise = extraction_noise(feat, X, 100).numpy().astype(np.float64)
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


def test_learned_parameterization_trains_through_the_featurizer(molrg):
    from diffrep import LearnedMoLRGDenoiser
    from diffrep.theory.metrics import principal_angle_cosines

    X, _, bases = molrg
    start = LearnedMoLRGDenoiser(20, 3, 2, 0.2)
    start.fit_subspaces(X, random_state=0)
    feat = DiffusionFeaturizer(
        denoiser=start, train_denoiser=True, max_steps=30, batch_size=128, learning_rate=1e-3,
        timesteps=(100,), device="cpu", random_state=0,
    ).fit(X)
    assert feat.schedule_.prediction_type == "sample" and len(feat.loss_curve_) == 30
    assert np.isfinite(feat.loss_curve_).all()
    cosines = principal_angle_cosines(feat.network_.get_bases(), bases)
    assert np.nanmin(cosines) > 0.99
    assert not np.allclose(feat.network_.get_bases()[0], start.get_bases()[0]), "training should move U"
