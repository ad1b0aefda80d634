"""Clients' personal state between rounds: versions, rollback for resume, the bounded cache of pool workers."""

import numpy as np
import pytest

from fedray.clients.state_store import ClientState, ClientStateStore


def _state(round_idx: int, value: float) -> ClientState:
    return ClientState(round_idx, {"head.w": np.full(3, value, dtype=np.float32)}, {"privacy": [[1.0, 0.1, round_idx]]})


@pytest.mark.parametrize("on_disk", [True, False])
def test_newest_version_is_loaded_and_rollback_returns_to_an_earlier_round(tmp_path, on_disk):
    store = ClientStateStore(tmp_path if on_disk else None)
    assert store.load(7) is None
    for r in (1, 3, 4):
        store.save(7, _state(r, float(r)))
    fresh = ClientStateStore(tmp_path) if on_disk else store  # a restarted process sees what was saved
    newest = fresh.load(7)
    assert newest.round == 4 and newest.arrays["head.w"][0] == 4.0 and newest.extra == {"privacy": [[1.0, 0.1, 4]]}
    back = fresh.rollback(7, 3)
    assert back.round == 3 and back.arrays["head.w"][0] == 3.0
    assert fresh.rollback(7, 2) is None  # only the two newest versions are kept: round 1 is gone
    if on_disk:
        assert not any((tmp_path / "client_7").iterdir())


def test_only_two_versions_stay_on_disk(tmp_path):
    store = ClientStateStore(tmp_path)
    for r in range(1, 6):
        store.save(0, _state(r, r))
    assert sorted(p.name for p in (tmp_path / "client_0").iterdir()) == [
        "round_000004.safetensors",
        "round_000005.safetensors",
    ]


def test_memory_holds_at_most_cache_size_states_and_the_rest_reload_from_disk(tmp_path):
    store = ClientStateStore(tmp_path, cache_size=3)
    for client in range(10):
        store.save(client, _state(1, client))
    assert store.cached() == 3
    assert all(store.load(c).arrays["head.w"][0] == c for c in range(10))
    assert store.cached() == 3
