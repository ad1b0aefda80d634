"""Pre-train the vision Mamba backbone once per run, as every stream starts from the same pre-trained weights.

The paper starts from ImageNet-21k weights, which do not exist offline; the stand-in is 10-way handwritten-digit
classification (OpenCV's digit sheet when installed, plus scikit-learn's digits unless the stream is made of those)
with every parameter trained.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.clients.training import shuffled_batches
from fedray.platform.data.digit_sheet import pretraining_digits
from fedray.platform.data.tasks import per_class_subset
from fedray.platform.device import select_device
from fedray.platform.errors import DataError
from fedray.platform.io import load_arrays
from fedray.platform.metrics.running import RunningLoss, finite_loss
from fedray.platform.modules.mamba import VisionMamba
from fedray.platform.seeding import derive_seed
from fedray.tasks.continual.config import ContinualConfig


def pretrain_backbone(cfg: ContinualConfig, in_channels: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The backbone's state after digit pre-training, and ``{dataset, samples, epochs, train_acc, train_loss,
    seconds}`` (accuracy and loss of the last epoch)."""
    started = time.perf_counter()
    torch.manual_seed(derive_seed(cfg.seed, "pretrain"))
    device = select_device(prefer_gpu=cfg.num_gpus > 0)  # runs in the driver: on a GPU only when the run asks for one
    digits = pretraining_digits(cfg.data.image_size, cfg.pretrain.digit_sheet, with_sklearn=cfg.data.name != "digits")
    keep = per_class_subset(
        digits.labels,
        None if cfg.pretrain.max_samples is None else cfg.pretrain.max_samples // 10,
        cfg.seed,
        "pretrain",
    )
    images = torch.from_numpy(digits.images[keep]).repeat(1, in_channels, 1, 1).to(device)
    labels = torch.from_numpy(digits.labels[keep]).to(device)
    backbone = VisionMamba(cfg.model, in_channels, cfg.data.image_size).to(device)
    head = nn.Linear(backbone.out_features, digits.num_classes).to(device)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=cfg.pretrain.lr)
    batches = shuffled_batches(
        cfg.pretrain.batch_size, torch.Generator().manual_seed(derive_seed(cfg.seed, "pretrain", "batches"))
    )
    correct, loss = 0, float("nan")
    for epoch in range(cfg.pretrain.epochs):
        correct, running = 0, RunningLoss()
        for idx in batches(len(labels)):
            optimizer.zero_grad(set_to_none=True)
            logits = head(backbone(images[idx]))
            batch_loss = F.cross_entropy(logits, labels[idx])
            batch_loss.backward()
            optimizer.step()
            running.add(batch_loss, len(idx))
            correct += int((logits.argmax(1) == labels[idx]).sum())
        loss = finite_loss(running.mean(), f"continual pre-training, epoch {epoch + 1}")
    state = {k: v.detach().cpu().numpy() for k, v in backbone.state_dict().items()}
    info = {
        "dataset": digits.name,
        "samples": len(labels),
        "epochs": cfg.pretrain.epochs,
        "train_acc": correct / max(len(labels), 1),
        "train_loss": loss,
        "seconds": time.perf_counter() - started,
    }
    return state, info


def load_backbone(path: str, cfg: ContinualConfig, in_channels: int) -> dict[str, np.ndarray]:
    """A backbone saved by an earlier run (``checkpoints/pretrained.safetensors``), checked against ``model.*``."""
    state = load_arrays(path)
    backbone = VisionMamba(cfg.model, in_channels, cfg.data.image_size)
    try:
        backbone.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    except RuntimeError as exc:
        problem = " ".join(str(exc).split("\n\t")[1:2]).strip() or str(exc).splitlines()[0]
        raise DataError(
            f"{path} does not fit this model (model.*, data.image_size, channels): {problem[:200]}"
        ) from None
    return state
