"""Batched feature extraction: noise, forward with capture, pooling.

Every (sample, timestep, noise draw) combination is one input row of the
network. A forward pass takes consecutive rows, ordered sample-major, then
timestep, then draw: several timesteps and draws of a few samples fill one
batch together, and each sample is read, prepared (scaled) and moved to the
device once per batch. Memory is bounded by the batch size: the activations of
one batch exist at a time, and pooled features go straight into the output
array, the only thing that grows with the number of samples.

On CUDA, inputs go through pinned memory with non-blocking copies, and each
batch's features come back asynchronously while the next batch runs. A CUDA
(or MPS) out-of-memory error halves the batch and retries it.
"""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import torch
from tqdm.auto import tqdm

from .caller import user_stacklevel
from .notices import DeviceWarning
from .capture import run_with_capture
from .noise import gaussian_noise, row_hashes, row_keys

POOLINGS = ("mean", "max", "none")
PRECISIONS = ("float32", "bfloat16")
CLEAN_ESTIMATE = "x0"


def pooled_cells(spatial, grid):
    """The cells a ``grid`` divides an activation of spatial size ``spatial`` into.

    A 2-D map gets ``grid`` cells per side, never more than it has positions
    (a 2x2 map stays 2x2 on a 4x4 grid, rather than repeating values); a 1-D
    map (a token sequence that is not a square patch grid) gets ``rows *
    columns`` cells; a map without spatial dimensions gets none.

    Parameters
    ----------
    spatial : tuple of int
        Spatial dimensions of the activation (after batch and channels).
    grid : tuple of (int, int)
        Cells per side: ``(rows, columns)``.

    Returns
    -------
    cells : tuple of int
        The pooled spatial size: ``()``, ``(n,)`` or ``(rows, columns)``.
    """
    if len(spatial) == 2:
        return (min(grid[0], spatial[0]), min(grid[1], spatial[1]))
    if len(spatial) == 1:
        return (min(grid[0] * grid[1], spatial[0]),)
    return ()


def feature_labels(channels, cells):
    """Names of a pooled layer's features, in their order: channel, then cell row-major.

    Parameters
    ----------
    channels : int
    cells : tuple of int
        The pooled spatial size (see :func:`pooled_cells`).

    Returns
    -------
    labels : list of str
        ``"{channel}"`` when a channel gives one number, ``"{channel}__r{row}c{column}"``
        for a 2-D grid of cells, ``"{channel}__p{position}"`` for a 1-D one.
    """
    if math.prod(cells) == 1:
        return [str(channel) for channel in range(channels)]
    if len(cells) == 2:
        where = [f"r{row}c{column}" for row in range(cells[0]) for column in range(cells[1])]
    else:
        where = [f"p{position}" for position in range(cells[0])]
    return [f"{channel}__{cell}" for channel in range(channels) for cell in where]


_ADAPTIVE = {
    ("mean", 1): torch.nn.functional.adaptive_avg_pool1d,
    ("mean", 2): torch.nn.functional.adaptive_avg_pool2d,
    ("max", 1): torch.nn.functional.adaptive_max_pool1d,
    ("max", 2): torch.nn.functional.adaptive_max_pool2d,
}


def pool(activation, pooling, grid=(1, 1)):
    """Reduce a ``(batch, channels, *spatial)`` activation to ``(batch, features)``.

    Each channel is averaged (or maximized) over every cell of a ``grid``
    laid on its map (adaptive pooling: cell ``i`` of ``n`` along a side of
    ``L`` positions spans positions ``floor(i L / n)`` to ``ceil((i + 1) L / n)``,
    so cells may overlap by one position when ``n`` does not divide ``L``).
    Features are ordered channel-major, then cell row-major.

    Parameters
    ----------
    activation : torch.Tensor
        At least 2-D; dimensions after the second are spatial (one or two).
    pooling : {"mean", "max", "none"}
        Average or maximum within each cell, or keep every position.
    grid : tuple of (int, int), default=(1, 1)
        Cells per side (see :func:`pooled_cells`); ``(1, 1)`` pools each
        channel to one number.

    Returns
    -------
    pooled : torch.Tensor of shape (batch, features)
    """
    if activation.ndim == 2 or pooling == "none":
        return activation.flatten(1)
    cells = pooled_cells(tuple(activation.shape[2:]), grid)
    if all(size == 1 for size in cells):  # global pooling, without the adaptive kernel's overhead
        spatial = tuple(range(2, activation.ndim))
        return activation.mean(dim=spatial) if pooling == "mean" else activation.amax(dim=spatial)
    return _ADAPTIVE[pooling, len(cells)](activation, cells).flatten(1)


