"""``fedray run fairness`` in the inline runtime: a trained detector, a reused one, a federated run's detector, a
predictions CSV, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import FAIRNESS_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.data.config import ForgeryConfig
from fedray.platform.data.forgery import forgery_clients, forgery_faces
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.metrics.fairness import METRIC_NAMES
from fedray.tasks.fairness.data import held_out_faces

TINY = ["cluster.mode=inline", *FAIRNESS_TINY, "pruning.rates_percent=[1,10]"]
BLOCKS = {"official_ur_acc_plus_one", "official_ur_acc", "paper_ur_acc", "paper_ur_acc_plus_one"}


def run(tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = resolve_config("fairness", overrides=[*TINY, f"run.root={tmp_path}", *overrides])
    summary, run_dir = run_workload("fairness", cfg)
    return summary, run_dir.path


def _log(path: Path) -> list[dict]:
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    return run(tmp_path_factory.mktemp("fairness"), "run.name=tiny")


def test_a_trained_detector_gets_every_metric_pruning_and_thresholds(tiny_run):
    summary, path = tiny_run
    on_disk = json.loads((path / "metrics.json").read_text())
    assert on_disk["headline"] == summary["headline"] and summary["runtime"] == "inline"
    assert summary["source"]["kind"] == "trained" and summary["seeds"] == [0, 1]
    assert summary["rows"] == ["real", "colour", "blur", "resample", "sharpen", "jpeg"]
    assert summary["headline"]["variant"] == "official" and summary["headline"]["ur_denominator"] == "acc_plus_one"
    original = summary["original"]
    assert set(original["fairness"]) == BLOCKS
    for name, block in original["fairness"].items():
        assert name == f"{block['variant']}_ur_{block['ur_denominator']}"
        assert set(METRIC_NAMES) <= set(block)
    plus_one = original["fairness"]["official_ur_acc_plus_one"]  # ACC + 1 > 0: every metric defined, gaps ≥ 0
    assert all(np.isfinite(plus_one[m]["mean"]) and plus_one[m]["mean"] >= 0 for m in METRIC_NAMES)
    assert 0 <= original["auc"]["mean"] <= 1 and len(original["groups"]["tpr"]["mean"]) == 4
    assert np.asarray(original["acc_matrix"]["mean"]).shape == (6, 4)
    # every cell holds at least per_cell samples: 6 rows × 4 groups × 8
    assert summary["evaluation"]["samples"]["test"]["mean"] >= 6 * 4 * 8
    assert set(summary["pruning"]) == {"bpfa", "weig", "roba", "random"}
    for kind, by_rate in summary["pruning"].items():
        assert set(by_rate) == {"1", "10"}
        assert 0.08 < by_rate["10"]["pruned_fraction"]["mean"] <= 0.1, kind
    assert set(summary["thresholds"]) == {"global", "balanced_accuracy", "match_fpr"}
    assert len(summary["thresholds"]["balanced_accuracy"]["thresholds"]["mean"]) == 4
    # per seed: disjoint face splits, a saved detector each
    for seed in ("0", "1"):
        assert summary["faces"]["per_seed"][seed] == {"train": 60, "calibration": 20, "test": 20}
        assert (path / "checkpoints" / f"detector_seed{seed}.safetensors").is_file()
    for plot in ("group_accuracy", "metrics_table", "pruning_table"):
        assert (path / "plots" / f"{plot}.png").is_file()
    log = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in log if r["stage"] == "evaluate"] == [0, 1]
    assert all(d.startswith("[fedray]") for d in summary["deviations"])


def test_a_saved_detector_file_gives_the_same_numbers_and_resume_reuses_it(tiny_run, tmp_path: Path):
    summary, path = tiny_run
    detector = path / "checkpoints" / "detector_seed0.safetensors"
    reused, _ = run(tmp_path, "run.name=file", "seeds=[0]", f"detector.checkpoint={detector}",
                    "pruning.enabled=false", "thresholds.enabled=false")  # fmt: skip
    assert reused["source"]["kind"] == "file" and reused["pruning"] is None and reused["thresholds"] is None
    assert reused["headline"]["DPD"]["mean"] == summary["per_seed"][0]["headline"]["DPD"]
    assert reused["original"]["auc"]["mean"] == summary["per_seed"][0]["headline"]["auc"]
    trained_log = [r for r in _log(path) if r["stage"] == "train"]
    saved = {name: (path / name).read_bytes() for name in ("config.yaml", "metrics.jsonl")}
    with pytest.raises(DataError, match="does not exist"):  # a fresh run of the same name, refused: nothing lost
        run(path.parent.parent, "run.name=tiny", f"predictions_csv={tmp_path / 'absent.csv'}")
    assert {name: (path / name).read_bytes() for name in saved} == saved
    resumed, _ = run(path.parent.parent, "run.name=tiny", "resume=true", "metrics.variant=paper")
    assert resumed["detector"]["0"]["note"] == "reused on resume"
    log = _log(path)  # the reused detectors' training records stay; the evaluations are logged once, anew
    assert [r for r in log if r["stage"] == "train"] == trained_log and trained_log
    assert [r["seed"] for r in log if r["stage"] == "evaluate"] == [0, 1]
    assert resumed["headline"]["variant"] == "paper"
    same = json.dumps(resumed["original"]["fairness"]) == json.dumps(summary["original"]["fairness"])  # NaN == NaN
    assert same and resumed["original"]["auc"] == summary["original"]["auc"]


def test_a_federated_run_is_evaluated_on_faces_it_never_trained_on(tmp_path: Path):
    fed = resolve_config("federated", None, [
        "cluster.mode=inline", "method=fedavg", "data.name=forgery", "data.forgery.train_per_class=16",
        "data.forgery.test_per_class=8", "clients.num_clients=2", "model.widths=[8,16]", "server.rounds=1",
        "clients.epochs=1", "seed=3", f"run.root={tmp_path}", "run.name=fed",
    ])  # fmt: skip
    _, fed_dir = run_workload("federated", fed)
    summary, _ = run(tmp_path, "run.name=from-fed", f"detector.checkpoint={fed_dir.path}", "seeds=[0]",
                     "pruning.rates_percent=[10]", "pruning.scores=[bpfa]")  # fmt: skip
    assert summary["source"]["kind"] == "federated" and summary["source"]["method"] == "fedavg"
    # 2 clients × 20 faces, 4 held out each: 100 − 2·16 = 68 faces never trained on
    assert summary["faces"]["per_seed"]["0"] == {"calibration": 28, "test": 40}
    assert "never trained on" in summary["faces"]["note"] and summary["detector"] is None
    assert summary["pruning"]["bpfa"]["10"]["pruned_fraction"]["mean"] > 0.08
    # the held-out faces are exactly the ones no client's sampler draws from
    faces, _ = forgery_faces(ForgeryConfig(), 32)
    held = held_out_faces(ForgeryConfig(), 2, 3, len(faces))
    assert len(held) == 68
    for client in forgery_clients(ForgeryConfig(), 2, 32, seed=3, faces=faces):
        trained = client.sampler.faces.reshape(len(client.sampler.faces), -1)
        assert not (trained[:, None, :] == faces[held].reshape(len(held), -1)[None]).all(-1).any()
    with pytest.raises(DataError, match=r"keeps part of the model personal|no saved personal state"):
        run(tmp_path, "run.name=bad-client", f"detector.checkpoint={fed_dir.path}", "detector.client=7")


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_metrics_from_a_predictions_csv(tmp_path: Path):
    # (n, predicted fake) per cell as in test_fairness_metrics: real (10,1)/(10,3), A (10,8)/(10,6), B (20,10)/(10,7)
    cells = {("real", "g0"): (10, 1), ("real", "g1"): (10, 3), ("A", "g0"): (10, 8), ("A", "g1"): (10, 6),
             ("B", "g0"): (20, 10), ("B", "g1"): (10, 7)}  # fmt: skip
    lines = ["label,method,group,score"]
    for (method, group), (n, k) in cells.items():
        label = int(method != "real")
        lines += [f"{label},{'' if method == 'real' else method},{group},{0.9 if i < k else 0.1}" for i in range(n)]
    csv = write_csv(tmp_path / "preds.csv", "\n".join(lines) + "\n")
    summary, path = run(tmp_path, "run.name=csv", f"predictions_csv={csv}")
    assert summary["rows"] == ["real", "A", "B"] and summary["groups"] == ["g0", "g1"]
    official = summary["original"]["fairness"]["official_ur_acc_plus_one"]
    assert official["DPD"] == pytest.approx(0.066667, abs=1e-6) and official["URDPD"] == pytest.approx(
        0.117919, abs=1e-6
    )
    assert summary["original"]["fairness"]["paper_ur_acc"]["DPD"] == pytest.approx(0.058333, abs=1e-6)
    assert summary["headline"]["DEOdds"] == pytest.approx(0.1) and (path / "plots" / "metrics_table.png").is_file()
    preds = write_csv(tmp_path / "hard.csv", "group,label,method,pred\n0,0,,0\n1,0,,1\n0,1,x,1\n1,1,x,1\n")
    hard, _ = run(tmp_path, "run.name=hard", f"predictions_csv={preds}")
    assert hard["original"]["acc_matrix"] == [[1.0, 0.0], [1.0, 1.0]] and hard["headline"]["DPD"] == 0.5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("label,method,group\n0,,a\n", "header must name label, method, group and score"),
        ("label,method,group,score\n0,,a,0.2\n2,x,a,0.3\n", r"preds.csv:3: label must be 0 or 1, got '2'"),
        ("label,method,group,score\n0,,a,0.2\n1,x,b,high\n", r"preds.csv:3: score must be a number, got 'high'"),
        ("label,method,group,score\n0,,a,0.2\n1,,b,0.4\n", r"preds.csv:3: a fake row needs its method"),
        ("label,method,group,score\n0,,a,0.2\n1,x,b\n", r"preds.csv:3: expected 4 fields"),
        ("label,method,group,score\n", "holds no rows"),
        ("label,method,group,score\n0,,a,0.2\n1,x,a,0.9\n", "at least two groups"),
        ("label,method,group,score\n0,,a,0.2\n1,x,b,0.9\n", r"2 cells have no samples"),
        ("\ufefflabel,method,group,score\n0,,a,0.2\n1,x,a,0.9\n", "at least two groups"),  # BOM: header still read
    ],
)
def test_a_malformed_csv_is_one_line_naming_the_line(tmp_path: Path, text: str, fragment: str):
    csv = write_csv(tmp_path / "preds.csv", text)
    with pytest.raises(DataError, match=fragment) as err:
        run(tmp_path, f"predictions_csv={csv}")
    assert "\n" not in str(err.value)


def test_bad_config_and_missing_files(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"unknown config key 'detector.nope'"):
        resolve_config("fairness", overrides=["detector.nope=1"])
    with pytest.raises(ConfigError, match=r"pruning.scores must list distinct entries"):
        resolve_config("fairness", overrides=["pruning.scores=[bpfa,magnitude]"])
    with pytest.raises(ConfigError, match=r"pruning.rates_percent must lie in"):
        resolve_config("fairness", overrides=["pruning.rates_percent=[0,1]"])
    with pytest.raises(ConfigError, match=r"detector.client names a client"):
        resolve_config("fairness", overrides=["detector.client=1"])
    with pytest.raises(ConfigError, match=r"bad value for config key 'metrics.ur_denominator'"):
        resolve_config("fairness", overrides=["metrics.ur_denominator=acc_plus_two"])
    with pytest.raises(ConfigError, match=r"group_shares has 3 entries; the faces have 4 groups"):
        run(tmp_path, "detector.group_shares=[0.5,0.3,0.2]")
    with pytest.raises(DataError, match=r"detector.checkpoint .*missing.safetensors does not exist"):
        run(tmp_path, f"detector.checkpoint={tmp_path / 'missing.safetensors'}")
    with pytest.raises(DataError, match=r"predictions_csv .*absent.csv does not exist"):
        run(tmp_path, f"predictions_csv={tmp_path / 'absent.csv'}")
    with pytest.raises(DataError, match=r"predictions_csv .* is a folder, not a CSV file"):
        run(tmp_path, f"predictions_csv={tmp_path}")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("label,method,group,score\n0,,Zürich,0.2\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"predictions_csv .*latin.csv is not UTF-8 text \(byte 29\)"):
        run(tmp_path, f"predictions_csv={latin}")
    with pytest.raises(ConfigError, match=r"detector.model.widths must be one or more positive"):
        resolve_config("fairness", overrides=["detector.model.widths=[]"])
    detector_file = tmp_path / "detector.safetensors"
    detector_file.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"detector.client=0 picks a client of a federated run directory"):
        run(tmp_path, f"detector.checkpoint={detector_file}", "detector.client=0")
