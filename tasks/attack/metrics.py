"""What an attack achieved and what it cost: success rate and accuracy, perturbation size and area, image quality.

ASR = |{correct before ∧ wrong after}| / |{correct before}| — images the detector already got wrong are not
counted as successes. Perturbation statistics use δ = x_final − x per image: the area is the fraction of pixels
with δ ≠ 0, L2 and L∞ its norms (pixel values in [0, 1]); PSNR and SSIM compare x_final with x (scikit-image,
data range 1).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from fedray.platform.metrics.image import psnr


def attack_success_rate(correct_before: np.ndarray, correct_after: np.ndarray) -> float:
    """Share of the images classified correctly before the attack that are classified wrongly after it (NaN when
    none was correct before)."""
    before = np.asarray(correct_before, dtype=bool)
    after = np.asarray(correct_after, dtype=bool)
    if not before.any():
        return float("nan")
    return float((before & ~after).sum() / before.sum())


def outcome(labels: np.ndarray, before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """Accuracy before/after and ASR for predicted labels ``before``/``after``, overall and on the fakes alone (the
    forger's goal: fakes passed off as real)."""
    cb, ca = before == labels, after == labels
    fake = labels == 1
    return {
        "acc_before": float(cb.mean()),
        "acc_after": float(ca.mean()),
        "asr": attack_success_rate(cb, ca),
        "asr_fake": attack_success_rate(cb[fake], ca[fake]) if fake.any() else float("nan"),
    }


def perturbation_stats(original: np.ndarray, final: np.ndarray) -> dict[str, float]:
    """Mean over images of the perturbed area, ‖δ‖₂, ‖δ‖∞, PSNR and SSIM (images ``[N, 1, H, W]`` in [0, 1]); PSNR
    is averaged over the images that changed (identical images have infinite PSNR), with their count."""
    a = np.asarray(original, dtype=np.float64)[:, 0]
    b = np.asarray(final, dtype=np.float64)[:, 0]
    delta = (b - a).reshape(len(a), -1)
    psnrs = np.array([psnr(x, y, 1.0) for x, y in zip(a, b, strict=True)])
    finite = np.isfinite(psnrs)
    ssims = [structural_similarity(x, y, data_range=1.0) for x, y in zip(a, b, strict=True)]
    return {
        "perturbed_area": float((delta != 0).mean(axis=1).mean()),
        "l2": float(np.linalg.norm(delta, axis=1).mean()),
        "linf": float(np.abs(delta).max(axis=1).mean()),
        "psnr": float(psnrs[finite].mean()) if finite.any() else float("inf"),
        "psnr_images": int(finite.sum()),
        "ssim": float(np.mean(ssims)),
    }
