"""Aggregation strategies over named shared tensors, reusing Flower's numeric kernels.

Flower's kernels (``flwr.server.strategy.aggregate``) take ``list[(list[ndarray], num_examples)]``. One adapter
orders every client's dict by the same names, calls the kernel, and puts the names back; the kernels themselves are
not rewritten here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from flwr.server.strategy.aggregate import aggregate, aggregate_krum, aggregate_median, aggregate_trimmed_avg

from fedray.platform.messages import NamedArrays
from fedray.server.config import ServerConfig

Kernel = Callable[[list[tuple[list[np.ndarray], int]], ServerConfig], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {
    "fedavg": lambda results, cfg: aggregate(results),
    "median": lambda results, cfg: aggregate_median(results),
    "trimmed_mean": lambda results, cfg: aggregate_trimmed_avg(results, cfg.trim_fraction),
    "krum": lambda results, cfg: aggregate_krum(results, cfg.num_byzantine, 0),
}


def aggregate_named(name: str, updates: Sequence[tuple[NamedArrays, int]], cfg: ServerConfig) -> NamedArrays:
    """Aggregate validated client tensors with strategy ``name``; the result keeps each tensor's dtype."""
    if name not in KERNELS:
        raise ValueError(f"unknown strategy {name!r}; known: {', '.join(KERNELS)}")
    if not updates:
        raise ValueError("nothing to aggregate")
    names = list(updates[0][0])
    as_lists = [([arrays[n] for n in names], int(count)) for arrays, count in updates]
    merged = KERNELS[name](as_lists, cfg)
    return {n: np.asarray(v).astype(updates[0][0][n].dtype, copy=False) for n, v in zip(names, merged, strict=True)}
