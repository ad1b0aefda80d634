"""Runtimes: ``inline`` (no Ray), ``local`` (Ray on this machine) and ``address`` (an existing Ray cluster).

The inline runtime replaces Ray's removed ``local_mode``: actors are plain objects and a method call runs at once,
serially, in this process, so a breakpoint in client code works and unit tests are fast. It only adapts spawning,
calling and gathering; the workload code is the same. Round timeouts cannot interrupt a serial call, so they only
apply under Ray.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fedray.platform.config import ClusterSection
from fedray.platform.errors import FedrayError
from fedray.platform.inline_gpus import inline_request

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
GPU_VISIBILITY_ENV = "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO"


@dataclass(eq=False)  # hashed by identity, like Ray's ObjectRef, so refs can key dicts
class InlineRef:
    """The outcome of an inline call: a value, or the exception it raised (re-raised by ``get``)."""

    value: Any = None
    error: BaseException | None = None


def _resolve(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Top-level reference arguments arrive as their values, as Ray delivers them."""
    return tuple(a.value if isinstance(a, InlineRef) else a for a in args)


class _InlineMethod:
    def __init__(self, actor: InlineActor, name: str) -> None:
        self._actor, self._name = actor, name

    def remote(self, *args: Any, **kwargs: Any) -> InlineRef:
        if self._actor.dead:
            return InlineRef(error=FedrayError(f"actor {self._actor.label} was killed"))
        try:
            with inline_request(self._actor.num_gpus):
                return InlineRef(getattr(self._actor.instance, self._name)(*_resolve(args), **kwargs))
        except Exception as exc:  # noqa: BLE001 - delivered to the caller through get(), as Ray does
            return InlineRef(error=exc)


class InlineActor:
    """A plain object behind Ray's handle syntax: ``actor.method.remote(...)``."""

    def __init__(self, instance: Any, label: str, num_gpus: float = 0.0) -> None:
        self.instance, self.label, self.dead = instance, label, False
        self.num_gpus = num_gpus  # what it asked for: its methods pick their device by it, as under Ray

    def __getattr__(self, name: str) -> _InlineMethod:
        if name.startswith("__"):
            raise AttributeError(name)
        return _InlineMethod(self, name)


class InlineRuntime:
    """Serial, in-process execution with Ray's call shapes."""

    mode = "inline"

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
    ) -> InlineActor:
        """Construct the object now. Resources only decide the device it computes on (:func:`inline_request`)."""
        with inline_request(num_gpus):
            instance = cls(*_resolve(args), **kwargs)
        return InlineActor(instance, name or cls.__name__, num_gpus)

    def reserve(self, bundles: list[dict[str, float]]) -> None:
        return None

    def reserved(self, reservation: Any, timeout: float | None) -> bool:
        return True

    def release(self, reservation: Any) -> None:
        return None

    def submit(self, fn: Any, *args: Any, num_cpus: float = 1.0, num_gpus: float = 0.0, **kwargs: Any) -> InlineRef:
        """Run the task now, in this process, on the device its request gives it (:func:`inline_request`); its
        exception is delivered through ``get`` as Ray does."""
        try:
            with inline_request(num_gpus):
                return InlineRef(fn(*_resolve(args), **kwargs))
        except Exception as exc:  # noqa: BLE001 - re-raised by get()
            return InlineRef(error=exc)

    def put(self, value: Any) -> InlineRef:
        # Ray hands every consumer its own deserialised copy; so does the inline runtime.
        return InlineRef(copy.deepcopy(value))

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        if isinstance(ref, list):
            return [self.get(r) for r in ref]
        if ref.error is not None:
            raise ref.error
        return ref.value

    def wait(self, refs: list[Any], num_returns: int, timeout: float | None) -> tuple[list[Any], list[Any]]:
        return list(refs[:num_returns]), list(refs[num_returns:])

    def kill(self, handle: InlineActor) -> None:
        handle.dead = True

    def total_cpus(self) -> float:
        return float(os.cpu_count() or 1)

    def total_gpus(self) -> float:
        import torch

        return float(torch.cuda.device_count())


