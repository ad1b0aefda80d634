"""One seed's evaluation of a detector (a runtime task): grouped SBI test samples, every fairness metric, AUC/ACC,
then BPFA and its pruning baselines, and the calibrated-threshold baselines — all on the same test samples.

Calibration samples (real and fake, from the calibration faces) serve both BPFA's group statistics (real images
only) and the threshold rules; they never share a face with the test samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.device import select_device, torch_threads
from fedray.platform.metrics.fairness import (
    accuracy_matrix,
    all_fairness_metrics,
    cell_counts,
    group_rates,
    predict_fake,
)
from fedray.tasks.fairness.config import Evaluation, Pruning, Thresholds
from fedray.tasks.fairness.pruning import channel_bias, group_activation_norms, prune, pruning_scores
from fedray.tasks.fairness.thresholds import group_thresholds


def _auc(labels: np.ndarray, scores: np.ndarray) -> float:
    return float(roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else float("nan")


def score_metrics(
    scores: np.ndarray,
    labels: np.ndarray,
    methods: np.ndarray,
    groups: np.ndarray,
    num_methods: int,
    num_groups: int,
    threshold: float | np.ndarray,
) -> dict[str, Any]:
    """Every metric of one set of P(fake) scores at ``threshold`` (a scalar, or one per group).

    With per-group thresholds, ``auc`` ranks the margins ``score − threshold[group]`` (what the thresholds decide on);
    ``auc_raw`` is always the AUC of the scores themselves. ``acc`` is sample-pooled (the test set holds more fakes
    than reals: one real row against several method rows); ``balanced_acc`` weighs the two classes equally.
    """
    per_sample = np.asarray(threshold)[groups] if np.ndim(threshold) else float(threshold)
    pred = predict_fake(scores, per_sample)
    n, k = cell_counts(labels, pred, methods, groups, num_methods, num_groups)
    rates = group_rates(n, k)
    real, fake = labels == 0, labels == 1
    return {
        "auc": _auc(labels, scores - per_sample),
        "auc_raw": _auc(labels, scores),
        "acc": float((pred == labels).mean()),
        "balanced_acc": float(((pred[fake] == 1).mean() + (pred[real] == 0).mean()) / 2),
        "groups": {
            **rates,
            "auc": [_auc(labels[groups == g], scores[groups == g]) for g in range(num_groups)],
        },
        "acc_matrix": accuracy_matrix(n, k).tolist(),
        "fairness": all_fairness_metrics(n, k),
    }


def evaluate_seed(
    source: dict[str, Any],
    faces: dict[str, tuple[np.ndarray, np.ndarray]],
    num_groups: int,
    families: list[str],
    forgery: ForgeryConfig,
    evaluation: Evaluation,
    pruning: Pruning,
    thresholds: Thresholds,
    seed: int,
    threads: int,
) -> dict[str, Any]:
    """The detector at ``source`` (``path``, ``client``) on this seed's test faces: original, pruned, thresholded."""
    from fedray.tasks.forensics.detector import fake_probability, load_detector
    from fedray.tasks.forensics.faces import grouped_samples

    with torch_threads(threads):
        model, _ = load_detector(source["path"], source["client"])
        model = model.to(select_device())  # scoring, activation statistics and pruning follow the model's device
        test = grouped_samples(*faces["test"], families, evaluation.per_cell, forgery, seed, "fairness", "test")
        cal = grouped_samples(
            *faces["calibration"], families, evaluation.calibration_per_cell, forgery, seed, "fairness", "calibration"
        )
        batch = evaluation.batch_size

        def metrics_of(scores: np.ndarray, threshold: float | np.ndarray) -> dict[str, Any]:
            return score_metrics(scores, test.labels, test.families, test.groups, len(families), num_groups, threshold)

        test_scores = fake_probability(model, test.images, batch)
        out: dict[str, Any] = {
            "seed": seed,
            "samples": {"test": len(test.labels), "calibration": len(cal.labels)},
            "original": metrics_of(test_scores, evaluation.threshold),
        }
        if thresholds.enabled and thresholds.rules:
            cal_scores = fake_probability(model, cal.images, batch)
            out["thresholds"] = {}
            for rule in thresholds.rules:
                chosen = group_thresholds(rule, cal_scores, cal.labels, cal.groups, num_groups, evaluation.threshold)
                out["thresholds"][rule] = {**metrics_of(test_scores, chosen), "thresholds": chosen.tolist()}
        if pruning.enabled and pruning.scores and pruning.rates_percent:
            real = cal.labels == 0
            norms = group_activation_norms(model, cal.images[real], cal.groups[real], num_groups, batch)
            bias = channel_bias(norms)
            out["bias"] = {name: {"mean": float(b.mean()), "max": float(b.max())} for name, b in bias.items()}
            out["pruning"] = {}
            for kind in pruning.scores:
                scores = pruning_scores(model, bias, kind, seed)
                out["pruning"][kind] = {}
                for rate in pruning.rates_percent:
                    pruned, fractions = prune(model, scores, rate / 100)
                    total = sum(scores[name].numel() for name in fractions)
                    zeroed = sum(fractions[name] * scores[name].numel() for name in fractions)
                    out["pruning"][kind][f"{rate:g}"] = {
                        **metrics_of(fake_probability(pruned, test.images, batch), evaluation.threshold),
                        "pruned_fraction": zeroed / total,
                    }
        return out
