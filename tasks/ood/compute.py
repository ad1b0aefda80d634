"""What every task of the workload shares: a fixed torch thread count, the device, and model state as numpy.

Tasks return numpy arrays, never tensors: they travel through Ray's object store without torch, are written to
safetensors as they are, and the inline runtime hands back the same values.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads in torch and in numpy's BLAS, then restore the previous counts. The same
    count under Ray and inline keeps their floating-point summation order, hence their numbers, identical."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)


def batched(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))
