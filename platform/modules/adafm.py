"""Time-step conditioning of transformer branches: AdaFM (DiT-SR) and AdaLN (DiT), behind one interface.

A modulation takes the branch input ``x [B, C, H, W]`` and the time embedding and returns (the normalised,
conditioned input of the branch, a gate for its output).

- **AdaFM**: GroupNorm, then per non-overlapping p×p patch (p = min(8, resolution)) a real 2-D FFT, a
  time-dependent scale per frequency bin (p × (p//2 + 1) values from Linear(SiLU(t_emb)), shared by all channels and
  patches), the inverse FFT — no shift and no gate (gate 1). Computed in float32.
- **AdaLN**: LayerNorm over channels without affine parameters, then ·(1 + scale) + shift, and a gate on the branch
  output, all from Linear(SiLU(t_emb)), zero-initialised as DiT's adaLN-Zero — the ablation DiT-SR replaces.
- **none**: GroupNorm only.
"""

from __future__ import annotations

import torch
from torch import nn

from fedray.platform.modules.diffusion.embedding import group_count, zero_init

MODULATIONS = ("adafm", "adaln", "none")


class Modulation(nn.Module):
    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | float]:
        raise NotImplementedError


class AdaFM(Modulation):
    def __init__(self, dim: int, emb_dim: int, resolution: int, patch: int = 8) -> None:
        super().__init__()
        self.patch = min(patch, resolution)
        self.norm = nn.GroupNorm(group_count(dim), dim)
        self.scale = nn.Sequential(nn.SiLU(), nn.Linear(emb_dim, self.patch * (self.patch // 2 + 1)))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, float]:
        b, c, h, w = x.shape
        p = self.patch
        if h % p or w % p:
            raise ValueError(f"a {h}×{w} map does not tile into {p}×{p} AdaFM patches")
        hidden = self.norm(x).float()
        patches = hidden.reshape(b, c, h // p, p, w // p, p).permute(0, 1, 2, 4, 3, 5)  # [b, c, h/p, w/p, p, p]
        scale = self.scale(emb).float().reshape(b, 1, 1, 1, p, p // 2 + 1)
        patches = torch.fft.irfft2(torch.fft.rfft2(patches) * scale, s=(p, p))
        return patches.permute(0, 1, 2, 4, 3, 5).reshape(b, c, h, w).to(x.dtype), 1.0


class AdaLN(Modulation):
    def __init__(self, dim: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.params = nn.Sequential(nn.SiLU(), zero_init(nn.Linear(emb_dim, 3 * dim)))

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift, gate = self.params(emb)[..., None, None].chunk(3, dim=1)
        hidden = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return hidden * (1 + scale) + shift, gate


class NormOnly(Modulation):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(group_count(dim), dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, float]:
        return self.norm(x), 1.0


def build_modulation(name: str, dim: int, emb_dim: int, resolution: int) -> Modulation:
    if name == "adafm":
        return AdaFM(dim, emb_dim, resolution)
    if name == "adaln":
        return AdaLN(dim, emb_dim)
    if name == "none":
        return NormOnly(dim)
    raise ValueError(f"unknown modulation {name!r}; known: {', '.join(MODULATIONS)}")
