"""Training losses kept on their device and read once per log window or epoch: a ``.item()`` per step would make
the host wait for a GPU at every step, so it could never queue the next step's work ahead."""

from __future__ import annotations

import math

import torch

from fedray.platform.errors import DivergedError


def finite_loss(loss: float, where: str) -> float:
    """``loss`` when it is finite; otherwise :class:`DivergedError` naming ``where`` (what was training, and the
    step or epoch). Called where a loss reaches the host anyway, so the check costs no extra device sync."""
    if not math.isfinite(loss):
        raise DivergedError(f"{where}: the training loss became {loss}; training diverged (lower the learning rate)")
    return loss


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
