"""The ``fedray`` command line: ``list``, ``config``, ``run``, ``submit``, and across silos ``credentials``,
``serve``, ``join``.

User mistakes (unknown workload, unknown key, wrong type, missing file) print one line on stderr and exit with
status 2; Ctrl-C exits with 130 after the workload has kept its last complete checkpoint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from fedray.platform.errors import FedrayError
from fedray.platform.registry import WORKLOADS


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("workload", help="workload name (see `fedray list`)")
    parser.add_argument("--config", metavar="FILE", help="YAML file merged onto the workload's defaults")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="omegaconf dotlist overrides")


def _int_within(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high] (no upper bound when ``high`` is None)."""

    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            bound = f"{low}-{high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"{what} is {bound}, got {value}")
        return value

    return parse


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
    pipeline = sub.add_parser("pipeline", help="run a DAG of workloads as Ray tasks (configs/pipelines/*.yaml)")
    pipeline.add_argument("file", help="the pipeline's YAML file")
    pipeline.add_argument("overrides", nargs="*", metavar="key=value", help="e.g. resume=true cluster.mode=inline")
    _add_flower_commands(sub)
    return parser


def _add_link_args(parser: argparse.ArgumentParser, ca_help: str) -> None:
    parser.add_argument("--insecure", action="store_true", help="no TLS and no SuperNode authentication (loopback)")
    parser.add_argument("--ca", metavar="FILE", help=ca_help)


