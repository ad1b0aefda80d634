"""Training of one ``sr`` method as a function that runs as a Ray task (or inline): the same random crops, the same
degradations and the same number of steps for every method."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.config import load_config
from fedray.platform.data.natural import Image
from fedray.platform.device import select_device
from fedray.platform.modules.state import state_arrays
from fedray.platform.optim.ema_steps import train_with_ema, warmup_cosine
from fedray.platform.seeding import derive_seed, numpy_rng
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.data import degrade, random_crops, upsampled
from fedray.tasks.sr.models import DIFFUSION_METHODS, build_network, build_resshift

Batch = tuple[torch.Tensor, torch.Tensor]  # (high resolution, upsampled low resolution), both [B, 3, S, S]


def training_pairs(cfg: SRConfig, images: list[Image], device: torch.device) -> Iterator[Batch]:
    """``train.steps`` batches of fresh random crops and degradations; the same sequence for every method."""
    rng = numpy_rng(cfg.seed, "sr", "crops")
    for _ in range(cfg.train.steps):
        hr = random_crops(images, cfg.data.hr_size, cfg.train.batch_size, rng)
        lr = torch.from_numpy(degrade(hr, cfg.data, rng))
        yield torch.from_numpy(hr).to(device), upsampled(lr, cfg.data.hr_size).to(device)


def train_method(config_yaml: str, method: str, images: list[Image]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """EMA weights of ``method``'s network after training, and ``{steps, loss_curve, seconds, parameters, device,
    began_unix}``.
    Diffusion methods minimise ResShift's x₀ loss at uniform t; ``regression`` minimises L1 in one pass."""
    began = time.time()  # when the task ran (a queued task starts later than it was submitted)
    cfg = load_config(SRConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(derive_seed(cfg.seed, "sr", method, "init"))
    device = select_device()
    model = build_network(cfg, method).to(device)
    diffusion = build_resshift(cfg)
    noise_generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "sr", method, "noise"))

    def loss_of(net: nn.Module, batch: Batch, step: int) -> torch.Tensor:
        hr, cond = batch
        if method not in DIFFUSION_METHODS:
            return F.l1_loss(net(cond), hr)
        t = torch.randint(diffusion.num_timesteps, (len(hr),), generator=noise_generator).to(device)
        noise = torch.randn(hr.shape, generator=noise_generator).to(device)
        return diffusion.training_loss(net, hr, cond, t, noise, cond).mean()

    started = time.perf_counter()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = warmup_cosine(optimizer, cfg.train.warmup, cfg.train.steps, cfg.train.min_lr / cfg.train.lr)
    ema, curve = train_with_ema(
        model, loss_of, training_pairs(cfg, images, device), optimizer, cfg.train.ema, cfg.train.log_every, scheduler
    )
    info = {
        "steps": cfg.train.steps,
        "loss_curve": curve,
        "seconds": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "began_unix": began,
    }
    return state_arrays(ema), info
