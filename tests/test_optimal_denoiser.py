"""The closed-form MoLRG denoiser against generic Gaussian conditioning, in numpy and torch.

The reference below shares no code with diffrep: it builds each class's full
covariance, conditions with ``np.linalg.solve`` and scores classes with
``scipy.stats.multivariate_normal``.
"""

import pickle

import numpy as np
import pytest
import torch
from scipy.special import softmax
from scipy.stats import multivariate_normal

from diffrep.theory.denoisers import LearnedMoLRGDenoiser, MoLRGDenoiser
from diffrep.theory.model import (
    make_molrg,
    molrg_posterior_mean,
    molrg_posterior_weights,
    molrg_representation,
)
from diffrep.schedules import NoiseSchedule

SIGMAS = [1e-3, 0.05, 0.3, 1.0, 30.0, 1e3]
CONFIGS = {
    "paper": dict(rank=3, weights=None, means=False),
    "unequal weights": dict(rank=3, weights=[0.6, 0.3, 0.1], means=False),
    "unequal ranks": dict(rank=[2, 3, 4], weights=None, means=False),
    "unequal ranks and weights": dict(rank=[1, 4, 2], weights=[0.2, 0.5, 0.3], means=False),
    "class means": dict(rank=[2, 3, 2], weights=[0.3, 0.3, 0.4], means=True),
}
N_FEATURES, DELTA = 12, 0.3


def reference_posterior(x, sigma, bases, delta, weights, means):
    """Posterior class probabilities and mean by per-class Gaussian conditioning."""
    n_features = x.shape[1]
    projections = [b @ b.T for b in bases]
    span = sum(projections)
    log_joint, conditional_means = [], []
    for k, own in enumerate(projections):
        prior_cov = own + delta**2 * (span - own)
        noisy_cov = prior_cov + sigma**2 * np.eye(n_features)
        log_joint.append(
            multivariate_normal(means[k], noisy_cov).logpdf(x) + np.log(weights[k])
        )
        gain = np.linalg.solve(noisy_cov, prior_cov).T  # prior_cov @ inv(noisy_cov)
        conditional_means.append(means[k] + (x - means[k]) @ gain.T)
    posterior = softmax(np.stack(log_joint, axis=1), axis=1)
    return posterior, np.einsum("nk,knf->nf", posterior, np.stack(conditional_means))


def noisy_problem(config, sigma, n_samples=60, seed=0):
    """Noisy samples of a small MoLRG plus everything the closed form needs."""
    rng = np.random.default_rng(seed)
    weights = config["weights"] or [1 / 3] * 3
    means = rng.standard_normal((3, N_FEATURES)) if config["means"] else np.zeros((3, N_FEATURES))
    X, _, bases = make_molrg(
        n_samples, N_FEATURES, 3, config["rank"], DELTA, weights=weights, means=means,
        random_state=seed, return_bases=True,
    )
    noisy = X + sigma * rng.standard_normal(X.shape)
    return noisy, list(bases), weights, means


