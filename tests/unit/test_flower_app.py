"""fedray's Flower apps in one process: a fake Grid hands each message to the silo's ClientApp handler, so the
ServerApp's round logic, the wire format and the interoperability with plain Flower clients are checked in seconds.
The real SuperLink/SuperNode processes are exercised in tests/integration/test_flower_silos.py."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from flwr.app import ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from skimage import io

from fedray.cluster import flower_app
from fedray.cluster.federation import drive, resume_point
from fedray.cluster.flower_runtime import GridRuntime
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.config import to_yaml
from fedray.platform.data.silo_cache import CACHE_FILE
from fedray.platform.errors import FedrayError
from fedray.platform.io import load_arrays
from fedray.platform.rundir import RunDir

TINY = ["data.forgery.train_per_class=16", "data.forgery.test_per_class=8", "model.widths=[8,16]",
        "clients.num_clients=3", "server.rounds=2", "clients.startup_timeout_s=5"]  # fmt: skip


class FakeGrid:
    """The Grid of a run whose SuperNodes answer at once: node id → handler(message) → reply (None: no answer)."""

    def __init__(self, nodes):
        self.nodes, self.replies, self.ids = nodes, {}, itertools.count()
        self.sent_bytes: list[int] = []

    def get_node_ids(self):
        return sorted(self.nodes)

    def push_messages(self, messages):
        ids = []
        for message in messages:
            message_id = f"m{next(self.ids)}"
            message.metadata.__dict__["_message_id"] = message_id  # the SuperLink assigns ids on push
            self.sent_bytes.append(sum(r.count_bytes() for r in message.content.array_records.values()))
            TaskIdentity.node_id = message.metadata.dst_node_id  # replies are made "on" that node
            try:
                reply = self.nodes[message.metadata.dst_node_id](message)
            except Exception as exc:  # noqa: BLE001 - what a ClientApp that raises sends back
                reply = Message(Error(2, f"{type(exc).__name__}: {exc}"), reply_to=message)
            if reply is not None:
                self.replies[message_id] = reply
            ids.append(message_id)
        return ids

    def pull_messages(self, message_ids):
        return [self.replies.pop(i) for i in message_ids if i in self.replies]

    def send_and_receive(self, messages, *, timeout=None):  # what Flower's own strategies use
        return self.pull_messages(self.push_messages(messages))


@pytest.fixture(autouse=True)
def task_identity(monkeypatch):
    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0, raising=False)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1, raising=False)


def fedray_silo(cfg, client_id: int, state_dir, overrides: str = ""):
    node = {"client-id": client_id, "state-dir": str(state_dir), "overrides": overrides}
    context = Context(1, 100 + client_id, node, RecordDict(), {flower_app.CONFIG_KEY: to_yaml(cfg)})
    handlers = {"train": flower_app.train, "evaluate": flower_app.evaluate, "query": flower_app.query}
    return lambda message: handlers[message.metadata.message_type](message, context)


def plain_flower_silo(message: Message) -> Message:
    """A stock Flower ClientApp with no fedray code: it adds 0.01 to what it gets and reports fixed metrics."""
    if message.metadata.message_type == "query":
        raise ValueError("No query function registered with name 'default'")  # Flower's own words
    arrays = message.content["arrays"]
    if message.metadata.message_type == "train":
        trained = ArrayRecord({k: type(v)(v.numpy() + 0.01) for k, v in arrays.items()})
        return Message(RecordDict({"arrays": trained, "metrics": MetricRecord({"num-examples": 32})}), reply_to=message)
    metrics = MetricRecord({"num-examples": 16, "acc": 0.5, "loss": 0.7, "auc": 0.5})
    return Message(RecordDict({"metrics": metrics}), reply_to=message)


def _federate(cfg, nodes, tmp_path):
    run_dir = RunDir.create(tmp_path / "flower", "federated", cfg.run.name)
    runtime = GridRuntime(FakeGrid(nodes), ttl=cfg.server.round_timeout_s)
    federation = flower_app.connect_silos(runtime, cfg, fresh=True)
    return drive(cfg, runtime, run_dir, federation, None, time.perf_counter()), run_dir, runtime.grid


@pytest.mark.parametrize("privacy", [False, True])
def test_silos_over_flower_messages_compute_what_inline_clients_compute(tmp_path, privacy):
    extra = ["privacy.enabled=true"] if privacy else []
    cfg = resolve_config("federated", None, [*TINY, *extra, "cluster.mode=inline", f"run.root={tmp_path / 'inline'}"])
    inline, inline_dir = run_workload("federated", cfg)
    nodes = {100 + k: fedray_silo(cfg, k, tmp_path / f"silo{k}") for k in range(3)}
    flower, flower_dir, grid = _federate(cfg, nodes, tmp_path)
    assert flower["runtime"] == "flower" and flower["rounds_completed"] == 2
    for key in ("mean_auc", "worst_auc", "test_acc", "test_loss"):
        assert flower[key] == pytest.approx(inline[key], rel=1e-6), key
    ours, theirs = load_arrays(flower_dir.checkpoint("server")), load_arrays(inline_dir.checkpoint("server"))
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], rtol=1e-6, atol=1e-7, err_msg=name)
    if privacy:  # each silo's accountant lives with its personal state and reports ε as on Ray
        assert [c["epsilon"] for c in flower["per_client"]] == [c["epsilon"] for c in inline["per_client"]]
        assert all(c["epsilon"] > 0 for c in flower["per_client"])
    shared = sum(v.nbytes for v in ours.values())
    header = 256 * len(ours)  # np.save's header per tensor
    assert shared <= max(grid.sent_bytes) <= shared + header  # only the shared layers travel, never the personal ones


def test_a_plain_flower_client_takes_part_with_the_documented_arrays(tmp_path):
    cfg = resolve_config("federated", None, [*TINY, f"run.root={tmp_path}"])
    nodes = {
        100: fedray_silo(cfg, 0, tmp_path / "s0"),
        101: fedray_silo(cfg, 1, tmp_path / "s1"),
        102: plain_flower_silo,
    }
    summary, run_dir, _ = _federate(cfg, nodes, tmp_path)
    assert summary["plain_flower_clients"] == 1 and summary["clients"]["nodes"] == {0: 100, 1: 101, 2: 102}
    log = [line for line in run_dir.metrics_log.read_text().splitlines()]
    assert all('"updates": 3' in line for line in log)  # the plain client's update was validated and aggregated


def test_silent_and_failing_silos_are_dropped_by_the_quorum(tmp_path):
    cfg = resolve_config("federated", None, [*TINY, f"run.root={tmp_path}", "server.round_timeout_s=2"])
    silent = fedray_silo(cfg, 2, tmp_path / "s2")
    nodes = {100: fedray_silo(cfg, 0, tmp_path / "s0"), 101: fedray_silo(cfg, 1, tmp_path / "s1"),
             102: lambda m: silent(m) if m.metadata.message_type == "query" else None}  # fmt: skip
    summary, _, _ = _federate(cfg, nodes, tmp_path)
    assert summary["rounds_completed"] == 2 and summary["evaluated"] == 2
    assert {c["client"]: c["failed_rounds"] for c in summary["per_client"]} == {0: 0, 1: 0}


def _real_and_fake_folder(root, count: int):
    """``count`` small grey images, every third one fake."""
    rng = np.random.default_rng(count)
    for i in range(count):
        path = root / ("fake" if i % 3 == 0 else "real") / f"x{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        io.imsave(path, rng.integers(0, 256, (12, 12), dtype=np.uint8), check_contrast=False)


def test_silos_with_their_own_folders_train_on_all_of_them(tmp_path):
    """``fedray join ... data.scope=all data.name=folder data.path=DIR``: each silo evaluates on a quarter of its own
    folder and trains on the rest, instead of on one client's shard of it."""
    cfg = resolve_config("federated", None, [*TINY, "clients.num_clients=2", "data.test_fraction=0.25",
                                             f"run.root={tmp_path}"])  # fmt: skip
    nodes = {}
    for k, count in enumerate((20, 32)):
        _real_and_fake_folder(tmp_path / f"frames{k}", count)
        own = f"data.scope=all data.name=folder data.path={tmp_path / f'frames{k}'} data.folder.channels=1"
        nodes[100 + k] = fedray_silo(cfg, k, tmp_path / f"s{k}", own)
    summary, _, _ = _federate(cfg, nodes, tmp_path)
    assert summary["dataset"] == "folder" and summary["rounds_completed"] == 2
    assert {c["client"]: c["n_samples"] for c in summary["per_client"]} == {0: 5, 1: 8}
    assert all((tmp_path / f"s{k}" / cfg.run.name / CACHE_FILE).is_file() for k in range(2))  # read once per silo


