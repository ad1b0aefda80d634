"""Composition triplets: synthesis from the built-in photographs, their invariants, folders and naive paste."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy.ndimage import binary_dilation

from fedray.platform.errors import DataError
from fedray.tasks.compose.config import ComposeData
from fedray.tasks.compose.data import (
    OBJECT_TRAIN_FRACTION,
    Triplets,
    builtin_sources,
    load_triplets,
    naive_paste,
    object_part,
    synthesize,
)


@pytest.fixture(scope="module")
def train_sources():
    return builtin_sources("train")


def _make(sources, count=12, seed=0, **overrides) -> Triplets:
    cfg = ComposeData(**{"image_size": 32, **overrides})
    return synthesize(*sources, count, cfg, np.random.default_rng(seed))


def _grown(region: np.ndarray, pixels: int) -> np.ndarray:
    """``region`` ([N, 1, S, S] in {0, 1}) grown by ``pixels`` in chessboard distance."""
    return np.stack([binary_dilation(r > 0.5, np.ones((1, 3, 3), bool), iterations=pixels) for r in region])


@pytest.mark.parametrize("size", [16, 32, 40])
def test_shapes_dtypes_and_ranges(train_sources, size):
    t = _make(train_sources, count=6, image_size=size)
    assert len(t) == 6
    for name in ("foreground", "background", "gt"):
        array = getattr(t, name)
        assert array.shape == (6, 3, size, size) and array.dtype == np.float32, name
        assert array.min() >= -1 and array.max() <= 1, name
    for name in ("fg_mask", "region"):
        array = getattr(t, name)
        assert array.shape == (6, 1, size, size) and array.dtype == np.float32, name
        assert array.min() >= 0 and array.max() <= 1, name
    assert set(np.unique(t.region)) <= {0.0, 1.0}
    assert (t.region.sum(axis=(1, 2, 3)) > 0).all() and (t.region.mean(axis=(1, 2, 3)) < 0.9).all()
    picked = t.subset(np.array([4, 1]))
    assert len(picked) == 2 and np.array_equal(picked.gt[0], t.gt[4]) and np.array_equal(picked.region[1], t.region[1])


def test_equal_seeds_give_equal_triplets_and_other_seeds_differ():
    cfg = ComposeData(train_triplets=6, test_triplets=3)
    train, test, info = load_triplets(cfg, seed=5)
    again, test_again, _ = load_triplets(cfg, seed=5)
    other, _, _ = load_triplets(cfg, seed=6)
    for name in ("foreground", "fg_mask", "background", "gt", "region"):
        assert np.array_equal(getattr(train, name), getattr(again, name)), name
        assert np.array_equal(getattr(test, name), getattr(test_again, name)), name
    assert not np.array_equal(train.gt, other.gt)
    assert info["counts"] == {"train": 6, "test": 3} and len(test) == 3
    assert not set(info["scenes"]["train"]) & set(info["scenes"]["test"])
    assert not set(info["objects"]["train"]) & set(info["scenes"]["train"] + info["scenes"]["test"])


@pytest.mark.parametrize("feather", [1.0, 2.0])
def test_ground_truth_is_the_background_outside_the_feathered_region(train_sources, feather):
    t = _make(train_sources, count=16, feather=feather)
    outside = ~_grown(t.region, math.ceil(4 * feather))
    outside = np.broadcast_to(outside, t.gt.shape)
    assert np.array_equal(t.gt[outside], t.background[outside])
    inside = np.broadcast_to(t.region > 0.5, t.gt.shape)
    change = np.abs(t.gt - t.background) * inside
    assert (change.sum(axis=(1, 2, 3)) / inside.sum(axis=(1, 2, 3)) > 0.05).all()


def test_naive_paste_changes_only_the_bounding_box_of_the_region(train_sources):
    t = _make(train_sources, count=16)
    pasted = naive_paste(t)
    assert pasted.shape == t.background.shape and pasted.dtype == np.float32
    for i in range(len(t)):
        rows, cols = np.nonzero(t.region[i, 0])
        box = np.zeros(t.region.shape[2:], bool)
        box[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1] = True
        assert np.array_equal(pasted[i][:, ~box], t.background[i][:, ~box])
        assert np.abs(pasted[i][:, box] - t.background[i][:, box]).mean() > 0.05


def test_harmonising_moves_the_object_toward_the_surrounding_colours(train_sources):
    def distance(t: Triplets) -> float:
        inside = t.region[:, 0] > 0.5
        ring = _grown(t.region, 8)[:, 0] & ~_grown(t.region, 4)[:, 0]
        gaps = [
            np.abs(t.gt[i][:, inside[i]].mean(axis=1) - t.background[i][:, ring[i]].mean(axis=1)).mean()
            for i in range(len(t))
            if ring[i].any()
        ]
        return float(np.mean(gaps))

    plain = distance(_make(train_sources, count=24, harmonise=0.0))
    matched = distance(_make(train_sources, count=24, harmonise=1.0))
    assert matched < 0.6 * plain


def test_conditioning_view_is_grey_outside_its_mask(train_sources):
    t = _make(train_sources, count=16)
    assert t.fg_mask.min() >= 0 and t.fg_mask.max() <= 1
    outside = np.broadcast_to(t.fg_mask == 0, t.foreground.shape)
    assert outside.any() and (t.foreground[outside] == 0).all()
    inside = np.broadcast_to(t.fg_mask > 0.9, t.foreground.shape)
    assert np.abs(t.foreground[inside]).mean() > 0.1
    assert (t.fg_mask.reshape(len(t), -1).max(axis=1) > 0.9).all()


def test_train_and_test_objects_come_from_disjoint_columns():
    columns = np.broadcast_to(np.arange(100, dtype=np.float32)[None, :, None], (7, 100, 3))
    train, test = object_part(columns, "train"), object_part(columns, "test")
    assert train.max() < 70 <= test.min() and train.shape[1] + test.shape[1] == 100
    with pytest.raises(ValueError):
        object_part(columns, "val")
    (train_scenes, train_objects), (test_scenes, test_objects) = builtin_sources("train"), builtin_sources("test")
    assert [n for n, _ in train_objects] == [n for n, _ in test_objects]
    for (name, left), (_, right) in zip(train_objects, test_objects, strict=True):
        width = left.shape[1] + right.shape[1]
        assert left.shape[1] == round(OBJECT_TRAIN_FRACTION * width), name
    scene_names = {n for n, _ in train_scenes + test_scenes}
    assert not scene_names & {n for n, _ in train_objects}


def test_objects_fall_back_to_scikit_image_without_opencv(tmp_path):
    scenes, objects = builtin_sources("train", opencv_dir=tmp_path)
    assert [n for n, _ in objects] == ["skimage:chelsea", "skimage:coffee", "skimage:astronaut"]
    assert not {n for n, _ in scenes} & {n for n, _ in objects} and scenes
    t = synthesize(scenes, objects, 3, ComposeData(image_size=16), np.random.default_rng(0))
    assert len(t) == 3


def _save(path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(pixels).save(path)


def _folder_triplet(split_dir, name: str, seed: int, mask: bool = False) -> np.ndarray:
    """Write one FC22k-style triplet whose gt differs from the background in a square; returns that square."""
    rng = np.random.default_rng(seed)
    background = rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)
    region = np.zeros((24, 24), bool)
    region[6:15, 8:18] = True
    gt = background.copy()
    gt[region] = (background[region].astype(int) + 128) % 256  # every channel moves by 128
    _save(split_dir / "background" / name, background)
    _save(split_dir / "foreground" / name, rng.integers(0, 256, size=(30, 20, 3), dtype=np.uint8))
    _save(split_dir / "gt" / name, gt)
    if mask:
        _save(split_dir / "mask" / name, region.astype(np.uint8) * 255)
    return region


def test_folder_triplets_skip_and_count_unusable_files(tmp_path):
    region = _folder_triplet(tmp_path / "train", "a.png", 0)
    _folder_triplet(tmp_path / "train", "b.png", 1)
    (tmp_path / "train" / "gt" / "b.png").write_bytes(b"not an image at all")
    _folder_triplet(tmp_path / "train", "c.png", 2)
    (tmp_path / "train" / "foreground" / "c.png").unlink()
    test_region = _folder_triplet(tmp_path / "test", "d.png", 3, mask=True)
    cfg = ComposeData(source="folder", path=str(tmp_path), image_size=24)
    train, test, info = load_triplets(cfg, seed=0)
    assert (len(train), len(test)) == (1, 1)
    assert info["skipped"] == 2 and info["counts"] == {"train": 1, "test": 1}
    assert any(e.startswith("train/b: gt/b.png: ") for e in info["skipped_examples"])
    assert "train/c: missing in foreground/" in info["skipped_examples"]
    assert np.array_equal(train.region[0, 0] > 0.5, region) and np.array_equal(test.region[0, 0] > 0.5, test_region)
    assert np.array_equal(train.fg_mask, np.ones_like(train.fg_mask)) and train.foreground.shape == (1, 3, 24, 24)
    assert train.gt.min() >= -1 and train.gt.max() <= 1
    pasted = naive_paste(train)
    assert np.array_equal(pasted[0][:, ~region], train.background[0][:, ~region])


def test_missing_or_empty_folders_are_data_errors(tmp_path):
    cfg = ComposeData(source="folder", path=str(tmp_path / "nowhere"), image_size=16)
    with pytest.raises(DataError, match="nowhere/train"):
        load_triplets(cfg, seed=0)
    for folder in ("background", "foreground", "gt"):
        (tmp_path / "empty" / "train" / folder).mkdir(parents=True)
    cfg = ComposeData(source="folder", path=str(tmp_path / "empty"), image_size=16)
    with pytest.raises(DataError, match=r"no usable triplets in .*empty/train"):
        load_triplets(cfg, seed=0)
