"""Pipelines and job submission, measured side by side in one run.

1. ``fedray pipeline FILE`` (steps as parallel Ray tasks on one local cluster) against the same steps run one after
   another with ``fedray run`` (each its own process and Ray start, the same resolved configs): wall time and ratio.
2. ``--submit``: ``fedray submit`` of a short federated job to a Ray head started with ``ray start --head`` on
   127.0.0.1, against ``fedray run`` of the same job (each ``--repeats`` times, whole processes): overhead.

Prints one JSON document and a short table. Usage::

    python benchmarks/pipelines.py [--pipeline configs/pipelines/vision.yaml] [--cpus 2] [--submit] [--out F.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fedray.cluster.local_head import BIN, local_head
from fedray.cluster.pipeline import plan
from fedray.cluster.pipeline_config import PipelineConfig
from fedray.cluster.runtime import LOOPBACK_ENV
from fedray.platform.config import load_config

ENV = {**os.environ, LOOPBACK_ENV: "0"}
SHORT_JOB = ["data.image_size=8", "model.widths=[8]", "clients.num_clients=2", "server.rounds=2"]


def _timed(cmd: list[str], env: dict[str, str] = ENV) -> float:
    began = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - began


def pipeline_vs_sequential(file: str, cpus: int, root: Path) -> dict:
    overrides = [f"run.root={root}", f"cluster.num_cpus={cpus}"]
    wall = _timed([str(BIN / "fedray"), "pipeline", file, *overrides, "run.name=pipeline"])
    cfg = load_config(PipelineConfig, file, overrides)
    summary = json.loads((root / "pipelines" / cfg.name / "pipeline" / "pipeline.json").read_text())
    steps = plan(load_config(PipelineConfig, file, [*overrides, "run.name=sequential"]))
    sequential = {}
    for name, step in steps.items():  # already in dependency order
        config = root / f"{name}.yaml"
        config.write_text(step.config_yaml)
        sequential[name] = _timed([str(BIN / "fedray"), "run", step.workload, "--config", str(config)])
    total = sum(sequential.values())
    return {
        "pipeline": cfg.name,
        "cpus": cpus,
        "pipeline_process_seconds": wall,
        "pipeline_wall_seconds": summary["wall_seconds"],
        "pipeline_steps": {
            n: {"seconds": s.get("seconds"), "started_at": s.get("started_at")} for n, s in summary["steps"].items()
        },
        "sequential_seconds": sequential,
        "sequential_total_seconds": total,
        "speedup": total / wall,
    }


def submit_overhead(repeats: int, root: Path) -> dict:
    direct, submitted = [], []
    work = root / "work"
    work.mkdir(exist_ok=True)
    with local_head(num_cpus=2) as head:
        for i in range(repeats):  # alternate, so drift on a noisy machine hits both alike
            direct.append(_timed([str(BIN / "fedray"), "run", "federated", *SHORT_JOB, f"run.root={root}",
                                  f"run.name=direct{i}"]))  # fmt: skip
            submitted.append(_timed([str(BIN / "fedray"), "submit", "federated", "--address", head.jobs_url,
                                     "--working-dir", str(work), *SHORT_JOB, f"run.root={root}",
                                     f"run.name=submitted{i}"], head.env))  # fmt: skip
    d, s = statistics.median(direct), statistics.median(submitted)
    return {"job": SHORT_JOB, "repeats": repeats, "direct_seconds": direct, "submit_seconds": submitted,
            "direct_median": d, "submit_median": s, "overhead_seconds": s - d, "ratio": s / d}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="configs/pipelines/vision.yaml")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--submit", action="store_true", help="also measure fedray submit against fedray run")
    parser.add_argument("--skip-pipeline", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="fedray-pipe-") as tmp:
        if not args.skip_pipeline:
            result["pipeline"] = pipeline_vs_sequential(args.pipeline, args.cpus, Path(tmp))
        if args.submit:
            result["submit"] = submit_overhead(args.repeats, Path(tmp))
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))
    if "pipeline" in result:
        p = result["pipeline"]
        print(f"\n{p['pipeline']} on {p['cpus']} CPUs: pipeline {p['pipeline_process_seconds']:.1f} s, "
              f"one after another {p['sequential_total_seconds']:.1f} s, speed-up {p['speedup']:.2f}x")  # fmt: skip
        for name, seconds in p["sequential_seconds"].items():
            print(f"  {name:<12} alone {seconds:7.1f} s   in pipeline {p['pipeline_steps'][name]['seconds']:7.1f} s")
    if "submit" in result:
        s = result["submit"]
        print(f"submit: median {s['submit_median']:.1f} s vs direct run {s['direct_median']:.1f} s "
              f"(+{s['overhead_seconds']:.1f} s, {s['ratio']:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
