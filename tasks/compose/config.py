"""Configuration of the ``compose`` workload (torch-free, so ``fedray config compose`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_known, check_training
from fedray.platform.errors import ConfigError, check_range, require
from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.schedules import check_schedule

# Trained variants: the method, the single-K/V baseline over concatenated tokens (no fusion block, no control
# branch), and the ablation without the control branch. ``paste`` is naive cut-and-paste (nothing trained).
TRAINED_METHODS = ("fusion", "concat", "fusion_nocontrol")
METHODS = (*TRAINED_METHODS, "paste")


@dataclass
class ComposeData:
    """Composition triplets (foreground view with its mask, background with a plate region, ground-truth composite),
    images in [−1, 1] at ``image_size``².

    ``source=builtin`` [fedray]: synthesised from photographs that ship offline. A background is a random crop of a
    scene photograph with a light, blurred ellipse ("plate", axes a fraction ``region_scale`` of the side) where the
    dish goes; the object is a crop of an object photograph cut out with a soft ellipse. The ground truth puts the
    un-augmented object into the ellipse, harmonised (per-channel mean/std moved ``harmonise`` of the way to the
    surrounding background's) with a feathered edge (Gaussian σ ``feather`` px); the conditioning view is the object
    augmented independently (scale ``fg_scale``, rotation ±``fg_rotation``°, colour jitter ±``colour_jitter``).
    Training and test triplets come from disjoint scene photographs and disjoint parts of the object photographs.
    ``train_triplets`` are generated once per run from the seed, the ``test_triplets`` from their own seed.

    ``source=folder``: ``path/train`` and ``path/test`` each hold ``background/``, ``foreground/`` and ``gt/`` with
    identical file names (FC22k's layout) and optionally ``mask/`` (the foreground's region in the composite; without
    it the region is where gt and background differ by more than ``region_threshold``). Unreadable or unmatched files
    are skipped and counted.
    """

    source: Literal["builtin", "folder"] = "builtin"
    path: str | None = None
    image_size: int = 32
    train_triplets: int = 4000
    test_triplets: int = 64
    region_scale: list[float] = field(default_factory=lambda: [0.22, 0.35])
    fg_scale: list[float] = field(default_factory=lambda: [0.7, 1.3])
    fg_rotation: float = 25.0
    colour_jitter: float = 0.2
    harmonise: float = 0.5
    feather: float = 1.0
    region_threshold: float = 0.1


@dataclass
class Tokens:
    """The image tokens every cross-attention layer reads [fedray stand-in for CLIP ViT-L/14 + the resampler].

    A frozen convolutional encoder (``widths``; trained in-house as an autoencoder for ``encoder_steps`` steps on crops
    of the training photographs, or loaded from ``encoder_checkpoint``) gives feature maps at the stages ``stages``;
    each map is projected to ``dim`` and given a learned position embedding, and the concatenated tokens pass one
    pre-LN resampler block (``heads`` heads; self-attention then GEGLU feed-forward). The projection and resampler
    train with the composition model, shared by foreground and background, as in the official model."""

    widths: list[int] = field(default_factory=lambda: [32, 64, 128])
    stages: list[str] = field(default_factory=lambda: ["stage2", "stage3"])
    dim: int = 128
    heads: int = 4
    encoder_steps: int = 600
    encoder_lr: float = 1e-3
    encoder_checkpoint: str | None = None


@dataclass
class ComposeDiffusion:
    """Pixel-space ε-prediction DDPM, ``steps`` steps of the ``schedule``; DDIM with ``sample_steps`` steps (η =
    ``eta``) and classifier-free guidance ``guidance`` whose unconditional branch reads the tokens of all-zero images
    (the control branch sees the background in both)."""

    steps: int = 1000
    schedule: Literal["linear", "cosine"] = "linear"
    sample_steps: int = 30
    eta: float = 0.0
    guidance: float = 2.0


@dataclass
class ComposeTrain:
    """Two stages [fedray, mirroring the frozen-base recipe]: ``base_steps`` steps of the UNet alone on ground-truth
    composites (no context: cross-attention adds nothing), then, with the base frozen, ``steps`` steps of the
    conditioning (K/V pairs, fusion blocks, token projection and resampler, control branch) per method. In stage 2
    the token images are replaced by zero images with probability ``token_dropout`` [fedray: makes guidance well
    defined]. AdamW at ``lr`` (``base_lr`` for stage 1), batch ``batch_size``, EMA ``ema`` of the weights. The official
    lr is 5e-5 over 50k steps; in an 800-step CPU run the zero-initialised value projections barely move at 1e-4 (the
    samples of ``concat`` and ``fusion_nocontrol`` stayed those of the base model), hence 5e-4 [fedray].
    ``base_checkpoint``/``checkpoints`` load saved weights instead of training."""

    base_steps: int = 2500
    base_lr: float = 2e-4
    steps: int = 800
    lr: float = 5e-4
    batch_size: int = 16
    weight_decay: float = 0.01
    token_dropout: float = 0.1
    ema: float = 0.995
    threads: int = 1
    log_every: int = 100
    base_checkpoint: str | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)


def _default_unet() -> UNetConfig:
    return UNetConfig(
        model_channels=32, channel_mult=[1, 2, 2], num_res_blocks=1, attention_resolutions=[16], num_heads=4
    )


@dataclass
class ComposeConfig(WorkloadConfig):
    """Train the token encoder and the base UNet (in parallel), then every trained method of ``methods`` on the same
    triplets for the same steps (each a Ray task); compose the held-out triplets with each by DDIM (sharded tasks)
    and score them against the ground truth. ``cross_attention_resolutions``: feature-map sides with a
    cross-attention layer (the middle block always has one)."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "train.threads",
        "train.log_every",
        "shards",
    )

    data: ComposeData = field(default_factory=ComposeData)
    tokens: Tokens = field(default_factory=Tokens)
    model: UNetConfig = field(default_factory=_default_unet)
    cross_attention_resolutions: list[int] = field(default_factory=lambda: [16, 8])
    diffusion: ComposeDiffusion = field(default_factory=ComposeDiffusion)
    train: ComposeTrain = field(default_factory=ComposeTrain)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    shards: int = 2  # test triplets are composed in this many tasks per method
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0

    def input_paths(self) -> dict[str, str | None]:
        given = {f"train.checkpoints.{m}": path for m, path in self.train.checkpoints.items()}
        return {"tokens.encoder_checkpoint": self.tokens.encoder_checkpoint,
                "train.base_checkpoint": self.train.base_checkpoint, **given}  # fmt: skip

    def validate(self) -> None:
        check_known("methods", self.methods, METHODS)
        require("positive", {"data.image_size": self.data.image_size})
        if not self.cross_attention_resolutions:
            raise ConfigError("cross_attention_resolutions is empty: the tokens would reach no layer of the UNet")
        stray = sorted(set(self.train.checkpoints) - set(TRAINED_METHODS))
        if stray:
            raise ConfigError(f"train.checkpoints names {stray}; only {', '.join(TRAINED_METHODS)} are trained")
        if self.data.source == "folder" and not self.data.path:
            raise ConfigError("data.source=folder needs data.path (a folder with train/ and test/)")
        size = self.data.image_size
        if size % 2 ** (len(self.model.channel_mult) - 1):
            raise ConfigError(f"data.image_size={size} must be divisible by 2^(len(model.channel_mult) - 1)")
        sides = {size // 2**level for level in range(len(self.model.channel_mult))}
        stray_sides = sorted(set(self.cross_attention_resolutions) - sides)
        if stray_sides:
            raise ConfigError(
                f"cross_attention_resolutions {stray_sides} are not UNet feature-map sides {sorted(sides)}"
            )
        if self.tokens.dim % self.tokens.heads:
            raise ConfigError(f"tokens.dim={self.tokens.dim} must be divisible by tokens.heads={self.tokens.heads}")
        if not self.tokens.stages or not set(self.tokens.stages) <= {
            f"stage{i}" for i in range(1, len(self.tokens.widths) + 1)
        }:
            raise ConfigError(f"tokens.stages must name stages of the encoder (stage1..stage{len(self.tokens.widths)})")
        if not 1 <= self.diffusion.sample_steps <= self.diffusion.steps:
            raise ConfigError("diffusion.sample_steps must lie in [1, diffusion.steps]")
        check_range("data.region_scale", self.data.region_scale, 0, 0.5, floor_open=True)  # semi-axes / side
        check_range("data.fg_scale", self.data.fg_scale, 0, floor_open=True)
        if not 0 <= self.data.harmonise <= 1 or not 0 <= self.train.token_dropout < 1:
            raise ConfigError("data.harmonise must lie in [0, 1] and train.token_dropout in [0, 1)")
        check_training("train", self.train)
        t = self.tokens
        d = self.data
        require("positive", {"data.train_triplets": d.train_triplets, "data.test_triplets": d.test_triplets,
                             "shards": self.shards, "tokens.encoder_steps": t.encoder_steps,
                             "tokens.dim": t.dim, "tokens.heads": t.heads, "tokens.encoder_lr": t.encoder_lr,
                             "diffusion.steps": self.diffusion.steps})  # fmt: skip
        check_schedule("diffusion", self.diffusion.schedule, self.diffusion.steps)
        require("0 or more", {"diffusion.guidance": self.diffusion.guidance})
        if not 0 <= self.diffusion.eta <= 1:
            raise ConfigError(f"diffusion.eta (DDIM's noise: 0 deterministic, 1 DDPM-like) must lie in [0, 1], "
                              f"got {self.diffusion.eta}")  # fmt: skip
