"""The warped-faces expression stand-in: each prototype moves the landmarks its action units name, the way they name,
and only there; identities never cross from training to test; runs and written folders say what the data are."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedray.platform.config import load_config
from fedray.tasks.fer import data as fer_data
from fedray.tasks.fer import warped_faces as wf
from fedray.tasks.fer.classes import NEUTRAL, RAF_CLASSES
from fedray.tasks.fer.config import FERConfig
from fedray.tasks.fer.data import load_expressions, write_stand_in_folder

SIZE = 64
NO_JITTER = np.zeros((len(wf.LANDMARKS), 2))
LABEL = {name: k for k, name in enumerate(RAF_CLASSES)}


def _field_at(label: int, landmark: str) -> np.ndarray:
    """The (row, col) displacement in pixels at a landmark's pixel, full intensity, no jitter."""
    d_row, d_col = wf.displacement_field(wf.EXPRESSIONS[label], 1.0, NO_JITTER, SIZE)
    r, c = (int(v * SIZE) for v in wf.LANDMARKS[landmark])
    return np.array([d_row[r, c], d_col[r, c]])


def test_neutral_moves_nothing_and_every_other_expression_moves_something():
    for label, expression in enumerate(wf.EXPRESSIONS):
        d_row, d_col = wf.displacement_field(expression, 1.0, NO_JITTER, SIZE)
        peak = np.abs(np.stack([d_row, d_col])).max()
        assert (peak == 0) == (label == NEUTRAL), RAF_CLASSES[label]


@pytest.mark.parametrize(
    ("expression", "landmark", "row_sign", "col_sign"),  # +1: down / to the image's right
    [
        ("happiness", "l_mouth_corner", -1, -1),  # AU12: corners up and out
        ("happiness", "r_mouth_corner", -1, +1),
        ("sadness", "l_mouth_corner", +1, 0),  # AU15: corners down
        ("surprise", "l_brow_outer", -1, 0),  # AU1+2: brows up
        ("surprise", "lower_lip", +1, 0),  # AU26: jaw drop
        ("anger", "l_brow_inner", +1, +1),  # AU4: brows down and together (the left brow moves right)
        ("anger", "r_brow_inner", +1, -1),
        ("disgust", "upper_lip", -1, 0),  # AU10: upper lip raised
        ("fear", "r_mouth_corner", 0, +1),  # AU20: lips stretched sideways
    ],
)
def test_each_prototype_moves_its_landmarks_the_way_its_action_units_do(expression, landmark, row_sign, col_sign):
    d_row, d_col = _field_at(LABEL[expression], landmark)
    move_row, move_col = wf.EXPRESSIONS[LABEL[expression]].moves[landmark]
    for displacement, sign in ((d_row, row_sign), (d_col, col_sign)):  # sign 0: that axis is not what the AU names
        assert sign == 0 or np.sign(displacement) == sign
    # at the landmark itself its own move dominates (neighbours add at most a third of it)
    assert d_row == pytest.approx(move_row * SIZE, abs=abs(move_row * SIZE) / 3 + 0.2)
    assert d_col == pytest.approx(move_col * SIZE, abs=abs(move_col * SIZE) / 3 + 0.2)


def test_a_render_changes_the_face_only_around_its_landmarks():
    face = wf.load_lfw_faces(SIZE).astype(np.float64)[3]
    neutral = wf.render_expression(face, NEUTRAL, np.random.default_rng(7))
    surprise = wf.render_expression(face, LABEL["surprise"], np.random.default_rng(7))  # the same draws
    mouth = (slice(int(0.68 * SIZE), int(0.84 * SIZE)), slice(int(0.33 * SIZE), int(0.56 * SIZE)))
    assert surprise[mouth].mean() < neutral[mouth].mean() - 0.05  # the open mouth is darker
    far = (slice(int(0.9 * SIZE), SIZE), slice(0, int(0.15 * SIZE)))  # the bottom-left corner, no landmark nearby
    np.testing.assert_allclose(surprise[far], neutral[far], atol=1e-3)
    assert surprise.min() >= 0.0 and surprise.max() <= 1.0


def test_test_faces_are_never_training_faces_and_the_data_are_deterministic(monkeypatch):
    # Face i is the constant i/100: a neutral render of it stays that constant, whatever the warp.
    constant_faces = np.repeat(np.arange(100, dtype=np.float32)[:, None, None] / 100, SIZE, 1).repeat(SIZE, 2)
    monkeypatch.setattr(wf, "load_lfw_faces", lambda size: constant_faces)
    (x, y), (xt, yt) = wf.warped_faces((2, 1))
    assert x.shape == (70 * 7 * 2, SIZE, SIZE) and xt.shape == (30 * 7, SIZE, SIZE)
    assert np.bincount(y).tolist() == [140] * 7 and np.bincount(yt).tolist() == [30] * 7
    train_ids = np.unique(np.round(x[y == NEUTRAL].mean(axis=(1, 2)) * 100))
    test_ids = np.unique(np.round(xt[yt == NEUTRAL].mean(axis=(1, 2)) * 100))
    assert train_ids.tolist() == list(range(70)) and test_ids.tolist() == list(range(70, 100))
    (x2, _), _ = wf.warped_faces((2, 1))
    np.testing.assert_array_equal(x, x2)


def test_a_run_on_warped_faces_and_a_folder_written_from_them_say_what_they_are(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(fer_data, "WARPED_RENDERS_PER_FACE", (1, 1))
    cfg = load_config(FERConfig, overrides=["data.source=warped_faces", "data.image_size=32"])
    data = load_expressions(cfg)
    assert data.info["data_note"] == wf.DATA_NOTE and "NOT FER DATA" in wf.DATA_NOTE
    assert data.train.images.shape[1:] == (1, 32, 32) and len(data.train) + len(data.val) == 490
    assert len(data.test) == 210 and "stand_in_classes" not in data.info
    written = write_stand_in_folder("warped_faces", tmp_path / "faces", train_per_class=3, test_per_class=2)
    assert written == {"train": [3] * 7, "test": [2] * 7}
    assert (tmp_path / "faces" / "DATA_NOTE.txt").read_text().strip() == wf.DATA_NOTE
