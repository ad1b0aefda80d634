"""fedray's messages on Flower's wire, and the contract a Flower app follows to take part.

The shared layers travel as a Flower ``ArrayRecord`` keyed by parameter name (``trunk.stages.stage1.conv.weight``,
...), in the message types and keys of Flower's own strategies, so stock Flower apps interoperate:

* ``train`` — request ``{"arrays": ArrayRecord, "config": {"server-round": r}}``; reply ``{"arrays": ArrayRecord of
  the same names after local training, "metrics": {"num-examples": n, "train_loss": ...}}``. A client that declines a
  round (privacy budget spent) replies ``"num-examples": 0`` with no arrays and ``{"fedray": {"declined": reason}}``.
* ``evaluate`` — the same request; reply ``{"metrics": {"num-examples": n, "acc": ..., "loss": ..., "auc": ...}}``,
  plus facts that are not metrics (``epsilon``, ``state_round``) under ``{"fedray": {...}}``.
* ``query`` (fedray's server only) — ``{"fedray": {"call": "ready" | "rollback", ...}}``: the hand-shake that tells
  the server a silo's client id and data, and the rollback of a resumed run. A silo without a query handler (a plain
  Flower ``ClientApp``) is given a client id by the server instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from fedray.platform.messages import EvalResult, FitResult, NamedArrays

FEDRAY = "fedray"  # the ConfigRecord with fedray's own fields
NUM_EXAMPLES = "num-examples"  # the weight key of Flower's strategies


def to_record(arrays: NamedArrays) -> ArrayRecord:
    return ArrayRecord({name: Array(np.ascontiguousarray(value)) for name, value in arrays.items()})


def from_record(record: ArrayRecord) -> NamedArrays:
    return {name: array.numpy() for name, array in record.items()}


def request(arrays: NamedArrays, round_idx: int) -> RecordDict:
    """A ``train`` or ``evaluate`` request: the global shared tensors and the round, as Flower's strategies send."""
    return RecordDict({"arrays": to_record(arrays), "config": ConfigRecord({"server-round": round_idx})})


def parse_request(content: RecordDict) -> tuple[NamedArrays, int]:
    arrays = next(iter(content.array_records.values()), ArrayRecord())
    config = next(iter(content.config_records.values()), ConfigRecord())
    return from_record(arrays), int(config.get("server-round", 0))


def fit_reply(result: FitResult) -> RecordDict:
    metrics = {NUM_EXAMPLES: result.num_examples, **result.metrics}
    content: dict[str, Any] = {"arrays": to_record(result.arrays), "metrics": MetricRecord(metrics)}
    if result.declined is not None:
        content[FEDRAY] = ConfigRecord({"declined": result.declined})
    return RecordDict(content)


def _fedray_fields(content: RecordDict) -> dict[str, Any]:
    record = content.config_records.get(FEDRAY)
    return dict(record) if record is not None else {}


def _metrics(content: RecordDict) -> dict[str, float]:
    record = next(iter(content.metric_records.values()), MetricRecord())
    return {k: float(v) for k, v in record.items()}


def parse_fit_reply(content: RecordDict, client_id: int) -> FitResult:
    """A ``train`` reply as a :class:`FitResult`: its one ArrayRecord (any key) and ``num-examples``."""
    metrics = _metrics(content)
    num_examples = int(metrics.pop(NUM_EXAMPLES, 0))
    arrays = from_record(next(iter(content.array_records.values()), ArrayRecord()))
    return FitResult(client_id, arrays, num_examples, metrics, _fedray_fields(content).get("declined"))


def eval_reply(result: EvalResult) -> RecordDict:
    metrics = MetricRecord({NUM_EXAMPLES: result.num_examples, **result.metrics})
    return RecordDict({"metrics": metrics, FEDRAY: ConfigRecord(dict(result.info))})


def parse_eval_reply(content: RecordDict, client_id: int) -> EvalResult:
    metrics = _metrics(content)
    num_examples = int(metrics.pop(NUM_EXAMPLES, 0))
    return EvalResult(client_id, num_examples, metrics, _fedray_fields(content))


def query(call: str, **fields: Any) -> RecordDict:
    return RecordDict({FEDRAY: ConfigRecord({"call": call, **fields})})


def parse_query(content: RecordDict) -> dict[str, Any]:
    return _fedray_fields(content)


def answer(**fields: Any) -> RecordDict:
    return RecordDict({FEDRAY: ConfigRecord(fields)})
