"""``fedray run ood`` on Ray: every heavy step is a Ray task, and the numbers are those of the inline runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import inline_and_ray

pytestmark = pytest.mark.ray

TINY = [
    "data.id=digits",
    "data.train_samples=600",
    "encoder.widths=[8,16,32,64]",
    "encoder.epochs=2",
    "lfdn.epochs=2",
    "lfdn.depth=2",
    "lfdn.width=64",
    "ood.sets=[lfw,uniform_noise]",
    "ood.noise_samples=60",
    "ood.max_per_set=80",
    "inference.t=[3,5]",
    "inference.throughput_samples=50",
    "baselines.knn_k=10",
    "num_cpus=1",
    "threads=1",
]


def test_ray_tasks_give_the_inline_numbers(ray_session, tmp_path: Path):
    inline, ray_run = inline_and_ray("ood", TINY, tmp_path)
    assert set(ray_run["scores"]) == set(inline["scores"]) and "mfsim_t5" in ray_run["scores"]
    for name, m in inline["scores"].items():
        for metric in ("auroc", "fpr95"):
            assert ray_run["scores"][name][metric] == pytest.approx(m[metric], abs=1e-9), (name, metric)
    assert ray_run["encoder"]["losses"] == pytest.approx(inline["encoder"]["losses"], abs=1e-9)
    assert ray_run["lfdn"]["losses"] == pytest.approx(inline["lfdn"]["losses"], abs=1e-9)
