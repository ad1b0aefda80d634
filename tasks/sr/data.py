"""Crops and degradations for super-resolution, images in [−1, 1] as ``[N, 3, S, S]`` float32.

The low-resolution input is degraded from the high-resolution crop; the network's conditioning (and ResShift's y₀)
is its bicubic upsampling back to the high resolution.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter
from skimage.transform import rescale

from fedray.platform.data.folder import SkippedImages
from fedray.platform.data.natural import Image, builtin_images, folder_images
from fedray.tasks.sr.config import SRData


@dataclass
class ImageSets:
    train: list[Image]
    test: list[Image]
    skipped: SkippedImages

    def describe(self) -> dict[str, list[str]]:
        return {"train": [n for n, _ in self.train], "test": [n for n, _ in self.test]}


def load_images(cfg: SRData) -> ImageSets:
    """Training and test photographs (disjoint by image), shrunk by ``prescale``."""
    if cfg.source == "builtin":
        train, test, skipped = builtin_images("train"), builtin_images("test"), SkippedImages()
    else:
        from pathlib import Path

        root = Path(cfg.path or "")
        minimum = int(np.ceil(cfg.hr_size / cfg.prescale))
        train, skipped = folder_images(root / "train", minimum)
        test, skipped_test = folder_images(root / "test", minimum)
        skipped.count += skipped_test.count
        skipped.examples.extend(skipped_test.examples)
    if cfg.prescale != 1.0:
        shrink = [
            (n, rescale(a, cfg.prescale, channel_axis=-1, anti_aliasing=True).astype(np.float32)) for n, a in train
        ]
        test = [(n, rescale(a, cfg.prescale, channel_axis=-1, anti_aliasing=True).astype(np.float32)) for n, a in test]
        train = shrink
    return ImageSets(train, test, skipped)


def random_crops(images: list[Image], size: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` crops of ``size``² from images drawn uniformly, with random horizontal flips; ``[N, 3, S, S]``
    in [−1, 1]."""
    out = np.empty((count, 3, size, size), dtype=np.float32)
    for i in range(count):
        _, pixels = images[rng.integers(len(images))]
        top = rng.integers(pixels.shape[0] - size + 1)
        left = rng.integers(pixels.shape[1] - size + 1)
        crop = pixels[top : top + size, left : left + size]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        out[i] = crop.transpose(2, 0, 1) * 2 - 1
    return out


def bicubic(images: torch.Tensor, size: int) -> torch.Tensor:
    """Bicubic resize (anti-aliased when shrinking) to ``size``², clamped to [−1, 1]."""
    shrinking = size < images.shape[-1]
    return F.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=shrinking).clamp(
        -1, 1
    )


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip one ``[3, s, s]`` image in [0, 1] through JPEG at ``quality``."""
    pixels = (np.clip(image.transpose(1, 2, 0), 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    decoded = np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())).convert("RGB"), dtype=np.float32) / 255
    return decoded.transpose(2, 0, 1)


def degrade(hr: np.ndarray, cfg: SRData, rng: np.random.Generator) -> np.ndarray:
    """Low-resolution ``[N, 3, S/scale, S/scale]`` in [−1, 1] from high-resolution crops, per ``cfg.degradation``."""
    unit = (hr + 1) / 2
    if cfg.degradation == "realistic":
        sigmas = rng.uniform(*cfg.blur_sigma, size=len(unit))
        unit = np.stack(
            [gaussian_filter(img, sigma=(0, s, s), mode="reflect") for img, s in zip(unit, sigmas, strict=True)]
        )
    small = (bicubic(torch.from_numpy(unit * 2 - 1), cfg.hr_size // cfg.scale).numpy() + 1) / 2
    if cfg.degradation == "realistic":
        noise = rng.uniform(*cfg.noise_sigma, size=(len(small), 1, 1, 1)) / 255
        small = np.clip(small + rng.normal(size=small.shape) * noise, 0, 1)
        if cfg.jpeg:
            qualities = rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1, size=len(small))
            small = np.stack([_jpeg(img, q) for img, q in zip(small, qualities, strict=True)])
    return (small * 2 - 1).astype(np.float32)


def upsampled(lr: torch.Tensor, size: int) -> torch.Tensor:
    """The conditioning image: bicubic ↑ of the low-resolution input to the high resolution."""
    return bicubic(lr, size)
