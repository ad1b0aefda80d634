"""DiT-SR's restoration network: a U-shaped network whose every resolution level runs an *isotropic* transformer
stage — the level's map is 1×1-projected to one common embed width, processed by shifted-window Swin blocks with
AdaFM (or AdaLN) time conditioning, and projected back — so transformer compute is spread evenly over resolutions
instead of growing with the channel count of the low-resolution levels.

``forward(x_t [B, C, S, S], t [B], cond [B, C_cond, S, S]) -> x̂₀ [B, C_out, S, S]``: the conditioning image (the
upsampled low-resolution input) is concatenated to x_t; encoder-decoder skips are concatenated and fused by a 3×3
conv. Sizes come from :class:`fedray.platform.modules.config.SRNetConfig`. With ``residual`` the output is added to
the conditioning image (x̂₀ = cond + f): the zero-initialised output layer then starts at the conditioning image
instead of at zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.config import SRNetConfig
from fedray.platform.modules.diffusion.embedding import group_count, timestep_embedding, zero_init
from fedray.platform.modules.diffusion.unet import Downsample, ResBlock, Upsample
from fedray.platform.modules.swin import SwinStage


class IsotropicStage(nn.Module):
    """x + proj_out(Swin(proj_in(x))): one transformer stage at the common embed width."""

    def __init__(self, channels: int, resolution: int, cfg: SRNetConfig, emb_dim: int) -> None:
        super().__init__()
        self.proj_in = nn.Conv2d(channels, cfg.embed_dim, 1)
        self.swin = SwinStage(
            cfg.embed_dim, resolution, cfg.depth, cfg.num_heads, cfg.window, cfg.mlp_ratio, emb_dim,
            cfg.modulation, cfg.dropout,
        )  # fmt: skip
        self.proj_out = zero_init(nn.Conv2d(cfg.embed_dim, channels, 1))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return x + self.proj_out(self.swin(self.proj_in(x), emb))


class DiTSRNet(nn.Module):
    def __init__(
        self, cfg: SRNetConfig, in_channels: int, cond_channels: int, out_channels: int, size: int,
        residual: bool = False,
    ) -> None:  # fmt: skip
        super().__init__()
        if residual and cond_channels != out_channels:
            raise ValueError(f"a residual output needs cond_channels = out_channels ({cond_channels} ≠ {out_channels})")
        self.residual = residual
        levels = len(cfg.channel_mult)
        if size % (2 ** (levels - 1) * min(cfg.window, size // 2 ** (levels - 1))):
            raise ValueError(f"image size {size} does not tile into windows at all {levels} levels")
        ch = cfg.model_channels
        emb_dim = 4 * ch
        self.model_channels = ch
        self.time_embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.input = nn.Conv2d(in_channels + cond_channels, ch, 3, padding=1)

        def res(c_in: int, c_out: int) -> ResBlock:
            return ResBlock(c_in, c_out, emb_dim, cfg.dropout, scale_shift=True)

        self.encoder = nn.ModuleList()
        self.downsample = nn.ModuleList()
        widths, c, resolution = [], ch, size
        for level, mult in enumerate(cfg.channel_mult):
            blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                blocks.append(res(c, mult * ch))
                c = mult * ch
            blocks.append(IsotropicStage(c, resolution, cfg, emb_dim))
            self.encoder.append(blocks)
            widths.append(c)
            if level < levels - 1:
                self.downsample.append(Downsample(c))
                resolution //= 2
        self.middle = nn.ModuleList([res(c, c), IsotropicStage(c, resolution, cfg, emb_dim), res(c, c)])
        self.feature_channels: tuple[int, ...] = (*widths, c)  # of encoder_features
        self.fuse = nn.ModuleList()
        self.decoder = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            skip = widths[level]
            self.fuse.append(nn.Conv2d(c + skip, mult * ch, 3, padding=1))
            c = mult * ch
            blocks = nn.ModuleList([res(c, c) for _ in range(cfg.num_res_blocks)])
            blocks.append(IsotropicStage(c, resolution, cfg, emb_dim))
            self.decoder.append(blocks)
            if level:
                self.upsample.append(Upsample(c))
                resolution *= 2
        self.out = nn.Sequential(
            nn.GroupNorm(group_count(c), c), nn.SiLU(), zero_init(nn.Conv2d(c, out_channels, 3, padding=1))
        )

    def _encode(
        self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        emb = self.time_embed(timestep_embedding(t, self.model_channels).to(x.dtype))
        h = self.input(torch.cat([x, cond], dim=1))
        skips = []
        for level, blocks in enumerate(self.encoder):
            for block in blocks:
                h = block(h, emb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        for block in self.middle:
            h = block(h, emb)
        return skips, h, emb

    def encoder_features(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's output at every resolution level and the middle block's output (a time-aware feature
        pyramid, e.g. for a discriminator on a frozen teacher)."""
        skips, middle, _ = self._encode(x, t, cond)
        return [*skips, middle]

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        skips, h, emb = self._encode(x, t, cond)
        for level, (fuse, blocks) in enumerate(zip(self.fuse, self.decoder, strict=True)):
            h = F.silu(fuse(torch.cat([h, skips.pop()], dim=1)))
            for block in blocks:
                h = block(h, emb)
            if level < len(self.upsample):
                h = self.upsample[level](h)
        return cond + self.out(h) if self.residual else self.out(h)
