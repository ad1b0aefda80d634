"""Purification as Ray tasks: training and sharded purification give the inline runtime's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import inline_and_ray

pytestmark = pytest.mark.ray

TINY = [
    "data.image_size=16",
    "data.test_slices=4",
    "data.test_volume=none",
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
    inline, ray_run = inline_and_ray("purify", TINY, tmp_path)
    for setting, rows in inline["results"].items():
        for method, quality in rows.items():
            assert ray_run["results"][setting][method]["psnr"] == pytest.approx(quality["psnr"], abs=1e-4)
