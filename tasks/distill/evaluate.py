"""One-step super-resolution with a student (or the teacher used in one step), timed per image."""

from __future__ import annotations

import numpy as np
import torch

from fedray.platform.config import load_config
from fedray.platform.device import select_device, timed_batches
from fedray.platform.modules.state import as_tensor
from fedray.platform.seeding import derive_seed
from fedray.tasks.distill.training import load_teacher
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.models import build_resshift


def one_step(
    teacher_yaml: str, method: str, state: dict[str, np.ndarray], cond: np.ndarray, seed: int
) -> tuple[np.ndarray, float]:
    """x̂₀ = G(z_T, T−1, y) for z_T = y + κ√η_T ε (ε seeded); outputs in [−1, 1] and seconds per image."""
    tcfg = load_config(SRConfig, text=teacher_yaml)
    torch.set_num_threads(tcfg.train.threads)
    device = select_device()
    model = load_teacher(tcfg, method, state, device)
    diffusion = build_resshift(tcfg)
    inputs = as_tensor(cond).to(device)
    eps = torch.randn(inputs.shape, generator=torch.Generator().manual_seed(derive_seed(seed, "distill", "eval")))
    last = diffusion.num_timesteps - 1

    def run(y: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        t = torch.full((len(y),), last, device=device, dtype=torch.long)
        return model(diffusion.scale_input(diffusion.prior_sample(y, noise.to(device)), t), t, y).clamp(-1, 1)

    batches = list(zip(inputs.split(tcfg.eval_batch_size), eps.split(tcfg.eval_batch_size), strict=True))
    outputs, seconds = timed_batches(run, batches, warmup=(inputs[:2], eps[:2]))
    return outputs.numpy(), seconds / len(inputs)
