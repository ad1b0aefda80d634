"""The ``compose`` workload end to end at a tiny size (inline), resume, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import COMPOSE_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError, DataError

TINY = ["cluster.mode=inline", *COMPOSE_TINY]


def test_compose_end_to_end_scores_every_method_and_resume_reuses_everything(tmp_path: Path):
    overrides = [*TINY, f"run.root={tmp_path}"]
    summary, run_dir = run_workload("compose", resolve_config("compose", overrides=overrides))
    assert list(summary["results"]) == ["fusion", "concat", "fusion_nocontrol", "paste"]
    for method, row in summary["results"].items():
        assert 0 < row["psnr"] < 60 and -1 <= row["ssim"] <= 1, method
        assert np.isfinite(row["psnr_region"]) and np.isfinite(row["fg_feature_cosine"]), method
        assert (row["seconds_per_image"] > 0) == (method != "paste"), method
    # naive paste leaves the background as it was: far better there than inside the region
    paste = summary["results"]["paste"]
    assert paste["psnr_background"] > paste["psnr_region"]
    assert set(summary["fusion_psnr_gain"]) == {"concat", "fusion_nocontrol", "paste"}
    stage2 = summary["training"]
    assert stage2["fusion"]["trainable_parameters"] > stage2["fusion_nocontrol"]["trainable_parameters"]
    assert stage2["fusion_nocontrol"]["trainable_parameters"] > stage2["concat"]["trainable_parameters"]
    assert not set(summary["data"]["scenes"]["train"]) & set(summary["data"]["scenes"]["test"])
    assert (run_dir.path / "plots" / "compose_grid.png").is_file()
    names = {p.stem for p in (run_dir.path / "checkpoints").glob("*.safetensors")}
    assert names == {"encoder", "base", "fusion", "concat", "fusion_nocontrol"}
    log = [json.loads(line) for line in run_dir.metrics_log.read_text().splitlines()]
    assert {r["model"] for r in log} == names
    again, _ = run_workload("compose", resolve_config("compose", overrides=[*overrides, "resume=true"]))
    assert all(again["training"][n]["source"].endswith(f"{n}.safetensors") for n in names)
    assert again["results"] == summary["results"]


@pytest.fixture(scope="module")
def trained_concat(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A run that trained the encoder, the base and the concat method; and overrides that reuse its base and encoder."""
    root = tmp_path_factory.mktemp("compose")
    first = [*TINY, f"run.root={root}", "run.name=first", "methods=[concat]"]
    _, run_dir = run_workload("compose", resolve_config("compose", overrides=first))
    given = [
        *TINY, f"run.root={root}", f"train.base_checkpoint={run_dir.checkpoint('base')}",
        f"tokens.encoder_checkpoint={run_dir.checkpoint('encoder')}",
    ]  # fmt: skip
    return run_dir.path, given


def test_a_method_trains_from_given_base_and_encoder_checkpoints(trained_concat):
    run_dir, given = trained_concat
    summary, _ = run_workload(
        "compose", resolve_config("compose", overrides=[*given, "run.name=second", "methods=[concat,paste]"])
    )
    assert summary["training"]["base"] == {"source": str(run_dir / "checkpoints" / "base.safetensors")}
    assert summary["training"]["concat"]["steps"] == 3


def test_stochastic_ddim_steps_are_seeded_draws(trained_concat):
    """η > 0 adds fresh noise at every DDIM step, drawn from a generator on the sampling device and seeded: the
    composites change with η and repeat for the same seed."""
    run_dir, given = trained_concat
    reuse = [*given, "methods=[concat]", f"train.checkpoints.concat={run_dir / 'checkpoints' / 'concat.safetensors'}"]
    psnr = {}
    for name, eta in (("deterministic", 0.0), ("stochastic", 0.5), ("again", 0.5)):
        cfg = resolve_config("compose", overrides=[*reuse, f"run.name={name}", f"diffusion.eta={eta}"])
        psnr[name] = run_workload("compose", cfg)[0]["results"]["concat"]["psnr"]
    assert psnr["stochastic"] == psnr["again"] != psnr["deterministic"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("methods=[fusion,blend]", "unknown entries \\['blend'\\]"),
        ("cross_attention_resolutions=[12]", "not UNet feature-map sides"),
        ("tokens.stages=[stage7]", "tokens.stages must name stages"),
        ("data.region_scale=[0.4,0.7]", "region_scale must be a range \\[low, high\\] with 0 < low ≤ high ≤ 0.5"),
        ("data.source=folder", "needs data.path"),
        ("train.checkpoints={paste: x.safetensors}", "only fusion, concat, fusion_nocontrol are trained"),
        ("train.token_dropout=1.0", "token_dropout in \\[0, 1\\)"),
        ("diffusion.sample_steps=0", "sample_steps must lie"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("compose", overrides=[override])


def test_a_corrupt_checkpoint_is_a_one_line_error_and_a_missing_folder_names_itself(tmp_path: Path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[paste]", f"tokens.encoder_checkpoint={bad}"]
    with pytest.raises(DataError, match="cannot read checkpoint"):
        run_workload("compose", resolve_config("compose", overrides=overrides))
    missing = [*TINY, f"run.root={tmp_path}", "data.source=folder", f"data.path={tmp_path / 'nowhere'}"]
    with pytest.raises(DataError, match="nowhere"):
        run_workload("compose", resolve_config("compose", overrides=missing))


def test_a_folder_of_real_triplets_runs_end_to_end(tmp_path: Path):
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    for split, names in (("train", ["a", "b", "c", "d"]), ("test", ["e", "f"])):
        for name in names:
            background = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
            gt = background.copy()
            gt[5:12, 6:14] = rng.integers(0, 256, size=3, dtype=np.uint8)  # the composited object
            for folder, pixels in (("background", background), ("foreground", gt[5:12, 6:14]), ("gt", gt)):
                (tmp_path / "data" / split / folder).mkdir(parents=True, exist_ok=True)
                PILImage.fromarray(pixels).save(tmp_path / "data" / split / folder / f"{name}.png")
    overrides = [*TINY, f"run.root={tmp_path}", "data.source=folder", f"data.path={tmp_path / 'data'}",
                 "methods=[fusion,paste]"]  # fmt: skip
    summary, _ = run_workload("compose", resolve_config("compose", overrides=overrides))
    assert summary["data"]["counts"] == {"train": 4, "test": 2} and summary["data"]["skipped"] == 0
    assert set(summary["results"]) == {"fusion", "paste"}
    # the region is found where gt and background differ; paste leaves everything else untouched
    assert summary["results"]["paste"]["psnr_background"] > 40


def test_a_missing_method_checkpoint_fails_before_stage_one_trains_and_keeps_the_earlier_run(tmp_path: Path):
    given = [*TINY, f"run.root={tmp_path}", "methods=[paste]"]
    run_workload("compose", resolve_config("compose", overrides=given))
    run_dir = tmp_path / "compose" / "default"
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    missing = tmp_path / "none.safetensors"
    overrides = [*given, "methods=[concat]", f"train.checkpoints.concat={missing}"]
    with pytest.raises(DataError, match=f"^train.checkpoints.concat {missing} does not exist$"):
        run_workload("compose", resolve_config("compose", overrides=overrides))
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before  # nothing trained or replaced
