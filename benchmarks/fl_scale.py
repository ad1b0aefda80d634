"""Federated simulation at scale: 1,000 virtual clients on a pool of worker actors, 10 sampled per round.

Runs ``fedray run federated`` (PFR, pool placement, local Ray) in a child process and samples the memory of that
process and all its descendants (the driver, Ray's GCS and raylet, the pool workers and the server) every 0.5 s:
the peak of their summed PSS (proportional set size: shared pages split between the processes sharing them, so
Ray's object store is not counted once per process) and of their summed RSS. Reports the median round time and the
final evaluation over all clients. Each ``clients:cache`` pair of ``--grid`` is one run: the number of virtual
clients, and how many personal states a pool worker may keep in memory (``clients.state_cache``; the rest wait on
disk). The default grid compares 100 and 1,000 clients with a bounded cache, and 1,000 with every state cached.
Usage::

    python benchmarks/fl_scale.py [--grid 100:64,1000:64,1000:1000] [--per-round 10] [--rounds 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil


def _tree_memory(root: psutil.Process) -> tuple[float, float]:
    """(PSS, RSS) in MiB summed over ``root`` and its descendants (processes that vanish meanwhile are skipped)."""
    pss = rss = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        pss += getattr(info, "pss", info.rss) / 2**20
        rss += info.rss / 2**20
    return pss, rss


def run_once(args: argparse.Namespace, clients: int, cache: int, root: str) -> dict:
    overrides = [
        "method=pfr", "data.name=synthetic", "data.image_size=16", "data.synthetic_channels=3",
        f"data.synthetic_samples={clients * args.samples_per_client}", "data.partition=dirichlet",
        "data.min_client_samples=4", f"clients.num_clients={clients}", "clients.placement=pool",
        f"clients.state_cache={cache}", f"server.clients_per_round={args.per_round}", f"server.rounds={args.rounds}",
        "server.eval_every=0", "model.widths=[16,32,64]", f"run.root={root}", f"run.name=c{clients}-{cache}",
    ]  # fmt: skip
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", "federated", *overrides]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    peak = {"pss_mib": 0.0, "rss_mib": 0.0}
    stop = threading.Event()

    def sample() -> None:
        parent = psutil.Process(proc.pid)
        while not stop.is_set():
            pss, rss = _tree_memory(parent)
            peak["pss_mib"], peak["rss_mib"] = max(peak["pss_mib"], pss), max(peak["rss_mib"], rss)
            stop.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{clients} clients, cache {cache} failed:\n{err[-3000:]}")
    summary = json.loads((Path(root) / "federated" / f"c{clients}-{cache}" / "metrics.json").read_text())
    log = (Path(summary["run_dir"]) / "metrics.jsonl").read_text().splitlines()
    rounds = [json.loads(line) for line in log if line.strip()]
    return {
        "clients": clients,
        "state_cache": cache,
        **peak,
        "median_round_s": summary["median_round_seconds"],
        "final_round_with_evaluation_s": rounds[-1]["seconds"],
        "evaluated_clients": summary["evaluated"],
        "cached_states_per_worker": summary["clients"].get("cached_states"),
        "whole_process_s": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="100:64,1000:64,1000:1000", help="clients:state_cache pairs, one run each")
    parser.add_argument("--per-round", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--samples-per-client", type=int, default=60)
    args = parser.parse_args()
    grid = [tuple(int(x) for x in pair.split(":")) for pair in args.grid.split(",")]
    with tempfile.TemporaryDirectory() as root:
        results = [run_once(args, clients, cache, root) for clients, cache in grid]
    report = {"config": vars(args), "cores": os.cpu_count(), "runs": results}
    base = results[0]
    report["pss_ratio_vs_first"] = [r["pss_mib"] / base["pss_mib"] for r in results]
    report["round_ratio_vs_first"] = [r["median_round_s"] / base["median_round_s"] for r in results]
    print(json.dumps(report, indent=2))
    header = (
        f"\n{'clients':>7} {'cache':>5} {'peak PSS':>10} {'peak RSS':>10} {'median round':>13} {'cached/worker':>14}"
    )
    print(header, file=sys.stderr)
    for r in results:
        print(
            f"{r['clients']:>7} {r['state_cache']:>5} {r['pss_mib']:>6.0f} MiB {r['rss_mib']:>6.0f} MiB "
            f"{r['median_round_s']:>11.3f} s {r['cached_states_per_worker']!s:>14}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
