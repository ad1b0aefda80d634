"""Encoder + head, with the backbone/head split exposed.

Parameter names are part of the interface: ``encoder.stages.stageN.*`` and ``head.fc.*``. Shared/personal patterns
match on them and checkpoints store them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.encoders import ConvEncoder
from fedray.platform.modules.heads import ClassifierHead
from fedray.platform.modules.resnet import ResNetEncoder


class Classifier(nn.Module):
    """``forward(x) = head(encoder(x))``; ``forward_features`` and ``forward_head`` give the two halves."""

    def __init__(self, encoder: ConvEncoder | ResNetEncoder, head: ClassifierHead) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(features, pre_logits=pre_logits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def training_losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named loss terms; ``loss`` is the one to minimise."""
        ce = F.cross_entropy(self(x), y)
        return {"ce": ce, "loss": ce}


def build_classifier(cfg: ModelConfig, in_channels: int, num_classes: int, residual: bool = False) -> Classifier:
    """The classifier that ``cfg`` describes, for inputs with ``in_channels`` and ``num_classes`` outputs: a plain
    conv encoder, or with ``residual`` a :class:`ResNetEncoder` of ``cfg.res_blocks`` blocks per stage."""
    encoder: ConvEncoder | ResNetEncoder = (
        ResNetEncoder(in_channels, cfg.widths, cfg.res_blocks, cfg.norm_groups)
        if residual
        else ConvEncoder(in_channels, cfg.widths, cfg.norm_groups)
    )
    return Classifier(encoder, ClassifierHead(encoder.out_channels, num_classes))
