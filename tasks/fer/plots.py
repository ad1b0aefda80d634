"""The workload's figure: one row-normalised confusion matrix per method, side by side, with its accuracies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def confusion_grid(
    path: str | Path, results: Mapping[str, Mapping[str, Any]], class_names: Sequence[str], title: str
) -> Path:
    """``results``: method → its metrics (``confusion_matrix``, ``accuracy``, ``mean_class_accuracy``); a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(results)
    short = [c[:4] for c in class_names]
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names) + 0.6, 4.0), dpi=100, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        matrix = np.asarray(results[name]["confusion_matrix"], dtype=float)
        rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(rows, vmin=0.0, vmax=1.0, cmap="viridis")
        for (i, j), value in np.ndenumerate(rows):
            ax.text(j, i, f"{value:.2f}"[1:] if value < 1 else "1", ha="center", va="center", fontsize=6,
                    color="white" if value < 0.6 else "black")  # fmt: skip
        ax.set_xticks(range(len(short)), short, rotation=90, fontsize=7)
        ax.set_yticks(range(len(short)), short, fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        acc, mca = results[name]["accuracy"], results[name]["mean_class_accuracy"]
        ax.set_title(f"{name}\nacc {acc:.3f}  mean-class {mca:.3f}", fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
