"""Sampling loops over a :class:`GaussianDiffusion` (respaced or not): DDPM ancestral, DDIM, DDIM inversion.

Every loop can start part-way (``start``: the index of the given ``x``, as SDEdit-style restarts and DLSR's light
noising need) and takes a ``torch.Generator`` so that a seed reproduces a sample exactly.
"""

from __future__ import annotations

import torch

from fedray.platform.modules.diffusion.gaussian import Denoiser, GaussianDiffusion


def _indices(diffusion: GaussianDiffusion, start: int | None) -> range:
    start = diffusion.num_timesteps - 1 if start is None else start
    if not 0 <= start < diffusion.num_timesteps:
        raise ValueError(f"start index {start} outside [0, {diffusion.num_timesteps})")
    return range(start, -1, -1)


def _batch_t(x: torch.Tensor, index: int) -> torch.Tensor:
    return torch.full((x.shape[0],), index, device=x.device, dtype=torch.long)


@torch.no_grad()
def ddpm_sample(
    diffusion: GaussianDiffusion,
    model: Denoiser,
    x: torch.Tensor,
    start: int | None = None,
    clip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Ancestral sampling from ``x`` at index ``start`` (default: pure noise at the last index) down to x₀."""
    for index in _indices(diffusion, start):
        x = diffusion.p_sample(model, x, _batch_t(x, index), clip, generator)
    return x


@torch.no_grad()
def ddim_sample(
    diffusion: GaussianDiffusion,
    model: Denoiser,
    x: torch.Tensor,
    start: int | None = None,
    eta: float = 0.0,
    clip: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DDIM from ``x`` at index ``start`` down to x₀; deterministic at η = 0."""
    for index in _indices(diffusion, start):
        x = diffusion.ddim_step(model, x, _batch_t(x, index), eta, clip, generator)
    return x


@torch.no_grad()
def ddim_invert(
    diffusion: GaussianDiffusion, model: Denoiser, x0: torch.Tensor, stop: int | None = None, clip: bool = False
) -> torch.Tensor:
    """Deterministic DDIM encoding of x₀ up to index ``stop`` (default: the last): the inverse of
    :func:`ddim_sample` at η = 0 up to the change of the network's prediction between neighbouring steps."""
    stop = diffusion.num_timesteps - 1 if stop is None else stop
    # Step i maps x at ᾱ_{i−1} (ᾱ_{−1} = 1) to x at ᾱ_i using the prediction at the lower level.
    x = x0
    for index in range(0, stop + 1):
        x = _invert_one(diffusion, model, x, index, clip)
    return x


def _invert_one(diffusion: GaussianDiffusion, model: Denoiser, x: torch.Tensor, index: int, clip: bool) -> torch.Tensor:
    if index == 0:
        # From the data (ᾱ = 1) the first step needs ε̂ at x₀ itself; evaluate the network at index 0.
        eps, _ = diffusion.predict(model, x, _batch_t(x, 0), clip)
        abar = float(diffusion.alphas_cumprod[0])
        return abar**0.5 * x + (1 - abar) ** 0.5 * eps
    return diffusion.ddim_reverse_step(model, x, _batch_t(x, index - 1), clip)
