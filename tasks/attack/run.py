"""``fedray run attack``: ASMA and its baselines against two forgery detectors, every heavy step a runtime task.

The driver splits the faces by identity, draws the fixed test images, and hands work to the runtime: the two victims
train in parallel tasks (or load from checkpoints), then every (attack, victim) pair is crafted in ``shards`` tasks
with that victim's own CAM and gradients. The driver evaluates every adversarial set on every victim (the transfer
matrix), measures the perturbations and draws the example grids and the region overlay.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from fedray.platform.data.forgery import draw_samples, forgery_faces
from fedray.platform.errors import ConfigError
from fedray.platform.modules.state import as_tensor
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.platform.seeding import numpy_rng
from fedray.tasks.attack.attacks import AttackSpec, attack_specs, craft_shard
from fedray.tasks.attack.config import AttackConfig
from fedray.tasks.attack.metrics import outcome, perturbation_stats
from fedray.tasks.attack.plots import attack_grid
from fedray.tasks.attack.regions import group_masks, load_mask_file, overlay_plot, union_mask
from fedray.tasks.attack.victims import VICTIMS, victims

NOTES = [
    "[fedray] victims are small Conv → GAP → FC detectors (3-block CNN, ResNet-8) trained on self-blended LFW "
    "forgeries (paper: XceptionNet/ResNet-50/EfficientNet on DFDC)",
    "[fedray] semantic regions are fixed boxes on roughly aligned LFW crops, placed on the mean face (no face parser "
    "offline), unless regions.mask_file gives parser masks",
    "[fedray] transfer: the CAM and gradients come from the crafting victim (the release's ASMA path always uses the "
    "evaluated classifier's CAM)",
    "[fedray] asma_masked and asma_adaptive are variants; the release applies the mask only after the attack",
    "without a random start BIM and PGD take identical steps (both as configured in the release)",
]


def run(cfg: AttackConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    if not cfg.resume:
        run_dir.start_log()
    specs = attack_specs(cfg)
    with StepProgress("stage", 4) as progress:
        faces, skipped = forgery_faces(cfg.data.forgery, cfg.data.image_size)
        train_faces, test_faces = _split_faces(cfg, faces)
        images, labels = _test_images(cfg, test_faces)
        fixed = _fixed_masks(cfg, len(images))
        groups = group_masks(cfg.regions.boxes, cfg.regions.candidates, cfg.data.image_size)
        progress.advance({"test_images": len(images)})

        models, victim_info = victims(cfg, runtime, run_dir, train_faces)
        clean = {name: _predict(model, images) for name, model in models.items()}
        for name in VICTIMS:
            victim_info[name]["clean_accuracy"] = float((clean[name] == labels).mean())
        progress.advance({f"{n}_acc": victim_info[n]["clean_accuracy"] for n in VICTIMS})

        crafted = _craft(cfg, runtime, models, specs, images, labels, fixed, groups)
        progress.advance({"crafted": len(crafted)})

        results = _evaluate(models, specs, images, labels, clean, crafted, cfg)
        for attack, r in results.items():
            for source in VICTIMS:
                run_dir.log({"phase": "attack", "attack": attack, "victim": source, **r["white_box"][source]})
        progress.advance({})

    summary = {
        "workload": "attack",
        "seed": cfg.seed,
        "data": {
            "faces": len(faces),
            "train_faces": len(train_faces),
            "test_faces": len(test_faces),
            "test_images": len(images),
            "test_fakes": int(labels.sum()),
            "image_size": cfg.data.image_size,
            "families": list(cfg.data.forgery.families),
            "skipped_faces": skipped.count,
        },
        "victims": victim_info,
        "regions": {
            "source": cfg.regions.mask_file or "boxes",
            "fixed": list(cfg.regions.fixed),
            "fixed_area": float(fixed.mean()),
            "candidates": {g: list(m) for g, m in cfg.regions.candidates.items()},
            "adaptive": {"rule": cfg.adaptive.rule, "k": cfg.adaptive.k},
            "calibration": "boxes placed on the mean of LFW's 100 aligned faces (plots/regions.png)",
        },
        "attacks": {name: vars(spec) for name, spec in specs.items()},
        "results": results,
        "headline": _headline(results),
        "notes": NOTES,
        "runtime": runtime.mode,
        "total_seconds": time.perf_counter() - started,
    }
    _plot(cfg, run_dir, faces, images, crafted)
    return summary


def _split_faces(cfg: AttackConfig, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(training faces, test faces), disjoint identities chosen by the seed."""
    if cfg.data.test_faces >= len(faces):
        raise ConfigError(
            f"data.test_faces={cfg.data.test_faces} leaves no training faces (there are {len(faces)} faces)"
        )
    order = numpy_rng(cfg.seed, "attack-faces").permutation(len(faces))
    test, train = order[: cfg.data.test_faces], order[cfg.data.test_faces :]
    return faces[np.sort(train)], faces[np.sort(test)]


