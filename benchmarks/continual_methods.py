"""Mamba-CL against its baselines on a class-incremental stream, K seeds each, plus named variants (ablations).

Pre-trains the backbone once (digit classification, the workload's ImageNet stand-in) and gives every run the same
weights through ``pretrain.checkpoint``; then runs ``fedray run continual`` once per entry with ``streams=K`` (K
task-stream actors in parallel, seeds 0..K−1, each with its own shuffled class order) and reports mean ± std of the
final average accuracy, forgetting and BWT. Prints one JSON document and a table. Usage::

    python benchmarks/continual_methods.py --data fashion_mnist --streams 3 \\
        --runs mambacl,finetune,heads,ewc,lwf,replay,joint \\
        --variant eta0.5:method=mambacl,mambacl.eta=0.5 --variant delta-only:method=mambacl,mambacl.project=[delta,A]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

from workload_run import CONFIG_HELP, run_workload


def fedray(args: list[str], root: str, name: str, config: str | None) -> dict:
    return run_workload("continual", args, root, name, config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="fashion_mnist")
    parser.add_argument("--runs", default="mambacl,finetune,heads,ewc,lwf,replay,joint", help="methods with defaults")
    parser.add_argument("--variant", action="append", default=[], help="NAME:key=value,key=value (ablations)")
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-per-class", type=int, default=500)
    parser.add_argument("--test-per-class", type=int, default=500)
    parser.add_argument("--pretrained", help="a saved backbone to reuse instead of pre-training")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--out", help="also write the JSON here, rewritten after every run")
    args = parser.parse_args()
    common = [
        f"data.name={args.data}", f"streams={args.streams}", f"train.epochs={args.epochs}",
        f"data.train_per_class={args.train_per_class}", f"data.test_per_class={args.test_per_class}",
        f"num_cpus={int(2 / args.streams * 1000) / 1000}", *args.extra,
    ]  # fmt: skip
    entries = [(m, [f"method={m}"]) for m in args.runs.split(",") if m]
    for variant in args.variant:
        name, _, overrides = variant.partition(":")
        entries.append((name, re.split(r",(?![^\[]*\])", overrides)))  # commas inside [..] belong to a list value
    results: dict = {"config": {"file": args.config, "common": common}, "runs": {}}
    with tempfile.TemporaryDirectory() as root:
        pretrained = args.pretrained
        if pretrained is None:
            start = time.perf_counter()
            summary = fedray([*common, "method=heads", "data.tasks=1", "data.class_order=null", "streams=1",
                              "train.epochs=1", "data.train_per_class=10"], root, "pretrain", args.config)  # fmt: skip
            pretrained = str(Path(root) / "continual" / "pretrain" / "checkpoints" / "pretrained.safetensors")
            results["pretrain"] = {**summary["pretrain"], "wall_seconds": time.perf_counter() - start}
        for name, overrides in entries:
            start = time.perf_counter()
            summary = fedray([*common, *overrides, f"pretrain.checkpoint={pretrained}"], root, name, args.config)
            results["runs"][name] = {
                "overrides": overrides,
                **{k: summary[k] for k in ("avg_acc", "avg_acc_std", "forgetting", "forgetting_std", "bwt", "bwt_std")},
                "acc_matrix": summary["acc_matrix"],
                "class_orders": [s["class_order"] for s in summary["per_stream"]],
                "per_stream": [
                    {k: s[k] for k in ("seed", "avg_acc", "forgetting", "bwt")} for s in summary["per_stream"]
                ],
                "seconds": time.perf_counter() - start,
            }
            if args.out:
                Path(args.out).write_text(json.dumps(results, indent=2))
            line = (f"# {name}: acc {summary['avg_acc']:.3f}±{summary['avg_acc_std']:.3f}, "
                    f"forgetting {summary['forgetting']:.3f}±{summary['forgetting_std']:.3f}")  # fmt: skip
            print(line, file=sys.stderr, flush=True)
    print(json.dumps(results, indent=2))
    print(f"\n{'run':<14}{'avg acc':>16}{'forgetting':>16}{'bwt':>16}{'seconds':>10}")
    for name, r in results["runs"].items():
        print(f"{name:<14}{r['avg_acc']:>9.3f} ± {r['avg_acc_std']:.3f}{r['forgetting']:>9.3f} ± "
              f"{r['forgetting_std']:.3f}{r['bwt']:>9.3f} ± {r['bwt_std']:.3f}{r['seconds']:>10.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
