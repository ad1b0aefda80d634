"""``fedray run ood``: DLSR and its baselines, every heavy step a runtime task.

The driver loads the data, then hands work to the runtime: encoder training, feature extraction (one task per set),
LFDN and autoencoder training (in parallel), the baselines, DLSR scoring (one task per set) and a throughput
measurement that runs alone. Under Ray each is a task with ``num_cpus``/``num_gpus``; inline, the same functions run
in this process, with the same numbers. Checkpoints: ``encoder``, ``lfdn``, ``lfdn_epoch1`` and ``autoencoder``
(safetensors); ``encoder.checkpoint`` reuses an encoder, ``resume=true`` reuses all of this run's.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from fedray.platform.data.load import stratified_subset
from fedray.platform.errors import DataError
from fedray.platform.io import load_arrays, read_metadata, save_arrays
from fedray.platform.plots import line_plot
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.tasks.ood.baselines import baseline_scores
from fedray.tasks.ood.config import OODConfig
from fedray.tasks.ood.data import OODData, load_id, load_ood
from fedray.tasks.ood.encoder import STAND_IN, encode, load_encoder, train_encoder
from fedray.tasks.ood.features import make_z0, stage_bounds
from fedray.tasks.ood.lfdn import dlsr_scores, train_feature_model
from fedray.tasks.ood.plots import auroc_bars
from fedray.tasks.ood.scores import detection_metrics
from fedray.tasks.ood.throughput import measure_throughput

ID_TRAIN, ID_TEST = "id_train", "id_test"
STAGES = ("data", "encoder", "features", "feature models", "scores", "throughput")
PAPER_LFDN_EPOCHS = 150


def run(cfg: OODConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    started = time.perf_counter()
    res = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus}
    widths, layers = list(cfg.encoder.widths), cfg.features.layers
    bounds = stage_bounds(widths, layers)
    with StepProgress("stage", len(STAGES)) as progress:
        train, test = load_id(cfg)
        ood = load_ood(cfg)
        if not ood.sets:
            reasons = "; ".join(f"{k}: {v}" for k, v in ood.skipped_sets.items())
            raise DataError(f"no OOD set could be built: {reasons}")
        run_dir.start_log()  # once the inputs are there; a resume logs everything again (losses from the checkpoints)
        progress.advance({"ood_sets": len(ood.sets)})

        enc_state, enc_info = _encoder(cfg, runtime, run_dir, train.images, train.labels, train.num_classes)
        enc_ref = runtime.put(enc_state)
        progress.advance({"encoder_train_acc": enc_info.get("train_acc", float("nan"))})

        images = {ID_TRAIN: train.images, ID_TEST: test.images, **ood.sets}
        feats = _extract(cfg, runtime, enc_ref, train.num_classes, images, res)
        enc_info["id_test_acc"] = float((feats[ID_TEST]["logits"].argmax(1) == test.labels).mean())
        progress.advance({"id_test_acc": enc_info["id_test_acc"]})

        baseline_ref = _submit_baselines(cfg, runtime, feats, train.labels, res)  # runs beside the LFDN training
        keep = stratified_subset(train.labels, cfg.lfdn.train_samples, cfg.seed, "lfdn")
        models = _feature_models(cfg, runtime, run_dir, make_z0(feats[ID_TRAIN]["pooled"], widths, layers)[keep], res)
        for kind, info in models.items():
            for epoch, loss in enumerate(info["losses"]):
                run_dir.log({"stage": kind, "epoch": epoch + 1, "loss": loss})
        progress.advance({"lfdn_loss": models["lfdn"]["losses"][-1]})

        states_ref = runtime.put(
            {
                "final": models["lfdn"]["final"],
                "epoch1": models["lfdn"]["epoch1"],
                "autoencoder": models["autoencoder"]["final"] if "autoencoder" in models else None,
            }
        )
        scores = _score_sets(cfg, runtime, states_ref, feats, bounds, res)
        knn_info = {"knn_k": 0}
        if baseline_ref is not None:
            extra, knn_info = runtime.get(baseline_ref)
            for name, per_score in extra.items():
                scores[name].update(per_score)
        metrics = detection_metrics(scores[ID_TEST], {name: s for name, s in scores.items() if name != ID_TEST})
        for name, m in metrics.items():
            run_dir.log({"stage": "scores", "score": name, **{k: m[k] for k in ("mean_auroc", "mean_fpr95")}})
        primary = f"mfsim_t{cfg.inference.t[0]}"
        progress.advance({primary: metrics[primary]["mean_auroc"]})

        # submitted last and alone, so that no other task shares its CPUs while it is timed
        speed = runtime.get(
            runtime.submit(
                measure_throughput,
                enc_ref,
                cfg.encoder,
                train.num_classes,
                cfg.lfdn,
                states_ref,
                test.images[: cfg.inference.throughput_samples],
                layers,
                cfg.inference.t[0],
                cfg.inference.eta,
                cfg.inference.batch_size,
                cfg.seed,
                cfg.threads,
                **res,
            )
        )
        progress.advance({"dlsr_img_per_s": speed["dlsr_img_per_s"]})

    summary = _summarize(cfg, train, test, ood, enc_info, models, metrics, speed, knn_info, bounds)
    summary.update(runtime=runtime.mode, total_seconds=time.perf_counter() - started)
    _plot(run_dir, summary, models)
    return summary


def _extract(
    cfg: OODConfig, runtime: Runtime, enc_ref: Any, num_classes: int, images: dict[str, np.ndarray], res: dict
) -> dict[str, dict[str, np.ndarray]]:
    """Pooled stage features and logits of every set, one task per set."""
    refs = {
        name: runtime.submit(encode, enc_ref, cfg.encoder, num_classes, x, cfg.inference.batch_size, cfg.threads, **res)
        for name, x in images.items()
    }
    return {name: runtime.get(ref) for name, ref in refs.items()}


def _submit_baselines(
    cfg: OODConfig, runtime: Runtime, feats: dict[str, dict[str, np.ndarray]], labels: np.ndarray, res: dict
) -> Any:
    """The baselines' task (a reference), or None when every baseline detector is off."""
    b = cfg.baselines
    if not (b.msp or b.energy or b.mahalanobis or b.knn):
        return None
    train = {**feats[ID_TRAIN], "labels": labels}
    tests = {name: f for name, f in feats.items() if name != ID_TRAIN}
    widths, layers = list(cfg.encoder.widths), cfg.features.layers
    return runtime.submit(baseline_scores, b, train, tests, widths, layers, cfg.threads, **res)


