"""Image quality of purified slices against the clean ones: PSNR and SSIM (scikit-image) in [0, 1], over the whole
slice and inside its foreground mask."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from fedray.platform.metrics.image import error_split, mean_and_std, psnr


def _unit(x: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(x, dtype=np.float64) + 1) / 2, 0, 1)


def slice_quality(clean: np.ndarray, restored: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR/SSIM of one slice pair given in [−1, 1]; ``*_mask`` restrict both to ``mask``'s pixels."""
    a, b = _unit(clean), _unit(restored)
    ssim, ssim_map = structural_similarity(a, b, data_range=1.0, full=True, win_size=7)
    return {
        "psnr": psnr(a, b, 1.0),
        "ssim": float(ssim),
        "psnr_mask": psnr(a[mask], b[mask], 1.0) if mask.any() else float("nan"),
        "ssim_mask": float(ssim_map[mask].mean()) if mask.any() else float("nan"),
    }


def quality(clean: np.ndarray, restored: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation over slices of every :func:`slice_quality` metric."""
    return mean_and_std([slice_quality(c, r, m) for c, r, m in zip(clean, restored, masks, strict=True)])


def sampling_quality(clean: np.ndarray, samples: list[np.ndarray], masks: np.ndarray) -> dict[str, object]:
    """K purifications of the same slices (sampling seeds): :func:`quality` of their pixel-wise mean (an estimate of
    the posterior mean the sampler draws around) and the split of a sample's MSE, in [0, 1] units, into the mean's
    error and the samples' spread (:func:`fedray.platform.metrics.image.error_split`)."""
    unit = np.stack([_unit(s) for s in samples])
    return {
        "mean_of_samples": quality(clean, 2 * unit.mean(axis=0) - 1, masks),
        "mse_split": error_split(_unit(clean), unit),
    }
