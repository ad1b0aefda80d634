import numpy as np
import pytest

from fedray.platform.data.config import FAMILIES, ForgeryConfig
from fedray.platform.data.forgery import (
    _jpeg_quantise,
    artifact,
    draw_samples,
    ellipse_mask,
    forgery_clients,
    load_lfw_faces,
    self_blend,
)
from fedray.platform.errors import ConfigError

FACES = load_lfw_faces(32)
CFG = ForgeryConfig()


def test_lfw_faces_are_the_hundred_real_faces():
    assert FACES.shape == (100, 32, 32) and FACES.dtype == np.float32
    assert FACES.min() >= 0 and FACES.max() <= 1


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_changes_the_face_and_stays_in_range(family):
    rng = np.random.default_rng(0)
    face = FACES[0].astype(np.float64)
    out = artifact(face, family, rng, CFG)
    assert out.shape == face.shape and out.min() >= 0 and out.max() <= 1
    assert np.abs(out - face).mean() > 0.005


def test_blur_lowers_and_sharpen_raises_high_frequencies():
    face = FACES[3].astype(np.float64)

    def detail(img):
        return np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean()

    assert detail(artifact(face, "blur", np.random.default_rng(1), CFG)) < detail(face)
    assert detail(artifact(face, "sharpen", np.random.default_rng(1), CFG)) > detail(face)


def test_jpeg_quantisation_is_blockwise_and_stronger_at_low_quality():
    face = FACES[5].astype(np.float64)
    low, high = _jpeg_quantise(face, 5), _jpeg_quantise(face, 90)
    assert np.abs(low - face).mean() > np.abs(high - face).mean()
    flat = np.full((16, 16), 0.5)
    np.testing.assert_allclose(_jpeg_quantise(flat, 10), flat, atol=1 / 255)  # a flat block survives quantisation


def test_blend_stays_inside_the_soft_face_mask():
    rng = np.random.default_rng(2)
    mask = ellipse_mask((32, 32), rng)
    assert mask[16, 16] > 0.9 and mask[0, 0] < 0.05
    face = FACES[1].astype(np.float64)
    fake = self_blend(face, "colour", np.random.default_rng(3), CFG)
    assert np.abs(fake - face)[:2, :2].max() < 0.05  # corners untouched
    assert np.abs(fake - face)[12:20, 12:20].mean() > 0.01


def test_draws_are_balanced_deterministic_and_labelled():
    x, y, fam = draw_samples(FACES[:8], "jpeg", 10, CFG, 0, "a")
    x2, _, _ = draw_samples(FACES[:8], "jpeg", 10, CFG, 0, "a")
    x3, _, _ = draw_samples(FACES[:8], "jpeg", 10, CFG, 0, "b")
    assert x.shape == (20, 1, 32, 32) and y.tolist() == [0] * 10 + [1] * 10
    assert (fam[:10] == -1).all() and (fam[10:] == FAMILIES.index("jpeg")).all()
    np.testing.assert_array_equal(x, x2)
    assert not np.array_equal(x, x3)


def test_clients_get_disjoint_faces_and_one_family_each():
    small = ForgeryConfig(train_per_class=4, test_per_class=6)
    clients = forgery_clients(small, 5, 32, seed=0)
    assert [c.sampler.family for c in clients] == list(FAMILIES)
    seen = [{f.tobytes() for f in c.sampler.faces} for c in clients]
    assert all(not (a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    assert clients[0].test_images.shape == (12, 1, 32, 32) and clients[0].num_train == 8
    x, y = clients[2].sampler(3, 1)
    assert x.shape == (8, 1, 32, 32) and y.sum() == 4
    assert not np.array_equal(x, clients[2].sampler(3, 0)[0])  # a fresh draw every epoch


def test_bad_forgery_settings():
    with pytest.raises(ConfigError, match="unknown \\['gan'\\]"):
        forgery_clients(ForgeryConfig(families=["gan"]), 2, 32, 0)
    with pytest.raises(ConfigError, match="needs more than the 100 LFW faces"):
        forgery_clients(ForgeryConfig(faces_per_client=30), 4, 32, 0)
