"""Hold Ctrl-C back while a round is being committed (checkpoint + log line + bookkeeping).

A SIGINT that arrives inside the block is remembered and raised as ``KeyboardInterrupt`` when the block ends, so the
checkpoint on disk and the metrics log always describe the same, complete round.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread; nothing to defer elsewhere
        return
    received: list[int] = []

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
