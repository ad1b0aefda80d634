"""Load a dataset named in a :class:`DataConfig` as :class:`ImageArrays`."""

from __future__ import annotations

import numpy as np
from skimage.transform import resize
from sklearn.model_selection import train_test_split

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.data.config import DataConfig
from fedray.platform.data.idx import load_idx_split
from fedray.platform.errors import DataError
from fedray.platform.seeding import derive_seed, numpy_rng

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    """``[N, H, W]`` → ``[N, size, size]`` with anti-aliased interpolation (scikit-image)."""
    if images.shape[1:] == (size, size):
        return images
    return resize(images, (len(images), size, size), order=1, anti_aliasing=True, preserve_range=True)


def stratified_subset(labels: np.ndarray, count: int | None, seed: int, label: str = "subset") -> np.ndarray:
    """Sorted indices of ``count`` samples, each class keeping its share (scikit-learn's stratified split, seeded by
    ``seed`` and ``label``); all of them for None or a count at least the size."""
    if count is None or count >= len(labels):
        return np.arange(len(labels))
    keep, _ = train_test_split(
        np.arange(len(labels)), train_size=count, stratify=labels, random_state=derive_seed(seed, label) % 2**32
    )
    return np.sort(keep)


def stratified_split(
    indices: np.ndarray, labels: np.ndarray, fraction: float, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(kept, held_out)`` indices with ``fraction`` held out, stratified by ``labels`` (one per index) unless
    a class is too small to be (a single sample, or fewer held-out slots than classes)."""
    try:
        keep, held = train_test_split(indices, test_size=fraction, stratify=labels, random_state=random_state)
    except ValueError:
        keep, held = train_test_split(indices, test_size=fraction, random_state=random_state)
    return np.sort(keep), np.sort(held)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images / 16.0, bunch.target


def _fashion_mnist(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    directory = path or FASHION_MNIST_DIR
    x_train, y_train = load_idx_split(directory, "train")
    x_test, y_test = load_idx_split(directory, "t10k")
    return np.concatenate([x_train, x_test]) / 255.0, np.concatenate([y_train, y_test])


def _synthetic(cfg: DataConfig, seed: int) -> ImageArrays:
    """Class means plus noise: learnable, yet nothing but a stand-in of the right shape for timing runs."""
    rng = numpy_rng(seed, "synthetic")
    shape = (cfg.synthetic_channels, cfg.image_size, cfg.image_size)
    means = rng.uniform(0.2, 0.8, size=(cfg.synthetic_classes, *shape))
    labels = rng.integers(0, cfg.synthetic_classes, size=cfg.synthetic_samples)
    images = np.clip(means[labels] + rng.normal(0, 0.25, size=(len(labels), *shape)), 0, 1)
    return ImageArrays(images.astype(np.float32), labels.astype(np.int64), cfg.synthetic_classes, "synthetic")


def load_dataset(cfg: DataConfig, seed: int) -> ImageArrays:
    """The dataset ``cfg.name`` resized to ``cfg.image_size`` (and subsampled to ``cfg.max_samples``)."""
    if cfg.image_size < 1:
        raise DataError(f"data.image_size must be positive, got {cfg.image_size}")
    if cfg.name == "synthetic":
        return _synthetic(cfg, seed)
    if cfg.name == "digits":
        images, labels = _digits()
    elif cfg.name == "fashion_mnist":
        images, labels = _fashion_mnist(cfg.path)
    else:  # the schema's Literal makes this unreachable from a validated config
        raise DataError(f"unknown dataset {cfg.name!r}")
    if cfg.max_samples is not None:
        keep = stratified_subset(labels, cfg.max_samples, seed)
        images, labels = images[keep], labels[keep]
    images = _resize(images.astype(np.float32), cfg.image_size)[:, None].astype(np.float32)
    return ImageArrays(images, labels.astype(np.int64), int(labels.max()) + 1, cfg.name)


def _split_arrays(images: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int):
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) and counts.min() < 2:
        scarce = [int(c) for c in classes[counts < 2]]
        raise DataError(f"classes {scarce} have fewer than 2 images: a stratified train/test split needs 2 of each")
    try:
        train, test = train_test_split(
            np.arange(len(labels)),
            test_size=test_fraction,
            stratify=labels,
            random_state=derive_seed(seed, "split") % 2**32,
        )
    except ValueError as error:  # a test fraction too small (or large) to hold every class
        raise DataError(f"cannot split {len(labels)} images of {len(classes)} classes: {error}") from None
    return (images[np.sort(train)], labels[np.sort(train)]), (images[np.sort(test)], labels[np.sort(test)])


def load_train_test(
    name: str, path: str | None, image_size: int, seed: int, test_fraction: float = 0.2, channels: int = 1
) -> tuple[ImageArrays, ImageArrays, int]:
    """``(train, test, skipped images)`` of a labelled dataset at ``image_size`` pixels.

    ``fashion_mnist`` keeps its official 60,000/10,000 split; ``digits`` (scikit-learn) and a ``folder`` of class
    folders without a ``train``/``test`` split on disk are split by ``seed``, stratified, ``test_fraction`` held out.
    """
    if not 0 < test_fraction < 1:
        raise DataError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    skipped = 0
    if name == "fashion_mnist":
        directory = path or FASHION_MNIST_DIR
        train = load_idx_split(directory, "train")
        test = load_idx_split(directory, "t10k")
        train, test = (train[0] / 255.0, train[1]), (test[0] / 255.0, test[1])
    elif name == "digits":
        train, test = _split_arrays(*_digits(), test_fraction, seed)
    elif name == "folder":
        from fedray.platform.data.class_folder import read_class_folders

        if path is None:
            raise DataError("data.name=folder needs data.path (a folder of class folders)")
        train_arr, test_arr, _, skipped_images = read_class_folders(path, channels, image_size)
        skipped = skipped_images.count
        if test_arr is None:
            (x, y), (xt, yt) = _split_arrays(train_arr.images, train_arr.labels, test_fraction, seed)
            train_arr = ImageArrays(x, y, train_arr.num_classes, "folder")
            test_arr = ImageArrays(xt, yt, train_arr.num_classes, "folder")
        return train_arr, test_arr, skipped
    else:
        raise DataError(f"unknown labelled dataset {name!r}; choose fashion_mnist, digits or folder")
    num_classes = int(max(train[1].max(), test[1].max())) + 1
    arrays = [
        ImageArrays(
            _resize(x.astype(np.float32), image_size)[:, None].astype(np.float32), y.astype(np.int64), num_classes, name
        )
        for x, y in (train, test)
    ]
    return arrays[0], arrays[1], skipped
