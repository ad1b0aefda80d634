"""FairFD metrics of forgery detectors across face groups, and BPFA against its baselines.

Two measurements, each ``fedray run fairness`` over the same seeds and metric code:

1. ``federated``: the global detectors of the PFR workload's methods (``pfr``'s shared prediction, ``fedavg``,
   ``ditto``'s global model), each trained by ``fedray run federated`` at ``--rounds`` rounds (the PFR benchmark's
   other settings: 1 local epoch, 256 + 256 samples per epoch, pool placement), then evaluated on the faces no client
   trained on (metrics and the threshold baselines; no pruning); ``--clients pfr:0`` adds client 0's own PFR model
   (its joint prediction, trained on one forgery family).
2. ``central``: a detector trained centrally on group-imbalanced faces (50/25/15/10 %) per seed, with the BPFA sweep
   and its baselines (WEIG, RoBA, random pruning, calibrated thresholds).

Prints one JSON document (also written to ``--out``) and the tables: the twelve metrics (``official`` variant, UR
divided by ACC + 1) with AUC/ACC for every federated detector; DPD/DEOdds/AADPD/AASTD/URDPD/AUC/ACC per pruning score
and rate. Usage::

    python benchmarks/fairness_methods.py --out benchmarks/results/fairness_methods.json
    python benchmarks/fairness_methods.py --parts central --extra detector.epochs=5        # a quick check
    python benchmarks/fairness_methods.py --render benchmarks/results/fairness_methods.json

The JSON keeps the tables' inputs (``--root`` keeps every run directory with its full metrics.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from workload_run import run_workload

METRICS = ("DPD", "DEOdds", "DEO", "STD", "AADPD", "AADEOdds", "AADEO", "AASTD", "URDPD", "URDEOdds", "URDEO", "URSTD")
TABLE3 = ("DPD", "DEOdds", "AADPD", "AASTD", "URDPD")
BLOCK = "official_ur_acc_plus_one"


def cell(value: dict) -> str:
    return f"{value['mean']:.4f}±{value['std']:.4f}"


def federated_part(args: argparse.Namespace, root: str, common: list[str]) -> dict:
    out = {}
    for method in args.methods.split(","):
        start = time.perf_counter()
        fed_args = [
            f"method={method}", f"seed={args.fed_seed}", f"server.rounds={args.rounds}", "clients.epochs=1",
            "data.forgery.train_per_class=256", "server.eval_every=5", "clients.placement=pool",
            f"cluster.num_cpus={args.cpus}",
        ]  # fmt: skip
        fed = run_workload("federated", fed_args, root, method)
        fed_seconds = time.perf_counter() - start
        print(f"# federated {method}: mean client AUC {fed['mean_auc']:.3f} ({fed_seconds:.0f} s)", file=sys.stderr,
              flush=True)  # fmt: skip
        start = time.perf_counter()
        fair = run_workload(
            "fairness",
            [*common, f"detector.checkpoint={Path(root) / 'federated' / method}", "pruning.enabled=false"],
            root,
            f"fed-{method}",
        )
        print(f"# fairness of {method}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        record = {k: fed[k] for k in ("mean_auc", "worst_auc", "mean_acc", "rounds_completed") if k in fed}
        out[method] = {"federated": record | {"seconds": fed_seconds, "rounds": args.rounds}, "fairness": fair}
    for spec in filter(None, args.clients.split(",")):  # a client's own (personalised) model of a run above
        method, client = spec.split(":")
        fair = run_workload(
            "fairness",
            [*common, f"detector.checkpoint={Path(root) / 'federated' / method}", f"detector.client={client}",
             "pruning.enabled=false"],
            root,
            f"fed-{method}-client{client}",
        )  # fmt: skip
        out[f"{method}:client{client}"] = {"federated": out[method]["federated"], "fairness": fair}
    return out


def central_part(args: argparse.Namespace, root: str, common: list[str]) -> dict:
    start = time.perf_counter()
    fair = run_workload("fairness", common, root, "central")
    print(f"# central detector + BPFA sweep: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return fair


def compact(fair: dict) -> dict:
    """What the tables need from one fairness metrics.json (the run directory keeps everything): the headline, the
    original detector's metrics (every block), and per pruning rate and threshold rule the headline block only."""

    def short(r: dict) -> dict:
        keep = {k: r[k] for k in ("auc", "acc", "balanced_acc", "pruned_fraction", "thresholds") if k in r}
        return keep | {"fairness": {BLOCK: r["fairness"][BLOCK]}}

    out = {k: fair[k] for k in ("seeds", "source", "rows", "groups", "headline", "deviations", "total_seconds")}
    out["faces"] = fair["faces"]["note"]
    out["original"] = {
        k: fair["original"][k] for k in ("auc", "acc", "balanced_acc", "groups", "acc_matrix", "fairness")
    }
    out["thresholds"] = {rule: short(r) for rule, r in (fair.get("thresholds") or {}).items()}
    out["pruning"] = {k: {rate: short(r) for rate, r in by.items()} for k, by in (fair.get("pruning") or {}).items()}
    if fair.get("detector"):
        out["detector"] = {s: {k: d.get(k) for k in ("train_loss", "train_seconds", "group_shares")}
                           for s, d in fair["detector"].items()}  # fmt: skip
    return out


