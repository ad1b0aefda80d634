"""Super-resolution methods trained and evaluated as parallel Ray tasks give the inline runtime's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.ray

TINY = [
    "data.hr_size=16",
    "data.test_crops=4",
    "model.model_channels=8",
    "model.embed_dim=16",
    "model.depth=1",
    "train.steps=3",
    "train.batch_size=4",
    "train.warmup=1",
    "methods=[dit_sr,regression,bicubic]",
    "num_cpus=1",
]


def test_ray_tasks_match_the_inline_run(ray_session, tmp_path: Path):
    results = {}
    for mode in ("inline", "local"):
        cfg = resolve_config("sr", overrides=[*TINY, f"cluster.mode={mode}", f"run.name={mode}",
                                              f"run.root={tmp_path}"])  # fmt: skip
        results[mode], _ = run_workload("sr", cfg)
        assert results[mode]["runtime"] == mode
    for method, row in results["inline"]["results"].items():
        assert results["local"]["results"][method]["psnr_y"] == pytest.approx(row["psnr_y"], abs=1e-4)
