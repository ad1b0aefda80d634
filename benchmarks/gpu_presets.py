"""The GPU-tier presets (configs/gpu/) for a few steps each on this machine's GPU, under Ray: that every trained
model landed on CUDA, and seconds per training step, from which the full preset's training time is estimated. The
seconds include each model's setup (CUDA context, first kernels, data preparation), so the rate and the estimate are
upper bounds that tighten as ``--steps`` grows. Needs a CUDA device (every preset's tasks ask for a GPU share);
``--logical-gpu`` runs the same on the CPU to check the script. Prints one JSON document and a table. Usage::

    python benchmarks/gpu_presets.py --steps 200 --out benchmarks/results/gpu_presets.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from workload_run import run_workload

from fedray.cluster.launch import resolve_config

PRESETS = Path(__file__).resolve().parents[1] / "configs" / "gpu"
ORDER = ["sr", "distill", "purify", "compose", "continual"]  # distill reads the sr run


def shortened(workload: str, steps: int, root: str) -> list[str]:
    """Overrides that cut a preset to ``steps`` training steps and a small test set; sizes stay the preset's."""
    return {
        "purify": [f"train.steps={steps}", "data.test_slices=4", "diffusion.sample_steps=100"],
        "sr": [f"train.steps={steps}", f"train.warmup={max(steps // 10, 1)}", "data.test_crops=8"],
        "distill": [f"train.steps={steps}", f"train.warmup={max(steps // 10, 1)}", f"teacher.run_dir={root}/sr/sr"],
        "compose": [
            f"train.base_steps={steps}",
            f"train.steps={steps}",
            f"tokens.encoder_steps={steps}",
            "data.test_triplets=8",
            "shards=1",
        ],
        "continual": ["train.epochs=1", "data.train_per_class=500", "data.test_per_class=100", "pretrain.epochs=1"],
    }[workload]


def full_preset_steps(workload: str, model: str) -> int | None:
    """Training steps ``model`` takes in the full preset (None where training is counted in epochs)."""
    cfg = resolve_config(workload, PRESETS / f"{workload}.yaml")
    if workload == "compose":
        return {"encoder": cfg.tokens.encoder_steps, "base": cfg.train.base_steps}.get(model, cfg.train.steps)
    return None if workload == "continual" else cfg.train.steps


def timings(workload: str, summary: dict) -> dict[str, dict]:
    """Per trained model: steps, seconds, seconds per step, the device it trained on (from metrics.json), and the
    hours its full preset would take at that rate."""
    out = {}
    for name, info in summary.get("training", {}).items():
        if not (isinstance(info, dict) and info.get("steps") and "seconds" in info):
            continue  # a reused checkpoint, or a stage without steps
        per_step = info["seconds"] / info["steps"]
        full = full_preset_steps(workload, name)
        out[name] = {
            "steps": info["steps"],
            "seconds_per_step": per_step,
            "device": info.get("device", "unrecorded"),
            "full_preset_hours": None if full is None else per_step * full / 3600,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="training steps per model")
    parser.add_argument("--only", nargs="*", default=ORDER, choices=ORDER)
    parser.add_argument(
        "--logical-gpu",
        action="store_true",
        help="declare one GPU that does not exist and run on the CPU: checks this script, measures no GPU",
    )
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    if not torch.cuda.is_available() and not args.logical_gpu:
        sys.exit("gpu_presets: no CUDA device here; the GPU presets' tasks each ask for a GPU share")
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu (one logical GPU declared)"
    results: dict = {"device": device, "steps": args.steps, "presets": {}}
    logical = ["cluster.num_gpus=1"] if args.logical_gpu else []
    with tempfile.TemporaryDirectory() as root:
        for workload in [w for w in ORDER if w in args.only]:
            started = time.perf_counter()
            summary = run_workload(
                workload,
                [*shortened(workload, args.steps, root), *logical],
                root,
                workload,
                str(PRESETS / f"{workload}.yaml"),
            )
            results["presets"][workload] = {
                "wall_seconds": time.perf_counter() - started,
                "training": timings(workload, summary),
            }
            print(f"# {workload}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    text = json.dumps(results, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    print(f"\n{'preset':<10} {'model':<18} {'device':<8} {'s/step':>8} {'full h':>7} {'wall s':>7}")
    for workload, r in results["presets"].items():
        if not r["training"]:  # continual trains per task inside its stream actors: wall time only
            print(f"{workload:<10} {'-':<18} {'-':<8} {'-':>8} {'-':>7} {r['wall_seconds']:>7.0f}")
        for name, t in r["training"].items():
            hours = "-" if t["full_preset_hours"] is None else f"{t['full_preset_hours']:.1f}"
            row = f"{workload:<10} {name:<18} {t['device']:<8} {t['seconds_per_step']:>8.3f} {hours:>7}"
            print(f"{row} {r['wall_seconds']:>7.0f}")


if __name__ == "__main__":
    main()
