"""A run whose training diverges stops with one line naming what diverged, in every training loop a workload has,
instead of finishing with NaN weights, NaN metrics and exit status 0. An earlier run of the same name is kept when
the new one diverges before writing anything of its own (later, the folder is the new run's, as for any stop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import COMPOSE_TINY, FAIRNESS_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import DivergedError

CONTINUAL = ["data.image_size=16", "data.tasks=2", "data.train_per_class=20", "model.d_model=16", "model.d_state=4",
             "model.dt_rank=2", "model.depth=1", "model.group_norm=8", "pretrain.enabled=false",
             "train.epochs=2"]  # fmt: skip
OOD = ["data.id=digits", "encoder.widths=[8,16,32,64]", "encoder.epochs=2", "lfdn.epochs=2", "lfdn.depth=2",
       "lfdn.width=64", "ood.texture_crops=100", "ood.noise_samples=60", "ood.max_per_set=100"]  # fmt: skip
PURIFY = ["data.image_size=16", "data.test_slices=4", "data.test_volume=/nonexistent/ch2.nii.gz",
          "model.model_channels=8", "model.channel_mult=[1,2]", "model.attention_resolutions=[8]",
          "model.num_res_blocks=1", "train.steps=6", "train.log_every=3", "diffusion.sample_steps=5"]  # fmt: skip
FER = ["data.source=digits", "data.image_size=16", "data.train_samples=420", "data.test_samples=140",
       "model.widths=[8,16,32,64]", "model.blocks=1", "train.epochs=2", "methods=[linear_ce]"]  # fmt: skip

CASES = {
    "continual stream": ("continual", [*CONTINUAL, "train.lr=1e30"], r"continual stream 0, task 1, epoch \d+"),
    "ood encoder": ("ood", [*OOD, "encoder.lr=1e30"], r"ood encoder, epoch \d+"),
    "ood feature diffusion": ("ood", [*OOD, "lfdn.lr=1e30"], r"ood \w+ feature diffusion, epoch \d+"),
    "purify ddpm": ("purify", [*PURIFY, "train.lr=1e30"], r"purify \w+, step \d+"),
    "compose base": ("compose", [*COMPOSE_TINY, "train.base_lr=1e30"], r"compose \w+, step \d+"),
    "fairness detector": ("fairness", [*FAIRNESS_TINY, "detector.lr=1e30"], r"detector, epoch \d+"),
    "fer": (
        "fer",
        [*FER, "train.lr_per_method={linear_ce: 1e30}", "train.warmup_epochs=0"],
        r"fer linear_ce, epoch \d+",
    ),
}
BEFORE_ANY_OUTPUT = {"continual stream", "ood encoder", "purify ddpm", "fairness detector"}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_diverged_loop_stops_the_run_in_one_line_and_keeps_the_earlier_run(tmp_path: Path, case: str):
    workload, overrides, where = CASES[case]
    if workload == "fer":
        np.save(tmp_path / "prompts.npy", np.random.default_rng(0).standard_normal((7, 384)).astype(np.float32))
        overrides = [*overrides, f"text.embeddings_file={tmp_path / 'prompts.npy'}"]
    earlier = tmp_path / workload / "default"
    earlier.mkdir(parents=True)
    (earlier / "config.yaml").write_text("earlier: run\n")
    (earlier / "metrics.jsonl").write_text('{"step": 1}\n')
    cfg = resolve_config(workload, overrides=["cluster.mode=inline", f"run.root={tmp_path}", *overrides])
    with pytest.raises(DivergedError, match=rf"^{where}: the training loss became (nan|inf|-inf); training diverged"):
        run_workload(workload, cfg)
    if case in BEFORE_ANY_OUTPUT:
        assert (earlier / "config.yaml").read_text() == "earlier: run\n"
        assert (earlier / "metrics.jsonl").read_text() == '{"step": 1}\n'
