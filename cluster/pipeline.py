"""``fedray pipeline``: run a DAG of workloads as Ray tasks, passing run directories from step to step.

Every step runs :func:`run_step` as a Ray task with its workload's declared resources (``fedray list``), as soon as
the steps it needs have completed, so independent steps run in parallel. Inside the task the workload joins the same
Ray cluster and submits its own tasks and actors. A failed step stops its dependents (reported as ``skipped``); the
others go on. ``pipeline.json`` is rewritten after every step: the DAG, each step's status, run directory, resources,
start and finish (seconds after the pipeline began) and duration, and its metrics; ``step_seconds_sum`` over
``wall_seconds`` is the speed-up that running independent steps in parallel gave.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedray.cluster.launch import resolve_config, run_workload
from fedray.cluster.pipeline_config import ARTIFACT, PipelineConfig
from fedray.cluster.runtime import open_runtime
from fedray.platform.config import WorkloadConfig, load_config, resume_differences, to_yaml
from fedray.platform.errors import FedrayError
from fedray.platform.io import save_json
from fedray.platform.registry import get_workload

DONE = ("completed", "reused")


def run_step(workload: str, config_yaml: str) -> dict[str, Any]:
    """One step, in its task: the workload's run with the resolved config; its metrics summary and when it ran
    (wall-clock timestamps taken inside the task, so queueing behind busy resources is not counted)."""
    began = time.time()
    cfg = load_config(get_workload(workload).load_schema(), text=config_yaml)
    summary, _ = run_workload(workload, cfg)
    return {"metrics": summary, "began": began, "ended": time.time()}


@dataclass(frozen=True)
class PlannedStep:
    name: str
    workload: str
    needs: list[str]
    run_dir: Path
    config_yaml: str
    num_cpus: float
    num_gpus: float
    changes: list[str]  # how the config differs from the one the step's run directory holds (empty: the same)


def pipeline_dir(cfg: PipelineConfig) -> Path:
    return Path(cfg.run.root).resolve() / "pipelines" / cfg.name / cfg.run.name


def _has_checkpoints(run_dir: Path) -> bool:
    return (run_dir / "config.yaml").is_file() and any((run_dir / "checkpoints").glob("**/*.safetensors"))


def plan(cfg: PipelineConfig) -> dict[str, PlannedStep]:
    """Every step's resolved config (validated now, so a typo in the last step fails before the first one runs)."""
    root = pipeline_dir(cfg)
    run_dirs = {name: root / step.workload / name for name, step in cfg.steps.items()}
    planned = {}
    for name in cfg.order():
        step = cfg.steps[name]
        overrides = [ARTIFACT.sub(lambda m: str(run_dirs[m.group(1)]), item) for item in step.overrides]
        placement = [f"run.root={root}", f"run.name={name}", f"cluster.mode={cfg.cluster.mode}"]
        placement.append(f"cluster.address={cfg.cluster.address}")
        given = [f"seed={cfg.seed}", *overrides, *placement]
        step_cfg = resolve_config(step.workload, step.config, given)
        changes = _changes_since_saved(run_dirs[name], step_cfg)
        if cfg.resume and not changes and _has_checkpoints(run_dirs[name]):
            step_cfg = resolve_config(step.workload, step.config, [*given, "resume=true"])
        workload = get_workload(step.workload)
        planned[name] = PlannedStep(
            name,
            step.workload,
            list(step.needs),
            run_dirs[name],
            to_yaml(step_cfg),
            workload.num_cpus,
            workload.num_gpus,
            changes,
        )
    return planned


def _changes_since_saved(run_dir: Path, cfg: WorkloadConfig) -> list[str]:
    """``key: saved -> now`` for every key a resume must keep that the step's overrides changed since its run
    directory was written (nothing when there is no earlier run; an unreadable one counts as changed)."""
    saved_file = run_dir / "config.yaml"
    if not saved_file.is_file():
        return []
    try:
        saved = load_config(type(cfg), saved_file)
    except FedrayError as exc:
        return [f"{saved_file} cannot be read ({exc})"]
    return resume_differences(saved, cfg)


