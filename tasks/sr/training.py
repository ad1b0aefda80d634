"""Training of one ``sr`` method as a function that runs as a Ray task (or inline): the same random crops, the same
degradations and the same number of steps for every method."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


def sr_loss(cfg: SRConfig, method: str, device: torch.device) -> Callable[[nn.Module, Batch, int], torch.Tensor]:
    """``loss_of(net, batch, step)`` of ``method``: ResShift's x₀ loss at uniform t for the diffusion methods (t and
    noise from a generator seeded per method), L1 in one pass for ``regression``."""
    diffusion = build_resshift(cfg)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "sr", method, "noise"))

    def loss_of(net: nn.Module, batch: Batch, step: int) -> torch.Tensor:
        hr, cond = batch
        if method not in DIFFUSION_METHODS:
            return F.l1_loss(net(cond), hr)
        t = torch.randint(diffusion.num_timesteps, (len(hr),), generator=generator).to(device)
        noise = torch.randn(hr.shape, generator=generator).to(device)
        return diffusion.training_loss(net, hr, cond, t, noise, cond).mean()

    return loss_of


def init_network(cfg: SRConfig, method: str, device: torch.device) -> nn.Module:
    """``method``'s network with its seeded initial weights."""
    torch.manual_seed(derive_seed(cfg.seed, "sr", method, "init"))
    return build_network(cfg, method).to(device)


def optimizer_of(cfg: SRConfig, model: nn.Module) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW with linear warm-up and cosine decay to ``train.min_lr``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    return optimizer, warmup_cosine(optimizer, cfg.train.warmup, cfg.train.steps, cfg.train.min_lr / cfg.train.lr)


def train_method(config_yaml: str, method: str, images: list[Image]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """EMA weights of ``method``'s network after training (:func:`sr_loss`), and ``{steps, loss_curve, seconds,
    parameters, device, began_unix}``."""
    began = time.time()  # when the task ran (a queued task starts later than it was submitted)
    cfg = load_config(SRConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    device = select_device()
    model = init_network(cfg, method, device)
    started = time.perf_counter()
    optimizer, scheduler = optimizer_of(cfg, model)
    ema, curve = train_with_ema(
        model, sr_loss(cfg, method, device), training_pairs(cfg, images, device), optimizer, cfg.train.ema,
        cfg.train.log_every, scheduler, name=f"sr {method}",
    )  # fmt: skip
    info = {
        "steps": cfg.train.steps,
        "loss_curve": curve,
        "seconds": time.perf_counter() - started,
        "parameters": sum(p.numel() for p in model.parameters()),
        "device": str(device),
        "began_unix": began,
    }
    return state_arrays(ema), info
