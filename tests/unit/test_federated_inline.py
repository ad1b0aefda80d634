"""The federated workload end to end in the inline runtime (no Ray)."""

import json

import numpy as np
import pytest
import yaml

from fedray.clients.state_store import ClientStateStore
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError
from fedray.platform.io import load_arrays


def personal(run_dir, client_id: int) -> dict:
    """The newest personal tensors client ``client_id`` saved in the run directory."""
    return ClientStateStore(run_dir.client_states).load(client_id).arrays


def test_run_writes_the_whole_run_directory(tiny_overrides):
    cfg = resolve_config("federated", None, [*tiny_overrides, "cluster.mode=inline", "run.name=t"])
    summary, run_dir = run_workload("federated", cfg)
    assert yaml.safe_load(run_dir.config_file.read_text())["server"]["rounds"] == 3
    lines = [json.loads(x) for x in run_dir.metrics_log.read_text().splitlines()]
    assert [r["round"] for r in lines] == [1, 2, 3] and all(r["aggregated"] for r in lines)
    on_disk = json.loads(run_dir.summary_file.read_text())
    assert on_disk["status"] == "completed" and on_disk["rounds_completed"] == 3
    assert {c["client"] for c in on_disk["per_client"]} == {0, 1, 2}
    assert on_disk["test_acc"] == summary["test_acc"]
    ckpt = load_arrays(run_dir.checkpoint("server"))
    assert "head.fc.weight" in ckpt and ckpt["head.fc.weight"].shape == (10, 16)
    assert run_dir.plot("test_acc").stat().st_size > 1000


def test_training_learns_real_digits(tmp_path):
    """Ten rounds on the digits: far above the 10 % of chance, for the example-weighted mean and the worst client."""
    cfg = resolve_config(
        "federated",
        None,
        [
            "cluster.mode=inline",
            "method=fedavg",
            "data.name=digits",
            "model.widths=[16,32,64]",
            "clients.epochs=1",
            "clients.lr=0.05",
            "server.rounds=10",
            "data.image_size=8",
            f"run.root={tmp_path}",
        ],
    )
    summary, _ = run_workload("federated", cfg)
    assert summary["test_acc"] > 0.6 and summary["worst_acc"] > 0.3


def test_personal_tensors_stay_on_clients(tiny_overrides):
    cfg = resolve_config("federated", None, [*tiny_overrides, "cluster.mode=inline", "model.shared=[encoder.*]"])
    summary, run_dir = run_workload("federated", cfg)
    server = load_arrays(run_dir.checkpoint("server"))
    assert not any(k.startswith("head.") for k in server)
    heads = [personal(run_dir, k)["head.fc.weight"] for k in range(3)]
    assert not np.allclose(heads[0], heads[1])  # each client trained its own head
    assert summary["personal_tensors"] == 2


def test_same_seed_same_result_and_another_seed_differs(tiny_overrides):
    def final(*extra):
        cfg = resolve_config("federated", None, [*tiny_overrides, "cluster.mode=inline", *extra])
        return run_workload("federated", cfg)[0]["test_loss"]

    assert final("seed=1") == final("seed=1")
    assert final("seed=1") != final("seed=2")


@pytest.mark.parametrize("extra", [[], ["privacy.enabled=true", "privacy.noise_multiplier=0.8"]], ids=["plain", "dp"])
def test_pool_placement_computes_what_dedicated_actors_compute(tiny_overrides, extra):
    """Virtual clients on two pool workers (each switching one model between its clients) give the same result as
    one actor per client, personal heads and privacy accountants included."""
    runs = {}
    for placement in ("actor", "pool"):
        overrides = [
            *tiny_overrides,
            *extra,
            "cluster.mode=inline",
            "model.shared=[encoder.*]",
            f"run.name={placement}",
        ]
        cfg = resolve_config("federated", None, [*overrides, f"clients.placement={placement}", "clients.pool_size=2"])
        summary, run_dir = run_workload("federated", cfg)
        runs[placement] = (summary, personal(run_dir, 2))
    (actor, head_actor), (pool, head_pool) = runs["actor"], runs["pool"]
    assert pool["clients"]["placement"] == "pool" and pool["clients"]["workers"] == 2
    assert pool["test_loss"] == actor["test_loss"] and pool["per_client"] == actor["per_client"]
    np.testing.assert_array_equal(head_pool["head.fc.weight"], head_actor["head.fc.weight"])


FORGERY = [
    "data.name=forgery",
    "data.forgery.train_per_class=16",
    "data.forgery.test_per_class=10",
    "clients.num_clients=3",
    "model.widths=[8,16]",
    "server.rounds=2",
    "cluster.mode=inline",
]


def test_pfr_on_self_blended_forgeries_keeps_personal_tensors_home(tmp_path):
    cfg = resolve_config("federated", None, [*FORGERY, "method=pfr", f"run.root={tmp_path}"])
    summary, run_dir = run_workload("federated", cfg)
    assert summary["method"] == "pfr" and summary["dataset"] == "forgery"
    assert {"mean_auc", "worst_auc", "mean_acc", "worst_acc"} <= set(summary)
    assert all(0 <= c["auc"] <= 1 and c["n_samples"] == 20 for c in summary["per_client"])
    server = load_arrays(run_dir.checkpoint("server"))
    assert "head_s.weight" in server and "head_j.weight" not in server and "R_p.gamma" not in server
    assert "head_j.weight" in personal(run_dir, 0)
    assert run_dir.plot("test_auc").exists()


def test_local_method_aggregates_nothing(tmp_path):
    cfg = resolve_config("federated", None, [*FORGERY, "method=local", f"run.root={tmp_path}"])
    summary, run_dir = run_workload("federated", cfg)
    assert summary["shared_tensors"] == 0 and summary["rounds_completed"] == 2
    assert load_arrays(run_dir.checkpoint("server")) == {}


def test_fedprox_and_fedadam_run_and_differ_from_fedavg(tiny_overrides):
    losses = {}
    for strategy in ("fedavg", "fedprox", "fedadam"):
        extra = ["clients.prox_mu=1.0"] if strategy == "fedprox" else []
        overrides = [*tiny_overrides, "cluster.mode=inline", f"strategy={strategy}", *extra]
        cfg = resolve_config("federated", None, overrides)
        losses[strategy] = run_workload("federated", cfg)[0]["test_loss"]
    assert len(set(losses.values())) == 3


def test_scope_all_is_refused_where_the_clients_share_one_dataset(tmp_path):
    """Every client of one cluster would train on the same full dataset: a silo-only setting, refused up front."""
    cfg = resolve_config("federated", None, ["data.scope=all", "data.name=folder", f"data.path={tmp_path}",
                                             "cluster.mode=inline", f"run.root={tmp_path}"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"data\.scope=all gives a silo all of its own data"):
        run_workload("federated", cfg)
