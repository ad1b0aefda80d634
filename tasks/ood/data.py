"""The ID train/test splits and the OOD test sets, all as float32 ``[N, 1, S, S]`` in [0, 1].

Every OOD source is optional: a file that is missing or cannot be decoded is skipped and reported (``skipped_sets``,
``skipped_images`` in metrics.json) instead of ending the run, because offline machines differ in which packages
bring which sample files. Only the ID data are required: without them there is nothing to detect against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage.transform import resize

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.data.digit_sheet import read_digit_sheet
from fedray.platform.data.folder import find_images, read_images
from fedray.platform.data.load import load_train_test, stratified_subset
from fedray.platform.seeding import numpy_rng
from fedray.tasks.ood.config import DIGIT_SETS, OODConfig

TEXTURE_SOURCES = ("brick", "grass", "gravel", "camera")
NOISE_MEAN, NOISE_STD = 0.5, 0.5


@dataclass
class OODData:
    """The OOD sets that could be built, and why the others could not."""

    sets: dict[str, np.ndarray] = field(default_factory=dict)
    skipped_sets: dict[str, str] = field(default_factory=dict)  # name -> reason
    left_out: dict[str, str] = field(default_factory=dict)  # name -> why it is not OOD here
    skipped_images: dict[str, int] = field(default_factory=dict)  # folder set -> unreadable files
    skipped_examples: list[str] = field(default_factory=list)


def resize_square(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, H, W]`` → float32 ``[N, 1, size, size]`` (bilinear, anti-aliased when shrinking), clipped to [0, 1]."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:] != (size, size):
        images = resize(images, (len(images), size, size), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(images, 0.0, 1.0)[:, None].astype(np.float32)


def load_id(cfg: OODConfig) -> tuple[ImageArrays, ImageArrays]:
    """ID train and test splits (subsets as configured). A missing IDX folder is a one-line DataError naming it."""
    d = cfg.data
    train, test, _ = load_train_test(d.id, d.path, d.image_size, cfg.seed, d.test_fraction)
    parts = []
    for part, split, count in (("train", train, d.train_samples), ("test", test, d.test_samples)):
        keep = stratified_subset(split.labels, count, cfg.seed, f"id-{part}")
        parts.append(ImageArrays(split.images[keep], split.labels[keep], split.num_classes, split.name))
    return parts[0], parts[1]


def _digit_sheet(cfg: OODConfig) -> np.ndarray:
    if not Path(cfg.ood.digit_sheet).is_file():
        raise FileNotFoundError(f"{cfg.ood.digit_sheet} not found (Debian's opencv-doc installs it)")
    digits, _ = read_digit_sheet(cfg.ood.digit_sheet)  # 20×20 padded to 28×28, as MNIST
    return digits


def _sklearn_digits(cfg: OODConfig) -> np.ndarray:
    from sklearn.datasets import load_digits

    return load_digits().images / 16.0


def _lfw(cfg: OODConfig) -> np.ndarray:
    from skimage.data import lfw_subset

    return lfw_subset()  # 100 faces, then 100 non-faces, 25×25 in [0, 1]


def _textures(cfg: OODConfig) -> np.ndarray:
    """Random ``size``×``size`` crops, an equal share from each texture image (seeded)."""
    from skimage import data as skdata

    size, rng = cfg.data.image_size, numpy_rng(cfg.seed, "ood", "textures")
    counts = np.diff(np.linspace(0, cfg.ood.texture_crops, len(TEXTURE_SOURCES) + 1).round().astype(int))
    crops = []
    for name, count in zip(TEXTURE_SOURCES, counts, strict=True):
        image = np.asarray(getattr(skdata, name)(), dtype=np.float32)
        image = image.mean(axis=-1) if image.ndim == 3 else image
        image = image / 255.0 if image.max() > 1 else image
        rows = rng.integers(0, image.shape[0] - size + 1, count)
        cols = rng.integers(0, image.shape[1] - size + 1, count)
        crops.extend(image[r : r + size, c : c + size] for r, c in zip(rows, cols, strict=True))
    return np.stack(crops)


def _uniform_noise(cfg: OODConfig) -> np.ndarray:
    size = cfg.data.image_size
    return numpy_rng(cfg.seed, "ood", "uniform").uniform(0.0, 1.0, (cfg.ood.noise_samples, size, size))


def _gaussian_noise(cfg: OODConfig) -> np.ndarray:
    size = cfg.data.image_size
    noise = numpy_rng(cfg.seed, "ood", "gaussian").normal(NOISE_MEAN, NOISE_STD, (cfg.ood.noise_samples, size, size))
    return np.clip(noise, 0.0, 1.0)


BUILDERS: dict[str, Callable[[OODConfig], np.ndarray]] = {
    "digits_sheet": _digit_sheet,
    "sklearn_digits": _sklearn_digits,
    "lfw": _lfw,
    "textures": _textures,
    "uniform_noise": _uniform_noise,
    "gaussian_noise": _gaussian_noise,
}


def _cap(images: np.ndarray, cap: int | None, seed: int, name: str) -> np.ndarray:
    if cap is None or len(images) <= cap:
        return images
    return images[np.sort(numpy_rng(seed, "ood", "cap", name).permutation(len(images))[:cap])]


def _folder_name(folder: str, taken: dict[str, np.ndarray]) -> str:
    base = f"folder:{Path(folder).name or folder}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}#{k}", k + 1
    return name


def load_ood(cfg: OODConfig) -> OODData:
    """Every configured OOD set that can be built, resized to the ID image size."""
    out = OODData()
    size = cfg.data.image_size
    for name in cfg.ood.sets:
        if cfg.data.id == "digits" and name in DIGIT_SETS:
            out.left_out[name] = "digits are the ID data (data.id=digits), so they are not OOD"
            continue
        try:
            images = resize_square(BUILDERS[name](cfg), size)
        except Exception as exc:  # noqa: BLE001 - any failure to build an optional source is a reported skip
            out.skipped_sets[name] = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:200]
            continue
        out.sets[name] = _cap(images, cfg.ood.max_per_set, cfg.seed, name)
    for folder in cfg.ood.folders:
        name = _folder_name(folder, out.sets)
        root = Path(folder)
        if not root.is_dir():
            out.skipped_sets[name] = f"no such folder: {folder}"
            continue
        images, _, skipped = read_images(find_images(root), 1, size, root)
        out.skipped_images[name] = skipped.count
        out.skipped_examples.extend(f"{name}/{e}" for e in skipped.examples)
        if not len(images):
            out.skipped_sets[name] = f"no readable images in {folder} ({skipped.count} unreadable)"
            continue
        out.sets[name] = _cap(images, cfg.ood.max_per_set, cfg.seed, name)
    return out
