"""An image dataset held as two numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ImageArrays:
    """``images``: float32 ``[N, C, H, W]`` in [0, 1]; ``labels``: int64 ``[N]`` in ``0 … num_classes-1``."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    name: str

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or len(self.images) != len(self.labels):
            raise ValueError(f"{self.name}: images {self.images.shape} and labels {self.labels.shape} disagree")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_channels(self) -> int:
        return int(self.images.shape[1])
