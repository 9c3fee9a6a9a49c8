"""Denoisers of the MoLRG model: the closed-form optimum and the paper's learnable form.

Both follow the diffrep denoiser protocol (see :mod:`diffrep.denoisers`):
``forward(x_t, t)`` takes a **variance-preserving** input
``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` and a batch of timestep
indices ``t`` (larger = noisier), and returns an estimate of ``x0``
(``prediction_type = "sample"``). Internally the input is divided by
``sqrt(abar_t)`` to get the theory's variance-exploding form
``x = x0 + sigma_t eps`` with ``sigma_t = sqrt((1 - abar_t) / abar_t)``.

The network is ``x_theta(x, t) = U h(x, t)`` with ``U = [U_1, ..., U_K]`` and the
representation ``h = D(x, t) U^T x``, ``D = diag(beta_1 I, ..., beta_K I)``,
``beta_k = xi + (zeta - xi) w_k(x)`` (see :mod:`diffrep.theory.model`). ``h`` passes
through the identity submodule ``"h"`` so that forward hooks can capture it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .model import (
    _check_positive_int,
    _check_ranks,
    _check_real,
    _check_weights,
    _noise_coefficients,
    _split_bases,
    k_subspaces,
    stack_bases,
)
from ..schedules import NoiseSchedule

if TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import ArrayLike

__all__ = ["LearnedMoLRGDenoiser", "MoLRGDenoiser"]


def _check_schedule(schedule):
    """The schedule to use: DDPM linear with x0 prediction when None."""
    if schedule is None:
        return NoiseSchedule(prediction_type="sample")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(
            "schedule must be a diffrep.schedules.NoiseSchedule or None, "
            f"got {type(schedule).__name__}."
        )
    if schedule.prediction_type != "sample":
        raise ValueError(
            "MoLRG denoisers predict x0, so schedule.prediction_type must be 'sample', "
            f"got {schedule.prediction_type!r}; build the schedule with "
            "NoiseSchedule(..., prediction_type='sample')."
        )
    return schedule


class _SubspaceDenoiser(nn.Module):
    """Shared forward pass of the MoLRG denoisers; subclasses provide ``basis``.

    Parameters
    ----------
    ranks : tuple of int
        Rank of each class subspace.
    delta : float
        Data noise of the model, >= 0.
    weights : ndarray of shape (n_classes,)
        Validated class probabilities.
    schedule : NoiseSchedule or None
        Noise schedule mapping timesteps to noise levels.
    """

    prediction_type = "sample"
    default_layers = ("h",)
    input_scaling = "none"

    def __init__(self, ranks, delta, weights, schedule):
        super().__init__()
        self.ranks = tuple(ranks)
        self.delta = _check_real(delta, "delta", 0)
        self.noise_schedule = _check_schedule(schedule)
        self.h = nn.Identity()
        block_index = torch.as_tensor(np.repeat(np.arange(len(ranks)), ranks))
        log_weights = torch.log(torch.as_tensor(weights, dtype=torch.float32))
        self.register_buffer("log_weights", log_weights)
        self.register_buffer("block_index", block_index, persistent=False)
        self.register_buffer(
            "block_membership",
            nn.functional.one_hot(block_index, len(ranks)).to(torch.float32),
            persistent=False,
        )

    @property
    def basis(self):
        """``U = [U_1, ..., U_K]``, a tensor of shape (n_features, sum(ranks))."""
        raise NotImplementedError

    def get_bases(self):
        """The class bases as numpy arrays, in the layout of :func:`diffrep.theory.model.make_molrg`.

        Returns
        -------
        bases : ndarray of shape (n_classes, n_features, rank) or list of ndarray
            A list of ``(n_features, rank_k)`` arrays when the ranks differ.
        """
        basis = self.basis.detach().cpu().to(torch.float64).numpy()
        return _split_bases(basis, self.ranks)

    def _noise_terms(self, t, x):
        """``sqrt(abar_t)`` and the closed-form scalars per sample, shape (batch, 1) each."""
        t = torch.as_tensor(t, dtype=torch.long, device=x.device).reshape(-1)
        if len(t) not in (1, len(x)):
            raise ValueError(f"t must hold 1 or batch={len(x)} timesteps, got {len(t)}.")
        abar = self.noise_schedule.alphas_cumprod.to(x.device, torch.float64)[t.expand(len(x))]
        sigma = torch.sqrt((1.0 - abar) / abar)
        terms = (abar.sqrt(), *_noise_coefficients(sigma, self.delta, xp=torch))
        return [value.to(x.dtype).reshape(-1, 1) for value in terms]

    def forward(self, x_t, t):
        """Posterior-mean estimate of ``x0`` from a variance-preserving noisy input.

        Parameters
        ----------
        x_t : torch.Tensor of shape (batch, n_features)
            Noisy input ``sqrt(abar_t) x0 + sqrt(1 - abar_t) eps``.
        t : torch.LongTensor of shape (batch,)
            Timestep indices into ``noise_schedule`` (larger = noisier).

        Returns
        -------
        x0_hat : torch.Tensor of shape (batch, n_features)
            ``U h``; ``h`` (shape ``(batch, sum(ranks))``) is the output of submodule ``"h"``.
        """
        x = x_t.reshape(len(x_t), -1)
        signal, zeta, xi, energy_coef, log_ratio = self._noise_terms(t, x)
        basis = self.basis.to(x.dtype)
        membership = self.block_membership.to(x.dtype)
        coords = (x / signal) @ basis
        scores = self.log_weights.to(x.dtype) + 0.5 * (
            energy_coef * (coords**2 @ membership) - log_ratio * membership.sum(dim=0)
        )
        posterior = torch.softmax(scores, dim=1)
        shrink = xi + (zeta - xi) * posterior[:, self.block_index]
        h = self.h(shrink * coords)
        return (h @ basis.T).reshape(x_t.shape)


class MoLRGDenoiser(_SubspaceDenoiser):
    """The closed-form optimal denoiser of the (zero-mean) MoLRG model.

    Equals :func:`diffrep.theory.model.molrg_posterior_mean` at the timestep's noise
    level, as a ``torch.nn.Module`` following the diffrep denoiser protocol.

    Parameters
    ----------
    bases : array-like of shape (n_classes, n_features, rank) or sequence of arrays
        Orthonormal, mutually orthogonal class bases (per-class ranks allowed).
    delta : float
        Data noise of the model, >= 0.
    weights : array-like of shape (n_classes,), default=None
        Class probabilities; uniform when None.
    schedule : NoiseSchedule, default=None
        Maps timesteps to noise levels; its ``prediction_type`` must be
        ``"sample"``. Default: DDPM linear, 1000 steps, x0 prediction.

    Attributes
    ----------
    prediction_type : str
        ``"sample"``: ``forward`` returns the estimate of ``x0``.
    noise_schedule : NoiseSchedule
        The schedule in use.
    default_layers : tuple of str
        ``("h",)``, the representation.
    input_scaling : str
        ``"none"``: the model is defined on the raw data, so a featurizer with
        ``scaling="auto"`` leaves the data unscaled.
    ranks : tuple of int
        Rank of each class subspace.
    delta : float
        Data noise of the model.
    basis : torch.Tensor of shape (n_features, sum(ranks))
        ``[U_1, ..., U_K]``, a float32 buffer (cast to the input's dtype in ``forward``).

    Examples
    --------
    >>> import torch
    >>> from diffrep.theory.model import make_molrg
    >>> from diffrep.theory.denoisers import MoLRGDenoiser
    >>> X, y, bases = make_molrg(8, 50, 3, 5, 0.2, random_state=0, return_bases=True)
    >>> model = MoLRGDenoiser(bases, delta=0.2)
    >>> model(torch.as_tensor(X, dtype=torch.float32), torch.full((8,), 50)).shape
    torch.Size([8, 50])
    """

    def __init__(
        self,
        bases: np.ndarray | Sequence[ArrayLike],
        delta: float,
        weights: ArrayLike | None = None,
        schedule: NoiseSchedule | None = None,
    ):
        basis, ranks = stack_bases(bases)
        super().__init__(ranks, delta, _check_weights(weights, len(ranks)), schedule)
        self.register_buffer("_basis", torch.as_tensor(basis, dtype=torch.float32))

    @property
    def basis(self):
        """``U = [U_1, ..., U_K]``, a tensor of shape (n_features, sum(ranks))."""
        return self._basis


class LearnedMoLRGDenoiser(_SubspaceDenoiser):
    """The paper's learnable MoLRG denoiser ``x_theta = U h(x, t)`` with orthonormal ``U``.

    ``U`` is the orthonormal factor of the QR decomposition of an unconstrained
    parameter (signs fixed so the diagonal of ``R`` is positive), so any gradient
    optimizer keeps it orthonormal and the module stays picklable. Train it with
    the x0-prediction loss ``E ||x_theta(x_t, t) - x0||^2`` over random ``t``.
    Initialize with :meth:`fit_subspaces` (K-subspaces clustering): from a random
    ``U`` the denoising loss can stall with one class split across two blocks.

    Parameters
    ----------
    n_features : int
        Ambient dimension ``n``.
    n_classes : int
        Number of class subspaces ``K``.
    rank : int or sequence of int
        Dimension of each class subspace; ``sum of ranks <= n_features``.
    delta : float
        Data noise of the model, >= 0 (fixed, not learned).
    schedule : NoiseSchedule, default=None
        Maps timesteps to noise levels; its ``prediction_type`` must be
        ``"sample"``. Default: DDPM linear, 1000 steps, x0 prediction.
    init_bases : array-like of shape (n_classes, n_features, rank) or sequence, default=None
        Initial orthonormal class bases; a random orthonormal ``U`` (from torch's
        global generator, like any ``nn.Module`` initialization) when None.

    Attributes
    ----------
    prediction_type : str
        ``"sample"``: ``forward`` returns the estimate of ``x0``.
    noise_schedule : NoiseSchedule
        The schedule in use.
    default_layers : tuple of str
        ``("h",)``, the representation.
    input_scaling : str
        ``"none"``: the model is defined on the raw data, so a featurizer with
        ``scaling="auto"`` leaves the data unscaled.
    ranks : tuple of int
        Rank of each class subspace.
    delta : float
        Data noise of the model.
    weight : torch.nn.Parameter of shape (n_features, sum(ranks))
        Unconstrained parameter whose QR factor is ``U``.
    basis : torch.Tensor of shape (n_features, sum(ranks))
        The orthonormal ``[U_1, ..., U_K]``.

    Examples
    --------
    >>> from diffrep.theory.model import make_molrg
    >>> from diffrep.theory.denoisers import LearnedMoLRGDenoiser
    >>> X, y = make_molrg(600, 20, 3, 2, 0.2, random_state=0)
    >>> model = LearnedMoLRGDenoiser(20, 3, 2, delta=0.2).fit_subspaces(X, random_state=0)
    >>> model.get_bases().shape
    (3, 20, 2)
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        rank: int,
        delta: float,
        schedule: NoiseSchedule | None = None,
        init_bases: ArrayLike | None = None,
    ):
        n_features = _check_positive_int(n_features, "n_features")
        n_classes = _check_positive_int(n_classes, "n_classes")
        ranks = _check_ranks(rank, n_classes)
        if sum(ranks) > n_features:
            raise ValueError(
                f"the sum of ranks ({sum(ranks)}) must be <= n_features ({n_features})."
            )
        super().__init__(ranks, delta, _check_weights(None, n_classes), schedule)
        self.weight = nn.Parameter(torch.linalg.qr(torch.randn(n_features, sum(ranks)))[0])
        if init_bases is not None:
            self._set_bases(init_bases)

    @property
    def basis(self):
        """The orthonormal ``U = [U_1, ..., U_K]``, shape (n_features, sum(ranks))."""
        q, r = torch.linalg.qr(self.weight)
        signs = torch.sign(torch.diagonal(r))
        return q * torch.where(signs == 0, torch.ones_like(signs), signs)

    def _set_bases(self, bases):
        """Make ``basis`` equal to the given orthonormal class bases."""
        basis, ranks = stack_bases(bases)
        if basis.shape != tuple(self.weight.shape) or ranks != self.ranks:
            raise ValueError(
                f"bases must be {len(self.ranks)} blocks of shape ({self.weight.shape[0]}, rank_k) "
                f"with ranks {self.ranks}, got {len(ranks)} blocks with ranks {ranks} and "
                f"{basis.shape[0]} rows."
            )
        with torch.no_grad():
            self.weight.copy_(torch.as_tensor(basis, dtype=self.weight.dtype))

    def fit_subspaces(self, X, n_restarts=5, random_state=None):
        """Initialize ``U`` by K-subspaces clustering of (clean) samples.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training samples.
        n_restarts : int, default=5
            Random starts of the clustering; the one capturing most energy wins.
        random_state : int, RandomState instance or None, default=None
            Seeds the clustering.

        Returns
        -------
        self : LearnedMoLRGDenoiser
            The model, with ``U`` set to the clustering's subspaces.

        See Also
        --------
        diffrep.theory.model.k_subspaces : The clustering itself.
        """
        self._set_bases(
            k_subspaces(
                X, len(self.ranks), self.ranks, n_restarts=n_restarts, random_state=random_state
            )
        )
        return self
