"""Purify a shard of corrupted slices with one method: a function that runs as a Ray task (or inline)."""

from __future__ import annotations

import numpy as np
import torch

from fedray.platform.config import load_config
from fedray.platform.device import select_device
from fedray.platform.modules.diffusion.schedules import space_timesteps
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.tasks.purify.config import PurifyConfig
from fedray.tasks.purify.pfad import lowpass, pfad_purify, sdedit_purify
from fedray.tasks.purify.training import ResidualRestorer, State, build_diffusion, build_unet

DIFFUSION_METHODS = ("pfad", "lowband_ddpm", "sdedit")


def _load(module: torch.nn.Module, state: State, device: torch.device) -> torch.nn.Module:
    return load_state_arrays(module, state).to(device).eval()


def purify_shard(config_yaml: str, method: str, state: State | None, corrupted: np.ndarray, seed: int) -> np.ndarray:
    """``method`` applied to ``corrupted`` ``[S, N, N]`` in batches; ``state`` is the DDPM's weights for the
    diffusion methods, the restorer's for ``supervised``, unused by ``lowpass``. Returns ``[S, N, N]`` in [−1, 1]."""
    cfg = load_config(PurifyConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    device = select_device()
    generator = torch.Generator(device=device).manual_seed(seed)
    full = build_diffusion(cfg)
    diffusion = full.respaced(space_timesteps(cfg.diffusion.steps, cfg.diffusion.sample_steps))
    if method in DIFFUSION_METHODS:
        model = _load(build_unet(cfg), state or {}, device)
    elif method == "supervised":
        model = _load(ResidualRestorer(build_unet(cfg)), state or {}, device)
    patch = cfg.pfad.patch or max(cfg.data.image_size // 16, 1)
    out = []
    with torch.no_grad():
        for start in range(0, len(corrupted), cfg.pfad.batch_size):
            y = as_tensor(corrupted[start : start + cfg.pfad.batch_size]).unsqueeze(1).to(device)
            if method in ("pfad", "lowband_ddpm"):
                x = pfad_purify(
                    diffusion,
                    full.alphas_cumprod,
                    model,
                    y,
                    patch,
                    cfg.pfad.gamma,
                    cfg.pfad.low_band,
                    masks=method == "pfad",
                    generator=generator,
                )
            elif method == "sdedit":
                x = sdedit_purify(diffusion, model, y, cfg.pfad.sdedit_start, generator)
            elif method == "lowpass":
                x = lowpass(y, cfg.pfad.low_band)
            elif method == "supervised":
                x = model(y)
            else:
                raise ValueError(f"unknown purification method {method!r}")
            out.append(x.clamp(-1, 1)[:, 0].cpu().numpy())
    return np.concatenate(out).astype(np.float32)
