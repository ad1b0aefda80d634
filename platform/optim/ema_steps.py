"""A fixed number of optimizer steps with an exponential moving average of the weights — the training loop every
generative and restoration workload shares (diffusion models are evaluated with their EMA weights)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from fedray.platform.metrics.running import finite_loss, window_mean

EMA_WARMUP_OFFSET = 10  # decay_n = min(decay, (1 + n) / (10 + n)): 0.9 after 80 updates, 0.99 after 890


def warmed_decay(decay: float, updates: int) -> float:
    """The EMA decay for the ``updates``-th update (0-based) under the common warm-up min(decay, (1 + n)/(10 + n)).

    Why: with a constant decay d the average still holds d^n of the *initial* weights after n updates — 61 % for
    d = 0.999 after the 500 steps of a small-scale run, so a model whose output layer starts at zero is evaluated at
    little more than a third of its trained output. Warm-up makes the average forget the initialisation at any run
    length and changes nothing late in a long run (the cap reaches 0.999 after ~9,000 updates)."""
    return min(decay, (1 + updates) / (EMA_WARMUP_OFFSET + updates))


class WarmedEMA(AveragedModel):
    """An exponential moving average of a model's parameters and floating-point buffers with warm-up
    (:func:`warmed_decay`). It counts its updates on the host: ``n_averaged`` lives on the model's device, and reading
    it at every step would make the host wait for the GPU."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        super().__init__(model, multi_avg_fn=self._average, use_buffers=True)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def _average(self, averaged: list[torch.Tensor], current: list[torch.Tensor], _: torch.Tensor) -> None:
        # Called (per device and dtype group) from the second update on, when ``updates`` equals ``n_averaged``.
        weight = 1 - warmed_decay(self.decay, self.updates)
        floating = [(a, c) for a, c in zip(averaged, current, strict=True) if a.is_floating_point()]
        if floating:
            torch._foreach_lerp_([a for a, _ in floating], [c for _, c in floating], weight)
        for a, c in zip(averaged, current, strict=True):
            if not a.is_floating_point():
                a.copy_(c)  # counters such as BatchNorm's num_batches_tracked follow the model

    def update_parameters(self, model: nn.Module) -> None:
        super().update_parameters(model)
        self.updates += 1


def ema_model(model: nn.Module, decay: float) -> WarmedEMA:
    """The EMA of ``model`` (:class:`WarmedEMA`); call ``update_parameters(model)`` after every optimizer step and
    evaluate ``.module``."""
    return WarmedEMA(model, decay)


def train_with_ema(
    model: nn.Module,
    loss_of: Callable[[nn.Module, Any, int], torch.Tensor],
    batches: Iterable[Any],
    optimizer: torch.optim.Optimizer,
    ema_decay: float,
    log_every: int,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    name: str = "training",
) -> tuple[nn.Module, list[dict[str, float]]]:
    """One step per batch of ``batches``: ``loss_of(model, batch, step)`` is minimised and the EMA (with warm-up,
    :func:`ema_model`) updated. Returns the EMA model and the loss curve (mean loss over every ``log_every`` steps,
    and over the last partial window). A window whose loss is not finite stops training (``name`` says what
    diverged)."""
    ema = ema_model(model, ema_decay)
    curve: list[dict[str, float]] = []
    window: list[torch.Tensor] = []
    step = -1
    for step, batch in enumerate(batches):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, batch, step)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        ema.update_parameters(model)
        window.append(loss.detach())
        if (step + 1) % log_every == 0:
            curve.append({"step": step + 1, "loss": finite_loss(window_mean(window), f"{name}, step {step + 1}")})
            window = []
    if window:
        curve.append({"step": step + 1, "loss": finite_loss(window_mean(window), f"{name}, step {step + 1}")})
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