def _score_sets(
    cfg: OODConfig,
    runtime: Runtime,
    states_ref: Any,
    feats: dict[str, dict[str, np.ndarray]],
    bounds: list[tuple[int, int]],
    res: dict,
) -> dict[str, dict[str, np.ndarray]]:
    """DLSR's (and the autoencoder's) scores of the ID test set and every OOD set, one task per set."""
    widths, layers, inf = list(cfg.encoder.widths), cfg.features.layers, cfg.inference
    refs = {
        name: runtime.submit(
            dlsr_scores,
            cfg.lfdn,
            states_ref,
            make_z0(f["pooled"], widths, layers),
            bounds,
            list(inf.t),
            inf.eta,
            inf.batch_size,
            cfg.seed,
            name,
            cfg.threads,
            **res,
        )
        for name, f in feats.items()
        if name != ID_TRAIN
    }
    return {name: runtime.get(ref) for name, ref in refs.items()}


def _encoder(
    cfg: OODConfig, runtime: Runtime, run_dir: RunDir, images: np.ndarray, labels: np.ndarray, num_classes: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A given checkpoint, this run's own (on resume), or a freshly trained encoder (saved)."""
    saved = run_dir.checkpoint("encoder")
    source = cfg.encoder.checkpoint or (str(saved) if cfg.resume and saved.is_file() else None)
    if source is not None:
        state = load_encoder(source, cfg.encoder, images.shape[1], num_classes)
        info = json.loads(read_metadata(source).get("info", "{}"))
        return state, {**info, "source": source, "note": STAND_IN}
    state, info = runtime.get(
        runtime.submit(
            train_encoder,
            cfg.encoder,
            images,
            labels,
            num_classes,
            cfg.seed,
            cfg.threads,
            num_cpus=cfg.num_cpus,
            num_gpus=cfg.num_gpus,
        )
    )
    save_arrays(saved, state, {"info": json.dumps(info)})
    return state, {**info, "source": "trained in this run", "note": STAND_IN}


def _feature_models(
    cfg: OODConfig, runtime: Runtime, run_dir: RunDir, z_train: np.ndarray, res: dict[str, float]
) -> dict[str, dict[str, Any]]:
    """The LFDN (final and epoch-1 states) and, when enabled, the feature autoencoder: trained in parallel tasks, or
    this run's saved checkpoints on resume."""
    wanted = {"lfdn": ("diffusion", cfg.lfdn.epochs)}
    if cfg.baselines.autoencoder:
        wanted["autoencoder"] = ("autoencoder", cfg.baselines.ae_epochs or cfg.lfdn.epochs)
    out: dict[str, dict[str, Any]] = {}
    pending = {}
    for name, (kind, epochs) in wanted.items():
        files = [run_dir.checkpoint(name)] + ([run_dir.checkpoint(f"{name}_epoch1")] if kind == "diffusion" else [])
        if cfg.resume and all(f.is_file() for f in files):
            meta = read_metadata(files[0])
            out[name] = {
                "final": load_arrays(files[0]),
                "epoch1": load_arrays(files[1]) if len(files) > 1 else None,
                "losses": json.loads(meta.get("losses", "[]")),
                "seconds": float(meta.get("seconds", "nan")),
                "source": str(files[0]),
            }
            continue
        pending[name] = runtime.submit(
            train_feature_model, cfg.lfdn, z_train, kind, epochs, cfg.seed, cfg.threads, **res
        )
    for name, ref in pending.items():
        result = runtime.get(ref)
        meta = {"losses": json.dumps(result["losses"]), "seconds": str(result["seconds"])}
        save_arrays(run_dir.checkpoint(name), result["final"], meta)
        if wanted[name][0] == "diffusion":
            save_arrays(run_dir.checkpoint(f"{name}_epoch1"), result["epoch1"], meta)
        out[name] = {**result, "source": "trained in this run"}
    return out


def _deviations(cfg: OODConfig, dim: int) -> list[str]:
    notes = [
        STAND_IN,
        f"[fedray] {cfg.data.image_size}×{cfg.data.image_size} grey inputs; {len(cfg.encoder.widths)} stages of "
        f"{'/'.join(map(str, cfg.encoder.widths))} channels give z₀ ∈ R^{dim} (paper: 224×224, EfficientNet-b4, 720)",
        f"[fedray] LFDN with {cfg.lfdn.depth} residual blocks (paper 16; its ablation finds 8 ≈ 16), no EMA",
        "[fedray] OOD sets are offline stand-ins: digits, LFW subset, texture crops, uniform and Gaussian noise",
        "[fedray] the LR score's two reconstructions share their noise draws (the official code draws them apart)",
    ]
    if cfg.lfdn.epochs != PAPER_LFDN_EPOCHS:
        notes.append(f"[fedray] {cfg.lfdn.epochs} LFDN epochs (paper {PAPER_LFDN_EPOCHS})")
    if cfg.lfdn.train_samples is not None or cfg.data.train_samples is not None:
        notes.append("[fedray] trained on a subset of the ID train split (data.train_samples / lfdn.train_samples)")
    return notes


def _summarize(
    cfg: OODConfig,
    train: Any,
    test: Any,
    ood: OODData,
    enc_info: dict[str, Any],
    models: dict[str, dict[str, Any]],
    metrics: dict[str, dict],
    speed: dict[str, Any],
    knn_info: dict[str, int],
    bounds: list[tuple[int, int]],
) -> dict[str, Any]:
    dim = bounds[-1][1]
    primary = cfg.inference.t[0]

    def model_info(name: str) -> dict[str, Any] | None:
        if name not in models:
            return None
        m = models[name]
        return {"epochs": len(m["losses"]), "losses": m["losses"], "seconds": m["seconds"], "source": m["source"]}

    headline = {f"{name}_mean_auroc": metrics[name]["mean_auroc"] for name in (f"mfsim_t{primary}", "msp")
                if name in metrics}  # fmt: skip
    return {
        "workload": "ood",
        "method": "dlsr",
        "seed": cfg.seed,
        "id_dataset": train.name,
        "image_size": cfg.data.image_size,
        "data": {
            "id_train": len(train),
            "id_test": len(test),
            "ood_sets": {name: len(x) for name, x in ood.sets.items()},
            "skipped_sets": ood.skipped_sets,
            "left_out_sets": ood.left_out,
            "skipped_images": ood.skipped_images,
            "skipped_examples": ood.skipped_examples,
        },
        "features": {"layers": cfg.features.layers, "dim": dim, "blocks": [list(b) for b in bounds]},
        "encoder": enc_info,
        "lfdn": {
            **(model_info("lfdn") or {}),
            "width": cfg.lfdn.width or 2 * dim,
            "depth": cfg.lfdn.depth,
            "timesteps": cfg.lfdn.timesteps,
            "train_samples": cfg.lfdn.train_samples or len(train),
        },
        "autoencoder": model_info("autoencoder"),
        "inference": {"t": list(cfg.inference.t), "eta": cfg.inference.eta, "primary_t": primary},
        "baselines": {"knn_k": knn_info["knn_k"], "mahalanobis_on": "z0"},
        "headline": headline,
        "scores": metrics,
        "throughput": speed,
        "deviations": _deviations(cfg, dim),
    }


def _plot(run_dir: RunDir, summary: dict[str, Any], models: dict[str, dict[str, Any]]) -> None:
    auroc_bars(
        run_dir.plot("auroc"),
        summary["scores"],
        f"ood: {summary['id_dataset']} vs {len(summary['data']['ood_sets'])} OOD sets",
    )
    epochs = len(models["lfdn"]["losses"])
    curves = {name: m["losses"] for name, m in models.items() if len(m["losses"]) == epochs}  # one x axis
    if epochs:
        line_plot(
            run_dir.plot("losses"), list(range(1, epochs + 1)), curves, "epoch", "mean ‖z₀ − ẑ₀‖²", "feature models"
        )
