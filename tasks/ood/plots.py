"""The run's picture: mean AUROC over the OOD sets for every score, per-set AUROC as dots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def auroc_bars(path: str | Path, metrics: Mapping[str, Mapping], title: str) -> Path:
    """One horizontal bar per score (its mean AUROC) with each OOD set's AUROC marked on it, best on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(metrics, key=lambda n: metrics[n]["mean_auroc"])
    sets = sorted({s for n in names for s in metrics[n]["auroc"]})
    fig, ax = plt.subplots(figsize=(8.5, 0.35 * len(names) + 1.5), dpi=100)
    ax.barh(range(len(names)), [metrics[n]["mean_auroc"] for n in names], color="#9bb7d4", label="mean over sets")
    markers = "os^vD<>ph*"
    for i, set_name in enumerate(sets):
        ax.scatter(
            [metrics[n]["auroc"].get(set_name, float("nan")) for n in names],
            range(len(names)),
            s=14,
            marker=markers[i % len(markers)],
            label=set_name,
            zorder=3,
        )
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("AUROC (ID test vs OOD set)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
