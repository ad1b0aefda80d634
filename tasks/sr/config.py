"""Configuration of the ``sr`` workload (torch-free, so ``fedray config sr`` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_known, check_training
from fedray.platform.errors import ConfigError, check_range, require
from fedray.platform.modules.config import SRNetConfig, UNetConfig

METHODS = ("dit_sr", "dit_sr_adaln", "resshift_unet", "regression", "bicubic")


@dataclass
class SRData:
    """High-resolution crops of natural photographs and their degraded low-resolution versions.

    ``source=builtin``: scikit-image/scikit-learn sample photographs (and OpenCV's when installed) for training,
    scikit-learn's flower.jpg (and OpenCV's butterfly.jpg) for testing; ``source=folder``: ``path/train`` and
    ``path/test`` images (unreadable or too small files are skipped and counted). ``prescale`` shrinks every source
    image first (more content per small crop). Training crops are drawn at random every step; the ``test_crops``
    test crops are fixed by the seed.

    ``degradation=bicubic``: bicubic ↓``scale``. ``realistic`` [fedray, a first-order simplification of Real-ESRGAN]:
    Gaussian blur σ ∈ ``blur_sigma`` → bicubic ↓``scale`` → Gaussian noise σ ∈ ``noise_sigma`` (of 255) → JPEG at a
    quality in ``jpeg_quality`` (when ``jpeg``).
    """

    source: Literal["builtin", "folder"] = "builtin"
    path: str | None = None
    hr_size: int = 32
    scale: int = 4
    prescale: float = 1.0
    test_crops: int = 100
    degradation: Literal["bicubic", "realistic"] = "realistic"
    blur_sigma: list[float] = field(default_factory=lambda: [0.2, 2.0])
    noise_sigma: list[float] = field(default_factory=lambda: [0.0, 10.0])
    jpeg: bool = True
    jpeg_quality: list[int] = field(default_factory=lambda: [50, 95])


@dataclass
class ResShift:
    """Pixel-space ResShift [fedray: no VQ autoencoder offline]: ``steps`` steps, κ = ``kappa``, exponent ``power``,
    √η from min(``min_noise_level``/κ, ``min_noise_level``) to ``etas_end``; the network sees x_t/(3κ√η_t + 1).

    ``residual`` [fedray]: the diffusion networks output x̂₀ − y₀ (x̂₀ = y₀ + f, the loss and sampler unchanged), so
    an untrained network already restores the bicubic image instead of zero; the official networks predict x̂₀
    directly (``residual=false``: after the 500 CPU-tier steps DiT-SR scores 21.6 dB PSNR-Y that way, 25.5 with the
    residual).

    ``xt_skip`` [fedray, needs ``residual``]: x̂₀ = y₀ + w_t·(x̃_t − y₀) + f, the linear-MMSE blend of y₀ and the
    de-shifted x̃_t = (x_t − η_t y₀)/(1 − η_t) (:mod:`fedray.platform.modules.diffusion.resshift`), with
    ``lr_error_variance`` the assumed mean squared error of y₀ in [−1, 1] (bicubic's is about 0.037 at ×4 and 0.023
    at ×2 with the default degradation). It makes the last step nearly the identity it should be, but passes the
    last steps' noise on: after 500 CPU-tier steps DiT-SR scores 24.3 dB PSNR-Y with it, 25.5 without."""

    steps: int = 15
    kappa: float = 2.0
    power: float = 0.3
    min_noise_level: float = 0.04
    etas_end: float = 0.99
    residual: bool = True
    xt_skip: bool = False
    lr_error_variance: float = 0.03


@dataclass
class SRTrain:
    """AdamW at ``lr`` (linear warm-up over ``warmup`` steps, then cosine to ``min_lr``), ``batch_size`` crops per
    step for ``steps`` steps, EMA ``ema`` of the weights (used for evaluation). The official lr is 5e-5 for a far
    longer run; 2e-4 suits the small CPU-tier model [fedray]."""

    steps: int = 500
    batch_size: int = 32
    lr: float = 2e-4
    min_lr: float = 2e-5
    warmup: int = 50
    weight_decay: float = 0.0
    ema: float = 0.999
    threads: int = 1
    log_every: int = 50


