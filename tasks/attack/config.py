"""Configuration of the ``attack`` workload (torch-free, so ``fedray config attack`` stays fast).

The defaults are ASMA's small-scale recipe: two victims (a 3-block CNN and a ResNet-8) trained on self-blended
forgeries of LFW faces at 64×64, attacked on 500 test images made from faces the victims never saw; the released
attack's budget (ε 0.20, 20 steps of 0.015 on the CAM discrepancy, mask after the attack) and the baselines at
ε = 8/255.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig
from fedray.platform.data.config import ForgeryConfig
from fedray.platform.errors import ConfigError, require
from fedray.platform.modules.config import ModelConfig
from fedray.tasks.forensics.config import DetectorConfig

ATTACKS = ("asma", "asma_masked", "asma_adaptive", "fgsm", "bim", "pgd", "pgd_masked_ce")
REGION_NAMES = ("l_eye", "r_eye", "l_brow", "r_brow", "nose", "mouth", "l_cheek", "r_cheek")


def _forgery_64() -> ForgeryConfig:
    """SBI for 64×64 faces upsampled from LFW's 25×25: the two resolution families (blur, down-up resampling), with
    pixel-unit strengths twice those learnable at 32×32 (blur σ 3–6 px, resampling to 10–19 px, i.e. below LFW's own
    resolution). At the default strengths, made for 32×32, no detector here left chance level."""
    return ForgeryConfig(families=["blur", "resample"], blur_sigma=[3.0, 6.0], resample_factor=[0.15, 0.3])


@dataclass
class AttackData:
    """Faces, split by identity: ``test_faces`` of them (chosen by the seed) make the ``test_images`` attack images
    (``test_labels``: real and fake alike, or only one class), the rest train the victims — so no victim trained in
    the run has seen a test identity. Fakes are self-blended with ``forgery.families`` (uniformly per fake) at the
    ``forgery`` strengths, which are in pixels and so depend on ``image_size``; the federated split keys of
    ``forgery`` are not used."""

    image_size: int = 64
    forgery: ForgeryConfig = field(default_factory=_forgery_64)
    test_faces: int = 20
    test_images: int = 500
    test_labels: Literal["both", "fake", "real"] = "both"


@dataclass
class Victims:
    """The two detectors attacked and transferred between; each trained in the run, or loaded from its
    ``checkpoint`` (a detector file or a ``federated`` run directory). A CAM needs a Conv → GAP → FC classifier.
    The CNN trains 80 epochs: on the 500 test images of unseen faces it reached 0.920 after 40 and 0.948 after 80
    (training loss 0.14 → 0.03, so more epochs mostly fit the 80 training faces); the ResNet-8 reaches 0.96 in 40.
    Variants of the CNN recipe scored on a validation split of the training identities (60 faces to train, 500
    images of the other 20): this default 0.908; lr 2e-3 0.892; weight decay 5e-3 0.906; 1,024 draws per class for
    40 epochs 0.904; widths 48/96/192 0.884 — none better, so the default stays. On a second draw of validation
    identities, 160 epochs scored 0.884 against 0.888 for 80 (training loss 0.006 against 0.026)."""

    cnn: DetectorConfig = field(default_factory=lambda: DetectorConfig(architecture="cnn", epochs=80))
    resnet: DetectorConfig = field(
        default_factory=lambda: DetectorConfig(
            architecture="resnet", model=ModelConfig(widths=[16, 32, 64], res_blocks=1)
        )
    )


def _boxes() -> dict[str, list[float]]:
    # [y0, x0, y1, x1] as fractions of the image side, read off the mean of LFW's 100 aligned faces (the overlay is
    # plots/regions.png): the eye band is darkest at y ≈ 0.33, the face's vertical axis at x ≈ 0.44.
    return {
        "l_eye": [0.28, 0.16, 0.41, 0.36],
        "r_eye": [0.28, 0.52, 0.41, 0.72],
        "l_brow": [0.19, 0.14, 0.28, 0.38],
        "r_brow": [0.19, 0.50, 0.28, 0.74],
        "nose": [0.38, 0.37, 0.63, 0.52],
        "mouth": [0.66, 0.28, 0.80, 0.61],
        "l_cheek": [0.44, 0.12, 0.66, 0.33],
        "r_cheek": [0.44, 0.56, 0.66, 0.77],
    }


@dataclass
class Regions:
    """Semantic face regions. No face parser ships offline, so each region is a fixed box (``[y0, x0, y1, x1]`` in
    fractions of the side) for the roughly aligned LFW crops. ``fixed`` is the released attack's mask M (nose, eyes,
    brows); ``candidates`` are the groups the adaptive selection ranks. ``mask_file`` replaces M by your masks: a
    ``.npy`` of ``[H, W]`` (one for all images) or ``[N, H, W]`` (one per test image), or a folder of one or N
    grey images, at the data's image size; values above 0.5 are inside."""

    boxes: dict[str, list[float]] = field(default_factory=_boxes)
    fixed: list[str] = field(default_factory=lambda: ["nose", "l_eye", "r_eye", "l_brow", "r_brow"])
    candidates: dict[str, list[str]] = field(
        default_factory=lambda: {
            "eyes": ["l_eye", "r_eye"],
            "brows": ["l_brow", "r_brow"],
            "nose": ["nose"],
            "mouth": ["mouth"],
            "cheeks": ["l_cheek", "r_cheek"],
        }
    )
    mask_file: str | None = None


@dataclass
class ASMA:
    """The released attack: L∞ PGD maximising MSE(CAM(x+δ), CAM(x)) from a random start, ``eps`` / ``steps`` /
    ``step_size``, CAMs resized to ``cam_size``. The CAM's min–max normalisation spans a batch of ``batch_size``
    images, so the batch is part of the attack. ``pgd_masked_ce`` uses the same budget on cross-entropy."""

    eps: float = 0.20
    steps: int = 20
    step_size: float = 0.015
    cam_size: int = 32
    batch_size: int = 50


