"""DLSR against its baselines on Fashion-MNIST (ID) vs six offline OOD sets, plus the single-layer ablation.

Runs ``fedray run ood`` twice: the full workload (encoder, LFDN, autoencoder, every score and baseline), then the
same with ``features.layers=last`` (an LFDN over the last stage's features only) reusing the first run's encoder
through ``encoder.checkpoint``. Prints one JSON document (also written to ``--out``) and a table of the mean AUROC and
FPR@95%TPR over the OOD sets per score, and DLSR's scoring speed against the encoder's plain forward.

The METHODS recipe trains the LFDN for 50 epochs on all 60,000 ID features: about 3 hours on 2 CPU cores (0.19 s a
step of 128 at 2 threads, 469 steps an epoch). The default here is ``--lfdn-epochs 5`` (about 30 minutes in all),
reported as ``scale`` in the output; ``--lfdn-epochs 50`` runs the recipe as written. Usage::

    python benchmarks/ood_methods.py --out benchmarks/results/ood_fmnist.json
    python benchmarks/ood_methods.py --data digits --lfdn-epochs 3 --extra encoder.epochs=2   # a quick check
    python benchmarks/ood_methods.py --render benchmarks/results/ood_fmnist.json             # the saved table
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from workload_run import run_workload

RECIPE_LFDN_EPOCHS = 50


def fedray(args: list[str], root: str, name: str) -> dict:
    return run_workload("ood", args, root, name)


def build_table(full: dict, last: dict) -> dict[str, dict]:
    """Table label → mean and per-set AUROC/FPR95: DLSR's scores at every t, the baselines, then the ablation."""
    keys = ("mean_auroc", "mean_fpr95", "auroc", "fpr95")
    ts = full["inference"]["t"]
    rows: dict[str, tuple[dict, str]] = {}
    for label, score in (("DLSR MSE", "mse"), ("DLSR LR", "lr"), ("DLSR MFsim", "mfsim"),
                         ("DLSR MFsim skip-first", "mfsim_skip1")):  # fmt: skip
        rows.update({f"{label} (t={t})": (full, f"{score}_t{t}") for t in ts})
    for label, score in (("MSP", "msp"), ("Energy", "energy"), ("Mahalanobis (z0)", "mahalanobis"),
                         (f"KNN (k={full['baselines']['knn_k']})", "knn"), ("AE + MFsim", "ae_mfsim")):  # fmt: skip
        rows[label] = (full, score)
    rows.update({f"ablation: MFsim last layer only (t={t})": (last, f"mfsim_t{t}") for t in ts})
    return {
        label: {k: run["scores"][score][k] for k in keys}
        for label, (run, score) in rows.items()
        if score in run["scores"]
    }


def print_table(results: dict) -> None:
    full = results["full"]
    sets = list(full["data"]["ood_sets"])
    print(f"\nID {full['id_dataset']} test ({full['data']['id_test']}), encoder test acc "
          f"{full['encoder']['id_test_acc']:.3f}; OOD sets: {', '.join(sets)}; {results['scale']['note']}")  # fmt: skip
    print(f"{'score':<42}{'AUROC':>8}{'FPR95':>8}  " + " ".join(f"{s[:9]:>9}" for s in sets))
    for label, row in results["table"].items():
        per_set = " ".join(f"{row['auroc'][s]:>9.3f}" for s in sets)
        print(f"{label:<42}{row['mean_auroc']:>8.3f}{row['mean_fpr95']:>8.3f}  {per_set}")
    speed = results["throughput"]
    print(
        f"\nscoring speed ({speed['images']} ID test images, {speed['device']}, {speed.get('threads', '?')} thread): "
        f"encoder forward {speed['encoder_img_per_s']:.0f} img/s, DLSR MFsim/MSE t={speed['t']} "
        f"{speed['dlsr_img_per_s']:.0f} img/s ({speed['dlsr_over_encoder']:.2f}× the encoder), DLSR LR "
        f"{speed['dlsr_lr_img_per_s']:.0f} img/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "digits"])
    parser.add_argument("--lfdn-epochs", type=int, default=5)
    parser.add_argument("--mode", default="local", choices=["local", "inline"], help="cluster.mode of both runs")
    parser.add_argument("--cpus", type=int, default=2, help="local mode: CPUs Ray may use; tasks take 1 each")
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for both runs")
    parser.add_argument("--root", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--render", help="print the table of a saved result (rebuilt from its runs) and exit")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        saved["table"] = build_table(saved["full"], saved["last_layer"])
        if args.out:
            Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        print_table(saved)
        return
    threads = 1 if args.mode == "local" else args.cpus
    common = [
        f"data.id={args.data}", f"lfdn.epochs={args.lfdn_epochs}", f"cluster.mode={args.mode}",
        f"cluster.num_cpus={args.cpus}", "num_cpus=1", f"threads={threads}", *args.extra,
    ]  # fmt: skip
    results: dict = {
        "scale": {
            "lfdn_epochs": args.lfdn_epochs,
            "recipe_lfdn_epochs": RECIPE_LFDN_EPOCHS,
            "note": "METHODS 1.4(d) recipe"
            if args.lfdn_epochs == RECIPE_LFDN_EPOCHS
            else f"[fedray] {args.lfdn_epochs} LFDN/AE epochs instead of the recipe's {RECIPE_LFDN_EPOCHS} "
            "(2 CPU cores); everything else as the recipe",
        },
        "config": {"common": common},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        start = time.perf_counter()
        full = fedray(common, root, "full")
        results["full"] = {**full, "wall_seconds": time.perf_counter() - start}
        print(f"# full run: {results['full']['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
        encoder = str(Path(root) / "ood" / "full" / "checkpoints" / "encoder.safetensors")
        ablation_args = [
            *common, "features.layers=last", f"encoder.checkpoint={encoder}", "baselines.msp=false",
            "baselines.energy=false", "baselines.mahalanobis=false", "baselines.knn=false",
            "baselines.autoencoder=false",
        ]  # fmt: skip
        start = time.perf_counter()
        last = fedray(ablation_args, root, "last_layer")
        results["last_layer"] = {**last, "wall_seconds": time.perf_counter() - start}
    results["table"] = build_table(full, last)
    results["throughput"] = full["throughput"]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print_table(results)


if __name__ == "__main__":
    main()
