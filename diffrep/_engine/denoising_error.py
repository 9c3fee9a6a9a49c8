"""How well a fitted denoiser recovers clean samples: per-sample x0-prediction errors.

The error of a sample at a timestep is the mean over its elements of
``(x0_hat - x0)**2``, in the space the denoiser works in (the scaled data, or a
pretrained pipeline's latents), with ``x0_hat`` the denoiser's clean-input
estimate (the ``"x0"`` source) of the sample noised exactly as ``transform``
noises it: the featurizer's own extraction computes it, on a shallow copy that
captures ``"x0"`` unpooled and uses the first noise draw only (draw 0 is the
same noise whatever ``n_noise_draws`` is).

The reference a trained denoiser must beat is the better of two trivial
denoisers of the variance-exploding input ``x = x0 + sigma * eps``: returning
``x`` unchanged (error ``sigma**2`` per element), and the isotropic Gaussian
denoiser that knows only the training data's mean and overall variance ``v``
(per element), ``x0_hat = mu + v / (v + sigma**2) * (x - mu)``. Both errors
have a closed form; an untrained network beats neither (the first guards
against held-out samples far outside the training range, where shrinking
towards the training mean does badly).
"""

from __future__ import annotations

import copy

import numpy as np

from .extraction import CLEAN_ESTIMATE


def clean_estimator(featurizer):
    """A shallow copy of a fitted featurizer whose features are its unpooled ``"x0"`` estimate, draw 0.

    The copy shares the network, the scaler, the schedule and the noise seed,
    so its noise is the featurizer's; nothing of the featurizer changes.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        Fitted.

    Returns
    -------
    copy : DiffusionFeaturizer
    """
    estimator = copy.copy(featurizer)
    estimator.layers_ = (CLEAN_ESTIMATE,)
    estimator.pooling = "none"
    estimator.n_noise_draws = 1
    return estimator


def _clean_targets(featurizer, X):
    """``X`` as the denoiser sees it (scaled, or a pipeline's latents), flattened to float32 rows."""
    data = featurizer._read(X)
    blocks = []
    for start in range(0, len(data), featurizer.batch_size):
        prepared = featurizer._prepare(data[start : start + featurizer.batch_size])
        samples = prepared[0] if isinstance(prepared, tuple) else prepared
        samples = samples.detach().cpu().numpy() if hasattr(samples, "detach") else np.asarray(samples)
        blocks.append(samples.reshape(len(samples), -1).astype(np.float32))
    return np.concatenate(blocks)


def x0_errors(featurizer, X, timesteps):
    """Per-sample mean squared error of the denoiser's clean estimate at each timestep.

    Parameters
    ----------
    featurizer : DiffusionFeaturizer
        Fitted.
    X : array-like
        Input as ``transform`` takes it.
    timesteps : sequence of int
        Validated schedule indices.

    Returns
    -------
    errors : ndarray of float64, shape (n_samples, n_timesteps)
        Mean over elements of ``(x0_hat - x0)**2``; noise as ``transform``'s first draw.
    targets : ndarray of float32, shape (n_samples, n_elements)
        The clean samples (scaled, or a pipeline's latents).
    """
    estimator = clean_estimator(featurizer)
    targets = _clean_targets(featurizer, X)
    errors = np.empty((len(targets), len(timesteps)))
    for i, timestep in enumerate(timesteps):  # one timestep at a time: memory of one unpooled block
        estimate = estimator.extract(X, [int(timestep)])
        errors[:, i] = np.mean((estimate.astype(np.float64) - targets) ** 2, axis=1)
    return errors, targets


def baseline_errors(train_targets, heldout_targets, sigmas):
    """Expected error on held-out targets of the better trivial denoiser: identity, or isotropic Gaussian shrinkage.

    Parameters
    ----------
    train_targets : ndarray of shape (n_train, n_elements)
        Clean training samples (their mean and overall per-element variance).
    heldout_targets : ndarray of shape (n_heldout, n_elements)
    sigmas : array-like of float
        Noise levels ``sqrt((1 - abar) / abar)``.

    Returns
    -------
    errors : ndarray of float64, shape (n_sigmas,)
        ``min(sigma**2, (1 - a)**2 * m + a**2 * sigma**2)`` with
        ``a = v / (v + sigma**2)``, ``v`` the training variance and ``m`` the
        held-out samples' mean squared distance to the training mean, both
        per element.
    """
    mean = train_targets.mean(axis=0, dtype=np.float64)
    variance = float(np.mean((train_targets - mean) ** 2))
    spread = float(np.mean((heldout_targets - mean) ** 2))
    sigma2 = np.asarray(sigmas, dtype=np.float64) ** 2
    shrink = variance / (variance + sigma2) if variance > 0 else np.zeros_like(sigma2)
    return np.minimum(sigma2, (1.0 - shrink) ** 2 * spread + shrink**2 * sigma2)
