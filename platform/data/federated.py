"""The per-client data of a federated run, whatever the dataset: what the driver sends to each client actor."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from fedray.platform.data.config import DataConfig
from fedray.platform.data.load import load_dataset
from fedray.platform.data.partition import make_client_shards, shard_data
from fedray.platform.errors import ConfigError
from fedray.platform.messages import ClientData


@dataclass(frozen=True)
class FederatedData:
    """Every client's samples, what the model must accept, and the image files that could not be read (counted,
    with up to five ``"path: reason"`` examples, so a run on a partly broken folder goes on and still says so)."""

    clients: list[ClientData]
    in_channels: int
    num_classes: int
    name: str
    skipped_images: int = 0
    skipped_examples: list[str] = field(default_factory=list)


def federated_data(cfg: DataConfig, num_clients: int, seed: int) -> FederatedData:
    """Self-blended forgeries, a real/fake image folder, or an image dataset split IID / by a Dirichlet prior."""
    if cfg.name == "forgery":
        from fedray.platform.data.forgery import forgery_clients, forgery_faces

        faces, skipped = forgery_faces(cfg.forgery, cfg.image_size)
        clients = forgery_clients(cfg.forgery, num_clients, cfg.image_size, seed, faces=faces)
        return FederatedData(clients, 1, 2, "forgery", skipped.count, skipped.examples)
    if cfg.name == "folder":
        from fedray.platform.data.folder import folder_clients

        clients, skipped = folder_clients(cfg, num_clients, seed)
        return FederatedData(clients, cfg.folder.channels, 2, "folder", skipped.count, skipped.examples)
    data = load_dataset(cfg, seed)
    shards = make_client_shards(
        data.labels, num_clients, cfg.partition, cfg.alpha, cfg.test_fraction, seed, cfg.min_client_samples
    )
    return FederatedData([shard_data(data, s) for s in shards], data.in_channels, data.num_classes, data.name)


def silo_data(cfg: DataConfig, num_clients: int, client_id: int, seed: int) -> FederatedData:
    """What one silo trains and tests on (the only entry of ``clients``): client ``client_id``'s shard of the
    federation's dataset, or with ``data.scope=all`` every sample at ``data.path`` (the silo's own data, which no
    other client shares, so nothing is partitioned away)."""
    if not 0 <= client_id < num_clients:
        raise ConfigError(f"client id {client_id} is outside 0..{num_clients - 1} (clients.num_clients={num_clients})")
    own = cfg.scope == "all"
    data = federated_data(cfg, 1 if own else num_clients, seed)
    return dataclasses.replace(data, clients=[data.clients[0 if own else client_id]])
