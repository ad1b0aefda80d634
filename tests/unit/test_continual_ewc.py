"""EWC's penalty: λ/2 · Σ F·(θ − θ*)² over the SSM parameters, with the Fisher F and anchor θ* of the tasks so far —
kept on the CPU for checkpoints and copied to the model's device once per task."""

from __future__ import annotations

import pytest
import torch

from fedray.cluster.launch import resolve_config
from fedray.tasks.continual.learners import EWCLearner, _named_ssm
from fedray.tasks.continual.model import ContinualMamba


def _setup() -> tuple[EWCLearner, ContinualMamba, torch.Tensor, torch.Tensor]:
    cfg = resolve_config(
        "continual", overrides=["model.d_model=8", "model.depth=1", "model.group_norm=4", "data.image_size=8"]
    )
    torch.manual_seed(0)
    model = ContinualMamba(cfg.model, 1, 8)
    model.heads.add_task(2)
    images, labels = torch.randn(12, 1, 8, 8), torch.tensor([0, 1] * 6)
    return EWCLearner(cfg), model, images, labels


def _penalty(learner: EWCLearner, model: ContinualMamba, images, labels) -> float:
    plain = torch.nn.functional.cross_entropy(model.heads.heads[0](model.backbone(images)), labels)
    return float((learner.loss(model, images, labels, 0, 0) - plain).detach())


def _by_hand(learner: EWCLearner, model: ContinualMamba) -> float:
    total = sum((learner.fisher[n] * (p.detach() - learner.anchor[n]) ** 2).sum() for n, p in _named_ssm(model).items())
    return float(learner.cfg.baselines.ewc_lambda / 2 * total)


def test_the_penalty_follows_the_fisher_and_anchor_of_the_tasks_so_far():
    learner, model, images, labels = _setup()
    assert _penalty(learner, model, images, labels) == 0.0  # no task finished yet
    learner.after_task(model, images, labels, 0)
    assert _penalty(learner, model, images, labels) == pytest.approx(0.0, abs=1e-12)  # at the anchor
    with torch.no_grad():
        for p in _named_ssm(model).values():
            p.add_(0.05)
    first = _penalty(learner, model, images, labels)
    assert first > 0 and first == pytest.approx(_by_hand(learner, model), rel=1e-5)
    learner.after_task(model, images, labels, 0)  # a second task: Fisher accumulates, the anchor moves here
    assert _penalty(learner, model, images, labels) == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        for p in _named_ssm(model).values():
            p.add_(0.05)
    second = _penalty(learner, model, images, labels)
    assert second == pytest.approx(_by_hand(learner, model), rel=1e-5) and second > first
    restored = EWCLearner(learner.cfg)
    restored.load(learner.arrays())  # a resumed stream penalises the same way
    assert _penalty(restored, model, images, labels) == pytest.approx(second, rel=1e-6)
