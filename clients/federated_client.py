"""The federated client: one data shard, one model, personal tensors that never leave it.

A plain class. ``fedray.cluster`` makes it a Ray actor (or an inline object); the parameter server calls
:meth:`fit` and :meth:`evaluate` with the global shared tensors and gets plain messages back.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from fedray.clients.config import ClientSpec
from fedray.clients.methods import METHODS, local_update, proximal_term, shared_patterns
from fedray.clients.training import EpochData, evaluate
from fedray.platform.device import select_device
from fedray.platform.messages import ClientData, EvalResult, FitResult, NamedArrays
from fedray.platform.modules.build import build_model
from fedray.platform.params import get_arrays, set_arrays, split_names
from fedray.platform.seeding import derive_seed


class FederatedClient:
    """Holds client ``client_id``'s samples and its model.

    Every client builds its model from the same seed, so shared and personal tensors start identical everywhere;
    each round draws its shuffling from ``(seed, client, round)``, which makes runs reproducible in any runtime.
    """

    def __init__(self, client_id: int, data: ClientData, spec: ClientSpec) -> None:
        torch.set_num_threads(spec.train.num_threads)
        self.client_id, self.cfg, self.seed, self.data = client_id, spec.train, spec.seed, data
        self.method, self.proximal = METHODS[spec.method], spec.proximal  # proximal: FedProx's term in training
        self.device = select_device()
        self.test_x, self.test_y = self._tensors(data.test_images, data.test_labels)
        self.fixed_train = None if data.sampler else self._tensors(data.train_images, data.train_labels)
        torch.manual_seed(derive_seed(spec.seed, "model-init"))
        self.model = build_model(self.method.architecture, spec.model, int(self.test_x.shape[1]), data.num_classes)
        self.model.to(self.device)
        self.shared_names, self.personal_names = split_names(self.model, shared_patterns(self.method, spec.model))

    def _tensors(self, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(images)).to(self.device), torch.from_numpy(np.array(labels)).to(self.device)

    def _epoch_data(self, round_idx: int) -> EpochData:
        """Fixed arrays every epoch, or a fresh draw from the client's sampler for each ``(round, epoch)``."""
        if self.fixed_train is not None:
            fixed = self.fixed_train
            return lambda epoch: fixed
        sampler = self.data.sampler
        return lambda epoch: self._tensors(*sampler(round_idx, epoch))

    def ready(self) -> int:
        """Answers once construction (data loading, model building) has finished."""
        return self.client_id

    def fit(self, shared: NamedArrays, round_idx: int) -> FitResult:
        """Load the global shared tensors, train locally, return the shared tensors after training."""
        start = time.perf_counter()
        set_arrays(self.model, shared)
        torch.manual_seed(derive_seed(self.seed, "client", self.client_id, "round", round_idx, "train"))
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "client", self.client_id, "round", round_idx))
        penalty = proximal_term(self.model, self.shared_names, self.cfg.prox_mu) if self.proximal else None
        stats = local_update(self.method, self.model, self._epoch_data(round_idx), self.cfg, generator, penalty)
        stats["fit_seconds"] = time.perf_counter() - start
        return FitResult(self.client_id, get_arrays(self.model, self.shared_names), self.data.num_train, stats)

    def evaluate(self, shared: NamedArrays, round_idx: int) -> EvalResult:
        """Metrics on this client's test shard with the given shared tensors and this client's personal ones."""
        set_arrays(self.model, shared)
        return EvalResult(self.client_id, len(self.test_y), evaluate(self.model, self.test_x, self.test_y))

    def personal_state(self) -> NamedArrays:
        return get_arrays(self.model, self.personal_names)

    def load_personal_state(self, arrays: NamedArrays) -> None:
        unknown = set(arrays) - set(self.personal_names)
        if unknown:
            raise KeyError(f"client {self.client_id}: not personal tensors: {sorted(unknown)}")
        set_arrays(self.model, {k: np.asarray(v) for k, v in arrays.items()})
