"""Train, validation and test images for the ``fer`` workload, float32 ``[N, C, S, S]`` in [0, 1], labels in RAF-DB
order (neutral = 6).

Only a user's folder holds real facial expressions. The built-in sources are stand-ins that let the workload run
anywhere: ``warped_faces`` renders the seven expressions on real faces by action-unit warps
(:mod:`fedray.tasks.fer.warped_faces`); ``fashion_mnist`` and ``digits`` relabel seven object classes as the seven
expressions and only exercise the code. Every result on a stand-in carries a ``data_note`` saying what it is. The
validation split is carved out of the training images (stratified, seeded): the kept epoch is chosen on it, never on the
test split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from skimage.transform import resize

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.data.class_folder import read_labelled_dirs
from fedray.platform.data.folder import SkippedImages
from fedray.platform.data.idx import load_idx_split
from fedray.platform.data.load import FASHION_MNIST_DIR, stratified_split, stratified_subset
from fedray.platform.errors import DataError
from fedray.platform.seeding import derive_seed
from fedray.tasks.fer.classes import FOLDER_LABELS, NUM_CLASSES, RAF_CLASSES, folder_label
from fedray.tasks.fer.config import ExpressionData, FERConfig
from fedray.tasks.fer.warped_faces import DATA_NOTE as WARPED_FACES_NOTE
from fedray.tasks.fer.warped_faces import warped_faces

STAND_IN_CLASSES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"),
    "digits": tuple(f"digit {k}" for k in range(NUM_CLASSES)),
}
BUILT_IN_SOURCES = (*STAND_IN_CLASSES, "warped_faces")
WARPED_RENDERS_PER_FACE = (6, 4)  # train, test: 70 × 7 × 6 = 2,940 training and 30 × 7 × 4 = 840 test images
Split = tuple[np.ndarray, np.ndarray]
RESIZE_CHUNK = 4096
DATA_NOTE_FILE = "DATA_NOTE.txt"  # optional, at a folder's root: what the images are, copied into every result


@dataclass(frozen=True)
class ExpressionSplits:
    train: ImageArrays
    val: ImageArrays
    test: ImageArrays
    info: dict[str, Any]


def stand_in_note(source: str) -> str:
    """What a built-in source's images are, for every result on them."""
    if source == "warped_faces":
        return WARPED_FACES_NOTE
    classes = STAND_IN_CLASSES[source]
    pairs = ", ".join(f"{c} → {e}" for c, e in zip(classes, RAF_CLASSES, strict=True))
    return (
        f"[fedray] STAND-IN DATA, NOT FACIAL EXPRESSIONS: {source} classes 0–6 relabelled as the seven RAF-DB "
        f"expressions ({pairs}). These numbers only exercise the code; they are not FER results."
    )


def _resize(images: np.ndarray, size: int, channels: int) -> np.ndarray:
    """``[N, H, W]`` in [0, 1] → float32 ``[N, channels, size, size]`` (bilinear, anti-aliased when shrinking)."""
    images = np.asarray(images, dtype=np.float32)
    if images.shape[1:] != (size, size):  # in chunks: scikit-image works in float64, 42,000 images at 64² is 1.4 GB
        chunks = [images[s : s + RESIZE_CHUNK] for s in range(0, len(images), RESIZE_CHUNK)]
        images = np.concatenate(
            [resize(c, (len(c), size, size), order=1, anti_aliasing=True, preserve_range=True) for c in chunks]
        ).astype(np.float32)
    images = np.clip(images, 0.0, 1.0)[:, None]
    return np.repeat(images, channels, axis=1) if channels > 1 else images


def _split(images: np.ndarray, labels: np.ndarray, fraction: float, seed: int, label: str) -> tuple[Split, Split]:
    """A seeded split holding out ``fraction``, stratified unless a class is too small to be."""
    keep, held = stratified_split(np.arange(len(labels)), labels, fraction, derive_seed(seed, "fer", label) % 2**32)
    return (images[keep], labels[keep]), (images[held], labels[held])


