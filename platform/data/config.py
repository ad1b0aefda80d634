"""Dataset and partition configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fedray.platform.errors import ConfigError, check_range, require

OWN_DATA = ("folder", "fashion_mnist")  # datasets read from data.path: what a silo can hold of its own
FAMILIES = ("colour", "blur", "resample", "sharpen", "jpeg")  # artifact families of the self-blended forgeries


@dataclass
class ForgeryConfig:
    """Self-blended forgeries from real faces: artifact strengths, blend, and per-client sample counts.

    Every client owns ``faces_per_client`` faces that no other client sees, ``test_faces`` of them held out for its
    test set. The faces are the 100 LFW faces bundled with scikit-image, or every readable image under ``faces_dir``
    (grayscale). Images are ``data.image_size`` pixels square.

    ``split`` sets how clients differ: ``family`` (client ``k`` forges with ``families[k % len(families)]``, half
    real and half fake: one forgery source per client), ``dirichlet`` (every fake's family drawn uniformly from
    ``families``, while each client's real/fake proportion follows a Dirichlet(``label_alpha``) draw over the two
    classes, each class kept to at least 10% so AUC stays defined), or ``mixed`` (one family per client and the
    Dirichlet label skew). Smaller ``label_alpha`` means more label skew.
    """

    families: list[str] = field(default_factory=lambda: list(FAMILIES))
    split: Literal["family", "dirichlet", "mixed"] = "family"
    label_alpha: float = 0.5  # dirichlet/mixed: concentration of each client's real/fake proportion
    faces_dir: str | None = None  # real faces from this folder (any depth) instead of LFW
    faces_per_client: int = 20
    test_faces: int = 4
    gamma_log: float = 0.5  # colour: gamma = exp(U(±gamma_log))
    contrast: float = 0.4  # colour: contrast factor 1 + U(±contrast)
    brightness: float = 0.15  # colour: offset U(±brightness)
    blur_sigma: list[float] = field(default_factory=lambda: [0.5, 1.5])
    resample_factor: list[float] = field(default_factory=lambda: [0.4, 0.7])
    sharpen_amount: list[float] = field(default_factory=lambda: [1.5, 3.0])
    jpeg_quality: list[float] = field(default_factory=lambda: [5.0, 15.0])
    blend: list[float] = field(
        default_factory=lambda: [0.7, 1.0]
    )  # mask scale U(blend); the recipe's discrete choice is weaker
    max_shift_px: float = 2.0
    scale: list[float] = field(default_factory=lambda: [0.95, 1.05])
    noise_sigma: float = 0.01  # mild sensor noise on every image, real and fake
    train_per_class: int = 512  # per epoch, drawn afresh
    test_per_class: int = 200  # fixed by seed

    def check(self, prefix: str) -> None:
        """One-line errors for families and artifact strengths no forgery can be drawn with (``prefix`` is where
        the section sits: ``data.forgery``, ``faces.forgery``), before any face is read."""
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown or not self.families:
            raise ConfigError(
                f"{prefix}.families: unknown {unknown or 'none given'}; choose from {', '.join(FAMILIES)}"
            )
        check_range(f"{prefix}.blur_sigma", self.blur_sigma, 0)
        check_range(f"{prefix}.resample_factor", self.resample_factor, 0, 1, floor_open=True)
        check_range(f"{prefix}.sharpen_amount", self.sharpen_amount, 0)
        check_range(f"{prefix}.jpeg_quality", self.jpeg_quality, 1, 100)
        check_range(f"{prefix}.blend", self.blend, 0, 1)
        check_range(f"{prefix}.scale", self.scale, 0, floor_open=True)
        require("positive", {f"{prefix}.label_alpha": self.label_alpha})
        strengths = ("gamma_log", "contrast", "brightness", "max_shift_px", "noise_sigma")
        require("0 or more", {f"{prefix}.{key}": getattr(self, key) for key in strengths})


@dataclass
class FolderConfig:
    """How ``data.name=folder`` reads its images: colour mode, and the file that lists samples, clients and groups."""

    channels: int = 3  # 1: grayscale, 3: RGB (alpha dropped)
    metadata: str = "metadata.csv"  # inside data.path; optional


@dataclass
class DataConfig:
    """Which images, at what size, split how across clients.

    ``digits`` is scikit-learn's bundled 8×8 handwritten digits (1,797 real images, always available);
    ``fashion_mnist`` reads IDX files from ``path`` (default: where Debian's ``dataset-fashion-mnist`` puts them);
    ``synthetic`` makes class-dependent random images of ``channels × image_size²`` (for timing runs);
    ``forgery`` gives each client self-blended real/fake faces (see ``forgery.*``);
    ``folder`` reads real (label 0) and fake (label 1) images from ``path/real/**`` and ``path/fake/**``, or the
    samples, clients and groups an optional ``path/metadata.csv`` lists (see ``folder.*``), so a detector can be
    trained on any image collection without code.

    ``scope`` says whose data that is. ``shard`` (default): one dataset for the whole federation, which
    ``partition`` splits across the clients (a Ray cluster, or silos that each read the same files and keep their
    own part). ``all``: a silo's own data — everything at ``path`` is this client's, split only into its train and
    test sets (``fedray join ... data.scope=all data.path=/srv/frames``); a metadata client column is then ignored.
    """

    name: Literal["digits", "fashion_mnist", "synthetic", "forgery", "folder"] = "digits"
    path: str | None = None
    image_size: int = 16
    max_samples: int | None = None  # keep a class-stratified random subset of this size
    synthetic_samples: int = 2560
    synthetic_channels: int = 3
    synthetic_classes: int = 10
    partition: Literal["dirichlet", "iid"] = "dirichlet"
    alpha: float = 0.5  # Dirichlet concentration: smaller means more label skew across clients
    min_client_samples: int = 10
    test_fraction: float = 0.2  # of each client's shard, held out for that client's evaluation
    scope: Literal["shard", "all"] = "shard"
    forgery: ForgeryConfig = field(default_factory=ForgeryConfig)
    folder: FolderConfig = field(default_factory=FolderConfig)

    def check(self) -> None:
        """One-line errors for sizes and fractions no split can have, before anything is loaded or written."""
        require("positive", {"data.image_size": self.image_size, "data.min_client_samples": self.min_client_samples,
                             "data.synthetic_samples": self.synthetic_samples, "data.max_samples": self.max_samples,
                             "data.synthetic_channels": self.synthetic_channels,
                             "data.synthetic_classes": self.synthetic_classes})  # fmt: skip
        if not 0 < self.test_fraction < 1:
            raise ConfigError(f"data.test_fraction must lie in (0, 1), got {self.test_fraction}")
        if self.alpha <= 0:
            raise ConfigError(f"data.alpha (the Dirichlet concentration) must be positive, got {self.alpha}")
        if self.scope == "all" and self.name not in OWN_DATA:
            raise ConfigError(
                f"data.scope=all reads a silo's own images at data.path; data.name={self.name} is the same data on "
                f"every silo (use data.name={' or '.join(OWN_DATA)}, or data.scope=shard)"
            )
        self.forgery.check("data.forgery")
