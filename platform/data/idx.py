"""IDX files (the MNIST / Fashion-MNIST format): big-endian header, then uint8 data, optionally gzip-compressed."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fedray.platform.errors import DataError

IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def read_idx(path: Path) -> np.ndarray:
    """Images ``[N, rows, cols]`` or labels ``[N]`` as uint8; a malformed file is a one-line :class:`DataError`."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read IDX file {path}: {exc}") from None
    if len(raw) < 8:
        raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes)")
    magic, count = np.frombuffer(raw[:8], dtype=">u4")
    if magic == IMAGE_MAGIC:
        if len(raw) < 16:
            raise DataError(f"IDX file {path} is truncated ({len(raw)} bytes)")
        rows, cols = np.frombuffer(raw[8:16], dtype=">u4")
        shape, offset = (int(count), int(rows), int(cols)), 16
    elif magic == LABEL_MAGIC:
        shape, offset = (int(count),), 8
    else:
        raise DataError(f"{path} is not an IDX image or label file (magic {int(magic)})")
    expected = int(np.prod(shape))
    data = np.frombuffer(raw, dtype=np.uint8, offset=offset)
    if data.size != expected:
        raise DataError(f"IDX file {path} holds {data.size} values, its header promises {expected}")
    return data.reshape(shape)


def load_idx_split(directory: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(images, labels)`` of ``split`` ('train' or 't10k') from a directory of IDX files."""
    directory = Path(directory)
    images = _find(directory, f"{split}-images-idx3-ubyte")
    labels = _find(directory, f"{split}-labels-idx1-ubyte")
    if images is None or labels is None:
        raise DataError(
            f"no IDX files for split '{split}' in {directory} (looked for {split}-images-idx3-ubyte[.gz] and "
            f"{split}-labels-idx1-ubyte[.gz]); install Debian's dataset-fashion-mnist or set data.path"
        )
    x, y = read_idx(images), read_idx(labels)
    if len(x) != len(y):
        raise DataError(f"{images} has {len(x)} images but {labels} has {len(y)} labels")
    return x, y
