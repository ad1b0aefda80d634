"""``fedray run fairness``: FairFD metrics of a forgery detector across groups, BPFA and its baselines.

The driver resolves the detector (a checkpoint, checked once up front, or one trained per seed), picks each seed's
faces, then hands the work to the runtime: detector training (one task per seed, in parallel) and each seed's
evaluation (grouped test samples, metrics, pruning sweep, threshold baselines; one task per seed). Under Ray each is
a task with ``num_cpus``/``num_gpus``; inline, the same functions run here with the same numbers. Trained detectors
are saved as ``checkpoints/detector_seed<s>.safetensors`` (reused on ``resume=true``). ``predictions_csv`` skips the
detector entirely.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from fedray.platform.data.config import FAMILIES
from fedray.platform.errors import ConfigError
from fedray.platform.metrics.fairness import METRIC_NAMES, block_name
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.tasks.fairness.config import FairnessConfig
from fedray.tasks.fairness.data import DetectorSource, faces_config, resolve_source, seed_faces
from fedray.tasks.fairness.evaluate import evaluate_seed, score_metrics
from fedray.tasks.fairness.plots import group_accuracy_bars, table_image
from fedray.tasks.fairness.predictions import read_predictions
from fedray.tasks.fairness.training import train_group_detector

TABLE3 = ("DPD", "DEOdds", "AADPD", "AASTD", "URDPD")  # the columns of the paper's pruning table, and ours


def run(cfg: FairnessConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    if cfg.resume:  # the training records of the detectors it reuses; the evaluations are logged again
        run_dir.keep_log(lambda record: record.get("stage") == "train")
    else:
        run_dir.start_log()
    summary = _from_csv(cfg) if cfg.predictions_csv is not None else _from_detector(cfg, runtime, run_dir)
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, summary)
    return summary


def _headline(cfg: FairnessConfig, block: dict[str, Any]) -> dict[str, Any]:
    """The configured variant's metrics plus AUC and ACC, from one evaluation (per seed or aggregated)."""
    chosen = block["fairness"][block_name(cfg.metrics.variant, cfg.metrics.ur_denominator)]
    return {
        "variant": cfg.metrics.variant,
        "ur_denominator": cfg.metrics.ur_denominator,
        **{m: chosen[m] for m in METRIC_NAMES},
        "auc": block["auc"],
        "acc": block["acc"],
    }


def _from_csv(cfg: FairnessConfig) -> dict[str, Any]:
    preds = read_predictions(cfg.predictions_csv)  # type: ignore[arg-type]
    scores = preds.scores if preds.scores is not None else preds.preds.astype(np.float64)  # type: ignore[union-attr]
    threshold = cfg.evaluation.threshold if preds.scores is not None else 0.5
    result = score_metrics(
        scores, preds.labels, preds.methods, preds.groups, len(preds.method_names), len(preds.group_names), threshold
    )
    return {
        "workload": "fairness",
        "source": {"kind": "predictions_csv", "path": cfg.predictions_csv, "samples": len(preds.labels)},
        "rows": ["real", *preds.method_names],
        "groups": preds.group_names,
        "threshold": threshold if preds.scores is not None else "hard predictions (pred column)",
        "headline": _headline(cfg, result),
        "original": result,
        "deviations": [] if preds.scores is not None else ["AUC from hard 0/1 predictions (the CSV has no scores)"],
    }


