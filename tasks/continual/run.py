"""``fedray run continual``: K task streams as actors in parallel, checkpointed after every task, summarised as
mean ± std over streams."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from fedray.platform.config import to_yaml
from fedray.platform.data.load import load_train_test
from fedray.platform.errors import ConfigError
from fedray.platform.interrupts import interrupts_deferred
from fedray.platform.io import save_arrays
from fedray.platform.plots import line_plot, matrix_plot
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.tasks.continual.config import ContinualConfig
from fedray.tasks.continual.pretrain import load_backbone, pretrain_backbone
from fedray.tasks.continual.stream import TaskStream, finished_tasks

PRETRAIN_STAND_IN = "[fedray] digit pre-training stands in for ImageNet-21k"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return float(np.mean(values)), float(statistics.stdev(values)) if len(values) > 1 else 0.0


PRETRAIN_SAME_CLASSES = (
    "the digits stream's ten classes are the pre-training's own: this stream exercises the code, and split "
    "Fashion-MNIST (data.name=fashion_mnist) measures the method"
)


def _pretrain_note(cfg: ContinualConfig) -> str:
    """What a reader of the results must know about the pre-trained backbone they started from."""
    return PRETRAIN_STAND_IN + ("; " + PRETRAIN_SAME_CLASSES if cfg.data.name == "digits" else "")


def _backbone(cfg: ContinualConfig, run_dir: RunDir, in_channels: int) -> tuple[dict[str, np.ndarray] | None, dict]:
    """Pre-trained weights: a given checkpoint, this run's own (on resume), a fresh pre-training, or none."""
    saved = run_dir.checkpoint("pretrained")
    note = _pretrain_note(cfg)
    if cfg.pretrain.checkpoint is not None:
        state = load_backbone(cfg.pretrain.checkpoint, cfg, in_channels)
        return state, {"source": cfg.pretrain.checkpoint, "note": note}
    if not cfg.pretrain.enabled:
        return None, {"source": "none (random initialisation)"}
    if cfg.resume and saved.is_file():
        return load_backbone(str(saved), cfg, in_channels), {"source": str(saved), "note": note}
    state, info = pretrain_backbone(cfg, in_channels)
    save_arrays(saved, state, {k: str(v) for k, v in info.items()})
    return state, {"source": "pretrained in this run", **info, "note": note}


def run(cfg: ContinualConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    train, test, skipped = load_train_test(
        cfg.data.name, cfg.data.path, cfg.data.image_size, cfg.seed, cfg.data.test_fraction, cfg.data.channels
    )
    backbone, pretrain_info = _backbone(cfg, run_dir, train.in_channels)
    checkpoints = run_dir.path / "checkpoints"
    done = min(finished_tasks(checkpoints, k) for k in range(cfg.streams)) if cfg.resume else 0
    if done:
        run_dir.restart_log(run_dir.read_log(done - 1, key="task"))
    else:
        run_dir.start_log()
    _check_capacity(cfg, runtime)
    data_ref, backbone_ref = runtime.put((train, test)), runtime.put(backbone)
    # All stream actors at once or none yet: on a cluster busy with other work, wait for the whole reservation.
    reservation = runtime.reserve([{"CPU": cfg.num_cpus, "GPU": cfg.num_gpus}] * cfg.streams)
    runtime.reserved(reservation, None)
    try:
        finals = _run_streams(cfg, runtime, run_dir, done, data_ref, backbone_ref, reservation)
    finally:
        runtime.release(reservation)
    summary = _summarize(cfg, finals, train.name, pretrain_info, skipped)
    summary.update(resumed_from_task=done or None, runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, cfg, summary)
    return summary


def _run_streams(
    cfg: ContinualConfig,
    runtime: Runtime,
    run_dir: RunDir,
    done: int,
    data_ref: Any,
    backbone_ref: Any,
    reservation: Any,
) -> list[dict[str, Any]]:
    """Every stream as an actor in its bundle of the reservation, advanced task by task together; their summaries."""
    checkpoints = run_dir.path / "checkpoints"
    streams = [
        runtime.spawn(
            TaskStream,
            to_yaml(cfg),
            k,
            data_ref,
            backbone_ref,
            str(checkpoints),
            done - 1 if done else None,
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
            bundle=(reservation, k),
        )
        for k in range(cfg.streams)
    ]
    with StepProgress("task", cfg.data.tasks, start=done) as progress:
        for task in range(done, cfg.data.tasks):
            results = runtime.get([s.run_task.remote(task) for s in streams])
            with interrupts_deferred():
                for result in results:
                    run_dir.log(result)
            progress.advance({"avg_acc": float(np.mean([r["avg_acc"] for r in results]))})
    return runtime.get([s.summary.remote() for s in streams])


def _check_capacity(cfg: ContinualConfig, runtime: Runtime) -> None:
    """Streams advance task by task together, so every stream actor must fit at once: a stream left waiting for
    resources would stall all of them."""
    if runtime.mode == "inline":
        return
    cpus, gpus = runtime.total_cpus(), runtime.total_gpus()
    need_cpus, need_gpus = cfg.streams * cfg.num_cpus, cfg.streams * cfg.num_gpus
    if need_cpus > cpus + 1e-9 or need_gpus > gpus + 1e-9:
        raise ConfigError(
            f"streams={cfg.streams} × (num_cpus={cfg.num_cpus}, num_gpus={cfg.num_gpus}) needs {need_cpus:g} CPUs and "
            f"{need_gpus:g} GPUs at once, the cluster has {cpus:g} and {gpus:g}; lower num_cpus/num_gpus per stream"
        )


def _summarize(cfg: ContinualConfig, finals: list[dict[str, Any]], dataset: str, pretrain: dict, skipped: int) -> dict:
    size = len(finals[0]["acc_matrix"])
    mean_matrix = [[float(np.mean([f["acc_matrix"][i][j] for f in finals])) for j in range(i + 1)] for i in range(size)]
    out: dict[str, Any] = {
        "workload": "continual",
        "method": cfg.method,
        "dataset": dataset,
        "tasks": cfg.data.tasks,
        "streams": len(finals),
        "classes_per_task": len(finals[0]["class_order"]) // cfg.data.tasks,
    }
    for metric in ("avg_acc", "forgetting", "bwt"):
        out[metric], out[f"{metric}_std"] = _mean_std([f[metric] for f in finals])
    out["avg_acc_curve"] = [float(np.mean([f["avg_acc_curve"][t] for f in finals])) for t in range(size)]
    out["acc_matrix"] = mean_matrix
    out["per_stream"] = finals
    out["pretrain"] = pretrain
    out["data_skipped_images"] = skipped
    if cfg.method == "mambacl":
        out["mambacl"] = {
            "eta": cfg.mambacl.eta,
            "project": list(cfg.mambacl.project),
            "normalize": cfg.mambacl.normalize,
        }
    return out


def _plot(run_dir: RunDir, cfg: ContinualConfig, summary: dict[str, Any]) -> None:
    title = f"continual {cfg.method}: accuracy after each task"
    matrix_plot(run_dir.plot("acc_matrix"), summary["acc_matrix"], "evaluated task", "after training task", title)
    curve = summary["avg_acc_curve"]
    line_plot(
        run_dir.plot("avg_acc"),
        list(range(1, len(curve) + 1)),
        {cfg.method: curve},
        "tasks seen",
        "average accuracy",
        f"continual {cfg.method}",
    )
