"""The teacher's targets and the students' training, as functions that run as Ray tasks (or inline).

Every training step draws fresh crops, degradations and z_T = y + κ√η_T ε; the teacher's deterministic multi-step
output from that z_T is the regression target. These batches do not depend on the student, so they are computed once
(``teacher_targets``) and shared by every variant — each variant then sees exactly the batches an on-the-fly loop
would, without repeating the teacher's T forward passes per variant.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from fedray.platform.config import load_config
from fedray.platform.data.natural import Image
from fedray.platform.device import select_device
from fedray.platform.metrics.running import finite_loss, window_mean
from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion
from fedray.platform.modules.discriminator import TimeAwareDiscriminator
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.platform.optim.ema_steps import ema_model
from fedray.platform.seeding import derive_seed
from fedray.tasks.distill.config import DistillConfig
from fedray.tasks.distill.losses import (
    discriminator_hinge,
    distillation_loss,
    generator_adversarial,
    perturbation,
    regression_loss,
    score_gap,
)
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.models import build_network, build_resshift
from fedray.tasks.sr.training import training_pairs

Targets = dict[str, np.ndarray]  # hr, cond, eps, target: [steps·batch, 3, S, S] each


def teacher_config(cfg: DistillConfig, teacher_yaml: str) -> SRConfig:
    """The teacher's ``sr`` config with this run's seed, batch size and number of steps (for the crop stream)."""
    tcfg = load_config(SRConfig, text=teacher_yaml)
    train = dataclasses.replace(tcfg.train, steps=cfg.train.steps, batch_size=cfg.train.batch_size)
    return dataclasses.replace(tcfg, seed=cfg.seed, train=train)


def load_teacher(tcfg: SRConfig, method: str, state: dict[str, np.ndarray], device: torch.device) -> nn.Module:
    teacher = load_state_arrays(build_network(tcfg, method), state).to(device).eval()
    teacher.requires_grad_(False)
    return teacher


def _setup(
    config_yaml: str, teacher_yaml: str, teacher_state: dict
) -> tuple[DistillConfig, SRConfig, torch.device, nn.Module, ResShiftDiffusion]:
    cfg = load_config(DistillConfig, text=config_yaml)
    torch.set_num_threads(cfg.train.threads)
    tcfg = teacher_config(cfg, teacher_yaml)
    device = select_device()
    return cfg, tcfg, device, load_teacher(tcfg, cfg.teacher.method, teacher_state, device), build_resshift(tcfg)


def teacher_targets(config_yaml: str, teacher_yaml: str, teacher_state: dict, images: list[Image]) -> Targets:
    """Crops, conditions, z_T noise and the teacher's deterministic T-step outputs for every training step."""
    cfg, tcfg, device, teacher, diffusion = _setup(config_yaml, teacher_yaml, teacher_state)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "distill", "z_T"))
    parts: dict[str, list[np.ndarray]] = {"hr": [], "cond": [], "eps": [], "target": []}
    for hr, cond in training_pairs(tcfg, images, device):
        eps = torch.randn(hr.shape, generator=generator).to(device)
        target = diffusion.ddim_sample(teacher, cond, cond, eps)
        for key, value in (("hr", hr), ("cond", cond), ("eps", eps), ("target", target)):
            parts[key].append(value.cpu().numpy())
    return {key: np.concatenate(values) for key, values in parts.items()}


def noised_features(
    diffusion: ResShiftDiffusion,
    teacher: nn.Module,
    z: torch.Tensor,
    cond: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
) -> list[torch.Tensor]:
    """The frozen teacher's encoder features of z re-noised to t (what the discriminator judges)."""
    noised = diffusion.q_sample(z, cond, t, noise)
    return teacher.encoder_features(diffusion.scale_input(noised, t), t, cond)


