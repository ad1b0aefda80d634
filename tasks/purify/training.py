"""Training of the purification models, as functions that run as Ray tasks (or inline).

The DDPM learns only clean slices (PFAD is unsupervised); the supervised baseline learns (corrupted → clean) pairs
simulated with the same motion model — paired data PFAD never sees, so it is the strongest simple baseline, not a
like-for-like competitor. Both see the same augmentation and the same number of steps.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.config import load_config
from fedray.platform.device import select_device
from fedray.platform.modules.diffusion.gaussian import GaussianDiffusion
from fedray.platform.modules.diffusion.schedules import beta_schedule
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.state import as_tensor, state_arrays
from fedray.platform.optim.ema_steps import train_with_ema
from fedray.platform.seeding import derive_seed, numpy_rng
from fedray.tasks.purify.config import PurifyConfig
from fedray.tasks.purify.motion import corrupt

State = dict[str, np.ndarray]


def build_unet(cfg: PurifyConfig) -> UNet:
    return UNet(cfg.model, in_channels=1, out_channels=1, image_size=cfg.data.image_size)


def build_diffusion(cfg: PurifyConfig) -> GaussianDiffusion:
    return GaussianDiffusion(beta_schedule(cfg.diffusion.schedule, cfg.diffusion.steps), prediction="eps")


class ResidualRestorer(nn.Module):
    """The supervised baseline: the same UNet predicting a correction, ŷ = y + UNet(y, 0)."""

    def __init__(self, unet: UNet) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y + self.unet(y, torch.zeros(len(y), dtype=torch.long, device=y.device))


def augment(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips, rotations in ±5° (bilinear) and intensity ×U(0.9, 1.1), in [−1, 1]."""
    n = len(images)
    flip = torch.rand(n, generator=generator) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    angle = (torch.rand(n, generator=generator) * 2 - 1) * math.radians(5)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros(n)], 1), torch.stack([sin, cos, torch.zeros(n)], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    unit = (images + 1) / 2  # rotate in [0, 1] so that the padding is background (0)
    unit = F.grid_sample(unit, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    scale = 0.9 + 0.2 * torch.rand(n, 1, 1, 1, generator=generator)
    return ((unit * scale).clamp(0, 1) * 2 - 1).contiguous()


def _batches(cfg: PurifyConfig, train: np.ndarray, label: str):
    """``train.steps`` augmented clean batches, deterministically by seed."""
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, label, "batches"))
    images = as_tensor(train).unsqueeze(1)
    for _ in range(cfg.train.steps):
        idx = torch.randint(len(images), (cfg.train.batch_size,), generator=generator)
        yield augment(images[idx], generator) if cfg.data.augment else images[idx]


def _train(
    cfg: PurifyConfig, model: nn.Module, loss_of: Any, train: np.ndarray, label: str
) -> tuple[State, dict[str, Any]]:
    started = time.perf_counter()
    device = select_device()
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    ema, curve = train_with_ema(
        model,
        loss_of,
        _batches(cfg, train, label),
        optimizer,
        cfg.train.ema,
        cfg.train.log_every,
        name=f"purify {label}",
    )
    info = {"steps": cfg.train.steps, "loss_curve": curve, "seconds": time.perf_counter() - started}
    info["device"] = str(device)
    return state_arrays(ema), info


def train_ddpm(config_yaml: str, train: np.ndarray) -> tuple[State, dict[str, Any]]:
    """The unconditional ε-prediction DDPM on clean slices (uniform t); returns the EMA weights."""
    cfg = load_config(PurifyConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(derive_seed(cfg.seed, "ddpm", "init"))
    diffusion = build_diffusion(cfg)
    t_generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "ddpm", "t"))

    def loss_of(model: nn.Module, batch: torch.Tensor, step: int) -> torch.Tensor:
        device = next(model.parameters()).device
        t = torch.randint(diffusion.num_timesteps, (len(batch),), generator=t_generator)
        noise = torch.randn(batch.shape, generator=t_generator)
        return diffusion.training_loss(model, batch.to(device), t.to(device), noise.to(device)).mean()

    return _train(cfg, build_unet(cfg), loss_of, train, "ddpm")


def train_supervised(config_yaml: str, train: np.ndarray) -> tuple[State, dict[str, Any]]:
    """The supervised restorer: L1 between ŷ and the clean slice, on pairs corrupted with a random motion setting."""
    cfg = load_config(PurifyConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(derive_seed(cfg.seed, "supervised", "init"))
    rng = numpy_rng(cfg.seed, "supervised", "motion")

    def loss_of(model: nn.Module, batch: torch.Tensor, step: int) -> torch.Tensor:
        device = next(model.parameters()).device
        clean = batch[:, 0].numpy()
        settings = rng.integers(len(cfg.motion), size=len(clean))
        corrupted = np.stack([corrupt(c, cfg.motion[s], rng) for c, s in zip(clean, settings, strict=True)])
        restored = model(torch.from_numpy(corrupted).unsqueeze(1).to(device))
        return F.l1_loss(restored, batch.to(device))

    return _train(cfg, ResidualRestorer(build_unet(cfg)), loss_of, train, "supervised")
