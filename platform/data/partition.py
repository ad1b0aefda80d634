"""Split a dataset across federated clients: IID, or label-skewed by a Dirichlet prior per class.

Each client's shard is then split into its own train and test indices, so a client is evaluated on data drawn from
its own distribution (the setting personalized federated learning is about).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.errors import ConfigError
from fedray.platform.messages import ClientData
from fedray.platform.seeding import numpy_rng


@dataclass(frozen=True)
class ClientShard:
    """Indices into the full dataset that one client trains and tests on."""

    client_id: int
    train: np.ndarray
    test: np.ndarray


def iid_partition(num_samples: int, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """A random permutation cut into ``num_clients`` near-equal parts."""
    return [np.sort(part) for part in np.array_split(rng.permutation(num_samples), num_clients)]


def dirichlet_partition(
    labels: np.ndarray,
    num_clients: int,
    alpha: float,
    rng: np.random.Generator,
    min_size: int = 10,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """For each class, client proportions ~ Dir(alpha·1); redraw until every client holds ``min_size`` samples."""
    if alpha <= 0:
        raise ConfigError(f"data.alpha must be positive, got {alpha}")
    if num_clients * min_size > len(labels):
        raise ConfigError(
            f"{len(labels)} samples cannot give {num_clients} clients {min_size} samples each; "
            "lower clients.num_clients or data.min_client_samples"
        )
    classes = np.unique(labels)
    for _ in range(max_tries):
        parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for cls in classes:
            members = rng.permutation(np.flatnonzero(labels == cls))
            cuts = (np.cumsum(rng.dirichlet(np.full(num_clients, alpha)))[:-1] * len(members)).astype(int)
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].append(chunk)
        shards = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(s) for s in shards) >= min_size:
            return shards
    raise ConfigError(
        f"no Dirichlet split with alpha={alpha} gave every one of {num_clients} clients {min_size} samples "
        f"in {max_tries} draws; raise data.alpha or lower data.min_client_samples"
    )


def make_client_shards(
    labels: np.ndarray,
    num_clients: int,
    scheme: str,
    alpha: float,
    test_fraction: float,
    seed: int,
    min_size: int = 10,
) -> list[ClientShard]:
    """Partition by ``scheme`` ('iid' or 'dirichlet'), then hold out ``test_fraction`` of each shard for testing."""
    if not 0 < test_fraction < 1:
        raise ConfigError(f"data.test_fraction must lie in (0, 1), got {test_fraction}")
    rng = numpy_rng(seed, "partition")
    if scheme == "iid":
        parts = iid_partition(len(labels), num_clients, rng)
    elif scheme == "dirichlet":
        parts = dirichlet_partition(labels, num_clients, alpha, rng, min_size=min_size)
    else:
        raise ConfigError(f"unknown partition scheme {scheme!r}; use 'iid' or 'dirichlet'")
    shards = []
    for client_id, part in enumerate(parts):
        shuffled = rng.permutation(part)
        n_test = max(1, round(test_fraction * len(part)))
        shards.append(ClientShard(client_id, np.sort(shuffled[n_test:]), np.sort(shuffled[:n_test])))
    return shards


def shard_data(dataset: ImageArrays, shard: ClientShard) -> ClientData:
    """The arrays of one client's shard, ready to send to its actor."""
    return ClientData(
        dataset.images[shard.train],
        dataset.labels[shard.train],
        dataset.images[shard.test],
        dataset.labels[shard.test],
        dataset.num_classes,
    )
