"""Full-reference image quality (scikit-image): PSNR and SSIM on RGB and on the luma (Y) channel, as SR papers
report them, for images in [−1, 1] laid out ``[3, H, W]``."""

from __future__ import annotations

import numpy as np
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def hwc_unit(image: np.ndarray) -> np.ndarray:
    """``[3, H, W]`` in [−1, 1] → ``[H, W, 3]`` float64 in [0, 1] (clipped), the layout scikit-image expects."""
    return np.clip((np.asarray(image, dtype=np.float64).transpose(1, 2, 0) + 1) / 2, 0, 1)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """scikit-image's PSNR, infinite for identical inputs (instead of a division warning)."""
    return float("inf") if np.array_equal(a, b) else float(peak_signal_noise_ratio(a, b, data_range=data_range))


def rgb_and_y_quality(reference: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    """``psnr``/``ssim`` on RGB in [0, 1] and ``psnr_y``/``ssim_y`` on ITU-R BT.601 luma (16–235, range 255)."""
    a, b = hwc_unit(reference), hwc_unit(restored)
    ya, yb = rgb2ycbcr(a)[..., 0], rgb2ycbcr(b)[..., 0]
    window = min(7, *a.shape[:2]) // 2 * 2 + 1 if min(a.shape[:2]) < 7 else 7
    return {
        "psnr": psnr(a, b, 1.0),
        "ssim": float(structural_similarity(a, b, data_range=1.0, channel_axis=-1, win_size=window)),
        "psnr_y": psnr(ya, yb, 255.0),
        "ssim_y": float(structural_similarity(ya, yb, data_range=255.0, win_size=window)),
    }


def mean_and_std(rows: list[dict[str, float]]) -> dict[str, float]:
    """Per key, the mean over ``rows`` (one per image) and its standard deviation as ``<key>_std``."""
    out: dict[str, float] = {}
    for key in rows[0]:
        values = np.array([row[key] for row in rows])
        out[key], out[f"{key}_std"] = float(values.mean()), float(values.std())
    return out


def per_image_quality(references: np.ndarray, restored: np.ndarray) -> list[dict[str, float]]:
    """:func:`rgb_and_y_quality` of every image pair."""
    return [rgb_and_y_quality(a, b) for a, b in zip(references, restored, strict=True)]


def mean_quality(references: np.ndarray, restored: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation over images of :func:`rgb_and_y_quality`."""
    return mean_and_std(per_image_quality(references, restored))


def by_reference_quantile(scores: dict[str, list[float]], reference: str, bins: int = 4) -> dict[str, object]:
    """Every method's mean per-image score within equal-count bins of the images ordered by ``reference``'s score
    (bin 0: the images ``reference`` does worst on). Why: a mean over test crops mixes flat crops, where any noise a
    sampler adds costs many dB, with textured ones, where the reference (e.g. bicubic) is weakest; the split shows
    where a method gains and where it loses. ``edges``: ``reference``'s lowest and highest score in each bin."""
    if reference not in scores:
        raise KeyError(f"reference method {reference!r} has no scores (methods: {', '.join(scores)})")
    ref = np.asarray(scores[reference], dtype=np.float64)
    groups = [g for g in np.array_split(np.argsort(ref, kind="stable"), bins) if len(g)]
    return {
        "reference": reference,
        "images_per_bin": [len(g) for g in groups],
        "edges": [[float(ref[g].min()), float(ref[g].max())] for g in groups],
        "mean": {m: [float(np.mean(np.asarray(v, dtype=np.float64)[g])) for g in groups] for m, v in scores.items()},
    }


def laplacian_variance_ratio(references: np.ndarray, restored: np.ndarray) -> float:
    """Σ Var(∇²·restored) / Σ Var(∇²·reference) over the images, on grey levels: a sharpness proxy (1 = as much
    high-frequency energy as the references; blur gives less) for when no-reference quality models are unavailable.

    A ratio of sums, not a mean of per-image ratios: a nearly flat reference crop would otherwise contribute a huge
    ratio from a little noise and dominate the mean."""
    from skimage.color import rgb2gray
    from skimage.filters import laplace

    energy = np.array(
        [(laplace(rgb2gray(hwc_unit(a))).var(), laplace(rgb2gray(hwc_unit(b))).var())
         for a, b in zip(references, restored, strict=True)]
    )  # fmt: skip
    if len(energy) == 0 or energy[:, 0].sum() <= 0:
        return float("nan")
    return float(energy[:, 1].sum() / energy[:, 0].sum())


def error_split(reference: np.ndarray, samples: np.ndarray) -> dict[str, float]:
    """K samples of the same images (``samples[k]`` shaped like ``reference``): their mean squared error per sample
    splits exactly into the error of their mean and their spread around it,
    mean_k ‖s_k − x‖² = ‖s̄ − x‖² + mean_k ‖s_k − s̄‖². A sampler drawing from the exact posterior has a spread equal
    to its mean's error, so one sample is 3 dB below the posterior mean; the split says whether a method's error is
    its model's (the mean) or its sampling's (the spread). Means over all pixels, in the units of the inputs."""
    samples = np.asarray(samples, dtype=np.float64)
    mean = samples.mean(axis=0)
    return {
        "per_sample": float(((samples - reference) ** 2).mean()),
        "of_mean": float(((mean - reference) ** 2).mean()),
        "spread": float(((samples - mean) ** 2).mean()),
    }
