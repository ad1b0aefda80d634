"""The ``fedray`` command line: ``list``, ``config``, ``run``, ``submit``.

User mistakes (unknown workload, unknown key, wrong type, missing file) print one line on stderr and exit with
status 2; Ctrl-C exits with 130 after the workload has kept its last complete checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from fedray.platform.errors import FedrayError
from fedray.platform.registry import WORKLOADS


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", help="workload name (see `fedray list`)")
    parser.add_argument("--config", metavar="FILE", help="YAML file merged onto the workload's defaults")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="omegaconf dotlist overrides")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fedray", description="Federated and continual learning on Ray actors.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the workloads, one line each, with their resources")
    _add_config_args(sub.add_parser("config", help="print a workload's resolved config as YAML"))
    _add_config_args(sub.add_parser("run", help="run a workload"))
    submit = sub.add_parser("submit", help="run a workload as a job on a Ray cluster and stream its logs")
    _add_config_args(submit)
    submit.add_argument("--address", required=True, help="the cluster's Jobs API, e.g. http://127.0.0.1:8265")
    submit.add_argument("--working-dir", default=".", help="folder uploaded with the job (default: .)")
    submit.add_argument("--no-wait", action="store_true", help="return after submitting, without streaming logs")
    return parser


def _list() -> int:
    width = max(len(name) for name in WORKLOADS)
    for w in WORKLOADS.values():
        print(f"{w.name:<{width}}  cpus={w.num_cpus:g} gpus={w.num_gpus:g}  {w.summary}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        return _list()
    from fedray.cluster.launch import resolve_config, run_workload
    from fedray.platform.config import to_yaml

    if args.command == "config":
        print(to_yaml(resolve_config(args.workload, args.config, args.overrides)), end="")
        return 0
    if args.command == "run":
        cfg = resolve_config(args.workload, args.config, args.overrides)
        summary, run_dir = run_workload(args.workload, cfg)
        print(f"results: {run_dir.path}  (metrics.json, metrics.jsonl, checkpoints/, plots/)")
        return 0 if summary.get("status", "completed") == "completed" else 1
    from fedray.cluster.submit import submit

    return submit(args.workload, args.address, args.config, args.overrides, args.working_dir, not args.no_wait)


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse, letting ``key=value`` overrides stand before or after the options (argparse alone stops at them)."""
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    stray = [a for a in rest if "=" not in a or a.startswith("-")]
    if stray or (rest and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or rest)}")
    if rest:
        args.overrides = [*args.overrides, *rest]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        return _dispatch(args)
    except FedrayError as exc:
        print(f"fedray: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fedray: interrupted; the last complete checkpoint is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
