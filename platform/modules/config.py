"""Model configuration (kept free of torch so that ``fedray config`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelConfig:
    """Sizes of the conv trunk shared by every federated method (the method picks the architecture around it).

    ``shared`` lists fnmatch patterns over parameter names (e.g. ``encoder.*``) of the tensors the parameter server
    aggregates; all others stay on their client. Left empty, the method's own split applies (``fedavg``: ``*``).
    """

    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    norm_groups: int = 8
    shared: list[str] | None = None
    pfr_loss_weights: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # alpha, beta, gamma
