"""The denoising-score-matching training loop shared by every trainable denoiser."""

from __future__ import annotations

import copy

import numpy as np
import torch

from .capture import first_tensor
from .checkpoints import TrainingCheckpoint
from .training_callbacks import (
    Checkpointing,
    CostNotice,
    DivergenceCheck,
    LossHistory,
    ProgressBar,
    TrainingRun,
    loss_read_interval,
)


class ExponentialMovingAverage:
    """A frozen copy of a network whose weights track an exponential moving average.

    The decay warms up as ``min(decay, (1 + step) / (10 + step))`` so that short
    trainings are not dominated by the random initialization.

    Parameters
    ----------
    network : torch.nn.Module
    decay : float
    """

    def __init__(self, network, decay):
        self.decay = decay
        self.network = copy.deepcopy(network).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, network, step):
        """Move the average towards ``network``'s current weights.

        Parameters
        ----------
        network : torch.nn.Module
        step : int
        """
        weight = 1.0 - min(self.decay, (1.0 + step) / (10.0 + step))
        averaged = list(self.network.parameters())
        torch._foreach_lerp_(averaged, [p.detach() for p in network.parameters()], weight)
        for mine, theirs in zip(self.network.buffers(), network.buffers()):
            mine.copy_(theirs)


def denoising_loss(network, schedule, x0, generator):
    """Mean squared error of the network's prediction at random timesteps.

    Parameters
    ----------
    network : torch.nn.Module
    schedule : NoiseSchedule
    x0 : torch.Tensor of shape (batch, ...)
        Clean training samples, already on the network's device.
    generator : torch.Generator
        Draws the noise and timesteps, on its own device (the CPU, or the
        CUDA device trained on).

    Returns
    -------
    loss : torch.Tensor (scalar)
    """
    noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(x0.device, non_blocking=True)
    timesteps = torch.randint(
        schedule.num_train_timesteps, (x0.shape[0],), generator=generator, device=generator.device
    )
    timesteps = timesteps.to(x0.device, non_blocking=True)
    prediction = first_tensor(network(schedule.add_noise(x0, noise, timesteps), timesteps))
    target = schedule.training_target(x0, noise, timesteps)
    return torch.nn.functional.mse_loss(prediction.float(), target.float())


class TrainingInterrupted(KeyboardInterrupt):
    """A ``KeyboardInterrupt`` that stopped :func:`train_denoiser`, carrying what was learned.

    A subclass of ``KeyboardInterrupt``, so a caller that does not handle it
    stops as on any Ctrl-C, and nothing downstream (a cache of trained
    denoisers) mistakes the partial result for a finished training. The
    featurizer keeps the partial weights, then lets it propagate.

    Parameters
    ----------
    network : torch.nn.Module
        The EMA weights after the completed steps, in eval mode.
    loss_curve : list of float
        The loss of every completed step.
    max_steps : int
        The steps the training was meant to run.
    checkpoint : TrainingCheckpoint or None
        Where the last checkpoint of this run is, if checkpointing.

    Attributes
    ----------
    network, loss_curve
        As passed.
    """

    def __init__(self, network, loss_curve, max_steps, checkpoint):
        self.network = network
        self.loss_curve = loss_curve
        done = len(loss_curve)
        if checkpoint is None:
            resume = "Pass checkpoint_dir= to be able to resume an interrupted training."
        elif checkpoint.path.is_file():
            resume = f"A new fit with the same data and settings resumes from the checkpoint {checkpoint.path}."
        else:
            resume = "No checkpoint was written yet (one every checkpoint_every steps)."
        super().__init__(
            f"Training was interrupted (KeyboardInterrupt) after {done} of {max_steps} steps; "
            f"the featurizer keeps the weights learned so far (n_steps_={done}) and is usable. {resume}"
        )


def make_optimizer(network, learning_rate, device):
    """AdamW over ``network``'s parameters: fused (one kernel for all of them) on CUDA, the default elsewhere.

    On the CPU the fused variant was 3% slower per step (benchmarks/README.md).
    """
    return torch.optim.AdamW(network.parameters(), lr=learning_rate, fused=True if device.type == "cuda" else None)