@pytest.mark.parametrize("sigma", SIGMAS)
@pytest.mark.parametrize("config", CONFIGS.values(), ids=CONFIGS.keys())
def test_closed_form_equals_gaussian_conditioning(config, sigma):
    noisy, bases, weights, means = noisy_problem(config, sigma)
    expected_posterior, expected_mean = reference_posterior(
        noisy, sigma, bases, DELTA, weights, means
    )
    kwargs = dict(weights=config["weights"], means=means if config["means"] else None)
    posterior = molrg_posterior_weights(noisy, sigma, bases, DELTA, **kwargs)
    mean = molrg_posterior_mean(noisy, sigma, bases, DELTA, **kwargs)
    np.testing.assert_allclose(posterior, expected_posterior, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sigma", SIGMAS)
def test_equal_ranks_scores_are_the_papers_g(sigma):
    noisy, bases, _, _ = noisy_problem(CONFIGS["paper"], sigma)
    weights = np.array([0.5, 0.2, 0.3])
    phi = 1 / (2 * sigma**2 * (1 + sigma**2))
    psi = DELTA**2 / (2 * sigma**2 * (DELTA**2 + sigma**2))
    energy = np.stack([np.sum((noisy @ b) ** 2, axis=1) for b in bases], axis=1)
    g = phi * energy + psi * (energy.sum(axis=1, keepdims=True) - energy) + np.log(weights)
    expected = softmax(g, axis=1)
    actual = molrg_posterior_weights(noisy, sigma, bases, DELTA, weights=weights)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("config", ["paper", "unequal ranks and weights"])
def test_posterior_mean_is_u_times_representation(config):
    noisy, bases, _, _ = noisy_problem(CONFIGS[config], 0.3)
    weights = CONFIGS[config]["weights"]
    h = molrg_representation(noisy, 0.3, bases, DELTA, weights=weights)
    assert h.shape == (len(noisy), sum(b.shape[1] for b in bases))
    np.testing.assert_allclose(
        h @ np.concatenate(bases, axis=1).T,
        molrg_posterior_mean(noisy, 0.3, bases, DELTA, weights=weights),
        atol=1e-12,
    )


def test_limits_small_noise_keeps_the_input_large_noise_shrinks_to_zero():
    X, _, bases = make_molrg(50, 20, 3, 4, 0.2, random_state=0, return_bases=True)
    np.testing.assert_allclose(molrg_posterior_mean(X, 1e-6, bases, 0.2), X, atol=1e-8)
    assert np.abs(molrg_posterior_mean(X, 1e4, bases, 0.2)).max() < 1e-6


# --------------------------------------------------------------------------- #
# torch modules
# --------------------------------------------------------------------------- #
TIMESTEPS = torch.tensor([0, 5, 20, 60, 150, 300, 600, 999] * 8)


def vp_noisy(schedule, X, seed=0):
    """Variance-preserving noisy inputs at TIMESTEPS and their VE sigma."""
    x0 = torch.as_tensor(X[: len(TIMESTEPS)], dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=generator, dtype=torch.float64)
    x_t = schedule.add_noise(x0, noise, TIMESTEPS)
    return x_t, schedule.sigmas(TIMESTEPS.numpy())


def numpy_reference(model, x_t, sigmas, weights):
    """The numpy closed form applied sample by sample to the VE-rescaled input."""
    signal = model.noise_schedule.alphas_cumprod[TIMESTEPS].sqrt().numpy()[:, None]
    x_ve = x_t.numpy() / signal
    bases = model.get_bases()
    rows = [
        (
            molrg_posterior_mean(x_ve[i : i + 1], s, bases, model.delta, weights=weights)[0],
            molrg_representation(x_ve[i : i + 1], s, bases, model.delta, weights=weights)[0],
        )
        for i, s in enumerate(sigmas)
    ]
    return np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows])


@pytest.fixture(params=["paper", "unequal ranks and weights"])
def problem(request):
    config = CONFIGS[request.param]
    X, _, bases = make_molrg(
        len(TIMESTEPS), N_FEATURES, 3, config["rank"], DELTA, weights=config["weights"],
        random_state=1, return_bases=True,
    )
    return X, bases, config["weights"]


def test_torch_module_equals_numpy_closed_form(problem):
    X, bases, weights = problem
    model = MoLRGDenoiser(bases, DELTA, weights=weights).double()
    x_t, sigmas = vp_noisy(model.noise_schedule, X)
    expected, _ = numpy_reference(model, x_t, sigmas, weights)
    with torch.no_grad():
        actual = model(x_t, TIMESTEPS)
    assert actual.dtype == torch.float64
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-6, atol=1e-7)


def test_float32_module_is_close_to_the_closed_form(problem):
    X, bases, weights = problem
    model = MoLRGDenoiser(bases, DELTA, weights=weights)
    assert model.basis.dtype == torch.float32
    x_t, sigmas = vp_noisy(model.noise_schedule, X)
    expected, _ = numpy_reference(model, x_t, sigmas, weights)
    with torch.no_grad():
        actual = model(x_t.float(), TIMESTEPS)
    assert actual.dtype == torch.float32
    np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-4, atol=1e-5)


def test_representation_is_captured_by_a_forward_hook_on_h(problem):
    X, bases, weights = problem
    model = MoLRGDenoiser(bases, DELTA, weights=weights).double()
    captured = []
    handle = dict(model.named_modules())["h"].register_forward_hook(
        lambda module, inputs, output: captured.append(output)
    )
    try:
        x_t, sigmas = vp_noisy(model.noise_schedule, X)
        with torch.no_grad():
            model(x_t, TIMESTEPS)
    finally:
        handle.remove()
    _, expected_h = numpy_reference(model, x_t, sigmas, weights)
    assert captured[0].shape == (len(TIMESTEPS), sum(model.ranks))
    np.testing.assert_allclose(captured[0].numpy(), expected_h, rtol=1e-6, atol=1e-7)


