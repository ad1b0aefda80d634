"""Labelled images from a folder of class folders (the ImageFolder layout), for classification and task streams.

``ROOT/<class>/**`` with classes in sorted name order, or ``ROOT/train/<class>/**`` and ``ROOT/test/<class>/**``
when the split is fixed on disk (then both must name the same classes). Unreadable files are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.data.folder import SkippedImages, find_images, read_images
from fedray.platform.errors import DataError


def _classes(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))


def read_labelled_dirs(
    dirs: Iterable[tuple[int, Path]], root: Path, channels: int, size: int
) -> tuple[np.ndarray, np.ndarray, SkippedImages]:
    """Every readable image under each ``(label, folder)`` pair: ``(images [N, C, S, S], labels [N], skipped)``;
    a DataError when none is readable."""
    paths, labels = [], []
    for label, directory in dirs:
        found = find_images(directory)
        paths += found
        labels += [label] * len(found)
    images, kept, skipped = read_images(paths, channels, size, root=root)
    if len(kept) == 0:
        raise DataError(f"no readable images under {root}/<class>/ ({skipped.count} unreadable)")
    return images, np.asarray(labels, dtype=np.int64)[kept], skipped


def _read_split(
    directory: Path, classes: list[str], channels: int, size: int, name: str
) -> tuple[ImageArrays, SkippedImages]:
    dirs = [(label, directory / cls) for label, cls in enumerate(classes)]
    images, labels, skipped = read_labelled_dirs(dirs, directory, channels, size)
    empty = [cls for label, cls in enumerate(classes) if not (labels == label).any()]
    if empty:
        raise DataError(f"class folders with no readable image in {directory}: {', '.join(empty)}; fill or remove them")
    return ImageArrays(images, labels, len(classes), name), skipped


def read_class_folders(
    root: str | Path, channels: int, size: int
) -> tuple[ImageArrays, ImageArrays | None, list[str], SkippedImages]:
    """``(train, test or None, class names, skipped)``; ``test`` is None without a ``train``/``test`` split on disk."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist (expected {root}/<class>/*.png or {root}/train/<class>/)")
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _classes(root / "train")
        if _classes(root / "test") != classes:
            raise DataError(f"{root}/train and {root}/test name different classes; they must match")
        train, skipped_train = _read_split(root / "train", classes, channels, size, "folder")
        test, skipped_test = _read_split(root / "test", classes, channels, size, "folder")
        skipped_train.count += skipped_test.count
        skipped_train.examples += skipped_test.examples[: 5 - len(skipped_train.examples)]
        return train, test, classes, skipped_train
    classes = _classes(root)
    if len(classes) < 2:
        raise DataError(f"{root} needs at least two class folders, found {len(classes)}")
    train, skipped = _read_split(root, classes, channels, size, "folder")
    return train, None, classes, skipped
