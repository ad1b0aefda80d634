"""FairFD's group-fairness metrics for forgery detectors (pure numpy).

Notation: groups ``S`` (columns), forgery sources ``F = {real} ∪ methods`` (rows, row 0 = real), Ŷ = 1 means
"fake". Everything is computed from two ``[|F|, |S|]`` count matrices — ``n[f, s]`` samples and ``k[f, s]`` of them
predicted fake — so any grouped evaluation (demographic proxies, federated clients) reuses the same code.

Two forms, both from the paper (AAAI 2025, "Thinking Racial Bias in Fair Forgery Detection") and its official
notebook (``calculate_benchmark.ipynb``):

* ``official`` (default) — the notebook's matrix form on ``acc[f, s]`` (row 0: 1 − P(Ŷ=1 | real, s); rows f ≥ 1:
  P(Ŷ=1 | method f, s)), ``ptp`` = max − min over groups, ``std`` = population std::

      naive  DPD = ptp(mean_f acc[f])      DEOdds = ½ (ptp(acc[0]) + ptp(mean_{f≥1} acc[f]))
             DEO = ptp(mean_{f≥1} acc[f])  STD = std(mean_f acc[f])
      AA     DPD = mean_f ptp(acc[f])      DEOdds = ½ (ptp(acc[0]) + mean_{f≥1} ptp(acc[f]))
             DEO = mean_{f≥1} ptp(acc[f])  STD = mean_f std(acc[f])
      UR     the AA terms, each row's divided by a[f] = mean_s acc[f, s] (+ 1)

* ``paper`` — the paper's probability form from per-sample predictions: the naive metrics pool samples
  (DPD = ptp_s P(Ŷ=1 | s), DEOdds = ½ Σ_y ptp_s P(Ŷ=1 | y, s), DEO = ptp_s P(Ŷ=1 | Y=1, s), STD = std_s acc(s));
  AA averages the per-source gaps over F (DEOdds: the real row for y = 0, the mean over methods for y = 1); UR divides
  each source's gap by its sample-pooled accuracy ACC_{F=f} (+ 1). AA coincides with ``official``; with equal cell
  sizes so does UR.

``ur_denominator``: ``acc_plus_one`` (ACC + 1, what the notebook computes and what reproduces the paper's Table 2 —
every published UR value is below its AA value, impossible when dividing by ACC ≤ 1) or ``acc`` (the paper's text).
With ``acc``, a source whose accuracy is 0 (all its cells 0, so its gap is 0 too) gives 0/0 = NaN — reported, not
hidden.

Degenerate inputs: fewer than two groups (the gap max_{s≠s'} is undefined) or a cell without samples raise
:class:`DataError`; a single method row is fine.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from fedray.platform.errors import DataError

URDenominator = Literal["acc_plus_one", "acc"]
UR_DENOMINATORS = ("acc_plus_one", "acc")
VARIANTS = ("official", "paper")
METRIC_NAMES = tuple(f"{p}{m}" for p in ("", "AA", "UR") for m in ("DPD", "DEOdds", "DEO", "STD"))


def predict_fake(scores: np.ndarray, threshold: float | np.ndarray = 0.5) -> np.ndarray:
    """Ŷ = 1 where ``score >= threshold`` (a scalar, or one threshold per sample)."""
    return (np.asarray(scores, dtype=np.float64) >= threshold).astype(np.int64)


def cell_counts(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    method: np.ndarray,
    group: np.ndarray,
    num_methods: int | None = None,
    num_groups: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(n, k)``, each ``[1 + num_methods, num_groups]``: samples per cell and how many were predicted fake.

    A sample's row is 0 when ``y_true == 0`` (its ``method`` is ignored), else ``1 + method`` (methods 0-based).
    ``num_methods``/``num_groups`` default to the largest index present + 1.
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    method, group = np.asarray(method, dtype=np.int64), np.asarray(group, dtype=np.int64)
    if not len(y_true) == len(y_pred) == len(method) == len(group):
        raise ValueError("y_true, y_pred, method and group must have one entry per sample")
    fake = y_true == 1
    if ((y_true != 0) & ~fake).any() or ((y_pred != 0) & (y_pred != 1)).any():
        raise DataError("labels and predictions must be 0 (real) or 1 (fake)")
    if (method[fake] < 0).any() or (group < 0).any():
        raise DataError("fake samples need a method index >= 0 and every sample a group index >= 0")
    methods = num_methods if num_methods is not None else int(method[fake].max(initial=-1)) + 1
    groups = num_groups if num_groups is not None else int(group.max(initial=-1)) + 1
    row = np.where(fake, method + 1, 0)
    if (row > methods).any() or (group >= groups).any():
        raise DataError(f"a method or group index lies outside {methods} methods × {groups} groups")
    n = np.zeros((methods + 1, groups), dtype=np.int64)
    k = np.zeros_like(n)
    np.add.at(n, (row, group), 1)
    np.add.at(k, (row, group), y_pred)
    return n, k


def _check(n: np.ndarray) -> None:
    if n.ndim != 2 or n.shape[1] < 2:
        raise DataError(f"fairness needs at least two groups; got a {n.shape} matrix (rows: real + methods)")
    empty = np.argwhere(n == 0)
    if len(empty):
        cells = ", ".join(f"(row {f}, group {s})" for f, s in empty[:5])
        raise DataError(f"{len(empty)} cells have no samples, e.g. {cells} (row 0 = real); every cell needs some")


def accuracy_matrix(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``acc[f, s]``: row 0 = 1 − P(Ŷ=1 | real, s) (true-negative rate), rows f ≥ 1 = P(Ŷ=1 | method f, s)."""
    n, k = np.asarray(n), np.asarray(k)
    _check(n)
    rate = k / n
    return np.vstack([1.0 - rate[:1], rate[1:]])


