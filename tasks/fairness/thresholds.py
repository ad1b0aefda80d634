"""Decision thresholds tuned on the calibration split: the simplest fairness baseline (no change to the detector).

Rules (a sample is called fake when P(fake) ≥ its group's threshold):

* ``global`` — one threshold for everyone, the one that maximises balanced accuracy ½(TPR + TNR) on the pooled
  calibration samples (separates the gain of calibrating at all from the gain of per-group thresholds);
* ``balanced_accuracy`` — each group its own threshold, maximising that group's balanced accuracy;
* ``match_fpr`` — each group's threshold is the (1 − FPR*) quantile of its real calibration scores, where FPR* is
  the overall calibration false-positive rate at the default threshold: every group then flags about the same share
  of its real faces as fake.

Candidates for the maximising rules are the midpoints between consecutive distinct calibration scores (and the two
ends); among equally good candidates the one closest to the default threshold wins, so a flat optimum stays put.
"""

from __future__ import annotations

import numpy as np


def _candidates(scores: np.ndarray) -> np.ndarray:
    u = np.unique(scores)
    return np.concatenate([[u[0] - 1e-6], (u[:-1] + u[1:]) / 2, [u[-1] + 1e-6]]) if len(u) else np.array([0.5])


def best_balanced_threshold(scores: np.ndarray, labels: np.ndarray, default: float) -> float:
    """The threshold maximising ½(TPR + TNR) on (scores, labels); ties go to the candidate nearest ``default``."""
    if len(np.unique(labels)) < 2:
        return default  # one class only: nothing to balance
    t = _candidates(scores)
    pred = scores[None, :] >= t[:, None]
    tpr = (pred & (labels == 1)).sum(1) / (labels == 1).sum()
    tnr = (~pred & (labels == 0)).sum(1) / (labels == 0).sum()
    bacc = (tpr + tnr) / 2
    best = np.flatnonzero(np.isclose(bacc, bacc.max(), rtol=0, atol=1e-12))
    return float(t[best[np.argmin(np.abs(t[best] - default))]])


def group_thresholds(
    rule: str, scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, num_groups: int, default: float
) -> np.ndarray:
    """One threshold per group ``[num_groups]`` by ``rule`` (see the module docstring), from calibration data."""
    if rule == "global":
        return np.full(num_groups, best_balanced_threshold(scores, labels, default))
    if rule == "balanced_accuracy":
        return np.array(
            [best_balanced_threshold(scores[groups == g], labels[groups == g], default) for g in range(num_groups)]
        )
    if rule == "match_fpr":
        real = labels == 0
        target = float((scores[real] >= default).mean())
        out = []
        for g in range(num_groups):
            own = np.sort(scores[real & (groups == g)])
            if len(own) == 0:
                out.append(default)
                continue
            # the smallest threshold that flags at most ⌊target·n⌋ of this group's real faces
            flagged = int(np.floor(target * len(own) + 1e-9))
            out.append(float(own[len(own) - flagged] if flagged else own[-1] + 1e-6))
        return np.array(out)
    raise ValueError(f"unknown threshold rule {rule!r}; known: global, balanced_accuracy, match_fpr")
