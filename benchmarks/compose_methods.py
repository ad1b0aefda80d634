"""Foodfusion (fusion cross-attention + control branch) against naive cut-and-paste, the single-K/V concatenation
baseline and the ablation without the control branch, on held-out composition triplets over several seeds.

The first seed trains the token encoder and the base UNet (stage 1); every seed then trains all stage-2 methods on
that frozen base with its own initialisation, batches and token dropout, and composes the same held-out triplets
with its own sampling noise — the methods differ only in their conditioning. Prints one JSON document and a table of
mean ± standard deviation over seeds. A ``--variant`` re-composes with the first seed's trained weights and other
sampling settings (e.g. without guidance). Usage::

    python benchmarks/compose_methods.py --seeds 0 1 2 --root runs/bench-compose \\
        --variant guidance1:diffusion.guidance=1.0 --out benchmarks/results/compose_methods.json
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
from seed_stats import paired_difference
from workload_run import CONFIG_HELP, run_workload

SCORES = ("psnr", "ssim", "psnr_region", "ssim_region", "psnr_background", "fg_feature_cosine", "seconds_per_image")


def over_seeds(runs: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
    """Per method and score, mean and standard deviation over the seeds' test-set means."""
    methods = next(iter(runs.values()))["results"]
    return {
        m: {
            s: {
                "mean": float(np.mean([r["results"][m][s] for r in runs.values()])),
                "std": float(np.std([r["results"][m][s] for r in runs.values()])),
            }
            for s in SCORES
        }
        for m in methods
    }


def gains(runs: dict[str, dict], method: str = "fusion") -> dict[str, dict[str, float]]:
    """``method``'s overall PSNR minus each other method's, paired by seed: mean and standard deviation."""
    others = [m for m in next(iter(runs.values()))["results"] if m != method]
    out = {}
    for other in others:
        out[other] = paired_difference(
            [r["results"][method]["psnr"] for r in runs.values()], [r["results"][other]["psnr"] for r in runs.values()]
        )
    return out


def table(summary: dict[str, dict[str, dict[str, float]]], seeds: int) -> str:
    lines = [f"{'method':<17} " + " ".join(f"{s:>17}" for s in SCORES[:-1]) + f"  (mean ± std over {seeds} seeds)"]
    for method, scores in summary.items():
        cells = " ".join(f"{scores[s]['mean']:>9.3f}±{scores[s]['std']:<7.3f}" for s in SCORES[:-1])
        lines.append(f"{method:<17} {cells}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--root", default="runs/bench-compose", help="run root (kept: the trained weights are reused)")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (sampling only)")
    parser.add_argument("--resume", action="store_true", help="reuse every saved model and composite (re-score only)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    args.extra += ["resume=true"] if args.resume else []
    runs: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    shared: list[str] = []
    for seed in args.seeds:
        name = f"seed{seed}"
        start = time.perf_counter()
        runs[name] = run_workload("compose", [f"seed={seed}", *args.extra, *shared], args.root, name, args.config)
        seconds[name] = time.perf_counter() - start
        if not shared:
            weights = Path(args.root) / "compose" / name / "checkpoints"
            shared = [
                f"train.base_checkpoint={weights / 'base.safetensors'}",
                f"tokens.encoder_checkpoint={weights / 'encoder.safetensors'}",
            ]
    first = Path(args.root) / "compose" / f"seed{args.seeds[0]}" / "checkpoints"
    trained = [f"train.checkpoints.{m}={first / f'{m}.safetensors'}" for m in runs[f"seed{args.seeds[0]}"]["training"]
               if m not in ("encoder", "base")]  # fmt: skip
    variants = {}
    for variant in args.variant:
        name, _, overrides = variant.partition(":")
        extra = [f"seed={args.seeds[0]}", *args.extra, *shared, *trained, *re.split(r",(?![^\[]*\])", overrides)]
        start = time.perf_counter()
        variants[name] = run_workload("compose", extra, args.root, name, args.config)
        seconds[name] = time.perf_counter() - start
    summary = over_seeds(runs)
    result = {
        "config": {
            "file": args.config,
            "seeds": args.seeds,
            "extra": args.extra,
            "stage1_from": f"seed{args.seeds[0]}",
        },
        "summary": summary,
        "fusion_psnr_gain": gains(runs) if "fusion" in summary else {},
        "variants": {n: v["results"] for n, v in variants.items()},
        "seconds": seconds,
        "runs": runs,
    }
    text = json.dumps(result, indent=1)
    print(text)
    print(table(summary, len(runs)))
    for name, variant in variants.items():
        print(f"variant {name}: " + ", ".join(f"{m} PSNR {r['psnr']:.2f}" for m, r in variant["results"].items()))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