def scores_to_accuracy_matrix(
    y_true: np.ndarray,
    scores: np.ndarray,
    method: np.ndarray,
    group: np.ndarray,
    threshold: float | np.ndarray = 0.5,
    num_methods: int | None = None,
    num_groups: int | None = None,
) -> np.ndarray:
    """``acc[f, s]`` straight from per-sample P(fake) scores, called fake at ``score >= threshold``."""
    n, k = cell_counts(y_true, predict_fake(scores, threshold), method, group, num_methods, num_groups)
    return accuracy_matrix(n, k)


def _ptp(x: np.ndarray) -> np.ndarray:
    return np.ptp(x, axis=-1)


def _denominator(acc_f: np.ndarray, ur_denominator: str) -> np.ndarray:
    if ur_denominator not in UR_DENOMINATORS:
        raise ValueError(f"ur_denominator must be one of {UR_DENOMINATORS}, got {ur_denominator!r}")
    return acc_f + 1.0 if ur_denominator == "acc_plus_one" else acc_f


def _aa_ur(gap: np.ndarray, spread: np.ndarray, acc_f: np.ndarray, ur_denominator: str) -> dict[str, float]:
    """AA and UR metrics from per-row gaps (ptp over groups), spreads (std over groups) and row accuracies."""
    a = _denominator(acc_f, ur_denominator)
    with np.errstate(divide="ignore", invalid="ignore"):
        ur_gap, ur_spread = gap / a, spread / a
    out = {
        "AADPD": gap.mean(),
        "AADEOdds": 0.5 * (gap[0] + gap[1:].mean()),
        "AADEO": gap[1:].mean(),
        "AASTD": spread.mean(),
        "URDPD": ur_gap.mean(),
        "URDEOdds": 0.5 * (ur_gap[0] + ur_gap[1:].mean()),
        "URDEO": ur_gap[1:].mean(),
        "URSTD": ur_spread.mean(),
    }
    return {key: float(v) for key, v in out.items()}