@dataclass
class Adaptive:
    """ASMA-adaptive: per image, the candidate groups ranked by the mean channel-summed CAM inside them; ``topk``
    keeps the ``k`` best, ``above_mean`` every group whose mean exceeds the image's mean CAM. ``masked``: δ projected
    into the chosen regions at every step (else, as the release, the mask is applied after the attack)."""

    rule: Literal["topk", "above_mean"] = "topk"
    k: int = 3
    masked: bool = True


@dataclass
class Baselines:
    """Full-image attacks on cross-entropy (torchattacks' defaults): FGSM (one step of ``eps``), BIM and PGD (``steps``
    of ``alpha``, no random start — so the two coincide, as in the release's settings)."""

    eps: float = 8 / 255
    alpha: float = 2 / 255
    steps: int = 10


@dataclass
class AttackConfig(WorkloadConfig):
    """ASMA on two forgery detectors: each of ``attacks`` is crafted on every victim with that victim's own CAM and
    gradients (``shards`` tasks per attack and victim) and evaluated on every victim (the transfer matrix). Victim
    training and crafting run as runtime tasks with ``num_cpus``/``num_gpus`` and ``threads`` torch threads."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "threads",
        "shards",
        "grid_images",
    )

    data: AttackData = field(default_factory=AttackData)
    victims: Victims = field(default_factory=Victims)
    regions: Regions = field(default_factory=Regions)
    attacks: list[str] = field(default_factory=lambda: list(ATTACKS))
    asma: ASMA = field(default_factory=ASMA)
    adaptive: Adaptive = field(default_factory=Adaptive)
    baselines: Baselines = field(default_factory=Baselines)
    shards: int = 2  # crafting tasks per (attack, victim)
    grid_images: int = 6  # images per row of the example grids
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0
    threads: int = 1  # torch threads inside each task

    def input_paths(self) -> dict[str, str | None]:
        victims = {f"victims.{name}.checkpoint": getattr(self.victims, name).checkpoint for name in ("cnn", "resnet")}
        return {**victims, "regions.mask_file": self.regions.mask_file}

    def validate(self) -> None:
        self._validate_data()
        self._validate_regions()
        self._validate_attacks()
        self._validate_victims()

    def _validate_data(self) -> None:
        d = self.data
        d.forgery.check("data.forgery")
        if d.image_size < 16:
            raise ConfigError(f"data.image_size must be at least 16, got {d.image_size}")
        if d.test_faces < 1 or d.test_images < 2:
            raise ConfigError(
                f"data.test_faces and data.test_images must be at least 1 and 2, got {d.test_faces}, {d.test_images}"
            )

    def _validate_regions(self) -> None:
        r = self.regions
        for name, box in r.boxes.items():
            if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
                raise ConfigError(
                    f"regions.boxes.{name} must be [y0, x0, y1, x1] with 0 ≤ y0 < y1 ≤ 1 and 0 ≤ x0 < x1 ≤ 1, got {box}"
                )
        named = set(r.fixed) | {n for members in r.candidates.values() for n in members}
        missing = sorted(named - set(r.boxes))
        if missing:
            raise ConfigError(f"regions name boxes that regions.boxes lacks: {missing}; boxes: {', '.join(r.boxes)}")
        if not r.fixed:
            raise ConfigError("regions.fixed must name at least one region (the mask M)")
        if any(not members for members in r.candidates.values()) or len(r.candidates) < 2:
            raise ConfigError("regions.candidates needs at least two groups, each naming at least one box")
        if self.adaptive.rule == "topk" and not 1 <= self.adaptive.k < len(r.candidates):
            raise ConfigError(
                f"adaptive.k={self.adaptive.k} must lie in [1, {len(r.candidates) - 1}] (fewer than the "
                f"{len(r.candidates)} candidate groups)"
            )

    def _validate_attacks(self) -> None:
        unknown = [a for a in self.attacks if a not in ATTACKS]
        if unknown or not self.attacks:
            raise ConfigError(f"attacks: unknown {unknown or 'none given'}; choose from {', '.join(ATTACKS)}")
        if len(set(self.attacks)) != len(self.attacks):
            raise ConfigError(f"attacks lists an attack twice: {self.attacks}")
        a, b = self.asma, self.baselines
        for key, value in {"asma.eps": a.eps, "asma.step_size": a.step_size, "baselines.eps": b.eps,
                           "baselines.alpha": b.alpha}.items():  # fmt: skip
            if not 0 < value <= 1:
                raise ConfigError(f"{key} must lie in (0, 1] (images are in [0, 1]), got {value}")
        positive = {"asma.steps": a.steps, "asma.cam_size": a.cam_size, "asma.batch_size": a.batch_size,
                    "baselines.steps": b.steps, "shards": self.shards, "threads": self.threads,
                    "grid_images": self.grid_images}  # fmt: skip
        require("positive", positive)

    def _validate_victims(self) -> None:
        for name in ("cnn", "resnet"):
            v: DetectorConfig = getattr(self.victims, name)
            v.model.check(f"victims.{name}.model")
            if v.checkpoint is None and (v.epochs < 1 or v.batch_size < 1 or v.lr <= 0):
                raise ConfigError(f"victims.{name}: epochs, batch_size and lr must be positive")
            if v.checkpoint is None and self.data.image_size < 2 ** len(v.model.widths):
                raise ConfigError(
                    f"data.image_size={self.data.image_size} is too small for victims.{name}'s "
                    f"{len(v.model.widths)} stages"
                )
