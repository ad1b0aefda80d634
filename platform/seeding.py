"""Deterministic seeds.

Every random stream in a run is derived from the one ``seed`` key, with a label naming its purpose, so that the inline
and Ray runtimes (which run the same code in different processes and orders) draw the same numbers.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *labels: object) -> int:
    """A 63-bit seed from ``seed`` and labels such as ``("client", 3, "round", 7)``; stable across processes."""
    text = ":".join([str(seed), *map(str, labels)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def numpy_rng(seed: int, *labels: object) -> np.random.Generator:
    """A numpy generator for one purpose (see :func:`derive_seed`)."""
    return np.random.default_rng(derive_seed(seed, *labels))


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and (if imported) torch global generators in this process."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    torch.manual_seed(seed)
