"""Pick the torch device a worker should use, and time work on it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import torch


def select_device(prefer_gpu: bool = True) -> torch.device:
    """CUDA when it is visible to this process (Ray sets ``CUDA_VISIBLE_DEVICES`` to the granted GPUs), else CPU."""
    if prefer_gpu and torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("cpu")


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@torch.no_grad()
def timed_batches(
    fn: Callable[..., torch.Tensor], batches: Iterable[tuple[torch.Tensor, ...]], warmup: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, float]:
    """``fn(*batch)`` for every batch, concatenated on the CPU, and the wall-clock seconds they took — after one
    untimed call on ``warmup`` (FFT plans, allocator), with CUDA work synchronised on both sides of the timing."""
    fn(*warmup)
    _synchronize()
    started = time.perf_counter()
    outputs = [fn(*batch).cpu() for batch in batches]
    _synchronize()
    return torch.cat(outputs), time.perf_counter() - started
