"""Classification metrics from logits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy and mean cross-entropy of ``logits [N, K]`` against ``labels [N]``; for K = 2 also ROC AUC.

    AUC treats class 1 as positive and is NaN when the labels hold a single class (it is undefined there).
    """
    loss = F.cross_entropy(logits, labels).item()
    acc = (logits.argmax(dim=1) == labels).float().mean().item()
    out = {"acc": acc, "loss": loss}
    if logits.shape[1] == 2:
        from sklearn.metrics import roc_auc_score

        y = labels.cpu().numpy()
        score = torch.softmax(logits, dim=1)[:, 1].cpu().numpy()
        out["auc"] = float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")
    return out
