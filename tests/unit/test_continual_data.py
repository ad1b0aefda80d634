"""Task streams' data: class orders, task splits, subsets, Fashion-MNIST's location, class folders, digit sheets."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from skimage import io as skio

from fedray.platform.data.class_folder import read_class_folders
from fedray.platform.data.digit_sheet import read_digit_sheet
from fedray.platform.data.load import load_train_test
from fedray.platform.data.tasks import class_order, per_class_subset, split_tasks
from fedray.platform.errors import ConfigError, DataError


def test_class_order_is_seeded_or_fixed():
    assert class_order(10, seed=0) == class_order(10, seed=0)
    assert class_order(10, seed=0) != class_order(10, seed=1)
    assert sorted(class_order(10, seed=3)) == list(range(10))
    assert class_order(4, 0, shuffle=False) == [0, 1, 2, 3]
    assert class_order(4, 0, fixed=[3, 1, 0, 2]) == [3, 1, 0, 2]
    with pytest.raises(ConfigError, match=r"permutation of 0\.\.3"):
        class_order(4, 0, fixed=[0, 1, 1, 2])


def test_split_tasks_and_subsets():
    assert split_tasks([4, 2, 0, 1, 3, 5], 3) == [[4, 2], [0, 1], [3, 5]]
    with pytest.raises(ConfigError, match=r"data\.tasks=4"):
        split_tasks(list(range(10)), 4)
    labels = np.repeat(np.arange(3), [5, 8, 2])
    keep = per_class_subset(labels, 4, seed=0, label="train")
    assert np.bincount(labels[keep]).tolist() == [4, 4, 2]
    assert len(per_class_subset(labels, None, 0, "train")) == 15


def test_missing_fashion_mnist_says_where_it_looked(tmp_path: Path):
    with pytest.raises(DataError, match=f"no IDX files for split 'train' in {tmp_path}"):
        load_train_test("fashion_mnist", str(tmp_path), 28, seed=0)


def test_digits_split_is_stratified_and_disjoint():
    train, test, skipped = load_train_test("digits", None, 16, seed=0, test_fraction=0.25)
    assert train.images.shape[1:] == (1, 16, 16) and skipped == 0
    assert len(test) == pytest.approx(1797 * 0.25, abs=2)
    assert set(np.unique(test.labels)) == set(range(10))


def _write_classes(root: Path, classes: dict[str, int]) -> None:
    rng = np.random.default_rng(0)
    for name, count in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(count):
            skio.imsave(root / name / f"{i}.png", (rng.random((12, 12)) * 255).astype(np.uint8), check_contrast=False)


def test_class_folders_skip_and_count_bad_files(tmp_path: Path):
    _write_classes(tmp_path, {"cat": 4, "dog": 3})
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    train, test, classes, skipped = read_class_folders(tmp_path, channels=1, size=8)
    assert classes == ["cat", "dog"] and test is None
    assert np.bincount(train.labels).tolist() == [4, 3]
    assert skipped.count == 1 and "broken.png" in skipped.examples[0]
    train, test, _ = load_train_test("folder", str(tmp_path), 8, seed=0, test_fraction=0.3)
    assert len(train) + len(test) == 7 and train.images.shape[1:] == (1, 8, 8)


def test_class_folders_with_a_split_on_disk(tmp_path: Path):
    _write_classes(tmp_path / "train", {"a": 3, "b": 3})
    _write_classes(tmp_path / "test", {"a": 2, "b": 1})
    train, test, _, _ = read_class_folders(tmp_path, channels=3, size=8)
    assert len(train) == 6 and len(test) == 3 and test.images.shape[1] == 3
    _write_classes(tmp_path / "test", {"c": 1})
    with pytest.raises(DataError, match="name different classes"):
        read_class_folders(tmp_path, 1, 8)


def test_class_folder_errors(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        read_class_folders(tmp_path / "nope", 1, 8)
    _write_classes(tmp_path, {"only": 2})
    with pytest.raises(DataError, match="at least two class folders"):
        read_class_folders(tmp_path, 1, 8)
    _write_classes(tmp_path, {"two": 1, "empty": 0})
    (tmp_path / "empty" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=f"class folders with no readable image in {tmp_path}: empty; fill or remove"):
        read_class_folders(tmp_path, 1, 8)
    shutil.rmtree(tmp_path / "empty")
    with pytest.raises(DataError, match=re.escape("classes [1] have fewer than 2 images: a stratified train/test")):
        load_train_test("folder", str(tmp_path), 8, seed=0)  # "two" holds one image


def test_digit_sheet_cells_and_labels(tmp_path: Path):
    """A 10-row sheet of 20×20 cells, three per row: row r is class r; cells come back padded to 28×28."""
    sheet = np.zeros((200, 60), dtype=np.uint8)
    for row in range(10):
        sheet[row * 20 : (row + 1) * 20] = row * 25
    skio.imsave(tmp_path / "sheet.png", sheet, check_contrast=False)
    digits, labels = read_digit_sheet(tmp_path / "sheet.png")
    assert digits.shape == (30, 28, 28)
    assert labels.tolist() == [r for r in range(10) for _ in range(3)]
    assert digits[7, 14, 14] == pytest.approx(2 * 25 / 255, abs=1e-3) and digits[7, 0, 0] == 0  # cell 7: row 2


def test_pretraining_digits_leave_out_a_digits_stream(tmp_path: Path):
    from fedray.platform.data.digit_sheet import pretraining_digits

    assert len(pretraining_digits(8, sheet=None)) == 1797
    with pytest.raises(DataError, match="no pre-training digits"):
        pretraining_digits(8, sheet=tmp_path / "absent.png", with_sklearn=False)
    sheet = np.zeros((200, 40), dtype=np.uint8)
    skio.imsave(tmp_path / "sheet.png", sheet, check_contrast=False)
    only_sheet = pretraining_digits(8, sheet=tmp_path / "sheet.png", with_sklearn=False)
    assert len(only_sheet) == 20 and only_sheet.name == "opencv-digits"
