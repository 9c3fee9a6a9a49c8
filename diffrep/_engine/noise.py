"""Deterministic, independent Gaussian noise for every (sample, timestep, draw) row.

The paper's dynamics exist because noise destroys information about each
sample: every sample needs noise of its own. A noise pattern shared by all
samples is only an affine shift, which a probe learns away. Yet ``transform``
must stay deterministic and independent of batch size, order and subset, so
the noise cannot come from a stateful generator. It is derived instead, on the
device and vectorized over the batch, from four integers:

* the featurizer's noise seed (drawn from ``random_state`` in ``fit``);
* a 64-bit hash of the sample's bytes **after scaling** (the float32 row the
  denoiser sees; ``-0.0`` is read as ``0.0``), so identical rows get identical
  noise and different rows independent noise (for a pretrained latent
  pipeline, the bytes of the resized RGB image, not of its latent, whose last
  bits can depend on the batch the encoder ran in);
* the timestep;
* the draw index (``n_noise_draws > 1``).

They form a 64-bit key per row (two 32-bit lanes). Counter ``c`` of the row
hashes ``(key, c)`` into a uniform number; the Box-Muller transform (in
float64, then rounded to float32) turns each pair of uniforms (counters ``p``
and ``p + n_pairs``) into two standard normal numbers, elements ``p`` and
``p + n_pairs`` of the row. All integer arithmetic is exact on 32-bit values held
in int64 tensors (products are split into 16-bit halves so nothing overflows),
so the CPU and CUDA give the same bits, and the same noise to float precision.

The mixing function is the "lowbias32" integer finalizer (xor-shift and
multiply by odd constants), a bijection of 32-bit integers with strong
avalanche; two rounds, one per key lane, separate the rows' counters.
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF
_LANE_SALTS = (0x9E3779B9, 0x85EBCA6B)  # distinct odd constants: the two 32-bit key lanes
_POSITION_SALT = 0x27D4EB2F
_TWO_TO_32 = float(2**32)


def _multiply32(x, constant):
    """``x * constant mod 2**32`` for 32-bit ``x`` in an int64 tensor.

    The int64 product may wrap around 2**64 (two's complement on every torch
    device); its low 32 bits are exact either way.
    """
    return (x * constant) & _MASK32


def mix32(x):
    """Scramble 32-bit integers (held in an int64 tensor) with the lowbias32 finalizer.

    Parameters
    ----------
    x : torch.Tensor of int64
        Values in ``[0, 2**32)``.

    Returns
    -------
    mixed : torch.Tensor of int64
        Values in ``[0, 2**32)``; a bijection of the input values.
    """
    x = x ^ (x >> 16)
    x = _multiply32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _multiply32(x, 0x846CA68B)
    return x ^ (x >> 16)


def row_hashes(samples):
    """Two independent 32-bit hashes of each sample's float32 bytes.

    Parameters
    ----------
    samples : torch.Tensor of shape (n, ...)
        Scaled samples; read as float32.

    Returns
    -------
    hashes : torch.Tensor of int64, shape (n, 2)
        Equal rows (bit for bit, up to the sign of zero) give equal hashes.
    """
    flat = samples.reshape(len(samples), -1).to(torch.float32) + 0.0  # -0.0 + 0.0 == +0.0
    bits = flat.view(torch.int32).to(torch.int64) & _MASK32
    positions = torch.arange(flat.shape[1], device=flat.device, dtype=torch.int64)
    position_keys = mix32(positions.unsqueeze(1) ^ _lane_salts(flat.device))  # (n_features, 2)
    elements = mix32(bits.unsqueeze(2) ^ position_keys)  # (n, n_features, 2)
    return mix32((elements.sum(dim=1) & _MASK32) ^ _lane_salts(flat.device))


def _lane_salts(device):
    return torch.tensor([_LANE_SALTS], dtype=torch.int64, device=device)


def row_keys(hashes, timesteps, draws, seed):
    """The 64-bit noise key of each network input row, as two 32-bit lanes.

    Parameters
    ----------
    hashes : torch.Tensor of int64, shape (rows, 2)
        :func:`row_hashes` of each row's sample.
    timesteps : torch.Tensor of int64, shape (rows,)
    draws : torch.Tensor of int64, shape (rows,)
        Noise draw index of each row.
    seed : int
        The featurizer's noise seed, ``0 <= seed < 2**32``.

    Returns
    -------
    keys : torch.Tensor of int64, shape (rows, 2)
    """
    key = mix32((int(seed) & _MASK32) ^ _lane_salts(hashes.device))  # (1, 2)
    for value in (hashes, hashes.flip(1), timesteps.unsqueeze(1), draws.unsqueeze(1)):
        key = mix32(key ^ (value & _MASK32))
    return key


def _random_bits(keys, counters):
    """32 random bits for every (row key, counter) pair: shape ``(rows, n_counters)``."""
    scrambled = mix32(counters ^ _POSITION_SALT).unsqueeze(0)
    return mix32(mix32(scrambled ^ keys[:, :1]) ^ keys[:, 1:])


def _open_unit_interval(bits):
    """32-bit integers as float64 numbers strictly inside (0, 1)."""
    return (bits.to(torch.float64) + 0.5) / _TWO_TO_32


def gaussian_noise(keys, sample_shape):
    """Standard normal noise of one row per key, a pure function of the keys.

    Parameters
    ----------
    keys : torch.Tensor of int64, shape (rows, 2)
        :func:`row_keys`.
    sample_shape : tuple of int
        Shape of one row's noise.

    Returns
    -------
    noise : torch.Tensor of float32, shape (rows, *sample_shape)
        On the keys' device.
    """
    size = math.prod(sample_shape)
    n_pairs = (size + 1) // 2
    counters = torch.arange(2 * n_pairs, device=keys.device, dtype=torch.int64)
    bits = _random_bits(keys, counters)
    # Box-Muller: each pair of uniforms gives two independent standard normals.
    radius = torch.sqrt(-2.0 * torch.log(_open_unit_interval(bits[:, :n_pairs])))
    angle = (2.0 * math.pi) * _open_unit_interval(bits[:, n_pairs:])
    noise = torch.cat([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1)[:, :size]
    return noise.to(torch.float32).reshape(len(keys), *sample_shape)
