"""A stream's tasks: its class order, and each task's train/test samples with labels that are positions in it."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.data.tasks import class_order, per_class_subset, split_tasks
from fedray.tasks.continual.config import ContinualConfig


@dataclasses.dataclass(frozen=True)
class TaskData:
    """A task's classes, and its train/test samples with global labels (positions in the stream's class order)."""

    classes: list[int]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor


def build_tasks(cfg: ContinualConfig, train: ImageArrays, test: ImageArrays) -> tuple[list[int], list[TaskData]]:
    """The stream's class order and its tasks; labels become positions in that order (task t owns a block)."""
    order = class_order(train.num_classes, cfg.seed, cfg.data.class_order, cfg.data.shuffle_classes)
    position = np.empty(train.num_classes, dtype=np.int64)
    position[order] = np.arange(len(order))
    train_keep = per_class_subset(train.labels, cfg.data.train_per_class, cfg.seed, "train")
    test_keep = per_class_subset(test.labels, cfg.data.test_per_class, cfg.seed, "test")
    tasks = []
    for classes in split_tasks(order, cfg.data.tasks):
        tr = train_keep[np.isin(train.labels[train_keep], classes)]
        te = test_keep[np.isin(test.labels[test_keep], classes)]
        tasks.append(
            TaskData(
                classes,
                torch.from_numpy(train.images[tr]),
                torch.from_numpy(position[train.labels[tr]]),
                torch.from_numpy(test.images[te]),
                torch.from_numpy(position[test.labels[te]]),
            )
        )
    return order, tasks
