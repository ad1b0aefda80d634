"""The workload's figures: per-group accuracy bars (per source row and overall) and the metric tables as images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def group_accuracy_bars(
    path: str | Path,
    acc_matrix: Sequence[Sequence[float]],
    overall: Sequence[float],
    rows: Sequence[str],
    groups: Sequence[str],
    title: str,
    errors: Sequence[Sequence[float]] | None = None,
) -> Path:
    """Grouped bars: for each source row (real, each method) and overall, one bar per group; ``errors`` (optional)
    has one row more than ``acc_matrix``, the last for ``overall``."""
    import numpy as np

    plt = _pyplot()
    values = np.vstack([np.asarray(acc_matrix, dtype=float), np.asarray(overall, dtype=float)[None]])
    labels = [*rows, "overall"]
    err = None if errors is None else np.asarray(errors, dtype=float)
    width = 0.8 / len(groups)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(labels), 3.6), dpi=100)
    x = np.arange(len(labels))
    for g, name in enumerate(groups):
        yerr = None if err is None else err[:, g]
        ax.bar(x + (g - (len(groups) - 1) / 2) * width, values[:, g], width, yerr=yerr, label=name, capsize=2)
    ax.set_xticks(x, labels)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=len(groups), loc="upper center", bbox_to_anchor=(0.5, -0.1))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def table_image(path: str | Path, columns: Sequence[str], rows: dict[str, Sequence[str]], title: str) -> Path:
    """A table of preformatted cells (row label → one string per column) rendered as a PNG."""
    plt = _pyplot()
    height = 0.9 + 0.26 * (len(rows) + 1)
    width = 1.8 + 1.25 * len(columns)
    fig, ax = plt.subplots(figsize=(width, height), dpi=100)
    ax.axis("off")
    table = ax.table(
        cellText=[list(cells) for cells in rows.values()],
        rowLabels=list(rows),
        colLabels=list(columns),
        loc="center",
        cellLoc="center",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1.0, 1.2)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
