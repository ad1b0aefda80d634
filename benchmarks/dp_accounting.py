"""What computing a client's ε costs as rounds accumulate: the accountant history kept round by round against the
folded history fedray keeps (rounds with the same noise and sampling rate as one entry).

A DP client computes ε after every fit and reports it at every evaluation. opacus' RDP accountant sums the Rényi
divergence of each history entry over its orders, so its cost grows with the number of entries; Rényi DP composes
additively over steps, so folding equal entries gives the same ε. For each number of rounds this script times
``get_epsilon`` on both histories, side by side in one process, and reports their ratio and the relative difference
of the two ε. The default sampling rate is the PFR recipe's (batch 32 over a client's ~400 training samples, so
12 steps a local epoch, 2 epochs a round). Usage::

    python benchmarks/dp_accounting.py [--rounds 1 10 40] [--sigma 1.0] [--q 0.08] [--repeats 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from opacus.accountants import RDPAccountant

from fedray.clients.privacy import merged

DELTA = 1e-5


def _timed_epsilon(history: list[tuple[float, float, int]], repeats: int) -> tuple[float, float]:
    """(median ms, ε) of a fresh accountant's ``get_epsilon`` over ``history``."""
    times, epsilon = [], 0.0
    for _ in range(repeats):
        accountant = RDPAccountant()
        accountant.history = list(history)
        started = time.perf_counter()
        epsilon = float(accountant.get_epsilon(DELTA))
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times), epsilon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 10, 40])
    parser.add_argument("--sigma", type=float, default=1.0, help="noise multiplier")
    parser.add_argument("--q", type=float, default=0.08, help="Poisson sampling rate")
    parser.add_argument("--steps-per-round", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    rows = []
    for rounds in args.rounds:
        per_round = [(args.sigma, args.q, args.steps_per_round)] * rounds
        plain_ms, plain_eps = _timed_epsilon(per_round, args.repeats)
        folded_ms, folded_eps = _timed_epsilon(merged(per_round), args.repeats)
        rows.append({
            "rounds": rounds, "per_round_ms": plain_ms, "folded_ms": folded_ms, "speedup": plain_ms / folded_ms,
            "epsilon": folded_eps, "epsilon_relative_difference": abs(plain_eps - folded_eps) / plain_eps,
        })  # fmt: skip
    result = {"config": vars(args), "delta": DELTA, "rows": rows}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'rounds':>7}{'per-round ms':>14}{'folded ms':>11}{'speed-up':>10}{'ε':>9}{'ε rel. diff':>13}")
    for r in rows:
        print(f"{r['rounds']:>7}{r['per_round_ms']:>14.1f}{r['folded_ms']:>11.1f}{r['speedup']:>9.1f}×"
              f"{r['epsilon']:>9.3f}{r['epsilon_relative_difference']:>13.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
