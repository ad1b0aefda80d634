"""Continual-learning metrics from the accuracy matrix a[i][j] = accuracy on task j's test set after task i."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def average_accuracy(row: Sequence[float], test_sizes: Sequence[int]) -> float:
    """Accuracy over the pooled test samples of the tasks in ``row`` (each task weighted by its test size)."""
    sizes = np.asarray(test_sizes[: len(row)], dtype=np.float64)
    return float(np.dot(row, sizes) / sizes.sum())


def forgetting(matrix: Sequence[Sequence[float]]) -> float:
    """F_T = mean over j < T of (max_{i≤T} a[i][j] − a[T][j]); 0 after one task."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return float(np.mean([max(matrix[i][j] for i in range(j, last + 1)) - matrix[last][j] for j in range(last)]))


def backward_transfer(matrix: Sequence[Sequence[float]]) -> float:
    """BWT_T = mean over j < T of (a[T][j] − a[j][j]) (negative: forgetting); 0 after one task."""
    last = len(matrix) - 1
    if last == 0:
        return 0.0
    return float(np.mean([matrix[last][j] - matrix[j][j] for j in range(last)]))