def _previous(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("steps", {})
    except (json.JSONDecodeError, AttributeError):
        return {}


def _saved_metrics(step: PlannedStep) -> dict[str, Any] | None:
    """The metrics an earlier run of the step left in its run directory, if they are still there and readable."""
    metrics = step.run_dir / "metrics.json"
    if not metrics.is_file():
        return None
    try:
        saved = json.loads(metrics.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # unreadable results are no results: the step runs again
    return saved if isinstance(saved, dict) else None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    cause = getattr(exc, "cause", None)  # a Ray task error carries the task's own exception
    if cause is not None and str(cause).strip():
        text = f"{type(cause).__name__}: {str(cause).strip()}"
    return text.splitlines()[0][:300] if text else type(exc).__name__


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Run the DAG; the summary written to ``pipeline.json``."""
    steps = plan(cfg)
    root = pipeline_dir(cfg)
    summary_path = root / "pipeline.json"
    previous = _previous(summary_path) if cfg.resume else {}
    records: dict[str, dict[str, Any]] = {
        name: {"workload": s.workload, "needs": s.needs, "run_dir": str(s.run_dir), "status": "pending",
               "resources": {"num_cpus": s.num_cpus, "num_gpus": s.num_gpus}}
        for name, s in steps.items()
    }  # fmt: skip
    summary: dict[str, Any] = {"pipeline": cfg.name, "dag": {n: s.needs for n, s in steps.items()}, "steps": records}
    started = time.time()
    summary["began_unix"] = started

    def write() -> None:
        done = [r["seconds"] for r in records.values() if r["status"] == "completed"]
        wall = time.time() - started
        summary.update(wall_seconds=wall, step_seconds_sum=sum(done), runtime=cfg.cluster.mode)
        save_json(summary_path, summary)

    for name in cfg.order():  # needs first: a step whose input runs again runs again too
        step, earlier = steps[name], previous.get(name, {})
        if earlier.get("status") not in DONE:
            continue
        rerun_needs = [n for n in step.needs if records[n]["status"] != "reused"]
        if step.changes:
            records[name]["note"] = f"its config changed ({'; '.join(step.changes[:3])}): the step runs again"
        elif rerun_needs:
            records[name]["note"] = f"{', '.join(rerun_needs)} runs again: the step runs again"
        elif (metrics := _saved_metrics(step)) is None:
            records[name]["note"] = f"{step.run_dir / 'metrics.json'} is missing or unreadable: the step runs again"
        else:
            records[name].update(status="reused", seconds=earlier.get("seconds"), metrics=metrics)
    with open_runtime(cfg.cluster) as runtime:
        running: dict[Any, str] = {}
        while any(r["status"] in ("pending", "running") for r in records.values()):
            for name in cfg.order():
                record = records[name]
                if record["status"] != "pending":
                    continue
                states = [records[n]["status"] for n in steps[name].needs]
                if any(s in ("failed", "skipped") for s in states):
                    failed = [n for n in steps[name].needs if records[n]["status"] in ("failed", "skipped")]
                    record.update(status="skipped", error=f"needs {failed}, which did not complete")
                elif all(s in DONE for s in states):
                    record.update(status="running", submitted_at=time.time() - started)
                    ref = runtime.submit(
                        run_step, steps[name].workload, steps[name].config_yaml,
                        num_cpus=steps[name].num_cpus, num_gpus=steps[name].num_gpus,
                    )  # fmt: skip
                    running[ref] = name
            if not running:
                continue
            ready, _ = runtime.wait(list(running), num_returns=1, timeout=None)
            name = running.pop(ready[0])
            record = records[name]
            try:
                outcome = runtime.get(ready[0])
            except Exception as exc:  # noqa: BLE001 - a failed step is reported and stops only its dependents
                record.update(
                    status="failed", error=_one_line(exc), seconds=time.time() - started - record["submitted_at"]
                )
            else:
                record.update(
                    status="completed", metrics=outcome["metrics"], seconds=outcome["ended"] - outcome["began"],
                    started_at=outcome["began"] - started, finished_at=outcome["ended"] - started,
                )  # fmt: skip
            write()
    write()
    return summary
