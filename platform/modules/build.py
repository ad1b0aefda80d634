"""Build a model by architecture name from a :class:`ModelConfig` (the one place that maps names to classes)."""

from __future__ import annotations

from torch import nn

from fedray.platform.modules.classifier import build_classifier
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.ditto import DittoPair
from fedray.platform.modules.pfr import PFRNet

ARCHITECTURES = ("cnn", "resnet", "ditto", "pfr")


def build_model(architecture: str, cfg: ModelConfig, in_channels: int, num_classes: int) -> nn.Module:
    """``cnn``: conv encoder + linear head; ``resnet``: ResNet encoder + linear head; ``ditto``: a global and a
    personal ``cnn``; ``pfr``: the personalized forgery representation network."""
    if architecture == "cnn":
        return build_classifier(cfg, in_channels, num_classes)
    if architecture == "resnet":
        return build_classifier(cfg, in_channels, num_classes, residual=True)
    if architecture == "ditto":
        return DittoPair(lambda: build_classifier(cfg, in_channels, num_classes))
    if architecture == "pfr":
        return PFRNet(in_channels, cfg.widths, cfg.norm_groups, num_classes, tuple(cfg.pfr_loss_weights))
    raise ValueError(f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}")
