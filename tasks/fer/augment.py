"""The training augmentation of the official recipe, on whole batches of tensors with one seeded generator.

torchvision's ``RandomApply(RandomCrop(S, padding=4))``, ``RandomHorizontalFlip`` and ``RandomErasing(scale)``
applied per image; erased pixels take ``fill`` (the training mean, which the model's standardisation maps to 0, as
torchvision's default value 0 after normalisation). Every random number is drawn on the CPU generator, in the same
order whatever the device; the pixels are moved as whole-batch gathers and masks on the batch's own device, so a
GPU run augments on the GPU and gets exactly the CPU's images.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fedray.tasks.fer.config import Augment

ERASE_RATIO = (0.3, 3.3)
ERASE_TRIES = 10


def _crop(images: torch.Tensor, padding: int, prob: float, g: torch.Generator) -> torch.Tensor:
    """Each image, with probability ``prob``, replaced by an ``H × W`` window of itself zero-padded by ``padding``."""
    if padding == 0 or prob == 0:
        return images
    n, _, h, w = images.shape
    apply = torch.rand(n, generator=g) < prob
    rows = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    cols = torch.randint(0, 2 * padding + 1, (n,), generator=g)
    offset = torch.full((n,), padding)  # an unshifted window: the image itself
    rows, cols = torch.where(apply, rows, offset).to(images.device), torch.where(apply, cols, offset).to(images.device)
    padded = F.pad(images, (padding,) * 4)
    r = (rows[:, None] + torch.arange(h, device=images.device))[:, :, None]  # [N, H, 1]
    c = (cols[:, None] + torch.arange(w, device=images.device))[:, None, :]  # [N, 1, W]
    windows = padded[torch.arange(n, device=images.device)[:, None, None], :, r, c]  # [N, H, W, C]
    return windows.permute(0, 3, 1, 2).contiguous()


def _erase(images: torch.Tensor, cfg: Augment, fill: float, g: torch.Generator) -> torch.Tensor:
    """torchvision's RandomErasing: up to 10 tries for a rectangle of the drawn area and aspect that fits."""
    n, _, h, w = images.shape
    apply = torch.rand(n, generator=g) < cfg.erase_prob
    boxes = torch.zeros(n, 4, dtype=torch.long)  # top, left, height, width; height 0: nothing erased
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
                boxes[i] = torch.tensor([top, left, eh, ew])
                break
    top, left, eh, ew = boxes.to(images.device).unbind(1)
    rows = torch.arange(h, device=images.device)[None, :]
    cols = torch.arange(w, device=images.device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + eh)[:, None])  # [N, H]
    inside_cols = (cols >= left[:, None]) & (cols < (left + ew)[:, None])  # [N, W]
    inside = (inside_rows[:, :, None] & inside_cols[:, None, :])[:, None]  # [N, 1, H, W]
    return torch.where(inside, torch.full_like(images, fill), images)


def augment(images: torch.Tensor, cfg: Augment, fill: float, g: torch.Generator) -> torch.Tensor:
    """Crop, flip, erase ``images`` ``[B, C, H, W]`` on their device (a new tensor; the input is untouched)."""
    images = _crop(images, cfg.crop_padding, cfg.crop_prob, g)
    if cfg.flip:
        flip = (torch.rand(len(images), generator=g) < 0.5).to(images.device)
        images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if cfg.erase_prob > 0:
        images = _erase(images, cfg, fill, g)
    return images