def _subset(split: Split, count: int | None, seed: int, label: str) -> Split:
    keep = stratified_subset(split[1], count, seed, f"fer-{label}")
    return split[0][keep], split[1][keep]


def _stand_in(d: ExpressionData, seed: int) -> tuple[Split, Split]:
    """Classes 0–6 of Fashion-MNIST (official split) or scikit-learn's digits (seeded split), or the warped faces
    (identity split, the same images for every seed, as a dataset's are), images ``[N, H, W]``."""
    if d.source == "warped_faces":
        return warped_faces(WARPED_RENDERS_PER_FACE)
    if d.source == "fashion_mnist":
        directory = d.path or FASHION_MNIST_DIR
        parts = [load_idx_split(directory, split) for split in ("train", "t10k")]
        (x, y), (xt, yt) = ((px / 255.0, py.astype(np.int64)) for px, py in parts)
    else:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        keep = bunch.target < NUM_CLASSES
        (x, y), (xt, yt) = _split(bunch.images[keep] / 16.0, bunch.target[keep], d.test_fraction, seed, "test")
    return (x[y < NUM_CLASSES], y[y < NUM_CLASSES]), (xt[yt < NUM_CLASSES], yt[yt < NUM_CLASSES])


def _class_dirs(directory: Path) -> dict[int, Path]:
    """RAF-DB label → class folder under ``directory``; a folder that names no expression, or two folders that
    name the same one, is a DataError."""
    found: dict[int, Path] = {}
    for sub in sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = folder_label(sub.name)
        if label is None:
            names = ", ".join(sorted(k for k in FOLDER_LABELS if not k.isdigit()))
            raise DataError(
                f"{sub} is not one of the seven expressions; name class folders 1–7 (RAF-DB order) or {names}"
            )
        if label in found:
            raise DataError(f"{found[label]} and {sub} both mean {RAF_CLASSES[label]}; keep one")
        found[label] = sub
    return found


def _read_folder_split(directory: Path, d: ExpressionData, skipped: SkippedImages, need_all: bool) -> Split:
    dirs = _class_dirs(directory)
    missing = [RAF_CLASSES[k] for k in range(NUM_CLASSES) if k not in dirs]
    if need_all and missing:
        raise DataError(f"{directory} has no class folder for {', '.join(missing)}; all seven are needed to train")
    images, labels_kept, lost = read_labelled_dirs(sorted(dirs.items()), directory, d.channels, d.image_size)
    skipped.count += lost.count
    skipped.examples += lost.examples[: max(0, 5 - len(skipped.examples))]
    empty = [RAF_CLASSES[k] for k in range(NUM_CLASSES) if need_all and not (labels_kept == k).any()]
    if empty:
        raise DataError(f"{directory} has no readable images of {', '.join(empty)}; all seven are needed to train")
    return images, labels_kept


def _folder(d: ExpressionData, seed: int) -> tuple[Split, Split, dict[str, Any]]:
    """``path/train`` + ``path/test`` (or ``path`` alone, split by ``test_fraction``), images already
    ``[N, C, S, S]``."""
    root = Path(d.path or "").expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={root} is not a folder (expected {root}/train/<class>/ and {root}/test/<class>/)")
    skipped = SkippedImages()
    train_dir = root / "train" if (root / "train").is_dir() else root
    train = _read_folder_split(train_dir, d, skipped, need_all=True)
    if (root / "test").is_dir():
        test = _read_folder_split(root / "test", d, skipped, need_all=False)
        layout = "train/ and test/ folders"
    else:
        train, test = _split(*train, d.test_fraction, seed, "test")
        layout = f"one folder, {d.test_fraction:g} held out for testing"
    folders = {sub.name: RAF_CLASSES[k] for k, sub in sorted(_class_dirs(train_dir).items())}
    info = {
        "layout": layout,
        "class_folders": folders,
        "skipped_files": skipped.count,
        "skipped_examples": skipped.examples,
    }
    return train, test, info


