"""Cross-silo rounds over Flower (TLS, SuperNode authentication, loopback) against the same job on local Ray.

Starts ``fedray serve`` and ``--silos`` ``fedray join`` processes on 127.0.0.1, runs the PFR workload for
``--rounds`` rounds, then runs the identical job with ``cluster.mode=local`` (one Ray actor per client). Reports the
median round time of each (training and evaluation, from metrics.jsonl), their ratio, and the bytes a client sends
and receives per round: the shared layers fedray puts on the wire against the whole model, and the SuperLink's own
count of the run's network traffic. Prints one JSON document and a short table. Usage::

    python benchmarks/flower_silos.py [--silos 3] [--rounds 4] [--per-class 64]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _round_seconds(run_dir: Path) -> list[float]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["seconds"] for line in lines if line.strip()]


def _fedray(*args: str, log: Path | None = None) -> subprocess.Popen:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "FLWR_TELEMETRY_ENABLED": "0"}
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - the child writes to it
    cmd = [sys.executable, "-m", "fedray.cluster.cli", *args]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def main() -> None:
    from fedray.cluster.credentials import make_credentials
    from fedray.cluster.flower_deploy import stop
    from fedray.cluster.launch import resolve_config
    from fedray.platform.modules.build import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silos", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-class", type=int, default=64)
    args = parser.parse_args()
    job = [f"clients.num_clients={args.silos}", f"server.rounds={args.rounds}", "clients.epochs=1",
           f"data.forgery.train_per_class={args.per_class}", "clients.startup_timeout_s=300"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        creds = make_credentials(root / "creds", args.silos)
        keys = root / "keys"
        keys.mkdir()
        for k in range(args.silos):
            (keys / f"silo{k}.pub").write_bytes((creds / f"silo{k}.pub").read_bytes())
        port = _free_port()
        serve = _fedray("serve", "federated", "--port", str(port), "--credentials", str(creds), "--authorized-keys",
                        str(keys), "--home", str(root / "link"), *job, f"run.root={root / 'flower'}",
                        log=root / "serve.log")  # fmt: skip
        silos = [
            _fedray(
                "join",
                "--superlink",
                f"127.0.0.1:{port}",
                "--ca",
                str(creds / "ca.crt"),
                "--client-id",
                str(k),
                "--key",
                str(creds / f"silo{k}.key"),
                "--state-dir",
                str(root / f"silo{k}"),
                "--port",
                str(_free_port()),
            )
            for k in range(args.silos)
        ]
        try:
            if serve.wait() != 0:
                raise RuntimeError((root / "serve.log").read_text()[-3000:])
        finally:
            for proc in silos:
                stop(proc)
        ray = _fedray("run", "federated", *job, "cluster.mode=local", f"run.root={root / 'ray'}")
        if ray.wait() != 0:
            raise RuntimeError("the Ray run failed")
        flower_dir, ray_dir = root / "flower" / "federated" / "default", root / "ray" / "federated" / "default"
        flower_summary = json.loads((flower_dir / "metrics.json").read_text())
        ray_summary = json.loads((ray_dir / "metrics.json").read_text())
        flower_rounds, ray_rounds = _round_seconds(flower_dir), _round_seconds(ray_dir)

    cfg = resolve_config("federated", None, job)
    model = build_model("pfr", cfg.model, 1, 2)
    whole = sum(p.numel() * p.element_size() for p in model.state_dict().values())
    shared = sum(
        p.numel() * p.element_size()
        for n, p in model.state_dict().items()
        if n.startswith(("trunk.", "R_s.", "head_s."))
    )
    traffic = (flower_summary.get("flower_run") or {}).get("network_traffic") or {}
    per_client_round = traffic.get("total-bytes", 0) / (args.silos * args.rounds)
    report = {
        "config": vars(args),
        "median_round_s": {"flower": statistics.median(flower_rounds), "ray": statistics.median(ray_rounds)},
        "round_ratio_flower_vs_ray": statistics.median(flower_rounds) / statistics.median(ray_rounds),
        "same_metrics": {k: (flower_summary[k], ray_summary[k]) for k in ("mean_auc", "worst_auc", "test_loss")},
        "bytes": {
            "shared_layers": shared,
            "whole_model": whole,
            "shared_fraction": shared / whole,
            # per round a client receives the shared layers twice (train, evaluate) and sends them once
            "fedray_payload_per_client_round": 3 * shared,
            "superlink_traffic_per_client_round": per_client_round,
            "superlink_traffic": traffic,
        },
        "round_seconds": {"flower": flower_rounds, "ray": ray_rounds},
    }
    print(json.dumps(report, indent=2))
    rounds = report["median_round_s"]
    print(f"\nmedian round: flower {rounds['flower']:.2f} s, ray {rounds['ray']:.2f} s "
          f"(ratio {report['round_ratio_flower_vs_ray']:.2f})", file=sys.stderr)  # fmt: skip
    b = report["bytes"]
    print(f"shared layers {b['shared_layers']} B of {b['whole_model']} B ({b['shared_fraction']:.1%}); SuperLink "
          f"traffic per client per round {b['superlink_traffic_per_client_round']:.0f} B", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
