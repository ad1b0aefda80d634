"""Configuration of the ``purify`` workload (torch-free, so ``fedray config purify`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_known, check_training
from fedray.platform.errors import ConfigError, require
from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.schedules import check_schedule

METHODS = ("pfad", "lowband_ddpm", "sdedit", "lowpass", "supervised")


@dataclass
class SliceData:
    """2-D slices of MR volumes, min–max normalised to [−1, 1].

    ``source=templates``: training slices from nilearn's bundled MNI152 T1 template (skull-stripped); test slices
    from ``test_volume``: ``auto`` is Debian ``mricron-data``'s ch2bet (a different head, skull-stripped alike — the
    unstripped ch2 would test on anatomy the model never saw) when installed, else MNI152 slices disjoint from (and
    at least ``gap`` slices away from) the training slices; ``none`` always holds MNI152 slices out; a path names a
    NIfTI volume, which must exist. ``source=folder``: ``path/train``
    and ``path/test`` hold NIfTI volumes (``.nii``/``.nii.gz``, sliced like the templates) and/or 2-D images (PNG,
    JPEG, TIFF, ``.npy``); unreadable files are skipped and counted. Slices with less than ``min_brain_fraction`` of
    non-background pixels are left out; each is padded to a square and resized to ``image_size``.
    """

    source: Literal["templates", "folder"] = "templates"
    path: str | None = None
    test_volume: str = "auto"
    axis: int = 2  # slicing axis of a volume (2: axial for RAS-oriented templates)
    image_size: int = 32
    min_brain_fraction: float = 0.3
    test_slices: int = 24  # evenly spaced over the eligible test slices
    test_every: int = 8  # without a test volume: every n-th eligible slice is a test slice
    gap: int = 2  # ... and training skips its neighbours within this distance
    augment: bool = True  # flips, ±5° rotations, intensity ×[0.9, 1.1]


@dataclass
class MotionSetting:
    """Rigid motion between segments of phase-encoding rows: 1..``max_events`` events, each a new pose with shifts
    U(−``shift``, ``shift``) px and rotation U(−``rotation``, ``rotation``)°; rows with |k_y| < ``clean_band``·N keep
    the reference pose."""

    name: str = "mild"
    shift: float = 1.5
    rotation: float = 1.5
    clean_band: float = 0.1
    max_events: int = 4


def _default_motion() -> list[MotionSetting]:
    return [MotionSetting("mild", 1.5, 1.5, 0.1), MotionSetting("severe", 3.0, 4.0, 0.0)]


@dataclass
class Diffusion:
    """The DDPM: ``steps`` timesteps of the ``schedule`` (linear β 1e-4 → 0.02 at 1000 steps), ε-prediction;
    sampling respaced to ``sample_steps`` (ω_t, k and y_t still use the original timestep and ᾱ)."""

    steps: int = 1000
    schedule: Literal["linear", "cosine"] = "linear"
    sample_steps: int = 250


@dataclass
class Train:
    """Adam at ``lr`` for ``steps`` batches, EMA of the weights with ``ema`` decay (used for sampling); the
    supervised baseline trains the same UNet with L1 on simulated (corrupted, clean) pairs for the same steps.
    ``ddpm_checkpoint``/``supervised_checkpoint`` load the weights an earlier run saved (its
    ``checkpoints/{ddpm,supervised}.safetensors``) instead of training."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-4
    ema: float = 0.999
    threads: int = 1
    log_every: int = 100
    ddpm_checkpoint: str | None = None
    supervised_checkpoint: str | None = None


@dataclass
class PFAD:
    """The purification loop: checkerboard ``patch`` (None: image_size // 16, i.e. 2 at 32², 4 at 64²; the official
    code uses 16 at 256²), time blend ``gamma``, low band |k_y| < N·``low_band``. ``sdedit_start``: the fraction of the
    chain the SDEdit baseline restarts from (its noised corrupted input)."""

    patch: int | None = None
    gamma: float = 0.7
    low_band: float = 0.1
    sdedit_start: float = 0.3
    batch_size: int = 64


