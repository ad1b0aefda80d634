"""KE2NT against its ablations and the linear-softmax baseline, one ``fedray run fer`` per seed.

Every run trains the five methods (``ke2nt``, ``text_ce``, ``text_ce_lt``, ``text_ce_lc``, ``linear_ce``) as parallel
Ray tasks with the same encoder initialisation, batches and schedule, and scores them on the same test split. Prints
one JSON document (also written to ``--out``) and a table of test accuracy and mean per-class accuracy (mean ± std
over seeds), with the kept epoch and training time.

No facial-expression data exist offline, so the default data are the Fashion-MNIST stand-in (classes 0–6 relabelled as
the seven expressions): the numbers show whether the code trains and how the heads compare on *that* task, not FER
accuracy. ``--data warped_faces`` is the stand-in closest to the task: real LFW faces warped into the seven expressions
by action-unit displacements, test faces unseen in training (still synthetic: not FER accuracy). The METHODS recipe
(64×64, 30–50 epochs, all 42,000 stand-in training images) takes many hours on 2 CPU cores; the default here is a subset
at 28×28 for 10 epochs (about 15 minutes on 2 shared cores), reported as ``scale``. Usage::

    python benchmarks/fer_methods.py --out benchmarks/results/fer_fmnist_standin.json
    python benchmarks/fer_methods.py --folder /tmp/fer_folder --seeds 0 1 2   # the stand-in read as a RAF-DB folder
    python benchmarks/fer_methods.py --data warped_faces --folder /tmp/faces --folder-per-class 420 120 \
        --image-size 32 --epochs 30 --train-samples 2940 --test-samples 840 --seeds 0 1 2
    python benchmarks/fer_methods.py --data digits --image-size 16 --epochs 3 --extra "model.widths=[8,16,32,64]"
    python benchmarks/fer_methods.py --render benchmarks/results/fer_fmnist_standin.json   # the saved table
    python benchmarks/fer_methods.py --render OLD.json --out NEW.json   # saved runs with today's table and verdict
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from seed_stats import paired_difference
from workload_run import run_workload

from fedray.tasks.fer.data import write_stand_in_folder

METHODS = ("ke2nt", "text_ce", "text_ce_lt", "text_ce_lc", "linear_ce")
LABELS = {
    "ke2nt": "KE2NT (L_s + L_t + L_c)",
    "text_ce": "ablation: text matching, L_s only",
    "text_ce_lt": "ablation: L_s + L_t",
    "text_ce_lc": "ablation: L_s + L_c",
    "linear_ce": "baseline: linear softmax + CE",
}


def build_table(runs: dict[str, dict]) -> dict[str, dict]:
    """Method → mean and std over seeds of accuracy and mean per-class accuracy, kept epochs, training seconds."""
    table = {}
    for method in METHODS:
        rows = [r["results"][method] for r in runs.values() if method in r["results"]]
        if not rows:
            continue
        acc = [r["accuracy"] for r in rows]
        mca = [r["mean_class_accuracy"] for r in rows]
        table[method] = {
            "accuracy_mean": float(np.mean(acc)),
            "accuracy_std": float(np.std(acc)),
            "mean_class_accuracy_mean": float(np.mean(mca)),
            "mean_class_accuracy_std": float(np.std(mca)),
            "per_seed_accuracy": acc,
            "best_epochs": [r["best_epoch"] for r in rows],
            "peak_lr": rows[0].get("peak_lr"),
            "train_seconds_mean": float(np.mean([r["train_seconds"] for r in rows])),
        }
    return table


def differences(runs: dict[str, dict]) -> dict[str, dict]:
    """KE2NT's test accuracy minus every other method's, seed by seed (seeds where both ran)."""
    out = {}
    for other in METHODS[1:]:
        pairs = [(r["results"]["ke2nt"]["accuracy"], r["results"][other]["accuracy"]) for r in runs.values()
                 if "ke2nt" in r["results"] and other in r["results"]]  # fmt: skip
        if pairs:
            out[f"ke2nt - {other}"] = paired_difference(*zip(*pairs, strict=True))
    return out


def verdict(diffs: dict[str, dict]) -> str:
    d = diffs.get("ke2nt - linear_ce")
    if d is None:
        return "ke2nt or linear_ce was not run"
    seeds = len(d["per_seed"])
    if seeds == 1:
        word = "beats" if d["mean"] > 0 else "does not beat"
        return f"ke2nt {word} linear_ce: {d['mean']:+.4f} test accuracy (one seed: no seed std to compare against)"
    return (
        f"ke2nt − linear_ce = {d['mean']:+.4f} ± {d['std']:.4f} test accuracy (paired over {seeds} seeds); "
        f"ke2nt ahead on {d['wins']} of {seeds}"
    )


def print_table(results: dict) -> None:
    first = next(iter(results["runs"].values()))
    print(f"\n{first['data_note']}")
    sizes = first["data"]["sizes"]
    print(f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']} at {first['data']['image_size']} px; "
          f"seeds {list(results['runs'])}; {results['scale']['note']}")  # fmt: skip
    print(f"{'method':<36}{'test acc':>16}{'mean-class acc':>18}{'kept epoch':>12}{'peak lr':>9}{'train s':>9}")
    for method, row in results["table"].items():
        acc = f"{row['accuracy_mean']:.4f}±{row['accuracy_std']:.4f}"
        mca = f"{row['mean_class_accuracy_mean']:.4f}±{row['mean_class_accuracy_std']:.4f}"
        epochs = ",".join(map(str, row["best_epochs"]))
        print(
            f"{LABELS[method]:<36}{acc:>16}{mca:>18}{epochs:>12}{row['peak_lr']:>9g}{row['train_seconds_mean']:>9.0f}"
        )
    for name, d in results.get("differences", {}).items():
        print(f"{name:<24}{d['mean']:+.4f} ± {d['std']:.4f}   ahead on {d['wins']} of {len(d['per_seed'])} seeds")
    print(f"\n{results['verdict']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion_mnist", choices=["fashion_mnist", "digits", "warped_faces"])
    parser.add_argument(
        "--folder",
        help="run on this expression folder (data.source=folder); when it does not exist yet, --data's stand-in is "
        "first written there in RAF-DB layout, --folder-per-class images per class",
    )
    parser.add_argument("--folder-per-class", type=int, nargs=2, default=[300, 200], metavar=("TRAIN", "TEST"))
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--train-samples", type=int, default=1800, help="before the validation split")
    parser.add_argument("--test-samples", type=int, default=1400)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--mode", default="local", choices=["local", "inline"], help="cluster.mode of the runs")
    parser.add_argument("--cpus", type=int, default=2, help="local mode: CPUs Ray may use")
    parser.add_argument(
        "--task-cpus", type=float, default=0.4, help="num_cpus of each method's task (0.4: all 5 at once)"
    )
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--root", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--render", help="print the table of a saved result and exit")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        saved["table"] = build_table(saved["runs"])
        saved["differences"] = differences(saved["runs"])
        saved["verdict"] = verdict(saved["differences"])
        if args.out:  # re-rendered with this script's table, differences and verdict
            Path(args.out).write_text(json.dumps(saved, indent=2) + "\n")
        print_table(saved)
        return
    source = [f"data.source={args.data}"]
    if args.folder:
        source = ["data.source=folder", f"data.path={args.folder}"]
        if not Path(args.folder).exists():
            written = write_stand_in_folder(args.data, args.folder, *args.folder_per_class, seed=0)
            print(f"# wrote the {args.data} stand-in to {args.folder}: {written}", file=sys.stderr, flush=True)
    common = [
        *source, f"data.image_size={args.image_size}", f"data.train_samples={args.train_samples}",
        f"data.test_samples={args.test_samples}", f"train.epochs={args.epochs}", f"cluster.mode={args.mode}",
        f"cluster.num_cpus={args.cpus}", f"num_cpus={args.task_cpus}", "threads=1", *args.extra,
    ]  # fmt: skip
    results: dict = {
        "scale": {
            "epochs": args.epochs,
            "image_size": args.image_size,
            "train_samples": args.train_samples,
            "test_samples": args.test_samples,
            "data": f"expression folder {args.folder} (the {args.data} stand-in written in RAF-DB layout unless it "
            "existed)"
            if args.folder
            else f"the built-in {args.data} stand-in",
            "note": f"[fedray] {args.epochs} epochs at {args.image_size} px on a {args.train_samples}-image subset "
            "(recipe: 30–50 epochs at 64 px on all images); 2 shared CPU cores, 1 thread per task",
        },
        "config": {"common": common},
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        for seed in args.seeds:
            start = time.perf_counter()
            run = run_workload("fer", [*common, f"seed={seed}"], root, f"seed{seed}")
            results["runs"][str(seed)] = {**run, "wall_seconds": time.perf_counter() - start}
            print(f"# seed {seed}: {results['runs'][str(seed)]['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
    results["table"] = build_table(results["runs"])
    results["differences"] = differences(results["runs"])
    results["verdict"] = verdict(results["differences"])
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
    print_table(results)


if __name__ == "__main__":
    main()
