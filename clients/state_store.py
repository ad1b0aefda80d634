"""Where a client's personal state lives between rounds: versioned safetensors files, with a bounded memory cache.

A client's personal state is everything that must survive the round and never goes to the server: its personal
tensors and small JSON state (the privacy accountant's history). After every local fit the client saves a version
tagged with that round under ``<root>/client_<k>/round_<r>.safetensors`` (written atomically), so

* a client actor that Ray restarts after a crash reloads its newest version in its constructor;
* a pool worker serving many virtual clients keeps only ``cache_size`` states in memory, the rest on disk;
* ``resume`` rolls every client back to the round the server checkpoint holds (:meth:`rollback`). The driver commits
  round ``r`` before it starts round ``r + 1``, so a client is at most one fit ahead of the server checkpoint; keeping
  each client's two newest versions therefore always keeps the one a resume needs.

Without a ``root`` (unit tests, throw-away runs) versions stay in memory, with the same behaviour.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedray.platform.io import load_arrays, read_metadata, save_arrays
from fedray.platform.messages import NamedArrays

KEEP_VERSIONS = 2
_VERSION = re.compile(r"round_(\d+)\.safetensors")


@dataclass
class ClientState:
    """One saved version: the round whose fit produced it, the personal tensors, and JSON-able extra state."""

    round: int
    arrays: NamedArrays
    extra: dict[str, Any] = field(default_factory=dict)


class ClientStateStore:
    def __init__(self, root: str | Path | None, cache_size: int = 1) -> None:
        self.root = Path(root) if root is not None else None
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[int, ClientState] = OrderedDict()  # newest version per client, least recent first
        self._memory: dict[int, dict[int, ClientState]] = {}  # all kept versions, when there is no root

    def _folder(self, client_id: int) -> Path:
        assert self.root is not None
        return self.root / f"client_{client_id}"

    def _rounds_on_disk(self, client_id: int) -> list[int]:
        folder = self._folder(client_id)
        if not folder.is_dir():
            return []
        return sorted(int(m.group(1)) for p in folder.iterdir() if (m := _VERSION.fullmatch(p.name)))

    def _remember(self, client_id: int, state: ClientState) -> None:
        self._cache[client_id] = state
        self._cache.move_to_end(client_id)
        if self.root is not None:
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def save(self, client_id: int, state: ClientState) -> None:
        """Keep ``state`` as the client's newest version and drop all but its ``KEEP_VERSIONS`` newest."""
        if self.root is None:
            versions = self._memory.setdefault(client_id, {})
            versions[state.round] = state
            for old in sorted(versions)[:-KEEP_VERSIONS]:
                del versions[old]
        else:
            path = self._folder(client_id) / f"round_{state.round:06d}.safetensors"
            save_arrays(path, state.arrays, {"round": str(state.round), "extra": json.dumps(state.extra)})
            for old in self._rounds_on_disk(client_id)[:-KEEP_VERSIONS]:
                (self._folder(client_id) / f"round_{old:06d}.safetensors").unlink(missing_ok=True)
        self._remember(client_id, state)

    def load(self, client_id: int) -> ClientState | None:
        """The client's newest version, or None for a client that never finished a fit."""
        if client_id in self._cache:
            self._cache.move_to_end(client_id)
            return self._cache[client_id]
        if self.root is None:
            versions = self._memory.get(client_id, {})
            return versions[max(versions)] if versions else None
        rounds = self._rounds_on_disk(client_id)
        if not rounds:
            return None
        path = self._folder(client_id) / f"round_{rounds[-1]:06d}.safetensors"
        state = ClientState(rounds[-1], load_arrays(path), json.loads(read_metadata(path).get("extra", "{}")))
        self._remember(client_id, state)
        return state

    def rollback(self, client_id: int, round_idx: int) -> ClientState | None:
        """Forget the client's versions newer than ``round_idx`` (a resume from that round); its newest is returned."""
        self._cache.pop(client_id, None)
        if self.root is None:
            versions = self._memory.get(client_id, {})
            for newer in [r for r in versions if r > round_idx]:
                del versions[newer]
        else:
            for newer in [r for r in self._rounds_on_disk(client_id) if r > round_idx]:
                (self._folder(client_id) / f"round_{newer:06d}.safetensors").unlink()
        return self.load(client_id)

    def cached(self) -> int:
        """How many client states are held in memory right now (bounded by ``cache_size`` with a root)."""
        return len(self._cache)
