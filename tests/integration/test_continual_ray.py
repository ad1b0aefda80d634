"""Task streams as Ray actors: the same numbers as the inline runtime, streams in parallel, a killed run resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import inline_and_ray

from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.ray

STREAMS = [
    "data.image_size=16",
    "data.tasks=5",
    "data.train_per_class=30",
    "model.d_model=16",
    "model.d_state=4",
    "model.dt_rank=2",
    "model.depth=1",
    "model.group_norm=8",
    "pretrain.enabled=false",
    "train.epochs=2",
    "train.lr=3e-3",
    "train.batch_size=32",
    "streams=2",
    "num_cpus=1",
    "method=mambacl",
]


def test_ray_streams_match_the_inline_streams(ray_session, tmp_path: Path):
    inline, local = inline_and_ray("continual", STREAMS, tmp_path)
    assert inline["streams"] == 2 and local["streams"] == 2
    for a, b in zip(inline["per_stream"], local["per_stream"], strict=True):
        assert a["class_order"] == b["class_order"]
        np.testing.assert_allclose(np.concatenate(b["acc_matrix"]), np.concatenate(a["acc_matrix"]), atol=1e-9)
    assert local["avg_acc"] == pytest.approx(inline["avg_acc"])


def test_streams_that_cannot_all_be_placed_are_refused_not_stalled(ray_session, tmp_path: Path):
    """Streams advance in lockstep: a stream actor left waiting for a CPU would hang the run, so it is an error."""
    from fedray.platform.errors import ConfigError

    cfg = resolve_config("continual", overrides=[*STREAMS, "streams=3", "num_cpus=1", "cluster.mode=local",
                                                 f"run.root={tmp_path}"])  # fmt: skip
    with pytest.raises(ConfigError, match=r"streams=3 × \(num_cpus=1.0, num_gpus=0.0\) needs 3 CPUs"):
        run_workload("continual", cfg)
