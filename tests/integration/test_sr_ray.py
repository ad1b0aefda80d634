"""Super-resolution methods trained and evaluated as parallel Ray tasks give the inline runtime's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import inline_and_ray

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
    inline, ray_run = inline_and_ray("sr", TINY, tmp_path)
    for method, row in inline["results"].items():
        assert ray_run["results"][method]["psnr_y"] == pytest.approx(row["psnr_y"], abs=1e-4)
