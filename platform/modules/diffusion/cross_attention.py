"""Cross-attention from UNet feature maps to image tokens, with exchangeable key/value processors.

A :class:`CrossAttentionBlock` belongs to the UNet: its normalisation, query projection ``to_q`` and output projection
``to_out`` are part of the (frozen) base model. What the queries attend to is decided by its ``processor``, installed
later with :func:`set_cross_attention` (diffusers calls this an attention processor):

- :class:`FusionProcessor` — Foodfusion's Fusion Module: the query attends to foreground tokens and to background
  tokens through two separate, trainable K/V pairs, and a FusionBlock merges the two results;
- :class:`ConcatProcessor` — one trainable K/V pair over the concatenation of both token sets (IP-Adapter style), the
  baseline that isolates the fusion module.

Without a processor, or without context, the block adds nothing: that is how the base UNet trains on images alone.
The value projections start at zero so that installing a processor leaves the base model's output unchanged until
training moves them (the keys, the FusionBlock and the frozen projections keep their default initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.diffusion.embedding import group_count

PROCESSORS = ("fusion", "concat")


@dataclass
class ImageContext:
    """Token sets of one batch: foreground ``[B, Nf, D]`` and background ``[B, Nb, D]``."""

    foreground: torch.Tensor
    background: torch.Tensor


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """``[B, L, C] -> [B, heads, L, C/heads]``."""
    b, length, c = x.shape
    return x.reshape(b, length, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """``[B, heads, L, C/heads] -> [B, L, C]``."""
    b, heads, length, c = x.shape
    return x.transpose(1, 2).reshape(b, length, heads * c)


class KeyValue(nn.Module):
    """A trainable key/value pair from token width ``context_dim`` to ``channels``, without bias (as the official
    ``to_k_ip``/``to_v_ip``); the value projection starts at zero."""

    def __init__(self, context_dim: int, channels: int) -> None:
        super().__init__()
        self.to_k = nn.Linear(context_dim, channels, bias=False)
        self.to_v = nn.Linear(context_dim, channels, bias=False)
        nn.init.zeros_(self.to_v.weight)

    def attend(self, q: torch.Tensor, tokens: torch.Tensor, heads: int) -> torch.Tensor:
        """SDPA of queries ``[B, heads, L, C/heads]`` over ``tokens`` ``[B, N, D]``; ``[B, L, C]``."""
        k, v = _heads(self.to_k(tokens), heads), _heads(self.to_v(tokens), heads)
        return _merge(F.scaled_dot_product_attention(q, k, v))


class FusionBlock(nn.Sequential):
    """Linear(2C, 2C) → ELU → Linear(2C, C) → ELU → Linear(C, C), no biases: merges the foreground and background
    attention results."""

    def __init__(self, channels: int) -> None:
        super().__init__(
            nn.Linear(2 * channels, 2 * channels, bias=False),
            nn.ELU(),
            nn.Linear(2 * channels, channels, bias=False),
            nn.ELU(),
            nn.Linear(channels, channels, bias=False),
        )


class FusionProcessor(nn.Module):
    """O = FusionBlock(concat[SDPA(Q, K_fg, V_fg), SDPA(Q, K_bg, V_bg)])."""

    def __init__(self, context_dim: int, channels: int) -> None:
        super().__init__()
        self.foreground = KeyValue(context_dim, channels)
        self.background = KeyValue(context_dim, channels)
        self.fusion = FusionBlock(channels)

    def forward(self, q: torch.Tensor, context: ImageContext, heads: int) -> torch.Tensor:
        o_fg = self.foreground.attend(q, context.foreground, heads)
        o_bg = self.background.attend(q, context.background, heads)
        return self.fusion(torch.cat([o_fg, o_bg], dim=-1))


class ConcatProcessor(nn.Module):
    """O = SDPA(Q, K·[E_fg; E_bg], V·[E_fg; E_bg]): one K/V pair over both token sets, no fusion block."""

    def __init__(self, context_dim: int, channels: int) -> None:
        super().__init__()
        self.tokens = KeyValue(context_dim, channels)

    def forward(self, q: torch.Tensor, context: ImageContext, heads: int) -> torch.Tensor:
        return self.tokens.attend(q, torch.cat([context.foreground, context.background], dim=1), heads)


class CrossAttentionBlock(nn.Module):
    """x + to_out(processor(to_q(GN(x)), context)) over every position of a feature map (the official output scale
    is 1); ``x`` unchanged without a processor or context."""

    def __init__(self, channels: int, num_heads: int, head_channels: int | None) -> None:
        super().__init__()
        self.heads = channels // head_channels if head_channels else num_heads
        if channels % self.heads:
            raise ValueError(f"{channels} channels do not split into {self.heads} attention heads")
        self.channels = channels
        self.norm = nn.GroupNorm(group_count(channels), channels)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_out = nn.Linear(channels, channels, bias=False)  # so that O = 0 adds nothing, as without context
        self.processor: nn.Module | None = None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None, context: ImageContext | None = None):
        if self.processor is None or context is None:
            return x
        b, c, h, w = x.shape
        q = _heads(self.to_q(self.norm(x).reshape(b, c, h * w).transpose(1, 2)), self.heads)
        out = self.to_out(self.processor(q, context, self.heads))  # [b, hw, c]
        return x + out.transpose(1, 2).reshape(b, c, h, w)


def set_cross_attention(model: nn.Module, kind: str, context_dim: int) -> list[nn.Module]:
    """Install a new ``kind`` processor (``fusion`` or ``concat``) in every :class:`CrossAttentionBlock` of ``model``;
    returns the processors (the parameters to train)."""
    if kind not in PROCESSORS:
        raise ValueError(f"cross-attention processor must be one of {PROCESSORS}, got {kind!r}")
    make = FusionProcessor if kind == "fusion" else ConcatProcessor
    installed = []
    for block in model.modules():
        if isinstance(block, CrossAttentionBlock):
            block.processor = make(context_dim, block.channels)
            installed.append(block.processor)
    if not installed:
        raise ValueError("the model has no cross-attention layers to install processors in")
    return installed
