"""A detector trained centrally on group-imbalanced faces (a runtime task): the biased detector fairness measures.

The training faces are first resampled into a pool whose groups follow ``group_shares`` (faces repeated as needed),
so every epoch's fresh SBI draw sees each group in that proportion; the training itself is the shared detector
recipe (``tasks.forensics.detector.train_detector``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.device import torch_threads
from fedray.tasks.fairness.config import FairnessDetector


def train_group_detector(
    cfg: FairnessDetector,
    faces: np.ndarray,
    groups: np.ndarray,
    families: list[str],
    forgery: ForgeryConfig,
    seed: int,
    threads: int,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The trained detector's state (numpy) and its training record (loss curve, steps, seconds, pool make-up)."""
    from fedray.platform.modules.state import state_arrays
    from fedray.tasks.forensics.detector import train_detector
    from fedray.tasks.forensics.faces import group_pool

    with torch_threads(threads):
        pool = group_pool(faces, groups, cfg.group_shares, cfg.pool_size, seed) if cfg.group_shares else faces
        model, info = train_detector(cfg, pool, families, forgery, seed)
    total = sum(cfg.group_shares)
    shares = {int(g): s / total for g, s in zip(np.unique(groups), cfg.group_shares, strict=True)} if total else {}
    return state_arrays(model), {**info, "train_faces": len(faces), "pool_size": len(pool), "group_shares": shares}
