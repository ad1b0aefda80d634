"""Composition by DDIM with classifier-free guidance, as a function that runs as a Ray task on a shard of triplets."""

from __future__ import annotations

import time

import numpy as np
import torch

from fedray.platform.config import load_config
from fedray.platform.device import select_device, torch_threads
from fedray.platform.modules.diffusion.cross_attention import ImageContext
from fedray.platform.modules.diffusion.gaussian import Denoiser
from fedray.platform.modules.diffusion.samplers import ddim_sample
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.compose.config import ComposeConfig
from fedray.tasks.compose.data import Triplets
from fedray.tasks.compose.model import Compositor, build_compositor, build_diffusion


def guided_denoiser(model: Compositor, foreground: torch.Tensor, background: torch.Tensor, guidance: float) -> Denoiser:
    """ε̂ = ε̂_u + g·(ε̂_c − ε̂_u), both branches in one batch; the unconditional one reads the tokens of all-zero
    images and, like the conditional one, the control branch's background."""
    zeros = torch.zeros_like(foreground)
    conditional, unconditional = model.context(foreground, background), model.context(zeros, zeros)
    context = ImageContext(
        torch.cat([conditional.foreground, unconditional.foreground]),
        torch.cat([conditional.background, unconditional.background]),
    )
    hint = torch.cat([background, background])

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps_c, eps_u = model(torch.cat([x, x]), torch.cat([t, t]), context, hint).chunk(2)
        return eps_u + guidance * (eps_c - eps_u)

    return denoise


def compose_shard(
    config_yaml: str, method: str, state: dict[str, np.ndarray], triplets: Triplets, seed: int
) -> tuple[np.ndarray, float]:
    """Composites ``[N, 3, S, S]`` in [−1, 1] of ``triplets`` by ``method``'s trained model, and seconds per image."""
    cfg = load_config(ComposeConfig, text=config_yaml)
    with torch_threads(cfg.train.threads):
        device = select_device()
        model = load_state_arrays(build_compositor(cfg, method), state, f"the {method} checkpoint", "model, tokens")
        model = model.to(device).eval()
        diffusion = build_diffusion(cfg, respaced=True)
        generator = torch.Generator().manual_seed(seed)  # the starting noise: drawn on the CPU, the same anywhere
        step_noise = torch.Generator(device=device).manual_seed(derive_seed(seed, "ddim"))  # η > 0 draws on device
        started = time.perf_counter()
        with torch.no_grad():
            fg, bg = as_tensor(triplets.foreground).to(device), as_tensor(triplets.background).to(device)
            noise = torch.randn(bg.shape, generator=generator).to(device)
            denoise = guided_denoiser(model, fg, bg, cfg.diffusion.guidance)
            out = ddim_sample(diffusion, denoise, noise, eta=cfg.diffusion.eta, clip=True, generator=step_noise)
            out = out.clamp(-1, 1).cpu()  # waits for the device, so the time below is the sampling's
        seconds = (time.perf_counter() - started) / max(len(bg), 1)
    return out.numpy(), seconds
