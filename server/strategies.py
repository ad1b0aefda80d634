"""Aggregation strategies over named shared tensors, reusing Flower's numeric kernels.

Flower's kernels (``flwr.server.strategy.aggregate``) take ``list[(list[ndarray], num_examples)]``. One adapter
orders every client's dict by the same names, calls the kernel, and puts the names back; the kernels themselves are
not rewritten here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from flwr.server.strategy.aggregate import aggregate, aggregate_krum, aggregate_median, aggregate_trimmed_avg

from fedray.platform.messages import NamedArrays
from fedray.server.config import ServerConfig

Kernel = Callable[[list[tuple[list[np.ndarray], int]], ServerConfig], list[np.ndarray]]

KERNELS: dict[str, Kernel] = {
    "fedavg": lambda results, cfg: aggregate(results),
    "fedprox": lambda results, cfg: aggregate(results),  # the proximal term acts in the clients' local training
    "fedadam": lambda results, cfg: aggregate(results),  # then ServerAdam steps along (average − global)
    "median": lambda results, cfg: aggregate_median(results),
    "trimmed_mean": lambda results, cfg: aggregate_trimmed_avg(results, cfg.trim_fraction),
    "krum": lambda results, cfg: aggregate_krum(results, cfg.num_byzantine, 0),
}


@dataclass
class ServerAdam:
    """FedAdam's server step (Reddi et al., "Adaptive Federated Optimization", Algorithm 2).

    With Δ = weighted client average − global: m ← β1·m + (1−β1)·Δ, v ← β2·v + (1−β2)·Δ², and
    global ← global + η·m / (√v + τ). ``m`` and ``v`` persist across rounds, per tensor.
    """

    lr: float
    beta1: float
    beta2: float
    tau: float
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, current: NamedArrays, averaged: NamedArrays) -> NamedArrays:
        out = {}
        for name, w in current.items():
            delta = averaged[name].astype(np.float64) - w.astype(np.float64)
            self.m[name] = self.beta1 * self.m.get(name, 0.0) + (1 - self.beta1) * delta
            self.v[name] = self.beta2 * self.v.get(name, 0.0) + (1 - self.beta2) * delta**2
            out[name] = (w + self.lr * self.m[name] / (np.sqrt(self.v[name]) + self.tau)).astype(w.dtype)
        return out

    def state(self) -> NamedArrays:
        """The moments, as ``m/<name>`` and ``v/<name>`` arrays (for the server checkpoint)."""
        return {
            **{f"m/{k}": np.asarray(v) for k, v in self.m.items()},
            **{f"v/{k}": np.asarray(v) for k, v in self.v.items()},
        }

    def load_state(self, arrays: NamedArrays) -> None:
        self.m = {k[2:]: v for k, v in arrays.items() if k.startswith("m/")}
        self.v = {k[2:]: v for k, v in arrays.items() if k.startswith("v/")}


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
