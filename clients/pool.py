"""A worker actor that serves many virtual clients, for simulations with more clients than processes.

Each virtual client keeps only its samples and its personal tensors here; for every call the worker builds that
client's :class:`FederatedClient` (cheap for the models federated runs use), loads its personal tensors, runs the
call, and keeps the personal tensors that result. So memory grows with data and personal tensors, not with whole
models and optimizers, and a virtual client computes exactly what a dedicated client actor would.
"""

from __future__ import annotations

from typing import Any

import torch

from fedray.clients.config import ClientSpec
from fedray.clients.federated_client import FederatedClient
from fedray.platform.messages import ClientData, EvalResult, FitResult, NamedArrays


class ClientPool:
    """Hosts the virtual clients in ``members`` (client id → its data); calls name the client first."""

    def __init__(self, members: dict[int, ClientData], spec: ClientSpec) -> None:
        torch.set_num_threads(spec.train.num_threads)
        self.members, self.spec = members, spec
        self.personal: dict[int, NamedArrays] = {}

    def _run(self, client_id: int, method: str, *args: Any) -> Any:
        if client_id not in self.members:
            raise KeyError(f"client {client_id} is not hosted by this pool worker")
        client = FederatedClient(client_id, self.members[client_id], self.spec)
        if client_id in self.personal:
            client.load_personal_state(self.personal[client_id])
        result = getattr(client, method)(*args)
        self.personal[client_id] = client.personal_state()
        return result

    def ready(self, client_id: int) -> int:
        return client_id if client_id in self.members else -1

    def fit(self, client_id: int, shared: NamedArrays, round_idx: int) -> FitResult:
        return self._run(client_id, "fit", shared, round_idx)

    def evaluate(self, client_id: int, shared: NamedArrays, round_idx: int) -> EvalResult:
        return self._run(client_id, "evaluate", shared, round_idx)

    def personal_state(self, client_id: int) -> NamedArrays:
        return self._run(client_id, "personal_state")
