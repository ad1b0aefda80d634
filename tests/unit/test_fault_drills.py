"""Fault drills with real clients and data: poisoned updates, and a driver killed mid-run then resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import corrupted_client

from fedray.clients.config import ClientSpec
from fedray.clients.federated_client import FederatedClient
from fedray.cluster.launch import resolve_config
from fedray.cluster.runtime import InlineRuntime
from fedray.platform.data.federated import federated_data
from fedray.platform.io import load_arrays
from fedray.platform.modules.build import build_model
from fedray.platform.params import get_arrays
from fedray.platform.seeding import derive_seed
from fedray.server.parameter_server import ParameterServer

DRILL = [
    "method=fedavg",
    "data.name=digits",
    "clients.epochs=1",
    "data.image_size=8",
    "data.partition=iid",
    "model.widths=[8,16]",
    "clients.num_clients=6",
    "clients.lr=0.1",
    "server.rounds=12",
]


def _metrics(summary: dict) -> list[dict]:
    """Per-client results without ``restored_from_round`` (a resumed client was, by definition, restored)."""
    return [{k: v for k, v in c.items() if k != "restored_from_round"} for c in summary["per_client"]]


def _honest_accuracy(strategy: str, attackers: dict[int, str], *extra: str) -> tuple[float, dict]:
    """Mean test accuracy of the clients that are honest in the attacked runs, after the drill's rounds, and the
    server's counters."""
    cfg = resolve_config("federated", None, [*DRILL, f"strategy={strategy}", *extra])
    data = federated_data(cfg.data, cfg.clients.num_clients, cfg.seed)
    spec = ClientSpec(cfg.model, cfg.clients, cfg.seed, cfg.method)
    runtime = InlineRuntime()
    clients = [
        runtime.spawn(corrupted_client(attackers[k]) if k in attackers else FederatedClient, k, d, spec)
        for k, d in enumerate(data.clients)
    ]
    torch.manual_seed(derive_seed(cfg.seed, "model-init"))
    initial = get_arrays(build_model("cnn", cfg.model, 1, 10), clients[0].instance.shared_names)
    server = ParameterServer(clients, initial, cfg.server, strategy, runtime, cfg.seed)
    for r in range(1, cfg.server.rounds + 1):
        server.run_round(r, evaluate=False)
    honest = [e for e in server.evaluate(cfg.server.rounds) if e.client_id not in ATTACK]
    return float(np.mean([e.metrics["acc"] for e in honest])), server.counters()


ATTACK = {1: "nan", 4: "scaled"}


def test_nan_is_rejected_and_a_100x_update_is_neutralised_by_robust_aggregation():
    """Each defence against its own clean run (same strategy, no attackers), on the same honest clients."""
    rounds = 12
    clean = {s: _honest_accuracy(s, {})[0] for s in ("fedavg", "median", "trimmed_mean")}
    assert min(clean.values()) > 0.8  # the drill only means something if the clean runs learn
    for strategy in ("median", "trimmed_mean"):
        attacked, counters = _honest_accuracy(strategy, ATTACK)
        assert counters["rejections"] == {1: rounds}  # the NaN client, every round
        assert attacked >= clean[strategy] - 0.02, f"{strategy}: {attacked:.3f} vs clean {clean[strategy]:.3f}"
    bounded, counters = _honest_accuracy("fedavg", ATTACK, "server.max_update_norm=50")
    assert counters["rejections"] == {1: rounds, 4: rounds} and bounded >= clean["fedavg"] - 0.02
    unprotected, _ = _honest_accuracy("fedavg", ATTACK)  # plain averaging lets the scaled update through
    assert unprotected < clean["fedavg"] - 0.3


def _driver(root, *extra: str) -> subprocess.Popen:
    overrides = ["cluster.mode=inline", "method=pfr", "data.name=forgery", "data.forgery.train_per_class=32",
                 "data.forgery.test_per_class=16", "model.widths=[8,16]", "clients.num_clients=3",
                 "server.rounds=6", f"run.root={root}", *extra]  # fmt: skip
    cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", "federated", *overrides]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _rounds_logged(run_dir) -> int:
    log = run_dir / "metrics.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.mark.slow
def test_driver_killed_mid_run_then_resumed_ends_like_an_uninterrupted_run(tmp_path):
    whole = _driver(tmp_path, "run.name=whole")
    killed = _driver(tmp_path, "run.name=killed")
    run_dir = tmp_path / "federated" / "killed"
    deadline = time.time() + 120
    while _rounds_logged(run_dir) < 2 and killed.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert whole.wait(timeout=300) == 0, whole.stderr.read()
    assert 2 <= _rounds_logged(run_dir) < 6  # it really died mid-run

    resumed = _driver(tmp_path, "run.name=killed", "resume=true")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    summary = json.loads((run_dir / "metrics.json").read_text())
    reference = json.loads((tmp_path / "federated" / "whole" / "metrics.json").read_text())
    assert summary["rounds_completed"] == 6 and summary["resumed_from_round"] >= 2
    final = load_arrays(run_dir / "checkpoints" / "server.safetensors")
    expected = load_arrays(tmp_path / "federated" / "whole" / "checkpoints" / "server.safetensors")
    for name in expected:
        np.testing.assert_array_equal(final[name], expected[name], err_msg=name)
    assert _metrics(summary) == _metrics(reference)
