"""A Mamba block with separate W_δ, W_B, W_C projections, and a small vision backbone made of such blocks.

The split of mamba-ssm's fused ``x_proj`` into ``x_proj_dt`` (W_δ), ``x_proj_B`` (W_B) and ``x_proj_C`` (W_C) is
what lets continual learning treat each input-dependent SSM parameter on its own. A block can record the tensors a
null-space projector needs — its scan input x, its step sizes δ and the gated scan output that enters
``out_proj`` — when its ``record`` attribute is a dict (``None``, the default, records nothing).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.config import MambaConfig
from fedray.platform.modules.ssm import selective_scan


class GroupRMSNorm(nn.Module):
    """RMS normalisation over groups of ``group`` consecutive channels (the last dimension), with a gain."""

    def __init__(self, channels: int, group: int, eps: float = 1e-5) -> None:
        super().__init__()
        if channels % group:
            raise ValueError(f"group_norm={group} must divide the inner width {channels}")
        self.group, self.eps = group, eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grouped = x.unflatten(-1, (-1, self.group))
        grouped = grouped * torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + self.eps)
        return grouped.flatten(-2) * self.weight


class MambaBlock(nn.Module):
    """``[batch, length, d_model] → [batch, length, d_model]``: in_proj → causal depthwise conv → SiLU → selective
    SSM (δ, B, C from the tokens) → (grouped RMS norm, + D ⊙ x, ⊙ SiLU(z)) → out_proj."""

    def __init__(self, d_model: int, cfg: MambaConfig, dt_min: float = 1e-3, dt_max: float = 0.1) -> None:
        super().__init__()
        inner = cfg.expand * d_model
        self.cfg, self.d_inner = cfg, inner
        self.in_proj = nn.Linear(d_model, 2 * inner, bias=False)
        self.conv1d = nn.Conv1d(inner, inner, cfg.d_conv, groups=inner, padding=cfg.d_conv - 1)
        self.x_proj_dt = nn.Linear(inner, cfg.dt_rank, bias=False)
        self.x_proj_B = nn.Linear(inner, cfg.d_state, bias=False)
        self.x_proj_C = nn.Linear(inner, cfg.d_state, bias=False)
        self.dt_proj = nn.Linear(cfg.dt_rank, inner, bias=True)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, cfg.d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))
        self.norm = GroupRMSNorm(inner, cfg.group_norm) if cfg.group_norm else None
        self.out_proj = nn.Linear(inner, d_model, bias=False)
        self.record: dict[str, torch.Tensor] | None = None
        self._init_dt(dt_min, dt_max)

    @torch.no_grad()
    def _init_dt(self, dt_min: float, dt_max: float, floor: float = 1e-4) -> None:
        """mamba-ssm's initialisation: softplus(bias) log-uniform in [dt_min, dt_max]; weights U(±rank^-½)."""
        std = self.cfg.dt_rank**-0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        dt = dt.clamp(min=floor)
        self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        length = hidden.shape[1]
        x, z = self.in_proj(hidden).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :length])  # [b, inner, L], causal
        tokens = x.transpose(1, 2)  # [b, L, inner]
        delta = F.softplus(self.dt_proj(self.x_proj_dt(tokens))) / self.cfg.delta_scale  # [b, L, inner]
        B = self.x_proj_B(tokens).transpose(1, 2)  # [b, N, L]
        C = self.x_proj_C(tokens).transpose(1, 2)
        A = -torch.exp(self.A_log.float())
        scan_kwargs = {"impl": self.cfg.scan, "discretization": self.cfg.discretization}
        if self.norm is None:
            y = selective_scan(x, delta.transpose(1, 2), A, B, C, self.D.float(), z.transpose(1, 2), **scan_kwargs)
            y = y.transpose(1, 2)
        else:
            y = selective_scan(x, delta.transpose(1, 2), A, B, C, **scan_kwargs).transpose(1, 2)
            y = (self.norm(y) + tokens * self.D) * F.silu(z)
        if self.record is not None:
            self.record.update(tokens=tokens.detach(), delta=delta.detach(), gated=y.detach())
        return self.out_proj(y)


class ResidualMamba(nn.Module):
    """Pre-norm residual wrapper: ``h + mixer(LayerNorm(h))``."""

    def __init__(self, d_model: int, cfg: MambaConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mixer = MambaBlock(d_model, cfg)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.mixer(self.norm(hidden))


class VisionMamba(nn.Module):
    """Patch embedding + learned positions → Mamba blocks → LayerNorm → mean over tokens: ``[B, C, H, W] → [B, d]``."""

    def __init__(self, cfg: MambaConfig, in_channels: int, image_size: int) -> None:
        super().__init__()
        if image_size % cfg.patch_size:
            raise ValueError(f"patch_size={cfg.patch_size} must divide the image size {image_size}")
        tokens = (image_size // cfg.patch_size) ** 2
        self.out_features = cfg.d_model
        self.patch_embed = nn.Conv2d(in_channels, cfg.d_model, cfg.patch_size, stride=cfg.patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, cfg.d_model))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.layers = nn.ModuleList(ResidualMamba(cfg.d_model, cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.d_model)

    def blocks(self) -> list[MambaBlock]:
        return [layer.mixer for layer in self.layers]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        hidden = self.patch_embed(images).flatten(2).transpose(1, 2) + self.pos_embed
        for layer in self.layers:
            hidden = layer(hidden)
        return self.norm(hidden).mean(dim=1)
