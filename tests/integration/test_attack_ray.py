"""``fedray run attack`` on Ray: victims train and attacks are crafted in Ray tasks, with the inline numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import ATTACK_TINY, inline_and_ray

pytestmark = pytest.mark.ray

TINY = [*ATTACK_TINY, "attacks=[asma,asma_adaptive,pgd]", "num_cpus=1", "threads=1"]


def test_ray_tasks_give_the_inline_numbers(ray_session, tmp_path: Path):
    inline, ray_run = inline_and_ray("attack", TINY, tmp_path)
    assert json.dumps(ray_run["results"], sort_keys=True) == json.dumps(inline["results"], sort_keys=True)
    for name in ("cnn", "resnet"):
        assert ray_run["victims"][name]["loss_curve"] == inline["victims"][name]["loss_curve"]
