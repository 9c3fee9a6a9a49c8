"""An MLP denoiser for tabular data, saved and loaded in diffusers format."""

from __future__ import annotations

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import get_timestep_embedding
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


class _ResidualBlock(nn.Module):
    """``h + MLP(LayerNorm(h) + time embedding)``."""

    def __init__(self, width, time_dim):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.time = nn.Linear(time_dim, width)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width), nn.SiLU(), nn.Linear(2 * width, width))

    def forward(self, h, time_embedding):
        return h + self.mlp(self.norm(h) + self.time(time_embedding))


class MLPDenoiser(ModelMixin, ConfigMixin):
    """Residual MLP denoiser ``(x_t, t) -> prediction`` for vectors.

    Its capturable layers are ``"input"`` (the first projection),
    ``"blocks.0"`` .. ``"blocks.{n_blocks-1}"`` (residual blocks) and
    ``"output_norm"`` (the last hidden state).

    Parameters
    ----------
    n_features : int
        Length of the input vectors.
    width : int, default=256
        Hidden width.
    n_blocks : int, default=3
        Number of residual blocks.
    time_dim : int, default=64
        Size of the sinusoidal timestep embedding.
    """

    @register_to_config
    def __init__(self, n_features, width=256, n_blocks=3, time_dim=64):
        super().__init__()
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.input = nn.Linear(n_features, width)
        self.blocks = nn.ModuleList(_ResidualBlock(width, time_dim) for _ in range(n_blocks))
        self.output_norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, n_features)

    @property
    def default_layers(self):
        """The middle residual block: the tabular analogue of a UNet's mid block."""
        return (f"blocks.{len(self.blocks) // 2}",)

    def forward(self, x_t, t):
        """Predict the noise (or the configured target) for ``x_t`` at timesteps ``t``.

        Parameters
        ----------
        x_t : torch.Tensor of shape (batch, n_features)
        t : torch.LongTensor of shape (batch,)

        Returns
        -------
        prediction : torch.Tensor of shape (batch, n_features)
        """
        embedding = get_timestep_embedding(t, self.config.time_dim, flip_sin_to_cos=True).to(x_t.dtype)
        time_embedding = self.time_mlp(embedding)
        h = self.input(x_t)
        for block in self.blocks:
            h = block(h, time_embedding)
        return self.output(torch.nn.functional.silu(self.output_norm(h)))
