"""A worker actor that serves many virtual clients, for simulations with more clients than processes.

Each virtual client keeps only its samples here; its personal state lives in the worker's
:class:`ClientStateStore`, which holds at most ``clients.state_cache`` states in memory and the rest on disk. The worker
builds one :class:`FederatedClient` (model, privacy wrapper) and, for every call, points it at the named client:
its samples and its personal state from the store, saved back after a fit. So memory grows with data, not with
models, optimizers or personal tensors, no call pays for building a model, and a virtual client computes exactly what
a dedicated client actor would.
"""

from __future__ import annotations

from typing import Any

import torch

from fedray.clients.config import ClientSpec
from fedray.clients.federated_client import FederatedClient
from fedray.clients.state_store import ClientStateStore
from fedray.platform.messages import ClientData, EvalResult, FitResult, NamedArrays


class ClientPool:
    """Hosts the virtual clients in ``members`` (client id → its data); calls name the client first."""

    def __init__(self, members: dict[int, ClientData], spec: ClientSpec) -> None:
        torch.set_num_threads(spec.train.num_threads)
        self.members, self.spec = members, spec
        self.store = ClientStateStore(spec.state_dir, cache_size=spec.train.state_cache)
        self.host: FederatedClient | None = None  # built at the first call, then switched between clients

    def _client(self, client_id: int) -> FederatedClient:
        if client_id not in self.members:
            raise KeyError(f"client {client_id} is not hosted by this pool worker")
        data = self.members[client_id]
        if self.host is None:
            self.host = FederatedClient(client_id, data, self.spec, self.store)
        else:
            self.host.serve(client_id, data)  # always reloads: a rollback may have changed the saved state
        return self.host

    def ready(self, client_id: int) -> int:
        return client_id if client_id in self.members else -1

    def fit(self, client_id: int, shared: NamedArrays, round_idx: int) -> FitResult:
        return self._client(client_id).fit(shared, round_idx)

    def evaluate(self, client_id: int, shared: NamedArrays, round_idx: int) -> EvalResult:
        return self._client(client_id).evaluate(shared, round_idx)

    def rollback(self, round_idx: int) -> int:
        """Roll every hosted client back to its newest state up to ``round_idx``; how many have one."""
        return sum(self.store.rollback(k, round_idx) is not None for k in self.members)

    def memory(self) -> dict[str, Any]:
        """How many personal states this worker holds in memory (bounded by ``clients.state_cache``)."""
        return {"clients": len(self.members), "cached_states": self.store.cached()}
