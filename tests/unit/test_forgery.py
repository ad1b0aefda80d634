import re

import numpy as np
import pytest
from skimage import io

from fedray.platform.data.config import FAMILIES, DataConfig, ForgeryConfig
from fedray.platform.data.federated import federated_data
from fedray.platform.data.forgery import (
    _jpeg_quantise,
    artifact,
    draw_samples,
    ellipse_mask,
    forgery_clients,
    forgery_faces,
    load_lfw_faces,
    real_count,
    self_blend,
)
from fedray.platform.errors import ConfigError, DataError

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


SMALL = {"train_per_class": 10, "test_per_class": 10, "faces_per_client": 8, "test_faces": 2}


def test_real_count_keeps_a_tenth_of_each_class():
    assert [real_count(s, 20) for s in (0.0, 0.33, 0.5, 1.0)] == [2, 7, 10, 18]
    assert real_count(0.0, 2) == 1 and real_count(1.0, 2) == 1
    assert real_count(0.5, 1024) == 512


def test_family_split_is_the_default_and_ignores_label_alpha():
    assert ForgeryConfig().split == "family"
    a = forgery_clients(ForgeryConfig(**SMALL), 5, 32, seed=0)
    b = forgery_clients(ForgeryConfig(**SMALL, split="family", label_alpha=0.01), 5, 32, seed=0)
    for k, (x, y) in enumerate(zip(a, b, strict=True)):
        np.testing.assert_array_equal(x.test_images, y.test_images)
        assert x.test_labels.tolist() == [0] * 10 + [1] * 10 and x.sampler.family == FAMILIES[k]
        drawn, labels = x.sampler(1, 0)  # the balanced draw of a single family, as draw_samples has always made
        expected, _, _ = draw_samples(
            x.sampler.faces, FAMILIES[k], 10, x.sampler.cfg, 0, "client", k, "round", 1, "epoch", 0
        )
        np.testing.assert_array_equal(drawn, expected)
        assert labels.sum() == 10


def test_dirichlet_split_skews_labels_and_mixes_families():
    clients = forgery_clients(ForgeryConfig(**SMALL, split="dirichlet", label_alpha=0.3), 5, 32, seed=0)
    fake_shares = [c.test_labels.mean() for c in clients]
    assert max(fake_shares) - min(fake_shares) > 0.3
    assert all(0.1 <= share <= 0.9 for share in fake_shares)  # both classes always present
    for c in clients:
        assert c.sampler.family == tuple(FAMILIES) and c.sampler.random_family
        assert c.test_labels.tolist() == sorted(c.test_labels.tolist()) and len(c.test_labels) == 20
        _, labels = c.sampler(0, 0)
        assert len(labels) == c.num_train == 20 and labels.mean() == c.test_labels.mean()  # one share, train and test
    _, _, fam = draw_samples(FACES[:4], tuple(FAMILIES), 20, CFG, 0, "x", num_real=5, random_family=True)
    assert (fam[:5] == -1).all() and len(set(fam[5:].tolist())) >= 4  # fakes from many families
    assert fam[5:].tolist() != [i % len(FAMILIES) for i in range(5, 40)]  # drawn at random, not in turn


def test_mixed_split_has_one_family_per_client_and_label_skew():
    clients = forgery_clients(ForgeryConfig(**SMALL, split="mixed", label_alpha=0.3), 5, 32, seed=0)
    assert [c.sampler.family for c in clients] == list(FAMILIES)
    assert not any(c.sampler.random_family for c in clients)
    assert len({c.test_labels.mean() for c in clients}) > 1


def test_label_skew_is_deterministic_by_seed():
    cfg = ForgeryConfig(**SMALL, split="dirichlet")
    a, b, c = (forgery_clients(cfg, 4, 32, seed=s) for s in (7, 7, 8))
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.test_images, y.test_images)
        np.testing.assert_array_equal(x.sampler(2, 1)[0], y.sampler(2, 1)[0])
    assert [x.sampler.real_share for x in a] != [x.sampler.real_share for x in c]
    with pytest.raises(ConfigError, match=r"these must be positive: data\.forgery\.label_alpha=0"):
        forgery_clients(ForgeryConfig(**SMALL, split="mixed", label_alpha=0), 2, 32, 0)


def _faces_dir(root, count):
    rng = np.random.default_rng(1)
    for i in range(count):
        path = root / ("a/b" if i % 2 else "") / f"face{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        io.imsave(path, rng.integers(0, 256, (20, 20, 3), dtype=np.uint8), check_contrast=False)
    (root / "broken.jpg").write_bytes(rng.bytes(200))
    return root


def test_faces_come_from_a_folder_and_unreadable_ones_are_counted(tmp_path):
    small = {"faces_per_client": 3, "test_faces": 1, "train_per_class": 2, "test_per_class": 2}
    cfg = ForgeryConfig(faces_dir=str(_faces_dir(tmp_path, 6)), **small)
    faces, skipped = forgery_faces(cfg, 16)
    assert faces.shape == (6, 16, 16) and faces.dtype == np.float32 and faces.min() >= 0 and faces.max() <= 1
    assert skipped.count == 1 and skipped.examples[0].startswith("broken.jpg: ")
    data = federated_data(DataConfig(name="forgery", image_size=16, forgery=cfg), num_clients=2, seed=0)
    assert data.skipped_images == 1 and data.skipped_examples == skipped.examples
    folder_faces = {f.tobytes() for f in faces}
    assert all(f.tobytes() in folder_faces for c in data.clients for f in c.sampler.faces)


def test_too_few_folder_faces_name_both_numbers(tmp_path):
    cfg = ForgeryConfig(faces_dir=str(_faces_dir(tmp_path, 6)), faces_per_client=3, test_faces=1)
    message = "holds 6 readable faces; 3 clients × data.forgery.faces_per_client=3 need 9"
    with pytest.raises(DataError, match=re.escape(message)):
        federated_data(DataConfig(name="forgery", image_size=16, forgery=cfg), num_clients=3, seed=0)
    with pytest.raises(DataError, match="is not a directory"):
        forgery_faces(ForgeryConfig(faces_dir=str(tmp_path / "nowhere")), 16)
