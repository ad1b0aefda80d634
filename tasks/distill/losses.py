"""TAD-SR's losses around a frozen ResShift teacher (all per-sample, ``[B]``, unless said otherwise).

- regression: mean_flat((ẑ₀ − z₀^tch)²) against the teacher's deterministic multi-step output from the same z_T;
- HSD: re-noise the student's output and the teacher's output with the *same* perturbation to a small t, take the
  teacher's score at both, and use the difference g (no gradient) in mean_flat(g · ẑ₀), so ∂L/∂ẑ₀ = g / numel;
  SDS (the ablation) uses the perturbation itself as the reference instead of the teacher's own output;
- adversarial: hinge loss of a time-aware discriminator on the frozen teacher's encoder features of noised images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedray.platform.modules.diffusion.gaussian import mean_flat
from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion, Restorer


def perturbation(like: torch.Tensor, kind: str, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise, or the official code's uniform [0, 1) draw (``uniform_official``)."""
    draw = torch.rand if kind == "uniform_official" else torch.randn
    return draw(like.shape, generator=generator).to(like.device, like.dtype)


def teacher_x0(
    diffusion: ResShiftDiffusion, teacher: Restorer, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, double: bool
) -> torch.Tensor:
    """The teacher's x₀ at x_t; ``double`` reproduces the official HSD calls, which scale an already scaled input."""
    inputs = diffusion.scale_input(x, t)
    if double:
        inputs = diffusion.scale_input(inputs, t)
    return teacher(inputs, t, cond)


def teacher_score(
    diffusion: ResShiftDiffusion,
    teacher: Restorer,
    x: torch.Tensor,
    t: torch.Tensor,
    y: torch.Tensor,
    cond: torch.Tensor,
    double: bool,
) -> torch.Tensor:
    """The noise the teacher reads in x_t: (x_t − (x̂₀ + η_t (y − x̂₀))) / (κ √η_t)."""
    x0 = teacher_x0(diffusion, teacher, x, t, cond, double)
    eta = diffusion.coef("etas", t, x)
    return (x - (x0 + eta * (y - x0))) / (diffusion.kappa * torch.sqrt(eta))


@torch.no_grad()
def score_gap(
    diffusion: ResShiftDiffusion,
    teacher: Restorer,
    student_x0: torch.Tensor,
    teacher_x0_out: torch.Tensor,
    y: torch.Tensor,
    cond: torch.Tensor,
    t: torch.Tensor,
    noise: torch.Tensor,
    reference: str,
    double: bool,
) -> torch.Tensor:
    """g = ε̂(student output re-noised) − reference, with reference ε̂(teacher output re-noised) (``teacher``: HSD)
    or the perturbation itself (``noise``: SDS); NaNs and infinities zeroed as the official code does."""
    score_s = teacher_score(diffusion, teacher, diffusion.q_sample(student_x0, y, t, noise), t, y, cond, double)
    if reference == "noise":
        ref = noise
    else:
        ref = teacher_score(diffusion, teacher, diffusion.q_sample(teacher_x0_out, y, t, noise), t, y, cond, double)
    return torch.nan_to_num(score_s - ref, nan=0.0, posinf=0.0, neginf=0.0)


def regression_loss(student_x0: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return mean_flat((student_x0 - target) ** 2)


def distillation_loss(gap: torch.Tensor, student_x0: torch.Tensor) -> torch.Tensor:
    return mean_flat(gap.detach() * student_x0)


def discriminator_hinge(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """mean(relu(1 − D(real))) + mean(relu(1 + D(fake))) (a scalar)."""
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def generator_adversarial(fake: torch.Tensor) -> torch.Tensor:
    """−mean(D(fake)) (a scalar)."""
    return -fake.mean()
