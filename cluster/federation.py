"""The ``federated`` workload: place client actors and a parameter-server actor on a runtime and drive the rounds.

The driver does all file I/O (metrics log, checkpoints, plots) so that on a cluster the results land where the job
was started; the actors only compute.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch

from fedray.clients.methods import METHODS, shared_patterns
from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.placement import actors_of, place_clients, reserve_workers
from fedray.platform.data.federated import federated_data
from fedray.platform.errors import ConfigError, FedrayError
from fedray.platform.interrupts import interrupts_deferred
from fedray.platform.messages import EvalResult
from fedray.platform.modules.build import build_model
from fedray.platform.params import count_parameters, get_arrays, split_names
from fedray.platform.plots import line_plot
from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.platform.seeding import derive_seed
from fedray.server.checkpoint import ServerCheckpoint
from fedray.server.parameter_server import ParameterServer, RoundOutcome

SHOWN = ("train_loss", "test_acc", "mean_auc", "seconds")  # what the progress display shows of each round


def _wait_until_started(runtime: Runtime, clients: list[Any], cfg: FederatedConfig, placement: dict) -> None:
    """Block until every client actor is constructed; an actor that cannot be placed is an error, not a hang."""
    refs = [c.ready.remote() for c in clients]
    ready, pending = runtime.wait(refs, num_returns=len(refs), timeout=cfg.clients.startup_timeout_s)
    if pending:
        for actor in actors_of(clients):  # leave nothing pending behind on a shared cluster
            runtime.kill(actor)
        asks = f"num_cpus={placement['num_cpus']:g}, num_gpus={placement['num_gpus']:g}"
        raise FedrayError(
            f"{len(pending)} of {len(refs)} client actors did not start within {cfg.clients.startup_timeout_s:g} s "
            f"({placement['workers']} workers in '{placement['placement']}' placement, each asking for {asks}; "
            f"the cluster has {runtime.total_cpus():g} CPUs, "
            f"{runtime.total_gpus():g} GPUs); lower clients.num_cpus/num_gpus or raise clients.startup_timeout_s"
        )
    runtime.get(ready)


def _evaluate_now(round_idx: int, cfg: FederatedConfig) -> bool:
    every = cfg.server.eval_every
    return round_idx == cfg.server.rounds or (every > 0 and round_idx % every == 0)


def resume_point(cfg: FederatedConfig, run_dir: RunDir) -> ServerCheckpoint | None:
    """The server checkpoint to continue from (``resume=true``), or None for a fresh run."""
    if not cfg.resume:
        shutil.rmtree(run_dir.client_states, ignore_errors=True)  # a fresh run must not inherit old personal state
        return None
    path = run_dir.checkpoint("server")
    if not path.is_file():
        raise ConfigError(f"resume=true but no server checkpoint at {path}: the run never completed a round")
    checkpoint = ServerCheckpoint.load(path)
    if checkpoint.round > cfg.server.rounds:
        raise ConfigError(
            f"server.rounds={cfg.server.rounds} is fewer than the {checkpoint.round} rounds the run has completed: "
            "a resume continues a run to the same or more rounds"
        )
    return checkpoint


@dataclass
class Federation:
    """A run's clients as the driver sees them, wherever they live (Ray actors, pool workers, Flower silos): one
    handle per client id, the actors to roll back on resume, the placement for metrics.json, and what the model
    must accept."""

    clients: list[Any]
    actors: list[Any]
    placement: dict[str, Any]
    in_channels: int
    num_classes: int
    facts: dict[str, Any] = field(default_factory=dict)  # about the data, for metrics.json


def run(cfg: FederatedConfig, runtime: Runtime, run_dir: RunDir) -> dict[str, Any]:
    """The workload's entry on Ray or inline: load the clients' data, place the clients, drive the rounds."""
    started = time.perf_counter()
    if cfg.data.scope == "all":
        raise ConfigError(
            "data.scope=all gives a silo all of its own data (fedray join); the clients of one cluster share one "
            "dataset, so use data.scope=shard"
        )
    data = federated_data(cfg.data, cfg.clients.num_clients, cfg.seed)
    resume_from = resume_point(cfg, run_dir)  # after loading data: bad input must not cost an earlier run its state
    asked = time.time()
    reservation = reserve_workers(cfg, runtime)
    try:
        clients, placement = place_clients(
            cfg, runtime, data.clients, str(run_dir.client_states.resolve()), reservation
        )
        placement.update(reserved_unix=time.time(), queued_seconds=time.time() - asked)  # waiting for a busy cluster
        _wait_until_started(runtime, clients, cfg, placement)
        facts = {
            "dataset": data.name,
            "data_skipped_images": data.skipped_images,
            "data_skipped_examples": data.skipped_examples,
        }
        federation = Federation(clients, actors_of(clients), placement, data.in_channels, data.num_classes, facts)
        return drive(cfg, runtime, run_dir, federation, resume_from, started)
    finally:
        runtime.release(reservation)  # its actors go with it: the run is over


def drive(
    cfg: FederatedConfig,
    runtime: Runtime,
    run_dir: RunDir,
    federation: Federation,
    resume_from: ServerCheckpoint | None,
    started: float,
) -> dict[str, Any]:
    """Spawn the parameter server, restore a resumed run, run the rounds with a checkpoint after each; the summary."""
    torch.manual_seed(derive_seed(cfg.seed, "model-init"))
    method = METHODS[cfg.method]
    model = build_model(method.architecture, cfg.model, federation.in_channels, federation.num_classes)
    shared_names, personal_names = split_names(model, shared_patterns(method, cfg.model))
    initial = get_arrays(model, shared_names)
    clients, placement = federation.clients, federation.placement
    if cfg.server.max_concurrent is not None:
        placement["max_concurrent"] = cfg.server.max_concurrent
    server_cfg = dataclasses.replace(cfg.server, max_concurrent=placement["max_concurrent"])
    server = runtime.spawn(
        ParameterServer, clients, initial, server_cfg, cfg.strategy, runtime, cfg.seed, num_cpus=cfg.server.num_cpus
    )
    done = 0
    if resume_from is not None:  # server state, client personal states and the log all go back to one round
        done = runtime.get(server.restore.remote(resume_from))
        runtime.get([actor.rollback.remote(done) for actor in federation.actors])
        run_dir.restart_log(run_dir.read_log(done))
    else:
        run_dir.start_log()
    history = run_dir.read_log(done)
    setup_seconds = time.perf_counter() - started

    outcome: RoundOutcome | None = None
    summary: dict[str, Any] = {
        "workload": "federated",
        "method": cfg.method,
        "strategy": cfg.strategy,
        "runtime": runtime.mode,
        **federation.facts,
        "num_clients": cfg.clients.num_clients,
        "num_parameters": count_parameters(model),
        "shared_tensors": len(shared_names),
        "personal_tensors": len(personal_names),
        "clients": placement,
        "privacy": dataclasses.asdict(cfg.privacy),
        "resumed_from_round": resume_from.round if resume_from else None,
        "setup_seconds": setup_seconds,
    }
    try:
        with StepProgress("round", cfg.server.rounds, start=done) as progress:
            for round_idx in range(done + 1, cfg.server.rounds + 1):
                outcome = runtime.get(server.run_round.remote(round_idx, _evaluate_now(round_idx, cfg)))
                with interrupts_deferred():  # checkpoint and log always agree on the last complete round
                    outcome.checkpoint.save(run_dir.checkpoint("server"))
                    run_dir.log(outcome.record)
                    history.append(outcome.record)
                progress.advance({k: outcome.record[k] for k in SHOWN if k in outcome.record})
    except KeyboardInterrupt:
        summary.update(status="interrupted", rounds_completed=len(history))
        run_dir.write_summary(summary)
        raise

    evaluations = outcome.evaluations if outcome else runtime.get(server.evaluate.remote(done))
    round_seconds = [r["fit_seconds"] for r in history]
    summary.update(
        status="completed",
        rounds_completed=len(history),
        **ParameterServer.summarize(evaluations),
        per_client=_per_client(evaluations, runtime.get(server.counters.remote())),
        round_seconds=round_seconds,
        median_round_seconds=statistics.median(round_seconds) if round_seconds else None,
        total_seconds=time.perf_counter() - started,
    )
    if placement.get("placement") == "pool":  # the bounded store at work: personal states in memory per worker
        memory = runtime.get([worker.memory.remote() for worker in federation.actors])
        placement["cached_states"] = [m["cached_states"] for m in memory]
    if cfg.privacy.enabled:
        summary["max_epsilon"] = max((e.info.get("epsilon", 0.0) for e in evaluations), default=0.0)
    if history:
        _plot_main_curve(run_dir, history, f"federated {cfg.method} / {cfg.strategy}")
    return summary


def _per_client(evaluations: list[EvalResult], counters: dict[str, dict[int, int]]) -> list[dict[str, Any]]:
    """Each client's final metrics and facts (ε, the round of its personal state) with the rounds it failed, the
    updates the server rejected and the rounds it declined."""
    return [
        {
            "client": e.client_id,
            "n_samples": e.num_examples,
            **e.metrics,
            **e.info,
            "epsilon": e.info.get("epsilon"),  # None without privacy: no guarantee at all, not ε = 0
            "failed_rounds": counters["failures"].get(e.client_id, 0),
            "rejected_updates": counters["rejections"].get(e.client_id, 0),
            "declined_rounds": counters["declines"].get(e.client_id, 0),
        }
        for e in evaluations
    ]


def _plot_main_curve(run_dir: RunDir, history: list[dict[str, Any]], title: str) -> None:
    """Mean and worst client AUC per evaluated round (accuracy where there is no AUC)."""
    evaluated = [r for r in history if "test_acc" in r]
    metric = "auc" if "mean_auc" in evaluated[-1] else "acc"
    series = {
        "mean over clients": [r[f"mean_{metric}"] for r in evaluated],
        "worst client": [r[f"worst_{metric}"] for r in evaluated],
    }
    line_plot(run_dir.plot(f"test_{metric}"), [r["round"] for r in evaluated], series, "round", f"test {metric}", title)
