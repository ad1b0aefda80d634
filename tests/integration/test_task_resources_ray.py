"""A workload whose tasks ask for more than the whole cluster has is refused in one line before it writes anything,
instead of waiting forever for resources no node can grant (the test cluster has 2 CPUs and no GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError

pytestmark = pytest.mark.ray

GPU_PRESETS = sorted((Path(__file__).resolve().parents[2] / "configs" / "gpu").glob("*.yaml"))


@pytest.mark.parametrize("preset", GPU_PRESETS, ids=lambda p: p.stem)
def test_a_gpu_preset_on_a_cluster_without_gpus_is_refused(ray_session, tmp_path: Path, preset: Path):
    cfg = resolve_config(preset.stem, preset, ["cluster.mode=local", f"run.root={tmp_path}"])
    gpus = f"num_gpus={cfg.num_gpus:g}; the cluster has 2 CPUs and 0 GPUs"
    with pytest.raises(ConfigError, match=f"^each task asks for num_cpus=1, {gpus}$"):
        run_workload(preset.stem, cfg)
    assert not any(tmp_path.iterdir())


def test_a_cpu_request_larger_than_the_cluster_is_refused(ray_session, tmp_path: Path):
    cfg = resolve_config("ood", overrides=["num_cpus=3", "cluster.mode=local", f"run.root={tmp_path}"])
    with pytest.raises(ConfigError, match="each task asks for num_cpus=3, num_gpus=0; the cluster has 2 CPUs"):
        run_workload("ood", cfg)
    assert not any(tmp_path.iterdir())
