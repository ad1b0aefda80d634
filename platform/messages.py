"""The plain messages clients and the parameter server exchange (they never import each other)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NamedArrays = dict[str, np.ndarray]
"""Tensors by parameter name: the wire format of shared layers (and of Flower's ``ArrayRecord``)."""


@dataclass
class ClientData:
    """One client's samples, sent to its actor once through the object store: float32 ``[N, C, H, W]`` images in
    [0, 1] and int64 labels, for training and for this client's own test split."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int


@dataclass
class FitResult:
    """A client's answer to a training request: its shared tensors after local training."""

    client_id: int
    arrays: NamedArrays
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalResult:
    """A client's evaluation of the current global shared tensors combined with its personal ones."""

    client_id: int
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