@dataclass
class SRConfig(WorkloadConfig):
    """Train every method in ``methods`` on the same crops for the same steps (each a Ray task), then super-resolve
    the fixed test crops with each. ``checkpoints`` maps a method to saved weights to evaluate instead of training."""

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "num_cpus",
        "num_gpus",
        "train.threads",
        "train.log_every",
        "eval_batch_size",
    )

    data: SRData = field(default_factory=SRData)
    model: SRNetConfig = field(default_factory=SRNetConfig)
    unet: UNetConfig = field(
        default_factory=lambda: UNetConfig(
            model_channels=40, channel_mult=[1, 2, 2], num_res_blocks=1, attention_resolutions=[8], num_heads=2
        )
    )
    resshift: ResShift = field(default_factory=ResShift)
    train: SRTrain = field(default_factory=SRTrain)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    checkpoints: dict[str, str] = field(default_factory=dict)
    eval_batch_size: int = 50
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0

    def input_paths(self) -> dict[str, str | None]:
        return {f"checkpoints.{m}": path for m, path in self.checkpoints.items()}

    def validate(self) -> None:
        check_known("methods", self.methods, METHODS)
        stray = sorted(set(self.checkpoints) - set(METHODS))
        if stray:
            raise ConfigError(f"checkpoints names unknown methods {stray}; choose from {', '.join(METHODS)}")
        if self.data.source == "folder" and not self.data.path:
            raise ConfigError("data.source=folder needs data.path (a folder with train/ and test/)")
        if self.data.scale not in (2, 3, 4, 8) or self.data.hr_size % self.data.scale:
            raise ConfigError(f"data.scale must be 2, 3, 4 or 8 and divide data.hr_size={self.data.hr_size}")
        levels = len(self.model.channel_mult)
        if self.data.hr_size % (2 ** (levels - 1)):
            raise ConfigError(
                f"data.hr_size={self.data.hr_size} must be divisible by 2^(levels − 1) = {2 ** (levels - 1)}"
            )
        if self.model.modulation not in ("adafm", "adaln", "none"):
            raise ConfigError(f"model.modulation must be adafm, adaln or none, got {self.model.modulation!r}")
        r = self.resshift
        if r.steps < 2 or r.kappa <= 0 or not 0 < r.etas_end < 1:
            raise ConfigError("resshift.steps ≥ 2, resshift.kappa > 0 and resshift.etas_end in (0, 1) are required")
        require("positive", {"resshift.min_noise_level": r.min_noise_level, "resshift.power": r.power})
        first = min(r.min_noise_level / r.kappa, r.min_noise_level)
        if first >= r.etas_end:
            raise ConfigError(
                f"resshift: the first step's √η = min(min_noise_level/kappa, min_noise_level) = {first:g} must be "
                f"below resshift.etas_end={r.etas_end} (the noise grows from step 1 to step T)"
            )
        if self.resshift.lr_error_variance <= 0:
            raise ConfigError(f"resshift.lr_error_variance must be positive, got {self.resshift.lr_error_variance}")
        if self.resshift.xt_skip and not self.resshift.residual:
            raise ConfigError(
                "resshift.xt_skip adds to a prediction that starts at y₀: it needs resshift.residual=true"
            )
        check_range("data.blur_sigma", self.data.blur_sigma, 0)
        check_range("data.noise_sigma", self.data.noise_sigma, 0)
        check_range("data.jpeg_quality", self.data.jpeg_quality, 1, 100)
        check_training("train", self.train)
        self._validate_network()
        if not 0 < self.data.prescale <= 1:
            raise ConfigError(f"data.prescale must lie in (0, 1], got {self.data.prescale}")

    def _validate_network(self) -> None:
        """Sizes the U-shaped transformer cannot be built with, checked here rather than in the training task."""
        m, size = self.model, self.data.hr_size
        require("positive", {"data.hr_size": size, "data.test_crops": self.data.test_crops,
                             "eval_batch_size": self.eval_batch_size, "model.window": m.window,
                             "model.num_heads": m.num_heads, "model.embed_dim": m.embed_dim, "model.depth": m.depth,
                             "model.model_channels": m.model_channels})  # fmt: skip
        if m.embed_dim % m.num_heads:
            raise ConfigError(f"model.embed_dim={m.embed_dim} must be divisible by model.num_heads={m.num_heads}")
        smallest = size // 2 ** (len(m.channel_mult) - 1)
        if size % (2 ** (len(m.channel_mult) - 1) * min(m.window, smallest)):
            raise ConfigError(
                f"model.window={m.window} must tile every level's map: data.hr_size={size} is not a multiple of "
                f"window × 2^(levels − 1) (the smallest map is {smallest}×{smallest})"
            )
