import dataclasses
import math
import os
import re

import numpy as np
import pytest
from skimage import io

from fedray.platform.data.config import DataConfig, FolderConfig
from fedray.platform.data.federated import federated_data, silo_data
from fedray.platform.data.folder import client_order, find_images, read_image, read_images
from fedray.platform.data.silo_cache import CACHE_FILE, cached_silo_data
from fedray.platform.errors import ConfigError, DataError


def _value(i):
    """Sample ``i`` is a flat grey image of this 8-bit value, so its identity survives resizing."""
    return 10 + 4 * i


def _write(path, i, ext=".png"):
    path = path.with_suffix(ext)
    path.parent.mkdir(parents=True, exist_ok=True)
    io.imsave(path, np.full((12, 10), _value(i), dtype=np.uint8), check_contrast=False)
    return path


def _ids(images):
    """The sample ids of flat grey images (inverse of ``_value``)."""
    return np.rint((images.reshape(len(images), -1).mean(axis=1) * 255 - 10) / 4).astype(int)


def _corrupt(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(0).bytes(256))


def _metadata_tree(root):
    """Clients '10' and '2' with 12 images each (half fake, groups a/b alternating), and a corrupt fake of '2'."""
    rows, expected = ["path,label,client,method,group"], {}
    for i in range(24):
        client, fake = ("2", "10")[i // 12], i % 2 == 1
        group = "ab"[(i // 2) % 2]
        if i == 23:  # not under real/ or fake/: its label comes from the column
            rel, label_cell = "extra/x23.png", "fake"
        else:
            rel, label_cell = f"{'fake' if fake else 'real'}/{client}/x{i}.png", ("1" if fake and i % 4 == 1 else "")
        _write(root / rel, i)
        rows.append(f"{rel},{label_cell},{client},{'sbi' if fake else ''},{group}")
        expected[i] = (int(fake), client, group)
    _corrupt(root / "fake" / "broken.png")
    rows.append("fake/broken.png,,2,sbi,a")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return expected


def test_metadata_sets_labels_clients_and_groups_and_corrupt_images_are_skipped(tmp_path):
    expected = _metadata_tree(tmp_path)
    cfg = DataConfig(name="folder", path=str(tmp_path), image_size=6, test_fraction=0.25, folder=FolderConfig(1))
    data = federated_data(cfg, num_clients=2, seed=0)
    assert data.skipped_images == 1 and len(data.skipped_examples) == 1
    assert data.skipped_examples[0].startswith("fake/broken.png: ")
    assert (data.in_channels, data.num_classes, data.name) == (1, 2, "folder")
    for client, name in zip(data.clients, ("2", "10"), strict=True):  # numeric order: 2 before 10
        assert client.train_images.shape[1:] == (1, 6, 6) and client.train_images.dtype == np.float32
        train, test = _ids(client.train_images), _ids(client.test_images)
        assert sorted([*train, *test]) == [i for i, e in expected.items() if e[1] == name]
        assert len(test) == math.ceil(0.25 * 12)
        assert client.train_labels.tolist() == [expected[i][0] for i in train]
        assert client.test_labels.tolist() == [expected[i][0] for i in test]
        assert set(client.test_labels.tolist()) == {0, 1}  # stratified
        assert client.test_groups.tolist() == [expected[i][2] for i in test]


def test_client_count_must_match_the_metadata(tmp_path):
    _metadata_tree(tmp_path)
    cfg = DataConfig(name="folder", path=str(tmp_path), image_size=6)
    with pytest.raises(ConfigError, match=re.escape("names 2 clients but clients.num_clients=3")) as info:
        federated_data(cfg, num_clients=3, seed=0)
    assert "\n" not in str(info.value)


def test_folder_without_metadata_is_split_by_dirichlet(tmp_path):
    for i in range(60):
        kind = "real" if i < 30 else "fake"
        sub = tmp_path / kind / ("deep/er" if i % 3 == 0 else "")
        _write(sub / f"s{i}", i, ext=(".PNG", ".bmp", ".tiff")[i % 3])
    _write(tmp_path / "other" / "ignored", 61)  # neither real/ nor fake/
    (tmp_path / "real" / "notes.txt").write_text("not an image, not counted")
    cfg = DataConfig(name="folder", path=str(tmp_path), image_size=5, alpha=0.3, min_client_samples=6)
    data = federated_data(cfg, num_clients=3, seed=1)
    assert data.skipped_images == 0 and data.in_channels == 3
    ids = [np.concatenate([_ids(c.train_images), _ids(c.test_images)]) for c in data.clients]
    assert sorted(np.concatenate(ids).tolist()) == list(range(60))  # every image once, ignored ones nowhere
    for client in data.clients:
        assert client.train_labels.tolist() == [int(i >= 30) for i in _ids(client.train_images)]
        assert client.test_labels.tolist() == [int(i >= 30) for i in _ids(client.test_images)]
        assert client.test_groups is None
    shares = [np.concatenate([c.train_labels, c.test_labels]).mean() for c in data.clients]
    assert max(shares) - min(shares) > 0.2  # label skew across clients
    again = federated_data(cfg, num_clients=3, seed=1)
    for a, b in zip(data.clients, again.clients, strict=True):
        np.testing.assert_array_equal(a.train_images, b.train_images)
        np.testing.assert_array_equal(a.test_labels, b.test_labels)


def test_metadata_without_client_column_lists_the_samples_and_missing_files_are_skipped(tmp_path):
    for i in range(20):
        _write(tmp_path / ("real" if i < 10 else "fake") / f"s{i}", i)
    listed = [f"{'real' if i < 10 else 'fake'}/s{i}.png" for i in range(0, 20, 2)]
    (tmp_path / "samples.csv").write_text("path\n" + "\n".join([*listed, "real/gone.png"]) + "\n")
    cfg = DataConfig(
        name="folder", path=str(tmp_path), image_size=4, partition="iid", folder=FolderConfig(1, "samples.csv")
    )
    data = federated_data(cfg, num_clients=2, seed=0)
    assert data.skipped_images == 1 and data.skipped_examples == ["real/gone.png: no such file"]
    ids = sorted(i for c in data.clients for i in [*_ids(c.train_images), *_ids(c.test_images)])
    assert ids == list(range(0, 20, 2)) and [len(c.train_labels) + len(c.test_labels) for c in data.clients] == [5, 5]


@pytest.mark.parametrize(
    ("metadata", "error", "message"),
    [
        (None, DataError, "is not a directory"),
        ("file,label\nreal/a.png,0\n", DataError, "has no 'path' column"),
        ("path,label\nreal/a.png,maybe\n", DataError, "line 2 has label 'maybe'; use 0/1 or real/fake"),
        ("path\nelsewhere/a.png\n", DataError, "line 2: no label, and 'elsewhere/a.png' is not under real/ or fake/"),
        ("path,client\nreal/a.png,\n", DataError, "line 2 has no client"),
        ("path\n", DataError, "metadata.csv lists no images"),
        ("path,label,label\nreal/a.png,0,0\n", DataError, "names the columns label more than once"),
        ("path\nreal/a.png\nfake/b.png\nreal/a.png\n", DataError, "line 4 lists 'real/a.png' again (first on line 2)"),
        ("path,label\nreal/a.png,0\n./real/a.png,1\n", DataError, "line 3 lists './real/a.png' again"),
        ("path,label\n../outside/a.png,0\n", DataError, "line 2: '../outside/a.png' is not inside"),
        ("path,label\n/etc/a.png,0\n", DataError, "line 2: '/etc/a.png' is not inside"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, metadata, error, message):
    root = tmp_path / "data"
    if metadata is not None:
        root.mkdir()
        (root / "metadata.csv").write_text(metadata)
    with pytest.raises(error, match=re.escape(message)) as info:
        federated_data(DataConfig(name="folder", path=str(root)), num_clients=2, seed=0)
    assert "\n" not in str(info.value)


def test_folders_without_both_classes_or_path_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("needs data.path")):
        federated_data(DataConfig(name="folder"), 2, 0)
    (tmp_path / "real").mkdir()
    with pytest.raises(DataError, match="hold no images"):
        federated_data(DataConfig(name="folder", path=str(tmp_path)), 2, 0)
    for i in range(4):
        _write(tmp_path / "real" / f"r{i}", i)
    _corrupt(tmp_path / "fake" / "f.png")
    with pytest.raises(DataError, match="no readable fake images"):
        federated_data(DataConfig(name="folder", path=str(tmp_path)), 2, 0)
    with pytest.raises(ConfigError, match="channels must be 1"):
        federated_data(DataConfig(name="folder", path=str(tmp_path), folder=FolderConfig(channels=4)), 2, 0)
    named = DataConfig(name="folder", path=str(tmp_path), folder=FolderConfig(metadata="labels.csv"))
    with pytest.raises(DataError, match=re.escape(f"data.folder.metadata=labels.csv: {tmp_path / 'labels.csv'} does")):
        federated_data(named, 2, 0)  # a file named on purpose is not optional


def test_images_convert_to_the_requested_channels(tmp_path):
    rgba = np.zeros((8, 8, 4), dtype=np.uint8)
    rgba[..., :3] = (200, 100, 50)  # fully transparent: alpha is dropped, not composited
    io.imsave(tmp_path / "rgba.png", rgba, check_contrast=False)
    rgb = read_image(tmp_path / "rgba.png", 3, 4)
    assert rgb.shape == (3, 4, 4) and rgb.dtype == np.float32
    np.testing.assert_allclose(rgb[:, 0, 0], np.array([200, 100, 50]) / 255, atol=1e-6)
    grey = read_image(tmp_path / "rgba.png", 1, 4)
    assert grey.shape == (1, 4, 4) and 50 / 255 < grey[0, 0, 0] < 200 / 255
    grey_path = _write(tmp_path / "g", 5)
    np.testing.assert_allclose(read_image(grey_path, 3, 4), _value(5) / 255, atol=1e-6)  # grey to three channels


def test_find_and_read_images_skip_what_is_not_an_image(tmp_path):
    _write(tmp_path / "a" / "b" / "one", 1, ext=".JPEG")
    _corrupt(tmp_path / "two.webp")
    (tmp_path / "three.txt").write_text("x")
    paths = find_images(tmp_path)
    assert [p.name for p in paths] == ["one.JPEG", "two.webp"]
    images, kept, skipped = read_images(paths, 1, 3, tmp_path)
    assert images.shape == (1, 1, 3, 3) and kept.tolist() == [0]
    assert skipped.count == 1 and skipped.examples[0].startswith("two.webp: ")
    assert str(tmp_path) not in skipped.examples[0]


def test_client_names_sort_numbers_by_value():
    assert client_order({"10", "2", "b", "a", "1.5"}) == ["1.5", "2", "10", "a", "b"]


def test_each_client_is_split_stratified_by_label(tmp_path):
    for i in range(40):
        _write(tmp_path / ("fake" if i < 8 else "real") / f"s{i}", i)
    for seed in range(6):  # a plain random split would put 2 of the 8 fakes among the 10 test images only 1 in 3 times
        cfg = DataConfig(name="folder", path=str(tmp_path), image_size=4, partition="iid", test_fraction=0.25)
        (client,) = federated_data(cfg, num_clients=1, seed=seed).clients
        assert len(client.test_labels) == 10 and client.test_labels.sum() == 2
    for i in range(1, 8):
        (tmp_path / "fake" / f"s{i}.png").unlink()
    (client,) = federated_data(cfg, num_clients=1, seed=0).clients  # one fake cannot be stratified: a plain split
    assert len(client.train_labels) + len(client.test_labels) == 33


def test_a_silo_with_scope_all_keeps_every_image_of_its_own_folder(tmp_path):
    """``data.scope=all``: a silo's folder is its own, so its train and test sets together are exactly that folder
    (a metadata client column is ignored); ``shard`` keeps only the client's part, as for a pooled dataset."""
    _metadata_tree(tmp_path)  # 24 listed images of two clients, one of them unreadable
    pooled = DataConfig(name="folder", path=str(tmp_path), image_size=6, test_fraction=0.25, folder=FolderConfig(1))
    own = dataclasses.replace(pooled, scope="all")
    data = silo_data(own, num_clients=3, client_id=2, seed=0)
    (mine,) = data.clients
    seen = np.concatenate([_ids(mine.train_images), _ids(mine.test_images)])
    assert sorted(seen) == list(range(24)) and len(mine.test_labels) == 6 and data.skipped_images == 1
    (shard,) = silo_data(pooled, num_clients=2, client_id=1, seed=0).clients
    assert np.array_equal(shard.test_images, federated_data(pooled, 2, 0).clients[1].test_images)
    assert shard.num_train + len(shard.test_labels) == 12  # client '10' of two
    with pytest.raises(ConfigError, match=r"client id 2 is outside 0..1 \(clients.num_clients=2\)"):
        silo_data(pooled, num_clients=2, client_id=2, seed=0)
    with pytest.raises(ConfigError, match=r"data\.name=forgery is the same data on every silo"):
        DataConfig(name="forgery", scope="all").check()


def test_a_silo_prepares_its_folder_once_and_again_when_an_image_changes(tmp_path):
    """Every Flower message is a new process: the prepared arrays come back from the state folder, equal to what
    reading the folder gives, until an image, a data key or the file itself changes."""
    _metadata_tree(tmp_path / "frames")  # with groups, and one unreadable image
    cfg = DataConfig(name="folder", path=str(tmp_path / "frames"), image_size=6, scope="all", folder=FolderConfig(1))
    cache = tmp_path / "state"
    first, hit = cached_silo_data(cfg, 3, 1, 0, cache)
    assert not hit and (cache / CACHE_FILE).is_file()
    again, hit = cached_silo_data(cfg, 3, 1, 0, cache)
    assert hit and again.skipped_examples == first.skipped_examples and again.name == "folder"
    for field in ("train_images", "train_labels", "test_images", "test_labels", "test_groups"):
        assert np.array_equal(getattr(again.clients[0], field), getattr(first.clients[0], field)), field
    assert not cached_silo_data(dataclasses.replace(cfg, image_size=5), 3, 1, 0, cache)[1]  # another data key
    assert cached_silo_data(dataclasses.replace(cfg, image_size=5), 3, 1, 0, cache)[1]
    edited = _write(tmp_path / "frames" / "real" / "2" / "x0", 30)  # sample 0 now shows sample 30's value
    os.utime(edited, ns=(edited.stat().st_atime_ns, edited.stat().st_mtime_ns + 10**9))  # as an edit a second later
    fresh, hit = cached_silo_data(dataclasses.replace(cfg, image_size=5), 3, 1, 0, cache)
    ids = np.concatenate([_ids(fresh.clients[0].train_images), _ids(fresh.clients[0].test_images)])
    assert not hit and 30 in ids and 0 not in ids
    (cache / CACHE_FILE).write_bytes(b"not a tensor file")  # a torn or foreign file is prepared again
    assert not cached_silo_data(cfg, 3, 1, 0, cache)[1] and cached_silo_data(cfg, 3, 1, 0, cache)[1]


def test_generated_forgeries_are_drawn_afresh_and_not_cached(tmp_path):
    from fedray.platform.data.config import ForgeryConfig

    cfg = DataConfig(name="forgery", image_size=8, forgery=ForgeryConfig(train_per_class=4, test_per_class=2))
    data, hit = cached_silo_data(cfg, 2, 0, 0, tmp_path)
    assert not hit and data.clients[0].sampler is not None and not (tmp_path / CACHE_FILE).exists()
