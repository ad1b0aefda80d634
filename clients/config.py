"""Client-side configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fedray.platform.modules.config import ModelConfig

MethodName = Literal["fedavg", "local", "fedper", "fedrep", "fedbn", "pfr"]  # see fedray.clients.methods


@dataclass
class ClientConfig:
    """How many clients, where they live, and how each trains locally.

    ``placement``: ``actor`` gives every client its own actor (cross-silo: a client's state never leaves its
    process); ``pool`` runs the clients as virtual clients on ``pool_size`` worker actors (default: one per CPU), for
    simulations with more clients than cores. ``num_cpus`` / ``num_gpus`` are per actor; left empty, the runtime's
    CPUs (at most one each) and GPUs are divided evenly, so that all actors can be placed at once.
    """

    num_clients: int = 5
    placement: Literal["actor", "pool"] = "actor"
    pool_size: int | None = None
    epochs: int = 1
    head_epochs: int = 2  # fedrep: epochs on the personal head (encoder frozen) before the encoder's epochs
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    prox_mu: float = 0.01  # strategy=fedprox: weight μ of (μ/2)·‖w − w_global‖² over the shared parameters
    num_threads: int = 1  # torch intra-op threads per client process
    num_cpus: float | None = None
    num_gpus: float | None = None
    startup_timeout_s: float = 300.0  # client actors not constructed by then fail the run with a clear message


@dataclass(frozen=True)
class ClientSpec:
    """What every client of one run shares: model sizes, training settings, seed, method, and whether FedProx's
    proximal term applies (``strategy=fedprox``)."""

    model: ModelConfig
    train: ClientConfig
    seed: int
    method: MethodName = "fedavg"
    proximal: bool = False
