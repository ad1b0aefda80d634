"""The frozen feature encoder: train it on the ID train split (or load a saved one) and extract features.

[fedray] The paper's encoder is an ImageNet-pretrained EfficientNet-b4; no ImageNet weights exist offline, so a
GroupNorm CNN classifier is trained on the ID data instead. An ID-supervised encoder makes the classifier baselines
(MSP, Energy, Mahalanobis, KNN) stronger than they are in the paper, where the encoder never saw the ID labels.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.clients.training import shuffled_batches, train_epochs
from fedray.platform.device import select_device, torch_threads
from fedray.platform.io import load_arrays
from fedray.platform.metrics.running import finite_loss
from fedray.platform.modules.classifier import build_classifier
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.ood.compute import batched
from fedray.tasks.ood.config import Encoder
from fedray.tasks.ood.features import pool_stages

STAND_IN = "[fedray] a CNN trained on the ID train split stands in for the paper's frozen ImageNet EfficientNet-b4"


class FeatureEncoder(nn.Module):
    """A classifier whose every stage output is reachable: ``features(x)`` gives the pooled stage features (all
    stages, concatenated) and the logits from one pass; ``forward(x)`` is the plain classifier. Inputs are
    standardised with the ID train split's pixel mean and std, stored with the weights."""

    def __init__(self, cfg: Encoder, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.net = build_classifier(
            ModelConfig(widths=list(cfg.widths), norm_groups=cfg.norm_groups), in_channels, num_classes
        )
        self.register_buffer("input_mean", torch.zeros(1))
        self.register_buffer("input_std", torch.ones(1))
        self.last_width = cfg.widths[-1]

    def _standardise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.input_mean) / self.input_std

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = pool_stages(self.net.encoder.forward_stages(self._standardise(x)))
        # The head is GAP → linear, and GAP of the last stage is the last block of the pooled features.
        return pooled, self.net.head.fc(pooled[:, -self.last_width :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._standardise(x))

    def training_losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        loss = F.cross_entropy(self(x), y)
        return {"ce": loss, "loss": loss}


def train_encoder(
    cfg: Encoder, images: np.ndarray, labels: np.ndarray, num_classes: int, seed: int, threads: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Runtime task: the encoder trained with Adam on ``images``; its state and ``{epochs, losses, train_acc, …}``."""
    started = time.perf_counter()
    with torch_threads(threads):
        device = select_device()
        torch.manual_seed(derive_seed(seed, "encoder", "init"))
        model = FeatureEncoder(cfg, images.shape[1], num_classes)
        model.input_mean.fill_(float(images.mean()))
        model.input_std.fill_(float(images.std()) + 1e-8)
        model.to(device)
        x, y = as_tensor(images).to(device), as_tensor(labels).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        batches = shuffled_batches(
            cfg.batch_size, torch.Generator().manual_seed(derive_seed(seed, "encoder", "batches"))
        )
        losses = [
            finite_loss(
                train_epochs(model, lambda _e: (x, y), optimizer, range(e, e + 1), batches)["train_loss"],
                f"ood encoder, epoch {e + 1}",
            )
            for e in range(cfg.epochs)
        ]
        model.eval()
        with torch.no_grad():
            correct = sum(int((model(x[s]).argmax(1) == y[s]).sum()) for s in batched(len(y), 1000))
    info = {
        "epochs": cfg.epochs,
        "losses": losses,
        "train_acc": correct / len(labels),
        "train_samples": len(labels),
        "parameters": sum(p.numel() for p in model.net.parameters()),
        "seconds": time.perf_counter() - started,
    }
    return state_arrays(model), info


def load_encoder(path: str, cfg: Encoder, in_channels: int, num_classes: int) -> dict[str, np.ndarray]:
    """A saved encoder (``checkpoints/encoder.safetensors``), checked against ``encoder.*`` and the ID classes."""
    state = load_arrays(path)
    load_state_arrays(FeatureEncoder(cfg, in_channels, num_classes), state, path, "encoder.widths, ID classes")
    return state


def build_encoder(state: dict[str, np.ndarray], cfg: Encoder, in_channels: int, num_classes: int) -> FeatureEncoder:
    model = FeatureEncoder(cfg, in_channels, num_classes)
    return load_state_arrays(model, state, "encoder state").eval()


@torch.no_grad()
def encode(
    state: dict[str, np.ndarray],
    cfg: Encoder,
    num_classes: int,
    images: np.ndarray,
    batch_size: int,
    threads: int,
) -> dict[str, np.ndarray]:
    """Runtime task: ``{"pooled": [N, Σ widths], "logits": [N, classes]}`` of ``images`` under the frozen encoder."""
    with torch_threads(threads):
        device = select_device()
        model = build_encoder(state, cfg, images.shape[1], num_classes).to(device)
        pooled, logits = [], []
        for s in batched(len(images), batch_size):
            p, lg = model.features(as_tensor(images[s]).to(device))
            pooled.append(p.cpu().numpy())
            logits.append(lg.cpu().numpy())
    width = sum(cfg.widths)
    return {
        "pooled": np.concatenate(pooled) if pooled else np.zeros((0, width), np.float32),
        "logits": np.concatenate(logits) if logits else np.zeros((0, num_classes), np.float32),
    }
