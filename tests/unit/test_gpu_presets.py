"""configs/gpu/: the GPU tier of the generative and continual workloads, one YAML per workload layered over its
defaults. A preset must load against its schema, ask for a GPU, keep its runs apart from the CPU tier's, and run end
to end at its own sizes: here on the CPU, inline, with only step counts and set sizes shrunk."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from fedray.cluster.launch import resolve_config, run_workload
from fedray.cluster.pipeline import plan
from fedray.cluster.pipeline_config import PipelineConfig
from fedray.platform.config import flatten, load_config, to_dict

REPO = Path(__file__).resolve().parents[2]
GPU = REPO / "configs" / "gpu"
PRESETS = sorted(GPU.glob("*.yaml"))

# Step counts and set sizes only: every width, resolution and schedule stays as the preset has it.
SHRINK = {
    "purify": ["train.steps=2", "train.batch_size=2", "diffusion.sample_steps=3", "data.test_slices=2"],
    "sr": ["train.steps=2", "train.warmup=1", "train.batch_size=2", "data.test_crops=2"],
    "distill": ["train.steps=2", "train.warmup=1", "train.batch_size=2"],
    "compose": [
        "train.base_steps=1",
        "train.steps=1",
        "tokens.encoder_steps=1",
        "data.train_triplets=8",
        "data.test_triplets=2",
        "train.batch_size=2",
        "diffusion.sample_steps=2",
        "shards=1",
    ],
    "continual": [
        "data.train_per_class=10",
        "data.test_per_class=5",
        "pretrain.max_samples=20",
        "pretrain.epochs=1",
        "train.epochs=1",
        "streams=2",
    ],
}


def _preset_keys(preset: Path) -> dict[str, Any]:
    return flatten(OmegaConf.to_container(OmegaConf.load(preset)))


def test_the_presets_are_the_generative_and_continual_workloads():
    assert {p.stem for p in PRESETS} == {"purify", "sr", "distill", "compose", "continual"}


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.stem)
def test_a_preset_loads_asks_for_a_gpu_and_changes_only_what_it_says(preset):
    cfg, defaults = flatten(to_dict(resolve_config(preset.stem, preset))), flatten(to_dict(resolve_config(preset.stem)))
    keys = _preset_keys(preset)
    assert keys["num_gpus"] > 0 and keys["run.name"] == "gpu"
    for key, value in keys.items():
        assert cfg[key] == value, key
        assert defaults[key] != value, f"{key} repeats its default"
    assert {k for k in cfg if cfg[k] != defaults[k]} == set(keys)


def test_the_distill_preset_distils_the_sr_preset():
    sr, distill = resolve_config("sr", GPU / "sr.yaml"), resolve_config("distill", GPU / "distill.yaml")
    assert Path(distill.teacher.run_dir) == Path(sr.run.root) / "sr" / sr.run.name


def test_the_gpu_tier_pipeline_plans_every_preset(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # step config files are relative to the current directory
    file = REPO / "configs" / "pipelines" / "gpu_tier.yaml"
    cfg = load_config(PipelineConfig, file, [f"run.root={tmp_path}", "cluster.mode=inline"])
    steps = plan(cfg)
    assert {s.workload for s in steps.values()} == {p.stem for p in PRESETS}
    distill = load_config(type(resolve_config("distill")), text=steps["distill"].config_yaml)
    assert Path(distill.teacher.run_dir) == steps["sr"].run_dir and steps["distill"].needs == ["sr"]
    for step in steps.values():
        resolved = flatten(OmegaConf.to_container(OmegaConf.create(step.config_yaml)))
        for key, value in _preset_keys(GPU / f"{step.workload}.yaml").items():
            if not key.startswith(("run.", "teacher.")):
                assert resolved[key] == value, (step.name, key)


def _run(workload: str, tmp_path: Path, *extra: str) -> dict[str, Any]:
    overrides = [*SHRINK[workload], *extra, "cluster.mode=inline", f"run.root={tmp_path}"]
    summary, run_dir = run_workload(workload, resolve_config(workload, GPU / f"{workload}.yaml", overrides))
    assert run_dir.path == tmp_path / workload / "gpu"
    saved = json.loads((run_dir.path / "metrics.json").read_text())
    assert saved["workload"] == workload
    return summary


def _finite_numbers(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _finite_numbers(v)]
    if isinstance(tree, (int, float)) and not isinstance(tree, bool):
        assert math.isfinite(tree)
        return [float(tree)]
    return []


def test_the_purify_preset_runs_end_to_end_at_64_pixels(tmp_path):
    summary = _run("purify", tmp_path)
    methods = set(resolve_config("purify", GPU / "purify.yaml").methods)
    assert summary["data"]["image_size"] == 64 and set(summary["results"]) == {"mild", "severe"}
    assert all(set(rows) == {"input", *methods} for rows in summary["results"].values())
    assert _finite_numbers(summary["results"])


def test_the_compose_preset_runs_end_to_end_at_64_pixels(tmp_path):
    summary = _run("compose", tmp_path)
    assert summary["image_size"] == 64
    assert list(summary["results"]) == resolve_config("compose", GPU / "compose.yaml").methods
    assert _finite_numbers(summary["results"])


def test_the_sr_and_distill_presets_run_end_to_end_at_64_pixels(tmp_path):
    sr = _run("sr", tmp_path)
    assert sr["hr_size"] == 64 and set(sr["results"]) == set(resolve_config("sr", GPU / "sr.yaml").methods)
    distill = _run("distill", tmp_path, f"teacher.run_dir={tmp_path / 'sr' / 'gpu'}")
    assert set(distill["vs_teacher"]) == set(resolve_config("distill", GPU / "distill.yaml").variants)
    assert _finite_numbers(distill["results"])


def test_the_continual_preset_runs_its_streams_on_fashion_mnist(tmp_path):
    if not Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST (Debian dataset-fashion-mnist) is not installed")
    summary = _run("continual", tmp_path)
    assert summary["dataset"] == "fashion_mnist" and summary["tasks"] == 5 and len(summary["per_stream"]) == 2
    assert [len(row) for row in summary["acc_matrix"]] == [1, 2, 3, 4, 5]