@dataclass
class PurifyConfig(WorkloadConfig):
    """Train an unconditional DDPM on clean slices; purify simulated motion-corrupted test slices with PFAD and the
    ``methods`` beside it, ``samples`` times with different sampling seeds."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "train.threads",
        "train.log_every",
        "pfad.batch_size",
        "shards",
    )

    data: SliceData = field(default_factory=SliceData)
    motion: list[MotionSetting] = field(default_factory=_default_motion)
    model: UNetConfig = field(default_factory=UNetConfig)
    diffusion: Diffusion = field(default_factory=Diffusion)
    train: Train = field(default_factory=Train)
    pfad: PFAD = field(default_factory=PFAD)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    samples: int = 1
    shards: int = 2  # test slices are split into this many purification tasks per (setting, method, sample)
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0

    def input_paths(self) -> dict[str, str | None]:
        volume = self.data.test_volume
        named_volume = volume if self.data.source == "templates" and volume not in ("auto", "none") else None
        return {"data.test_volume": named_volume, "train.ddpm_checkpoint": self.train.ddpm_checkpoint,
                "train.supervised_checkpoint": self.train.supervised_checkpoint}  # fmt: skip

    def validate(self) -> None:
        check_known("methods", self.methods, METHODS)
        if self.data.source == "folder" and not self.data.path:
            raise ConfigError("data.source=folder needs data.path (a folder with train/ and test/)")
        size = self.data.image_size
        if size % 2 ** (len(self.model.channel_mult) - 1):
            raise ConfigError(f"data.image_size={size} must be divisible by 2^(len(model.channel_mult) - 1)")
        patch = self.pfad.patch or max(size // 16, 1)
        if size % (2 * patch):
            raise ConfigError(f"pfad.patch={patch} must tile data.image_size={size} with whole checker squares")
        if not 1 <= self.diffusion.sample_steps <= self.diffusion.steps:
            raise ConfigError("diffusion.sample_steps must lie in [1, diffusion.steps]")
        if not 0 < self.pfad.sdedit_start <= 1 or not 0 < self.pfad.low_band < 0.5:
            raise ConfigError("pfad.sdedit_start must lie in (0, 1] and pfad.low_band in (0, 0.5)")
        if not self.motion or len({m.name for m in self.motion}) != len(self.motion):
            raise ConfigError("motion needs at least one setting, with distinct names")
        for m in self.motion:
            if m.max_events < 1 or m.shift < 0 or m.rotation < 0 or not 0 <= m.clean_band < 0.5:
                raise ConfigError(
                    f"motion setting {m.name!r} needs max_events ≥ 1, shift and rotation ≥ 0, clean_band in [0, 0.5)"
                )
        if not 0 < self.data.min_brain_fraction < 1:
            raise ConfigError("data.min_brain_fraction must lie in (0, 1)")
        check_training("train", self.train)
        d = self.data
        require("positive", {"samples": self.samples, "shards": self.shards, "data.test_slices": d.test_slices,
                             "data.image_size": d.image_size, "data.test_every": d.test_every,
                             "diffusion.steps": self.diffusion.steps, "pfad.patch": self.pfad.patch,
                             "pfad.batch_size": self.pfad.batch_size})  # fmt: skip
        check_schedule("diffusion", self.diffusion.schedule, self.diffusion.steps)
        require("0 or more", {"data.gap": d.gap})
        if d.axis not in (0, 1, 2):
            raise ConfigError(f"data.axis must be 0, 1 or 2 (a volume's slicing axis), got {d.axis}")
        if not 0 <= self.pfad.gamma <= 1:
            raise ConfigError(f"pfad.gamma (the time blend) must lie in [0, 1], got {self.pfad.gamma}")
