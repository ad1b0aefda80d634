"""Federated methods: which architecture, which tensors are shared, and how a client trains locally each round.

All methods train the same conv trunk for the same local epochs, so they differ only in what they aggregate and how:
``fedavg`` shares the whole classifier; ``local`` shares nothing (no federation); ``fedper`` shares the encoder and
keeps the head personal (trained jointly); ``fedrep`` shares the encoder too, but each round first trains the head
with the encoder frozen (``clients.head_epochs``), then the encoder with the head frozen (``clients.epochs``);
``fedbn`` shares everything except the normalisation layers; ``ditto`` federates a global model by FedAvg and keeps
a personal model pulled towards it (:mod:`fedray.platform.modules.ditto`); ``pfr`` is the personalized forgery
representation (:mod:`fedray.platform.modules.pfr`), sharing the trunk and its shared branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fedray.clients.config import ClientConfig
from fedray.clients.training import Batches, EpochData, train_epochs
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.ditto import DITTO_SHARED
from fedray.platform.modules.pfr import PFR_SHARED

MakeOptimizer = Callable[[list[nn.Parameter]], torch.optim.Optimizer]
Penalty = Callable[[], torch.Tensor]


@dataclass(frozen=True)
class Method:
    name: str
    architecture: str
    shared: tuple[str, ...]
    head_prefix: str = "head."  # fedrep: the personal head trained first with the encoder frozen


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("fedavg", "cnn", ("*",)),
        Method("local", "cnn", ()),
        Method("fedper", "cnn", ("encoder.*",)),
        Method("fedrep", "cnn", ("encoder.*",)),
        Method("fedbn", "cnn", ("encoder.stages.*.conv.*", "head.*")),
        Method("ditto", "ditto", tuple(DITTO_SHARED)),
        Method("pfr", "pfr", tuple(PFR_SHARED)),
    )
}


def shared_patterns(method: Method, model: ModelConfig) -> tuple[str, ...]:
    """The configured ``model.shared`` patterns, or the method's own split when none are configured."""
    return tuple(model.shared) if model.shared is not None else method.shared


def sgd(params: list[nn.Parameter], cfg: ClientConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def pull_towards(params: list[nn.Parameter], anchors: list[torch.Tensor], mu: float) -> Penalty:
    """(μ/2)·Σ‖w − a‖² over ``params`` paired with fixed ``anchors`` (FedProx's and Ditto's proximal term)."""
    pairs = list(zip(params, anchors, strict=True))

    def term() -> torch.Tensor:
        return 0.5 * mu * sum(((p - a) ** 2).sum() for p, a in pairs)

    return term


def snapshot(params: list[nn.Parameter]) -> list[torch.Tensor]:
    """Detached copies of the parameters' values right now (the anchors of a proximal term)."""
    return [p.detach().clone() for p in params]


@dataclass
class LocalTraining:
    """What a round of local training needs besides the model: its data, how to batch it, how to build optimizers
    (plain SGD, or DP-SGD on shared parameters) and an optional proximal penalty on the shared parameters."""

    cfg: ClientConfig
    data: EpochData
    batches: Batches
    make_optimizer: MakeOptimizer
    penalty: Penalty | None = None

    def train(
        self, model: nn.Module, params: list[nn.Parameter], epochs: range, penalty: Penalty | None = None
    ) -> dict[str, float]:
        return train_epochs(model, self.data, self.make_optimizer(params), epochs, self.batches, penalty)


def _train_jointly(method: Method, model: nn.Module, run: LocalTraining) -> dict[str, float]:
    return run.train(model, list(model.parameters()), range(run.cfg.epochs), run.penalty)


def _train_fedrep(method: Method, model: nn.Module, run: LocalTraining) -> dict[str, float]:
    """The personal head with the encoder frozen, then the encoder with the head frozen (Collins et al., 2021)."""
    head = [p for n, p in model.named_parameters() if n.startswith(method.head_prefix)]
    body = [p for n, p in model.named_parameters() if not n.startswith(method.head_prefix)]
    cfg = run.cfg
    phases = ((head, body, range(cfg.head_epochs)), (body, head, range(cfg.head_epochs, cfg.head_epochs + cfg.epochs)))
    stats: dict[str, float] = {}
    for trained, frozen, epochs in phases:
        for p in frozen:
            p.requires_grad_(False)
        stats = run.train(model, trained, epochs, run.penalty)
        for p in frozen:
            p.requires_grad_(True)
    return stats


def _train_ditto(method: Method, model: nn.Module, run: LocalTraining) -> dict[str, float]:
    """Ditto (Li et al., 2021, Algorithm 1): the global model w trains on the local loss as in FedAvg; the personal
    model v_k trains on the local loss plus (λ/2)·‖v_k − w^t‖², with w^t the global model received this round."""
    global_model, personal_model = model.global_model, model.personal_model
    received = snapshot(list(global_model.parameters()))  # w^t, before the global model trains
    personal_pull = pull_towards(list(personal_model.parameters()), received, run.cfg.ditto_lambda)
    stats = run.train(global_model, list(global_model.parameters()), range(run.cfg.epochs), run.penalty)
    personal = run.train(personal_model, list(personal_model.parameters()), range(run.cfg.epochs), personal_pull)
    return {**stats, "personal_loss": personal["train_loss"]}


TRAINERS: dict[str, Callable[[Method, nn.Module, LocalTraining], dict[str, float]]] = {
    "fedrep": _train_fedrep,
    "ditto": _train_ditto,
}


def local_update(method: Method, model: nn.Module, run: LocalTraining) -> dict[str, float]:
    """One round of local training as ``method`` prescribes; returns the mean loss of the last phase."""
    return TRAINERS.get(method.name, _train_jointly)(method, model, run)
