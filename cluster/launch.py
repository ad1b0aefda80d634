"""Run one workload by name: validate its config, prepare its run directory, open the runtime, call its entry."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fedray.cluster.runtime import open_runtime
from fedray.platform.config import WorkloadConfig, check_input_paths, load_config, resume_differences, to_yaml
from fedray.platform.errors import ConfigError
from fedray.platform.io import atomic_write
from fedray.platform.registry import get_workload
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import check_task_fits
from fedray.platform.seeding import seed_everything


def resolve_config(
    workload: str, config_file: str | Path | None = None, overrides: Sequence[str] = ()
) -> WorkloadConfig:
    """The validated config of ``workload``: schema defaults ← file ← overrides."""
    return load_config(get_workload(workload).load_schema(), config_file, list(overrides))


def check_resumable(workload: str, cfg: WorkloadConfig) -> None:
    """A resume needs the run's saved config, and the same experiment (see ``WorkloadConfig.RESUME_MAY_CHANGE``)."""
    if not cfg.resume:
        return
    run_dir = RunDir(Path(cfg.run.root) / workload / cfg.run.name)
    if not run_dir.config_file.is_file():
        raise ConfigError(f"resume=true but {run_dir.path} holds no run to resume (no config.yaml)")
    saved = load_config(type(cfg), run_dir.config_file)
    differences = resume_differences(saved, cfg)
    if differences:
        raise ConfigError(
            f"resume=true with a config that differs from {run_dir.config_file}: {'; '.join(differences[:5])}"
            f" (only {', '.join(cfg.RESUME_MAY_CHANGE)} may change)"
        )


def run_workload(workload: str, cfg: WorkloadConfig) -> tuple[dict[str, Any], RunDir]:
    """Run ``workload`` with a validated ``cfg``; write ``config.yaml`` first and ``metrics.json`` last."""
    entry = get_workload(workload).load_entry()
    check_resumable(workload, cfg)
    check_input_paths(cfg)
    with open_runtime(cfg.cluster) as runtime:
        resources = cfg.task_resources()
        if resources is not None:  # before anything is written: a request no node can grant would wait forever
            check_task_fits(runtime, *resources)
        run_dir = RunDir.create(cfg.run.root, workload, cfg.run.name)
        with _earlier_run_restored_if_nothing_written(run_dir):
            run_dir.write_config(to_yaml(cfg))
            seed_everything(cfg.seed)
            summary = entry(cfg, runtime, run_dir)
    summary["run_dir"] = str(run_dir.path)
    run_dir.write_summary(summary)
    return summary, run_dir


def _file_times(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@contextmanager
def _earlier_run_restored_if_nothing_written(run_dir: RunDir) -> Iterator[None]:
    """A run that stops before it wrote anything of its own (refused for its input — a missing data folder, an
    unreadable checkpoint — or failing, or interrupted) gives an earlier run of the same name back its
    ``config.yaml`` and metrics log, so that run can still be resumed and read."""
    kept = {p: p.read_bytes() for p in (run_dir.config_file, run_dir.metrics_log) if p.is_file()}
    before = _file_times(run_dir.path)
    try:
        yield
    except BaseException:
        after = _file_times(run_dir.path)
        written = {p for p, t in after.items() if before.get(p) != t} - {run_dir.config_file, run_dir.metrics_log}
        log = run_dir.metrics_log.read_bytes() if run_dir.metrics_log.is_file() else b""
        logged_nothing = not log.strip() or log == kept.get(run_dir.metrics_log)  # at most a fresh, empty log
        if kept and not written and logged_nothing:
            for path, data in kept.items():
                atomic_write(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        raise


def skipped_counts(summary: Mapping[str, Any], prefix: str = "") -> dict[str, int]:
    """Every positive count of skipped inputs in a run's summary (keys naming ``skipped`` with an integer value, at
    any depth), by dotted key: unreadable files are skipped and counted rather than failing the run, and the user
    should hear of them without opening metrics.json."""
    found: dict[str, int] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            found.update(skipped_counts(value, f"{prefix}{key}."))
        elif "skipped" in str(key) and isinstance(value, int) and not isinstance(value, bool) and value > 0:
            found[f"{prefix}{key}"] = value
    return found
