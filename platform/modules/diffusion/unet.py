"""A small guided-diffusion-style UNet: residual blocks with (optionally scale-shift) time conditioning, multi-head
self-attention at chosen feature-map sizes, skip connections, zero-initialised output layers.

Sizes come from :class:`fedray.platform.modules.config.UNetConfig`. ``attention_resolutions`` are feature-map side
lengths (16 means "at the 16×16 level"), not downsampling factors as in guided-diffusion's flags.

A conditional UNet adds a :class:`CrossAttentionBlock` after the self-attention of the levels named in
``cross_attention_resolutions`` (and in the middle block), as Stable Diffusion's transformer blocks do, and accepts
ControlNet residuals for its skips and middle block. The encoder half is built by one function shared with
:class:`fedray.platform.modules.diffusion.controlnet.ControlNet`, so the copy has the same parameter names.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.cross_attention import CrossAttentionBlock, ImageContext
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
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # unit last stride: CUDA's fused kernels need it
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
    """Layers applied in sequence, each given the time embedding (and cross-attention layers the context)."""

    def forward(self, x: torch.Tensor, emb: torch.Tensor, context: ImageContext | None = None) -> torch.Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb, context) if isinstance(layer, CrossAttentionBlock) else layer(x, emb)
        return x


class Encoder(nn.Module):
    """The input convolution, the downsampling levels and the middle block, with the channel count of every skip."""

    def __init__(
        self, cfg: UNetConfig, in_channels: int, image_size: int, cross_attention_resolutions: Sequence[int] = ()
    ) -> None:
        super().__init__()
        levels = len(cfg.channel_mult)
        if image_size % 2 ** (levels - 1):
            raise ValueError(f"image size {image_size} is not divisible by 2^{levels - 1} for {levels} UNet levels")
        ch = cfg.model_channels
        self.cfg, self.cross_sides, self.emb_dim = cfg, set(cross_attention_resolutions), 4 * ch
        self.input = nn.Conv2d(in_channels, ch, 3, padding=1)
        self.down = nn.ModuleList()
        self.skip_channels, size, c = [ch], image_size, ch
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(Stage([self.res(c, mult * ch), *self.attention(mult * ch, size)]))
                c = mult * ch
                self.skip_channels.append(c)
            if level < levels - 1:
                self.down.append(Stage([self.res(c, c, "down") if cfg.resblock_updown else Downsample(c)]))
                self.skip_channels.append(c)
                size //= 2
        middle_cross = [CrossAttentionBlock(c, cfg.num_heads, cfg.num_head_channels)] if self.cross_sides else []
        self.middle = Stage([self.res(c, c), AttentionBlock(c, cfg.num_heads, cfg.num_head_channels), *middle_cross,
                             self.res(c, c)])  # fmt: skip
        self.channels, self.size = c, size

    def res(self, c_in: int, c_out: int, resample: str | None = None) -> ResBlock:
        return ResBlock(c_in, c_out, self.emb_dim, self.cfg.dropout, self.cfg.scale_shift_norm, resample)

    def attention(self, c: int, size: int) -> list[nn.Module]:
        """The attention layers of a level with feature maps of side ``size``: self-attention, then cross-attention."""
        layers: list[nn.Module] = []
        if size in self.cfg.attention_resolutions:
            layers.append(AttentionBlock(c, self.cfg.num_heads, self.cfg.num_head_channels))
        if size in self.cross_sides:
            layers.append(CrossAttentionBlock(c, self.cfg.num_heads, self.cfg.num_head_channels))
        return layers


class WithEncoder(nn.Module):
    """A network that owns a time embedding and an :class:`Encoder`'s layers as ``time_embed``, ``input``, ``down``
    and ``middle``: the parameter names the UNet and its ControlNet copy share."""

    def build_encoder(
        self, cfg: UNetConfig, in_channels: int, image_size: int, cross_attention_resolutions: Sequence[int]
    ) -> Encoder:
        ch = cfg.model_channels
        self.model_channels = ch
        self.time_embed = nn.Sequential(nn.Linear(ch, 4 * ch), nn.SiLU(), nn.Linear(4 * ch, 4 * ch))
        encoder = Encoder(cfg, in_channels, image_size, cross_attention_resolutions)
        self.input, self.down, self.middle = encoder.input, encoder.down, encoder.middle
        return encoder

    def embed(self, t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return self.time_embed(timestep_embedding(t, self.model_channels).to(dtype))


class UNet(WithEncoder):
    """``forward(x [B, in_channels, S, S], t [B], context, control) -> [B, out_channels, S, S]``; S must be divisible
    by 2^(len(channel_mult) − 1). ``control``: residuals added to every skip and, last, to the middle block's output."""

    def __init__(
        self,
        cfg: UNetConfig,
        in_channels: int,
        out_channels: int,
        image_size: int,
        cross_attention_resolutions: Sequence[int] = (),
    ) -> None:
        super().__init__()
        ch = cfg.model_channels
        encoder = self.build_encoder(cfg, in_channels, image_size, cross_attention_resolutions)
        skips, size, c = list(encoder.skip_channels), encoder.size, encoder.channels
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                stage = Stage([encoder.res(c + skips.pop(), mult * ch), *encoder.attention(mult * ch, size)])
                c = mult * ch
                if level and i == cfg.num_res_blocks:
                    stage.append(encoder.res(c, c, "up") if cfg.resblock_updown else Upsample(c))
                    size *= 2
                self.up.append(stage)
        self.out = nn.Sequential(
            nn.GroupNorm(group_count(c), c), nn.SiLU(), zero_init(nn.Conv2d(c, out_channels, 3, padding=1))
        )

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: ImageContext | None = None,
        control: Sequence[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        emb = self.embed(t, x.dtype)
        h = self.input(x)
        skips = [h]
        for stage in self.down:
            h = stage(h, emb, context)
            skips.append(h)
        h = self.middle(h, emb, context)
        if control is not None:
            if len(control) != len(skips) + 1:
                raise ValueError(f"control has {len(control)} residuals; this UNet takes {len(skips) + 1}")
            skips = [s + r for s, r in zip(skips, control[:-1], strict=True)]
            h = h + control[-1]
        for stage in self.up:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb, context)
        return self.out(h)
