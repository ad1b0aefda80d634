"""OOD scores from a reconstruction, and the detection metrics (scikit-learn).

Every score is oriented the same way: **higher = more OOD**. Metrics treat ID as the positive class: FPR@95%TPR is
the share of OOD samples still accepted as ID when the threshold keeps 95 % of the ID test set; AUROC does not
depend on which class is called positive.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score, roc_curve

from fedray.tasks.ood.features import Bounds

TPR_LEVEL = 0.95


def mse(z0: torch.Tensor, rec: torch.Tensor) -> torch.Tensor:
    """‖z₀ − z̃₀‖² per sample (a sum of squares over the features, as the official code)."""
    return ((z0 - rec) ** 2).sum(dim=1)


def mfsim(z0: torch.Tensor, rec: torch.Tensor, bounds: Bounds, skip_first: bool = False) -> torch.Tensor:
    """−(1/M) Σ_m cos(f̄ᵐ, f̃ᵐ) over the feature blocks (``skip_first``: the code's variant without block 1)."""
    chosen = bounds[1:] if skip_first else bounds
    if not chosen:
        raise ValueError("MFsim needs at least one block")
    cosines = [F.cosine_similarity(z0[:, a:b], rec[:, a:b], dim=1) for a, b in chosen]
    return -torch.stack(cosines).mean(dim=0)


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """Area under the ROC curve of telling OOD (higher score) from ID."""
    labels = np.r_[np.zeros(len(id_scores)), np.ones(len(ood_scores))]
    return float(roc_auc_score(labels, np.r_[id_scores, ood_scores]))


def fpr_at_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr_level: float = TPR_LEVEL) -> float:
    """FPR at the first threshold whose TPR reaches ``tpr_level``, ID positive: a sample is called ID when its score
    is at most the threshold (ties count as accepted)."""
    labels = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    fpr, tpr, _ = roc_curve(labels, -np.r_[id_scores, ood_scores], drop_intermediate=False)
    return float(fpr[np.searchsorted(tpr, tpr_level - 1e-12, side="left")])


def detection_metrics(
    id_scores: Mapping[str, np.ndarray], ood_scores: Mapping[str, Mapping[str, np.ndarray]]
) -> dict[str, dict]:
    """Per score: AUROC and FPR95 against every OOD set, and their means over the sets.

    ``id_scores``: score name → ID test scores; ``ood_scores``: set name → score name → scores. A score that is
    not finite everywhere is reported as NaN rather than ranked (a diverged model must not look like a detector)."""
    out: dict[str, dict] = {}
    for name, id_values in id_scores.items():
        aurocs, fprs = {}, {}
        for set_name, per_score in ood_scores.items():
            values = per_score[name]
            if not (np.isfinite(id_values).all() and np.isfinite(values).all()):
                aurocs[set_name] = fprs[set_name] = float("nan")
                continue
            aurocs[set_name] = auroc(id_values, values)
            fprs[set_name] = fpr_at_tpr(id_values, values)
        out[name] = {
            "mean_auroc": float(np.mean(list(aurocs.values()))),
            "mean_fpr95": float(np.mean(list(fprs.values()))),
            "auroc": aurocs,
            "fpr95": fprs,
        }
    return out
