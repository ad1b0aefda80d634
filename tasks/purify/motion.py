"""Rigid-motion artifacts simulated in k-space (no raw k-space exists offline).

Rows of k-space are phase-encoding lines acquired in order k_y = −N/2 … N/2 − 1. At 1..``max_events`` random
moments the head takes a new pose (shift and rotation relative to the reference); every row acquired after an event
comes from the image in that pose, except rows inside the central band |k_y| < ``clean_band``·N. The magnitude of the
inverse FFT is min–max normalised to [−1, 1]. Deterministic given the generator.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import rotate

from fedray.tasks.purify.config import MotionSetting


def corrupt(clean: np.ndarray, setting: MotionSetting, rng: np.random.Generator) -> np.ndarray:
    """One motion-corrupted copy of ``clean`` (an N×N slice in [−1, 1]), in [−1, 1]."""
    x = (clean.astype(np.float64) + 1) / 2
    n = x.shape[0]
    k_space = np.fft.fft2(x)
    ky = np.fft.fftfreq(n) * n
    kx = np.fft.fftfreq(x.shape[1]) * x.shape[1]
    acquisition = np.argsort(ky, kind="stable")  # −N/2 … N/2 − 1
    events = int(rng.integers(1, setting.max_events + 1))
    cuts = sorted(rng.choice(np.arange(1, n), size=events, replace=False).tolist())
    for start, stop in zip(cuts, [*cuts[1:], n], strict=True):
        dx, dy = rng.uniform(-setting.shift, setting.shift, size=2)
        angle = rng.uniform(-setting.rotation, setting.rotation)
        moved = np.fft.fft2(rotate(x, angle, order=1, mode="constant", cval=0.0))
        moved *= np.exp(-2j * np.pi * (kx[None, :] * dx / x.shape[1] + ky[:, None] * dy / n))
        rows = [i for i in acquisition[start:stop] if abs(ky[i]) >= setting.clean_band * n]
        k_space[rows, :] = moved[rows, :]
    y = np.abs(np.fft.ifft2(k_space))
    span = y.max() - y.min()
    return (2 * (y - y.min()) / span - 1 if span > 0 else np.zeros_like(y)).astype(np.float32)


def corrupt_all(clean: np.ndarray, setting: MotionSetting, rng: np.random.Generator) -> np.ndarray:
    """Corrupt every slice of ``[S, N, N]`` with its own motion draw."""
    return np.stack([corrupt(s, setting, rng) for s in clean])
