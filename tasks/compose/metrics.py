"""Scores of composites against the ground truth (images in [−1, 1], ``[N, 3, S, S]``; regions ``[N, 1, S, S]``).

Overall PSNR/SSIM/MSE (scikit-image), PSNR inside the foreground region (how well the object was placed and
harmonised) and outside it (background preservation), and foreground fidelity: the cosine similarity of the frozen
token encoder's pooled features of the region in the ground truth and in the composite.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import mean_squared_error, structural_similarity

from fedray.platform.metrics.image import hwc_unit, mean_and_std, psnr, rgb_and_y_quality
from fedray.platform.modules.encoders import ConvEncoder
from fedray.platform.modules.state import as_tensor


def _masked_psnr(reference: np.ndarray, output: np.ndarray, mask: np.ndarray) -> float:
    """PSNR over the pixels where ``mask`` (``[H, W]`` bool) holds, all channels, in [0, 1] units; NaN when empty."""
    if not mask.any():
        return float("nan")
    return psnr(hwc_unit(reference)[mask], hwc_unit(output)[mask], 1.0)


def _masked_ssim(reference: np.ndarray, output: np.ndarray, mask: np.ndarray) -> float:
    """The mean of the SSIM map (RGB, 7×7 windows) over the pixels where ``mask`` holds; NaN when empty."""
    if not mask.any():
        return float("nan")
    _, ssim_map = structural_similarity(
        hwc_unit(reference), hwc_unit(output), data_range=1.0, channel_axis=-1, win_size=7, full=True
    )
    return float(ssim_map[mask].mean())


def composite_quality(reference: np.ndarray, output: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """One composite: ``psnr``/``ssim`` (RGB) and ``psnr_y``/``ssim_y``, ``mse`` (RGB in [0, 1]), ``psnr_region``
    and ``ssim_region`` inside and ``psnr_background`` outside the foreground region."""
    inside = np.asarray(region[0]) > 0.5
    return {
        **rgb_and_y_quality(reference, output),
        "mse": float(mean_squared_error(hwc_unit(reference), hwc_unit(output))),
        "psnr_region": _masked_psnr(reference, output, inside),
        "ssim_region": _masked_ssim(reference, output, inside),
        "psnr_background": _masked_psnr(reference, output, ~inside),
    }


@torch.no_grad()
def region_feature_cosine(
    encoder: ConvEncoder, reference: np.ndarray, output: np.ndarray, region: np.ndarray
) -> np.ndarray:
    """Per composite, cos(GAP(encoder(gt · region)), GAP(encoder(output · region))): foreground fidelity."""
    mask = as_tensor(region)
    feats = [encoder(as_tensor(images) * mask).mean(dim=(2, 3)) for images in (reference, output)]
    return torch.nn.functional.cosine_similarity(*feats, dim=1).numpy()


def score(encoder: ConvEncoder, reference: np.ndarray, output: np.ndarray, region: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation over composites of every score (NaN region scores of empty regions left out)."""
    rows = [composite_quality(a, b, r) for a, b, r in zip(reference, output, region, strict=True)]
    cosine = region_feature_cosine(encoder, reference, output, region)
    for row, value in zip(rows, cosine, strict=True):
        row["fg_feature_cosine"] = float(value)
    summary: dict[str, float] = {}
    for key in rows[0]:
        finite = [{key: r[key]} for r in rows if np.isfinite(r[key])]
        if finite:
            summary.update(mean_and_std(finite))
    return summary
