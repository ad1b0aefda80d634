"""Classifier and distance baselines on the same frozen encoder (higher = more OOD, as every score here).

MSP and Energy read the logits; Mahalanobis fits class means and one tied covariance on the ID train z₀ (the
pseudo-inverse handles the directions the per-block z-score removes); KNN measures the distance to the k-th nearest
ID train sample among L2-normalised penultimate features (the pooled last stage), i.e. cosine distance ranking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from scipy.special import logsumexp, softmax
from sklearn.covariance import EmpiricalCovariance
from sklearn.neighbors import NearestNeighbors
from sklearn.preprocessing import normalize

from fedray.platform.device import torch_threads
from fedray.tasks.ood.compute import batched
from fedray.tasks.ood.config import Baselines
from fedray.tasks.ood.features import make_z0


def msp(logits: np.ndarray) -> np.ndarray:
    """−max softmax probability."""
    return -softmax(logits.astype(np.float64), axis=1).max(axis=1)


def energy(logits: np.ndarray) -> np.ndarray:
    """The free energy −logsumexp(logits) (temperature 1): ID samples have large logits, hence low energy."""
    return -logsumexp(logits.astype(np.float64), axis=1)


class Mahalanobis:
    """min_c (z − μ_c)ᵀ Σ⁻¹ (z − μ_c) with class means μ_c and the covariance Σ of z − μ_y pooled over classes."""

    def __init__(self, features: np.ndarray, labels: np.ndarray) -> None:
        features = features.astype(np.float64)
        self.classes = np.unique(labels)
        self.means = np.stack([features[labels == c].mean(axis=0) for c in self.classes])
        centred = features - self.means[np.searchsorted(self.classes, labels)]
        self.covariance = EmpiricalCovariance(assume_centered=True).fit(centred)

    def score(self, features: np.ndarray) -> np.ndarray:
        features = features.astype(np.float64)
        return np.min([self.covariance.mahalanobis(features - mean) for mean in self.means], axis=0)


class KNN:
    """Distance to the ``k``-th nearest ID train sample, features L2-normalised first."""

    def __init__(self, features: np.ndarray, k: int) -> None:
        self.k = min(k, len(features))
        self.index = NearestNeighbors(n_neighbors=self.k, algorithm="brute").fit(normalize(features.astype(np.float32)))

    def score(self, features: np.ndarray, batch_size: int = 500) -> np.ndarray:
        queries = normalize(features.astype(np.float32))
        return np.concatenate(
            [self.index.kneighbors(queries[s])[0][:, -1] for s in batched(len(queries), batch_size)]
        ).astype(np.float64)


def baseline_scores(
    cfg: Baselines,
    train: Mapping[str, np.ndarray],
    sets: Mapping[str, Mapping[str, np.ndarray]],
    widths: list[int],
    layers: Literal["all", "last"],
    threads: int,
) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
    """Runtime task: set name → score name → scores for the enabled baselines, and ``{"knn_k": k used}``.

    ``train`` holds the ID train ``pooled`` features, ``logits`` and ``labels``; every set holds ``pooled`` and
    ``logits``."""
    with torch_threads(threads):
        maha = Mahalanobis(make_z0(train["pooled"], widths, layers), train["labels"]) if cfg.mahalanobis else None
        knn = KNN(train["pooled"][:, -widths[-1] :], cfg.knn_k) if cfg.knn else None
        out: dict[str, dict[str, np.ndarray]] = {}
        for name, feats in sets.items():
            scores: dict[str, np.ndarray] = {}
            if cfg.msp:
                scores["msp"] = msp(feats["logits"])
            if cfg.energy:
                scores["energy"] = energy(feats["logits"])
            if maha is not None:
                scores["mahalanobis"] = maha.score(make_z0(feats["pooled"], widths, layers))
            if knn is not None:
                scores["knn"] = knn.score(feats["pooled"][:, -widths[-1] :])
            out[name] = scores
    return out, {"knn_k": knn.k if knn is not None else 0}