def feature_map(activation):
    """A transformer block's ``(batch, tokens, dim)`` output as a ``(batch, dim, *grid)`` feature map.

    The tokens of a square patch grid become ``(h, w)`` (row-major, as
    diffusers' patch embeddings order them); any other count stays 1-D.

    Parameters
    ----------
    activation : torch.Tensor of shape (batch, tokens, dim)

    Returns
    -------
    feature_map : torch.Tensor of shape (batch, dim, h, w) or (batch, dim, tokens)
    """
    channels_first = activation.transpose(1, 2)
    side = math.isqrt(activation.shape[1])
    if side * side != activation.shape[1]:
        return channels_first
    return channels_first.reshape(*channels_first.shape[:2], side, side)


def autocast(device, precision):
    """The autocast context of ``precision`` on ``device`` (a no-op for float32).

    Parameters
    ----------
    device : torch.device
    precision : {"float32", "bfloat16"}

    Returns
    -------
    context : context manager
    """
    if precision == "bfloat16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(samples, device):
    """Samples as a float32 tensor on ``device`` (through pinned memory, non-blocking, from the host to CUDA).

    Parameters
    ----------
    samples : ndarray or torch.Tensor
    device : torch.device

    Returns
    -------
    tensor : torch.Tensor of float32
    """
    if not isinstance(samples, torch.Tensor):
        samples = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if device.type != "cuda" or samples.device.type == "cuda":
        return samples.to(device, torch.float32)
    return samples.to(torch.float32).pin_memory().to(device, non_blocking=True)


def _samples_and_identities(prepared, device):
    """The prepared samples on ``device``, and the tensor whose rows key their noise."""
    samples, identities = prepared if isinstance(prepared, tuple) else (prepared, None)
    samples = to_device(samples, device)
    return samples, samples if identities is None else to_device(identities, device)


def is_out_of_memory(error):
    """Whether ``error`` reports an exhausted accelerator memory (CUDA or MPS).

    Parameters
    ----------
    error : BaseException

    Returns
    -------
    bool
    """
    return isinstance(error, torch.cuda.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "out of memory" in str(error)
    )


class _HostWriter:
    """Copies finished feature blocks into the output array.

    On CUDA the copy to the host is non-blocking (into pinned memory) and a
    block is written out only once the next block has been queued, so the GPU
    keeps working while the host waits for, and stores, the previous block.
    """

    def __init__(self, n_rows, device):
        self.n_rows = n_rows
        self.device = device
        self.asynchronous = device.type == "cuda"
        self.output = None
        self._pending = None

    def put(self, start, block):
        """Store ``block`` (rows ``start:start + len(block)``), or queue it on CUDA."""
        if self.output is None:
            self.output = np.empty((self.n_rows, block.shape[1]), dtype=np.float32)
        if not self.asynchronous:
            self.output[start : start + block.shape[0]] = block.cpu().numpy()
            return
        host = block.to("cpu", non_blocking=True)
        copied = torch.cuda.Event()
        copied.record(torch.cuda.current_stream(self.device))
        self.flush()
        self._pending = (start, host, copied)

    def flush(self):
        """Wait for the queued block, if any, and store it."""
        if self._pending is not None:
            start, host, copied = self._pending
            copied.synchronize()
            self.output[start : start + host.shape[0]] = host.numpy()
            self._pending = None


