"""Federated round overhead: fedray (local Ray) against a plain single-process torch loop and Flower's simulation.

The workload (from the architecture's baseline table): 4 clients, a ~50k-parameter CNN, 512 training samples of
32×32×3 per client, batch 32, 1 local epoch, FedAvg, 5 rounds, one torch thread per worker. All three read the same
data (fedray's synthetic dataset, IID split) and train the same model with the same optimizer.

Each implementation runs in its own process, ``--repeats`` times, so that "whole process" includes interpreter
start, imports and runtime start-up; "later round" is the median time of rounds 2..5 (broadcast, local training,
gather, aggregation). Prints one JSON document and a short table. Usage::

    python benchmarks/fl_overhead.py [--repeats 3] [--impls plain,plain_parallel,fedray,fedray_pool,flower]
                                     [--model cnn|pfr]

``--model pfr`` trains the PFR network everywhere (same trunk widths, its three-head loss); fedray then runs
``method=pfr`` and aggregates only the shared tensors, the plain loop and Flower average the whole state dict, which
costs the same.

``fedray`` gives every client its own actor (``clients.placement=actor``, the cross-silo layout); ``fedray_pool``
runs the four clients as virtual clients on one worker actor per core (``clients.placement=pool``), which is what
Flower's simulation does too. ``plain_parallel`` runs two plain processes at once, each training half the clients
without exchanging anything: the best round time this machine's cores allow, against which framework overhead shows.
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

CLIENTS, ROUNDS, BATCH, LR, MOMENTUM, SEED = 4, 5, 32, 0.05, 0.9, 0
WIDTHS = [24, 48, 96]  # 53k parameters with the 3-channel input and 10 classes
SAMPLES = CLIENTS * 640  # 20 % of each client's 640 is its test split: 512 training samples remain
FEDRAY_OVERRIDES = [
    "data.name=synthetic",
    "data.image_size=32",
    f"data.synthetic_samples={SAMPLES}",
    "data.partition=iid",
    f"clients.num_clients={CLIENTS}",
    "clients.epochs=1",
    f"clients.batch_size={BATCH}",
    f"clients.lr={LR}",
    f"clients.momentum={MOMENTUM}",
    "clients.num_threads=1",
    f"model.widths=[{','.join(map(str, WIDTHS))}]",
    f"server.rounds={ROUNDS}",
    "server.eval_every=0",
    f"seed={SEED}",
]


def _client_arrays():
    """The same per-client training arrays fedray builds from the same config."""
    from fedray.platform.data.config import DataConfig
    from fedray.platform.data.load import load_dataset
    from fedray.platform.data.partition import make_client_shards, shard_data

    cfg = DataConfig(name="synthetic", image_size=32, synthetic_samples=SAMPLES, partition="iid")
    data = load_dataset(cfg, SEED)
    shards = make_client_shards(data.labels, CLIENTS, "iid", cfg.alpha, cfg.test_fraction, SEED)
    return [shard_data(data, s) for s in shards], data.num_classes


ARCHITECTURE = os.environ.get("FL_OVERHEAD_MODEL", "cnn")  # cnn, or pfr (set by --model for every child)


def _model(num_classes: int):
    """The benchmark's model: the plain classifier, or the PFR network (whose training loss has three heads)."""
    from fedray.platform.modules.build import build_model
    from fedray.platform.modules.config import ModelConfig

    return build_model(ARCHITECTURE, ModelConfig(widths=WIDTHS), 3, num_classes)


def _train_one_epoch(model, x, y, round_idx: int) -> None:
    import torch

    from fedray.clients.training import shuffled_batches, train_epochs

    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    batches = shuffled_batches(BATCH, torch.Generator().manual_seed(round_idx))
    train_epochs(model, lambda epoch: (x, y), opt, range(1), batches)


def child_plain(part: int = 0, parts: int = 1) -> dict:
    """Clients ``part::parts`` trained one after another in this process, then their state dicts averaged."""
    import torch

    torch.set_num_threads(1)
    shards, num_classes = _client_arrays()
    data = [(torch.from_numpy(s.train_images), torch.from_numpy(s.train_labels)) for s in shards[part::parts]]
    torch.manual_seed(SEED)
    global_model = _model(num_classes)
    local = _model(num_classes)
    rounds = []
    for r in range(1, ROUNDS + 1):
        start = time.perf_counter()
        states, counts = [], []
        for x, y in data:
            local.load_state_dict(global_model.state_dict())
            _train_one_epoch(local, x, y, r)
            states.append({k: v.clone() for k, v in local.state_dict().items()})
            counts.append(len(y))
        total = sum(counts)
        global_model.load_state_dict(
            {k: sum(s[k] * (n / total) for s, n in zip(states, counts, strict=True)) for k in states[0]}
        )
        rounds.append(time.perf_counter() - start)
    return {"round_seconds": rounds}


