"""DLSR's multi-layer semantic features: every encoder stage global-average-pooled, then z-scored over its own
channels, concatenated into z₀ with the block boundaries kept (MFsim compares block by block).

The z-score is per sample and per block, f̄ = (f − mean(f)) / (std(f) + 1e-5) with torch's unbiased std, as the
official code computes it (the paper writes √(Var + δ)). Scaling each block to unit spread keeps a wide block (256
channels) from drowning a narrow one (32) in the reconstruction loss.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
import torch

from fedray.platform.modules.state import as_tensor

ZSCORE_EPS = 1e-5

Bounds = list[tuple[int, int]]


def stage_bounds(widths: list[int], layers: Literal["all", "last"] = "all") -> Bounds:
    """``[start, end)`` of each block of z₀: one per stage (``all``) or the last stage only (``last``)."""
    if layers == "last":
        return [(0, widths[-1])]
    edges = np.cumsum([0, *widths]).tolist()
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def select_layers(pooled: np.ndarray, widths: list[int], layers: Literal["all", "last"]) -> np.ndarray:
    """The columns of the pooled stage features (all stages concatenated) that z₀ is made of."""
    return pooled if layers == "all" else pooled[:, sum(widths[:-1]) :]


def pool_stages(stages: dict[str, torch.Tensor]) -> torch.Tensor:
    """Global average pooling of every stage output ``[B, C_m, h, w]``, concatenated in stage order: ``[B, ΣC_m]``."""
    return torch.cat([s.mean(dim=(2, 3)) for s in stages.values()], dim=1)


def zscore_blocks(pooled: torch.Tensor, bounds: Bounds) -> torch.Tensor:
    """z₀: each block z-scored over its own channels, per sample."""
    blocks = []
    for start, end in bounds:
        block = pooled[:, start:end]
        mean = block.mean(dim=1, keepdim=True)
        std = block.std(dim=1, keepdim=True) + ZSCORE_EPS
        blocks.append((block - mean) / std)
    return torch.cat(blocks, dim=1)


def make_z0(pooled: np.ndarray, widths: list[int], layers: Literal["all", "last"]) -> np.ndarray:
    """z₀ (float32 numpy) from the pooled features of all stages, for the chosen layers."""
    chosen = as_tensor(select_layers(pooled, widths, layers), np.float32)
    return zscore_blocks(chosen, stage_bounds(widths, layers)).numpy()
