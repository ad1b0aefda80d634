"""``fedray submit`` against a real Ray head started with ``ray start --head`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_jobs_api(url: str, head: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.returncode}: {head.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"the Ray Jobs API at {url} did not come up in {timeout} s")


@pytest.fixture
def ray_head(tmp_path):
    """A separate single-node Ray cluster, stopped with its whole process group afterwards.

    Every port is its own: the session's Ray cluster already holds the default ones (a second dashboard agent on
    port 52365 fails to start, and the Jobs API then has no agent to run jobs).

    It gets its own temp dir, so the address that `ray start` records for later `ray.init()` calls does not land in
    /tmp/ray, where it would send every other program on the machine to a cluster that is gone.
    """
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PATH": f"{BIN}:{os.environ['PATH']}"}
    dashboard_port = _free_port()
    temp_dir = tempfile.mkdtemp(prefix="fr", dir="/tmp")  # short: Ray's socket paths must stay under 107 bytes
    head = subprocess.Popen(
        [str(BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={_free_port()}",
         "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}", "--num-cpus=2", "--disable-usage-stats",
         f"--temp-dir={temp_dir}", f"--dashboard-agent-listen-port={_free_port()}",
         f"--dashboard-agent-grpc-port={_free_port()}", f"--runtime-env-agent-port={_free_port()}",
         f"--metrics-export-port={_free_port()}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{dashboard_port}"
    try:
        _wait_for_jobs_api(url, head)
        yield url, env
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_submit_runs_the_workload_as_a_job_and_streams_its_logs(ray_head, tmp_path):
    url, env = ray_head
    root = tmp_path / "runs"
    work = tmp_path / "work"
    work.mkdir()
    args = ["data.image_size=8", "model.widths=[8]", "clients.num_clients=2", "server.rounds=2", f"run.root={root}"]
    proc = subprocess.run(
        [str(BIN / "fedray"), "submit", "federated", "--address", url, "--working-dir", str(work), *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "round 2/2" in proc.stdout  # the job's own output, streamed
    assert "SUCCEEDED" in proc.stderr
    summary = json.loads((root / "federated" / "default" / "metrics.json").read_text())
    assert summary["runtime"] == "address" and summary["rounds_completed"] == 2


def test_a_local_run_starts_its_own_cluster_after_ray_start_left_one_behind(tiny_overrides):
    """`ray start` records its address for later `ray.init()` calls; a local run must not try to join it."""
    system_tmp = tempfile.mkdtemp(prefix="fr", dir="/tmp")  # short: Ray's socket paths must stay under 107 bytes
    (Path(system_tmp) / "ray").mkdir()
    (Path(system_tmp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:9")  # a cluster that is gone
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_TMPDIR": system_tmp}
    proc = subprocess.run(
        [str(BIN / "fedray"), "run", "federated", *tiny_overrides, "server.rounds=1", "cluster.mode=local"],
        capture_output=True, text=True, env=env, timeout=240,
    )  # fmt: skip
    shutil.rmtree(system_tmp, ignore_errors=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