def official_metrics(acc: np.ndarray, ur_denominator: URDenominator = "acc_plus_one") -> dict[str, float]:
    """The notebook's twelve metrics from ``acc[f, s]`` (row 0 = real; at least one method row)."""
    acc = np.asarray(acc, dtype=np.float64)
    _check(np.ones_like(acc))
    if acc.shape[0] < 2 or np.isnan(acc).any():
        raise DataError("acc[f, s] needs a real row and at least one method row, without NaN")
    per_group = acc.mean(axis=0)  # equal weight per source
    fake_per_group = acc[1:].mean(axis=0)
    naive = {
        "DPD": _ptp(per_group),
        "DEOdds": 0.5 * (_ptp(acc[0]) + _ptp(fake_per_group)),
        "DEO": _ptp(fake_per_group),
        "STD": per_group.std(),
    }
    out = {key: float(v) for key, v in naive.items()}
    out.update(_aa_ur(_ptp(acc), acc.std(axis=1), acc.mean(axis=1), ur_denominator))
    return out


def paper_metrics_from_counts(n: np.ndarray, k: np.ndarray, ur_denominator: URDenominator = "acc") -> dict[str, float]:
    """The paper's probability form from the count matrices of :func:`cell_counts`."""
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    acc = accuracy_matrix(n, k)
    if n.shape[0] < 2:
        raise DataError("the paper metrics need a real row and at least one method row")
    correct = acc * n
    p_fake = k.sum(axis=0) / n.sum(axis=0)  # P(Ŷ=1 | s)
    p_fake_real = k[0] / n[0]  # P(Ŷ=1 | Y=0, s)
    p_fake_fake = k[1:].sum(axis=0) / n[1:].sum(axis=0)  # P(Ŷ=1 | Y=1, s)
    acc_group = correct.sum(axis=0) / n.sum(axis=0)  # acc(s), sample-pooled
    naive = {
        "DPD": _ptp(p_fake),
        "DEOdds": 0.5 * (_ptp(p_fake_real) + _ptp(p_fake_fake)),
        "DEO": _ptp(p_fake_fake),
        "STD": acc_group.std(),
    }
    out = {key: float(v) for key, v in naive.items()}
    # within one source Y is fixed, so the P(Ŷ=1 | s, f) gap is the acc[f] gap
    out.update(_aa_ur(_ptp(acc), acc.std(axis=1), correct.sum(axis=1) / n.sum(axis=1), ur_denominator))
    return out


def paper_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    method: np.ndarray,
    group: np.ndarray,
    ur_denominator: URDenominator = "acc",
    num_methods: int | None = None,
    num_groups: int | None = None,
) -> dict[str, float]:
    """The paper's probability form from per-sample labels, predictions (1 = fake), method and group indices."""
    n, k = cell_counts(y_true, y_pred, method, group, num_methods, num_groups)
    return paper_metrics_from_counts(n, k, ur_denominator)


def group_rates(n: np.ndarray, k: np.ndarray) -> dict[str, list[float]]:
    """Per group: TPR = P(Ŷ=1 | Y=1, s), FPR = P(Ŷ=1 | Y=0, s) and the sample-pooled accuracy."""
    n, k = np.asarray(n, dtype=np.float64), np.asarray(k, dtype=np.float64)
    acc = accuracy_matrix(n, k)
    return {
        "tpr": (k[1:].sum(axis=0) / n[1:].sum(axis=0)).tolist(),
        "fpr": (k[0] / n[0]).tolist(),
        "acc": ((acc * n).sum(axis=0) / n.sum(axis=0)).tolist(),
    }


def all_fairness_metrics(n: np.ndarray, k: np.ndarray) -> dict[str, dict[str, float | str]]:
    """Every variant × UR denominator, each block labelled: ``official_ur_acc_plus_one`` (Table 2's numbers),
    ``official_ur_acc``, ``paper_ur_acc`` (the paper's text) and ``paper_ur_acc_plus_one``."""
    acc = accuracy_matrix(n, k)
    out: dict[str, dict[str, float | str]] = {}
    for variant in VARIANTS:
        for denominator in UR_DENOMINATORS:
            values = (
                official_metrics(acc, denominator)  # type: ignore[arg-type]
                if variant == "official"
                else paper_metrics_from_counts(n, k, denominator)  # type: ignore[arg-type]
            )
            out[block_name(variant, denominator)] = {"variant": variant, "ur_denominator": denominator, **values}
    return out


def block_name(variant: str, ur_denominator: str) -> str:
    """The key of one labelled block in :func:`all_fairness_metrics`."""
    return f"{variant}_ur_{ur_denominator}"
