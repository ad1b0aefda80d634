"""Model configuration (kept free of torch so that ``fedray config`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass
class ModelConfig:
    """A conv encoder of ``len(widths)`` stages and a linear head.

    ``shared`` lists fnmatch patterns over parameter names (e.g. ``encoder.*``): the matching tensors are aggregated
    by the parameter server, all others stay on their client. ``["*"]`` shares everything (plain FedAvg).
    """

    name: Literal["cnn"] = "cnn"
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    norm_groups: int = 8
    shared: list[str] = field(default_factory=lambda: ["*"])
