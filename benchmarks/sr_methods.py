"""DiT-SR against its baselines, then TAD-SR distillation of the trained DiT-SR teacher, on held-out photographs.

Runs ``fedray run sr`` (each method trained as its own Ray task on the same crops) and then, unless ``--no-distill``,
``fedray run distill`` with that run's ``dit_sr`` as the teacher (targets once, the student variants as parallel
tasks). Prints one JSON document and two tables: PSNR/SSIM on Y, seconds per image and parameters per SR method;
PSNR/SSIM, sharpness and milliseconds per image per student, the teacher and bicubic. Usage::

    python benchmarks/sr_methods.py --root runs/bench-sr --out benchmarks/results/sr_x4.json
    python benchmarks/sr_methods.py --extra data.scale=2 --distill-extra train.steps=100
    python benchmarks/sr_methods.py --sr-from runs/bench-sr/sr/main --distill-extra train.steps=100
    python benchmarks/sr_methods.py --seeds 0 1 2 --no-distill --extra "methods=[dit_sr,dit_sr_adaln,bicubic]"

With ``--seeds`` the sr run is repeated per seed (its own training crops, test crops, initialisation and sampling
noise; runs ``sr/seed<N>``), and ``sr_over_seeds`` holds every method's PSNR-Y mean ± std over seeds and the paired
per-seed differences that the comparisons rest on (each method − bicubic, DiT-SR − each ablation); the first seed's
run is the one distilled. ``--resume`` resumes every seed run already saved under ``--root`` (its weights are reused)
and trains the others.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from seed_stats import paired_difference
from workload_run import CONFIG_HELP, run_workload

ABLATIONS = ("dit_sr_adaln", "resshift_unet")


def sr_table(summary: dict) -> str:
    lines = [f"{'method':<14} {'PSNR-Y':>14} {'SSIM-Y':>7} {'PSNR':>7} {'s/img':>8} {'params':>9}"]
    for method, r in summary["results"].items():
        params = f"{r['parameters'] / 1e6:.2f}M" if r.get("parameters") else "-"
        lines.append(f"{method:<14} {r['psnr_y']:>7.2f}±{r['psnr_y_std']:<5.2f} {r['ssim_y']:>7.4f} {r['psnr']:>7.2f} "
                     f"{r['seconds_per_image']:>8.4f} {params:>9}")  # fmt: skip
    return "\n".join(lines)


def over_seeds(runs: dict[str, dict]) -> dict:
    """PSNR-Y per method over the seeds' runs, and the paired differences: each method − bicubic, DiT-SR − each
    ablation (the crops differ between seeds, so only differences within a seed are comparable)."""
    methods = list(next(iter(runs.values()))["results"])
    psnr = {m: [r["results"][m]["psnr_y"] for r in runs.values()] for m in methods}
    pairs = [(m, "bicubic") for m in methods if m != "bicubic"] + [("dit_sr", a) for a in ABLATIONS]
    return {
        "seeds": list(runs),
        "psnr_y": {m: {"mean": float(np.mean(v)), "std": float(np.std(v)), "per_seed": v} for m, v in psnr.items()},
        "differences": {f"{a} - {b}": paired_difference(psnr[a], psnr[b]) for a, b in pairs if a in psnr and b in psnr},
    }


def seeds_table(summary: dict) -> str:
    lines = [f"over seeds {', '.join(summary['seeds'])}: PSNR-Y mean ± std, then paired differences"]
    lines += [f"{m:<27} {r['mean']:>7.2f} ± {r['std']:.2f}" for m, r in summary["psnr_y"].items()]
    lines += [
        f"{k:<27} {r['mean']:>+7.2f} ± {r['std']:.2f}  ({r['wins']} wins)" for k, r in summary["differences"].items()
    ]
    return "\n".join(lines)


def quartile_table(summary: dict) -> str:
    """PSNR-Y per quarter of the test crops ordered by bicubic's PSNR-Y (hardest first); empty without bicubic."""
    split = summary.get("psnr_y_by_bicubic_quartile")
    if not split:
        return ""
    edges = "  ".join(f"{lo:.1f}–{hi:.1f}" for lo, hi in split["edges"])
    lines = [f"PSNR-Y by quarter of the crops (bicubic PSNR-Y ranges: {edges})"]
    lines += [f"{m:<14} " + " ".join(f"{v:>7.2f}" for v in row) for m, row in split["mean"].items()]
    return "\n".join(lines)


def distill_table(summary: dict) -> str:
    lines = [f"{'model':<17} {'PSNR-Y':>7} {'SSIM-Y':>7} {'sharpness':>9} {'ms/img':>8}"]
    for name, r in summary["results"].items():
        quality = f"{r['psnr_y']:>7.2f} {r['ssim_y']:>7.4f} {r['sharpness']:>9.3f}"
        lines.append(f"{name:<17} {quality} {r['ms_per_image']:>8.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs/bench-sr", help="run root (kept: the distillation reads the teacher)")
    parser.add_argument("--config", help=CONFIG_HELP.replace("<workload>", "sr"))
    parser.add_argument("--distill-config", help=CONFIG_HELP.replace("<workload>", "distill"))
    parser.add_argument("--extra", nargs="*", default=[], help="overrides for the sr run")
    parser.add_argument("--distill-extra", nargs="*", default=[], help="overrides for the distill run")
    parser.add_argument("--no-distill", action="store_true")
    parser.add_argument("--sr-from", help="an existing sr run directory to distil (skips the sr run)")
    parser.add_argument("--distill-from", help="an existing distill run directory to report (skips the distill run)")
    parser.add_argument("--seeds", type=int, nargs="+", help="one sr run per seed (see above)")
    parser.add_argument("--resume", action="store_true", help="resume the sr runs already saved under --root")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    config = {"sr_file": args.config, "sr": args.extra, "distill_file": args.distill_config}
    results: dict = {"config": {**config, "distill": args.distill_extra, "seeds": args.seeds}, "seconds": {}}
    if args.sr_from:
        sr_dir = Path(args.sr_from)
        results["sr"] = json.loads((sr_dir / "metrics.json").read_text())
    else:
        runs = {}
        for name, seed_args in [(f"seed{s}", [f"seed={s}"]) for s in args.seeds] if args.seeds else [("main", [])]:
            saved = (Path(args.root) / "sr" / name / "config.yaml").is_file()
            seed_args += ["resume=true"] if args.resume and saved else []
            start = time.perf_counter()
            runs[name] = run_workload("sr", [*args.extra, *seed_args], args.root, name, args.config)
            results["seconds"][f"sr {name}"] = time.perf_counter() - start
        sr_dir = Path(args.root) / "sr" / next(iter(runs))
        results["sr"] = next(iter(runs.values()))
        if args.seeds:
            results["sr_runs"] = {name: r["results"] for name, r in runs.items()}
            results["sr_over_seeds"] = over_seeds(runs)
    if args.distill_from:
        results["distill"] = json.loads((Path(args.distill_from) / "metrics.json").read_text())
    elif not args.no_distill:
        start = time.perf_counter()
        teacher = [f"teacher.run_dir={sr_dir}", *args.distill_extra]
        results["distill"] = run_workload("distill", teacher, args.root, "main", args.distill_config)
        results["seconds"]["distill"] = time.perf_counter() - start
    text = json.dumps(results, indent=1)
    print(text)
    print(sr_table(results["sr"]))
    print(quartile_table(results["sr"]))
    if "sr_over_seeds" in results:
        print(seeds_table(results["sr_over_seeds"]))
    if "distill" in results:
        print(distill_table(results["distill"]))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
