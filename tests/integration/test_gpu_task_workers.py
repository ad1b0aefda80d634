"""A Ray task that holds a GPU runs in a worker process of its own (``max_calls=1``), so no later task inherits its
CUDA context, cached memory, memory cap or device; CPU tasks keep reusing workers. Checked on a cluster of its own
with one logical GPU (the shared test cluster has none)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fedray.cluster.runtime import LOOPBACK_ENV

pytestmark = pytest.mark.ray

SCRIPT = """
import json, os
import ray
from fedray.cluster.runtime import RayRuntime

ray.init(address="local", num_cpus=1, num_gpus=1, include_dashboard=False, logging_level="ERROR")
runtime = RayRuntime("local")


def pid():
    return os.getpid()


gpu = [runtime.get(runtime.submit(pid, num_cpus=1, num_gpus=0.5)) for _ in range(3)]
cpu = [runtime.get(runtime.submit(pid, num_cpus=1)) for _ in range(3)]
print(json.dumps({"gpu": gpu, "cpu": cpu}))
"""


def test_every_gpu_task_gets_a_fresh_worker_process():
    env = {**os.environ, LOOPBACK_ENV: "0"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    pids = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(set(pids["gpu"])) == 3  # one process per GPU task
    assert len(set(pids["cpu"])) < 3  # CPU tasks reuse an idle worker: reuse is Ray's default the GPU tasks avoid
