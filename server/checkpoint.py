"""The parameter server's checkpoint: everything a resumed run needs to continue exactly where it stopped.

One safetensors file per run, replaced atomically after every round: the global shared tensors under their own
names (so the file also loads as plain weights), the server optimizer's state (FedAdam's moments) under
``server_opt/``, and as metadata the round, the strategy and the per-client failure and rejection counters.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from fedray.platform.errors import DataError
from fedray.platform.io import load_arrays, read_metadata, save_arrays
from fedray.platform.messages import NamedArrays

OPTIMIZER_PREFIX = "server_opt/"


@dataclass
class ServerCheckpoint:
    round: int
    strategy: str
    weights: NamedArrays
    optimizer: NamedArrays = field(default_factory=dict)
    counters: dict[str, dict[int, int]] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        arrays = {**self.weights, **{OPTIMIZER_PREFIX + k: v for k, v in self.optimizer.items()}}
        metadata = {"round": str(self.round), "strategy": self.strategy, "counters": json.dumps(self.counters)}
        save_arrays(path, arrays, metadata)

    @classmethod
    def load(cls, path: str | Path) -> ServerCheckpoint:
        arrays, metadata = load_arrays(path), read_metadata(path)
        try:
            round_idx, strategy = int(metadata["round"]), metadata["strategy"]
            counters = {
                kind: {int(k): int(v) for k, v in by_client.items()}
                for kind, by_client in json.loads(metadata.get("counters", "{}")).items()
            }
        except (KeyError, ValueError, AttributeError) as exc:
            raise DataError(f"{path} is not a server checkpoint (metadata: {exc})") from None
        weights = {k: v for k, v in arrays.items() if not k.startswith(OPTIMIZER_PREFIX)}
        optimizer = {k[len(OPTIMIZER_PREFIX) :]: v for k, v in arrays.items() if k.startswith(OPTIMIZER_PREFIX)}
        return cls(round_idx, strategy, weights, optimizer, counters)
