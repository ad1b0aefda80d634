"""TAD-SR's losses against their definitions, and the ``distill`` workload on a tiny ``sr`` teacher."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fedray.cluster.federation_config import FederatedConfig
from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.config import to_yaml
from fedray.platform.errors import ConfigError, DataError, DivergedError
from fedray.platform.io import save_arrays
from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion, resshift_sqrt_etas
from fedray.platform.modules.discriminator import TimeAwareDiscriminator
from fedray.tasks.distill import losses

SR_TINY = [
    "cluster.mode=inline", "data.hr_size=16", "data.test_crops=4", "model.model_channels=8", "model.embed_dim=16",
    "model.depth=1", "train.steps=3", "train.batch_size=4", "train.warmup=1", "methods=[dit_sr,bicubic]",
]  # fmt: skip


def _diffusion() -> ResShiftDiffusion:
    return ResShiftDiffusion(resshift_sqrt_etas(15), kappa=2.0, scaling="pixel")


def _exact(x0: torch.Tensor):
    return lambda x, t, cond: x0


def test_teacher_score_reads_back_the_perturbation_for_an_exact_teacher():
    d = _diffusion()
    x0, y, noise = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = torch.tensor([0, 2])
    score = losses.teacher_score(d, _exact(x0), d.q_sample(x0, y, t, noise), t, y, y, double=False)
    assert torch.allclose(score, noise, atol=1e-4)


def test_hsd_gap_vanishes_when_student_matches_teacher_and_sds_uses_the_noise():
    d = _diffusion()
    x0, y, noise = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    t = torch.tensor([1, 2])
    teacher = lambda x, t, cond: 0.5 * x  # noqa: E731 - any deterministic teacher
    gap = losses.score_gap(d, teacher, x0, x0, y, y, t, noise, "teacher", double=False)
    assert torch.count_nonzero(gap) == 0
    sds = losses.score_gap(d, teacher, x0, x0, y, y, t, noise, "noise", double=False)
    expected = losses.teacher_score(d, teacher, d.q_sample(x0, y, t, noise), t, y, y, False) - noise
    assert torch.allclose(sds, expected)


def test_double_scale_scales_the_teacher_input_twice():
    d = _diffusion()
    seen = []
    x, t = torch.ones(1, 3, 2, 2), torch.tensor([2])
    losses.teacher_x0(d, lambda inp, t, c: seen.append(inp) or inp, x, t, x, double=True)
    assert torch.allclose(seen[0], d.scale_input(d.scale_input(x, t), t))


def test_distillation_loss_gradient_is_the_gap_over_numel():
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    gap = torch.randn(2, 3, 4, 4)
    losses.distillation_loss(gap, z).mean().backward()
    assert torch.allclose(z.grad, gap / 48 / 2)


def test_hinge_losses_and_perturbation_kinds():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert losses.discriminator_hinge(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    assert losses.generator_adversarial(fake).item() == pytest.approx(1.0)
    uniform = losses.perturbation(torch.zeros(1000), "uniform_official", torch.Generator().manual_seed(0))
    assert uniform.min() >= 0 and 0.45 < uniform.mean() < 0.55  # the official code's torch.rand
    gaussian = losses.perturbation(torch.zeros(1000), "gaussian", torch.Generator().manual_seed(0))
    assert gaussian.min() < 0 and abs(gaussian.mean()) < 0.1


def test_time_aware_discriminator_gives_one_logit_per_position_per_scale():
    disc = TimeAwareDiscriminator((4, 8), c_dim=6, emb_dim=16)
    out = disc([torch.randn(2, 4, 8, 8), torch.randn(2, 8, 4, 4).permute(0, 1, 3, 2)], torch.tensor([0, 5]))
    assert out.shape == (2, 64 + 16)
    out.mean().backward()


def test_distill_workload_from_a_tiny_sr_teacher(tmp_path: Path):
    _, teacher_dir = run_workload("sr", resolve_config("sr", overrides=[*SR_TINY, f"run.root={tmp_path}"]))
    overrides = ["cluster.mode=inline", f"run.root={tmp_path}", f"teacher.run_dir={teacher_dir.path}",
                 "train.steps=2", "train.warmup=1", "train.batch_size=4", "train.log_every=1"]  # fmt: skip
    summary, _ = run_workload("distill", resolve_config("distill", overrides=overrides))
    assert set(summary["results"]) == {"tad_sr", "reg_only", "reg_sds", "reg_hsd", "teacher", "teacher_one_step",
                                       "bicubic"}  # fmt: skip
    assert all(np.isfinite(r["psnr_y"]) for r in summary["results"].values())
    assert summary["vs_teacher"]["tad_sr"]["speedup"] > 1  # one network call against T
    curve = summary["training"]["tad_sr"]["loss_curve"][-1]
    assert {"reg", "hsd", "gan", "disc"} <= set(curve) and "gan" not in summary["training"]["reg_hsd"]["loss_curve"][-1]
    again, _ = run_workload("distill", resolve_config("distill", overrides=[*overrides, "resume=true"]))
    assert again["results"]["tad_sr"]["psnr_y"] == pytest.approx(summary["results"]["tad_sr"]["psnr_y"])
    assert again["training"]["tad_sr"] == {"source": "checkpoint"}
    diverging = [*overrides, "run.name=diverged", "train.lr=1e30", "variants=[tad_sr]"]
    with pytest.raises(DivergedError, match=r"^distill tad_sr, step \d+: the training loss became"):
        run_workload("distill", resolve_config("distill", overrides=diverging))


def test_missing_teacher_and_bad_variants_are_one_line_errors(tmp_path: Path):
    cfg = resolve_config("distill", overrides=["cluster.mode=inline", f"run.root={tmp_path}",
                                               f"teacher.run_dir={tmp_path}/nothing"])  # fmt: skip
    with pytest.raises(DataError, match="holds no sr run"):
        run_workload("distill", cfg)
    with pytest.raises(ConfigError, match="unknown entries"):
        resolve_config("distill", overrides=["variants=[tad_sr,sinsr]"])


def test_a_teacher_folder_that_is_not_a_fitting_sr_run_is_a_one_line_error(tmp_path: Path):
    """Another workload's run, and an sr run whose weights do not fit its own config, are refused before any task
    starts, naming the folder or the file."""
    weights = {"x": np.zeros(2, dtype=np.float32)}
    other = tmp_path / "fed"
    save_arrays(other / "checkpoints" / "dit_sr.safetensors", weights)
    (other / "config.yaml").write_text(to_yaml(FederatedConfig()))
    misfit = tmp_path / "sr"
    save_arrays(misfit / "checkpoints" / "dit_sr.safetensors", weights)
    (misfit / "config.yaml").write_text(to_yaml(resolve_config("sr", overrides=SR_TINY)))
    for folder, message in (
        (other, f"teacher.run_dir={other}: its config.yaml is not an sr run's (unknown config key 'method'"),
        (misfit, f"{misfit / 'checkpoints' / 'dit_sr.safetensors'} does not fit this model (the run's config.yaml"),
    ):
        cfg = resolve_config("distill", overrides=["cluster.mode=inline", f"run.root={tmp_path / 'runs'}",
                                                   f"teacher.run_dir={folder}"])  # fmt: skip
        with pytest.raises(DataError, match=re.escape(message)):
            run_workload("distill", cfg)
    cfg = resolve_config("distill", overrides=["cluster.mode=inline", f"run.root={tmp_path / 'runs'}",
                                               f"teacher.run_dir={misfit}", "losses.hsd_steps=16"])  # fmt: skip
    with pytest.raises(ConfigError, match=re.escape("losses.hsd_steps=16 re-noises further than the teacher's 15")):
        run_workload("distill", cfg)
