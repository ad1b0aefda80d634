"""Cross-silo over Flower with real processes on 127.0.0.1: a SuperLink with TLS and SuperNode authentication
(``fedray serve``), three registered silos (``fedray join``) and one intruder whose key was never registered.
Every process is started in its own session and the whole group is stopped at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import psutil
import pytest

from fedray.cluster.credentials import make_credentials, write_silo_key
from fedray.cluster.flower_deploy import stop
from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.slow

TINY = ["data.forgery.train_per_class=16", "data.forgery.test_per_class=8", "model.widths=[8,16]",
        "clients.num_clients=3", "server.rounds=2", "clients.startup_timeout_s=180"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leftovers(marker: str, wait_s: float = 15.0) -> list[str]:
    """Command lines of processes still running that mention ``marker`` (after up to ``wait_s`` seconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for proc in psutil.process_iter(["cmdline", "status"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if marker in cmdline and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(cmdline)
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def _fedray(*args: str, log) -> subprocess.Popen:
    env = {**os.environ, "FLWR_TELEMETRY_ENABLED": "0"}
    cmd = [sys.executable, "-m", "fedray.cluster.cli", *args]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def test_tls_federation_of_three_silos_matches_the_inline_run_and_refuses_an_intruder(tmp_path):
    creds = make_credentials(tmp_path / "creds", silos=3)
    authorized = tmp_path / "authorized"
    authorized.mkdir()
    for k in range(3):
        (authorized / f"silo{k}.pub").write_bytes((creds / f"silo{k}.pub").read_bytes())
    intruder_key, _ = write_silo_key(tmp_path, "intruder")
    port = _free_port()
    names = ("serve", "silo0", "silo1", "silo2", "intruder")
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in names}  # noqa: SIM115 - closed in finally
    procs = []
    try:
        serve = _fedray("serve", "federated", "--port", str(port), "--credentials", str(creds),
                        "--authorized-keys", str(authorized), "--home", str(tmp_path / "link"),
                        *TINY, f"run.root={tmp_path / 'runs'}", log=logs["serve"])  # fmt: skip
        procs.append(serve)
        link = ["--superlink", f"127.0.0.1:{port}", "--ca", str(creds / "ca.crt")]
        for k in range(3):
            procs.append(_fedray("join", *link, "--client-id", str(k), "--key", str(creds / f"silo{k}.key"),
                                 "--state-dir", str(tmp_path / f"silo{k}"), "--port", str(_free_port()),
                                 log=logs[f"silo{k}"]))  # fmt: skip
        intruder = _fedray("join", *link, "--client-id", "0", "--key", str(intruder_key), "--retry-s", "20",
                           "--state-dir", str(tmp_path / "intruder"), "--port", str(_free_port()),
                           log=logs["intruder"])  # fmt: skip
        procs.append(intruder)

        assert intruder.wait(timeout=120) != 0
        logs["intruder"].seek(0)
        assert "Failed to activate SuperNode" in logs["intruder"].read()
        assert serve.wait(timeout=600) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        for proc in procs:
            stop(proc, grace_s=10)
        for log in logs.values():
            log.close()
    assert _leftovers(str(tmp_path)) == []  # SuperLink, SuperNodes and their helpers are all gone

    flower = json.loads((tmp_path / "runs" / "federated" / "default" / "metrics.json").read_text())
    cfg = resolve_config("federated", None, [*TINY, "cluster.mode=inline", f"run.root={tmp_path / 'inline'}"])
    inline, _ = run_workload("federated", cfg)
    assert flower["runtime"] == "flower" and flower["rounds_completed"] == 2
    for key in ("mean_auc", "worst_auc", "test_acc", "test_loss"):
        assert flower[key] == pytest.approx(inline[key], rel=1e-6), key


def _supernode_of(join: subprocess.Popen) -> psutil.Process | None:
    children = psutil.Process(join.pid).children()
    return next((c for c in children if "flower-supernode" in " ".join(c.cmdline())), None)


@pytest.mark.soak
def test_a_killed_supernode_does_not_stop_the_federation_and_rejoins(tmp_path):
    """SIGKILL one silo's SuperNode after round 1: the rounds go on with the other (quorum), `fedray join` restarts
    it, the SuperLink lets it back once it has noticed the death (Flower's fixed heartbeat: about a minute), and it
    trains again from its saved state. Minutes long, so opt-in: ``pytest -m soak``."""
    creds = make_credentials(tmp_path / "creds", silos=2)
    port = _free_port()
    job = [*TINY, "clients.num_clients=2", "server.rounds=5", "server.min_clients=1", "server.round_timeout_s=40"]
    names = ("serve", "silo0", "silo1")
    logs = {name: open(tmp_path / f"{name}.log", "w+") for name in names}  # noqa: SIM115 - closed in finally
    procs = []
    run_log = tmp_path / "runs" / "federated" / "default" / "metrics.jsonl"
    try:
        procs.append(_fedray("serve", "federated", "--port", str(port), "--credentials", str(creds),
                             "--authorized-keys", str(creds), "--home", str(tmp_path / "link"), *job,
                             f"run.root={tmp_path / 'runs'}", log=logs["serve"]))  # fmt: skip
        for k in range(2):
            procs.append(_fedray("join", "--superlink", f"127.0.0.1:{port}", "--ca", str(creds / "ca.crt"),
                                 "--client-id", str(k), "--key", str(creds / f"silo{k}.key"), "--retry-s", "600",
                                 "--state-dir", str(tmp_path / f"silo{k}"), "--port", str(_free_port()),
                                 log=logs[f"silo{k}"]))  # fmt: skip
        deadline = time.monotonic() + 400
        while not (run_log.is_file() and run_log.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.5)
        victim = _supernode_of(procs[2])
        assert victim is not None
        victim.kill()
        assert procs[0].wait(timeout=900) == 0, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        for proc in procs:
            stop(proc, grace_s=10)
        for log in logs.values():
            log.close()
    assert _leftovers(str(tmp_path)) == []

    summary = json.loads((tmp_path / "runs" / "federated" / "default" / "metrics.json").read_text())
    rounds = [json.loads(line) for line in run_log.read_text().splitlines()]
    assert summary["status"] == "completed" and summary["rounds_completed"] == 5
    missed = [r["round"] for r in rounds if "1" in r["failed"]]
    assert missed and all(r["aggregated"] for r in rounds)  # the silo was missed, no round was lost
    rejoined = [r["round"] for r in rounds if r["round"] > max(missed) and r["updates"] == 2]
    assert rejoined, f"silo 1 never came back: missed {missed}"
    silo1 = next(c for c in summary["per_client"] if c["client"] == 1)
    assert silo1["state_round"] == 5 and silo1["failed_rounds"] >= len(missed)  # fit and evaluate calls count
