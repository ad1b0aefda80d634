"""Configuration of the ``distill`` workload (torch-free, so ``fedray config distill`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_known, check_training
from fedray.platform.errors import require

VARIANTS = ("tad_sr", "reg_only", "reg_sds", "reg_hsd")
REFERENCES = ("teacher", "teacher_one_step", "bicubic")


@dataclass
class Teacher:
    """The trained multi-step model to distil: an ``sr`` run directory (its ``config.yaml`` fixes the network, the
    ResShift schedule and the data) and which of its trained methods is the teacher."""

    run_dir: str = "runs/sr/default"
    method: Literal["dit_sr", "dit_sr_adaln"] = "dit_sr"


@dataclass
class DistillTrain:
    """AdamW at ``lr`` for the student and the discriminator (linear warm-up over ``warmup`` steps, then constant),
    ``batch_size`` crops, ``steps`` iterations, EMA ``ema`` of the student's weights (0.999 officially; its warm-up,
    :func:`fedray.platform.optim.ema_steps.warmed_decay`, keeps a run of a few hundred steps from being evaluated at
    mostly the teacher's initial copy)."""

    steps: int = 200
    batch_size: int = 16
    lr: float = 5e-5
    warmup: int = 20
    ema: float = 0.999
    threads: int = 1
    log_every: int = 20


@dataclass
class Losses:
    """L = L_reg + ``hsd_weight``·L_HSD + ``gan_weight``·L_G. HSD compares the teacher's score at the student's output
    with its score at the teacher's own output after re-noising to t ∈ {0, …, ``hsd_steps``−1}; the discriminator sees
    the frozen teacher's encoder features at t ∈ {0, …, T−2}. ``noise``: ``gaussian`` [fedray default, consistent
    with the forward process] or ``uniform_official`` (the official code's torch.rand draw); ``double_scale``: the
    official code's second input scaling of the HSD teacher calls. ``c_dim``: discriminator head width."""

    hsd_weight: float = 1.0
    gan_weight: float = 0.02
    hsd_steps: int = 3
    noise: Literal["gaussian", "uniform_official"] = "gaussian"
    double_scale: bool = False
    c_dim: int = 32


@dataclass
class DistillConfig(WorkloadConfig):
    """Distil the teacher into one-step students, one per entry of ``variants`` (each a Ray task): ``tad_sr`` (all
    three losses), ``reg_only`` (regression distillation, the strongest simple baseline), ``reg_sds`` (L_reg + score
    distillation against the true noise), ``reg_hsd`` (no discriminator); evaluate them with ``references``."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "train.threads",
        "train.log_every",
    )

    teacher: Teacher = field(default_factory=Teacher)
    train: DistillTrain = field(default_factory=DistillTrain)
    losses: Losses = field(default_factory=Losses)
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    references: list[str] = field(default_factory=lambda: list(REFERENCES))
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def validate(self) -> None:
        check_known("variants", self.variants, VARIANTS)
        check_known("references", self.references, REFERENCES, empty_ok=True)
        check_training("train", self.train)
        require("positive", {"losses.hsd_steps": self.losses.hsd_steps, "losses.c_dim": self.losses.c_dim})
        require("0 or more", {"losses.hsd_weight": self.losses.hsd_weight, "losses.gan_weight": self.losses.gan_weight})
