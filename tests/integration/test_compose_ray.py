"""``fedray run compose`` on Ray: every training and every composition shard is a Ray task, with the inline numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import COMPOSE_TINY, inline_and_ray

pytestmark = pytest.mark.ray


def test_ray_tasks_give_the_inline_numbers(ray_session, tmp_path: Path):
    inline, ray_run = inline_and_ray("compose", COMPOSE_TINY, tmp_path)

    def scores(summary: dict) -> str:  # everything but the measured time
        rows = {m: {k: v for k, v in r.items() if k != "seconds_per_image"} for m, r in summary["results"].items()}
        return json.dumps(rows, sort_keys=True)

    assert scores(ray_run) == scores(inline)
    for name in ("encoder", "base", "fusion", "concat", "fusion_nocontrol"):
        assert ray_run["training"][name]["loss_curve"] == inline["training"][name]["loss_curve"], name
