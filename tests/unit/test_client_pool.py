"""A pool worker keeps one model and switches it between its virtual clients: each call sees exactly its own client's
samples and saved state, never what the client served before left behind."""

import dataclasses

import numpy as np
import pytest

from fedray.clients import federated_client
from fedray.clients.config import ClientConfig, ClientSpec
from fedray.clients.pool import ClientPool
from fedray.platform.messages import ClientData
from fedray.platform.modules.config import ModelConfig

SPEC = ClientSpec(
    ModelConfig(widths=[8, 16], shared=["encoder.*"]), ClientConfig(batch_size=16), seed=0, method="fedper"
)


def _data(seed: int, channels: int = 1, classes: int = 2) -> ClientData:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, 48)
    images = (rng.random((48, channels, 8, 8)) * 0.5 + labels[:, None, None, None] * 0.3).astype(np.float32)
    return ClientData(images[:32], labels[:32], images[32:], labels[32:], num_classes=classes)


def _shared(pool: ClientPool) -> dict[str, np.ndarray]:
    host = pool._client(0)
    return {n: v.detach().numpy().copy() for n, v in host.model.state_dict().items() if n in host.shared_names}


def test_one_model_per_worker_whatever_the_calls(monkeypatch):
    built = []
    real = federated_client.build_model
    monkeypatch.setattr(federated_client, "build_model", lambda *a: built.append(a) or real(*a))
    pool = ClientPool({k: _data(k) for k in range(4)}, SPEC)
    shared = _shared(pool)
    for k in range(4):
        pool.fit(k, shared, 1)
        pool.evaluate(k, shared, 1)
    assert len(built) == 1


def test_a_client_sees_its_own_state_not_the_previous_clients(tmp_path):
    """On one worker, client 1 evaluated right after client 0 trained scores as on a fresh worker; client 0, served
    again after client 1, scores as a fresh worker that reads client 0's saved state from disk."""
    spec = dataclasses.replace(SPEC, state_dir=str(tmp_path))
    members = {k: _data(k) for k in range(2)}
    busy = ClientPool(members, spec)
    shared = _shared(busy)
    trained = busy.fit(0, shared, 1).arrays
    assert busy.evaluate(1, shared, 1).metrics == ClientPool(members, SPEC).evaluate(1, shared, 1).metrics
    again = busy.evaluate(0, trained, 1).metrics
    assert again == ClientPool(members, spec).evaluate(0, trained, 1).metrics
    assert again != ClientPool(members, SPEC).evaluate(0, trained, 1).metrics  # the personal head did train


def test_a_client_whose_data_does_not_fit_the_model_is_refused():
    pool = ClientPool({0: _data(0), 1: _data(1, channels=3), 2: _data(2, classes=3)}, SPEC)
    pool.evaluate(0, _shared(pool), 1)
    for k, what in ((1, "3 channels"), (2, "3 classes")):
        with pytest.raises(ValueError, match=what):
            pool.evaluate(k, {}, 1)
    with pytest.raises(KeyError, match="not hosted"):
        pool.evaluate(7, {}, 1)