def load_expressions(cfg: FERConfig) -> ExpressionSplits:
    """The configured source as train/val/test :class:`ImageArrays` and a description for metrics.json."""
    d, seed = cfg.data, cfg.seed
    if d.source == "folder":
        train, test, info = _folder(d, seed)
        note = f"facial-expression images from {d.path} ({info['layout']}), classes in RAF-DB order"
        described = Path(d.path or "").expanduser() / DATA_NOTE_FILE
        if described.is_file():  # a folder that says what it holds (a written stand-in does) is reported as such
            note = f"{described.read_text().strip()} Read from {d.path} ({info['layout']})."
        info = {"source": "folder", "path": str(d.path), **info, "data_note": note}
    else:
        train, test = _stand_in(d, seed)
        info = {"source": d.source, "skipped_files": 0, "data_note": stand_in_note(d.source)}
        if d.source in STAND_IN_CLASSES:
            info["stand_in_classes"] = list(STAND_IN_CLASSES[d.source])
    train, test = _subset(train, d.train_samples, seed, "train"), _subset(test, d.test_samples, seed, "test")
    train, val = _split(*train, d.val_fraction, seed, "val")
    if d.source != "folder":
        train, val, test = ((_resize(x, d.image_size, d.channels), y) for x, y in (train, val, test))
    name = d.source
    arrays = [ImageArrays(x.astype(np.float32), y.astype(np.int64), NUM_CLASSES, name) for x, y in (train, val, test)]
    info.update(
        image_size=d.image_size,
        channels=d.channels,
        classes=list(RAF_CLASSES),
        sizes={part: len(a) for part, a in zip(("train", "val", "test"), arrays, strict=True)},
        train_class_counts=np.bincount(arrays[0].labels, minlength=NUM_CLASSES).tolist(),
        test_class_counts=np.bincount(arrays[2].labels, minlength=NUM_CLASSES).tolist(),
    )
    return ExpressionSplits(arrays[0], arrays[1], arrays[2], info)


def write_stand_in_folder(
    source: str,
    directory: str | Path,
    train_per_class: int,
    test_per_class: int,
    seed: int = 0,
    path: str | None = None,
) -> dict[str, list[int]]:
    """Write a stand-in's classes 0–6 as an expression folder in RAF-DB layout (``train/1..7/`` and ``test/1..7/``,
    grey 8-bit PNGs at the source's own size), up to ``*_per_class`` images per class chosen by ``seed``; ``path`` is
    the IDX directory of ``fashion_mnist`` (default: the Debian package's).

    Why: the folder route (``data.source=folder``) is how real expression data come in, and this gives it a labelled
    dataset that can be built offline, so the folder route is measured on the same source as the built-in loader.
    The folder's ``DATA_NOTE.txt`` carries the stand-in note, so a run on it never reads as expression results.
    Refuses a ``directory`` that already holds files, so nothing saved there is overwritten. Returns the images
    written per class and split."""
    from PIL import Image

    if source not in BUILT_IN_SOURCES:
        raise DataError(f"unknown stand-in {source!r}; known: {', '.join(BUILT_IN_SOURCES)}")
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise DataError(f"{root} is not empty; write the stand-in folder into a new directory")
    splits = _stand_in(ExpressionData(source=source, path=path), seed)
    written: dict[str, list[int]] = {}
    per_split = (train_per_class, test_per_class)
    for name, (images, labels), per_class in zip(("train", "test"), splits, per_split, strict=True):
        rng = np.random.default_rng(derive_seed(seed, "fer-folder", name) % 2**32)
        written[name] = []
        for label in range(NUM_CLASSES):
            own = np.flatnonzero(labels == label)
            picked = np.sort(rng.choice(own, size=min(per_class, len(own)), replace=False))
            folder = root / name / str(label + 1)
            folder.mkdir(parents=True, exist_ok=True)
            for k in picked:
                pixels = np.clip(np.rint(images[k] * 255.0), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{k:05d}.png")
            written[name].append(len(picked))
    (root / DATA_NOTE_FILE).write_text(stand_in_note(source) + "\n")
    return written
