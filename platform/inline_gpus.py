"""The GPUs the inline runtime's current task or actor asked for (torch-free, so the runtimes can set it without
importing torch). :func:`fedray.platform.device.select_device` reads it where Ray would have granted resources."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_requested: ContextVar[float | None] = ContextVar("fedray_inline_gpus", default=None)


@contextmanager
def inline_request(num_gpus: float) -> Iterator[None]:
    """Run the inline runtime's work for a task or actor that asked for ``num_gpus``: device selection inside picks
    what a Ray worker granted that much would (CUDA only for a request above zero), so a run gives the same numbers
    inline and under Ray on a GPU machine too. No memory cap: one process runs every inline task in turn."""
    token = _requested.set(float(num_gpus))
    try:
        yield
    finally:
        _requested.reset(token)


def requested_gpus() -> float | None:
    """The current inline task's or actor's request, or None outside any (the driver's own code)."""
    return _requested.get()
