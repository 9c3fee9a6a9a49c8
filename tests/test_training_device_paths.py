"""The GPU-side ways of the training loop give the plain loop's result, checked on the CPU.

Decision: on CUDA the loop reads the loss on the host only every 50 steps,
draws batches, noise and timesteps with a generator on the device from a
training set kept there, and steps a fused AdamW. None of these may change
what is learned beyond float tolerance, nor hide a diverging loss. Without a
GPU each way is forced onto the CPU here: deferred loss reads, the fused
optimizer, and the fingerprinting of where the random numbers are drawn.
"""

import numpy as np
import pytest
import torch

from diffrep import DiffusionFeaturizer
from diffrep._engine import training, training_callbacks
from diffrep._engine.training_config import TrainingConfig, random_device_type

from .helpers import TINY, assert_same_weights

SETTINGS = dict(TINY, denoiser="mlp", max_steps=12)


def fit_reading_losses_every(monkeypatch, steps, X, **settings):
    monkeypatch.setattr(training, "loss_read_interval", lambda device: steps)
    return DiffusionFeaturizer(**dict(SETTINGS, **settings)).fit(X)


def test_reading_the_loss_every_few_steps_learns_exactly_what_reading_it_every_step_does(table, monkeypatch):
    X, _ = table
    every_step = fit_reading_losses_every(monkeypatch, 1, X)
    deferred = fit_reading_losses_every(monkeypatch, 5, X)
    assert deferred.loss_curve_ == every_step.loss_curve_
    assert len(deferred.loss_curve_) == 12
    assert_same_weights(deferred.network_, every_step.network_)


def test_deferred_reads_still_checkpoint_the_whole_loss_curve(table, monkeypatch, tmp_path):
    X, _ = table
    fit_reading_losses_every(monkeypatch, 5, X, checkpoint_dir=tmp_path, checkpoint_every=3)
    (path,) = tmp_path.glob("diffrep-*.pt")
    resumed = DiffusionFeaturizer(**dict(SETTINGS, max_steps=14), checkpoint_dir=tmp_path).fit(X)
    straight = DiffusionFeaturizer(**dict(SETTINGS, max_steps=14)).fit(X)
    assert resumed.loss_curve_ == straight.loss_curve_
    assert_same_weights(resumed.network_, straight.network_)


@pytest.mark.parametrize("read_every", [1, 4])
def test_a_diverging_loss_is_reported_at_its_first_bad_step_however_rarely_it_is_read(table, monkeypatch, read_every):
    X, _ = table
    real_loss = training.denoising_loss
    calls = []

    def loss_going_bad_at_step_6(*args, **kwargs):
        calls.append(None)
        value = real_loss(*args, **kwargs)
        return value * float("nan") if len(calls) >= 7 else value

    monkeypatch.setattr(training, "denoising_loss", loss_going_bad_at_step_6)
    with pytest.raises(FloatingPointError, match=r"loss became nan at training step 6;"):
        fit_reading_losses_every(monkeypatch, read_every, X)
    assert len(calls) == (7 if read_every == 1 else 8)  # read after steps 3 and 7 (0-based)


def test_the_fused_optimizer_used_on_cuda_learns_what_the_default_one_does(table, monkeypatch):
    X, _ = table
    network = torch.nn.Linear(3, 3)
    assert training.make_optimizer(network, 1e-3, torch.device("cuda")).defaults["fused"] is True
    assert not training.make_optimizer(network, 1e-3, torch.device("cpu")).defaults["fused"]
    plain = DiffusionFeaturizer(**SETTINGS).fit(X)
    real = training.make_optimizer
    monkeypatch.setattr(training, "make_optimizer", lambda net, lr, device: real(net, lr, torch.device("cuda")))
    fused = DiffusionFeaturizer(**SETTINGS).fit(X)
    np.testing.assert_allclose(fused.loss_curve_, plain.loss_curve_, rtol=1e-5)
    for (name, mine), theirs in zip(fused.network_.state_dict().items(), plain.network_.state_dict().values()):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6, msg=name)
    np.testing.assert_allclose(fused.transform(X), plain.transform(X), rtol=1e-4, atol=1e-5)


def test_random_numbers_are_drawn_on_cuda_devices_only_and_that_keys_the_training():
    assert random_device_type(torch.device("cuda", 1)) == "cuda"
    assert random_device_type(torch.device("cpu")) == random_device_type(torch.device("mps")) == "cpu"
    settings = dict(max_steps=5, batch_size=8, learning_rate=1e-3, ema_decay=0.9, seed=0)
    on_cpu = TrainingConfig(**settings)
    assert on_cpu.generator(torch.device("cuda")).device == torch.device("cpu")  # a CPU stream stays one
    assert torch.equal(on_cpu.generator("cpu").get_state(), torch.Generator().manual_seed(0).get_state())
    network = torch.nn.Linear(2, 2)
    from diffrep.schedules import NoiseSchedule

    schedule, data = NoiseSchedule(10), np.zeros((4, 2), dtype=np.float32)
    keys = [
        TrainingConfig.create(network, schedule, data, fingerprinted=True, **settings, random_device=place)
        for place in ("cpu", "cuda")
    ]
    assert keys[0].trajectory != keys[1].trajectory  # a CPU checkpoint is never resumed with a GPU stream


def test_the_cost_estimate_waits_for_the_gpu_before_reading_the_clock(monkeypatch):
    synchronized = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device: synchronized.append(device))
    notice = training_callbacks.CostNotice(100, torch.device("cuda"))
    for _ in range(1 + training_callbacks.CostNotice.MEASURED_STEPS + 3):
        notice.step_done()
    assert synchronized == [torch.device("cuda")] * 2
