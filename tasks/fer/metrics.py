"""Expression-recognition metrics from predicted and true labels (scikit-learn), as plain JSON-ready values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix


def expression_metrics(labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str]) -> dict[str, Any]:
    """Overall accuracy, per-class accuracy (recall; None for a class absent from ``labels``), their mean over the
    classes present, and the confusion matrix (rows: true class, columns: predicted, in ``class_names`` order)."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    matrix = confusion_matrix(labels, predictions, labels=list(range(len(class_names))))
    support = matrix.sum(axis=1)
    per_class = {name: (float(matrix[k, k] / support[k]) if support[k] else None) for k, name in enumerate(class_names)}
    present = [v for v in per_class.values() if v is not None]
    return {
        "accuracy": float((labels == predictions).mean()) if len(labels) else float("nan"),
        "mean_class_accuracy": float(np.mean(present)) if present else float("nan"),
        "per_class_accuracy": per_class,
        "confusion_matrix": matrix.tolist(),
        "test_samples": len(labels),
    }
