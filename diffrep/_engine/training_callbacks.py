"""What the training loop does besides training, as callbacks: loss reads, checkpoints, divergence, progress, cost.

:func:`~diffrep._engine.training.train_denoiser` runs the steps and calls, in
order, each callback's hooks (as skorch's callbacks are called):

``on_train_begin(run)``
    Before the first step (after a checkpoint is restored, for the callbacks
    after :class:`Checkpointing`).
``on_step_end(run, step, loss)``
    After optimizer and EMA updates of step ``step`` (0-based), with the
    step's loss as a device tensor: reading it waits for the device.
``on_train_end(run)``
    After the last step.
``on_interrupt(run)``
    On ``KeyboardInterrupt``, before the loop raises ``TrainingInterrupted``.

Each callback is a small object of its own, testable alone with a
:class:`TrainingRun` built by hand.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .caller import user_stacklevel
from .finiteness import non_finite_tensors
from .notices import CostWarning
from .capture import first_tensor

_clock = time.perf_counter  # replaced by tests that simulate a slow machine


@dataclass
class TrainingRun:
    """The state of one training, shared by the loop and its callbacks.

    Parameters
    ----------
    network : torch.nn.Module
        The network being trained.
    ema_network : torch.nn.Module
        Its exponential moving average, returned by the training.
    optimizer : torch.optim.Optimizer
    generator : torch.Generator
        Draws batches, noise and timesteps.
    max_steps : int
        Steps the training is to reach (resumed steps included).
    device : torch.device
    loss_curve : list of float, default=[]
        The losses read so far; a restored checkpoint fills it in place.

    Attributes
    ----------
    first_step : int
        The step this run starts at; set by :class:`Checkpointing` when it
        restores a checkpoint, 0 otherwise.
    """

    network: torch.nn.Module
    ema_network: torch.nn.Module
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    max_steps: int
    device: torch.device
    loss_curve: list = field(default_factory=list)
    first_step: int = 0


class TrainingCallback:
    """A no-op for every hook of the training loop; subclasses override the ones they need."""

    def on_train_begin(self, run):
        """Called once before the first step.

        Parameters
        ----------
        run : TrainingRun
        """

    def on_step_end(self, run, step, loss):
        """Called after every step.

        Parameters
        ----------
        run : TrainingRun
        step : int
            The 0-based index of the step just done.
        loss : torch.Tensor
            Its loss, a scalar on the device, not yet read.
        """

    def on_train_end(self, run):
        """Called once after the last step.

        Parameters
        ----------
        run : TrainingRun
        """

    def on_interrupt(self, run):
        """Called on ``KeyboardInterrupt``, before the loop raises ``TrainingInterrupted``.

        Parameters
        ----------
        run : TrainingRun
        """


def loss_read_interval(device):
    """Steps between reads of the loss on the host: every step on the CPU (free there), else every 50.

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    steps : int
    """
    return 1 if device.type == "cpu" else 50


class LossHistory(TrainingCallback):
    """The loss of every step, kept as device tensors and read on the host in batches, into ``run.loss_curve``.

    Reading a loss computed on a GPU waits for the GPU to finish; reading a
    batch of them at once (every ``read_every`` steps, and after the last)
    keeps the host from waiting at every step. A NaN or infinite loss is
    found at the read, by step.

    Parameters
    ----------
    learning_rate : float
        Named in the error of a diverging loss.
    read_every : int
        Steps between reads.
    """

    def __init__(self, learning_rate, read_every):
        self.learning_rate = learning_rate
        self.read_every = read_every
        self.pending = []
        self.curve = []

    def on_train_begin(self, run):
        """Append the losses to ``run.loss_curve``."""
        self.curve = run.loss_curve

    def on_step_end(self, run, step, loss):
        """Keep the step's loss without reading it; read the pending ones when due."""
        self.pending.append(loss.detach())
        done = step + 1
        if done % self.read_every == 0 or done == run.max_steps:
            self.read()

    def on_interrupt(self, run):
        """Keep the losses of the completed steps, finite or not."""
        self.read(check=False)

    def read(self, check=True):
        """Move the pending losses to the curve; return the latest one (NaN when none).

        Parameters
        ----------
        check : bool, default=True
            Raise ``FloatingPointError`` at the first NaN or infinite loss;
            the losses before it are in the curve then.

        Returns
        -------
        loss : float
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


def _non_finite(*networks):
    """The name of a parameter or buffer of ``networks`` holding NaN or infinity, or None."""
    for network in networks:
        names = non_finite_tensors(network.state_dict().items())
        if names:
            return names[0]
    return None


class DivergenceCheck(TrainingCallback):
    """Refuses a training whose weights or outputs became NaN or infinite.

    Checks the weights on request (:meth:`check_weights`, before every
    checkpoint), the trained network after the last step (its weights, then
    its outputs on a batch of training samples: finite but huge weights can
    still overflow in the forward pass), and, on an interrupt, keeps nothing
    of non-finite weights.

    Parameters
    ----------
    learning_rate : float
        Named in the errors.
    schedule : NoiseSchedule
        Noises the batch the trained network is run on.
    samples : torch.Tensor
        Training samples; the first ``batch_size`` are that batch.
    batch_size : int
    """

    def __init__(self, learning_rate, schedule, samples, batch_size):
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.samples = samples
        self.batch_size = batch_size

    def check_weights(self, step, *networks):
        """Raise ``FloatingPointError`` when a weight of ``networks`` is NaN or infinite.

        Parameters
        ----------
        step : int or str
            Named in the error.
        *networks : torch.nn.Module
        """
        name = _non_finite(*networks)
        if name is not None:
            raise FloatingPointError(
                f"The denoiser's weights became NaN or infinite (e.g. {name}) at training step {step}; "
                f"try a lower learning_rate (now {self.learning_rate})."
            )

    @torch.no_grad()
    def on_train_end(self, run):
        """Raise ``FloatingPointError`` unless the averaged weights are finite and give finite outputs.

        The network runs on noised training samples at timesteps spread over
        the whole schedule, with noise from its own fixed generator (the
        training generator is left as it is).
        """
        step = "the last step"
        ema_network = run.ema_network
        self.check_weights(step, ema_network)
        device = next(ema_network.parameters(), torch.empty(0)).device
        x0 = self.samples[: min(self.batch_size, self.samples.shape[0])].to(device)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0)).to(device)
        timesteps = torch.linspace(0, self.schedule.num_train_timesteps - 1, x0.shape[0]).long().to(device)
        output = first_tensor(ema_network(self.schedule.add_noise(x0, noise, timesteps), timesteps))
        if not torch.isfinite(output).all():
            raise FloatingPointError(
                f"The trained denoiser's weights are finite after {step}, but its outputs on the training data "
                f"overflow to NaN or infinity; try a lower learning_rate (now {self.learning_rate})."
            )

    def on_interrupt(self, run):
        """Raise a plain ``KeyboardInterrupt`` (keeping nothing) when the averaged weights are not finite."""
        if _non_finite(run.ema_network) is not None:
            raise KeyboardInterrupt(
                f"Training was interrupted after {len(run.loss_curve)} of {run.max_steps} steps, when its "
                "weights had already become NaN or infinite; nothing is kept."
            ) from None


class Checkpointing(TrainingCallback):
    """Resumes a checkpoint of this very run, then checkpoints every ``every`` steps and after the last.

    Before each checkpoint the pending losses are read (the curve is saved
    with it) and the weights checked: no non-finite network is checkpointed.

    Parameters
    ----------
    checkpoint : TrainingCheckpoint
    every : int
    losses : LossHistory
    divergence : DivergenceCheck
    """

    def __init__(self, checkpoint, every, losses, divergence):
        self.checkpoint = checkpoint
        self.every = every
        self.losses = losses
        self.divergence = divergence

    def on_train_begin(self, run):
        """Restore the run's state (and loss curve) from its checkpoint, when there is one."""
        run.loss_curve[:] = self.checkpoint.restore(
            run.network, run.ema_network, run.optimizer, run.generator, run.max_steps
        )
        run.first_step = len(run.loss_curve)

    def on_step_end(self, run, step, loss):
        """Checkpoint when due."""
        done = step + 1
        if done % self.every == 0 or done == run.max_steps:
            self.losses.read()
            self.divergence.check_weights(step, run.network, run.ema_network)
            self.checkpoint.save(run.network, run.ema_network, run.optimizer, run.generator, run.loss_curve)


