"""Batched feature extraction: noise, forward with capture, pooling.

Memory is bounded by the batch size: activations of one batch at one
timestep exist at a time, and pooled features go straight into the output array.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm.auto import tqdm

from .capture import run_with_capture

POOLINGS = ("mean", "max", "none")
CLEAN_ESTIMATE = "x0"


def pool(activation, pooling):
    """Reduce a ``(batch, channels, *spatial)`` activation to ``(batch, features)``.

    Parameters
    ----------
    activation : torch.Tensor
        At least 2-D; dimensions after the second are spatial.
    pooling : {"mean", "max", "none"}
        Average or maximum over the spatial dimensions, or flatten them.

    Returns
    -------
    pooled : torch.Tensor of shape (batch, features)
    """
    if activation.ndim == 2 or pooling == "none":
        return activation.flatten(1)
    spatial = tuple(range(2, activation.ndim))
    if pooling == "mean":
        return activation.mean(dim=spatial)
    return activation.amax(dim=spatial)


def draw_noise_bank(sample_shape, n_draws, generator):
    """The fixed noise draws reused for every sample: shape ``(n_draws, *sample_shape)``.

    Parameters
    ----------
    sample_shape : tuple of int
    n_draws : int
    generator : torch.Generator

    Returns
    -------
    bank : torch.Tensor of float32
    """
    return torch.randn((n_draws, *sample_shape), generator=generator)


class FeatureExtractor:
    """Everything needed to turn scaled samples into a feature matrix.

    Parameters
    ----------
    network : torch.nn.Module
        Denoiser in eval mode, on ``device``.
    schedule : NoiseSchedule
    noise_bank : torch.Tensor of shape (n_draws, *sample_shape)
    layers : tuple of str
        Submodule names, or ``"x0"`` for the clean-input estimate.
    pooling : {"mean", "max", "none"}
    device : torch.device
    """

    def __init__(self, network, schedule, noise_bank, layers, pooling, device):
        self.network = network
        self.schedule = schedule
        self.noise_bank = noise_bank.to(device)
        self.layers = tuple(layers)
        self.pooling = pooling
        self.device = device
        self._modules = tuple(name for name in self.layers if name != CLEAN_ESTIMATE)
        self._need_output = CLEAN_ESTIMATE in self.layers

    def _features_at(self, x0, timestep):
        """Pooled features of one batch at one timestep, averaged over noise draws."""
        timesteps = torch.full((x0.shape[0],), int(timestep), dtype=torch.long, device=self.device)
        total = None
        for noise in self.noise_bank:
            x_t = self.schedule.add_noise(x0, noise.expand_as(x0), timesteps)
            captured = run_with_capture(self.network, x_t, timesteps, self._modules, self._need_output)
            if self._need_output:
                captured[CLEAN_ESTIMATE] = self.schedule.predict_x0(x_t, captured["__output__"], timesteps)
            pooled = torch.cat([pool(captured[name], self.pooling).float() for name in self.layers], dim=1)
            total = pooled if total is None else total + pooled
        return total / len(self.noise_bank)

    def describe(self, sample_shape, timestep):
        """What each layer gives: channels, spatial size and pooled width.

        Parameters
        ----------
        sample_shape : tuple of int
        timestep : int

        Returns
        -------
        info : dict of str -> dict
        """
        x0 = torch.zeros((1, *sample_shape), device=self.device)
        timesteps = torch.full((1,), int(timestep), dtype=torch.long, device=self.device)
        with torch.inference_mode():
            captured = run_with_capture(self.network, x0, timesteps, self._modules, self._need_output)
        if self._need_output:
            captured[CLEAN_ESTIMATE] = captured["__output__"]
        info = {}
        for name in self.layers:
            activation = captured[name]
            info[name] = {
                "shape": tuple(activation.shape[1:]),
                "channels": int(activation.shape[1]),
                "spatial": tuple(activation.shape[2:]),
                "n_features": int(pool(activation, self.pooling).shape[1]),
            }
        return info

    def transform(self, data, timesteps, batch_size, verbose=0):
        """Features of every sample at every timestep, as one float32 matrix.

        Parameters
        ----------
        data : ndarray of float32, shape (n_samples, *sample_shape)
            Scaled samples.
        timesteps : sequence of int
        batch_size : int
        verbose : int, default=0
            Show a progress bar when positive.

        Returns
        -------
        features : ndarray of float32, shape (n_samples, n_timesteps * width)
            Blocks ordered timestep-major, then layer.
        """
        features = None
        starts = range(0, data.shape[0], batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="extracting features", disable=verbose <= 0, leave=False):
                x0 = torch.from_numpy(data[start : start + batch_size]).to(self.device)
                batch = torch.cat([self._features_at(x0, t) for t in timesteps], dim=1).cpu().numpy()
                if features is None:
                    features = np.empty((data.shape[0], batch.shape[1]), dtype=np.float32)
                features[start : start + batch.shape[0]] = batch
        return features
