"""``fedray run fairness`` on Ray: training and each seed's evaluation are Ray tasks, with the inline numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import FAIRNESS_TINY, inline_and_ray

pytestmark = pytest.mark.ray

TINY = [*FAIRNESS_TINY, "pruning.rates_percent=[10]", "pruning.scores=[bpfa,random]", "num_cpus=1", "threads=1"]


def test_ray_tasks_give_the_inline_numbers(ray_session, tmp_path: Path):
    inline, ray_run = inline_and_ray("fairness", TINY, tmp_path)
    for key in ("original", "pruning", "thresholds"):  # json: NaN compares equal to NaN
        assert json.dumps(ray_run[key]) == json.dumps(inline[key]), key
    assert ray_run["detector"]["0"]["train_loss"] == pytest.approx(inline["detector"]["0"]["train_loss"], abs=1e-9)