def test_a_silo_that_cannot_read_its_data_stops_the_start_with_its_reason(tmp_path):
    """Not mistaken for a plain Flower client (which would then fail every round): the operator learns why."""
    cfg = resolve_config("federated", None, [*TINY, f"run.root={tmp_path}"])
    broken = "data.scope=all data.name=folder data.path=/nonexistent"
    nodes = {100 + k: fedray_silo(cfg, k, tmp_path / f"s{k}", broken if k == 2 else "") for k in range(3)}
    with pytest.raises(FedrayError, match=r"silo on node 102 failed to start: .*data.path=/nonexistent is not a dir"):
        _federate(cfg, nodes, tmp_path)


def test_too_few_silos_is_a_clear_error(tmp_path):
    cfg = resolve_config("federated", None, [*TINY, f"run.root={tmp_path}", "clients.startup_timeout_s=0.5"])
    with pytest.raises(FedrayError, match=r"1 SuperNodes connected within 0.5 s, clients.num_clients=3 expected"):
        _federate(cfg, {100: fedray_silo(cfg, 0, tmp_path / "s0")}, tmp_path)


def test_fedray_silos_train_under_a_stock_flower_strategy(tmp_path):
    """Flower's FedAvg, knowing nothing of fedray, federates the shared layers of fedray clients."""
    from flwr.serverapp.strategy import FedAvg

    from fedray.clients.methods import METHODS, shared_patterns
    from fedray.cluster.flower_wire import to_record
    from fedray.platform.modules.build import build_model
    from fedray.platform.params import get_arrays, split_names

    cfg = resolve_config("federated", None, [*TINY, f"run.root={tmp_path}"])
    model = build_model("pfr", cfg.model, 1, 2)
    shared, _ = split_names(model, shared_patterns(METHODS["pfr"], cfg.model))
    initial = get_arrays(model, shared)
    grid = FakeGrid({100 + k: fedray_silo(cfg, k, tmp_path / f"s{k}") for k in range(3)})
    strategy = FedAvg(min_train_nodes=3, min_evaluate_nodes=3, min_available_nodes=3)
    result = strategy.start(grid=grid, initial_arrays=to_record(initial), num_rounds=2, timeout=60)
    final = {k: v.numpy() for k, v in result.arrays.items()}
    assert set(final) == set(shared) and any(not np.array_equal(final[k], initial[k]) for k in shared)
    assert "train_loss" in result.train_metrics_clientapp[2]  # averaged by num-examples, which it drops
    assert {"auc", "acc"} <= set(result.evaluate_metrics_clientapp[2])
    assert all((tmp_path / f"s{k}" / cfg.run.name / f"client_{k}").is_dir() for k in range(3))  # personal state kept


