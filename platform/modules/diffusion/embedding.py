"""The sinusoidal timestep embedding of DDPM/guided-diffusion and a zero-initialised layer helper."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """``[B, dim]``: cos(t·f_i) ‖ sin(t·f_i) with f_i = max_period^(−i/half); zero-padded when ``dim`` is odd."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def zero_init(module: nn.Module) -> nn.Module:
    """Zero every parameter of ``module``: a residual branch ending in it starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def group_count(channels: int, preferred: int = 32) -> int:
    """The largest group count ≤ ``preferred`` dividing ``channels`` (guided-diffusion uses 32 at ≥ 32 channels)."""
    groups = min(preferred, channels)
    while channels % groups:
        groups -= 1
    return groups