def _trained_detectors(
    cfg: FairnessConfig, runtime: Runtime, run_dir: RunDir, faces: dict[int, dict], families: list[str]
) -> tuple[dict[int, str], dict[int, dict[str, Any]]]:
    """Per seed, the path of its detector (trained as parallel tasks, or this run's own on resume) and its record."""
    from fedray.platform.io import read_metadata
    from fedray.platform.modules.build import build_model
    from fedray.platform.modules.state import load_state_arrays
    from fedray.tasks.forensics.detector import save_detector

    det, res = cfg.detector, {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
    size = faces_config(cfg, DetectorSource("trained", None, None, {})).image_size
    paths, infos, pending = {}, {}, {}
    for seed, split in faces.items():
        path = run_dir.checkpoint(f"detector_seed{seed}")
        paths[seed] = str(path)
        if cfg.resume and path.is_file():
            infos[seed] = {"source": str(path), "note": "reused on resume", **read_metadata(path)}
            continue
        pending[seed] = runtime.submit(
            train_group_detector, det, *split["train"], families, cfg.faces.forgery, seed, cfg.threads, **res
        )
    for seed, ref in pending.items():
        state, info = runtime.get(ref)
        model = build_model(det.architecture, det.model, 1, 2)
        load_state_arrays(model, state, "trained detector")
        save_detector(paths[seed], model, det.architecture, det.model, size)
        infos[seed] = {**info, "source": "trained in this run"}
        for point in info.get("loss_curve", []):
            run_dir.log({"stage": "train", "seed": seed, **point})
    return paths, infos


def _from_detector(cfg: FairnessConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    source = resolve_source(cfg)
    faces_cfg = faces_config(cfg, source)
    families = list(faces_cfg.forgery.families)
    unknown = set(families) - set(FAMILIES)
    if unknown or not families:
        raise ConfigError(f"faces.forgery.families: unknown {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    seeds = [cfg.seed + s for s in cfg.seeds]
    res = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
    with StepProgress("stage", 3) as progress:
        faces, num_groups, faces_note = {}, 0, ""
        for seed in seeds:
            split, num_groups, faces_note = seed_faces(cfg, source, seed)
            faces[seed] = split
        shares = cfg.detector.group_shares
        if source.kind == "trained" and shares and len(shares) != num_groups:
            raise ConfigError(f"detector.group_shares has {len(shares)} entries; the faces have {num_groups} groups")
        progress.advance({"groups": num_groups})

        if source.kind == "trained":
            paths, trained = _trained_detectors(cfg, runtime, run_dir, faces, families)
        else:
            paths, trained = {seed: source.path for seed in seeds}, {}
        progress.advance({"detectors": len(set(paths.values()))})

        refs = {
            seed: runtime.submit(
                evaluate_seed,
                {"path": paths[seed], "client": source.client},
                {name: faces[seed][name] for name in ("calibration", "test")},
                num_groups,
                families,
                faces_cfg.forgery,
                cfg.evaluation,
                cfg.pruning,
                cfg.thresholds,
                seed,
                cfg.threads,
                **res,
            )
            for seed in seeds
        }
        per_seed = [runtime.get(refs[seed]) for seed in seeds]
        for result in per_seed:
            run_dir.log({"stage": "evaluate", "seed": result["seed"], **_headline(cfg, result["original"])})
        progress.advance({"auc": float(np.mean([r["original"]["auc"] for r in per_seed]))})
    return _summarize(cfg, source, seeds, per_seed, trained, faces, num_groups, faces_note, families)


def aggregate(values: list[Any]) -> Any:
    """Mean ± std (sample std; 0 for one seed) of matching leaves across seeds: numbers → ``{mean, std}``, lists of
    numbers elementwise, dicts key by key; strings are kept when every seed agrees."""
    first = values[0]
    if isinstance(first, dict):
        return {k: aggregate([v[k] for v in values]) for k in first if all(k in v for v in values)}
    if isinstance(first, str):
        return first if all(v == first for v in values) else list(values)
    arr = np.asarray(values, dtype=np.float64)
    std = arr.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(arr[0])
    mean = arr.mean(axis=0)
    return {"mean": mean.tolist(), "std": np.asarray(std).tolist()}


def _deviations(cfg: FairnessConfig, source: DetectorSource) -> list[str]:
    notes = [
        "[fedray] groups are a proxy (central-intensity quantiles of LFW faces), not demographic labels"
        if cfg.faces.group_file is None
        else f"[fedray] groups from {cfg.faces.group_file}",
        "[fedray] forgery methods are the SBI artifact families of one synthesizer, not 11 generators",
        "[fedray] 32×32 grey faces and a small detector (paper: 256×256 colour, 12 DeepfakeBench detectors)",
    ]
    if source.kind == "trained":
        notes.append(
            f"[fedray] detector trained centrally on group-imbalanced faces (shares {cfg.detector.group_shares}), "
            f"{cfg.detector.architecture}, {cfg.detector.epochs} epochs (paper: FF++ c23)"
        )
    if source.kind == "file":
        notes.append("the detector file records no training faces: held-out test faces are assured only for "
                     "detectors trained on this seed's train split (as this workload saves them)")  # fmt: skip
    if source.kind == "federated":
        notes.append("one federated detector for every seed: the seeds vary the calibration/test split of the "
                     "held-out faces and the SBI draws, not the detector")  # fmt: skip
    return notes


def _summarize(
    cfg: FairnessConfig,
    source: DetectorSource,
    seeds: list[int],
    per_seed: list[dict[str, Any]],
    trained: dict[int, dict[str, Any]],
    faces: dict[int, dict],
    num_groups: int,
    faces_note: str,
    families: list[str],
) -> dict[str, Any]:
    combined = aggregate([{k: v for k, v in r.items() if k not in ("seed", "bias")} for r in per_seed])
    summary: dict[str, Any] = {
        "workload": "fairness",
        "seeds": seeds,
        "source": {"kind": source.kind, "path": source.path, "client": source.client, **source.info},
        "detector": {str(s): info for s, info in trained.items()} if trained else None,
        "rows": ["real", *families],
        "groups": [f"group {g}" for g in range(num_groups)],
        "faces": {
            "note": faces_note,
            "per_seed": {str(s): {name: len(split[name][0]) for name in split} for s, split in faces.items()},
        },
        "evaluation": {
            "threshold": cfg.evaluation.threshold,
            "per_cell": cfg.evaluation.per_cell,
            "calibration_per_cell": cfg.evaluation.calibration_per_cell,
            "samples": combined["samples"],
        },
        "headline": _headline(cfg, combined["original"]),
        "original": combined["original"],
        "thresholds": combined.get("thresholds"),
        "pruning": combined.get("pruning"),
        "pruning_rates_percent": list(cfg.pruning.rates_percent) if cfg.pruning.enabled else [],
        "per_seed": [
            {"seed": r["seed"], "headline": _headline(cfg, r["original"]), "bias": r.get("bias")} for r in per_seed
        ],
        "deviations": _deviations(cfg, source),
    }
    if source.kind != "trained" and any(r["original"]["auc"] < 0.55 for r in per_seed):
        summary["deviations"].append("the detector is near chance (AUC < 0.55): its fairness gaps mostly reflect noise")
    return summary


def _fmt(value: Any) -> str:
    if isinstance(value, dict) and "mean" in value:
        return f"{value['mean']:.4f} ± {value['std']:.4f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _plot(run_dir: RunDir, summary: dict[str, Any]) -> None:
    original = summary["original"]
    mat, groups = original["acc_matrix"], original["groups"]["acc"]
    aggregated = isinstance(mat, dict)
    group_accuracy_bars(
        run_dir.plot("group_accuracy"),
        mat["mean"] if aggregated else mat,
        groups["mean"] if aggregated else groups,
        summary["rows"],
        summary["groups"],
        f"per-group accuracy at threshold {summary.get('evaluation', {}).get('threshold', summary.get('threshold'))}"
        + (f" (mean ± std, {len(summary['seeds'])} seeds)" if aggregated else ""),
        [*mat["std"], groups["std"]] if aggregated else None,
    )
    blocks = original["fairness"]
    columns = list(blocks)
    rows = {m: [_fmt(blocks[b][m]) for b in columns] for m in METRIC_NAMES}
    rows["AUC"] = [_fmt(original["auc"])] * len(columns)
    rows["ACC"] = [_fmt(original["acc"])] * len(columns)
    table_image(run_dir.plot("metrics_table"), [c.replace("_ur_", "\nUR ÷ ") for c in columns], rows,
                "fairness metrics (lower is fairer)")  # fmt: skip
    if summary.get("pruning") or summary.get("thresholds"):
        table = comparison_table(
            summary, block_name(summary["headline"]["variant"], summary["headline"]["ur_denominator"])
        )
        table_image(run_dir.plot("pruning_table"), [*TABLE3, "AUC", "ACC"], table,
                    "BPFA and baselines (headline variant)")  # fmt: skip


def comparison_table(summary: dict[str, Any], block: str) -> dict[str, list[str]]:
    """Row label → formatted cells (TABLE3 metrics, AUC, ACC) for the original detector, every pruning score × rate
    and every threshold rule."""

    def cells(result: dict[str, Any]) -> list[str]:
        return [_fmt(result["fairness"][block][m]) for m in TABLE3] + [_fmt(result["auc"]), _fmt(result["acc"])]

    rows = {"original": cells(summary["original"])}
    for kind, by_rate in (summary.get("pruning") or {}).items():
        for rate, result in by_rate.items():
            rows[f"{kind} {rate}%"] = cells(result)
    for rule, result in (summary.get("thresholds") or {}).items():
        rows[f"thresholds: {rule}"] = cells(result)
    return rows
