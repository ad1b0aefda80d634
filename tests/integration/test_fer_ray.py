"""``fedray run fer`` on Ray: each method is a Ray task, and the numbers are those of the inline runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedray.cluster.launch import resolve_config, run_workload

pytestmark = pytest.mark.ray

TINY = [
    "data.source=digits",
    "data.image_size=16",
    "data.train_samples=280",
    "data.test_samples=140",
    "model.widths=[8,16,32,64]",
    "model.blocks=1",
    "train.epochs=2",
    "methods=[ke2nt,linear_ce]",
    "num_cpus=1",
    "threads=1",
]


def test_ray_tasks_give_the_inline_numbers(ray_session, tmp_path: Path):
    from fedray.tasks.fer.text import encode_prompts

    embeddings = tmp_path / "prompts.npy"
    np.save(embeddings, encode_prompts())
    results = {}
    for mode in ("inline", "local"):
        overrides = [*TINY, f"text.embeddings_file={embeddings}", f"cluster.mode={mode}", f"run.name={mode}"]
        cfg = resolve_config("fer", overrides=[*overrides, f"run.root={tmp_path}"])
        results[mode], _ = run_workload("fer", cfg)
        assert results[mode]["runtime"] == mode
    inline, ray_run = results["inline"], results["local"]
    for method in ("ke2nt", "linear_ce"):
        for key in ("accuracy", "mean_class_accuracy", "confusion_matrix", "best_epoch", "val_curve"):
            assert ray_run["results"][method][key] == inline["results"][method][key], (method, key)
        assert ray_run["results"][method]["final_losses"] == pytest.approx(inline["results"][method]["final_losses"])
