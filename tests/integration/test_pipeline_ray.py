"""Pipelines on the shared local Ray cluster: steps as tasks with their workloads' resources, in parallel."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fedray.cluster.pipeline import run_pipeline
from fedray.cluster.pipeline_config import PipelineConfig
from fedray.platform.config import load_config
from fedray.platform.device import granted_gpu_fraction

pytestmark = pytest.mark.ray

STEP = ["method=fedavg", "data.name=digits", "data.image_size=8", "data.max_samples=300", "model.widths=[4]",
        "clients.num_clients=2", "server.rounds=2"]  # fmt: skip


def test_independent_steps_run_as_parallel_tasks_and_dependents_after_them(ray_session, tmp_path):
    file = tmp_path / "p.yaml"
    file.write_text(
        json.dumps(
            {
                "name": "demo",
                "steps": {
                    "left": {"workload": "federated", "overrides": STEP},
                    "right": {"workload": "federated", "overrides": [*STEP, "seed=1"]},
                    "join": {"workload": "federated", "needs": ["left", "right"], "overrides": STEP},
                },
            }
        )
    )
    cfg = load_config(PipelineConfig, file, [f"run.root={tmp_path}", "cluster.mode=local"])
    summary = run_pipeline(cfg)
    steps = summary["steps"]
    assert {n: s["status"] for n, s in steps.items()} == dict.fromkeys(("left", "right", "join"), "completed")
    assert steps["join"]["started_at"] >= max(steps["left"]["finished_at"], steps["right"]["finished_at"])
    assert all(s["metrics"]["runtime"] == "local" and s["resources"] == {"num_cpus": 1.0, "num_gpus": 0.0}
               for s in steps.values())  # fmt: skip
    configs = {n: (Path(s["run_dir"]) / "config.yaml").read_text() for n, s in steps.items()}
    assert "\nseed: 1\n" in "\n" + configs["right"] and "\nseed: 0\n" in "\n" + configs["left"]
    assert summary["wall_seconds"] >= max(s["finished_at"] for s in steps.values())


def test_a_task_reads_its_own_gpu_grant(ray_session):
    """The driver was granted nothing; a task sees what it was granted (no GPU on a CPU-only cluster)."""
    assert granted_gpu_fraction() is None
    assert ray_session.get(ray_session.remote(granted_gpu_fraction).options(num_cpus=1).remote()) == 0.0
