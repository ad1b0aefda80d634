"""DLSR's latent feature diffusion network (LFDN): an MLP denoiser over concatenated multi-layer features.

Linear(dim → width); ``depth`` residual blocks, each h = Linear(SiLU(GN(x))) + MLP(t_emb);
h = ZeroLinear(Dropout(SiLU(GN(h)))); x = x + h; output ZeroLinear(SiLU(GN(x))) → dim. GroupNorm has one group
(layer-norm over the width); the time embedding is sinusoidal of size ``dim`` followed by an MLP. The zero-initialised
output makes the untrained network predict 0, a neutral x₀ for z-scored features.
"""

from __future__ import annotations

import torch
from torch import nn

from fedray.platform.modules.diffusion.embedding import timestep_embedding, zero_init


class FeatureResBlock(nn.Module):
    def __init__(self, width: int, time_dim: int, dropout: float) -> None:
        super().__init__()
        self.in_layers = nn.Sequential(nn.GroupNorm(1, width), nn.SiLU(), nn.Linear(width, width))
        self.time_layers = nn.Sequential(nn.SiLU(), nn.Linear(time_dim, width))
        self.out_layers = nn.Sequential(
            nn.GroupNorm(1, width), nn.SiLU(), nn.Dropout(dropout), zero_init(nn.Linear(width, width))
        )

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        return x + self.out_layers(self.in_layers(x) + self.time_layers(t_emb))


class FeatureDenoiser(nn.Module):
    """``forward(z_t [B, dim], t [B]) -> [B, dim]`` (DLSR trains it to predict z₀)."""

    def __init__(self, dim: int, width: int | None = None, depth: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        width = width or 2 * dim
        self.dim = dim
        self.time_embed = nn.Sequential(nn.Linear(dim, width), nn.SiLU(), nn.Linear(width, width))
        self.input = nn.Linear(dim, width)
        self.blocks = nn.ModuleList(FeatureResBlock(width, width, dropout) for _ in range(depth))
        self.out = nn.Sequential(nn.GroupNorm(1, width), nn.SiLU(), zero_init(nn.Linear(width, dim)))

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_emb = self.time_embed(timestep_embedding(t, self.dim).to(z.dtype))
        h = self.input(z)
        for block in self.blocks:
            h = block(h, t_emb)
        return self.out(h)
