"""Class-incremental task streams: which classes arrive in which task, and per-class subsets."""

from __future__ import annotations

import numpy as np

from fedray.platform.errors import ConfigError
from fedray.platform.seeding import numpy_rng


def class_order(num_classes: int, seed: int, fixed: list[int] | None = None, shuffle: bool = True) -> list[int]:
    """``fixed`` when given (checked to be a permutation), else the classes shuffled by ``seed`` (or in order)."""
    if fixed is not None:
        if sorted(fixed) != list(range(num_classes)):
            raise ConfigError(f"data.class_order must be a permutation of 0..{num_classes - 1}, got {fixed}")
        return list(fixed)
    if not shuffle:
        return list(range(num_classes))
    return [int(c) for c in numpy_rng(seed, "class_order").permutation(num_classes)]


def split_tasks(order: list[int], tasks: int) -> list[list[int]]:
    """``order`` cut into ``tasks`` consecutive groups of equal size."""
    if tasks < 1 or len(order) % tasks:
        raise ConfigError(f"data.tasks={tasks} must divide the {len(order)} classes into equal tasks")
    size = len(order) // tasks
    return [order[i * size : (i + 1) * size] for i in range(tasks)]


def per_class_subset(labels: np.ndarray, per_class: int | None, seed: int, label: str) -> np.ndarray:
    """Sorted indices of at most ``per_class`` samples of every class (a seeded draw; all of them for None)."""
    if per_class is None:
        return np.arange(len(labels))
    rng = numpy_rng(seed, "per_class", label)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))
