"""Combining metrics across clients (numpy only, so the parameter server does not import torch)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def weighted_mean(values: Iterable[float], weights: Iterable[float]) -> float:
    """Σ wᵢ vᵢ / Σ wᵢ (NaN when there is nothing to average)."""
    v, w = np.asarray(list(values), dtype=float), np.asarray(list(weights), dtype=float)
    return float(np.average(v, weights=w)) if w.size and w.sum() > 0 else float("nan")
