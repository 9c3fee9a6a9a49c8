"""The denoising-score-matching training loop shared by every trainable denoiser."""

from __future__ import annotations

import copy
import math
import time
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .caller import user_stacklevel
from .notices import CostWarning
from .capture import first_tensor
from .checkpoints import TrainingCheckpoint
from .finiteness import non_finite_tensors

_clock = time.perf_counter  # replaced by tests that simulate a slow machine


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


def _non_finite(*networks):
    """The name of a parameter or buffer of ``networks`` holding NaN or infinity, or None."""
    for network in networks:
        names = non_finite_tensors(network.state_dict().items())
        if names:
            return names[0]
    return None


def _check_weights(step, learning_rate, *networks):
    """Raise ``FloatingPointError`` when a network's weights hold NaN or infinity."""
    name = _non_finite(*networks)
    if name is not None:
        raise FloatingPointError(
            f"The denoiser's weights became NaN or infinite (e.g. {name}) at training step {step}; "
            f"try a lower learning_rate (now {learning_rate})."
        )


@torch.no_grad()
def _check_trained(ema_network, schedule, samples, batch_size, learning_rate):
    """Raise ``FloatingPointError`` unless the trained weights are finite and give finite outputs.

    Finite but huge weights (one step at a very large learning rate) can
    still overflow in the forward pass, so the averaged network is run once on
    a batch of noised training samples, at timesteps spread over the whole
    schedule, with noise from its own fixed generator (the training generator
    is left as it is).
    """
    step = "the last step"
    _check_weights(step, learning_rate, ema_network)
    device = next(ema_network.parameters(), torch.empty(0)).device
    x0 = samples[: min(batch_size, samples.shape[0])].to(device)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)).to(device)
    timesteps = torch.linspace(0, schedule.num_train_timesteps - 1, x0.shape[0]).long().to(device)
    output = first_tensor(ema_network(schedule.add_noise(x0, noise, timesteps), timesteps))
    if not torch.isfinite(output).all():
        raise FloatingPointError(
            f"The trained denoiser's weights are finite after {step}, but its outputs on the training data "
            f"overflow to NaN or infinity; try a lower learning_rate (now {learning_rate})."
        )


class CostNotice:
    """Says once, in a warning, how long a silent training will take when that is over a minute.

    The estimate is taken after ``MEASURED_STEPS`` steps (the first one, which
    pays one-off costs, excluded) and names the way to see progress and the
    way to spend less.

    Parameters
    ----------
    n_steps : int
        Steps this training will run.
    device : torch.device
    """

    MEASURED_STEPS = 5
    THRESHOLD_SECONDS = 60.0

    def __init__(self, n_steps, device):
        self.n_steps = n_steps
        self.device = device
        self.done = 0
        self.started = None

    def step_done(self):
        """Record one finished step; warn once when the estimate is known and long."""
        self.done += 1
        if self.done == 1:
            _synchronize(self.device)
            self.started = _clock()
        elif self.done == 1 + self.MEASURED_STEPS:
            _synchronize(self.device)
            seconds = (_clock() - self.started) / self.MEASURED_STEPS * self.n_steps
            if seconds > self.THRESHOLD_SECONDS:
                warnings.warn(
                    f"Training the denoiser ({self.n_steps} steps on {self.device}) will take about "
                    f"{_duration(seconds)}. Pass verbose=1 to see its progress; memory= keeps the trained "
                    "denoiser for later fits; a smaller max_steps trades some accuracy for time (the user "
                    "guide's 'Training time' has measured figures).",
                    CostWarning,
                    stacklevel=user_stacklevel(),
                )


def _synchronize(device):
    """Wait for the work queued on a CUDA device (a no-op elsewhere), so that clocks measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class LossRecord:
    """The loss of every step, kept as device tensors and read on the host in batches.

    Reading a loss computed on a GPU waits for the GPU to finish; reading a
    batch of them at once (see :func:`loss_read_interval`) keeps the host from
    waiting at every step. A NaN or infinite loss is found at the read, by step.

    Parameters
    ----------
    curve : list of float
        The losses read so far (resumed steps included); extended in place.
    learning_rate : float
        Named in the error of a diverging loss.
    """

    def __init__(self, curve, learning_rate):
        self.curve = curve
        self.learning_rate = learning_rate
        self.pending = []

    def add(self, loss):
        """Keep the (scalar tensor) loss of the step just done, without reading it."""
        self.pending.append(loss.detach())

    def read(self, check=True):
        """Move the pending losses to ``curve``; return the latest one.

        Raises ``FloatingPointError`` at the first NaN or infinite loss when
        ``check``; the losses before it are in ``curve`` then.
        """
        if self.pending:
            values = torch.stack(self.pending).cpu().tolist()
            self.pending = []
            for value in values:
                if check and not math.isfinite(value):
                    raise FloatingPointError(
                        f"The denoising loss became {value} at training step {len(self.curve)}; "
                        f"try a lower learning_rate (now {self.learning_rate})."
                    )
                self.curve.append(value)
        return self.curve[-1] if self.curve else math.nan


def loss_read_interval(device):
    """Steps between reads of the loss on the host: every step on the CPU (free there), else every 50."""
    return 1 if device.type == "cpu" else 50


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


def _duration(seconds):
    """A rounded duration for people: '3 minutes', '1.5 hours'."""
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


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
    max_steps, batch_size, learning_rate = config.max_steps, config.batch_size, config.learning_rate
    generator = config.generator(device)
    checkpoint = None if checkpoint_dir is None else TrainingCheckpoint(checkpoint_dir, config.trajectory)
    network.to(device).train().requires_grad_(True)
    ema = ExponentialMovingAverage(network, config.ema_decay)
    optimizer = make_optimizer(network, learning_rate, device)
    loss_curve = []
    if checkpoint is not None:
        loss_curve = checkpoint.restore(network, ema.network, optimizer, generator, max_steps)
    samples = training_samples(data, device)
    losses, read_every = LossRecord(loss_curve, learning_rate), loss_read_interval(device)
    steps = range(len(loss_curve), max_steps)
    progress = tqdm(
        steps, desc="training denoiser", disable=verbose <= 0, leave=True, initial=steps.start, total=max_steps
    )
    notice = CostNotice(max_steps - steps.start, device) if verbose <= 0 else None
    try:
        for step in progress:
            index = torch.randint(
                samples.shape[0], (min(batch_size, samples.shape[0]),), generator=generator, device=generator.device
            )
            x0 = samples[index.to(samples.device)].to(device, non_blocking=True)
            loss = denoising_loss(network, schedule, x0, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            ema.update(network, step)
            losses.add(loss)
            done = step + 1
            checkpoint_due = checkpoint is not None and (done % checkpoint_every == 0 or done == max_steps)
            if done % read_every == 0 or done == max_steps or checkpoint_due:
                progress.set_postfix(loss=f"{losses.read():.4f}", refresh=False)
            if notice is not None:
                notice.step_done()
            if checkpoint_due:
                _check_weights(step, learning_rate, network, ema.network)
                checkpoint.save(network, ema.network, optimizer, generator, loss_curve)
    except KeyboardInterrupt:
        network.eval()
        losses.read(check=False)
        if _non_finite(ema.network) is not None:
            raise KeyboardInterrupt(
                f"Training was interrupted after {len(loss_curve)} of {max_steps} steps, when its weights had "
                "already become NaN or infinite; nothing is kept."
            ) from None
        raise TrainingInterrupted(ema.network, loss_curve, max_steps, checkpoint) from None
    network.eval()
    _check_trained(ema.network, schedule, samples, batch_size, learning_rate)
    return ema.network, loss_curve
