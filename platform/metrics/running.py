"""Training losses kept on their device and read once per log window or epoch: a ``.item()`` per step would make
the host wait for a GPU at every step, so it could never queue the next step's work ahead."""

from __future__ import annotations

import torch


def window_mean(losses: list[torch.Tensor]) -> float:
    """The mean of a logging window's detached scalar losses."""
    return float(torch.stack(losses).double().mean())


class RunningLoss:
    """The batch-size-weighted sum of per-batch mean losses (float64 on the losses' device; the same numbers as
    summing ``loss.item() * n`` on the host)."""

    def __init__(self) -> None:
        self._total: torch.Tensor | float = 0.0
        self.count = 0

    def add(self, loss: torch.Tensor, n: int) -> None:
        self._total = self._total + loss.detach().double() * n
        self.count += n

    def total(self) -> float:
        return float(self._total)

    def mean(self) -> float:
        """Per sample; 0 before any batch."""
        return self.total() / max(self.count, 1)
