"""The plain messages clients and the parameter server exchange (they never import each other)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

NamedArrays = dict[str, np.ndarray]
"""Tensors by parameter name: the wire format of shared layers (and of Flower's ``ArrayRecord``)."""


Sampler = Callable[[int, int], tuple[np.ndarray, np.ndarray]]
"""``sampler(round, epoch) -> (images, labels)``: a fresh, seeded draw of training samples."""


@dataclass
class ClientData:
    """One client's samples, sent to its actor once through the object store: float32 ``[N, C, H, W]`` images in
    [0, 1] and int64 labels, for training and for this client's own test split.

    A client whose training samples are synthesised on the fly (self-blended forgeries) carries a picklable
    ``sampler`` instead of fixed training arrays; ``num_train`` is then the size of one draw.
    ``test_groups`` names each test sample's group (a dataset's own column, such as a source or a demographic), so
    results can be broken down by group; None where the dataset has no groups.
    """

    train_images: np.ndarray | None
    train_labels: np.ndarray | None
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    sampler: Sampler | None = None
    draw_size: int = 0
    test_groups: np.ndarray | None = None

    @property
    def num_train(self) -> int:
        return self.draw_size if self.sampler is not None else len(self.train_labels)


@dataclass
class FitResult:
    """A client's answer to a training request: its shared tensors after local training, or (``declined``) why it
    did not train this round, e.g. a spent privacy budget."""

    client_id: int
    arrays: NamedArrays
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    declined: str | None = None


@dataclass
class EvalResult:
    """A client's evaluation of the current global shared tensors combined with its personal ones; ``info`` holds
    facts about the client that are not metrics to average (ε spent, the round of its personal state)."""

    client_id: int
    num_examples: int
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, float] = field(default_factory=dict)