class ProgressBar(TrainingCallback):
    """A tqdm bar of the steps, with the latest loss read; it stays on screen when done.

    Parameters
    ----------
    disable : bool
        Show nothing (``verbose=0``).
    """

    def __init__(self, disable):
        self.disable = disable
        self.bar = None
        self.shown = 0

    def on_train_begin(self, run):
        """Open the bar at the run's first step."""
        self.bar = tqdm(
            desc="training denoiser", disable=self.disable, leave=True, initial=run.first_step, total=run.max_steps
        )
        self.shown = len(run.loss_curve)

    def on_step_end(self, run, step, loss):
        """Advance the bar; show the latest loss when one was read since."""
        if len(run.loss_curve) > self.shown:
            self.shown = len(run.loss_curve)
            self.bar.set_postfix(loss=f"{run.loss_curve[-1]:.4f}", refresh=False)
        self.bar.update(1)

    def on_train_end(self, run):
        """Close the bar."""
        self.bar.close()

    on_interrupt = on_train_end


def _synchronize(device):
    """Wait for the work queued on a CUDA device (a no-op elsewhere), so that clocks measure it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _duration(seconds):
    """A rounded duration for people: '3 minutes', '1.5 hours'."""
    if seconds < 90:
        return f"{seconds:.0f} seconds"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"


class CostNotice(TrainingCallback):
    """Says once, in a warning, how long a silent training will take when that is over a minute.

    The estimate is taken after ``MEASURED_STEPS`` steps (the first one, which
    pays one-off costs, excluded) and names the way to see progress and the
    way to spend less.

    Parameters
    ----------
    n_steps : int or None, default=None
        Steps this training will run; None takes them from the run at its start.
    device : torch.device or None, default=None
        Where it runs; None takes the run's.
    """

    MEASURED_STEPS = 5
    THRESHOLD_SECONDS = 60.0

    def __init__(self, n_steps=None, device=None):
        self.n_steps = n_steps
        self.device = device
        self.done = 0
        self.started = None

    def on_train_begin(self, run):
        """Take the steps to run and the device from ``run``."""
        self.n_steps, self.device = run.max_steps - run.first_step, run.device

    def on_step_end(self, run, step, loss):
        """Record the step."""
        self.step_done()

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
