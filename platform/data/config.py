"""Dataset and partition configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass
class DataConfig:
    """Which images, at what size, split how across clients.

    ``digits`` is scikit-learn's bundled 8×8 handwritten digits (1,797 real images, always available);
    ``fashion_mnist`` reads IDX files from ``path`` (default: where Debian's ``dataset-fashion-mnist`` puts them);
    ``synthetic`` makes class-dependent random images of ``channels × image_size²`` (for timing runs).
    """

    name: Literal["digits", "fashion_mnist", "synthetic"] = "digits"
    path: str | None = None
    image_size: int = 16
    max_samples: int | None = None  # keep a class-stratified random subset of this size
    synthetic_samples: int = 2560
    synthetic_channels: int = 3
    synthetic_classes: int = 10
    partition: Literal["dirichlet", "iid"] = "dirichlet"
    alpha: float = 0.5  # Dirichlet concentration: smaller means more label skew across clients
    min_client_samples: int = 10
    test_fraction: float = 0.2  # of each client's shard, held out for that client's evaluation
