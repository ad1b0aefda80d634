"""Where federated clients live: one actor per client, or virtual clients on a pool of worker actors.

``actor`` (cross-silo): each client is its own Ray actor and keeps its model and personal state in its process.
``pool`` (simulation): ``pool_size`` worker actors host the clients round-robin. Either way the parameter server gets
one handle per client with the same methods (``fit``, ``evaluate``, ``ready``), so its code does
not know which placement it talks to.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fedray.clients.config import ClientSpec
from fedray.clients.federated_client import FederatedClient
from fedray.clients.pool import ClientPool
from fedray.cluster.federation_config import FederatedConfig
from fedray.platform.errors import FedrayError
from fedray.platform.messages import ClientData
from fedray.platform.runtime import Runtime

log = logging.getLogger(__name__)


class PooledClient:
    """A client handle that forwards ``handle.method.remote(*args)`` to ``pool.method.remote(client_id, *args)``."""

    def __init__(self, pool: Any, client_id: int) -> None:
        self.pool, self.client_id = pool, client_id

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("pool", "client_id"):
            raise AttributeError(name)
        return _Forward(getattr(self.pool, name), self.client_id)


class _Forward:
    def __init__(self, method: Any, client_id: int) -> None:
        self.method, self.client_id = method, client_id

    def remote(self, *args: Any) -> Any:
        return self.method.remote(self.client_id, *args)


def actors_of(handles: list[Any]) -> list[Any]:
    """The distinct actors behind client handles (a pool worker serves several clients)."""
    actors = [h.pool if isinstance(h, PooledClient) else h for h in handles]
    return list({id(a): a for a in actors}.values())


def _share(total: float, parts: int, cap: float | None = 1.0) -> float:
    """An equal share of ``total`` per part, rounded down to Ray's four decimals (so the shares always fit)."""
    share = total / max(parts, 1)
    if cap is not None:
        share = min(cap, share)
    return math.floor(share * 1e4) / 1e4


def pool_size(cfg: FederatedConfig, runtime: Runtime) -> int:
    """Configured, or one worker per whole CPU of the runtime (never more workers than clients)."""
    size = cfg.clients.pool_size or max(1, math.floor(runtime.total_cpus() - cfg.server.num_cpus))
    return min(size, cfg.clients.num_clients)


def worker_resources(cfg: FederatedConfig, runtime: Runtime, workers: int) -> tuple[float, float]:
    """``(num_cpus, num_gpus)`` per client actor or pool worker: as configured, or an equal share of the runtime."""
    cpus = cfg.clients.num_cpus
    if cpus is None:
        cpus = _share(max(runtime.total_cpus() - cfg.server.num_cpus, 0.01), workers)
    gpus = cfg.clients.num_gpus
    if gpus is None:
        gpus = _share(runtime.total_gpus(), workers, cap=None)
    return cpus, gpus


def workers_of(cfg: FederatedConfig, runtime: Runtime) -> tuple[int, float, float]:
    """``(workers, num_cpus, num_gpus)``: how many actors the placement starts and what each asks for."""
    workers = cfg.clients.num_clients if cfg.clients.placement == "actor" else pool_size(cfg, runtime)
    return (workers, *worker_resources(cfg, runtime, workers))


def reserve_workers(cfg: FederatedConfig, runtime: Runtime) -> Any:
    """Reserve every client actor's resources at once (see :class:`~fedray.clients.config.ClientConfig`), waiting
    for a busy cluster; a reservation to pass to :func:`place_clients` and release when the run ends."""
    workers, cpus, gpus = workers_of(cfg, runtime)
    reservation = runtime.reserve([{"CPU": cpus, "GPU": gpus}] * workers)
    if runtime.reserved(reservation, cfg.clients.startup_timeout_s):
        return reservation
    asks = f"{workers} workers in '{cfg.clients.placement}' placement, each asking for num_cpus={cpus:g}, "
    asks += f"num_gpus={gpus:g}"
    have = f"the cluster has {runtime.total_cpus():g} CPUs, {runtime.total_gpus():g} GPUs"
    if workers * cpus > runtime.total_cpus() + 1e-9 or workers * gpus > runtime.total_gpus() + 1e-9:
        runtime.release(reservation)
        raise FedrayError(
            f"{workers} of {workers} client actors did not start within {cfg.clients.startup_timeout_s:g} s ({asks}; "
            f"{have}); lower clients.num_cpus/num_gpus or raise clients.startup_timeout_s"
        )
    log.warning("%s; waiting for other work on the cluster to free them (%s)", asks, have)
    if runtime.reserved(reservation, cfg.clients.queue_timeout_s):
        return reservation
    runtime.release(reservation)
    waited = cfg.clients.queue_timeout_s
    raise FedrayError(f"the cluster did not free the clients' resources within clients.queue_timeout_s={waited:g} s "
                      f"({asks}; {have})")  # fmt: skip


def place_clients(
    cfg: FederatedConfig, runtime: Runtime, data: list[ClientData], state_dir: str | None, reservation: Any = None
) -> tuple[list[Any], dict[str, Any]]:
    """One handle per client (index = client id), and a description of the placement for metrics.json.

    Client actors and pool workers are restarted by Ray up to ``clients.max_restarts`` times after a crash; they
    reload their clients' personal state from ``state_dir``. With a ``reservation`` (:func:`reserve_workers`), worker
    ``i`` takes its bundle ``i``.
    """
    spec = ClientSpec(cfg.model, cfg.clients, cfg.seed, cfg.method, cfg.strategy == "fedprox", cfg.privacy, state_dir)
    restarts = cfg.clients.max_restarts

    def bundle(i: int) -> tuple[Any, int] | None:
        return None if reservation is None else (reservation, i)

    workers, cpus, gpus = workers_of(cfg, runtime)
    if cfg.clients.placement == "actor":
        handles = [
            runtime.spawn(FederatedClient, k, runtime.put(d), spec, num_cpus=cpus, num_gpus=gpus,
                          max_restarts=restarts, bundle=bundle(k))
            for k, d in enumerate(data)
        ]  # fmt: skip
        # Actors that share cores take turns: the server keeps only as many fits in flight as there are whole CPUs.
        concurrency = max(1, math.floor(runtime.total_cpus() - cfg.server.num_cpus)) if cpus < 1 else None
        described = {"placement": "actor", "workers": len(data), "num_cpus": cpus, "num_gpus": gpus}
        return handles, {**described, "max_concurrent": concurrency}
    members = [{k: d for k, d in enumerate(data) if k % workers == w} for w in range(workers)]
    pools = [
        runtime.spawn(ClientPool, runtime.put(m), spec, num_cpus=cpus, num_gpus=gpus, max_restarts=restarts,
                      bundle=bundle(w))
        for w, m in enumerate(members)
    ]  # fmt: skip
    handles = [PooledClient(pools[k % workers], k) for k in range(len(data))]
    # Each worker runs its calls one after another already: no limit needed.
    return handles, {
        "placement": "pool",
        "workers": workers,
        "num_cpus": cpus,
        "num_gpus": gpus,
        "max_concurrent": None,
    }
