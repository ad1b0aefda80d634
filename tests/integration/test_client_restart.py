"""Fault drill on Ray: a client actor's process is SIGKILLed mid-run; Ray restarts it, it reloads its personal
state from its last saved round, and the run finishes."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.ray

DRILL = [
    "method=pfr",
    "data.name=forgery",
    "data.forgery.train_per_class=192",
    "data.forgery.test_per_class=16",
    "model.widths=[8,16]",
    "clients.num_clients=3",
    "server.rounds=7",
    "server.min_clients=1",
]


def _client_actor_pids() -> list[int]:
    from ray._private.state import actors  # reads the GCS directly; the state API needs the dashboard

    alive = [a for a in actors().values() if a["ActorClassName"] == "FederatedClient" and a["State"] == "ALIVE"]
    return sorted(a["Pid"] for a in alive)


def _rounds_logged(log) -> int:
    return len(log.read_text().splitlines()) if log.is_file() else 0


def _kill_one_client_when(log, rounds_done: int, killed: list[int], back_after: list[int]) -> None:
    """SIGKILL one client actor once ``rounds_done`` rounds are logged; then note how many rounds were logged when
    its restarted process was alive again (rounds that start while it restarts fail for it, by design)."""
    deadline = time.time() + 120
    while time.time() < deadline:
        if _rounds_logged(log) >= rounds_done:
            time.sleep(0.3)  # into the next round's local training
            before = _client_actor_pids()
            if not before:
                return
            os.kill(before[0], signal.SIGKILL)
            killed.append(before[0])
            while time.time() < deadline:
                now = _client_actor_pids()
                if len(now) == len(before) and before[0] not in now:
                    back_after.append(_rounds_logged(log))
                    return
                time.sleep(0.05)
            return
        time.sleep(0.05)


def test_sigkilled_client_actor_is_restarted_with_its_personal_state(ray_session, tmp_path):
    cfg = resolve_config("federated", None, [*DRILL, "cluster.mode=local", f"run.root={tmp_path}"])
    log = tmp_path / "federated" / "default" / "metrics.jsonl"
    killed: list[int] = []
    back_after: list[int] = []
    watcher = threading.Thread(target=_kill_one_client_when, args=(log, 2, killed, back_after))
    watcher.start()
    summary, _ = run_workload("federated", cfg)
    watcher.join()

    assert killed, "no client actor was found to kill"
    assert summary["status"] == "completed" and summary["rounds_completed"] == 7
    assert back_after and back_after[0] < 6, f"the restart took until round {back_after} of 7: machine overloaded?"
    restarted = [c for c in summary["per_client"] if c["restored_from_round"] > 0]
    assert len(restarted) == 1, summary["per_client"]
    victim = restarted[0]
    assert victim["restored_from_round"] >= 2  # it came back with the state of a round it had finished
    assert victim["failed_rounds"] >= 1  # the fit it was running when killed
    assert victim["state_round"] == 7  # and it trained again after the restart
    assert all(c["restored_from_round"] == 0 for c in summary["per_client"] if c is not victim)
