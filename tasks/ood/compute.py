"""What every task of the workload shares: batching, and model state as numpy.

Tasks return numpy arrays, never tensors: they travel through Ray's object store without torch, are written to
safetensors as they are, and the inline runtime hands back the same values.
"""

from __future__ import annotations

from collections.abc import Iterator


def batched(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
