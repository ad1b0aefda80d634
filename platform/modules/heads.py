"""Classification heads."""

from __future__ import annotations

import torch
from torch import nn


class ClassifierHead(nn.Module):
    """Global average pooling over a feature map, then one linear layer: ``[B, C, h, w] → [B, num_classes]``."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = features.mean(dim=(2, 3))
        return pooled if pre_logits else self.fc(pooled)


class TaskHeads(nn.Module):
    """One linear head per task; the logits of the heads asked for are concatenated (class-incremental prediction
    over every class seen so far, in the order the tasks arrived)."""

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.in_features = in_features
        self.heads = nn.ModuleList()

    def add_task(self, num_classes: int) -> nn.Linear:
        head = nn.Linear(self.in_features, num_classes)
        self.heads.append(head)
        return head

    def __len__(self) -> int:
        return len(self.heads)

    def forward(self, features: torch.Tensor, tasks: int | None = None) -> torch.Tensor:
        """Concatenated logits of the first ``tasks`` heads (all of them by default)."""
        chosen = self.heads if tasks is None else self.heads[:tasks]
        return torch.cat([head(features) for head in chosen], dim=1)
