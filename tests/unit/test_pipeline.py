"""Pipelines: DAG validation, artifact passing, failure propagation and resume, in the inline runtime."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fedray.cluster.cli import main
from fedray.cluster.pipeline import plan, run_pipeline
from fedray.cluster.pipeline_config import PipelineConfig
from fedray.platform.config import load_config
from fedray.platform.errors import ConfigError

FAST = ["method=fedavg", "data.name=digits", "data.image_size=8", "data.max_samples=300", "model.widths=[4]",
        "clients.num_clients=2", "server.rounds=1", "clients.epochs=1"]  # fmt: skip


def _write(path: Path, steps: dict) -> Path:
    path.write_text(json.dumps({"name": "demo", "steps": steps}))  # JSON is YAML
    return path


def _load(path: Path, tmp_path: Path, *extra: str) -> PipelineConfig:
    return load_config(PipelineConfig, path, [f"run.root={tmp_path / 'runs'}", "cluster.mode=inline", *extra])


def test_steps_run_in_dependency_order_and_receive_the_run_directories_they_need(tmp_path):
    file = _write(
        tmp_path / "p.yaml",
        {
            "report": {"workload": "federated", "needs": ["train"], "overrides": [*FAST, "data.path={train.run_dir}"]},
            "train": {"workload": "federated", "overrides": FAST},
        },
    )
    cfg = _load(file, tmp_path)
    assert cfg.order() == ["train", "report"]
    steps = plan(cfg)
    root = tmp_path / "runs" / "pipelines" / "demo" / "default"
    assert steps["train"].run_dir == root / "federated" / "train"
    assert f"path: {root / 'federated' / 'train'}" in steps["report"].config_yaml
    assert "seed: 0" in steps["report"].config_yaml and "mode: inline" in steps["report"].config_yaml


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ({"a": {"workload": "fedsim"}}, "step 'a': unknown workload 'fedsim'; known workloads: "),
        ({"a": {"workload": "federated", "needs": ["b"]}}, "step 'a' needs unknown steps ['b']"),
        (
            {"a": {"workload": "federated", "needs": ["b"]}, "b": {"workload": "federated", "needs": ["a"]}},
            "the pipeline's steps form a cycle",
        ),
        (
            {"a": {"workload": "federated"}, "b": {"workload": "federated", "overrides": ["data.path={a.run_dir}"]}},
            "step 'b' uses {a.run_dir} but does not list 'a' in needs",
        ),
        ({}, "a pipeline needs at least one step"),
        ({"a": {"workload": "federated", "nedes": []}}, "unknown config key 'steps.a.nedes'"),
        (
            {"a": {"workload": "federated", "overides": []}},
            "unknown config key 'steps.a.overides'; valid keys under 'steps.a': workload, needs, config, overrides",
        ),
        (
            {"a": {"workload": "federated", "needs": "b"}},
            "config key 'steps.a.needs' takes a list, got a single value: 'b'",
        ),
        ({"a": None}, "config key 'steps.a' needs a value, got none (an empty entry or null)"),
        (["a", "b"], "config key 'steps' takes a mapping, got a list: ['a', 'b']"),
    ],
)
def test_malformed_pipelines_are_one_line_errors(tmp_path, steps, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message)):
        _load(_write(tmp_path / "p.yaml", steps), tmp_path)


def test_a_bad_key_in_the_last_step_fails_before_the_first_step_runs(tmp_path):
    file = _write(
        tmp_path / "p.yaml",
        {
            "first": {"workload": "federated", "overrides": FAST},
            "last": {"workload": "federated", "needs": ["first"], "overrides": [*FAST, "server.roundz=2"]},
        },
    )
    with pytest.raises(ConfigError, match=re.escape("unknown config key 'server.roundz'")):
        run_pipeline(_load(file, tmp_path))
    assert not (tmp_path / "runs").exists()


def test_a_failed_step_skips_its_dependents_and_resume_reuses_completed_steps(tmp_path, capsys):
    broken = [*FAST, "data.name=folder", f"data.path={tmp_path / 'missing'}"]
    steps = {
        "ok": {"workload": "federated", "overrides": FAST},
        "broken": {"workload": "federated", "overrides": broken},
        "after": {"workload": "federated", "needs": ["broken", "ok"], "overrides": FAST},
    }
    file = _write(tmp_path / "p.yaml", steps)
    args = ["pipeline", str(file), f"run.root={tmp_path / 'runs'}", "cluster.mode=inline"]
    assert main(args) == 1
    summary_file = tmp_path / "runs" / "pipelines" / "demo" / "default" / "pipeline.json"
    summary = json.loads(summary_file.read_text())
    status = {name: step["status"] for name, step in summary["steps"].items()}
    assert status == {"ok": "completed", "broken": "failed", "after": "skipped"}
    assert "missing" in summary["steps"]["broken"]["error"] and "\n" not in summary["steps"]["broken"]["error"]
    assert summary["steps"]["after"]["error"] == "needs ['broken'], which did not complete"
    assert summary["dag"] == {"ok": [], "broken": [], "after": ["broken", "ok"]}
    assert summary["steps"]["ok"]["metrics"]["workload"] == "federated" and summary["steps"]["ok"]["seconds"] > 0
    ok_metrics = Path(summary["steps"]["ok"]["run_dir"]) / "metrics.json"
    written = ok_metrics.stat().st_mtime_ns
    assert "broken" in capsys.readouterr().out

    steps["broken"]["overrides"] = FAST  # fixed; the completed step must not run again
    _write(tmp_path / "p.yaml", steps)
    assert main([*args, "resume=true"]) == 0
    summary = json.loads(summary_file.read_text())
    status = {name: step["status"] for name, step in summary["steps"].items()}
    assert status == {"ok": "reused", "broken": "completed", "after": "completed"}
    assert ok_metrics.stat().st_mtime_ns == written
    assert summary["steps"]["ok"]["metrics"]["workload"] == "federated"


def test_a_completed_step_whose_results_are_unreadable_runs_again(tmp_path):
    file = _write(tmp_path / "p.yaml", {"ok": {"workload": "federated", "overrides": FAST}})
    args = ["pipeline", str(file), f"run.root={tmp_path / 'runs'}", "cluster.mode=inline"]
    assert main(args) == 0
    summary_file = tmp_path / "runs" / "pipelines" / "demo" / "default" / "pipeline.json"
    metrics = Path(json.loads(summary_file.read_text())["steps"]["ok"]["run_dir"]) / "metrics.json"
    metrics.write_text(metrics.read_text()[:40])  # cut short
    assert main([*args, "resume=true"]) == 0
    step = json.loads(summary_file.read_text())["steps"]["ok"]
    assert step["status"] == "completed" and step["note"] == f"{metrics} is missing or unreadable: the step runs again"
    assert json.loads(metrics.read_text())["workload"] == "federated"


def test_resume_runs_again_a_step_whose_overrides_changed_and_the_steps_that_need_it(tmp_path):
    steps = {
        "first": {"workload": "federated", "overrides": FAST},
        "second": {"workload": "federated", "needs": ["first"], "overrides": FAST},
        "apart": {"workload": "federated", "overrides": FAST},
    }
    file = _write(tmp_path / "p.yaml", steps)
    args = ["pipeline", str(file), f"run.root={tmp_path / 'runs'}", "cluster.mode=inline"]
    assert main(args) == 0
    steps["first"]["overrides"] = [*FAST, "data.max_samples=200"]
    _write(tmp_path / "p.yaml", steps)
    assert main([*args, "resume=true"]) == 0
    summary_file = tmp_path / "runs" / "pipelines" / "demo" / "default" / "pipeline.json"
    summary = json.loads(summary_file.read_text())["steps"]
    assert {name: step["status"] for name, step in summary.items()} == {
        "first": "completed", "second": "completed", "apart": "reused"
    }  # fmt: skip
    assert summary["first"]["note"] == "its config changed (data.max_samples: 300 -> 200): the step runs again"
    assert summary["second"]["note"] == "first runs again: the step runs again"
    saved = (Path(summary["first"]["run_dir"]) / "config.yaml").read_text()
    assert "max_samples: 200" in saved and "resume: false" in saved
