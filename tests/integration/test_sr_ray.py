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


def test_a_diverged_task_stops_the_run_with_its_own_one_line_error(ray_session, tmp_path: Path):
    """Raised inside a Ray task, the user's error reaches the caller as itself, not wrapped in Ray's remote
    traceback, so the CLI prints the one line."""
    from fedray.cluster.launch import resolve_config, run_workload
    from fedray.platform.errors import DivergedError

    cfg = resolve_config("sr", overrides=[*TINY, "train.lr=1e30", "cluster.mode=local", f"run.root={tmp_path}"])
    with pytest.raises(DivergedError) as caught:
        run_workload("sr", cfg)
    assert type(caught.value) is DivergedError
    assert "\n" not in str(caught.value) and "training diverged (lower the learning rate)" in str(caught.value)
