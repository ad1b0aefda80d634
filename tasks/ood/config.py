"""Configuration of the ``ood`` workload (torch-free, so ``fedray config ood`` stays fast).

The defaults are DLSR's small-scale recipe: Fashion-MNIST in distribution, six offline OOD sets, a 4-stage CNN encoder
trained on the ID train split (the stand-in for the paper's frozen ImageNet encoder), an 8-block LFDN of width 2·dim
trained for 50 epochs with x₀-prediction over T = 100 steps, and scores at t ∈ {3, 5, 10} with DDIM η = 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_training
from fedray.platform.errors import ConfigError, require

BUILTIN_SETS = ("digits_sheet", "sklearn_digits", "lfw", "textures", "uniform_noise", "gaussian_noise")
DIGIT_SETS = ("digits_sheet", "sklearn_digits")  # not OOD when the ID data are digits themselves


@dataclass
class IDData:
    """The in-distribution data. ``fashion_mnist`` reads IDX files from ``path`` (default: where Debian's
    ``dataset-fashion-mnist`` installs them) and keeps the official 60,000/10,000 split; ``digits`` is scikit-learn's
    1,797 8×8 digits, upsampled, split by the seed with ``test_fraction`` held out. ``train_samples`` /
    ``test_samples`` keep a seeded, class-stratified subset (null: all)."""

    id: Literal["fashion_mnist", "digits"] = "fashion_mnist"
    path: str | None = None
    image_size: int = 28
    train_samples: int | None = None
    test_samples: int | None = None
    test_fraction: float = 0.2


@dataclass
class OODSets:
    """The OOD test sets, scored against the ID test split.

    ``digits_sheet``: OpenCV's ``digits.png`` (5,000 digits, 20×20 padded to 28×28); ``sklearn_digits`` (1,797, 8×8
    upsampled); ``lfw``: scikit-image's LFW subset (100 faces + 100 non-faces, 25×25); ``textures``:
    ``texture_crops`` random crops from scikit-image's brick, grass, gravel and camera images; ``uniform_noise`` and
    ``gaussian_noise`` (N(0.5, 0.5²) clipped to [0, 1]): ``noise_samples`` each. ``folders`` adds one set per folder
    of your images (any depth; unreadable files are skipped and counted). A source that is missing or unreadable is
    skipped and reported in metrics.json, not fatal. Digit sets are left out when the ID data are digits.
    ``max_per_set`` caps every set (a seeded subset)."""

    sets: list[str] = field(default_factory=lambda: list(BUILTIN_SETS))
    digit_sheet: str = "/usr/share/doc/opencv-doc/examples/data/digits.png"
    folders: list[str] = field(default_factory=list)
    texture_crops: int = 2000
    noise_samples: int = 1000
    max_per_set: int | None = None


@dataclass
class Encoder:
    """The frozen feature encoder: a GroupNorm CNN classifier (conv→GN→ReLU→max-pool per stage) trained on the ID
    train split with Adam for ``epochs`` — a stand-in for the paper's ImageNet EfficientNet, which is not available
    offline. ``checkpoint`` loads ``checkpoints/encoder.safetensors`` of an earlier run instead of training."""

    checkpoint: str | None = None
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    norm_groups: int = 8
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 128


@dataclass
class Features:
    """``all``: every stage's output, global-average-pooled and z-scored over its own channels, concatenated into
    z₀ (one block per stage); ``last``: the last stage only (the single-layer ablation)."""

    layers: Literal["all", "last"] = "all"


@dataclass
class LFDN:
    """The latent feature diffusion network and its training: an MLP denoiser of ``width`` (null: 2 × feature dim)
    and ``depth`` residual blocks, x₀-prediction over ``timesteps`` steps with β = linspace(√0.0015, √0.0195)²,
    AdamW at a constant ``lr`` with ``weight_decay``; the loss is the per-sample sum of squares ‖z₀ − LFDN(z_t, t)‖².
    The epoch-1 checkpoint is kept for the LR score. ``train_samples`` trains on a seeded subset of the ID train
    features (null: all of them)."""

    width: int | None = None
    depth: int = 8
    dropout: float = 0.0
    timesteps: int = 100
    epochs: int = 50
    lr: float = 1e-4
    weight_decay: float = 1e-4
    batch_size: int = 128
    train_samples: int | None = None


@dataclass
class Inference:
    """Scoring: z_t = √ᾱ_t z₀ + √(1 − ᾱ_t) ε, then t DDIM steps (η = ``eta``) back to z̃₀, for every t in ``t``
    (1-based, at most ``lfdn.timesteps``). Noise comes from a generator seeded per set and t, so scores repeat
    exactly; the epoch-1 pass of the LR score reuses the final pass's noise. ``throughput_samples`` ID test images
    time DLSR scoring against the encoder's plain forward."""

    t: list[int] = field(default_factory=lambda: [3, 5, 10])
    eta: float = 1.0
    batch_size: int = 1000
    throughput_samples: int = 2000


