"""The training augmentation of the official recipe, on whole batches of tensors with one seeded generator.

torchvision's ``RandomApply(RandomCrop(S, padding=4))``, ``RandomHorizontalFlip`` and ``RandomErasing(scale)``
applied per image; erased pixels take ``fill`` (the training mean, which the model's standardisation maps to 0, as
torchvision's default value 0 after normalisation). Per-image slicing loops over at most a batch of 64 small images,
which costs little next to the ResNet step.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fedray.tasks.fer.config import Augment

ERASE_RATIO = (0.3, 3.3)
ERASE_TRIES = 10


def _crop(images: torch.Tensor, padding: int, prob: float, g: torch.Generator) -> torch.Tensor:
    if padding == 0 or prob == 0:
        return images
    n, _, h, w = images.shape
    padded = F.pad(images, (padding,) * 4)
    apply = torch.rand(n, generator=g) < prob
    rows = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    cols = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    out = images.clone()
    for i in apply.nonzero().flatten().tolist():
        r, c = int(rows[i]), int(cols[i])
        out[i] = padded[i, :, r : r + h, c : c + w]
    return out


def _erase(images: torch.Tensor, cfg: Augment, fill: float, g: torch.Generator) -> torch.Tensor:
    """torchvision's RandomErasing: up to 10 tries for a rectangle of the drawn area and aspect that fits."""
    n, _, h, w = images.shape
    apply = torch.rand(n, generator=g) < cfg.erase_prob
    out = images.clone()
    low, high = cfg.erase_scale
    log_ratio = (math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]))
    for i in apply.nonzero().flatten().tolist():
        for _ in range(ERASE_TRIES):
            area = h * w * (low + (high - low) * float(torch.rand(1, generator=g)))
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * float(torch.rand(1, generator=g)))
            eh, ew = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
            if eh < h and ew < w:
                top = int(torch.randint(0, h - eh + 1, (1,), generator=g))
                left = int(torch.randint(0, w - ew + 1, (1,), generator=g))
                out[i, :, top : top + eh, left : left + ew] = fill
                break
    return out


def augment(images: torch.Tensor, cfg: Augment, fill: float, g: torch.Generator) -> torch.Tensor:
    """Crop, flip, erase ``images`` ``[B, C, H, W]`` (a new tensor; the input is untouched)."""
    images = _crop(images, cfg.crop_padding, cfg.crop_prob, g)
    if cfg.flip:
        flip = torch.rand(len(images), generator=g) < 0.5
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if cfg.erase_prob > 0:
        images = _erase(images, cfg, fill, g)
    return images
