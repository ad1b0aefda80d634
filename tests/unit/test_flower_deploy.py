"""How `fedray serve` follows a Flower run: its summary is picked up even when the run finishes between two polls,
and a run that finished without writing one is a clear error (the `flwr` CLI is replaced by a script here)."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fedray.cluster import flower_deploy
from fedray.cluster.launch import resolve_config
from fedray.platform.errors import FedrayError
from fedray.platform.rundir import RunDir


def _fake_flwr(run_dir: RunDir, write_summary_on_first_status: bool):
    calls: list[tuple[str, ...]] = []

    def flwr(home: Path, *args: str) -> dict:
        calls.append(args)
        if args[0] == "run":
            return {"run-id": 7}
        if write_summary_on_first_status and sum(a[0] == "ls" for a in calls) == 1:
            # The ServerApp wrote its summary and finished after the follower last looked for it.
            run_dir.path.mkdir(parents=True, exist_ok=True)
            run_dir.summary_file.write_text(json.dumps({"status": "completed", "rounds_completed": 2}))
        return {"runs": [{"status": "finished:completed", "network-traffic": 1234}]}

    return flwr, calls


def _follow(tmp_path: Path, monkeypatch, write_summary_on_first_status: bool):
    """A federated config, its run directory, and the recorded `flwr` calls, with the fake CLI in place."""
    cfg = resolve_config("federated", None, [f"run.root={tmp_path / 'runs'}", "server.rounds=2"])
    run_dir = RunDir(Path(cfg.run.root) / "federated" / cfg.run.name)
    flwr, calls = _fake_flwr(run_dir, write_summary_on_first_status)
    monkeypatch.setattr(flower_deploy, "flwr", flwr)
    monkeypatch.setattr(flower_deploy, "STATUS_POLL_S", 0.0)
    return cfg, run_dir, calls


def test_a_summary_written_just_before_the_run_finished_is_returned(tmp_path: Path, monkeypatch):
    cfg, run_dir, calls = _follow(tmp_path, monkeypatch, write_summary_on_first_status=True)
    summary = flower_deploy.run_federation(tmp_path / "home", cfg, timeout_s=30)
    assert summary["rounds_completed"] == 2
    assert summary["flower_run"] == {"run_id": 7, "network_traffic": 1234}
    assert json.loads(run_dir.summary_file.read_text())["flower_run"]["run_id"] == 7
    assert [a[0] for a in calls] == ["run", "ls", "ls"]  # status "finished" first, then the summary's traffic


def test_a_run_that_finished_without_a_summary_is_a_one_line_error(tmp_path: Path, monkeypatch):
    cfg, _, calls = _follow(tmp_path, monkeypatch, write_summary_on_first_status=False)
    with pytest.raises(FedrayError, match=r"Flower run 7 ended \(finished:completed\) without results"):
        flower_deploy.run_federation(tmp_path / "home", cfg, timeout_s=30)
    assert [a[0] for a in calls] == ["run", "ls"]  # the finished status ends the wait at once


def test_a_superlink_that_exits_or_never_answers_is_one_line_with_its_reason(tmp_path: Path):
    log = tmp_path / "superlink.log"
    exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    exited.wait()
    link = flower_deploy.Link("127.0.0.1", _closed_port(), None)
    with pytest.raises(FedrayError, match=re.escape(f"exited with status 3 while starting; see {log}")):
        flower_deploy.wait_until_healthy(link, exited, timeout_s=5, log=log)
    with pytest.raises(FedrayError, match=r"did not answer within 1 s \(last: .*[Rr]efused.*\); see "):
        flower_deploy.wait_until_healthy(link, None, timeout_s=1, log=log)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
