"""The forensics pieces the forgery-analysis workloads share: grouped faces and splits, grouped samples, skewed
pools, the detector's learning-rate schedule and the detector file round trip."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import save_arrays
from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig
from fedray.tasks.forensics.config import DetectorConfig, FacesConfig
from fedray.tasks.forensics.detector import (
    fake_probability,
    learning_rate,
    load_detector,
    save_detector,
    train_detector,
)
from fedray.tasks.forensics.faces import (
    group_pool,
    grouped_samples,
    load_grouped_faces,
    proxy_groups,
    read_group_file,
)

FAST_FORGERY = ForgeryConfig(train_per_class=8)


@pytest.fixture(scope="module")
def grouped():
    return load_grouped_faces(FacesConfig(image_size=16, num_groups=4), (0.6, 0.2, 0.2), seed=0)


def test_proxy_groups_are_equal_sized_and_ordered_by_central_intensity():
    # Prepare: eight flat faces of increasing brightness
    faces = np.stack([np.full((8, 8), v) for v in np.linspace(0.1, 0.9, 8)])
    # Execute
    groups = proxy_groups(faces, 4)
    # Assert
    assert groups.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    with pytest.raises(ConfigError, match="num_groups=9"):
        proxy_groups(faces, 9)


def test_a_group_file_gives_each_face_its_group(tmp_path: Path):
    path = tmp_path / "groups.csv"
    path.write_text("index,group\n2,1\n0,0\n\n1,3\n")
    np.testing.assert_array_equal(read_group_file(path, 3), [0, 3, 1])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"0,0\n1,1\n", r"gives no group for 1 faces \(first: index 2\)"),
        (b"0,0\n1,x\n2,1\n", r"groups.csv:2: expected 'index,group' integers"),
        (b"0,0\n1,1\n7,1\n", r"groups.csv:3: index 7 outside 0..2"),
        (b"0,0\n1,1\n2,1\n1,0\n", r"groups.csv:4: face 1 already has a row \(line 2\)"),
        (b"0,0\n1,1\n2,\xff\xfe1\n", r"is not a UTF-8 text CSV \(invalid start byte at byte 10\)"),
    ],
)
def test_a_bad_group_file_is_one_line_naming_the_row(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "groups.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_group_file(path, 3)


def test_the_face_split_is_disjoint_complete_and_holds_every_group(grouped):
    splits = grouped.splits
    sizes = {name: len(idx) for name, idx in splits.items()}
    assert sum(sizes.values()) == len(grouped.faces) == 100
    assert sizes == {"train": 60, "calibration": 20, "test": 20}  # 25 faces per group: 15 / 5 / 5
    everything = np.concatenate(list(splits.values()))
    assert len(np.unique(everything)) == 100
    for name in splits:
        faces, groups = grouped.split(name)
        assert len(faces) == sizes[name] and set(groups.tolist()) == {0, 1, 2, 3}, name
    assert np.bincount(grouped.groups).tolist() == [25, 25, 25, 25]


def test_grouped_samples_fill_every_label_family_and_group_cell(grouped):
    faces, groups = grouped.split("test")
    samples = grouped_samples(faces, groups, ["blur", "sharpen", "jpeg"], 5, FAST_FORGERY, 0, "t")
    assert samples.images.shape[1:] == (1, 16, 16) and len(samples.images) == len(samples.labels)
    for g in range(4):
        in_group = samples.groups == g
        assert ((samples.labels == 0) & in_group).sum() == 5
        assert ((samples.families == -1) & in_group).sum() == 5  # the reals carry family -1
        assert ((samples.families == 0) & in_group).sum() == 5  # per_cell fakes of the first family
        for family in (1, 2):
            assert ((samples.families == family) & in_group).sum() == 6  # 2·ceil(5 / 2) fakes
    assert (samples.labels == (samples.families >= 0)).all()


def test_group_pool_follows_the_shares_and_checks_them(grouped):
    pool = group_pool(grouped.faces, grouped.groups, [3, 1, 0, 0], 40, seed=0)
    assert len(pool) == 40
    lookup = {face.tobytes(): g for face, g in zip(grouped.faces, grouped.groups, strict=True)}
    counts = np.bincount([lookup[face.tobytes()] for face in pool], minlength=4)
    assert counts.tolist() == [30, 10, 0, 0]
    with pytest.raises(ConfigError, match="has 2 entries; the faces have 4 groups"):
        group_pool(grouped.faces, grouped.groups, [1, 1], 10, seed=0)
    with pytest.raises(ConfigError, match="non-negative with a positive sum"):
        group_pool(grouped.faces, grouped.groups, [1, -1, 0, 0], 10, seed=0)


def test_the_learning_rate_warms_up_then_anneals_to_zero():
    cfg = DetectorConfig(epochs=10, lr=0.1, warmup_epochs=2)
    rates = [learning_rate(cfg, e) for e in range(10)]
    assert rates[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert all(a >= b for a, b in itertools.pairwise(rates[2:]))
    assert learning_rate(cfg, 10) == pytest.approx(0.0, abs=1e-12)


def test_a_saved_detector_loads_back_with_identical_outputs(tmp_path: Path, grouped):
    faces, _ = grouped.split("train")
    cfg = DetectorConfig(architecture="resnet", model=ModelConfig(widths=[4, 8], res_blocks=1), epochs=1)
    model, info = train_detector(cfg, faces, ["blur"], FAST_FORGERY, seed=0)
    assert len(info["loss_curve"]) == 1 and info["steps"] == 1
    path = tmp_path / "detector.safetensors"
    save_detector(path, model, cfg.architecture, cfg.model, 16)
    loaded, where = load_detector(path)
    assert where == {"source": str(path), "architecture": "resnet", "image_size": 16}
    images = np.random.default_rng(0).random((6, 1, 16, 16), dtype=np.float32)
    np.testing.assert_array_equal(fake_probability(loaded, images), fake_probability(model, images))
    with torch.no_grad():
        torch.testing.assert_close(loaded(torch.from_numpy(images)), model(torch.from_numpy(images)), rtol=0, atol=0)


def test_load_detector_names_what_is_wrong(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        load_detector(tmp_path / "missing.safetensors")
    plain = tmp_path / "weights.safetensors"
    model = build_model("cnn", ModelConfig(widths=[4]), 1, 2)
    save_arrays(plain, {k: v.detach().numpy() for k, v in model.state_dict().items()})
    with pytest.raises(DataError, match="is not a fedray detector file"):
        load_detector(plain)
    broken = tmp_path / "broken.safetensors"
    save_arrays(broken, {"w": np.zeros(2, dtype=np.float32)}, {"fedray_detector": "{not json"})
    with pytest.raises(DataError, match="unreadable detector description"):
        load_detector(broken)
    with pytest.raises(DataError, match="no federated run"):
        load_detector(tmp_path)
    sr_run = tmp_path / "sr_run"
    sr_run.mkdir()
    (sr_run / "config.yaml").write_text("data:\n  source: builtin\n  scale: 4\n")  # another workload's run
    with pytest.raises(DataError, match=r"sr_run is not a federated run: its config\.yaml does not fit that workload"):
        load_detector(sr_run)
