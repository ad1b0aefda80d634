"""``fedray run compose``: the token encoder and the base UNet train as parallel Ray tasks, then every trained method's
conditioning (in parallel, on the same batches); each method composes the held-out triplets by guided DDIM in sharded
tasks; every composite, and naive cut-and-paste, is scored against the ground truth.

Weights go to ``checkpoints/{encoder,base,<method>}.safetensors`` and each method's composites to
``outputs/<method>.safetensors`` as soon as they exist, so ``resume=true`` redoes only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from fedray.platform.seeding import derive_seed
from fedray.platform.trained import collect_trained
from fedray.tasks.compose.config import TRAINED_METHODS, ComposeConfig
from fedray.tasks.compose.data import Triplets, load_triplets, naive_paste
from fedray.tasks.compose.metrics import score
from fedray.tasks.compose.model import build_token_encoder
from fedray.tasks.compose.sampling import compose_shard
from fedray.tasks.compose.training import train_base, train_encoder, train_method

NOTES = [
    "[fedray] pixel-space DDPM at small resolution instead of Stable Diffusion's latent UNet (none offline)",
    "[fedray] tokens: a small CNN autoencoder trained in-house, maps from two depths, instead of CLIP ViT-L/14",
    "[fedray] two stages (base UNet alone, then the conditioning on the frozen base); token dropout for guidance",
    "[fedray] value projections of the new K/V pairs start at zero, so stage 2 starts from the base model's output",
]


def _train_all(
    cfg: ComposeConfig, runtime: Runtime, run_dir: RunDir, names: list[str], task: Callable[[str], tuple]
) -> tuple[dict, dict]:
    """Weights of ``names``: given checkpoints, this run's own on resume, else trained now as parallel tasks
    (``task(name)`` is the training function and its arguments after the config)."""
    states: dict[str, Any] = {}
    info: dict[str, Any] = {}
    pending = {}
    config_yaml = to_yaml(cfg)
    given = {"encoder": cfg.tokens.encoder_checkpoint, "base": cfg.train.base_checkpoint, **cfg.train.checkpoints}
    for name in names:
        own = run_dir.checkpoint(name)
        source = given.get(name) or (str(own) if cfg.resume and own.is_file() else None)
        if source is not None:
            states[name], info[name] = load_arrays(source), {"source": source}
            continue
        function, *args = task(name)
        pending[name] = runtime.submit(function, config_yaml, *args, num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus)
    trained, trained_info = collect_trained(runtime, run_dir, pending, label="model")
    return {**states, **trained}, {**info, **trained_info}


def _output_path(run_dir: RunDir, method: str) -> Path:
    return run_dir.path / "outputs" / f"{method}.safetensors"


def _compose_all(
    cfg: ComposeConfig, runtime: Runtime, run_dir: RunDir, test: Triplets, states: dict
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every trained method's composites of the test triplets, ``shards`` tasks each; saved ones read back."""
    outputs: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    pending: dict[str, list] = {}
    config_yaml = to_yaml(cfg)
    shards = np.array_split(np.arange(len(test)), min(cfg.shards, len(test)))
    for method in (m for m in cfg.methods if m in TRAINED_METHODS):
        path = _output_path(run_dir, method)
        if cfg.resume and path.is_file():
            saved = load_arrays(path)
            outputs[method], seconds[method] = saved["images"], saved["seconds_per_image"].item()
            continue
        state_ref = runtime.put(states[method])
        pending[method] = [
            runtime.submit(
                compose_shard, config_yaml, method, state_ref, test.subset(idx),
                derive_seed(cfg.seed, "compose", "sample", shard), num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
            )
            for shard, idx in enumerate(shards)
        ]  # fmt: skip
    with StepProgress("composed set", len(pending)) as progress:
        for method, refs in pending.items():
            parts = runtime.get(refs)
            outputs[method] = np.concatenate([images for images, _ in parts])
            seconds[method] = float(np.average([s for _, s in parts], weights=[len(i) for i in shards]))
            save_arrays(_output_path(run_dir, method), {
                "images": outputs[method], "seconds_per_image": np.array([seconds[method]])
            })  # fmt: skip
            progress.advance({})
    return outputs, seconds


def run(cfg: ComposeConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    train, test, description = load_triplets(cfg.data, cfg.seed)
    if not cfg.resume:
        run_dir.start_log()
    trained = [m for m in cfg.methods if m in TRAINED_METHODS]
    train_ref = runtime.put(train)
    first = {"encoder": train_encoder, "base": train_base}
    states, training = _train_all(
        cfg, runtime, run_dir, ["encoder", "base"] if trained else ["encoder"], lambda n: (first[n], train_ref)
    )
    if trained:
        base_ref, encoder_ref = runtime.put(states["base"]), runtime.put(states["encoder"])
        second, second_info = _train_all(
            cfg, runtime, run_dir, trained, lambda m: (train_method, m, train_ref, base_ref, encoder_ref)
        )
        states, training = {**states, **second}, {**training, **second_info}
    outputs, seconds = _compose_all(cfg, runtime, run_dir, test, states)
    if "paste" in cfg.methods:
        outputs["paste"], seconds["paste"] = naive_paste(test), 0.0
    encoder = load_state_arrays(build_token_encoder(cfg), states["encoder"], "the token encoder checkpoint").eval()
    results = {
        m: {**score(encoder, test.gt, outputs[m], test.region), "seconds_per_image": seconds[m]} for m in cfg.methods
    }
    summary: dict[str, Any] = {
        "workload": "compose",
        "data": description,
        "image_size": cfg.data.image_size,
        "sampling": {"ddim_steps": cfg.diffusion.sample_steps, "guidance": cfg.diffusion.guidance},
        "methods": list(cfg.methods),
        "results": results,
        "training": training,
        "notes": NOTES,
    }
    if "fusion" in results:
        summary["fusion_psnr_gain"] = {
            m: results["fusion"]["psnr"] - r["psnr"] for m, r in results.items() if m != "fusion"
        }
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, test, outputs)
    return summary


def _plot(run_dir: RunDir, test: Triplets, outputs: dict[str, np.ndarray]) -> None:
    columns = np.unique(np.linspace(0, len(test) - 1, min(6, len(test))).round().astype(int))
    rows = {"foreground": test.foreground, "background": test.background, "ground truth": test.gt, **outputs}

    def unit(images: np.ndarray) -> list[np.ndarray]:
        return [np.clip((img.transpose(1, 2, 0) + 1) / 2, 0, 1) for img in images[columns]]

    image_grid(run_dir.plot("compose_grid"), {k: unit(v) for k, v in rows.items()}, "compose", (0, 1))
