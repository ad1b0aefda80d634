"""What workload code may ask of a runtime (the implementations live in ``fedray.cluster.runtime``).

Actor handles returned by :meth:`Runtime.spawn` are used exactly like Ray's: ``handle.method.remote(*args)`` returns
a reference, and :meth:`Runtime.get` / :meth:`Runtime.wait` resolve references. The same server and client code
therefore runs on a Ray cluster and, serially, in the inline runtime.
"""

from __future__ import annotations

from typing import Any, Protocol

from fedray.platform.errors import ConfigError


class Runtime(Protocol):
    mode: str

    def spawn(
        self,
        cls: type,
        *args: Any,
        num_cpus: float = 1.0,
        num_gpus: float = 0.0,
        max_restarts: int = 0,
        name: str | None = None,
        bundle: tuple[Any, int] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start ``cls(*args, **kwargs)`` as an actor with the given resources; return its handle. ``bundle`` is
        ``(reservation, index)``: the actor takes that bundle of a :meth:`reserve` reservation."""

    def reserve(self, bundles: list[dict[str, float]]) -> Any:
        """Ask for all ``bundles`` (``{"CPU": c, "GPU": g}``) at once, so that a group of actors starts together or
        not at all (two federations sharing a cluster must not each hold half their clients); a reservation."""

    def reserved(self, reservation: Any, timeout: float | None) -> bool:
        """Whether the reservation was granted within ``timeout`` seconds."""

    def release(self, reservation: Any) -> None:
        """Give the reservation's resources back (its actors must be done)."""

    def submit(self, fn: Any, *args: Any, num_cpus: float = 1.0, num_gpus: float = 0.0, **kwargs: Any) -> Any:
        """Run the module-level function ``fn(*args, **kwargs)`` as a task with the given resources; a reference."""

    def put(self, value: Any) -> Any:
        """Store ``value`` once and return a reference that can be passed to many calls."""

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        """The value behind a reference (raises the remote exception if the call failed)."""

    def wait(self, refs: list[Any], num_returns: int, timeout: float | None) -> tuple[list[Any], list[Any]]:
        """``(ready, pending)`` after ``num_returns`` are ready or ``timeout`` seconds have passed."""

    def kill(self, handle: Any) -> None:
        """Stop an actor."""

    def total_cpus(self) -> float:
        """CPUs the runtime can schedule on (for dividing them among actors)."""

    def total_gpus(self) -> float:
        """GPUs the runtime can schedule on."""


def check_task_fits(runtime: Runtime, num_cpus: float, num_gpus: float) -> None:
    """A task that asks for more than the whole cluster has would wait forever; a one-line error instead."""
    if runtime.mode == "inline":
        return
    cpus, gpus = runtime.total_cpus(), runtime.total_gpus()
    if num_cpus > cpus + 1e-9 or num_gpus > gpus + 1e-9:
        raise ConfigError(
            f"each task asks for num_cpus={num_cpus:g}, num_gpus={num_gpus:g}; the cluster has {cpus:g} CPUs "
            f"and {gpus:g} GPUs"
        )
