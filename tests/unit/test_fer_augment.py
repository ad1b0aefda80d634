"""The batched FER augmentation against torchvision's per-image definition, written out image by image here: the
same draws from the same generator give the same pixels, and a crop moves pixels without changing them."""

import math

import pytest
import torch
import torch.nn.functional as F

from fedray.tasks.fer.augment import ERASE_RATIO, augment
from fedray.tasks.fer.config import Augment


def _erase_box(h: int, w: int, scale: tuple[float, float], g: torch.Generator) -> tuple[int, int, int, int] | None:
    """RandomErasing.get_params: up to 10 tries for a rectangle of the drawn area and log-uniform aspect that fits."""
    for _ in range(10):
        area = h * w * (scale[0] + (scale[1] - scale[0]) * float(torch.rand(1, generator=g)))
        log_low, log_high = math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1])
        aspect = math.exp(log_low + (log_high - log_low) * float(torch.rand(1, generator=g)))
        eh, ew = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if eh < h and ew < w:
            top = int(torch.randint(0, h - eh + 1, (1,), generator=g))
            return top, int(torch.randint(0, w - ew + 1, (1,), generator=g)), eh, ew
    return None


def _per_image(images: torch.Tensor, cfg: Augment, fill: float, g: torch.Generator) -> torch.Tensor:
    """One image at a time, drawing in the batched code's order: the crop's and the flip's draws for the whole
    batch, then the erasing tries image by image."""
    n, _, h, w = images.shape
    p = cfg.crop_padding
    out = images.clone()
    none = torch.zeros(n, dtype=torch.bool)
    crop, rows, cols = none, None, None
    if p > 0 and cfg.crop_prob > 0:
        crop = torch.rand(n, generator=g) < cfg.crop_prob
        rows, cols = torch.randint(0, 2 * p + 1, (n,), generator=g), torch.randint(0, 2 * p + 1, (n,), generator=g)
    flip = torch.rand(n, generator=g) < 0.5 if cfg.flip else none
    erase = torch.rand(n, generator=g) < cfg.erase_prob if cfg.erase_prob > 0 else none
    for i in range(n):
        if crop[i]:
            out[i] = F.pad(images[i], (p,) * 4)[:, rows[i] : rows[i] + h, cols[i] : cols[i] + w]
        if flip[i]:
            out[i] = out[i].flip(-1)
    for i in range(n):
        box = _erase_box(h, w, cfg.erase_scale, g) if erase[i] else None
        if box is not None:
            top, left, eh, ew = box
            out[i, :, top : top + eh, left : left + ew] = fill
    return out


@pytest.mark.parametrize(
    "cfg",
    [Augment(), Augment(crop_prob=1.0, erase_prob=1.0), Augment(crop_padding=0, flip=False, erase_prob=0.0)],
    ids=["recipe", "always", "none"],
)
def test_batched_augmentation_is_the_per_image_definition(cfg):
    images = torch.rand(64, 3, 20, 24)
    batched = augment(images, cfg, 0.5, torch.Generator().manual_seed(3))
    expected = _per_image(images, cfg, 0.5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(batched, expected, rtol=0, atol=0)
    changed = (batched != images).flatten(1).any(1).float().mean()
    assert changed == 0 if cfg.erase_prob == 0 and not cfg.flip else changed > 0.5


def test_a_crop_is_a_window_of_the_zero_padded_image():
    images = torch.rand(16, 2, 6, 7) + 1
    cfg = Augment(crop_padding=2, crop_prob=1.0, flip=False, erase_prob=0.0)
    cropped = augment(images, cfg, 0.0, torch.Generator().manual_seed(0))
    shifts = []
    for got, image in zip(cropped, images, strict=True):
        padded = F.pad(image, (2,) * 4)
        windows = [(r, c) for r in range(5) for c in range(5) if torch.equal(got, padded[:, r : r + 6, c : c + 7])]
        assert len(windows) == 1
        shifts.append(windows[0])
    assert len(set(shifts)) > 5  # the offsets vary between images
