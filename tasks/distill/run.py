"""``fedray run distill``: teacher targets once (a Ray task), the student variants in parallel (Ray tasks), then
every student, the teacher (T steps and one step) and bicubic on the teacher run's own test crops."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fedray.platform.config import load_config, to_yaml
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import load_arrays
from fedray.platform.metrics.image import laplacian_variance_ratio, mean_quality
from fedray.platform.modules.state import load_state_arrays
from fedray.platform.plots import image_grid
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.platform.trained import collect_trained
from fedray.tasks.distill.config import DistillConfig
from fedray.tasks.distill.evaluate import one_step
from fedray.tasks.distill.training import teacher_targets, train_student
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.data import load_images
from fedray.tasks.sr.evaluate import super_resolve
from fedray.tasks.sr.models import build_network
from fedray.tasks.sr.run import test_set

NOTES = ["[fedray] pixel-space ResShift teacher (no VQ autoencoder offline); sharpness by Laplacian variance ratio "
         "(CLIPIQA/MUSIQ weights unavailable offline)"]  # fmt: skip


def _teacher(cfg: DistillConfig) -> tuple[str, SRConfig, dict[str, np.ndarray], Path]:
    """The teacher's config (text and parsed) and weights; a folder that is not an sr run with those weights, or
    weights that do not fit its config, is a one-line error naming ``teacher.run_dir``."""
    run_dir = Path(cfg.teacher.run_dir)
    config_file, weights = run_dir / "config.yaml", run_dir / "checkpoints" / f"{cfg.teacher.method}.safetensors"
    if not config_file.is_file():
        raise DataError(f"teacher.run_dir={run_dir} holds no sr run (no config.yaml); run `fedray run sr` first")
    text = config_file.read_text()
    try:
        tcfg = load_config(SRConfig, text=text)
    except ConfigError as exc:
        raise DataError(f"teacher.run_dir={run_dir}: its config.yaml is not an sr run's ({exc})") from None
    if cfg.losses.hsd_steps > tcfg.resshift.steps:
        raise ConfigError(
            f"losses.hsd_steps={cfg.losses.hsd_steps} re-noises further than the teacher's {tcfg.resshift.steps} steps "
            f"(teacher.run_dir={run_dir})"
        )
    state = load_arrays(weights)
    load_state_arrays(build_network(tcfg, cfg.teacher.method), state, str(weights), "the run's config.yaml decides")
    return text, tcfg, state, weights


def _students(cfg: DistillConfig, runtime: Runtime, run_dir: RunDir, teacher_yaml: str, teacher_ref, images) -> tuple:
    states, info, pending = {}, {}, {}
    missing = [v for v in cfg.variants if not (cfg.resume and run_dir.checkpoint(v).is_file())]
    for variant in set(cfg.variants) - set(missing):
        states[variant], info[variant] = load_arrays(run_dir.checkpoint(variant)), {"source": "checkpoint"}
    if missing:
        config_yaml = to_yaml(cfg)
        targets = runtime.submit(teacher_targets, config_yaml, teacher_yaml, teacher_ref, runtime.put(images),
                                 num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)  # fmt: skip
        for variant in missing:
            pending[variant] = runtime.submit(train_student, config_yaml, variant, teacher_yaml, teacher_ref, targets,
                                              num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)  # fmt: skip
    trained, trained_info = collect_trained(runtime, run_dir, pending, label="variant")
    return {**states, **trained}, {**info, **trained_info}


def run(cfg: DistillConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    teacher_yaml, tcfg, teacher_state, teacher_path = _teacher(cfg)
    images = load_images(tcfg.data)
    hr, _, cond = test_set(tcfg, images.test)
    if not cfg.resume:
        run_dir.start_log()
    teacher_ref, cond_ref = runtime.put(teacher_state), runtime.put(cond)
    states, training = _students(cfg, runtime, run_dir, teacher_yaml, teacher_ref, images.train)
    resources = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
    refs = {v: runtime.submit(one_step, teacher_yaml, cfg.teacher.method, states[v], cond_ref, cfg.seed, **resources)
            for v in cfg.variants}  # fmt: skip
    if "teacher" in cfg.references:
        refs["teacher"] = runtime.submit(super_resolve, teacher_yaml, cfg.teacher.method, teacher_ref, cond_ref,
                                         **resources)  # fmt: skip
    if "teacher_one_step" in cfg.references:
        refs["teacher_one_step"] = runtime.submit(one_step, teacher_yaml, cfg.teacher.method, teacher_ref, cond_ref,
                                                  cfg.seed, **resources)  # fmt: skip
    outputs, results = {}, {}
    for name, ref in refs.items():
        outputs[name], seconds = runtime.get(ref)
        results[name] = {**mean_quality(hr, outputs[name]), "ms_per_image": 1000 * seconds,
                         "sharpness": laplacian_variance_ratio(hr, outputs[name])}  # fmt: skip
    if "bicubic" in cfg.references:
        outputs["bicubic"] = cond
        results["bicubic"] = {
            **mean_quality(hr, cond),
            "ms_per_image": 0.0,
            "sharpness": laplacian_variance_ratio(hr, cond),
        }
    summary: dict[str, Any] = {
        "workload": "distill",
        "teacher": {
            "run_dir": cfg.teacher.run_dir,
            "method": cfg.teacher.method,
            "weights": str(teacher_path),
            "steps": tcfg.resshift.steps,
        },
        "variants": list(cfg.variants),
        "losses": {
            "hsd_weight": cfg.losses.hsd_weight,
            "gan_weight": cfg.losses.gan_weight,
            "noise": cfg.losses.noise,
            "double_scale": cfg.losses.double_scale,
        },
        "test_crops": len(hr),
        "results": results,
        "training": training,
        "notes": NOTES,
    }
    if "teacher" in results:
        teacher = results["teacher"]
        summary["vs_teacher"] = {
            v: {"psnr_y_gap": results[v]["psnr_y"] - teacher["psnr_y"],
                "speedup": teacher["ms_per_image"] / max(results[v]["ms_per_image"], 1e-9)}
            for v in cfg.variants
        }  # fmt: skip
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    columns = np.unique(np.linspace(0, len(hr) - 1, min(6, len(hr))).round().astype(int))
    rows = {"HR": hr[columns], **{k: v[columns] for k, v in outputs.items()}}
    image_grid(run_dir.plot("distill_grid"), {k: [np.clip((i.transpose(1, 2, 0) + 1) / 2, 0, 1) for i in v]
                                              for k, v in rows.items()}, "distill", (0, 1))  # fmt: skip
    return summary
