"""A fixed number of optimizer steps with an exponential moving average of the weights — the training loop every
generative and restoration workload shares (diffusion models are evaluated with their EMA weights)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def train_with_ema(
    model: nn.Module,
    loss_of: Callable[[nn.Module, Any, int], torch.Tensor],
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    ema_decay: float,
    log_every: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> tuple[nn.Module, list[dict[str, float]]]:
    """One step per batch of ``batches``: ``loss_of(model, batch, step)`` is minimised and the EMA updated. Returns the
    EMA model and the loss curve (mean loss over every ``log_every`` steps, and over the last partial window)."""
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
    curve: list[dict[str, float]] = []
    window: list[float] = []
    step = -1
    for step, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, batch, step)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        ema.update_parameters(model)
        window.append(loss.item())
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "loss": float(np.mean(window))})
            window = []
    if window:
        curve.append({"step": step + 1, "loss": float(np.mean(window))})
    return ema.module, curve


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup: int, total: int, floor: float
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor`` × the base lr at step ``total``."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min((step - warmup) / max(total - warmup, 1), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
