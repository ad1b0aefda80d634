"""Natural photographs that ship offline, for restoration and composition workloads.

Built in: scikit-image's sample photographs and scikit-learn's two sample images; OpenCV's sample photographs too
when Debian's ``opencv-doc`` is installed. Training and test sets are disjoint by image (``flower`` — scikit-learn's
``flower.jpg`` — and OpenCV's ``butterfly.jpg`` are held out for testing). A folder of images replaces them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from skimage import io as skio
from skimage.util import img_as_float32

from fedray.platform.data.folder import SkippedImages, as_channels, find_images
from fedray.platform.errors import DataError

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKIMAGE_TRAIN = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "brick",
    "grass",
    "gravel",
    "immunohistochemistry",
)
OPENCV_TRAIN = ("baboon.jpg", "fruits.jpg", "home.jpg", "building.jpg", "apple.jpg", "aero3.jpg", "board.jpg")
OPENCV_TEST = ("butterfly.jpg",)

Image = tuple[str, np.ndarray]  # (name, H×W×3 float32 in [0, 1])


def _rgb(pixels: np.ndarray) -> np.ndarray:
    return as_channels(pixels, 3).astype(np.float32)


def _sklearn(name: str) -> np.ndarray:
    from sklearn.datasets import load_sample_image

    return _rgb(load_sample_image(name))


def _opencv(names: tuple[str, ...], directory: Path) -> list[Image]:
    return [(f"opencv:{n}", _rgb(skio.imread(directory / n))) for n in names if (directory / n).is_file()]


def builtin_images(split: str, opencv_dir: Path = OPENCV_DATA) -> list[Image]:
    """The built-in ``train`` or ``test`` photographs (RGB; grey ones repeated over channels)."""
    import skimage.data

    if split == "train":
        images = [(f"skimage:{n}", _rgb(getattr(skimage.data, n)())) for n in SKIMAGE_TRAIN]
        return [*images, ("sklearn:china.jpg", _sklearn("china.jpg")), *_opencv(OPENCV_TRAIN, opencv_dir)]
    if split == "test":
        return [("sklearn:flower.jpg", _sklearn("flower.jpg")), *_opencv(OPENCV_TEST, opencv_dir)]
    raise ValueError(f"split must be train or test, got {split!r}")


def folder_images(directory: Path, min_size: int) -> tuple[list[Image], SkippedImages]:
    """Every readable image under ``directory`` at least ``min_size`` on each side; the rest skipped and counted."""
    if not directory.is_dir():
        raise DataError(f"image folder {directory} does not exist")
    images, skipped = [], SkippedImages()
    for path in find_images(directory):
        name = str(path.relative_to(directory))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                pixels = img_as_float32(_rgb(skio.imread(path)))
        except Exception as exc:  # noqa: BLE001 - decoders raise many types for bad bytes; a per-file skip
            skipped.add(name, f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:160])
            continue
        if min(pixels.shape[:2]) < min_size:
            skipped.add(name, f"smaller than {min_size}×{min_size}")
            continue
        images.append((name, pixels))
    if not images:
        raise DataError(f"no usable images under {directory} ({skipped.count} skipped: {skipped.examples[:2]})")
    return images, skipped
