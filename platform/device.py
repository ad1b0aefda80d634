"""Pick the torch device a worker should use."""

from __future__ import annotations

import torch


def select_device(prefer_gpu: bool = True) -> torch.device:
    """CUDA when it is visible to this process (Ray sets ``CUDA_VISIBLE_DEVICES`` to the granted GPUs), else CPU."""
    if prefer_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")
