"""Example grids of each attack: originals, amplified perturbations and adversarial images, per victim."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedray.platform.plots import image_grid

AMPLIFY = 5.0  # δ is shown as 0.5 + 5·δ, so ±0.1 spans the grey range


def attack_grid(
    path: str | Path, attack: str, originals: np.ndarray, finals: dict[str, np.ndarray], columns: np.ndarray
) -> Path:
    """Rows: the originals, then per victim the perturbation δ (amplified ×5 around mid-grey) and x_final."""
    rows: dict[str, list[np.ndarray]] = {"original": [originals[i, 0] for i in columns]}
    for victim, final in finals.items():
        rows[f"δ×{AMPLIFY:g} ({victim})"] = [np.clip(0.5 + AMPLIFY * (final[i, 0] - originals[i, 0]), 0, 1)
                                            for i in columns]  # fmt: skip
        rows[f"adversarial ({victim})"] = [final[i, 0] for i in columns]
    return image_grid(path, rows, f"attack: {attack}", value_range=(0.0, 1.0))
