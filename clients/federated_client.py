"""The federated client: one data shard, one model, personal tensors that never leave it.

A plain class. ``fedray.cluster`` makes it a Ray actor (or an inline object); the parameter server calls
:meth:`fit` and :meth:`evaluate` with the global shared tensors and gets plain messages back. After every fit the
client saves its personal state (tensors and privacy accountant) to its :class:`ClientStateStore`, and its
constructor reloads the newest saved state, so a client actor that Ray restarts continues where it stopped.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch

from fedray.clients.config import ClientSpec
from fedray.clients.methods import METHODS, LocalTraining, local_update, pull_towards, sgd, shared_patterns, snapshot
from fedray.clients.state_store import ClientState, ClientStateStore
from fedray.clients.training import EpochData, evaluate, shuffled_batches
from fedray.platform.device import select_device
from fedray.platform.messages import ClientData, EvalResult, FitResult, NamedArrays
from fedray.platform.modules.build import build_model
from fedray.platform.params import get_arrays, set_arrays, split_names
from fedray.platform.seeding import derive_seed


class FederatedClient:
    """Holds client ``client_id``'s samples and its model.

    Every client builds its model from the same seed, so shared and personal tensors start identical everywhere;
    each round draws its shuffling (and DP noise) from ``(seed, client, round)``, which makes runs reproducible in any
    runtime and a resumed run identical to an uninterrupted one.
    """

    def __init__(self, client_id: int, data: ClientData, spec: ClientSpec, store: ClientStateStore | None = None):
        torch.set_num_threads(spec.train.num_threads)
        self.cfg, self.seed = spec.train, spec.seed
        self.method, self.proximal = METHODS[spec.method], spec.proximal  # proximal: FedProx's term in training
        self.device = select_device()
        self.in_channels, self.num_classes = int(np.shape(data.test_images)[1]), data.num_classes
        torch.manual_seed(derive_seed(spec.seed, "model-init"))
        self.model = build_model(self.method.architecture, spec.model, self.in_channels, self.num_classes)
        self.model.to(self.device)
        self.shared_names, self.personal_names = split_names(self.model, shared_patterns(self.method, spec.model))
        self.privacy = None
        if spec.privacy.enabled:
            from fedray.clients.privacy import ClientPrivacy  # opacus only where privacy is asked for

            self.privacy = ClientPrivacy(self.model, self.shared_names, spec.privacy, self.cfg.batch_size)
        self.initial_personal = get_arrays(self.model, self.personal_names)
        self.store = store if store is not None else ClientStateStore(spec.state_dir)
        saved = self.serve(client_id, data)
        # A dedicated actor constructed over saved state was restarted (or resumed); a pool worker's clients load
        # their state from its store at every call, so for them this says nothing and stays 0.
        self.restored_from_round = saved.round if saved is not None and store is None else 0

    def serve(self, client_id: int, data: ClientData) -> ClientState | None:
        """Become client ``client_id``: its samples and its newest saved personal state (the initial one when it has
        none). A pool worker keeps one model and switches it between its virtual clients this way instead of building
        a model, a privacy wrapper and device copies for every call; every tensor of the model is then either set by
        the caller (shared) or restored here (personal), so nothing carries over from the client served before."""
        if int(np.shape(data.test_images)[1]) != self.in_channels or data.num_classes != self.num_classes:
            raise ValueError(
                f"client {client_id}: {np.shape(data.test_images)[1]} channels and {data.num_classes} classes, but "
                f"this model takes {self.in_channels} and {self.num_classes}"
            )
        self.client_id, self.data = client_id, data
        self.test_x, self.test_y = self._tensors(data.test_images, data.test_labels)
        self.fixed_train = None if data.sampler else self._tensors(data.train_images, data.train_labels)
        saved = self.store.load(client_id)
        self._restore(saved)
        return saved

    def _tensors(self, images: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(np.array(images)).to(self.device), torch.from_numpy(np.array(labels)).to(self.device)

    def _restore(self, state: ClientState | None) -> None:
        """Take the personal state of a saved version, or the initial one when there is none."""
        self.load_personal_state(state.arrays if state else self.initial_personal)
        if self.privacy is not None:
            self.privacy.load_state(state.extra.get("privacy", []) if state else [])
        self.state_round = state.round if state else 0

    def _epoch_data(self, round_idx: int) -> EpochData:
        """Fixed arrays every epoch, or a fresh draw from the client's sampler for each ``(round, epoch)``."""
        if self.fixed_train is not None:
            fixed = self.fixed_train
            return lambda epoch: fixed
        sampler = self.data.sampler
        return lambda epoch: self._tensors(*sampler(round_idx, epoch))

    def _local_training(self, round_idx: int) -> LocalTraining:
        """This round's data, batching and optimizers: shuffled batches and SGD, or, with privacy, Poisson batches and
        DP-SGD on the shared parameters; plus FedProx's pull on the shared parameters where it applies."""
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "client", self.client_id, "round", round_idx))
        penalty = None
        if self.proximal:
            params = dict(self.model.named_parameters())
            shared = [params[n] for n in self.shared_names if n in params]
            penalty = pull_towards(shared, snapshot(shared), self.cfg.prox_mu)
        make_sgd = partial(sgd, cfg=self.cfg)
        if self.privacy is None:
            batches, make_optimizer = shuffled_batches(self.cfg.batch_size, generator), make_sgd
        else:
            batches, make_optimizer = self.privacy.batches(generator), self.privacy.optimizers(make_sgd)
        return LocalTraining(self.cfg, self._epoch_data(round_idx), batches, make_optimizer, penalty)

    def ready(self) -> int:
        """Answers once construction (data loading, model building, state restoring) has finished."""
        return self.client_id

    def fit(self, shared: NamedArrays, round_idx: int) -> FitResult:
        """Load the global shared tensors, train locally, save the personal state, return the shared tensors."""
        start = time.perf_counter()
        sample_rate = 0.0
        if self.privacy is not None:
            sample_rate = self.privacy.sample_rate(self.data.num_train)
            planned = self.cfg.epochs * int(1 / sample_rate) if self.privacy.shared_ids else 0
            refusal = self.privacy.refusal(planned, sample_rate)
            if refusal is not None:
                return FitResult(self.client_id, {}, 0, {"epsilon": self.privacy.epsilon()}, declined=refusal)
        set_arrays(self.model, shared)
        torch.manual_seed(derive_seed(self.seed, "client", self.client_id, "round", round_idx, "train"))
        stats = local_update(self.method, self.model, self._local_training(round_idx))
        stats["state_round"] = float(self.state_round)  # which round's personal state this fit started from
        extra = {}
        if self.privacy is not None:
            self.privacy.commit(sample_rate)
            stats["epsilon"] = self.privacy.epsilon()
            extra["privacy"] = self.privacy.state()
        self.state_round = round_idx
        self.store.save(self.client_id, ClientState(round_idx, self.personal_state(), extra))
        stats["fit_seconds"] = time.perf_counter() - start
        return FitResult(self.client_id, get_arrays(self.model, self.shared_names), self.data.num_train, stats)

    def evaluate(self, shared: NamedArrays, round_idx: int) -> EvalResult:
        """Metrics on this client's test shard with the given shared tensors and this client's personal ones."""
        set_arrays(self.model, shared)
        info = {"state_round": float(self.state_round), "restored_from_round": float(self.restored_from_round)}
        if self.privacy is not None:
            info["epsilon"] = self.privacy.epsilon()
        return EvalResult(self.client_id, len(self.test_y), evaluate(self.model, self.test_x, self.test_y), info)

    def rollback(self, round_idx: int) -> int:
        """Return to the personal state saved by the newest fit up to ``round_idx`` (resuming from that round)."""
        self._restore(self.store.rollback(self.client_id, round_idx))
        return self.state_round

    def personal_state(self) -> NamedArrays:
        return get_arrays(self.model, self.personal_names)

    def load_personal_state(self, arrays: NamedArrays) -> None:
        unknown = set(arrays) - set(self.personal_names)
        if unknown:
            raise KeyError(f"client {self.client_id}: not personal tensors: {sorted(unknown)}")
        set_arrays(self.model, {k: np.asarray(v) for k, v in arrays.items()})
