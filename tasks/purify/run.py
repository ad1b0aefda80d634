"""``fedray run purify``: train the DDPM (and the supervised baseline) as Ray tasks, purify every motion setting's
corrupted test slices with every method as sharded Ray tasks, and score them against the clean slices.

Trained weights go to ``checkpoints/{ddpm,supervised}.safetensors`` and each purified set to
``outputs/<setting>__<method>__s<sample>.safetensors`` as soon as it exists, so ``resume=true`` redoes only what is
missing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fedray.platform.config import to_yaml
from fedray.platform.io import load_arrays, save_arrays
from fedray.platform.modules.state import load_state_arrays
from fedray.platform.plots import image_grid
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.platform.seeding import derive_seed, numpy_rng
from fedray.platform.trained import collect_trained
from fedray.tasks.purify.config import PurifyConfig
from fedray.tasks.purify.data import load_slices
from fedray.tasks.purify.metrics import quality, sampling_quality
from fedray.tasks.purify.motion import corrupt_all
from fedray.tasks.purify.sampling import DIFFUSION_METHODS, purify_shard
from fedray.tasks.purify.training import ResidualRestorer, build_unet, train_ddpm, train_supervised

NOTES = [
    "[fedray] motion simulated in k-space (rigid poses over segments of phase-encoding rows)",
    "[fedray] sizes scaled down (resolution, UNet width, training steps); respaced sampling keeps the original ω_t, k",
    "supervised baseline uses paired (corrupted, clean) data that PFAD does not need",
]


def _train_models(cfg: PurifyConfig, runtime: Runtime, run_dir: RunDir, train: np.ndarray) -> tuple[dict, dict]:
    """Weights of the models the methods need: given checkpoints, this run's own on resume, else trained (the two
    trainings run in parallel as tasks)."""
    wanted = {"ddpm": any(m in DIFFUSION_METHODS for m in cfg.methods), "supervised": "supervised" in cfg.methods}
    given = {"ddpm": cfg.train.ddpm_checkpoint, "supervised": cfg.train.supervised_checkpoint}
    trainers = {"ddpm": train_ddpm, "supervised": train_supervised}
    states: dict[str, Any] = {}
    info: dict[str, Any] = {}
    pending = {}
    train_ref = None
    for name, needed in wanted.items():
        if not needed:
            continue
        own = run_dir.checkpoint(name)
        source = given[name] or (str(own) if cfg.resume and own.is_file() else None)
        if source is not None:
            states[name], info[name] = load_arrays(source), {"source": source}
            module = build_unet(cfg) if name == "ddpm" else ResidualRestorer(build_unet(cfg))
            load_state_arrays(module, states[name], source, "model.* and data.image_size decide")  # refused up front
            continue
        train_ref = train_ref if train_ref is not None else runtime.put(train)
        pending[name] = runtime.submit(
            trainers[name], to_yaml(cfg), train_ref, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus
        )
    trained, trained_info = collect_trained(runtime, run_dir, pending, label="model")
    return {**states, **trained}, {**info, **trained_info}


def _output_path(run_dir: RunDir, setting: str, method: str, sample: int) -> Path:
    return run_dir.path / "outputs" / f"{setting}__{method}__s{sample}.safetensors"


def _purify_all(
    cfg: PurifyConfig, runtime: Runtime, run_dir: RunDir, corrupted: dict[str, np.ndarray], states: dict
) -> dict[tuple[str, str, int], np.ndarray]:
    """Every (setting, method, sample) purified, in ``shards`` tasks each; saved ones are read back."""
    state_refs = {name: runtime.put(state) for name, state in states.items()}
    config_yaml = to_yaml(cfg)
    outputs: dict[tuple[str, str, int], np.ndarray] = {}
    pending: dict[tuple[str, str, int], list] = {}
    for setting, images in corrupted.items():
        shards = np.array_split(np.arange(len(images)), min(cfg.shards, len(images)))
        for method in cfg.methods:
            for sample in range(cfg.samples if method in DIFFUSION_METHODS else 1):
                key = (setting, method, sample)
                path = _output_path(run_dir, *key)
                if cfg.resume and path.is_file():
                    outputs[key] = load_arrays(path)["images"]
                    continue
                state = state_refs.get("ddpm" if method in DIFFUSION_METHODS else "supervised")
                pending[key] = [
                    runtime.submit(
                        purify_shard,
                        config_yaml,
                        method,
                        state,
                        images[idx],
                        derive_seed(cfg.seed, "sample", setting, method, sample, shard),
                        num_cpus=cfg.num_cpus,
                        num_gpus=cfg.num_gpus,
                    )
                    for shard, idx in enumerate(shards)
                ]
    with StepProgress("purified set", len(pending)) as progress:
        for key, refs in pending.items():
            outputs[key] = np.concatenate(runtime.get(refs))
            save_arrays(_output_path(run_dir, *key), {"images": outputs[key]})
            progress.advance({})
    return outputs


def _score(cfg: PurifyConfig, test, corrupted: dict[str, np.ndarray], outputs: dict) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for setting, images in corrupted.items():
        rows: dict[str, Any] = {"input": quality(test.images, images, test.masks)}
        for method in cfg.methods:
            samples = [outputs[(setting, method, s)] for s in range(cfg.samples) if (setting, method, s) in outputs]
            per_sample = [quality(test.images, out, test.masks) for out in samples]
            row = {key: float(np.mean([q[key] for q in per_sample])) for key in per_sample[0]}
            row["psnr_sample_std"] = float(np.std([q["psnr"] for q in per_sample]))
            row["psnr_gain"] = row["psnr"] - rows["input"]["psnr"]
            if len(samples) > 1:
                row.update(sampling_quality(test.images, samples, test.masks))
            rows[method] = row
        results[setting] = rows
    return results


def run(cfg: PurifyConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    train, test, source = load_slices(cfg.data)
    corrupted = {m.name: corrupt_all(test.images, m, numpy_rng(cfg.seed, "motion", m.name)) for m in cfg.motion}
    if not cfg.resume:
        run_dir.start_log()
    states, training = _train_models(cfg, runtime, run_dir, train.images)
    outputs = _purify_all(cfg, runtime, run_dir, corrupted, states)
    results = _score(cfg, test, corrupted, outputs)
    summary: dict[str, Any] = {
        "workload": "purify",
        "data": {**source, "train_slices": len(train), "test_slices": len(test), "image_size": cfg.data.image_size},
        "data_skipped_files": train.skipped.count + test.skipped.count,
        "motion": {m.name: {"shift": m.shift, "rotation": m.rotation, "clean_band": m.clean_band} for m in cfg.motion},
        "methods": list(cfg.methods),
        "samples": cfg.samples,
        "results": results,
        "training": training,
        "notes": NOTES,
    }
    if "pfad" in cfg.methods:
        summary["pfad_psnr_gain"] = {s: r["pfad"]["psnr_gain"] for s, r in results.items()}
        summary["pfad_beats"] = {
            s: sorted(m for m in r if m not in ("pfad", "input") and r["pfad"]["psnr"] > r[m]["psnr"])
            for s, r in results.items()
        }
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, cfg, test, corrupted, outputs)
    return summary


def _plot(run_dir: RunDir, cfg: PurifyConfig, test, corrupted: dict[str, np.ndarray], outputs: dict) -> None:
    columns = np.unique(np.linspace(0, len(test) - 1, min(6, len(test))).round().astype(int))
    for setting, images in corrupted.items():
        rows = {"clean": test.images[columns], "corrupted": images[columns]}
        rows.update({m: outputs[(setting, m, 0)][columns] for m in cfg.methods})
        image_grid(run_dir.plot(f"purified_{setting}"), rows, f"purify: {setting} motion")
