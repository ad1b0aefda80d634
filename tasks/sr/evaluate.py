"""Super-resolve the fixed test crops with one method (a Ray task, or inline) and time it per image."""

from __future__ import annotations

import numpy as np
import torch

from fedray.platform.config import load_config
from fedray.platform.device import select_device, timed_batches
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.models import DIFFUSION_METHODS, build_network, build_resshift


def super_resolve(
    config_yaml: str, method: str, state: dict[str, np.ndarray] | None, cond: np.ndarray
) -> tuple[np.ndarray, float]:
    """``[N, 3, S, S]`` outputs in [−1, 1] for the upsampled inputs ``cond``, and seconds per image (wall clock,
    after one warm-up batch). ``bicubic`` returns ``cond`` itself."""
    cfg = load_config(SRConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    device = select_device()
    if method == "bicubic":
        return cond.copy(), 0.0
    model = load_state_arrays(build_network(cfg, method), state or {}).to(device).eval()
    diffusion = build_resshift(cfg)
    generator = torch.Generator(device=device).manual_seed(derive_seed(cfg.seed, "sr", method, "sample"))

    def run(batch: torch.Tensor) -> torch.Tensor:
        if method in DIFFUSION_METHODS:
            return diffusion.sample(model, batch, batch, generator=generator)
        return model(batch)

    inputs = as_tensor(cond).to(device)
    outputs, seconds = timed_batches(
        lambda batch: run(batch).clamp(-1, 1),
        [(b,) for b in inputs.split(cfg.eval_batch_size)],
        warmup=(inputs[: min(2, len(inputs))],),
    )
    return outputs.numpy(), seconds / len(inputs)
