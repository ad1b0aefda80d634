"""Training and prediction of one method, as functions that run as runtime tasks (Ray, or inline).

Every method sees the same encoder initialisation, the same batches in the same order, the same augmentation draws
and the same learning-rate schedule; only its head and loss terms differ. After each epoch the validation accuracy
is measured, and the weights of the best epoch (the first, on ties) are what the task returns.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from fedray.platform.device import select_device, torch_threads
from fedray.platform.metrics.running import finite_loss
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.fer.augment import augment
from fedray.tasks.fer.config import FERConfig, Train
from fedray.tasks.fer.model import ExpressionNet, build_model, parameter_counts

State = dict[str, np.ndarray]


def peak_lr(cfg: Train, method: str) -> float:
    """``method``'s own peak from ``lr_per_method``, else the shared ``lr``."""
    return float(cfg.lr_per_method.get(method, cfg.lr))


def epoch_lr(cfg: Train, epoch: int, peak: float) -> float:
    """The official per-epoch schedule (0-based ``epoch``): ``warmup_lr`` for the warm-up epochs, then
    peak · ½(1 + cos(π (epoch − warmup) / epochs)) — Dassl's ConstantWarmupScheduler before CosineAnnealingLR(epochs).
    """
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return peak * 0.5 * (1.0 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / cfg.epochs))


def _epoch_batches(n: int, batch_size: int, g: torch.Generator) -> list[torch.Tensor]:
    """A shuffled pass over ``n`` samples; the last partial batch is dropped unless it is the only one."""
    batches = list(torch.randperm(n, generator=g).split(batch_size))
    return batches[:-1] if len(batches) > 1 and len(batches[-1]) < batch_size else batches


@torch.no_grad()
def _predict(model: ExpressionNet, images: torch.Tensor, batch_size: int, device: torch.device) -> np.ndarray:
    model.eval()
    out = [model(images[s : s + batch_size].to(device)).argmax(1).cpu() for s in range(0, len(images), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def _model(method: str, cfg: FERConfig, in_channels: int, text: np.ndarray) -> ExpressionNet:
    return build_model(method, cfg.model, in_channels, text, cfg.text.logit_scale, cfg.seed)


def train_method(
    method: str,
    cfg: FERConfig,
    text: np.ndarray,
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
) -> tuple[State, dict[str, Any]]:
    """Runtime task: ``method`` trained on the training split; the best-on-validation weights and
    ``{loss_curve (per epoch: loss terms, lr, val_acc), best_epoch, best_val_accuracy, seconds, …}``."""
    started = time.perf_counter()
    t = cfg.train
    with torch_threads(cfg.threads):
        device = select_device()
        model = _model(method, cfg, train_x.shape[1], text)
        fill = float(np.mean(train_x))  # also what augmentation pads and erases with
        model.input_mean.fill_(fill)
        model.input_std.fill_(float(np.std(train_x)) + 1e-8)
        model.to(device)
        peak = peak_lr(t, method)
        optimizer = torch.optim.SGD(model.parameters(), lr=peak, momentum=t.momentum, weight_decay=t.weight_decay)
        order = torch.Generator().manual_seed(derive_seed(cfg.seed, "fer", "batches"))
        draws = torch.Generator().manual_seed(derive_seed(cfg.seed, "fer", "augment"))
        x, y, vx = as_tensor(train_x), as_tensor(train_y), as_tensor(val_x)
        curve: list[dict[str, float]] = []
        best: tuple[float, int, State] = (-1.0, 0, {})
        steps = 0
        for epoch in range(t.epochs):
            lr = epoch_lr(t, epoch, peak)
            for group in optimizer.param_groups:
                group["lr"] = lr
            model.train()
            sums: dict[str, torch.Tensor] = {}  # detached: one device sync per epoch, not per step
            counts: dict[str, int] = {}
            for idx in _epoch_batches(len(y), t.batch_size, order):
                batch = augment(x[idx].to(device), cfg.augment, fill, draws)
                terms = model.training_losses(batch, y[idx].to(device))
                optimizer.zero_grad(set_to_none=True)
                terms["loss"].backward()
                optimizer.step()
                steps += 1
                for name, value in terms.items():
                    sums[name] = sums.get(name, 0.0) + value.detach()
                    counts[name] = counts.get(name, 0) + 1
            val_acc = float((_predict(model, vx, t.eval_batch_size, device) == val_y).mean())
            point = {"epoch": epoch + 1, **{k: float(sums[k]) / counts[k] for k in sums}, "lr": lr, "val_acc": val_acc}
            finite_loss(point["loss"], f"fer {method}, epoch {epoch + 1}")
            point.update({f"{k}_batches": counts.get(k, 0) for k in model.terms})  # batches the term was defined for
            curve.append(point)
            if val_acc > best[0]:
                best = (val_acc, epoch + 1, state_arrays(model))
    info = {
        "method": method,
        "epochs": t.epochs,
        "peak_lr": peak,
        "steps": steps,
        "loss_curve": curve,
        "best_epoch": best[1],
        "best_val_accuracy": best[0],
        "parameters": parameter_counts(model),
        "device": str(device),
        "seconds": time.perf_counter() - started,
    }
    return best[2], info


def predict(method: str, cfg: FERConfig, text: np.ndarray, state: State, images: np.ndarray) -> np.ndarray:
    """Runtime task: class predictions argmax_k of the method's logits (text matching: cos(f_e, t_k); the MLP is not
    used) for ``images``."""
    with torch_threads(cfg.threads):
        device = select_device()
        model = load_state_arrays(_model(method, cfg, images.shape[1], text), state, f"{method} weights")
        return _predict(model.to(device), as_tensor(images), cfg.train.eval_batch_size, device)
