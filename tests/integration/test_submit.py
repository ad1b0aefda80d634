"""``fedray submit`` against a real Ray head started with ``ray start --head`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from fedray.cluster.local_head import BIN, local_head

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_head():
    """A separate single-node Ray cluster on loopback (see :mod:`fedray.cluster.local_head`)."""
    with local_head(num_cpus=2) as head:
        yield head.jobs_url, head.env


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


def test_plain_ray_job_submit_runs_a_pipeline_on_the_cluster(ray_head, tmp_path):
    """The README's `ray job submit ... -- fedray pipeline FILE cluster.mode=address`: every step a task there."""
    url, env = ray_head
    step = ["method=fedavg", "data.name=digits", "data.image_size=8", "data.max_samples=300", "model.widths=[4]",
            "clients.num_clients=2", "server.rounds=1"]  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.yaml").write_text(
        json.dumps({"name": "tiny", "steps": {"a": {"workload": "federated", "overrides": step},
                                             "b": {"workload": "federated", "needs": ["a"], "overrides": step}}})
    )  # fmt: skip
    root = tmp_path / "runs"
    proc = subprocess.run(
        [str(BIN / "ray"), "job", "submit", "--address", url, "--working-dir", str(work), "--",
         "fedray", "pipeline", "tiny.yaml", "cluster.mode=address", f"run.root={root}"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((root / "pipelines" / "tiny" / "default" / "pipeline.json").read_text())
    assert {name: step["status"] for name, step in summary["steps"].items()} == {"a": "completed", "b": "completed"}
    assert summary["steps"]["b"]["metrics"]["runtime"] == "address"
    assert summary["steps"]["b"]["started_at"] >= summary["steps"]["a"]["finished_at"]


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
