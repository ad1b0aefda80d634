"""Federated methods: which architecture, which tensors are shared, and how a client trains locally each round.

All methods train the same conv trunk for the same local epochs, so they differ only in what they aggregate and how:
``fedavg`` shares the whole classifier; ``local`` shares nothing (no federation); ``fedper`` shares the encoder and
keeps the head personal (trained jointly); ``fedrep`` shares the encoder too, but each round first trains the head
with the encoder frozen (``clients.head_epochs``), then the encoder with the head frozen (``clients.epochs``);
``fedbn`` shares everything except the normalisation layers; ``pfr`` is the personalized forgery representation
(:mod:`fedray.platform.modules.pfr`), sharing the trunk and its shared branch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from fedray.clients.config import ClientConfig
from fedray.clients.training import EpochData, train_epochs
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.pfr import PFR_SHARED


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
        Method("pfr", "pfr", tuple(PFR_SHARED)),
    )
}


def shared_patterns(method: Method, model: ModelConfig) -> tuple[str, ...]:
    """The configured ``model.shared`` patterns, or the method's own split when none are configured."""
    return tuple(model.shared) if model.shared is not None else method.shared


def _sgd(params: list[nn.Parameter], cfg: ClientConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def proximal_term(model: nn.Module, names: list[str], mu: float) -> Callable[[], torch.Tensor]:
    """FedProx: (μ/2)·Σ‖w − w_global‖² over the named (shared) parameters, against their values right now."""
    params = dict(model.named_parameters())
    anchors = {n: params[n].detach().clone() for n in names if n in params}

    def term() -> torch.Tensor:
        return 0.5 * mu * sum(((params[n] - a) ** 2).sum() for n, a in anchors.items())

    return term


def local_update(
    method: Method,
    model: nn.Module,
    data: EpochData,
    cfg: ClientConfig,
    generator: torch.Generator,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> dict[str, float]:
    """One round of local training as ``method`` prescribes; returns the mean loss of the last phase."""
    if method.name != "fedrep":
        optimizer = _sgd(list(model.parameters()), cfg)
        return train_epochs(model, data, optimizer, range(cfg.epochs), cfg.batch_size, generator, penalty)
    head = [p for n, p in model.named_parameters() if n.startswith(method.head_prefix)]
    body = [p for n, p in model.named_parameters() if not n.startswith(method.head_prefix)]
    phases = ((head, body, range(cfg.head_epochs)), (body, head, range(cfg.head_epochs, cfg.head_epochs + cfg.epochs)))
    stats: dict[str, float] = {}
    for trained, frozen, epochs in phases:
        for p in frozen:
            p.requires_grad_(False)
        stats = train_epochs(model, data, _sgd(trained, cfg), epochs, cfg.batch_size, generator, penalty)
        for p in frozen:
            p.requires_grad_(True)
    return stats
