"""NoiseSchedule: timesteps, alpha-bar and sigma agree with diffusers, and x0 is recovered exactly."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from diffrep import NoiseSchedule
from diffrep.schedules import PREDICTION_TYPES


def _batch(seed=0, shape=(6, 2, 4, 4)):
    generator = torch.Generator().manual_seed(seed)
    x0 = torch.randn(shape, generator=generator)
    noise = torch.randn(shape, generator=generator)
    timesteps = torch.tensor([0, 1, 10, 250, 700, 999])[: shape[0]]
    return x0, noise, timesteps


@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_add_noise_matches_diffusers(beta_schedule):
    schedule = NoiseSchedule(beta_schedule=beta_schedule)
    reference = DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule)
    x0, noise, timesteps = _batch()
    torch.testing.assert_close(
        schedule.add_noise(x0, noise, timesteps), reference.add_noise(x0, noise, timesteps), atol=1e-6, rtol=1e-5
    )


def test_v_target_matches_diffusers_velocity():
    schedule = NoiseSchedule(prediction_type="v_prediction")
    reference = DDPMScheduler(num_train_timesteps=1000)
    x0, noise, timesteps = _batch()
    torch.testing.assert_close(
        schedule.training_target(x0, noise, timesteps),
        reference.get_velocity(x0, noise, timesteps),
        atol=1e-6,
        rtol=1e-5,
    )


@pytest.mark.parametrize("prediction_type", PREDICTION_TYPES)
def test_predict_x0_inverts_the_training_target(prediction_type):
    schedule = NoiseSchedule(prediction_type=prediction_type)
    x0, noise, timesteps = _batch(shape=(5, 2, 4, 4))  # up to t=700: 1/sqrt(abar) stays moderate
    x_t = schedule.add_noise(x0, noise, timesteps)
    target = schedule.training_target(x0, noise, timesteps)
    torch.testing.assert_close(schedule.predict_x0(x_t, target, timesteps), x0, atol=1e-4, rtol=1e-4)


def test_training_targets_are_what_each_type_names():
    x0, noise, timesteps = _batch()
    torch.testing.assert_close(NoiseSchedule().training_target(x0, noise, timesteps), noise)
    torch.testing.assert_close(NoiseSchedule(prediction_type="sample").training_target(x0, noise, timesteps), x0)


def test_sigmas_and_timesteps_for_sigmas():
    schedule = NoiseSchedule(num_train_timesteps=400)
    abar = DDPMScheduler(num_train_timesteps=400).alphas_cumprod.double().numpy()
    np.testing.assert_allclose(schedule.sigmas(np.arange(400)), np.sqrt((1 - abar) / abar), rtol=1e-7)
    timesteps = np.array([0, 3, 50, 399])
    np.testing.assert_array_equal(schedule.timesteps_for_sigmas(schedule.sigmas(timesteps)), timesteps)
    assert schedule.timesteps_for_sigmas(1e-9).tolist() == [0]
    assert schedule.timesteps_for_sigmas(1e9).tolist() == [399]
    assert schedule.timesteps_for_sigmas([1.0]).dtype == np.int64


@pytest.mark.parametrize("sigmas", [[0.0], [-1.0], [np.nan], [np.inf]])
def test_timesteps_for_sigmas_refuses_invalid_levels(sigmas):
    with pytest.raises(ValueError, match="sigmas must be positive and finite"):
        NoiseSchedule().timesteps_for_sigmas(sigmas)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="beta_schedule 'cubic'"):
        NoiseSchedule(beta_schedule="cubic")
    with pytest.raises(ValueError, match="prediction_type must be one of"):
        NoiseSchedule(prediction_type="score")
    with pytest.raises(ValueError, match="num_train_timesteps"):
        NoiseSchedule(num_train_timesteps=0)


def test_from_scheduler_reads_a_diffusers_scheduler_or_config():
    ddim = DDIMScheduler(num_train_timesteps=300, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")
    schedule = NoiseSchedule.from_scheduler(ddim)
    assert (schedule.num_train_timesteps, schedule.prediction_type) == (300, "v_prediction")
    torch.testing.assert_close(schedule.alphas_cumprod, ddim.alphas_cumprod.double())
    from_config = NoiseSchedule.from_scheduler(dict(ddim.config))
    torch.testing.assert_close(from_config.alphas_cumprod, schedule.alphas_cumprod)


def test_from_scheduler_refuses_unusable_schedulers():
    with pytest.raises(ValueError, match="no alphas_cumprod"):
        NoiseSchedule.from_scheduler(object())
    with pytest.raises(ValueError, match="prediction_type 'flow'"):
        NoiseSchedule.from_scheduler({"num_train_timesteps": 10, "prediction_type": "flow"})


def test_to_diffusers_round_trips():
    schedule = NoiseSchedule(num_train_timesteps=123, beta_schedule="scaled_linear", prediction_type="sample")
    again = NoiseSchedule.from_scheduler(schedule.to_diffusers())
    torch.testing.assert_close(again.alphas_cumprod, schedule.alphas_cumprod)
    assert again.prediction_type == "sample"
