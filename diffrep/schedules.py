"""Noise schedules: timestep index <-> alpha-bar <-> sigma.

Conventions used throughout diffrep
-----------------------------------
* A *timestep* ``t`` is an integer index into the training schedule,
  ``0 <= t < num_train_timesteps``; **larger t means noisier**.
* The schedule is variance preserving (DDPM):
  ``x_t = sqrt(abar_t) * x0 + sqrt(1 - abar_t) * eps``.
* The equivalent variance-exploding noise level used by the theory
  (``x0 + sigma * eps`` after dividing by ``sqrt(abar_t)``) is
  ``sigma_t = sqrt((1 - abar_t) / abar_t)``.

The cumulative products ``abar_t`` come from a diffusers ``DDPMScheduler``;
nothing here re-derives a beta schedule by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from typing import Any

PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")
# The longest schedule accepted: far beyond any published one, far below a memory problem.
MAX_TIMESTEPS = 100_000


def _check_length(num_train_timesteps):
    """Raise ``ValueError`` unless the schedule length is an integer in ``[1, MAX_TIMESTEPS]``."""
    if (
        isinstance(num_train_timesteps, bool)
        or not isinstance(num_train_timesteps, (int, np.integer))
        or not 1 <= num_train_timesteps <= MAX_TIMESTEPS
    ):
        raise ValueError(
            f"num_train_timesteps must be an integer in [1, {MAX_TIMESTEPS}], got {num_train_timesteps!r}."
        )


def check_scheduler_config(config: dict[str, Any]):
    """Validate the values of a scheduler config that ``DDPMScheduler`` would take blindly.

    Parameters
    ----------
    config : dict
        A diffusers scheduler config.

    Raises
    ------
    ValueError
        If ``num_train_timesteps`` is not an integer in ``[1, MAX_TIMESTEPS]``,
        ``beta_start`` or ``beta_end`` is not a number in ``[0, 1)``, or
        ``trained_betas`` is not a list of such numbers, one per timestep.
    """
    length = config.get("num_train_timesteps", 1000)
    _check_length(length)
    for name in ("beta_start", "beta_end"):
        if name in config:
            _check_betas(name, config[name])
    betas = config.get("trained_betas")
    if betas is not None:
        _check_betas("trained_betas", betas)
        if len(betas) != length:
            raise ValueError(f"trained_betas must hold num_train_timesteps={length} values, got {len(betas)}.")


def _check_betas(name, values):
    """Raise ``ValueError`` unless ``values`` are real numbers in ``[0, 1)``."""
    try:
        array = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        array = np.array([np.nan])
    if isinstance(values, (str, bool)) or not np.all((array >= 0) & (array < 1)):
        shown = values if array.size == 1 else f"{array.size} values, e.g. {array[~((array >= 0) & (array < 1))][:1]}"
        raise ValueError(f"{name} must hold numbers in [0, 1), got {shown}.")


class NoiseSchedule:
    """A DDPM noise schedule with the conversions diffrep needs.

    Parameters
    ----------
    num_train_timesteps : int, default=1000
        Length of the training schedule.
    beta_schedule : str, default="linear"
        Any beta schedule diffusers' ``DDPMScheduler`` accepts
        (``"linear"``, ``"scaled_linear"``, ``"squaredcos_cap_v2"``, ``"sigmoid"``).
    beta_start, beta_end : float, default=1e-4, 0.02
        End points of the beta schedule.
    prediction_type : {"epsilon", "sample", "v_prediction"}, default="epsilon"
        What the denoiser predicts; fixes the training target and how the clean
        estimate ``x0`` is recovered from its output.

    Attributes
    ----------
    alphas_cumprod : torch.Tensor of shape (num_train_timesteps,)
        ``abar_t`` for every timestep, float64.
    """

    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        prediction_type: str = "epsilon",
    ):
        from diffusers import DDPMScheduler

        if prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}."
            )
        _check_length(num_train_timesteps)
        try:
            scheduler = DDPMScheduler(
                num_train_timesteps=int(num_train_timesteps),
                beta_schedule=beta_schedule,
                beta_start=beta_start,
                beta_end=beta_end,
                prediction_type=prediction_type,
            )
        except NotImplementedError as exc:
            raise ValueError(f"beta_schedule {beta_schedule!r} is not supported: {exc}") from None
        self._init_from_scheduler(scheduler)

    @classmethod
    def from_scheduler(cls, scheduler):
        """Build a schedule from a diffusers scheduler (or its config dict).

        Parameters
        ----------
        scheduler : diffusers.SchedulerMixin or dict
            Any scheduler exposing ``alphas_cumprod`` (DDPM, DDIM, ...), or a
            config dict that ``DDPMScheduler.from_config`` accepts.

        Returns
        -------
        schedule : NoiseSchedule

        Raises
        ------
        ValueError
            If the config holds invalid values (see :func:`check_scheduler_config`)
            or the schedule's ``alphas_cumprod`` are not finite values in ``(0, 1]``,
            one per timestep.
        """
        from diffusers import DDPMScheduler

        if isinstance(scheduler, dict):
            check_scheduler_config(scheduler)
            scheduler = DDPMScheduler.from_config(scheduler)
        if not hasattr(scheduler, "alphas_cumprod"):
            raise ValueError(
                f"scheduler {type(scheduler).__name__} has no alphas_cumprod; "
                "diffrep needs a DDPM-style (discrete, variance-preserving) scheduler."
            )
        schedule = cls.__new__(cls)
        schedule._init_from_scheduler(scheduler)
        return schedule

    def _init_from_scheduler(self, scheduler):
        config = scheduler.config
        self.num_train_timesteps = int(config.num_train_timesteps)
        self.beta_schedule = config.get("beta_schedule", "linear")
        self.beta_start = float(config.get("beta_start", 1e-4))
        self.beta_end = float(config.get("beta_end", 0.02))
        self.prediction_type = config.get("prediction_type", "epsilon")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(
                f"scheduler prediction_type {self.prediction_type!r} is not one of {PREDICTION_TYPES}."
            )
        self.scheduler_config = dict(config)
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().to(torch.float64).clone()
        abar = self.alphas_cumprod
        if abar.shape != (self.num_train_timesteps,) or not (torch.isfinite(abar) & (abar > 0) & (abar <= 1)).all():
            raise ValueError(
                f"the schedule's alphas_cumprod must be {self.num_train_timesteps} finite values in (0, 1]; "
                "check beta_start, beta_end and trained_betas."
            )

    def __repr__(self):
        return (
            f"NoiseSchedule(num_train_timesteps={self.num_train_timesteps}, "
            f"beta_schedule={self.beta_schedule!r}, prediction_type={self.prediction_type!r})"
        )

    def to_diffusers(self):
        """Return an equivalent diffusers ``DDPMScheduler`` (for ``save_pretrained``).

        Returns
        -------
        scheduler : diffusers.DDPMScheduler
        """
        from diffusers import DDPMScheduler

        return DDPMScheduler.from_config(self.scheduler_config)

    def sigmas(self, timesteps):
        """Variance-exploding noise level ``sigma_t = sqrt((1 - abar_t) / abar_t)``.

        Parameters
        ----------
        timesteps : array-like of int
            Schedule indices.

        Returns
        -------
        sigmas : ndarray of float64
        """
        abar = self.alphas_cumprod[torch.as_tensor(np.asarray(timesteps, dtype=np.int64))]
        return torch.sqrt((1.0 - abar) / abar).numpy()

    def timesteps_for_sigmas(self, sigmas):
        """Timesteps whose noise level is closest (in log sigma) to each requested sigma.

        Parameters
        ----------
        sigmas : array-like of float
            Positive noise levels in the variance-exploding convention.

        Returns
        -------
        timesteps : ndarray of int64
        """
        sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
        if not np.all(np.isfinite(sigmas)) or np.any(sigmas <= 0):
            raise ValueError(f"sigmas must be positive and finite, got {sigmas.tolist()}.")
        grid = np.log(self.sigmas(np.arange(self.num_train_timesteps)))
        return np.abs(grid[None, :] - np.log(sigmas)[:, None]).argmin(axis=1).astype(np.int64)

    def _coefficients(self, timesteps, like):
        """``sqrt(abar_t)`` and ``sqrt(1 - abar_t)`` shaped to broadcast against ``like``.

        The two tables are cast and moved once per (device, dtype) and cached, so
        no host-to-device copy happens per call.
        """
        key = (like.device, like.dtype)
        tables = self._tables.get(key)
        if tables is None:
            signal = self.alphas_cumprod.sqrt().to(like.dtype)
            noise = (1.0 - self.alphas_cumprod).sqrt().to(like.dtype)
            tables = self._tables[key] = (signal.to(like.device), noise.to(like.device))
        index = timesteps.to(like.device)
        shape = (-1,) + (1,) * (like.ndim - 1)
        return tables[0][index].reshape(shape), tables[1][index].reshape(shape)

    @property
    def _tables(self):
        if "_device_tables" not in self.__dict__:
            self._device_tables = {}
        return self._device_tables

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_device_tables", None)
        return state

    def add_noise(self, x0, noise, timesteps):
        """Forward process ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``.

        Parameters
        ----------
        x0, noise : torch.Tensor of shape (batch, ...)
        timesteps : torch.LongTensor of shape (batch,)

        Returns
        -------
        x_t : torch.Tensor
        """
        signal, noise_scale = self._coefficients(timesteps, x0)
        return signal * x0 + noise_scale * noise

    def training_target(self, x0, noise, timesteps):
        """What a denoiser of this ``prediction_type`` is trained to output.

        Parameters
        ----------
        x0, noise : torch.Tensor of shape (batch, ...)
        timesteps : torch.LongTensor of shape (batch,)

        Returns
        -------
        target : torch.Tensor
        """
        if self.prediction_type == "epsilon":
            return noise
        if self.prediction_type == "sample":
            return x0
        signal, noise_scale = self._coefficients(timesteps, x0)
        return signal * noise - noise_scale * x0

    def predict_x0(self, x_t, model_output, timesteps):
        """Posterior-mean estimate of the clean input from a denoiser's output.

        Parameters
        ----------
        x_t : torch.Tensor of shape (batch, ...)
            The noisy input the denoiser saw.
        model_output : torch.Tensor of shape (batch, ...)
            The denoiser's prediction (of ``prediction_type``).
        timesteps : torch.LongTensor of shape (batch,)

        Returns
        -------
        x0_hat : torch.Tensor
        """
        if self.prediction_type == "sample":
            return model_output
        signal, noise_scale = self._coefficients(timesteps, x_t)
        if self.prediction_type == "epsilon":
            return (x_t - noise_scale * model_output) / signal
        return signal * x_t - noise_scale * model_output
