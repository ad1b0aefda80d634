"""PFR against its baselines on self-blended forgeries, one forgery family per client (non-IID by source).

Runs ``fedray run federated`` once per (method, seed) with the same data, trunk, rounds and local budget, then
reports mean ± std over seeds of the clients' mean AUC and worst-client AUC (fake = positive), and ε where privacy
is on. Prints one JSON document and a table. The workload's defaults are the method's small-scale recipe (5 clients,
32×32 LFW faces, trunk 32-64-128 with GroupNorm, 40 rounds × 2 local epochs, 512 + 512 samples per epoch, batch 32,
SGD lr 0.01 momentum 0.9); ``--rounds``, ``--epochs`` and ``--per-class`` shrink it. Usage::

    python benchmarks/pfr_methods.py [--methods pfr,fedavg,local,fedper,fedrep,fedbn,ditto] [--seeds 0,1,2]
        [--rounds 40] [--extra privacy.enabled=true privacy.noise_multiplier=1.0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(method: str, seed: int, args: argparse.Namespace, root: str) -> dict:
    overrides = [
        f"data.forgery.train_per_class={args.per_class}", f"clients.epochs={args.epochs}",
        f"server.rounds={args.rounds}", f"server.eval_every={args.eval_every}", f"clients.placement={args.placement}",
        f"method={method}", f"seed={seed}", f"run.root={root}", f"run.name={method}-{seed}", *args.extra,
    ]  # fmt: skip
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", "federated", *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{method} seed {seed} failed:\n{proc.stderr[-3000:]}")
    summary = json.loads((Path(root) / "federated" / f"{method}-{seed}" / "metrics.json").read_text())
    return {
        "mean_auc": summary["mean_auc"], "worst_auc": summary["worst_auc"], "mean_acc": summary["mean_acc"],
        "per_client_auc": [c["auc"] for c in summary["per_client"]], "seconds": time.perf_counter() - start,
        "max_epsilon": summary.get("max_epsilon", 0.0),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="pfr,fedavg,local,fedper,fedrep,fedbn,ditto")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=512)
    parser.add_argument("--eval-every", type=int, default=5)
    parser.add_argument("--placement", default="pool")
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--partial", help="file to rewrite with the runs so far after every run")
    args = parser.parse_args()
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    runs: dict[str, list[dict]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as root:
        for seed in seeds:
            for method in methods:
                runs[method].append(run_one(method, seed, args, root))
                r = runs[method][-1]
                print(f"{method} seed {seed}: mean AUC {r['mean_auc']:.3f} worst {r['worst_auc']:.3f} "
                      f"({r['seconds']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
                if args.partial:  # a long sweep keeps what it has measured if it is stopped
                    Path(args.partial).write_text(json.dumps(runs, indent=2))

    def mean_std(values: list[float]) -> dict[str, float]:
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    keys = ("mean_auc", "worst_auc", "mean_acc", "max_epsilon")
    table = {m: {k: mean_std([r[k] for r in rs]) for k in keys} for m, rs in runs.items()}
    config = {k: v for k, v in vars(args).items() if k != "extra"} | {"extra": args.extra}
    print(json.dumps({"config": config, "table": table, "runs": runs}, indent=2))
    print(f"\n{'method':<8} {'mean AUC':>14} {'worst AUC':>14} {'mean acc':>14} {'max ε':>14}", file=sys.stderr)
    for m, row in table.items():
        cells = [f"{row[k]['mean']:.3f} ± {row[k]['std']:.3f}" for k in keys]
        print(f"{m:<8} {cells[0]:>14} {cells[1]:>14} {cells[2]:>14} {cells[3]:>14}", file=sys.stderr)


if __name__ == "__main__":
    main()
