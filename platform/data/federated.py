"""The per-client data of a federated run, whatever the dataset: what the driver sends to each client actor."""

from __future__ import annotations

from dataclasses import dataclass

from fedray.platform.data.config import DataConfig
from fedray.platform.data.load import load_dataset
from fedray.platform.data.partition import make_client_shards, shard_data
from fedray.platform.messages import ClientData


@dataclass(frozen=True)
class FederatedData:
    clients: list[ClientData]
    in_channels: int
    num_classes: int
    name: str


def federated_data(cfg: DataConfig, num_clients: int, seed: int) -> FederatedData:
    """Self-blended forgeries (one family per client), or an image dataset split IID / by a Dirichlet prior."""
    if cfg.name == "forgery":
        from fedray.platform.data.forgery import forgery_clients

        return FederatedData(forgery_clients(cfg.forgery, num_clients, cfg.image_size, seed), 1, 2, "forgery")
    data = load_dataset(cfg, seed)
    shards = make_client_shards(
        data.labels, num_clients, cfg.partition, cfg.alpha, cfg.test_fraction, seed, cfg.min_client_samples
    )
    return FederatedData([shard_data(data, s) for s in shards], data.in_channels, data.num_classes, data.name)