def training_samples(data, device):
    """The training set as a tensor, on a CUDA device when it fills at most a quarter of its free memory.

    Batches are then drawn on the device, with no copy from the host per step.

    Parameters
    ----------
    data : ndarray
    device : torch.device

    Returns
    -------
    samples : torch.Tensor
        On ``device`` or in host memory.
    """
    samples = torch.from_numpy(np.ascontiguousarray(data))
    if device.type == "cuda" and samples.nbytes <= torch.cuda.mem_get_info(device)[0] // 4:
        return samples.to(device)
    return samples


def train_denoiser(
    network,
    data,
    schedule,
    config,
    *,
    device,
    verbose=0,
    checkpoint_dir=None,
    checkpoint_every=500,
):
    """Train ``network`` by denoising score matching; return its EMA copy.

    Parameters
    ----------
    network : torch.nn.Module
        Trained in place (the caller passes its own copy).
    data : ndarray of float32, shape (n_samples, *sample_shape)
        Scaled training data.
    schedule : NoiseSchedule
        Gives the forward process and the prediction target.
    config : TrainingConfig
        Steps, batch size, learning rate, EMA decay and the seed of the CPU
        generator driving batches, noise and timesteps; fingerprinted when
        checkpointing.
    device : torch.device
    verbose : int, default=0
        Show a progress bar when positive.
    checkpoint_dir : str, os.PathLike or None, default=None
        Directory of training checkpoints (see :mod:`.checkpoints`); None writes
        none. A checkpoint of this very run (same fingerprint) is resumed.
    checkpoint_every : int, default=500
        Steps between checkpoints; the last step is always checkpointed.

    Returns
    -------
    ema_network : torch.nn.Module
        The averaged weights, in eval mode; used for features.
    loss_curve : list of float
        The training loss at every step (resumed steps included).

    Raises
    ------
    FloatingPointError
        If the loss becomes NaN or infinite (found when the losses are read:
        every step on the CPU, every 50 on a GPU), if the weights do (checked before
        every checkpoint and after the last step), or if the trained network's
        loss on a batch of ``data`` overflows; nothing is returned then and no
        such network is checkpointed.
    TrainingInterrupted
        On ``KeyboardInterrupt`` during a step; it carries the EMA weights and
        the loss curve of the completed steps. A ``KeyboardInterrupt`` when the
        weights are already non-finite carries nothing.
    """
    generator = config.generator(device)
    network.to(device).train().requires_grad_(True)
    ema = ExponentialMovingAverage(network, config.ema_decay)
    run = TrainingRun(network, ema.network, make_optimizer(network, config.learning_rate, device), generator,
                      config.max_steps, device)
    samples = training_samples(data, device)
    checkpoint = None if checkpoint_dir is None else TrainingCheckpoint(checkpoint_dir, config.trajectory)
    callbacks = _callbacks(config, schedule, samples, device, verbose, checkpoint, checkpoint_every)
    for callback in callbacks:
        callback.on_train_begin(run)
    try:
        for step in range(run.first_step, run.max_steps):
            loss = _step(run, ema, schedule, samples, config.batch_size, step)
            for callback in callbacks:
                callback.on_step_end(run, step, loss)
    except KeyboardInterrupt:
        network.eval()
        for callback in callbacks:
            callback.on_interrupt(run)
        raise TrainingInterrupted(ema.network, run.loss_curve, run.max_steps, checkpoint) from None
    network.eval()
    for callback in callbacks:
        callback.on_train_end(run)
    return ema.network, run.loss_curve


def _callbacks(config, schedule, samples, device, verbose, checkpoint, checkpoint_every):
    """The callbacks of one training, in the order they are called."""
    losses = LossHistory(config.learning_rate, loss_read_interval(device))
    divergence = DivergenceCheck(config.learning_rate, schedule, samples, config.batch_size)
    resumable = [] if checkpoint is None else [Checkpointing(checkpoint, checkpoint_every, losses, divergence)]
    notice = [CostNotice()] if verbose <= 0 else []
    return [losses, *resumable, ProgressBar(disable=verbose <= 0), divergence, *notice]


def _step(run, ema, schedule, samples, batch_size, step):
    """One optimizer step on a batch drawn by ``run.generator``, then the EMA update; return its loss tensor."""
    generator = run.generator
    index = torch.randint(
        samples.shape[0], (min(batch_size, samples.shape[0]),), generator=generator, device=generator.device
    )
    x0 = samples[index.to(samples.device)].to(run.device, non_blocking=True)
    loss = denoising_loss(run.network, schedule, x0, generator)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    ema.update(run.network, step)
    return loss
