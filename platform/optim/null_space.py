"""Null-space projectors from uncentred feature covariances, with Mamba-CL's adaptive elbow threshold.

An update ΔW (stored out×in) leaves a layer's outputs on earlier inputs X unchanged when X ΔWᵀ = 0, i.e. when its
rows lie in the null space of XᵀX. The covariance's spectrum has no exact zeros, so the split between the kept
(range) and the free (approximate null) directions is the elbow of the sorted singular values: the largest second
difference, after Gaussian smoothing when there are at least 128 of them.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d

SMOOTHING_MIN_SIZE = 128  # at least this many singular values: smooth (σ = 10) and trim 1.5 % at each end
SMOOTHING_SIGMA = 10.0
TRIM_FRACTION = 0.03


def elbow_index(singular_values: np.ndarray) -> int:
    """``i_thr = max{i : S[i] ≥ thr}`` for the threshold ``thr`` at the elbow of ``S`` (sorted descending)."""
    s = np.asarray(singular_values, dtype=np.float64)
    n = len(s)
    if n < 3:
        raise ValueError(f"the elbow rule needs at least 3 singular values, got {n}")
    if n >= SMOOTHING_MIN_SIZE:
        smooth = gaussian_filter1d(s, sigma=SMOOTHING_SIGMA)
        d1 = smooth[:-1] - smooth[1:]
        d2 = d1[:-1] - d1[1:]
        drop = int(n * TRIM_FRACTION / 2)
        v = d2[drop:-drop] if drop else d2
    else:
        d1 = s[:-1] - s[1:]
        v = d1[:-1] - d1[1:]
    threshold = s[int(np.argmax(v)) + (n - len(v)) // 2]
    return int(np.nonzero(s >= threshold)[0].max())


def null_space_basis(covariance: torch.Tensor) -> torch.Tensor:
    """Rows spanning the approximate null space of ``covariance`` (the elbow's own vector included)."""
    _, s, vt = torch.linalg.svd(covariance.double())
    return vt[elbow_index(s.numpy(force=True)) :]


def projection_matrix(covariance: torch.Tensor, eta: float, normalize: bool = True) -> torch.Tensor:
    """H = η·P + (1 − η)·I with P = BnᵀBn / ‖BnᵀBn‖_F (``normalize``, Mamba-CL's rule) or P = BnᵀBn.

    BnᵀBn is an orthogonal projector of rank r, so its Frobenius norm is √r: with ``normalize`` the update keeps
    η/√r + (1 − η) of itself along null-space directions and 1 − η along the others.
    """
    basis = null_space_basis(covariance)
    projector = basis.T @ basis
    if normalize:
        projector = projector / torch.linalg.matrix_norm(projector)
    eye = torch.eye(len(projector), dtype=projector.dtype, device=projector.device)
    return (eta * projector + (1.0 - eta) * eye).to(covariance.dtype)
