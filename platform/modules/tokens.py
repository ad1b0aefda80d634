"""Image tokens for cross-attention conditioning: a frozen convolutional encoder, feature maps from several depths
flattened into tokens, and a resampler block.

This is the small-scale counterpart of an image-prompt encoder (a frozen CLIP vision tower whose hidden states from
several layers are concatenated, then a trainable resampler). The encoder is trained in-house as an autoencoder
(:class:`TokenAutoencoder`: reconstruct the image from its deepest feature map) so that its features carry the
colours, textures and layout a composition model needs; then it is frozen. The per-depth projections, position
embeddings and the resampler train with the model that reads the tokens.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.encoders import ConvEncoder


class TokenAutoencoder(nn.Module):
    """:class:`ConvEncoder` + a transposed-convolution decoder from its last stage back to the image (tanh output in
    [−1, 1]); trained with L1 on image crops, after which only ``encoder`` is kept."""

    def __init__(self, widths: Sequence[int], in_channels: int = 3, norm_groups: int = 8) -> None:
        super().__init__()
        self.encoder = ConvEncoder(in_channels, list(widths), norm_groups)
        layers: list[nn.Module] = []
        chans = [*reversed(list(widths)), 32]
        for c_in, c_out in itertools.pairwise(chans):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.SiLU()]
        layers += [nn.Conv2d(chans[-1], in_channels, 3, padding=1), nn.Tanh()]
        self.decoder = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class GEGLU(nn.Module):
    """Linear to twice the width, then value · GELU(gate) (the feed-forward of Stable Diffusion's blocks)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, 2 * hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class Resampler(nn.Module):
    """One pre-LN transformer block over the tokens, their number unchanged: x += SelfAttn(LN(x)); x += FF(LN(x))
    with a GEGLU feed-forward of width ``ff_mult``·dim."""

    def __init__(self, dim: int, heads: int, ff_mult: int = 4) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff_norm = nn.LayerNorm(dim)
        self.ff = nn.Sequential(GEGLU(dim, ff_mult * dim), nn.Linear(ff_mult * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.ff(self.ff_norm(x))


class ImageTokenizer(nn.Module):
    """``forward(images [B, 3, S, S]) -> tokens [B, N, dim]``, N = Σ over ``stages`` of the stage's h·w.

    The encoder is frozen (no gradients, always in eval mode); per stage a linear projection to ``dim`` plus a learned
    position embedding, then the :class:`Resampler`. Foreground and background share one tokenizer."""

    def __init__(self, encoder: ConvEncoder, stages: Sequence[str], image_size: int, dim: int, heads: int) -> None:
        super().__init__()
        self.encoder, self.stages = encoder, tuple(stages)
        self.encoder.requires_grad_(False)
        info = {s.name: s for s in encoder.feature_info}
        unknown = [s for s in self.stages if s not in info]
        if unknown:
            raise ValueError(f"unknown encoder stages {unknown}; the encoder has {list(info)}")
        self.proj = nn.ModuleDict({s: nn.Linear(info[s].channels, dim) for s in self.stages})
        self.position = nn.ParameterDict(
            {s: nn.Parameter(0.02 * torch.randn((image_size // info[s].reduction) ** 2, dim)) for s in self.stages}
        )
        self.resampler = Resampler(dim, heads)
        self.num_tokens = sum(p.shape[0] for p in self.position.values())

    def train(self, mode: bool = True) -> ImageTokenizer:
        super().train(mode)
        self.encoder.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            maps = self.encoder.forward_stages(images, self.stages)
        tokens = [self.proj[s](maps[s].flatten(2).transpose(1, 2)) + self.position[s] for s in self.stages]
        return self.resampler(torch.cat(tokens, dim=1))
