"""Statistics over seeds shared by the benchmark scripts."""

from __future__ import annotations

import numpy as np


def paired_difference(a: list[float], b: list[float]) -> dict:
    """a − b seed by seed: mean, standard deviation, how many seeds a wins, and the differences. Why paired: seeds
    change the data and the initialisation of every method alike, so only differences within a seed compare."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    return {
        "mean": float(diff.mean()),
        "std": float(diff.std()),
        "wins": int((diff > 0).sum()),
        "per_seed": diff.tolist(),
    }