class FeatureExtractor:
    """Everything needed to turn samples into a feature matrix.

    Parameters
    ----------
    network : torch.nn.Module
        Denoiser in eval mode, on ``device``.
    schedule : NoiseSchedule
    noise_seed : int
        Seed of the noise: every (sample, timestep, draw) row gets its own
        noise, derived from this seed, the sample's bytes, the timestep and
        the draw (see :mod:`diffrep._engine.noise`).
    n_draws : int
        Noise draws per (sample, timestep) pair; features are averaged over them.
    layers : tuple of str
        Submodule names, or ``"x0"`` for the clean-input estimate.
    pooling : {"mean", "max", "none"}
    device : torch.device
    grid : tuple of (int, int), default=(1, 1)
        Cells per side that ``"mean"`` and ``"max"`` pool each map onto (see :func:`pool`).
    precision : {"float32", "bfloat16"}, default="float32"
        ``"bfloat16"`` runs the network under bfloat16 autocast. Features are
        pooled and returned in float32; they differ from float32 ones by about
        1% (relative norm of the difference; at most 2% is tested).
    channels_last : bool or None, default=None
        Feed image batches in channels-last memory layout. None enables it
        on CUDA with bfloat16, where tensor-core convolutions want it.
    token_activations : bool, default=False
        Whether 3-D activations are token sequences (the denoiser's
        description says so): they are then pooled over the tokens
        (``"none"`` flattens them on the patch grid; see :func:`feature_map`).
    """

    def __init__(self, network, schedule, noise_seed, n_draws, layers, pooling, device, grid=(1, 1),
                 precision="float32", channels_last=None, token_activations=False):
        self.network = network
        self.schedule = schedule
        self.noise_seed = int(noise_seed)
        self.n_draws = int(n_draws)
        self.layers = tuple(layers)
        self.pooling = pooling
        self.grid = tuple(grid)
        self.device = device
        self.precision = precision
        if channels_last is None:
            channels_last = device.type == "cuda" and precision == "bfloat16"
        self.channels_last = channels_last
        self._modules = tuple(name for name in self.layers if name != CLEAN_ESTIMATE)
        self._need_output = CLEAN_ESTIMATE in self.layers
        self.token_activations = bool(token_activations)

    def _forward(self, x_t, timesteps):
        """Captured activations (and ``"x0"``) of one batch of noisy inputs."""
        if self.channels_last and x_t.ndim == 4:
            x_t = x_t.contiguous(memory_format=torch.channels_last)
        with autocast(self.device, self.precision):
            captured = run_with_capture(self.network, x_t, timesteps, self._modules, self._need_output)
        if self._need_output:
            output = captured["__output__"].float()
            captured[CLEAN_ESTIMATE] = self.schedule.predict_x0(x_t, output, timesteps)
        return captured

    def _activation(self, captured, name):
        """A captured activation, token sequences of a transformer as feature maps."""
        activation = captured[name]
        if self.token_activations and name != CLEAN_ESTIMATE and activation.ndim == 3:
            return feature_map(activation)
        return activation

    def _block(self, data, prepare, timesteps, first_pair, stop_pair):
        """Pooled features of pairs ``first_pair:stop_pair``, averaged over noise draws.

        Pair ``p`` is sample ``p // T`` at timestep ``timesteps[p % T]``; each
        pair is one input row per noise draw.
        """
        n_timesteps, n_draws = len(timesteps), self.n_draws
        first_sample, stop_sample = first_pair // n_timesteps, (stop_pair - 1) // n_timesteps + 1
        samples = data[first_sample:stop_sample]
        x0, identities = _samples_and_identities(samples if prepare is None else prepare(samples), self.device)
        pairs = torch.arange(first_pair, stop_pair, device=self.device)
        row_samples = (pairs // n_timesteps - first_sample).repeat_interleave(n_draws)
        row_timesteps = timesteps[pairs % n_timesteps].repeat_interleave(n_draws)
        row_draws = torch.arange(n_draws, device=self.device).repeat(len(pairs))
        keys = row_keys(row_hashes(identities)[row_samples], row_timesteps, row_draws, self.noise_seed)
        noise = gaussian_noise(keys, tuple(x0.shape[1:]))
        x_t = self.schedule.add_noise(x0[row_samples], noise, row_timesteps)
        captured = self._forward(x_t, row_timesteps)
        pooled = torch.cat(
            [pool(self._activation(captured, name), self.pooling, self.grid).float() for name in self.layers], dim=1
        )
        if n_draws == 1:
            return pooled
        return pooled.view(len(pairs), n_draws, -1).mean(dim=1)

    def describe(self, sample_shape, timestep):
        """What each layer gives: its activation's shape, the cells it is pooled to and the pooled width.

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
            activation = self._activation(captured, name)
            info[name] = {
                "shape": tuple(activation.shape[1:]),
                "channels": int(activation.shape[1]),
                "spatial": tuple(activation.shape[2:]),
                "cells": self._cells(activation),
                "n_features": int(pool(activation, self.pooling, self.grid).shape[1]),
            }
        return info

    def _cells(self, activation):
        """The pooled spatial size of ``activation``: one value per channel and cell."""
        spatial = tuple(activation.shape[2:])
        return spatial if self.pooling == "none" else pooled_cells(spatial, self.grid)

    def transform(self, data, timesteps, batch_size, verbose=0, prepare=None):
        """Features of every sample at every timestep, as one float32 matrix.

        A forward pass takes ``batch_size`` input rows, one per (sample,
        timestep, noise draw), or the ``n_draws`` rows of one (sample,
        timestep) pair when ``batch_size`` is smaller. When the device runs out
        of memory, the batch is halved (with a warning) and retried, down to
        one pair; the features do not depend on the batch size.

        Parameters
        ----------
        data : ndarray of shape (n_samples, ...)
            Samples, already scaled and of shape ``(n_samples, *sample_shape)``
            unless ``prepare`` is given.
        timesteps : sequence of int
        batch_size : int
        verbose : int, default=0
            Show a progress bar when positive.
        prepare : callable or None, default=None
            Applied to each batch's slice of ``data``; returns the scaled float32
            samples of shape ``(n, *sample_shape)``, or a pair ``(samples,
            identities)`` whose rows' bytes key the noise instead of the
            samples' (the pixels a latent was encoded from: an encoder's output
            can differ in its last bits with the batch it ran in, which would
            change the noise). Preparing batch by batch keeps no prepared copy
            of the whole data in memory.

        Returns
        -------
        features : ndarray of float32, shape (n_samples, n_timesteps * width)
            Blocks ordered timestep-major, then layer.

        Raises
        ------
        torch.cuda.OutOfMemoryError
            If even one pair per forward pass does not fit in memory.
        """
        n_samples, n_timesteps = data.shape[0], len(timesteps)
        n_pairs = n_samples * n_timesteps
        pairs_per_batch = max(1, batch_size // self.n_draws)
        timesteps = torch.as_tensor(timesteps, dtype=torch.long, device=self.device)
        writer = _HostWriter(n_pairs, self.device)
        start = 0
        with torch.inference_mode(), tqdm(
            total=n_samples, desc="extracting features", disable=verbose <= 0, leave=False
        ) as progress:
            while start < n_pairs:
                stop = min(start + pairs_per_batch, n_pairs)
                try:
                    block = self._block(data, prepare, timesteps, start, stop)
                except Exception as error:
                    if not is_out_of_memory(error):
                        raise
                    pairs_per_batch = self._halved(stop - start, error)
                    continue
                writer.put(start, block)
                start = stop
                progress.update(stop // n_timesteps - progress.n)
            writer.flush()
        return writer.output.reshape(n_samples, -1)

    def _halved(self, pairs_per_batch, error):
        """The batch to retry with after the out-of-memory ``error``; raise when none is left."""
        if pairs_per_batch == 1:
            raise torch.cuda.OutOfMemoryError(
                f"{self.device} ran out of memory extracting features even from one (sample, timestep) "
                f"pair per forward pass ({self.n_draws} network inputs); free device memory, "
                "use fewer noise draws, or extract on device='cpu'."
            ) from error
        warnings.warn(
            f"{self.device} ran out of memory extracting features from {pairs_per_batch} "
            f"(sample, timestep) pairs per forward pass; retrying with {pairs_per_batch // 2}.",
            DeviceWarning,
            stacklevel=user_stacklevel(),
        )
        error.__traceback__ = None  # its frames hold the failed batch's tensors
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()
        return pairs_per_batch // 2