def rounded(value: object) -> object:
    """Floats to 5 decimals, recursively (the seed std is far above that)."""
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def compact_results(results: dict) -> dict:
    out = {**results}
    if "federated" in results:
        out["federated"] = {m: {**r, "fairness": compact(r["fairness"])} for m, r in results["federated"].items()}
    if "central" in results:
        out["central"] = compact(results["central"])
    return rounded(out)  # type: ignore[return-value]


def print_tables(results: dict) -> None:
    fed = results.get("federated") or {}
    if fed:
        print(f"\nfederated global detectors ({results['config']['rounds']} rounds), held-out faces, "
              f"{len(results['config']['seeds'].split(','))} evaluation seeds; {BLOCK}")  # fmt: skip
        print(f"{'metric':<10}" + "".join(f"{m:>18}" for m in fed))
        for metric in (*METRICS, "auc", "acc"):
            row = []
            for r in fed.values():
                orig = r["fairness"]["original"]
                row.append(cell(orig[metric] if metric in ("auc", "acc") else orig["fairness"][BLOCK][metric]))
            print(f"{metric:<10}" + "".join(f"{c:>18}" for c in row))
        print(f"{'fed AUC':<10}" + "".join(f"{r['federated']['mean_auc']:>18.3f}" for r in fed.values()))
        for rule in ("balanced_accuracy", "match_fpr"):
            cells = []
            for r in fed.values():
                t = (r["fairness"].get("thresholds") or {}).get(rule)
                cells.append(f"{cell(t['fairness'][BLOCK]['DPD'])}" if t else "-")
            print(f"{'DPD thr:' + rule[:6]:<10}" + "".join(f"{c:>18}" for c in cells))
    central = results.get("central")
    if central:
        print(f"\ncentral detector on group-imbalanced faces, {len(central['seeds'])} seeds; {BLOCK}")
        print(f"{'':<26}" + "".join(f"{m:>16}" for m in (*TABLE3, "AUC", "ACC")))

        def show(label: str, r: dict) -> None:
            cells = [cell(r["fairness"][BLOCK][m]) for m in TABLE3] + [cell(r["auc"]), cell(r["acc"])]
            print(f"{label:<26}" + "".join(f"{c:>16}" for c in cells))

        show("original", central["original"])
        for kind, by_rate in (central.get("pruning") or {}).items():
            for rate, r in by_rate.items():
                show(f"{kind} {rate}%", r)
        for rule, r in (central.get("thresholds") or {}).items():
            show(f"thresholds {rule}", r)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="federated,central")
    parser.add_argument("--methods", default="pfr,fedavg,ditto")
    parser.add_argument("--clients", default="pfr:0", help="method:client pairs whose personal model is evaluated too")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--fed-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every fairness run")
    parser.add_argument("--root", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--render", help="print the tables of a saved result and exit")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        if args.out:
            Path(args.out).write_text(json.dumps(saved, indent=1) + "\n")  # already compacted when it was written
        print_tables(saved)
        return
    common = [f"seeds=[{args.seeds}]", f"cluster.num_cpus={args.cpus}", "num_cpus=1", "threads=1", *args.extra]
    results: dict = {"config": {k: v for k, v in vars(args).items() if k not in ("render",)} | {"common": common}}
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        if "federated" in parts:
            results["federated"] = federated_part(args, root, common)
            if args.out:  # keep what is measured if the rest is stopped
                Path(args.out).write_text(json.dumps(compact_results(results), indent=1) + "\n")
        if "central" in parts:
            results["central"] = central_part(args, root, common)
    results = compact_results(results)
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    print_tables(results)


if __name__ == "__main__":
    main()
