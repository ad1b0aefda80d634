"""Purification as Ray tasks: training and sharded purification give the inline runtime's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.ray

TINY = [
    "data.image_size=16",
    "data.test_slices=4",
    "data.test_volume=/nonexistent/ch2.nii.gz",
    "model.model_channels=8",
    "model.channel_mult=[1,2]",
    "model.attention_resolutions=[8]",
    "model.num_res_blocks=1",
    "train.steps=4",
    "diffusion.sample_steps=4",
    "methods=[pfad,sdedit,supervised]",
    "shards=2",
    "num_cpus=1",
]


def test_ray_tasks_match_the_inline_run(ray_session, tmp_path: Path):
    results = {}
    for mode in ("inline", "local"):
        cfg = resolve_config("purify", overrides=[*TINY, f"cluster.mode={mode}", f"run.name={mode}",
                                                  f"run.root={tmp_path}"])  # fmt: skip
        results[mode], _ = run_workload("purify", cfg)
        assert results[mode]["runtime"] == mode
    for setting, rows in results["inline"]["results"].items():
        for method, quality in rows.items():
            assert results["local"]["results"][setting][method]["psnr"] == pytest.approx(quality["psnr"], abs=1e-4)