def _test_images(cfg: AttackConfig, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed attack images ``[n, 1, s, s]`` and labels (1 = fake): half real and half fake, or one class."""
    n = cfg.data.test_images
    per_class = math.ceil(n / 2)
    num_real = {"both": n // 2, "fake": 0, "real": 2 * per_class}[cfg.data.test_labels]
    x, y, _ = draw_samples(
        faces, list(cfg.data.forgery.families), per_class, cfg.data.forgery, cfg.seed, "attack-test",
        num_real=num_real, random_family=True,
    )  # fmt: skip
    return x[:n], y[:n]


def _fixed_masks(cfg: AttackConfig, count: int) -> np.ndarray:
    """The mask M of every test image ``[n, s, s]``: the user's masks, or the union of the fixed boxes."""
    size = cfg.data.image_size
    if cfg.regions.mask_file is not None:
        return load_mask_file(cfg.regions.mask_file, count, size)
    return np.broadcast_to(union_mask(cfg.regions.boxes, list(cfg.regions.fixed), size), (count, size, size)).copy()


@torch.no_grad()
def _predict(model: nn.Module, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    out = [model(as_tensor(images[i : i + batch_size])).argmax(1) for i in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


def _shards(cfg: AttackConfig, count: int) -> list[np.ndarray]:
    """Index ranges that start on multiples of the attack batch, so batches (and results) do not depend on shards."""
    batches = np.arange(0, count, cfg.asma.batch_size)
    return [np.arange(b[0], min(b[-1] + cfg.asma.batch_size, count)) for b in np.array_split(batches, cfg.shards)
            if len(b)]  # fmt: skip


def _craft(
    cfg: AttackConfig,
    runtime: Runtime,
    models: dict[str, nn.Module],
    specs: dict[str, AttackSpec],
    images: np.ndarray,
    labels: np.ndarray,
    fixed: np.ndarray,
    groups: np.ndarray,
) -> dict[tuple[str, str], dict[str, np.ndarray]]:
    """``x_final`` (and the adaptive choices) of every (attack, crafting victim), crafted in shard tasks."""
    model_refs = {name: runtime.put(model) for name, model in models.items()}
    adaptive = {"rule": cfg.adaptive.rule, "k": cfg.adaptive.k}
    res = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
    pending: dict[tuple[str, str], list[Any]] = {}
    for attack, spec in specs.items():
        for source in VICTIMS:
            refs = []
            for idx in _shards(cfg, len(images)):
                shard = (images[idx], labels[idx], fixed[idx], groups, adaptive, cfg.asma.batch_size, cfg.seed)
                refs.append(runtime.submit(craft_shard, model_refs[source], spec, *shard, int(idx[0]), cfg.threads,
                                           **res))  # fmt: skip
            pending[(attack, source)] = refs
    crafted = {}
    with StepProgress("attack", len(pending)) as progress:
        for key, refs in pending.items():
            parts = runtime.get(refs)
            crafted[key] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            progress.advance({})
    return crafted


def _evaluate(
    models: dict[str, nn.Module],
    specs: dict[str, AttackSpec],
    images: np.ndarray,
    labels: np.ndarray,
    clean: dict[str, np.ndarray],
    crafted: dict[tuple[str, str], dict[str, np.ndarray]],
    cfg: AttackConfig,
) -> dict[str, Any]:
    """Per attack: white-box outcome and perturbation cost per crafting victim, and the transfer matrix of ASR
    (rows: crafted on, columns: evaluated on)."""
    results: dict[str, Any] = {}
    for attack in specs:
        white, transfer = {}, {}
        for source in VICTIMS:
            final = crafted[(attack, source)]["images"]
            after = {target: _predict(models[target], final) for target in VICTIMS}
            transfer[source] = {t: outcome(labels, clean[t], after[t])["asr"] for t in VICTIMS}
            white[source] = {**outcome(labels, clean[source], after[source]), **perturbation_stats(images, final)}
            if "chosen" in crafted[(attack, source)]:
                share = crafted[(attack, source)]["chosen"].mean(axis=0)
                white[source]["chosen_share"] = dict(zip(cfg.regions.candidates, map(float, share), strict=True))
        results[attack] = {"white_box": white, "transfer_asr": transfer}
    return results


def _headline(results: dict[str, Any]) -> dict[str, dict[str, float]]:
    """White-box ASR and perturbed area per attack, averaged over the two victims."""
    return {
        attack: {
            key: float(np.mean([r["white_box"][v][key] for v in VICTIMS]))
            for key in ("asr", "asr_fake", "perturbed_area", "psnr", "ssim")
        }
        for attack, r in results.items()
    }


def _plot(
    cfg: AttackConfig, run_dir: RunDir, faces: np.ndarray, images: np.ndarray, crafted: dict[tuple[str, str], dict]
) -> None:
    overlay_plot(run_dir.plot("regions"), faces.mean(axis=0), cfg.regions.boxes, list(cfg.regions.fixed))
    count = min(cfg.grid_images, len(images))
    columns = np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))
    attacks = sorted({a for a, _ in crafted}, key=list(cfg.attacks).index)
    for attack in attacks:
        finals = {source: crafted[(attack, source)]["images"] for source in VICTIMS}
        attack_grid(run_dir.plot(f"attack_{attack}"), attack, images, finals, columns)
