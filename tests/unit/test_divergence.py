"""A run whose training diverges stops with one line naming what diverged, in every training loop a workload has,
instead of finishing with NaN weights, NaN metrics and exit status 0. An earlier run of the same name is kept when
the new one diverges before writing anything of its own (later, the folder is the new run's, as for any stop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import COMPOSE_TINY, CONTINUAL_TINY, FAIRNESS_TINY, FER_TINY, OOD_TINY, PURIFY_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import DivergedError

CASES = {
    "continual stream": ("continual", [*CONTINUAL_TINY, "train.lr=1e30"], r"continual stream 0, task 1, epoch \d+"),
    "ood encoder": ("ood", [*OOD_TINY, "encoder.lr=1e30"], r"ood encoder, epoch \d+"),
    "ood feature diffusion": ("ood", [*OOD_TINY, "lfdn.lr=1e30"], r"ood \w+ feature diffusion, epoch \d+"),
    "purify ddpm": ("purify", [*PURIFY_TINY, "train.lr=1e30"], r"purify \w+, step \d+"),
    "compose base": ("compose", [*COMPOSE_TINY, "train.base_lr=1e30"], r"compose \w+, step \d+"),
    "fairness detector": ("fairness", [*FAIRNESS_TINY, "detector.lr=1e30"], r"detector, epoch \d+"),
    "fer": (
        "fer",
        [*FER_TINY, "methods=[linear_ce]", "train.lr_per_method={linear_ce: 1e30}", "train.warmup_epochs=0"],
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
