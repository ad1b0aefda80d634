"""A small guided-diffusion-style UNet: residual blocks with (optionally scale-shift) time conditioning, multi-head
self-attention at chosen feature-map sizes, skip connections, zero-initialised output layers.

Sizes come from :class:`fedray.platform.modules.config.UNetConfig`. ``attention_resolutions`` are feature-map side
lengths (16 means "at the 16×16 level"), not downsampling factors as in guided-diffusion's flags.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.embedding import group_count, timestep_embedding, zero_init


class ResBlock(nn.Module):
    """GN → SiLU → conv, plus the time embedding (as scale and shift of the second norm, or added), → GN → SiLU →
    dropout → zero conv; optionally resampling (×2 up or ÷2 down) inside the block, as ``resblock_updown``."""

    def __init__(
        self,
        channels: int,
        out_channels: int,
        emb_dim: int,
        dropout: float,
        scale_shift: bool,
        resample: str | None = None,
    ) -> None:
        super().__init__()
        self.scale_shift, self.resample = scale_shift, resample
        self.in_norm = nn.GroupNorm(group_count(channels), channels)
        self.in_conv = nn.Conv2d(channels, out_channels, 3, padding=1)
        self.emb = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, 2 * out_channels if scale_shift else out_channels))
        self.out_norm = nn.GroupNorm(group_count(out_channels), out_channels)
        self.out_layers = nn.Sequential(
            nn.SiLU(), nn.Dropout(dropout), zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        )
        self.skip = nn.Identity() if channels == out_channels else nn.Conv2d(channels, out_channels, 1)

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.in_norm(x))
        h = self.in_conv(self._resample(h))
        x = self._resample(x)
        e = self.emb(emb)[..., None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.out_norm(h) * (1 + scale) + shift
        else:
            h = self.out_norm(h + e)
        return self.skip(x) + self.out_layers(h)


class AttentionBlock(nn.Module):
    """Multi-head self-attention over all positions of a feature map, residual, zero-initialised projection."""

    def __init__(self, channels: int, num_heads: int, head_channels: int | None) -> None:
        super().__init__()
        self.heads = channels // head_channels if head_channels else num_heads
        if channels % self.heads:
            raise ValueError(f"{channels} channels do not split into {self.heads} attention heads")
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv(self.norm(x).reshape(b, c, h * w))
        q, k, v = qkv.reshape(b, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(dim=1)
        out = F.scaled_dot_product_attention(q, k, v)  # [b, heads, hw, c/heads]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h * w)).reshape(b, c, h, w)


class Downsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Stage(nn.ModuleList):
    """Layers applied in sequence, each given the time embedding."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb)
        return x


class UNet(nn.Module):
    """``forward(x [B, in_channels, S, S], t [B]) -> [B, out_channels, S, S]``; S must be divisible by
    2^(len(channel_mult) − 1)."""

    def __init__(self, cfg: UNetConfig, in_channels: int, out_channels: int, image_size: int) -> None:
        super().__init__()
        levels = len(cfg.channel_mult)
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image size {image_size} is not divisible by 2^{levels - 1} for {levels} UNet levels")
        ch = cfg.model_channels
        emb_dim = 4 * ch
        self.model_channels = ch
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))

        def res(c_in: int, c_out: int, resample: str | None = None) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.dropout, cfg.scale_shift_norm, resample)

        def attention(c: int) -> AttentionBlock:
            return AttentionBlock(c, cfg.num_heads, cfg.num_head_channels)

        self.input = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        skips, size, c = [ch], image_size, ch
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                stage = Stage([res(c, mult * ch)])
                c = mult * ch
                if size in cfg.attention_resolutions:
                    stage.append(attention(c))
                self.down.append(stage)
                skips.append(c)
            if level < levels - 1:
                self.down.append(Stage([res(c, c, "down") if cfg.resblock_updown else Downsample(c)]))
                skips.append(c)
                size //= 2
        self.middle = Stage([res(c, c), attention(c), res(c, c)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                stage = Stage([res(c + skips.pop(), mult * ch)])
                c = mult * ch
                if size in cfg.attention_resolutions:
                    stage.append(attention(c))
                if level and i == cfg.num_res_blocks:
                    stage.append(res(c, c, "up") if cfg.resblock_updown else Upsample(c))
                    size *= 2
                self.up.append(stage)
        self.out = nn.Sequential(
            nn.GroupNorm(group_count(c), c), nn.SiLU(), zero_init(nn.Conv2d(c, out_channels, 3, padding=1))
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        h = self.input(x)
        skips = [h]
        for stage in self.down:
            h = stage(h, emb)
            skips.append(h)
        h = self.middle(h, emb)
        for stage in self.up:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h)
