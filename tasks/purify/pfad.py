"""PFAD's purification loop and the baselines that share its pieces (batched torch; images in [−1, 1]).

After every ancestral step the sample x is merged with the corrupted input y (``merge``, the official ``deal_out``):
y's low-frequency k-space rows always replace the sample's; of the high-frequency rows and of the pixels, the part
selected by the checkerboard M is blended in with weight ω_t = 1 − √ᾱ_t (from y in k-space, from a freshly noised
copy y_t in pixel space), and the two results are mixed with k = 1 − γ·exp(−t/T). M alternates with its complement in
the sequence M, 1−M, 1−M, M, M, … . A respaced chain calls the model on its own indices but computes ω_t, k and y_t
from the original timestep and ᾱ.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from fedray.platform.modules.diffusion.gaussian import Denoiser, GaussianDiffusion, gaussian_like
from fedray.platform.modules.diffusion.samplers import ddpm_sample


def checkerboard(size: int, patch: int, device: torch.device | None = None) -> torch.Tensor:
    """``[size, size]``: 1 where (i // patch + j // patch) is odd."""
    idx = torch.arange(size, device=device) // patch
    return ((idx[:, None] + idx[None, :]) % 2).float()


def low_rows(size: int, band: float, device: torch.device | None = None) -> torch.Tensor:
    """``[size, 1]``: 1 on the k-space rows with |k_y| < band·N (unshifted FFT order), else 0. The high band is the
    rest, so rows at exactly band·N are not dropped."""
    ky = torch.fft.fftfreq(size, device=device) * size
    return (ky.abs() < band * size).float()[:, None]


def merge(
    y: torch.Tensor,
    x_prop: torch.Tensor,
    y_t: torch.Tensor,
    omega: float,
    k: float,
    mask: torch.Tensor,
    low: torch.Tensor,
) -> torch.Tensor:
    """The official ``deal_out``: frequency-domain result x₁ and pixel-domain result x₂, blended k·x₁ + (1−k)·x₂."""
    u, r, v = ((a.clamp(-1, 1) + 1) / 2 for a in (y, x_prop, y_t))
    w = omega * mask
    fu, fr = torch.fft.fft2(u), torch.fft.fft2(r)
    spectrum = fu * low + (fu * w + fr * (1 - w)) * (1 - low)
    x1 = 2 * torch.fft.ifft2(spectrum).abs() - 1
    x2 = 2 * (v * w + r * (1 - w)) - 1
    return k * x1 + (1 - k) * x2


def _alternating_masks(mask: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """The mask of each step: j = 0 uses M; at every odd j the mask flips before the step."""
    out, current = [], mask
    for j in range(steps):
        if j % 2 == 1:
            current = 1 - current
        out.append(current)
    return out


@torch.no_grad()
def pfad_purify(
    diffusion: GaussianDiffusion,
    original_alphas_cumprod: np.ndarray,
    model: Denoiser,
    y: torch.Tensor,
    patch: int,
    gamma: float = 0.7,
    low_band: float = 0.1,
    masks: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """PFAD from pure noise over ``diffusion``'s (possibly respaced) steps. ``masks=False`` is the low-band-only
    ablation: ω_t ≡ 0, so only y's low band is kept and everything else comes from the model."""
    size = y.shape[-1]
    low = low_rows(size, low_band, y.device)
    schedule = _alternating_masks(checkerboard(size, patch, y.device), diffusion.num_timesteps)
    total = len(original_alphas_cumprod)
    x = gaussian_like(y, generator)
    for j, index in enumerate(range(diffusion.num_timesteps - 1, -1, -1)):
        t = int(diffusion.timestep_map[index])
        abar = float(original_alphas_cumprod[t])
        y_t = math.sqrt(abar) * y + math.sqrt(1 - abar) * gaussian_like(y, generator)
        x_prop = diffusion.p_sample(model, x, torch.full((len(y),), index, device=y.device), True, generator)
        omega = 1 - math.sqrt(abar) if masks else 0.0
        k = 1 - gamma * math.exp(-t / total)
        x = merge(y, x_prop, y_t, omega, k, schedule[j], low)
    return x


@torch.no_grad()
def sdedit_purify(
    diffusion: GaussianDiffusion,
    model: Denoiser,
    y: torch.Tensor,
    start_fraction: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Noise the corrupted input to the index at ``start_fraction`` of the chain and run the plain reverse chain."""
    start = max(round(start_fraction * diffusion.num_timesteps) - 1, 0)
    t = torch.full((len(y),), start, device=y.device)
    return ddpm_sample(diffusion, model, diffusion.q_sample(y, t, gaussian_like(y, generator)), start, True, generator)


def lowpass(y: torch.Tensor, low_band: float = 0.1) -> torch.Tensor:
    """y's low band alone (the rest of k-space zero), as a magnitude image in [−1, 1]."""
    u = (y.clamp(-1, 1) + 1) / 2
    return 2 * torch.fft.ifft2(torch.fft.fft2(u) * low_rows(y.shape[-1], low_band, y.device)).abs() - 1