def child_flower() -> dict:
    """Flower's simulation runtime: a ServerApp running FedAvg and a ClientApp training the same model."""
    import torch
    from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.serverapp import Grid, ServerApp
    from flwr.serverapp.strategy import FedAvg
    from flwr.simulation import run_simulation

    shards, num_classes = _client_arrays()
    rounds: list[float] = []

    class TimedFedAvg(FedAvg):
        def configure_train(self, server_round, arrays, config, grid):
            self._start = time.perf_counter()
            return super().configure_train(server_round, arrays, config, grid)

        def aggregate_train(self, server_round, replies):
            out = super().aggregate_train(server_round, replies)
            rounds.append(time.perf_counter() - self._start)
            return out

    client_app = ClientApp()

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        torch.set_num_threads(1)
        shard = shards[int(context.node_config["partition-id"])]
        model = _model(num_classes)
        model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
        x, y = torch.from_numpy(shard.train_images), torch.from_numpy(shard.train_labels)
        _train_one_epoch(model, x, y, int(msg.content["config"]["server-round"]))
        content = RecordDict(
            {"arrays": ArrayRecord(model.state_dict()), "metrics": MetricRecord({"num-examples": len(y)})}
        )
        return Message(content=content, reply_to=msg)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        torch.manual_seed(SEED)
        strategy = TimedFedAvg(
            fraction_evaluate=0.0, min_train_nodes=CLIENTS, min_available_nodes=CLIENTS, min_evaluate_nodes=0
        )
        strategy.start(grid=grid, initial_arrays=ArrayRecord(_model(num_classes).state_dict()), num_rounds=ROUNDS)

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=CLIENTS,
        backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2}},
    )
    return {"round_seconds": rounds}


def child_fedray(extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as root:
        cmd = [sys.executable, "-m", "fedray.cluster.cli", "run", "federated", *FEDRAY_OVERRIDES, *extra]
        subprocess.run([*cmd, f"run.root={root}"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        summary = json.loads((Path(root) / "federated" / "default" / "metrics.json").read_text())
    return {"round_seconds": summary["round_seconds"]}


def _run_child(impl: str, extra: list[str], model: str) -> dict:
    """Run one implementation in fresh processes; ``plain_parallel`` is two plain processes at once, each training
    half of the clients with no exchange at all: the floor that this machine's cores allow."""
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "OMP_NUM_THREADS": "1", "FL_OVERHEAD_MODEL": model}
    if impl == "plain_parallel":
        commands = [[sys.executable, __file__, "--child", "plain", "--part", str(i), "--parts", "2"] for i in range(2)]
    else:
        commands = [[sys.executable, __file__, "--child", impl, *(["--extra", *extra] if extra else [])]]
    start = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for c in commands]
    outputs = [p.communicate() for p in procs]
    wall = time.perf_counter() - start
    for proc, (_, err) in zip(procs, outputs, strict=True):
        if proc.returncode != 0:
            raise RuntimeError(f"{impl} failed:\n{err[-3000:]}")
    per_process = [json.loads(out.strip().splitlines()[-1])["round_seconds"] for out, _ in outputs]
    rounds = [max(r) for r in zip(*per_process, strict=True)]
    return {"whole_process_s": wall, "later_round_s": statistics.median(rounds[1:])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--impls", default="plain,plain_parallel,fedray,fedray_pool,flower")
    parser.add_argument("--part", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--parts", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--extra", nargs="*", default=[], help="extra fedray overrides, e.g. model.shared=[encoder.*]")
    parser.add_argument("--model", choices=("cnn", "pfr"), default="cnn", help="pfr: fedray runs method=pfr")
    args = parser.parse_args()
    if args.child:
        result = {"plain": lambda: child_plain(args.part, args.parts), "flower": child_flower}.get(args.child)
        placement = ["clients.placement=pool"] if args.child == "fedray_pool" else []
        out = result() if result else child_fedray([*placement, *args.extra])
        print(json.dumps(out))
        return

    impls = args.impls.split(",")
    runs: dict[str, list[dict]] = {i: [] for i in impls}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits every implementation alike
        for impl in impls:
            extra = [*(["method=pfr"] if args.model == "pfr" else []), *args.extra] if impl.startswith("fedray") else []
            runs[impl].append(_run_child(impl, extra, args.model))
    medians = {
        impl: {key: statistics.median(r[key] for r in rs) for key in ("whole_process_s", "later_round_s")}
        for impl, rs in runs.items()
    }
    cores = os.cpu_count() or 1
    report: dict = {"cores": cores, "model": args.model, "clients": CLIENTS, "rounds": ROUNDS, "repeats": args.repeats}
    report["medians"] = medians
    ratios: dict[str, float] = {}
    for impl in (i for i in impls if i.startswith("fedray") or i == "flower"):
        if "plain" in medians:  # target: at most 1.10
            ideal = medians["plain"]["later_round_s"] / min(cores, CLIENTS)
            ratios[f"{impl}_round_vs_ideal_parallel"] = medians[impl]["later_round_s"] / ideal
        if "plain_parallel" in medians:
            floor = medians["plain_parallel"]["later_round_s"]
            ratios[f"{impl}_round_vs_plain_parallel"] = medians[impl]["later_round_s"] / floor
        if impl == "flower":
            continue
        if "flower" in medians:  # target: below 1.0
            ratios[f"{impl}_whole_vs_flower"] = medians[impl]["whole_process_s"] / medians["flower"]["whole_process_s"]
            ratios[f"{impl}_round_vs_flower"] = medians[impl]["later_round_s"] / medians["flower"]["later_round_s"]
    report["ratios"] = ratios
    report["runs"] = runs
    print(json.dumps(report, indent=2))
    print(f"\n{'implementation':<12} {'whole process':>14} {'later round':>12}", file=sys.stderr)
    for impl, m in medians.items():
        print(f"{impl:<12} {m['whole_process_s']:>12.2f} s {m['later_round_s']:>10.3f} s", file=sys.stderr)
    for key, value in ratios.items():
        print(f"{key}: {value:.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