@dataclass
class Baselines:
    """Detectors on the same encoder: MSP (−max softmax), Energy (−logsumexp of the logits), Mahalanobis (class means
    and a tied covariance on z₀), KNN (distance to the ``knn_k``-th nearest ID train sample, cosine on normalised
    penultimate features) and a feature autoencoder (the LFDN's MLP trained without noise, t = 0) scored with
    MFsim. ``ae_epochs`` null: as many as the LFDN."""

    msp: bool = True
    energy: bool = True
    mahalanobis: bool = True
    knn: bool = True
    autoencoder: bool = True
    knn_k: int = 50
    ae_epochs: int | None = None


@dataclass
class OODConfig(WorkloadConfig):
    """DLSR: diffusion-based layer-wise semantic reconstruction of multi-layer encoder features for unsupervised OOD
    detection, with classifier/distance baselines. The heavy steps (encoder training, feature extraction, LFDN and
    autoencoder training, scoring) run as runtime tasks with ``num_cpus``/``num_gpus`` each and ``threads`` torch
    threads. ``resume=true`` reuses this run's saved encoder, LFDN and autoencoder checkpoints and scores again."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "threads",
        "ood.",
        "inference.",
        "baselines.msp",
        "baselines.energy",
        "baselines.mahalanobis",
        "baselines.knn",
    )

    data: IDData = field(default_factory=IDData)
    ood: OODSets = field(default_factory=OODSets)
    encoder: Encoder = field(default_factory=Encoder)
    features: Features = field(default_factory=Features)
    lfdn: LFDN = field(default_factory=LFDN)
    inference: Inference = field(default_factory=Inference)
    baselines: Baselines = field(default_factory=Baselines)
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0
    threads: int = 1  # torch threads inside each task

    def input_paths(self) -> dict[str, str | None]:
        return {"encoder.checkpoint": self.encoder.checkpoint}

    def validate(self) -> None:
        self._validate_sets()
        self._validate_sizes()
        self._validate_diffusion()

    def _validate_sets(self) -> None:
        unknown = [s for s in self.ood.sets if s not in BUILTIN_SETS]
        if unknown:
            raise ConfigError(f"ood.sets has unknown sets {unknown}; choose from {', '.join(BUILTIN_SETS)}")
        if len(set(self.ood.sets)) != len(self.ood.sets):
            raise ConfigError(f"ood.sets lists a set twice: {self.ood.sets}")
        usable = [s for s in self.ood.sets if not (self.data.id == "digits" and s in DIGIT_SETS)]
        if not usable and not self.ood.folders:
            raise ConfigError(
                "no OOD sets to score: set ood.sets (digit sets are not OOD for data.id=digits) or ood.folders"
            )

    def _validate_sizes(self) -> None:
        if not self.encoder.widths or any(w < 1 for w in self.encoder.widths):
            raise ConfigError(f"encoder.widths must be positive channel counts, got {self.encoder.widths}")
        if self.data.image_size < 2 ** len(self.encoder.widths):
            raise ConfigError(
                f"data.image_size={self.data.image_size} is too small for {len(self.encoder.widths)} encoder stages "
                f"(each halves it; at least {2 ** len(self.encoder.widths)})"
            )
        if not 0 < self.data.test_fraction < 1:
            raise ConfigError(f"data.test_fraction must lie in (0, 1), got {self.data.test_fraction}")
        subsets = {
            "data.train_samples": self.data.train_samples,
            "data.test_samples": self.data.test_samples,
            "lfdn.train_samples": self.lfdn.train_samples,
            "ood.max_per_set": self.ood.max_per_set,
        }
        for key, value in subsets.items():
            if value is not None and value < 20:
                raise ConfigError(f"{key} must be at least 20 (or null for all), got {value}")
        positive = {
            "lfdn.depth": self.lfdn.depth,
            "lfdn.timesteps": self.lfdn.timesteps,
            "lfdn.width": 1 if self.lfdn.width is None else self.lfdn.width,
            "baselines.ae_epochs": 1 if self.baselines.ae_epochs is None else self.baselines.ae_epochs,
            "baselines.knn_k": self.baselines.knn_k,
            "inference.batch_size": self.inference.batch_size,
            "inference.throughput_samples": self.inference.throughput_samples,
            "ood.texture_crops": self.ood.texture_crops,
            "ood.noise_samples": self.ood.noise_samples,
            "threads": self.threads,
        }
        require("positive", positive)

    def _validate_diffusion(self) -> None:
        if not self.inference.t or any(not 1 <= t <= self.lfdn.timesteps for t in self.inference.t):
            raise ConfigError(
                f"inference.t must list steps in [1, lfdn.timesteps={self.lfdn.timesteps}], got {self.inference.t}"
            )
        if len(set(self.inference.t)) != len(self.inference.t):
            raise ConfigError(f"inference.t lists a step twice: {self.inference.t}")
        if not 0 <= self.inference.eta <= 1:
            raise ConfigError(f"inference.eta (DDIM's noise) must lie in [0, 1], got {self.inference.eta}")
        check_training("encoder", self.encoder)
        check_training("lfdn", self.lfdn)
        if self.lfdn.epochs < 2:
            raise ConfigError(
                f"lfdn.epochs must be at least 2 (the LR score compares epoch 1 with the last), got {self.lfdn.epochs}"
            )
        if not 0 <= self.lfdn.dropout < 1:
            raise ConfigError(f"lfdn.dropout must lie in [0, 1), got {self.lfdn.dropout}")
