"""The ``federated`` workload's config schema (torch-free, so ``fedray config federated`` is fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fedray.clients.config import ClientConfig, MethodName
from fedray.platform.config import WorkloadConfig
from fedray.platform.data.config import DataConfig
from fedray.platform.errors import ConfigError
from fedray.platform.modules.config import ModelConfig
from fedray.server.config import ServerConfig, StrategyName


@dataclass
class FederatedConfig(WorkloadConfig):
    """Clients train on their shards; the parameter server aggregates the shared tensors with ``strategy``."""

    method: MethodName = "fedavg"
    strategy: StrategyName = "fedavg"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    clients: ClientConfig = field(default_factory=ClientConfig)
    server: ServerConfig = field(default_factory=ServerConfig)

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
        if self.model.shared is not None and not self.model.shared and self.method != "local":
            raise ConfigError("model.shared is empty: nothing would be aggregated (use method=local for that)")
