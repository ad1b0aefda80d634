"""Swin transformer blocks on ``[B, C, H, W]`` maps: (shifted) window self-attention with a learned relative
position bias, an MLP, and a time-conditioning hook on both branches (AdaFM or AdaLN, see :mod:`adafm`).

Windows shift by half a window on every other block so that information crosses window borders; the shifted
attention masks out pairs that the cyclic roll brought together from opposite edges. A map no larger than the window
uses one unshifted window, as in Swin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.adafm import Modulation, build_modulation


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[B, H, W, C]`` → ``[B·nW, window², C]``."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_merge(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.reshape(b, h // window, w // window, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h, w, c)


def shifted_window_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """``[nW, window², window²]`` additive mask: −inf between positions from different regions of the rolled map."""
    regions = torch.zeros(1, h, w, 1, device=device)
    label = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            regions[:, hs, ws, :] = label
            label += 1
    ids = window_partition(regions, window).squeeze(-1)
    return (ids[:, None, :] != ids[:, :, None]).float() * torch.finfo(torch.float32).min


class WindowAttention(nn.Module):
    """Multi-head attention inside each window, with a relative position bias table per head."""

    def __init__(self, dim: int, window: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"embed dim {dim} does not split into {heads} heads")
        self.heads, self.window, self.dropout = heads, window, dropout
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("bias_index", rel[..., 0] * (2 * window - 1) + rel[..., 1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        n_windows, n, c = x.shape
        q, k, v = self.qkv(x).reshape(n_windows, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        bias = self.bias_table[self.bias_index.reshape(-1)].reshape(n, n, self.heads).permute(2, 0, 1)[None]
        bias = bias.contiguous()  # CUDA's fused attention kernels need a unit last stride (else: the unfused math path)
        if mask is not None:
            # windows are batch-major (window_partition): the per-window masks repeat for every image
            bias = (bias + mask[:, None]).repeat(n_windows // mask.shape[0], 1, 1, 1)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias.to(q.dtype), dropout_p=self.dropout if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(n_windows, n, c))


class SwinBlock(nn.Module):
    """x + (S)W-MSA(mod₁(norm(x), t)); x + MLP(mod₂(norm(x), t)); ``modulation`` picks AdaFM, AdaLN or none."""

    def __init__(
        self,
        dim: int,
        resolution: int,
        heads: int,
        window: int,
        shift: bool,
        mlp_ratio: float,
        emb_dim: int,
        modulation: str,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.window = min(window, resolution)
        self.shift = self.window // 2 if shift and resolution > window else 0
        self.attn_mod: Modulation = build_modulation(modulation, dim, emb_dim, resolution)
        self.mlp_mod: Modulation = build_modulation(modulation, dim, emb_dim, resolution)
        self.attn = WindowAttention(dim, self.window, heads, dropout)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.window or w % self.window:
            raise ValueError(f"a {h}×{w} map does not tile into {self.window}×{self.window} windows")
        hidden, gate = self.attn_mod(x, emb)
        tokens = hidden.permute(0, 2, 3, 1)
        mask = None
        if self.shift:
            tokens = torch.roll(tokens, (-self.shift, -self.shift), dims=(1, 2))
            mask = shifted_window_mask(h, w, self.window, self.shift, x.device)
        out = window_merge(self.attn(window_partition(tokens, self.window), mask), self.window, h, w)
        if self.shift:
            out = torch.roll(out, (self.shift, self.shift), dims=(1, 2))
        x = (x + gate * out.permute(0, 3, 1, 2)).contiguous()
        hidden, gate = self.mlp_mod(x, emb)
        # contiguous: a channels-last result would reach GroupNorm's CPU backward, which crashes on such strides
        return (x + gate * self.mlp(hidden.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)).contiguous()


class SwinStage(nn.Module):
    """``depth`` Swin blocks (shift on every other one) at one resolution and width."""

    def __init__(
        self,
        dim: int,
        resolution: int,
        depth: int,
        heads: int,
        window: int,
        mlp_ratio: float,
        emb_dim: int,
        modulation: str,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, resolution, heads, window, i % 2 == 1, mlp_ratio, emb_dim, modulation, dropout)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, emb)
        return x
