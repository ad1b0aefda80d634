"""The parameter server: holds the global shared tensors and runs one federated round at a time.

A round: sample clients, put the global tensors into the object store once, ask every sampled client to ``fit``
with that one reference, gather with ``wait`` under a timeout, validate every update, aggregate when a quorum of
valid updates arrived, and (on evaluation rounds) ask every client to ``evaluate`` the new tensors. Clients that
fail, time out or send unusable updates are counted per client and skipped; they never stall or poison the round.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedray.platform.messages import EvalResult, FitResult, NamedArrays
from fedray.platform.metrics.aggregate import weighted_mean
from fedray.platform.runtime import Runtime
from fedray.platform.seeding import numpy_rng
from fedray.server.checkpoint import ServerCheckpoint
from fedray.server.config import ServerConfig
from fedray.server.strategies import ServerAdam, aggregate_named
from fedray.server.validation import update_problem


@dataclass
class RoundOutcome:
    """What the driver logs and checkpoints after a round: the record and the server's new state."""

    round: int
    checkpoint: ServerCheckpoint
    record: dict[str, Any]
    evaluations: list[EvalResult]


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


class ParameterServer:
    """``clients[k]`` is the handle of client ``k``; ``runtime`` resolves their references."""

    def __init__(
        self,
        clients: list[Any],
        initial: NamedArrays,
        cfg: ServerConfig,
        strategy: str,
        runtime: Runtime,
        seed: int,
    ) -> None:
        self.clients, self.weights, self.cfg = clients, dict(initial), cfg
        self.strategy, self.runtime, self.seed = strategy, runtime, seed
        self.failures: Counter[int] = Counter()
        self.rejections: Counter[int] = Counter()
        self.rejection_reasons: dict[int, str] = {}
        self.declines: Counter[int] = Counter()  # rounds a client chose not to train (e.g. privacy budget spent)
        self.server_opt = (
            ServerAdam(cfg.adam_lr, cfg.adam_betas[0], cfg.adam_betas[1], cfg.adam_tau)
            if strategy == "fedadam"
            else None
        )

    def checkpoint(self, round_idx: int) -> ServerCheckpoint:
        optimizer = self.server_opt.state() if self.server_opt else {}
        return ServerCheckpoint(round_idx, self.strategy, self.weights, optimizer, self.counters())

    def restore(self, checkpoint: ServerCheckpoint) -> int:
        """Continue from ``checkpoint`` (a resumed run): global tensors, optimizer moments, counters."""
        if checkpoint.strategy != self.strategy:
            raise ValueError(f"checkpoint was made with strategy {checkpoint.strategy!r}, not {self.strategy!r}")
        if set(checkpoint.weights) != set(self.weights):
            raise ValueError("checkpoint tensors do not match this model's shared tensors")
        self.weights = dict(checkpoint.weights)
        if self.server_opt is not None:
            self.server_opt.load_state(checkpoint.optimizer)
        self.failures = Counter(checkpoint.counters.get("failures", {}))
        self.rejections = Counter(checkpoint.counters.get("rejections", {}))
        self.declines = Counter(checkpoint.counters.get("declines", {}))
        return checkpoint.round

    def sample(self, round_idx: int) -> list[int]:
        """Client ids for this round, drawn without replacement from ``(seed, round)``."""
        count = self.cfg.clients_per_round or len(self.clients)
        rng = numpy_rng(self.seed, "sample", round_idx)
        return sorted(int(k) for k in rng.choice(len(self.clients), size=count, replace=False))

    def quorum(self, sampled: int) -> int:
        return self.cfg.min_clients if self.cfg.min_clients is not None else max(1, math.ceil(sampled / 2))

    def _gather(self, method: str, client_ids: list[int], *args: Any) -> tuple[dict[int, Any], dict[int, str]]:
        """Call ``method(*args)`` on the clients; results and failure reasons by client id, within the round timeout.

        At most ``cfg.max_concurrent`` calls are in flight (back-pressure with ``wait``): clients that share cores
        then take turns instead of time-slicing them, which is faster; each finished call starts the next.
        """
        deadline = time.monotonic() + self.cfg.round_timeout_s
        limit = self.cfg.max_concurrent or len(client_ids)
        queue, in_flight = list(client_ids), {}
        results: dict[int, Any] = {}
        failed: dict[int, str] = {}
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                client_id = queue.pop(0)
                in_flight[getattr(self.clients[client_id], method).remote(*args)] = client_id
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _ = self.runtime.wait(list(in_flight), num_returns=1, timeout=remaining)
            for ref in ready:
                client_id = in_flight.pop(ref)
                try:
                    results[client_id] = self.runtime.get(ref)
                except Exception as exc:  # noqa: BLE001 - any client failure is that client's, not the round's
                    failed[client_id] = _reason(exc)
        for client_id in [*in_flight.values(), *queue]:
            failed[client_id] = f"no answer within {self.cfg.round_timeout_s} s"
        for client_id in failed:
            self.failures[client_id] += 1
        return results, failed

    def _valid_updates(
        self, results: dict[int, Any]
    ) -> tuple[list[tuple[NamedArrays, int]], list[FitResult], dict[int, str], dict[int, str]]:
        valid, kept, rejected, declined = [], [], {}, {}
        for client_id in sorted(results):
            res = results[client_id]
            if isinstance(res, FitResult) and res.declined is not None:
                declined[client_id] = res.declined
                self.declines[client_id] += 1
                continue
            problem = (
                f"not a FitResult ({type(res).__name__})"
                if not isinstance(res, FitResult)
                else update_problem(res.arrays, res.num_examples, self.weights, self.cfg.max_update_norm)
            )
            if problem is None:
                valid.append((res.arrays, res.num_examples))
                kept.append(res)
            else:
                rejected[client_id] = problem
                self.rejections[client_id] += 1
                self.rejection_reasons[client_id] = problem
        return valid, kept, rejected, declined

    def run_round(self, round_idx: int, evaluate: bool) -> RoundOutcome:
        start = time.perf_counter()
        sampled = self.sample(round_idx)
        ref = self.runtime.put(self.weights)  # one copy in the object store, shared by every sampled client
        results, failed = self._gather("fit", sampled, ref, round_idx)
        valid, kept, rejected, declined = self._valid_updates(results)
        quorum = self.quorum(len(sampled))
        aggregated = len(valid) >= quorum
        if aggregated:
            averaged = aggregate_named(self.strategy, valid, self.cfg)
            self.weights = self.server_opt.step(self.weights, averaged) if self.server_opt else averaged
        fit_seconds = time.perf_counter() - start
        losses = [r for r in kept if "train_loss" in r.metrics]  # a plain Flower client may not report one
        record: dict[str, Any] = {
            "round": round_idx,
            "sampled": len(sampled),
            "updates": len(valid),
            "failed": failed,
            "rejected": rejected,
            "declined": declined,
            "aggregated": aggregated,
            "train_loss": weighted_mean([r.metrics["train_loss"] for r in losses], [r.num_examples for r in losses]),
            "fit_seconds": fit_seconds,  # the whole fit phase: broadcast, local training, gather, aggregation
            "client_fit_seconds": {r.client_id: r.metrics.get("fit_seconds") for r in kept},  # training alone
        }
        evaluations: list[EvalResult] = []
        if evaluate:
            evaluations = self.evaluate(round_idx)
            record.update(self.summarize(evaluations))
        record["seconds"] = time.perf_counter() - start
        return RoundOutcome(round_idx, self.checkpoint(round_idx), record, evaluations)

    def evaluate(self, round_idx: int) -> list[EvalResult]:
        """Every client's evaluation of the current global tensors (failed clients are counted and left out)."""
        ref = self.runtime.put(self.weights)
        results, _ = self._gather("evaluate", list(range(len(self.clients))), ref, round_idx)
        return [results[k] for k in sorted(results) if isinstance(results[k], EvalResult)]

    @staticmethod
    def summarize(evaluations: list[EvalResult]) -> dict[str, float]:
        """Per metric: ``test_*`` weighted by examples, ``mean_*`` over clients; ``worst_acc`` / ``worst_auc``: the
        weakest client's (personalised methods are judged by their worst client too)."""
        if not evaluations:
            return {}
        counts = [e.num_examples for e in evaluations]
        out: dict[str, float] = {}
        for key in evaluations[0].metrics:
            values = [e.metrics[key] for e in evaluations]
            out[f"test_{key}"] = weighted_mean(values, counts)
            out[f"mean_{key}"] = float(np.nanmean(values))
            if key in ("acc", "auc"):
                out[f"worst_{key}"] = float(np.nanmin(values))
        out["evaluated"] = len(evaluations)
        return out

    def counters(self) -> dict[str, dict[int, int]]:
        return {"failures": dict(self.failures), "rejections": dict(self.rejections), "declines": dict(self.declines)}
