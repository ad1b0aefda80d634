"""Scoring speed: images per second of DLSR scoring (encoder forward, pooling and z-score, t DDIM steps of the
LFDN, MFsim) against the encoder's plain classifier forward (what MSP or Energy cost), timed in the same task on the
same images so that the ratio does not depend on which machine ran it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch

from fedray.platform.device import select_device, torch_threads
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.ood.compute import batched
from fedray.tasks.ood.config import LFDN, Encoder
from fedray.tasks.ood.encoder import build_encoder
from fedray.tasks.ood.features import stage_bounds, zscore_blocks
from fedray.tasks.ood.lfdn import build_lfdn, feature_diffusion, reconstruct
from fedray.tasks.ood.scores import mfsim, mse


def _seconds(step: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, batch_size: int) -> float:
    """Wall time of ``step`` over ``images`` in batches."""
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for s in batched(len(images), batch_size):
        step(images[s])
    if images.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def best_rates(
    steps: dict[str, Callable[[torch.Tensor], torch.Tensor]], images: torch.Tensor, batch_size: int, repeats: int = 3
) -> dict[str, float]:
    """Images per second of each step: one warm-up batch each, then ``repeats`` rounds that time every step in
    turn, keeping each step's fastest round (the least disturbed by other processes on a shared machine)."""
    for step in steps.values():
        step(images[: min(batch_size, len(images))])
    best = dict.fromkeys(steps, 0.0)
    for _ in range(repeats):
        for name, step in steps.items():
            best[name] = max(best[name], len(images) / _seconds(step, images, batch_size))
    return best


@torch.no_grad()
def measure_throughput(
    enc_state: dict[str, np.ndarray],
    enc_cfg: Encoder,
    num_classes: int,
    lfdn_cfg: LFDN,
    lfdn_states: dict[str, dict[str, np.ndarray]],
    images: np.ndarray,
    layers: Literal["all", "last"],
    t: int,
    eta: float,
    batch_size: int,
    seed: int,
    threads: int,
) -> dict[str, float]:
    """Runtime task: images per second of the encoder's plain forward, of DLSR's MFsim/MSE scoring at ``t`` and of
    its LR scoring (two LFDN passes), and the DLSR/encoder ratio."""
    with torch_threads(threads):
        device = select_device()
        encoder = build_encoder(enc_state, enc_cfg, images.shape[1], num_classes).to(device)
        widths = list(enc_cfg.widths)
        bounds = stage_bounds(widths, layers)
        offset = 0 if layers == "all" else sum(widths[:-1])
        diffusion = feature_diffusion(lfdn_cfg)
        dim = bounds[-1][1]
        final = load_state_arrays(build_lfdn(dim, lfdn_cfg), lfdn_states["final"], "LFDN").to(device).eval()
        first = load_state_arrays(build_lfdn(dim, lfdn_cfg), lfdn_states["epoch1"], "LFDN").to(device).eval()
        gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "throughput"))
        x = as_tensor(images).to(device)

        def features(batch: torch.Tensor) -> torch.Tensor:
            pooled, _ = encoder.features(batch)
            return zscore_blocks(pooled[:, offset:], bounds)

        def dlsr(batch: torch.Tensor) -> torch.Tensor:
            z0 = features(batch)
            return mfsim(z0, reconstruct(diffusion, final, z0, t, eta, gen), bounds)

        def dlsr_lr(batch: torch.Tensor) -> torch.Tensor:
            z0 = features(batch)
            return mse(z0, reconstruct(diffusion, first, z0, t, eta, gen)) - mse(
                z0, reconstruct(diffusion, final, z0, t, eta, gen)
            )

        rates = best_rates({"encoder": encoder, "dlsr": dlsr, "dlsr_lr": dlsr_lr}, x, batch_size)
    return {
        "t": t,
        "images": len(images),
        "device": str(device),
        "threads": threads,
        "encoder_img_per_s": rates["encoder"],
        "dlsr_img_per_s": rates["dlsr"],
        "dlsr_lr_img_per_s": rates["dlsr_lr"],
        "dlsr_over_encoder": rates["dlsr"] / rates["encoder"],
    }
