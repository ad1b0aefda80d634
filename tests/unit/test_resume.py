"""``resume=true``: a run continued from its last checkpoint ends exactly where an uninterrupted run ends."""

import json

import numpy as np
import pytest

from fedray.clients.state_store import ClientStateStore
from fedray.cluster import federation
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import load_arrays


def _metrics(summary: dict) -> list[dict]:
    """Per-client results without ``restored_from_round`` (a resumed client was, by definition, restored)."""
    return [{k: v for k, v in c.items() if k != "restored_from_round"} for c in summary["per_client"]]


def _run(overrides, *extra):
    cfg = resolve_config("federated", None, [*overrides, "cluster.mode=inline", *extra])
    return run_workload("federated", cfg)


def _final_state(run_dir, num_clients):
    server = load_arrays(run_dir.checkpoint("server"))
    store = ClientStateStore(run_dir.client_states)
    personal = [store.load(k) for k in range(num_clients)]
    return server, personal


CASES = {
    "pfr-fedadam": ["method=pfr", "strategy=fedadam"],  # server optimizer moments must survive
    "fedper-privacy": ["model.shared=[encoder.*]", "privacy.enabled=true", "privacy.noise_multiplier=0.8"],
    "ditto-pool": ["method=ditto", "clients.placement=pool", "clients.pool_size=2"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_resumed_run_matches_uninterrupted_run(tiny_overrides, case):
    extra = [*CASES[case], "server.rounds=4"]
    whole, whole_dir = _run(tiny_overrides, *extra, "run.name=whole")
    _run(tiny_overrides, *extra, "run.name=split", "server.rounds=2")
    resumed, split_dir = _run(tiny_overrides, *extra, "run.name=split", "resume=true")

    assert resumed["resumed_from_round"] == 2 and resumed["rounds_completed"] == 4
    (w_server, w_personal), (r_server, r_personal) = _final_state(whole_dir, 3), _final_state(split_dir, 3)
    assert w_server.keys() == r_server.keys()
    for name in w_server:
        np.testing.assert_array_equal(w_server[name], r_server[name], err_msg=name)
    for a, b in zip(w_personal, r_personal, strict=True):
        assert a.round == b.round and a.extra == b.extra  # same last fit, same privacy accountant history
        for name in a.arrays:
            np.testing.assert_array_equal(a.arrays[name], b.arrays[name], err_msg=name)
    assert _metrics(resumed) == _metrics(whole)
    logged = [json.loads(line)["round"] for line in split_dir.metrics_log.read_text().splitlines()]
    assert logged == [1, 2, 3, 4]


def test_resume_rolls_clients_back_when_they_ran_ahead_of_the_checkpoint(tiny_overrides):
    """Clients save after every fit; a driver killed before committing round 3 leaves them one round ahead."""
    extra = ["model.shared=[encoder.*]", "server.rounds=3"]
    whole, _ = _run(tiny_overrides, *extra, "run.name=whole")
    _, split_dir = _run(tiny_overrides, *extra, "run.name=split")
    # Put back the server checkpoint and log of round 2, as if the driver died during round 3's commit.
    _run(tiny_overrides, *extra, "run.name=round2", "server.rounds=2")
    round2 = split_dir.path.parent / "round2"
    split_dir.checkpoint("server").write_bytes((round2 / "checkpoints" / "server.safetensors").read_bytes())
    split_dir.metrics_log.write_text((round2 / "metrics.jsonl").read_text())

    resumed, _ = _run(tiny_overrides, *extra, "run.name=split", "resume=true")
    assert resumed["resumed_from_round"] == 2
    assert _metrics(resumed) == _metrics(whole)


def test_resume_refuses_a_changed_experiment_and_a_missing_run(tiny_overrides):
    _run(tiny_overrides, "run.name=r", "server.rounds=1")
    with pytest.raises(ConfigError, match=r"differs .*clients\.lr: 0\.1 -> 0\.2"):
        _run(tiny_overrides, "run.name=r", "resume=true", "clients.lr=0.2")
    with pytest.raises(ConfigError, match="holds no run to resume"):
        _run(tiny_overrides, "run.name=never", "resume=true")
    resumed, run_dir = _run(tiny_overrides, "run.name=r", "resume=true", "server.rounds=2", "server.eval_every=2")
    assert resumed["rounds_completed"] == 2  # rounds and evaluation interval may change
    saved = run_dir.config_file.read_text()
    with pytest.raises(ConfigError, match=r"^server\.rounds=1 is fewer than the 2 rounds the run has completed"):
        _run(tiny_overrides, "run.name=r", "resume=true", "server.rounds=1", "server.eval_every=2")
    assert run_dir.config_file.read_text() == saved  # the finished run still says what it ran


def test_resume_after_a_log_line_cut_short(tiny_overrides):
    """A driver killed while appending a round's record leaves half a line; resume drops it and goes on."""
    whole, _ = _run(tiny_overrides, "run.name=whole-torn", "server.rounds=3")
    _, run_dir = _run(tiny_overrides, "run.name=torn", "server.rounds=2")
    with open(run_dir.metrics_log, "a") as f:
        f.write('{"round": 3, "train_lo')
    resumed, _ = _run(tiny_overrides, "run.name=torn", "server.rounds=3", "resume=true")
    assert [r["round"] for r in run_dir.records()] == [1, 2, 3]
    assert _metrics(resumed) == _metrics(whole)


def test_a_refused_run_leaves_the_earlier_run_of_the_same_name_resumable(tiny_overrides, tmp_path, monkeypatch):
    """A fresh run whose data folder is missing fails in one line (and one that crashes fails as it does); the
    earlier run keeps its config.yaml, its log and its client states, and resumes."""
    _, run_dir = _run(tiny_overrides, "run.name=kept", "server.rounds=2")
    files = {p: p.read_bytes() for p in run_dir.path.rglob("*") if p.is_file() and p.name != "metrics.json"}
    with pytest.raises(DataError, match="is not a directory"):
        _run(tiny_overrides, "run.name=kept", "data.name=folder", f"data.path={tmp_path / 'missing'}")
    assert {p: p.read_bytes() for p in files} == files
    with monkeypatch.context() as patch:  # a crash, not a refusal, before the new run wrote anything: the same
        patch.setattr(federation, "federated_data", lambda *a: (_ for _ in ()).throw(RuntimeError("disk gone")))
        with pytest.raises(RuntimeError, match="disk gone"):
            _run(tiny_overrides, "run.name=kept", "seed=5")
    assert {p: p.read_bytes() for p in files} == files
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=f"run.root={tmp_path / 'file'}: cannot make the run folder"):
        _run(tiny_overrides, f"run.root={tmp_path / 'file'}")
    resumed, _ = _run(tiny_overrides, "run.name=kept", "server.rounds=3", "resume=true")
    assert resumed["resumed_from_round"] == 2 and resumed["rounds_completed"] == 3