def train_student(
    config_yaml: str, variant: str, teacher_yaml: str, teacher_state: dict, targets: Targets
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One-step student (a copy of the teacher run at t = T−1) trained with ``variant``'s losses; EMA weights and
    ``{loss_curve (total and per term), seconds}``."""
    cfg, _, device, teacher, diffusion = _setup(config_yaml, teacher_yaml, teacher_state)
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    torch.manual_seed(derive_seed(cfg.seed, "distill", variant, "init"))  # the discriminator's initial weights
    ema = ema_model(student, cfg.train.ema)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "distill", variant, "noise"))
    opt_g = torch.optim.AdamW(student.parameters(), lr=cfg.train.lr, weight_decay=0.0)
    warm = lambda step: min(1.0, (step + 1) / max(cfg.train.warmup, 1))  # noqa: E731
    schedulers = [torch.optim.lr_scheduler.LambdaLR(opt_g, warm)]
    adversarial = variant == "tad_sr"
    if adversarial:
        disc = TimeAwareDiscriminator(teacher.feature_channels, cfg.losses.c_dim).to(device)
        opt_d = torch.optim.AdamW(disc.parameters(), lr=cfg.train.lr, weight_decay=0.0)
        schedulers.append(torch.optim.lr_scheduler.LambdaLR(opt_d, warm))
    last = diffusion.num_timesteps - 1
    batch, started = cfg.train.batch_size, time.perf_counter()
    curve: list[dict[str, float]] = []
    window: dict[str, list[torch.Tensor]] = {}
    for step in range(cfg.train.steps):
        hr, cond, eps, target = (
            as_tensor(targets[k][step * batch : (step + 1) * batch]).to(device) for k in ("hr", "cond", "eps", "target")
        )
        t_last = torch.full((len(hr),), last, device=device, dtype=torch.long)
        z_hat = student(diffusion.scale_input(diffusion.prior_sample(cond, eps), t_last), t_last, cond)
        terms = {"reg": regression_loss(z_hat, target).mean()}
        if variant in ("tad_sr", "reg_hsd", "reg_sds"):
            t = torch.randint(cfg.losses.hsd_steps, (len(hr),), generator=generator).to(device)
            noise = perturbation(hr, cfg.losses.noise, generator)
            reference = "noise" if variant == "reg_sds" else "teacher"
            gap = score_gap(diffusion, teacher, z_hat.detach(), target, cond, cond, t, noise, reference,
                            cfg.losses.double_scale)  # fmt: skip
            terms["hsd"] = cfg.losses.hsd_weight * distillation_loss(gap, z_hat).mean()
        if adversarial:
            t_d = torch.randint(last, (len(hr),), generator=generator).to(device)
            noise_d = perturbation(hr, cfg.losses.noise, generator)

            with torch.no_grad():
                real = noised_features(diffusion, teacher, hr, cond, t_d, noise_d)
            fake = noised_features(diffusion, teacher, z_hat, cond, t_d, noise_d)
            opt_d.zero_grad(set_to_none=True)
            loss_d = discriminator_hinge(disc(real, t_d), disc([f.detach() for f in fake], t_d))
            loss_d.backward()
            opt_d.step()
            terms["gan"] = cfg.losses.gan_weight * generator_adversarial(disc(fake, t_d))
            terms["disc"] = loss_d.detach()
        loss = sum(v for k, v in terms.items() if k != "disc")
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        for scheduler in schedulers:
            scheduler.step()
        ema.update_parameters(student)
        for key, value in {"loss": loss, **terms}.items():
            window.setdefault(key, []).append(value.detach())
        if (step + 1) % cfg.train.log_every == 0 or step + 1 == cfg.train.steps:
            point = {"step": step + 1, **{k: window_mean(v) for k, v in window.items()}}
            finite_loss(point["loss"], f"distill {variant}, step {step + 1}")
            curve.append(point)
            window = {}
    return state_arrays(ema.module), {
        "steps": cfg.train.steps,
        "loss_curve": curve,
        "seconds": time.perf_counter() - started,
        "device": str(device),
    }
