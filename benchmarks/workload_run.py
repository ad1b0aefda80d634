"""Run ``fedray run <workload>`` in a child process (loopback-only Ray) and return its metrics.json; shared by the
benchmark scripts, which run from this folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG_HELP = "a YAML file layered over the workload's defaults in every run (e.g. configs/gpu/<workload>.yaml)"


def run_workload(workload: str, args: list[str], root: str, name: str, config: str | None = None) -> dict:
    """``config``: a YAML file layered under ``args`` (``fedray run --config``); the run lands in ``root/workload/name``
    whatever the file says."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    layered = ["--config", config] if config else []
    cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", workload, *layered, *args]
    cmd += [f"run.root={root}", f"run.name={name}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{workload} {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads((Path(root) / workload / name / "metrics.json").read_text())