def _add_flower_commands(sub: argparse._SubParsersAction) -> None:
    creds = sub.add_parser("credentials", help="make a CA, the SuperLink's certificate and silo key pairs")
    creds.add_argument("out", help="folder to write them to")
    tcp_port, count = _int_within(1, 65535, "a port"), _int_within(0, None, "the number of silos")
    creds.add_argument("--silos", type=count, default=3, help="key pairs to make: silo0.key/.pub, ...")
    creds.add_argument("--host", action="append", help="name or address the SuperLink is reached at (repeatable)")
    serve = sub.add_parser("serve", help="run a federation across silos: a Flower SuperLink with fedray's server")
    _add_config_args(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address the SuperLink listens on")
    serve.add_argument("--port", type=tcp_port, default=9093)
    serve.add_argument("--credentials", metavar="DIR", help="folder with ca.crt, server.pem, server.key")
    serve.add_argument("--authorized-keys", metavar="DIR", help="folder of the silos' <name>.pub keys to register")
    serve.add_argument("--home", default=".fedray-flower", help="the SuperLink's state and logs")
    serve.add_argument("--insecure", action="store_true", help="no TLS and no SuperNode authentication (loopback)")
    join = sub.add_parser("join", help="join a federation as one silo: a Flower SuperNode with fedray's client")
    join.add_argument("--superlink", required=True, metavar="HOST:PORT")
    join.add_argument("--client-id", type=_int_within(0, None, "a client id"), required=True)
    join.add_argument("--key", metavar="FILE", help="this silo's private key (registered by the server operator)")
    join.add_argument("--state-dir", default=".fedray-silo", help="where this silo keeps its personal state")
    join.add_argument("--port", type=tcp_port, default=9094, help="the SuperNode's local port for its ClientApp")
    join.add_argument("--retry-s", type=float, default=120.0, help="keep restarting a refused SuperNode this long")
    _add_link_args(join, "the CA certificate that signed the SuperLink's certificate")
    join.add_argument("overrides", nargs="*", metavar="key=value", help="this silo's overrides, e.g. data.path=...")


def _list() -> int:
    width = max(len(name) for name in WORKLOADS)
    for w in WORKLOADS.values():
        print(f"{w.name:<{width}}  cpus={w.num_cpus:g} gpus={w.num_gpus:g}  {w.summary}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        return _list()
    from fedray.cluster.launch import resolve_config, run_workload, skipped_counts
    from fedray.platform.config import to_yaml

    if args.command == "config":
        print(to_yaml(resolve_config(args.workload, args.config, args.overrides)), end="")
        return 0
    if args.command == "run":
        cfg = resolve_config(args.workload, args.config, args.overrides)
        summary, run_dir = run_workload(args.workload, cfg)
        skipped = skipped_counts(summary)
        if skipped:
            counts = ", ".join(f"{key}={count}" for key, count in skipped.items())
            print(f"note: unreadable inputs were skipped ({counts}); metrics.json names the first few")
        print(f"results: {run_dir.path}  (metrics.json, metrics.jsonl, checkpoints/, plots/)")
        return 0 if summary.get("status", "completed") == "completed" else 1
    if args.command in ("credentials", "serve", "join"):
        return _flower(args)
    if args.command == "pipeline":
        return _pipeline(args.file, args.overrides)
    from fedray.cluster.submit import submit

    return submit(args.workload, args.address, args.config, args.overrides, args.working_dir, not args.no_wait)


def _pipeline(file: str, overrides: Sequence[str]) -> int:
    from fedray.cluster.pipeline import pipeline_dir, run_pipeline
    from fedray.cluster.pipeline_config import PipelineConfig
    from fedray.platform.config import load_config

    cfg = load_config(PipelineConfig, file, list(overrides))
    summary = run_pipeline(cfg)
    for name, step in summary["steps"].items():
        seconds = f"{step['seconds']:.1f} s" if step.get("seconds") is not None else "-"
        note = f"  {step['error']}" if step.get("error") else ""
        print(f"{name:<16} {step['workload']:<10} {step['status']:<9} {seconds:>9}{note}")
    print(f"results: {pipeline_dir(cfg) / 'pipeline.json'}  (wall {summary['wall_seconds']:.1f} s)")
    return 0 if all(s["status"] in ("completed", "reused") for s in summary["steps"].values()) else 1


def _flower(args: argparse.Namespace) -> int:
    import signal
    from pathlib import Path

    from fedray.cluster import flower_deploy, flower_inputs
    from fedray.cluster.credentials import make_credentials
    from fedray.cluster.launch import check_resumable, resolve_config

    if args.command == "credentials":
        flower_inputs.check_new_credentials(Path(args.out), args.silos)
        print(f"credentials: {make_credentials(args.out, args.silos, args.host)}")
        return 0
    # serve and join own Flower processes in sessions of their own: on SIGTERM, unwind so that they are stopped too
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    if args.command == "serve":
        if args.workload != "federated":
            raise FedrayError(f"only the federated workload runs across silos, not {args.workload!r}")
        if args.credentials is None and not args.insecure:
            raise FedrayError("serve needs --credentials DIR (TLS), or --insecure on a trusted loopback")
        cfg = resolve_config(args.workload, args.config, args.overrides)
        cfg.run.root = str(Path(cfg.run.root).resolve())  # the ServerApp runs elsewhere: no relative paths
        check_resumable(args.workload, cfg)
        credentials = None if args.insecure else Path(args.credentials)
        ca = None if credentials is None else credentials / "ca.crt"
        if credentials is not None:  # every file checked before the SuperLink starts
            flower_inputs.check_server_credentials(credentials)
        if credentials is not None and args.authorized_keys is None:
            raise FedrayError("serve with --credentials needs --authorized-keys DIR, the silos' <silo>.pub keys")
        keys = flower_inputs.authorized_keys(Path(args.authorized_keys)) if credentials is not None else []
        home = flower_inputs.check_writable_folder(Path(args.home), "--home")
        link = flower_deploy.Link(args.host, args.port, ca)
        summary = flower_deploy.serve(cfg, link, credentials, keys, home)
        print(f"results: {summary['run_dir']}  (metrics.json, metrics.jsonl, checkpoints/, plots/)")
        return 0
    if args.ca is None and not args.insecure:
        raise FedrayError("join needs --ca FILE (the federation's CA certificate), or --insecure on a trusted loopback")
    host, port = flower_inputs.superlink_address(args.superlink)
    ca = None if args.insecure else Path(args.ca)
    if ca is not None:
        flower_inputs.certificate(ca, "--ca")
    key = Path(args.key) if args.key else None
    if key is not None:
        flower_inputs.check_silo_key(key)
    own = resolve_config("federated", None, args.overrides)  # a silo's own overrides, checked before it joins
    flower_inputs.check_silo_data(own.data)
    state_dir = flower_inputs.check_writable_folder(Path(args.state_dir), "--state-dir")
    link = flower_deploy.Link(host, port, ca)
    return flower_deploy.join(link, args.client_id, key, state_dir, args.port, args.overrides, args.retry_s)


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
