"""Server-side configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

StrategyName = Literal["fedavg", "fedprox", "fedadam", "median", "trimmed_mean", "krum"]


@dataclass
class ServerConfig:
    """Rounds, sampling, quorum and update validation.

    A round waits at most ``round_timeout_s`` for the sampled clients and aggregates when at least ``min_clients``
    valid updates arrived (default: half of the sampled clients, rounded up); otherwise the global tensors stay as
    they were and the round is recorded as short of quorum.
    """

    rounds: int = 10
    clients_per_round: int | None = None  # default: every client
    min_clients: int | None = None
    round_timeout_s: float = 600.0
    max_concurrent: int | None = None  # calls in flight at once; default: as many as the clients' CPUs allow
    max_update_norm: float | None = None  # L2 bound on (client − global) over all shared tensors
    eval_every: int = 1  # evaluate every k rounds and after the last; 0: only after the last
    trim_fraction: float = 0.2  # trimmed_mean: fraction cut at each end
    num_byzantine: int = 1  # krum: clients assumed malicious
    adam_lr: float = 0.01  # fedadam: server learning rate η
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.99])  # fedadam: β1, β2
    adam_tau: float = 1e-3  # fedadam: adaptivity τ
    num_cpus: float = 0.0  # the server mostly waits; it needs no CPU reserved for itself
