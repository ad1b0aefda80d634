"""A time-aware projected discriminator over a frozen network's feature pyramid (TAD-SR's, after ADD/StyleGAN-T).

For every feature scale: GroupNorm → FiLM (scale and shift from the timestep embedding) → SiLU → zero-initialised
3×3 conv to ``c_dim`` channels, then a spectral-normalised 1×1 conv1d head giving one logit per position. The
per-scale logits are concatenated: ``forward(features, t) -> [B, Σ positions]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from fedray.platform.modules.diffusion.embedding import group_count, timestep_embedding, zero_init


class TimeAwareHead(nn.Module):
    def __init__(self, channels: int, c_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.film = nn.Linear(emb_dim, 2 * channels)
        self.conv = zero_init(nn.Conv2d(channels, c_dim, 3, padding=1))
        self.head = spectral_norm(nn.Conv1d(c_dim, 1, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(emb)[..., None, None].chunk(2, dim=1)
        h = self.conv(F.silu(self.norm(x.contiguous()) * (1 + scale) + shift))  # see swin.SwinBlock.forward
        return self.head(h.flatten(2)).flatten(1)


class TimeAwareDiscriminator(nn.Module):
    def __init__(self, feature_channels: tuple[int, ...] | list[int], c_dim: int = 32, emb_dim: int = 128) -> None:
        super().__init__()
        self.emb_dim = emb_dim
        self.time_embed = nn.Sequential(nn.Linear(emb_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.heads = nn.ModuleList(TimeAwareHead(c, c_dim, emb_dim) for c in feature_channels)

    def forward(self, features: list[torch.Tensor], t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.emb_dim).to(features[0].dtype))
        return torch.cat([head(f, emb) for head, f in zip(self.heads, features, strict=True)], dim=1)
