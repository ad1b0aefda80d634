"""PFAD against its baselines on simulated motion at each severity: PSNR/SSIM (whole slice and brain mask) of the
corrupted input, PFAD, the DDPM with low-band replacement only (PFAD without its alternate masks), an SDEdit restart,
a k-space low-pass and a supervised U-Net. Runs ``fedray run purify`` once (models trained as parallel Ray tasks,
purification sharded over tasks), then any ``--variant`` re-purifies with the same trained weights. Prints one JSON
document and a table. Usage::

    python benchmarks/purify_methods.py --root runs/bench --out benchmarks/results/purify_mni152.json \\
        --variant gamma0.3:pfad.gamma=0.3,methods=[pfad]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from workload_run import CONFIG_HELP, run_workload


def fedray(args: list[str], root: str, name: str, config: str | None) -> dict:
    return run_workload("purify", args, root, name, config)


def table(results: dict) -> str:
    head = f"{'run':<12} {'setting':<8} {'method':<13} {'PSNR':>14} {'gain':>6} {'SSIM':>6} {'PSNR mask':>9}"
    lines = [head + f" {'mean of K':>9} {'MSE':>8} {'= mean':>8} {'+ spread':>8}"]
    for run, summary in results.items():
        for setting, rows in summary["results"].items():
            for method, q in rows.items():
                psnr = f"{q['psnr']:.2f}±{q['psnr_std']:.2f}"
                gain = f"{q.get('psnr_gain', 0.0):+.2f}"
                line = f"{run:<12} {setting:<8} {method:<13} {psnr:>14} {gain:>6}"
                line += f" {q['ssim']:>6.3f} {q['psnr_mask']:>9.2f}"
                if "mse_split" in q:  # K > 1 sampling seeds
                    split = q["mse_split"]
                    line += f" {q['mean_of_samples']['psnr']:>9.2f} {split['per_sample']:>8.5f}"
                    line += f" {split['of_mean']:>8.5f} {split['spread']:>8.5f}"
                lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs/bench-purify", help="run root (kept: the trained weights are reused)")
    parser.add_argument("--samples", type=int, default=3, help="sampling seeds per diffusion method")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (ablations)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    common = [f"samples={args.samples}", *args.extra]
    results: dict = {"config": {"file": args.config, "common": common}, "runs": {}, "seconds": {}}
    start = time.perf_counter()
    results["runs"]["main"] = fedray(common, args.root, "main", args.config)
    results["seconds"]["main"] = time.perf_counter() - start
    weights = Path(args.root) / "purify" / "main" / "checkpoints"
    reuse = [f"train.ddpm_checkpoint={weights / 'ddpm.safetensors'}"]
    for variant in args.variant:
        name, _, overrides = variant.partition(":")
        start = time.perf_counter()
        variant_args = [*common, *reuse, *re.split(r",(?![^\[]*\])", overrides)]
        results["runs"][name] = fedray(variant_args, args.root, name, args.config)
        results["seconds"][name] = time.perf_counter() - start
    text = json.dumps(results, indent=1)
    print(text)
    print(table(results["runs"]))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
