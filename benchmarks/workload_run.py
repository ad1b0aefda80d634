"""Run ``fedray run <workload>`` in a child process (loopback-only Ray) and return its metrics.json; shared by the
benchmark scripts, which run from this folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_workload(workload: str, args: list[str], root: str, name: str) -> dict:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", workload, *args, f"run.root={root}", f"run.name={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads((Path(root) / workload / name / "metrics.json").read_text())
