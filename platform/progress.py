"""Progress display for rounds and epochs (rich).

On a terminal a live bar shows the latest metrics; elsewhere (CI logs, ``ray job logs``) one plain line per step is
printed instead, because a redrawn bar turns into noise in a log file.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def _format(metrics: Mapping[str, float]) -> str:
    return "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())


class StepProgress:
    """``with StepProgress("round", total) as p: p.advance({"acc": 0.9})``."""

    def __init__(self, unit: str, total: int, start: int = 0, console: Console | None = None) -> None:
        self.unit, self.total, self.done = unit, total, start
        self.console = console or Console(stderr=True)
        self.live = self.console.is_terminal
        self._progress: Progress | None = None
        self._task = None

    def __enter__(self) -> StepProgress:
        if self.live:
            self._progress = Progress(
                TextColumn(f"{self.unit}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[metrics]}"),
                console=self.console,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.unit, total=self.total, completed=self.done, metrics="")
        return self

    def advance(self, metrics: Mapping[str, float]) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, metrics=_format(metrics))
        else:
            self.console.print(f"{self.unit} {self.done}/{self.total}  {_format(metrics)}", highlight=False)

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