class RayRuntime:
    """Ray: actors get declared resources; ``put``/``get``/``wait`` are Ray's own."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        # Ray re-runs a restarted actor's constructor with its original arguments; object-store arguments must stay
        # referenced for that, so the runtime holds them for as long as it lives (ray-project/ray#53727).
        self._restart_arguments: list[Any] = []

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
        import ray

        options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_restarts": max_restarts}
        if name is not None:
            options["name"] = name
        if bundle is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            group, index = bundle
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)
        if max_restarts:
            refs = [a for a in (*args, *kwargs.values()) if isinstance(a, ray.ObjectRef)]
            self._restart_arguments.extend(refs)
        return ray.remote(cls).options(**options).remote(*args, **kwargs)

    def reserve(self, bundles: list[dict[str, float]]) -> Any:
        from ray.util.placement_group import placement_group

        # Ray rejects zero-valued resources in a bundle; a bundle that asks for nothing still reserves a slot.
        cleaned = [{k: v for k, v in b.items() if v > 0} or {"CPU": 0.0001} for b in bundles]
        return placement_group(cleaned, strategy="PACK")

    def reserved(self, reservation: Any, timeout: float | None) -> bool:
        import ray

        ready, _ = ray.wait([reservation.ready()], timeout=timeout)
        return bool(ready)

    def release(self, reservation: Any) -> None:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(reservation)

    def submit(self, fn: Any, *args: Any, num_cpus: float = 1.0, num_gpus: float = 0.0, **kwargs: Any) -> Any:
        """A task with the declared resources. One that holds a GPU runs in a worker process that exits after it
        (``max_calls=1``, Ray's own default for GPU tasks — which Ray derives only from resources given to
        ``ray.remote`` itself, not from ``.options``): a reused worker would keep the task's CUDA context, cached
        memory and memory cap, and on a multi-GPU node the device it first initialised, whatever the next task is
        granted."""
        import ray

        remote = ray.remote(max_calls=1)(fn) if num_gpus > 0 else ray.remote(fn)
        return remote.options(num_cpus=num_cpus, num_gpus=num_gpus).remote(*args, **kwargs)

    def put(self, value: Any) -> Any:
        import ray

        return ray.put(value)

    def get(self, ref: Any, timeout: float | None = None) -> Any:
        """The value, or the remote exception; a user's mistake found inside a task (a :class:`FedrayError`) is
        raised as itself, so the CLI prints its one line instead of Ray's wrapper around the remote traceback."""
        import ray

        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, FedrayError):
                raise exc.cause from None
            raise

    def wait(self, refs: list[Any], num_returns: int, timeout: float | None) -> tuple[list[Any], list[Any]]:
        import ray

        return ray.wait(list(refs), num_returns=num_returns, timeout=timeout)

    def kill(self, handle: Any) -> None:
        import ray

        ray.kill(handle, no_restart=True)

    def total_cpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("CPU", 1.0))

    def total_gpus(self) -> float:
        import ray

        return float(ray.cluster_resources().get("GPU", 0.0))


def _init_ray(cluster: ClusterSection) -> bool:
    """Start or join Ray as ``cluster`` says; False when this process was already connected (then leave it up)."""
    import ray

    if ray.is_initialized():
        return False
    if cluster.mode == "local":
        # Without this Ray binds to the machine's external address; a local simulation needs only loopback.
        os.environ.setdefault(LOOPBACK_ENV, "0")
        # Ray's announced future default (workers granted no GPU still see the devices), taken now so the behaviour
        # does not change under us; such workers stay on the CPU by ``select_device``'s own rule.
        os.environ.setdefault(GPU_VISIBILITY_ENV, "0")
        ray.init(
            address="local",  # a new cluster of our own, even where `ray start` left one running (or its address)
            num_cpus=cluster.num_cpus,
            num_gpus=cluster.num_gpus,
            include_dashboard=cluster.dashboard,
            logging_level="WARNING",
            log_to_driver=True,
        )
        return True
    try:
        ray.init(address=cluster.address, logging_level="WARNING")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FedrayError(f"cannot join the Ray cluster at {cluster.address!r}: {first}") from None
    return True


@contextmanager
def open_runtime(cluster: ClusterSection) -> Iterator[InlineRuntime | RayRuntime]:
    """The runtime ``cluster.mode`` names; Ray is shut down on exit only if this call started it."""
    if cluster.mode == "inline":
        yield InlineRuntime()
        return
    started = _init_ray(cluster)
    try:
        yield RayRuntime(cluster.mode)
    finally:
        if started:
            import ray

            ray.shutdown()