def test_a_resumed_federation_over_flower_ends_like_an_uninterrupted_one(tmp_path):
    """Resume across silos: the server restores its checkpoint and asks every silo to roll back its state."""
    whole_cfg = resolve_config("federated", None, [*TINY, "run.name=whole", f"run.root={tmp_path}"])
    whole, _, _ = _federate(whole_cfg, {100 + k: fedray_silo(whole_cfg, k, tmp_path / f"w{k}") for k in range(3)},
                            tmp_path)  # fmt: skip
    first = resolve_config("federated", None, [*TINY, "run.name=split", "server.rounds=1", f"run.root={tmp_path}"])
    _federate(first, {100 + k: fedray_silo(first, k, tmp_path / f"p{k}") for k in range(3)}, tmp_path)
    again = resolve_config("federated", None, [*TINY, "run.name=split", "resume=true", f"run.root={tmp_path}"])
    run_dir = RunDir.create(tmp_path / "flower", "federated", "split")
    runtime = GridRuntime(FakeGrid({100 + k: fedray_silo(again, k, tmp_path / f"p{k}") for k in range(3)}), ttl=60)
    federation = flower_app.connect_silos(runtime, again, fresh=False)
    resumed = drive(again, runtime, run_dir, federation, resume_point(again, run_dir), time.perf_counter())
    assert resumed["resumed_from_round"] == 1 and resumed["rounds_completed"] == 2
    for key in ("mean_auc", "worst_auc", "test_loss"):
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6), key
