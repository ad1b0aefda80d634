"""Shared test set-up.

Unit tests run in the inline runtime (no Ray). Integration tests marked ``ray`` share one local Ray cluster for the
whole session (``num_cpus=2``), bound to loopback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # every Ray process listens on 127.0.0.1
os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))  # for the helpers module


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray cluster shared by every integration test (started on first use)."""
    ray = pytest.importorskip("ray")
    import helpers

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    # Test-only actor classes live in tests/helpers.py, which Ray workers cannot import: ship them by value.
    ray.cloudpickle.register_pickle_by_value(helpers)
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture
def tiny_overrides(tmp_path: Path) -> list[str]:
    """A federated run that takes a second or two: 3 clients, small images, a small model, 3 rounds."""
    return [
        "method=fedavg",
        "data.name=digits",
        "data.image_size=8",
        "clients.epochs=1",
        "data.max_samples=600",
        "model.widths=[8,16]",
        "clients.num_clients=3",
        "server.rounds=3",
        "clients.lr=0.1",
        f"run.root={tmp_path / 'runs'}",
    ]
