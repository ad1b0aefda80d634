"""``fedray run sr``: every method trained as its own Ray task (in parallel as resources allow) on the same crops,
then each evaluated on the fixed held-out test crops as a task; PSNR/SSIM (RGB and Y), seconds per image,
parameters. Weights go to ``checkpoints/<method>.safetensors``; ``resume=true`` reuses those already saved."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from fedray.platform.config import to_yaml
from fedray.platform.io import load_arrays
from fedray.platform.metrics.image import by_reference_quantile, mean_and_std, per_image_quality
from fedray.platform.modules.state import load_state_arrays
from fedray.platform.plots import image_grid
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.platform.seeding import numpy_rng
from fedray.platform.trained import collect_trained
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.data import degrade, load_images, random_crops, upsampled
from fedray.tasks.sr.evaluate import super_resolve
from fedray.tasks.sr.models import TRAINED_METHODS, build_network
from fedray.tasks.sr.training import train_method

NOTES = [
    "[fedray] pixel-space ResShift (no VQ autoencoder offline); scaled-down network, crops and steps",
    "[fedray] realistic degradation is a first-order simplification of Real-ESRGAN's",
]


def test_set(cfg: SRConfig, images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(high-resolution crops, low-resolution inputs, their bicubic upsampling), fixed by the seed."""
    rng = numpy_rng(cfg.seed, "sr", "test")
    hr = random_crops(images, cfg.data.hr_size, cfg.data.test_crops, rng)
    lr = degrade(hr, cfg.data, rng)
    return hr, lr, upsampled(torch.from_numpy(lr), cfg.data.hr_size).numpy()


def trained_states(cfg: SRConfig, runtime: Runtime, run_dir: RunDir, images) -> tuple[dict, dict]:
    """Weights per trained method: from ``checkpoints``, this run's own on resume, or trained now as parallel tasks."""
    states: dict[str, Any] = {}
    info: dict[str, Any] = {}
    pending = {}
    images_ref = None
    for method in (m for m in cfg.methods if m in TRAINED_METHODS):
        own = run_dir.checkpoint(method)
        source = cfg.checkpoints.get(method) or (str(own) if cfg.resume and own.is_file() else None)
        if source is not None:
            states[method], info[method] = load_arrays(source), {"source": source}
            # a file of another network or size is refused here, in one line, before any task starts
            load_state_arrays(build_network(cfg, method), states[method], source, "model.* and data.hr_size decide")
            continue
        images_ref = images_ref if images_ref is not None else runtime.put(images)
        pending[method] = runtime.submit(
            train_method, to_yaml(cfg), method, images_ref, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus
        )
    trained, trained_info = collect_trained(runtime, run_dir, pending, label="method")
    return {**states, **trained}, {**info, **trained_info}


def run(cfg: SRConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    images = load_images(cfg.data)
    hr, _, cond = test_set(cfg, images.test)
    if not cfg.resume:
        run_dir.start_log()
    states, training = trained_states(cfg, runtime, run_dir, images.train)
    cond_ref, config_yaml = runtime.put(cond), to_yaml(cfg)
    refs = {
        m: runtime.submit(super_resolve, config_yaml, m, states.get(m), cond_ref, num_cpus=cfg.num_cpus,
                          num_gpus=cfg.num_gpus)
        for m in cfg.methods
    }  # fmt: skip
    outputs, results, per_image = {}, {}, {}
    for method, ref in refs.items():
        outputs[method], seconds = runtime.get(ref)
        per_image[method] = per_image_quality(hr, outputs[method])
        results[method] = {**mean_and_std(per_image[method]), "seconds_per_image": seconds}
        if method in training:
            results[method]["parameters"] = training[method].get("parameters")
    summary: dict[str, Any] = {
        "workload": "sr",
        "scale": cfg.data.scale,
        "hr_size": cfg.data.hr_size,
        "degradation": cfg.data.degradation,
        "images": images.describe(),
        "test_crops": len(hr),
        "data_skipped_files": images.skipped.count,
        "methods": list(cfg.methods),
        "results": results,
        "training": training,
        "notes": NOTES,
    }
    if "bicubic" in results:
        summary["psnr_y_gain_over_bicubic"] = {
            m: r["psnr_y"] - results["bicubic"]["psnr_y"] for m, r in results.items() if m != "bicubic"
        }
        summary["psnr_y_by_bicubic_quartile"] = by_reference_quantile(
            {m: [q["psnr_y"] for q in rows] for m, rows in per_image.items()}, "bicubic", 4
        )
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, hr, outputs)
    return summary


def _plot(run_dir: RunDir, hr: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
    columns = np.unique(np.linspace(0, len(hr) - 1, min(6, len(hr))).round().astype(int))
    rows = {"HR": [img.transpose(1, 2, 0) for img in hr[columns]]}
    rows.update({m: [img.transpose(1, 2, 0) for img in out[columns]] for m, out in outputs.items()})
    image_grid(
        run_dir.plot("sr_grid"), {k: [np.clip((v + 1) / 2, 0, 1) for v in vs] for k, vs in rows.items()}, "sr", (0, 1)
    )
