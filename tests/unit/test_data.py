import gzip

import numpy as np
import pytest

from fedray.platform.data.config import DataConfig
from fedray.platform.data.idx import IMAGE_MAGIC, LABEL_MAGIC, read_idx
from fedray.platform.data.load import load_dataset
from fedray.platform.errors import DataError


def _write_idx(directory, split, images, labels, compress):
    opener = gzip.open if compress else open
    suffix = ".gz" if compress else ""
    header = np.array([IMAGE_MAGIC, len(images), *images.shape[1:]], dtype=">u4").tobytes()
    with opener(directory / f"{split}-images-idx3-ubyte{suffix}", "wb") as f:
        f.write(header + images.astype(np.uint8).tobytes())
    with opener(directory / f"{split}-labels-idx1-ubyte{suffix}", "wb") as f:
        f.write(np.array([LABEL_MAGIC, len(labels)], dtype=">u4").tobytes() + labels.astype(np.uint8).tobytes())


def test_digits_are_real_images_resized_to_the_requested_size():
    data = load_dataset(DataConfig(name="digits", image_size=12), seed=0)
    assert data.images.shape == (1797, 1, 12, 12)
    assert data.images.dtype == np.float32 and data.images.min() >= 0 and data.images.max() <= 1
    assert data.num_classes == 10 and np.bincount(data.labels).min() > 150


def test_stratified_subsample_keeps_every_class():
    data = load_dataset(DataConfig(name="digits", max_samples=200), seed=0)
    assert len(data) == 200 and len(np.unique(data.labels)) == 10
    shares = np.bincount(data.labels) / 200
    assert np.abs(shares - np.bincount(load_dataset(DataConfig(name="digits"), seed=0).labels) / 1797).max() < 0.01


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_any_idx_directory(tmp_path, compress):
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path, split, rng.integers(0, 256, (n, 28, 28)), rng.integers(0, 10, n), compress)
    data = load_dataset(DataConfig(name="fashion_mnist", path=str(tmp_path), image_size=14), seed=0)
    assert data.images.shape == (40, 1, 14, 14) and data.labels.shape == (40,)


def test_missing_idx_directory_says_where_it_looked(tmp_path):
    with pytest.raises(DataError, match=f"no IDX files for split 'train' in {tmp_path}"):
        load_dataset(DataConfig(name="fashion_mnist", path=str(tmp_path)), seed=0)


def test_corrupt_idx_files(tmp_path):
    bad = tmp_path / "x-images-idx3-ubyte"
    bad.write_bytes(np.array([1234, 1], dtype=">u4").tobytes())
    with pytest.raises(DataError, match="not an IDX image or label file"):
        read_idx(bad)
    short = tmp_path / "y-images-idx3-ubyte"
    short.write_bytes(np.array([IMAGE_MAGIC, 5, 28, 28], dtype=">u4").tobytes() + b"\x00" * 10)
    with pytest.raises(DataError, match="holds 10 values, its header promises 3920"):
        read_idx(short)
    gz = tmp_path / "z-images-idx3-ubyte.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="cannot read IDX file"):
        read_idx(gz)


def test_synthetic_is_deterministic():
    cfg = DataConfig(name="synthetic", image_size=8, synthetic_samples=50)
    a, b = load_dataset(cfg, seed=1), load_dataset(cfg, seed=1)
    assert a.images.shape == (50, 3, 8, 8)
    np.testing.assert_array_equal(a.images, b.images)
