"""Client-side configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fedray.platform.modules.config import ModelConfig

MethodName = Literal["fedavg", "local", "fedper", "fedrep", "fedbn", "ditto", "pfr"]  # see fedray.clients.methods


@dataclass
class ClientConfig:
    """How many clients, where they live, and how each trains locally.

    ``placement``: ``actor`` gives every client its own actor (cross-silo: a client's state never leaves its
    process); ``pool`` runs the clients as virtual clients on ``pool_size`` worker actors (default: one per CPU), for
    simulations with more clients than cores. ``num_cpus`` / ``num_gpus`` are per actor; left empty, the runtime's
    CPUs (at most one each) and GPUs are divided evenly, so that all actors can be placed at once.

    The actors' resources are reserved together (a Ray placement group): a federation starts with all of its clients
    or waits for them, never holding half of them while another job holds the rest. When the reservation is not
    granted within ``startup_timeout_s``, a cluster too small for it is an error; a cluster busy with other work is
    waited for (queued) up to ``queue_timeout_s`` (empty: as long as it takes).
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
    ditto_lambda: float = 0.1  # method=ditto: weight λ of (λ/2)·‖v_k − w‖² pulling the personal model to the global
    num_threads: int = 1  # torch intra-op threads per client process
    num_cpus: float | None = None
    num_gpus: float | None = None
    startup_timeout_s: float = 300.0  # client actors not constructed by then fail the run with a clear message
    queue_timeout_s: float | None = None  # how long to wait for a busy cluster to free the clients' resources
    max_restarts: int = 3  # Ray restarts a crashed client actor / pool worker this often; it reloads saved state
    state_cache: int = 64  # personal states a pool worker keeps in memory; the rest wait on disk


@dataclass
class PrivacyConfig:
    """Differential privacy of the shared layers (opacus DP-SGD), per client.

    With ``enabled`` each client samples its minibatches by Poisson sampling, clips every example's gradient of the
    shared parameters to ``max_grad_norm`` and adds Gaussian noise of ``noise_multiplier × max_grad_norm``; personal
    parameters never leave the client and train without noise. An RDP accountant per client persists across rounds
    and reports ε at ``delta``; a client whose next round would exceed ``epsilon_budget`` declines to train.
    """

    enabled: bool = False
    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5
    epsilon_budget: float | None = None


@dataclass(frozen=True)
class ClientSpec:
    """What every client of one run shares: model sizes, training settings, seed, method, whether FedProx's
    proximal term applies (``strategy=fedprox``), privacy, and the folder of saved personal states (``None``:
    kept in memory only)."""

    model: ModelConfig
    train: ClientConfig
    seed: int
    method: MethodName = "fedavg"
    proximal: bool = False
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    state_dir: str | None = None
