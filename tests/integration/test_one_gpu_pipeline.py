"""The one-GPU simulation: client actors holding fractions of a (logical) GPU, a vision task queued behind them."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from fedray.cluster.local_head import BIN
from fedray.cluster.runtime import LOOPBACK_ENV

pytestmark = [pytest.mark.ray, pytest.mark.slow]

FEDERATED = ["method=fedavg", "data.name=digits", "data.image_size=8", "data.max_samples=300", "model.widths=[4]",
             "clients.num_clients=2", "clients.num_gpus=0.5", "clients.num_cpus=0.5", "server.rounds=3"]  # fmt: skip
SR = ["data.hr_size=16", "data.test_crops=2", "model.model_channels=8", "model.embed_dim=16", "model.depth=1",
      "train.steps=30", "train.batch_size=2", "train.warmup=1", "methods=[regression,bicubic]",
      "num_gpus=0.5"]  # fmt: skip


def test_vision_tasks_wait_for_the_gpu_the_federation_holds(tmp_path):
    file = tmp_path / "one_gpu.yaml"
    steps = {"federated": {"workload": "federated", "overrides": FEDERATED}, "sr": {"workload": "sr", "overrides": SR}}
    file.write_text(json.dumps({"name": "one_gpu", "steps": steps}))
    env = {**os.environ, LOOPBACK_ENV: "0"}
    proc = subprocess.run(
        [str(BIN / "fedray"), "pipeline", str(file), "cluster.mode=local", "cluster.num_cpus=2", "cluster.num_gpus=1",
         f"run.root={tmp_path}"],
        capture_output=True, text=True, env=env, timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "pipelines" / "one_gpu" / "default" / "pipeline.json").read_text())
    fed, sr = summary["steps"]["federated"], summary["steps"]["sr"]
    assert fed["status"] == sr["status"] == "completed"
    assert fed["metrics"]["clients"]["num_gpus"] == 0.5
    # Both steps start at once; sr's two 0.5-GPU tasks can only run once the federation released its GPU shares.
    # Both steps start at once, but the GPU is held by one of them at a time: the federation from the moment its
    # reservation was granted to its end, sr's training task while it trains. Whichever came first, no overlap.
    held = (fed["metrics"]["clients"]["reserved_unix"], summary["began_unix"] + fed["finished_at"])
    training = sr["metrics"]["training"]["regression"]
    trained = (training["began_unix"], training["began_unix"] + training["seconds"])
    assert sr["started_at"] < fed["finished_at"] and fed["started_at"] < sr["finished_at"]
    assert trained[1] <= held[0] + 0.5 or trained[0] >= held[1] - 2.0, (held, trained)
