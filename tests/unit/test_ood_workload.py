"""``fedray run ood`` in the inline runtime: the summary, checkpoints and their reuse, resume, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import OOD_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import DataError

TINY = ["cluster.mode=inline", *OOD_TINY]
SETS = ["lfw", "textures", "uniform_noise", "gaussian_noise"]


def run(tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = resolve_config("ood", overrides=[*TINY, f"run.root={tmp_path}", *overrides])
    summary, run_dir = run_workload("ood", cfg)
    return summary, run_dir.path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    return run(tmp_path_factory.mktemp("ood"), "run.name=tiny")


def test_a_tiny_run_reports_every_score_against_every_set(tiny_run):
    summary, path = tiny_run
    on_disk = json.loads((path / "metrics.json").read_text())
    assert on_disk["scores"] == summary["scores"] and on_disk["run_dir"] == str(path)
    for key in (
        "workload",
        "method",
        "seed",
        "id_dataset",
        "data",
        "features",
        "encoder",
        "lfdn",
        "autoencoder",
        "inference",
        "baselines",
        "headline",
        "scores",
        "throughput",
        "deviations",
        "runtime",
        "total_seconds",
    ):
        assert key in on_disk, key  # fmt: skip
    assert summary["id_dataset"] == "digits" and summary["runtime"] == "inline"
    assert summary["data"]["ood_sets"] == {"lfw": 100, "textures": 100, "uniform_noise": 60, "gaussian_noise": 60}
    assert set(summary["data"]["left_out_sets"]) == {"digits_sheet", "sklearn_digits"}
    assert summary["features"] == {"layers": "all", "dim": 120, "blocks": [[0, 8], [8, 24], [24, 56], [56, 120]]}
    expected = {f"{s}_t{t}" for s in ("mse", "lr", "mfsim", "mfsim_skip1") for t in (3, 5, 10)}
    expected |= {"ae_mfsim", "ae_mse", "msp", "energy", "mahalanobis", "knn"}
    assert set(summary["scores"]) == expected
    for name, m in summary["scores"].items():
        assert set(m["auroc"]) == set(SETS) == set(m["fpr95"]), name
        assert 0.0 <= m["mean_auroc"] <= 1.0 and 0.0 <= m["mean_fpr95"] <= 1.0, name
        assert m["mean_auroc"] == pytest.approx(np.mean(list(m["auroc"].values())))
    # even this tiny LFDN tells uniform noise from digits by its multi-layer reconstruction (0.99+ at seed 0)
    assert summary["scores"]["mfsim_t3"]["auroc"]["uniform_noise"] > 0.9
    assert summary["headline"]["mfsim_t3_mean_auroc"] == summary["scores"]["mfsim_t3"]["mean_auroc"]
    assert summary["encoder"]["id_test_acc"] > 0.5 and "[fedray]" in summary["encoder"]["note"]
    assert all(d.startswith("[fedray]") for d in summary["deviations"])
    speed = summary["throughput"]
    assert speed["encoder_img_per_s"] > 0 and speed["dlsr_img_per_s"] > 0 and speed["t"] == 3
    assert speed["dlsr_over_encoder"] == pytest.approx(speed["dlsr_img_per_s"] / speed["encoder_img_per_s"])
    assert len(summary["lfdn"]["losses"]) == 2 and summary["lfdn"]["width"] == 64
    names = sorted(p.name for p in (path / "checkpoints").iterdir())
    assert names == [f"{n}.safetensors" for n in ("autoencoder", "encoder", "lfdn", "lfdn_epoch1")]
    assert (path / "plots" / "auroc.png").is_file() and (path / "plots" / "losses.png").is_file()
    log = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["stage"] == "lfdn"] == [1, 2]
    assert {r["score"] for r in log if r["stage"] == "scores"} == expected


def test_a_saved_encoder_is_reused_and_resume_rescores_identically(tiny_run, tmp_path: Path):
    summary, path = tiny_run
    encoder = path / "checkpoints" / "encoder.safetensors"
    reused, _ = run(tmp_path, "run.name=reuse", f"encoder.checkpoint={encoder}", "baselines.autoencoder=false")
    assert reused["encoder"]["source"] == str(encoder)
    assert reused["encoder"]["id_test_acc"] == summary["encoder"]["id_test_acc"]
    for name in ("msp", "energy", "mahalanobis", "knn"):  # the same encoder gives the same baseline numbers
        assert reused["scores"][name] == summary["scores"][name]
    assert "ae_mfsim" not in reused["scores"] and reused["autoencoder"] is None
    log = (path / "metrics.jsonl").read_text()
    with pytest.raises(DataError, match="no OOD set could be built"):  # refused input: the saved log stays whole
        run(path.parent.parent, "run.name=tiny", "resume=true", "ood.sets=[]", f"ood.folders=[{tmp_path / 'none'}]")
    assert (path / "metrics.jsonl").read_text() == log
    resumed, _ = run(path.parent.parent, "run.name=tiny", "resume=true", "inference.t=[3]")
    assert (path / "metrics.jsonl").read_text().count('"stage": "lfdn"') == log.count('"stage": "lfdn"') > 0
    assert (
        resumed["lfdn"]["source"].endswith("lfdn.safetensors")
        and resumed["lfdn"]["losses"] == summary["lfdn"]["losses"]
    )
    for name in ("mse_t3", "lr_t3", "mfsim_t3", "ae_mfsim"):  # seeded noise: the same scores again
        assert resumed["scores"][name] == summary["scores"][name]


def test_the_last_layer_ablation_uses_one_block(tiny_run, tmp_path: Path):
    _, path = tiny_run
    encoder = path / "checkpoints" / "encoder.safetensors"
    summary, _ = run(tmp_path, "run.name=last", "features.layers=last", "baselines.autoencoder=false",
                     "baselines.knn=false", f"encoder.checkpoint={encoder}")  # fmt: skip
    assert summary["features"] == {"layers": "last", "dim": 64, "blocks": [[0, 64]]}
    assert "mfsim_t3" in summary["scores"] and "mfsim_skip1_t3" not in summary["scores"]
    assert "knn" not in summary["scores"] and "mahalanobis" in summary["scores"]


def test_missing_id_data_is_a_one_line_error_naming_the_folder(tmp_path: Path):
    with pytest.raises(DataError, match=f"no IDX files for split 'train' in {tmp_path / 'fm'}") as info:
        run(tmp_path, "data.id=fashion_mnist", f"data.path={tmp_path / 'fm'}")
    assert "\n" not in str(info.value)


def test_bad_encoder_checkpoints_are_one_line_errors(tiny_run, tmp_path: Path):
    _, path = tiny_run
    with pytest.raises(DataError, match=r"^encoder.checkpoint .*absent.safetensors does not exist$"):
        run(tmp_path, f"encoder.checkpoint={tmp_path / 'absent.safetensors'}")
    with pytest.raises(DataError, match=r"does not fit this model \(encoder.widths, ID classes\)") as info:
        run(
            tmp_path,
            "encoder.widths=[8,16,32,32]",
            f"encoder.checkpoint={path / 'checkpoints' / 'encoder.safetensors'}",
        )
    assert "\n" not in str(info.value)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\0" * 64)
    with pytest.raises(DataError, match=r"corrupt\.safetensors"):
        run(tmp_path, f"encoder.checkpoint={corrupt}")


def test_when_no_ood_source_can_be_read_the_run_says_why(tmp_path: Path):
    with pytest.raises(DataError, match=r"no OOD set could be built: folder:gone: no such folder") as info:
        run(tmp_path, "ood.sets=[sklearn_digits]", f"ood.folders=[{tmp_path / 'gone'}]")
    assert "\n" not in str(info.value)


def test_unreadable_folder_images_are_counted_in_the_metrics(tmp_path: Path):
    from skimage import io as skio

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(25):
        skio.imsave(folder / f"{i}.png", np.full((20, 20), i * 10, np.uint8), check_contrast=False)
    (folder / "bad.jpg").write_bytes(b"\xff\xd8 truncated")
    summary, _ = run(tmp_path, "ood.sets=[uniform_noise]", f"ood.folders=[{folder}]", "baselines.autoencoder=false",
                     "inference.t=[3]")  # fmt: skip
    assert summary["data"]["ood_sets"] == {"uniform_noise": 60, "folder:mine": 25}
    assert summary["data"]["skipped_images"] == {"folder:mine": 1}
    assert not math.isnan(summary["scores"]["mfsim_t3"]["auroc"]["folder:mine"])