def test_protocol_attributes():
    _, _, bases = make_molrg(5, 20, 3, 2, 0.2, random_state=0, return_bases=True)
    for model in (MoLRGDenoiser(bases, 0.2), LearnedMoLRGDenoiser(20, 3, 2, 0.2)):
        assert model.prediction_type == "sample"
        assert isinstance(model.noise_schedule, NoiseSchedule)
        assert model.noise_schedule.num_train_timesteps == 1000
        assert model.default_layers == ("h",)
        assert isinstance(dict(model.named_modules())["h"], torch.nn.Identity)


def test_custom_schedule_and_scalar_timestep():
    X, _, bases = make_molrg(4, 20, 3, 2, 0.2, random_state=0, return_bases=True)
    schedule = NoiseSchedule(num_train_timesteps=500, prediction_type="sample")
    model = MoLRGDenoiser(bases, 0.2, schedule=schedule)
    x = torch.as_tensor(X, dtype=torch.float32)
    torch.testing.assert_close(model(x, torch.tensor(10)), model(x, torch.full((4,), 10)))
    with pytest.raises(ValueError, match="timesteps"):
        model(x, torch.tensor([1, 2]))


def test_schedule_must_predict_the_sample():
    _, _, bases = make_molrg(5, 20, 3, 2, 0.2, random_state=0, return_bases=True)
    with pytest.raises(ValueError, match="prediction_type"):
        MoLRGDenoiser(bases, 0.2, schedule=NoiseSchedule(prediction_type="epsilon"))
    with pytest.raises(TypeError, match="NoiseSchedule"):
        MoLRGDenoiser(bases, 0.2, schedule="linear")


def test_learned_model_keeps_u_orthonormal_and_matches_the_optimum_at_init():
    X, _, bases = make_molrg(len(TIMESTEPS), 20, 3, 2, 0.2, random_state=0, return_bases=True)
    learned = LearnedMoLRGDenoiser(20, 3, 2, 0.2, init_bases=bases)
    basis = learned.basis.detach()
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), atol=1e-5, rtol=0)
    x_t, _ = vp_noisy(learned.noise_schedule, X)
    with torch.no_grad():
        torch.testing.assert_close(
            learned(x_t.float(), TIMESTEPS),
            MoLRGDenoiser(bases, 0.2)(x_t.float(), TIMESTEPS),
            atol=1e-5,
            rtol=1e-5,
        )


def test_learned_model_has_gradients_and_stays_orthonormal_after_a_step():
    X, _ = make_molrg(64, 20, 3, 2, 0.2, random_state=0)
    model = LearnedMoLRGDenoiser(20, 3, 2, 0.2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    x0 = torch.as_tensor(X, dtype=torch.float32)
    t = torch.full((64,), 100)
    x_t = model.noise_schedule.add_noise(x0, torch.randn_like(x0), t)
    loss = ((model(x_t, t) - x0) ** 2).mean()
    loss.backward()
    assert model.weight.grad is not None and torch.all(torch.isfinite(model.weight.grad))
    optimizer.step()
    basis = model.basis.detach()
    torch.testing.assert_close(basis.T @ basis, torch.eye(6), atol=1e-5, rtol=0)


def test_learned_model_validation():
    with pytest.raises(ValueError, match="ranks"):
        LearnedMoLRGDenoiser(5, 3, 2, 0.2)
    with pytest.raises(ValueError, match="delta"):
        LearnedMoLRGDenoiser(20, 3, 2, -1.0)
    _, _, bases = make_molrg(5, 20, 2, 2, 0.2, random_state=0, return_bases=True)
    with pytest.raises(ValueError, match="ranks"):
        LearnedMoLRGDenoiser(20, 3, 2, 0.2, init_bases=bases)


def test_denoisers_pickle():
    X, _, bases = make_molrg(8, 20, 3, 2, 0.2, random_state=0, return_bases=True)
    x, t = torch.as_tensor(X, dtype=torch.float32), torch.full((8,), 40)
    for model in (MoLRGDenoiser(bases, 0.2), LearnedMoLRGDenoiser(20, 3, 2, 0.2).fit_subspaces(X)):
        restored = pickle.loads(pickle.dumps(model))
        with torch.no_grad():
            torch.testing.assert_close(restored(x, t), model(x, t))
