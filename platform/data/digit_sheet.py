"""Handwritten digits for pre-training: OpenCV's ``digits.png`` sheet (5,000 digits, Debian ``opencv-doc``) and
scikit-learn's 1,797 digits, both resized to one square size in [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage import io as skio
from skimage.transform import resize

from fedray.platform.data.arrays import ImageArrays
from fedray.platform.errors import DataError

SHEET_CELL = 20  # pixels per digit; 100 digits a row, five rows per class, classes 0..9 top to bottom


def read_digit_sheet(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The 20×20 digits of an OpenCV digit sheet (padded to 28×28 as MNIST pads its 20×20 digits) and labels."""
    sheet = skio.imread(path, as_gray=True).astype(np.float32)
    if sheet.max() > 1:
        sheet /= 255.0
    rows, cols = sheet.shape[0] // SHEET_CELL, sheet.shape[1] // SHEET_CELL
    cells = sheet[: rows * SHEET_CELL, : cols * SHEET_CELL].reshape(rows, SHEET_CELL, cols, SHEET_CELL)
    digits = cells.transpose(0, 2, 1, 3).reshape(rows * cols, SHEET_CELL, SHEET_CELL)
    labels = np.arange(rows * cols) // (rows * cols // 10)
    return np.pad(digits, ((0, 0), (4, 4), (4, 4))), labels.astype(np.int64)


def pretraining_digits(size: int, sheet: str | Path | None, with_sklearn: bool = True) -> ImageArrays:
    """The OpenCV sheet when it exists, plus scikit-learn's digits unless ``with_sklearn`` is off (a stream made of
    those very digits must not have seen them, test split included, in pre-training), as ``[N, 1, size, size]``."""
    from sklearn.datasets import load_digits

    parts = []
    if with_sklearn:
        bunch = load_digits()
        parts.append((bunch.images / 16.0, bunch.target))
    if sheet is not None and Path(sheet).is_file():
        parts.append(read_digit_sheet(sheet))
    if not parts:
        raise DataError(
            f"no pre-training digits: {sheet} is missing (Debian's opencv-doc installs it) and scikit-learn's digits "
            "are the stream itself; set pretrain.digit_sheet, pretrain.checkpoint, or pretrain.enabled=false"
        )
    images = np.concatenate([resize(x, (len(x), size, size), order=1, anti_aliasing=True) for x, _ in parts])
    labels = np.concatenate([y for _, y in parts])
    name = "+".join(
        n for n, on in (("sklearn-digits", with_sklearn), ("opencv-digits", len(parts) > with_sklearn)) if on
    )
    return ImageArrays(images[:, None].astype(np.float32), labels.astype(np.int64), 10, name)
