"""The one description of a training run: its settings, its seed and one fingerprint of all it depends on.

The memory cache (:mod:`.cache`), the in-process reuse of a study
(:mod:`.reuse`) and the training checkpoints (:mod:`.checkpoints`) all key a
training by :attr:`TrainingConfig.fingerprint`, computed once per fit from the
initial network, the schedule, the scaled training data (hashed once) and the
settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np
import torch

from .hashing import hash_bytes, hash_json, new_hash

# Part of every fingerprint: a change in what a fingerprint covers changes this.
_FORMAT = "diffrep-training-3"


def fingerprint_array(array):
    """Content hash of an array (dtype, shape and bytes); equal arrays share it whatever their layout."""
    array = np.ascontiguousarray(array)
    digest = new_hash()
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def fingerprint_module(module):
    """Content hash of a torch module (class, config, state): modules are compared by state, never identity."""
    digest = new_hash()
    digest.update(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    config = getattr(module, "config", None)
    if isinstance(config, dict):  # diffusers' private entries (versions, paths, unordered sets) excluded
        digest.update(hash_json({k: v for k, v in config.items() if not k.startswith("_")}).encode())
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def fingerprint_schedule(schedule):
    """Content hash of a noise schedule: its prediction type and its ``abar_t``."""
    return f"{schedule.prediction_type}:{fingerprint_array(schedule.alphas_cumprod.numpy())}"


@dataclass(frozen=True)
class TrainingConfig:
    """What a trained denoiser depends on, besides the network, schedule and data it is given.

    Values that do not change the trained weights (device, verbosity,
    checkpointing) stay out of it, so that fits differing only in them share
    one training.

    Attributes
    ----------
    max_steps, batch_size : int
    learning_rate, ema_decay : float
    seed : int
        Seed of the generator that draws batches, noise and timesteps.
    random_device : {"cpu", "cuda"}
        Where that generator draws (see :func:`random_device_type`): the same
        seed gives another stream on a GPU, so it is part of the fingerprint.
    fingerprint : str or None
        Hash of the initial network, the schedule, the scaled data and the
        settings above; None when nothing needs it (no cache, no checkpoints).
    trajectory : str or None
        The same hash without ``max_steps``. Runs that differ only in their
        length follow one trajectory (no learning-rate schedule depends on
        ``max_steps``: the first steps of a longer run are the shorter run), so
        checkpoints are keyed by it and a longer run continues a shorter one.
    """

    max_steps: int
    batch_size: int
    learning_rate: float
    ema_decay: float
    seed: int
    random_device: str = "cpu"
    fingerprint: str | None = None
    trajectory: str | None = None

    @classmethod
    def create(cls, network, schedule, data, *, fingerprinted, **settings):
        """The configuration of training ``network`` on ``data``; fingerprinted (once) when asked."""
        config = cls(**settings)
        if not fingerprinted:
            return config
        path = {key: value for key, value in config.settings().items() if key != "max_steps"}
        parts = [
            _FORMAT,
            fingerprint_module(network),
            fingerprint_schedule(schedule),
            fingerprint_array(data),
            json.dumps(path, sort_keys=True),
        ]
        trajectory = hash_bytes("|".join(parts).encode())
        return cls(**settings, fingerprint=hash_bytes(f"{trajectory}|max_steps={config.max_steps}".encode()), trajectory=trajectory)

    def settings(self):
        """The settings as a JSON-serializable dict (the fingerprints left out)."""
        return {key: value for key, value in asdict(self).items() if key not in ("fingerprint", "trajectory")}

    def generator(self, device):
        """A fresh generator seeded with ``seed``: the randomness of a training on ``device``.

        On ``device`` itself when it is of type ``random_device`` ("cuda"),
        else on the CPU.
        """
        place = device if torch.device(device).type == self.random_device else "cpu"
        return torch.Generator(device=place).manual_seed(int(self.seed))


def random_device_type(device):
    """Where a training on ``device`` draws its random numbers: on a CUDA device itself, else on the CPU.

    Drawing on the GPU spares a copy from the host at every step; other
    devices keep the CPU stream, so their trainings equal the CPU's draws.

    Parameters
    ----------
    device : torch.device

    Returns
    -------
    device_type : {"cpu", "cuda"}
    """
    return "cuda" if torch.device(device).type == "cuda" else "cpu"
