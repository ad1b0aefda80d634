"""The ``federated`` workload's config schema (torch-free, so ``fedray config federated`` is fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from fedray.clients.config import ClientConfig, MethodName, PrivacyConfig
from fedray.platform.config import WorkloadConfig
from fedray.platform.data.config import DataConfig
from fedray.platform.errors import ConfigError, require
from fedray.platform.modules.config import ModelConfig
from fedray.server.config import ServerConfig, StrategyName


@dataclass
class FederatedConfig(WorkloadConfig):
    """Clients train on their shards; the parameter server aggregates the shared tensors with ``strategy``.

    The defaults are PFR's small-scale recipe: five clients, each forging 32×32 LFW faces with one artifact family
    (non-IID by forgery source), a 32-64-128 GroupNorm trunk, 40 rounds × 2 local epochs, batch 32, SGD lr 0.01
    with momentum 0.9. Any dataset, method and strategy can be chosen instead.

    A resumed run may change how long it runs and where (rounds, timeouts, evaluation interval, placement,
    resources, restarts, cache, privacy budget), but not what it computes.
    """

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "server.rounds",
        "server.round_timeout_s",
        "server.eval_every",
        "clients.placement",
        "clients.pool_size",
        "clients.num_cpus",
        "clients.num_gpus",
        "clients.startup_timeout_s",
        "clients.queue_timeout_s",
        "clients.max_restarts",
        "clients.state_cache",
        "privacy.epsilon_budget",
    )

    method: MethodName = "pfr"
    strategy: StrategyName = "fedavg"
    data: DataConfig = field(default_factory=lambda: DataConfig(name="forgery", image_size=32))
    model: ModelConfig = field(default_factory=lambda: ModelConfig(widths=[32, 64, 128]))
    clients: ClientConfig = field(default_factory=lambda: ClientConfig(epochs=2, lr=0.01, momentum=0.9))
    server: ServerConfig = field(default_factory=lambda: ServerConfig(rounds=40))
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def validate(self) -> None:
        c, s = self.clients, self.server
        positive = {
            "clients.num_clients": c.num_clients,
            "clients.epochs": c.epochs,
            "clients.batch_size": c.batch_size,
            "clients.num_threads": c.num_threads,
            "server.rounds": s.rounds,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if c.lr <= 0:
            raise ConfigError(f"clients.lr must be positive, got {c.lr}")
        if not 0 <= c.momentum < 1 or c.weight_decay < 0 or c.head_epochs < 0:
            raise ConfigError(
                f"clients.momentum must lie in [0, 1), clients.weight_decay and clients.head_epochs be 0 or more; "
                f"got {c.momentum}, {c.weight_decay} and {c.head_epochs}"
            )
        self._validate_limits()
        self.data.check()
        self.model.check()
        sampled = s.clients_per_round if s.clients_per_round is not None else c.num_clients
        if not 1 <= sampled <= c.num_clients:
            raise ConfigError(f"server.clients_per_round must lie in 1..{c.num_clients}, got {sampled}")
        if s.min_clients is not None and not 1 <= s.min_clients <= sampled:
            raise ConfigError(f"server.min_clients must lie in 1..{sampled} (clients per round), got {s.min_clients}")
        if s.round_timeout_s <= 0:
            raise ConfigError(f"server.round_timeout_s must be positive, got {s.round_timeout_s}")
        if s.eval_every < 0:
            raise ConfigError(f"server.eval_every must be 0 or more, got {s.eval_every}")
        if self.strategy == "fedprox" and c.prox_mu <= 0:
            raise ConfigError(f"strategy=fedprox needs clients.prox_mu > 0, got {c.prox_mu}")
        if self.strategy == "fedadam" and (len(s.adam_betas) != 2 or not all(0 <= b < 1 for b in s.adam_betas)):
            raise ConfigError(f"server.adam_betas must be two numbers in [0, 1), got {s.adam_betas}")
        if self.strategy == "trimmed_mean" and not 0 <= s.trim_fraction < 0.5:
            raise ConfigError(f"server.trim_fraction must lie in [0, 0.5), got {s.trim_fraction}")
        if self.strategy == "krum" and sampled < 2 * s.num_byzantine + 3:
            raise ConfigError(
                f"krum needs at least 2*server.num_byzantine+3 = {2 * s.num_byzantine + 3} clients per round, "
                f"got {sampled}"
            )
        if c.ditto_lambda < 0:
            raise ConfigError(f"clients.ditto_lambda must be 0 or more, got {c.ditto_lambda}")
        if c.max_restarts < 0 or c.state_cache < 1:
            raise ConfigError(
                f"clients.max_restarts must be 0 or more and clients.state_cache at least 1, "
                f"got {c.max_restarts} and {c.state_cache}"
            )
        self._validate_privacy()
        if self.model.shared is not None and not self.model.shared and self.method != "local":
            raise ConfigError("model.shared is empty: nothing would be aggregated (use method=local for that)")

    def _validate_limits(self) -> None:
        """Timeouts, bounds and optional counts: positive when set."""
        c, s = self.clients, self.server
        adam = {"server.adam_lr": s.adam_lr, "server.adam_tau": s.adam_tau} if self.strategy == "fedadam" else {}
        require("positive", {"clients.pool_size": c.pool_size, "server.max_concurrent": s.max_concurrent,
                             "clients.queue_timeout_s": c.queue_timeout_s, "server.max_update_norm": s.max_update_norm,
                             "clients.startup_timeout_s": c.startup_timeout_s, **adam})  # fmt: skip
        require("0 or more", {"server.num_byzantine": s.num_byzantine})

    def _validate_privacy(self) -> None:
        p = self.privacy
        if not p.enabled:
            return
        if p.noise_multiplier <= 0 or p.max_grad_norm <= 0:
            raise ConfigError(
                f"privacy.noise_multiplier and privacy.max_grad_norm must be positive, "
                f"got {p.noise_multiplier} and {p.max_grad_norm}"
            )
        if not 0 < p.delta < 1:
            raise ConfigError(f"privacy.delta must lie in (0, 1), got {p.delta}")
        if p.epsilon_budget is not None and p.epsilon_budget <= 0:
            raise ConfigError(f"privacy.epsilon_budget must be positive, got {p.epsilon_budget}")
        if self.strategy == "fedprox":
            raise ConfigError(
                "privacy.enabled with strategy=fedprox: per-example gradients would leave out the proximal term; "
                "use another strategy"
            )
