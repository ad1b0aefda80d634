"""Configuration of the ``continual`` workload (torch-free, so ``fedray config continual`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig
from fedray.platform.errors import ConfigError, require
from fedray.platform.modules.config import MambaConfig

Method = Literal["mambacl", "finetune", "heads", "ewc", "lwf", "replay", "joint"]
ProjectedPart = Literal["delta", "B", "C", "A", "out"]
PROJECTED_PARTS = ("delta", "B", "C", "A", "out")


@dataclass
class StreamData:
    """The task stream: a labelled dataset whose classes arrive ``tasks`` at a time.

    ``digits`` (scikit-learn, built in, the fast default), ``fashion_mnist`` (IDX files in ``path``; default where
    Debian's ``dataset-fashion-mnist`` installs them) or ``folder`` (``path/<class>/**`` or
    ``path/{train,test}/<class>/**``). ``class_order`` fixes the order classes arrive in; otherwise it is shuffled by
    each stream's seed (``shuffle_classes``). ``train_per_class``/``test_per_class`` keep a seeded subset.
    """

    name: Literal["digits", "fashion_mnist", "folder"] = "digits"
    path: str | None = None
    image_size: int = 28
    channels: int = 1  # folder: 1 grayscale, 3 RGB
    tasks: int = 5
    class_order: list[int] | None = None
    shuffle_classes: bool = True
    train_per_class: int | None = None
    test_per_class: int | None = None
    test_fraction: float = 0.2  # digits, and folders without a train/test split on disk


@dataclass
class Pretrain:
    """A stand-in for the ImageNet pre-training of the paper's backbone: 10-way digit classification on the digit
    sheet ``digit_sheet`` (OpenCV's ``digits.png``: 20×20 digits, 100 a row, classes in equal bands of rows; Debian's
    ``opencv-doc`` installs it) plus scikit-learn's digits (left out when the stream is made of them), every parameter
    trained. ``checkpoint`` loads a saved backbone (``checkpoints/pretrained.safetensors`` of an earlier run) instead
    of training one; ``enabled=false`` without a checkpoint starts from random weights."""

    enabled: bool = True
    checkpoint: str | None = None
    digit_sheet: str = "/usr/share/doc/opencv-doc/examples/data/digits.png"
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 128
    max_samples: int | None = None


@dataclass
class Train:
    """Per task: Adam (Mamba-CL's projected Adam for ``mambacl``) for ``epochs``, lr × ``gamma`` after each fraction
    of the epochs in ``milestones`` (rounded half up: 0.5 and 0.8 of 5 epochs are after epochs 3 and 4, of 10 after
    5 and 8); heads learn at ``head_lr``. ``threads``: torch threads per stream."""

    epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-4
    head_lr: float = 1e-2
    weight_decay: float = 5e-5
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.8])
    gamma: float = 0.1
    eval_batch_size: int = 500
    threads: int = 1


@dataclass
class MambaCL:
    """Null-space projection of the SSM updates: H = η·P + (1 − η)·I. ``project`` lists which parameters are
    projected (``delta`` W_δ, ``B`` W_B, ``C`` W_C, ``A`` A_log, ``out`` out_proj); ``normalize`` divides P by its
    Frobenius norm (the official rule; false: the plain projector, an ablation); ``accumulate`` sums covariances
    across tasks (``sum``) or averages them by sample count (``mean``). ``batch_size``: the covariance pass's batches
    (each adds its own normalised term, so the batch size is part of the method, fixed for a run)."""

    eta: float = 0.9
    project: list[str] = field(default_factory=lambda: list(PROJECTED_PARTS))
    normalize: bool = True
    accumulate: Literal["sum", "mean"] = "sum"
    batch_size: int = 100


@dataclass
class Baselines:
    """``ewc``: online EWC, λ/2·Σ F(θ − θ*)² with the diagonal Fisher summed over tasks; ``lwf``: λ·T²·KL between
    the previous model's and the current model's old-head logits at temperature T; ``replay``: ``replay_per_class``
    stored samples of every seen class, rehearsed with each batch over all seen classes."""

    ewc_lambda: float = 1000.0
    lwf_lambda: float = 1.0
    lwf_temperature: float = 2.0
    replay_per_class: int = 20


@dataclass
class ContinualConfig(WorkloadConfig):
    """``streams`` task streams (seeds ``seed``, ``seed+1``, …; with shuffled classes each has its own class order)
    run in parallel, one actor each, and report mean ± std."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "train.threads",
        "train.eval_batch_size",
    )

    method: Method = "mambacl"
    streams: int = 1
    data: StreamData = field(default_factory=StreamData)
    model: MambaConfig = field(default_factory=MambaConfig)
    pretrain: Pretrain = field(default_factory=Pretrain)
    train: Train = field(default_factory=Train)
    mambacl: MambaCL = field(default_factory=MambaCL)
    baselines: Baselines = field(default_factory=Baselines)
    num_cpus: float = 1.0  # per stream actor
    num_gpus: float = 0.0

    def input_paths(self) -> dict[str, str | None]:
        return {"pretrain.checkpoint": self.pretrain.checkpoint}

    def validate(self) -> None:
        if self.streams < 1:
            raise ConfigError(f"streams must be at least 1, got {self.streams}")
        if not 0.0 <= self.mambacl.eta <= 1.0:
            raise ConfigError(f"mambacl.eta must lie in [0, 1], got {self.mambacl.eta}")
        unknown = sorted(set(self.mambacl.project) - set(PROJECTED_PARTS))
        if unknown:
            raise ConfigError(f"mambacl.project has unknown parts {unknown}; choose from {', '.join(PROJECTED_PARTS)}")
        if self.model.scan not in ("auto", "reference", "fast", "cuda"):
            raise ConfigError(f"model.scan must be auto, reference, fast or cuda, got {self.model.scan!r}")
        if self.model.discretization not in ("mamba", "zoh"):
            raise ConfigError(f"model.discretization must be mamba or zoh, got {self.model.discretization!r}")
        if self.data.image_size % self.model.patch_size:
            raise ConfigError(
                f"model.patch_size={self.model.patch_size} must divide data.image_size={self.data.image_size}"
            )
        if self.train.epochs < 1 or self.train.batch_size < 1 or self.mambacl.batch_size < 1:
            raise ConfigError("train.epochs, train.batch_size and mambacl.batch_size must be positive")
        if any(not 0 < m < 1 for m in self.train.milestones):
            raise ConfigError(f"train.milestones are fractions of the epochs in (0, 1), got {self.train.milestones}")
        self._validate_sizes()

    def _validate_sizes(self) -> None:
        """Counts, rates and weights the training loops and baselines would turn into NaN, slices or hangs."""
        m, t, p, b = self.model, self.train, self.pretrain, self.baselines
        pretrain = {"pretrain.epochs": p.epochs, "pretrain.batch_size": p.batch_size, "pretrain.lr": p.lr}
        if not p.enabled or p.checkpoint is not None:
            pretrain = {}  # nothing is pre-trained here
        require("positive", {"model.patch_size": m.patch_size, "model.d_model": m.d_model, "model.expand": m.expand,
                             "model.d_state": m.d_state, "model.dt_rank": m.dt_rank, "model.d_conv": m.d_conv,
                             "model.depth": m.depth, "model.delta_scale": m.delta_scale, "train.lr": t.lr,
                             "train.head_lr": t.head_lr, "train.eval_batch_size": t.eval_batch_size,
                             "train.threads": t.threads, "baselines.replay_per_class": b.replay_per_class,
                             "baselines.lwf_temperature": b.lwf_temperature, **pretrain})  # fmt: skip
        require("0 or more", {"train.weight_decay": t.weight_decay, "baselines.ewc_lambda": b.ewc_lambda,
                              "baselines.lwf_lambda": b.lwf_lambda})  # fmt: skip
        if not 0 < t.gamma <= 1:
            raise ConfigError(f"train.gamma (the decay at each milestone) must lie in (0, 1], got {t.gamma}")
