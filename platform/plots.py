"""Plots written into a run directory (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path


def line_plot(
    path: str | Path, x: Sequence[float], series: Mapping[str, Sequence[float]], xlabel: str, ylabel: str, title: str
) -> Path:
    """One line per series against ``x``, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
    for label, values in series.items():
        ax.plot(x, values, marker="o", markersize=3, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(series) > 1:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def matrix_plot(path: str | Path, matrix: Sequence[Sequence[float]], xlabel: str, ylabel: str, title: str) -> Path:
    """A lower-triangular (ragged) matrix as a heat map with its values written in the cells, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    size = len(matrix)
    grid = np.full((size, max(len(r) for r in matrix)), np.nan)
    for i, row in enumerate(matrix):
        grid[i, : len(row)] = row
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * grid.shape[1], 0.8 + 0.7 * size), dpi=100)
    ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="viridis")
    for (i, j), value in np.ndenumerate(grid):
        if not np.isnan(value):
            ax.text(
                j, i, f"{value:.2f}", ha="center", va="center", color="white" if value < 0.6 else "black", fontsize=8
            )
    ax.set_xticks(range(grid.shape[1]), [str(j + 1) for j in range(grid.shape[1])])
    ax.set_yticks(range(size), [str(i + 1) for i in range(size)])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def image_grid(
    path: str | Path, rows: Mapping[str, Sequence[object]], title: str, value_range: tuple[float, float] = (-1, 1)
) -> Path:
    """Grey images in a grid, one labelled row per entry of ``rows`` (each a sequence of 2-D arrays), as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = max(len(images) for images in rows.values())
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols + 1.2, 1.3 * len(rows) + 0.5), dpi=100, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(images[c], cmap="gray", vmin=value_range[0], vmax=value_range[1])
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
