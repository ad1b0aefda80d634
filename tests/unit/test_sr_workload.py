"""The ``sr`` workload: degradations, image quality, data folders, config errors and a whole tiny run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.config import load_config
from fedray.platform.data.natural import folder_images
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import save_arrays
from fedray.platform.metrics.image import by_reference_quantile, rgb_and_y_quality
from fedray.tasks.sr.config import SRConfig, SRData
from fedray.tasks.sr.data import bicubic, degrade, random_crops
from fedray.tasks.sr.models import build_network, build_resshift

TINY = [
    "cluster.mode=inline",
    "data.hr_size=16",
    "data.test_crops=6",
    "model.model_channels=8",
    "model.embed_dim=16",
    "model.depth=1",
    "unet.model_channels=8",
    "unet.num_heads=1",
    "train.steps=4",
    "train.batch_size=4",
    "train.warmup=2",
]


def test_bicubic_degradation_halves_and_realistic_adds_blur_noise_and_jpeg():
    rng = np.random.default_rng(0)
    hr = random_crops([("x", np.random.default_rng(1).random((40, 40, 3), dtype=np.float32))], 16, 3, rng)
    assert hr.shape == (3, 3, 16, 16) and hr.min() >= -1 and hr.max() <= 1
    plain = degrade(hr, SRData(hr_size=16, scale=4, degradation="bicubic"), np.random.default_rng(0))
    expected = bicubic(torch.from_numpy(hr), 4).numpy()
    np.testing.assert_allclose(plain, expected, atol=1e-6)
    cfg = SRData(hr_size=16, scale=4, degradation="realistic")
    real = degrade(hr, cfg, np.random.default_rng(5))
    assert real.shape == (3, 3, 4, 4) and not np.allclose(real, plain, atol=1e-3)
    np.testing.assert_array_equal(real, degrade(hr, cfg, np.random.default_rng(5)))  # deterministic by seed


def test_y_channel_psnr_follows_bt601_on_the_255_scale():
    a = np.zeros((3, 8, 8))
    b = a.copy()
    b[:, :4] += 0.2  # +0.1 in [0, 1] on half of the pixels, every channel
    q = rgb_and_y_quality(a, b)
    mse_y = 0.5 * ((65.481 + 128.553 + 24.966) * 0.1) ** 2
    assert q["psnr_y"] == pytest.approx(10 * np.log10(255**2 / mse_y), rel=1e-6)
    assert q["psnr"] == pytest.approx(10 * np.log10(1 / (0.5 * 0.01)), rel=1e-6)


def test_scores_are_split_into_equal_bins_of_the_reference_method():
    # bicubic orders the five images 2 < 4 < 0 < 3 < 1; two bins of 3 and 2 images (np.array_split).
    scores = {"bicubic": [30.0, 50.0, 10.0, 40.0, 20.0], "dit_sr": [31.0, 44.0, 12.0, 41.0, 23.0]}
    split = by_reference_quantile(scores, "bicubic", bins=2)
    assert split["images_per_bin"] == [3, 2]
    assert split["edges"] == [[10.0, 30.0], [40.0, 50.0]]
    assert split["mean"]["bicubic"] == [20.0, 45.0]
    assert split["mean"]["dit_sr"] == [22.0, 42.5]  # (12 + 23 + 31) / 3, (41 + 44) / 2
    with pytest.raises(KeyError, match="regression"):
        by_reference_quantile(scores, "regression")


def test_image_folders_skip_broken_and_small_files(tmp_path: Path):
    from skimage.io import imsave

    imsave(tmp_path / "big.png", (np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8))
    imsave(tmp_path / "small.png", np.zeros((8, 8, 3), dtype=np.uint8), check_contrast=False)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    images, skipped = folder_images(tmp_path, min_size=16)
    assert [n for n, _ in images] == ["big.png"] and images[0][1].shape == (40, 50, 3)
    assert skipped.count == 2
    with pytest.raises(DataError, match="does not exist"):
        folder_images(tmp_path / "nope", 16)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("methods=[dit_sr,swinir]", "unknown entries"),
        ("data.scale=5", "data.scale"),
        ("model.channel_mult=[1,1,1,1,1,1,1]", "divisible"),
        ("model.modulation=film", "model.modulation"),
        ("data.blur_sigma=[2,1]", "range"),
        ("checkpoints={edsr: x.safetensors}", "unknown methods"),
        ("resshift.lr_error_variance=0", "lr_error_variance must be positive"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("sr", overrides=[override])


def test_the_xt_skip_without_a_residual_network_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"needs resshift\.residual=true"):
        resolve_config("sr", overrides=["resshift.xt_skip=true", "resshift.residual=false"])


def test_sr_workload_end_to_end_and_resume_reuses_weights(tmp_path: Path):
    overrides = [*TINY, f"run.root={tmp_path}"]
    summary, run_dir = run_workload("sr", resolve_config("sr", overrides=overrides))
    assert set(summary["results"]) == {"dit_sr", "dit_sr_adaln", "resshift_unet", "regression", "bicubic"}
    for method, row in summary["results"].items():
        assert np.isfinite(row["psnr_y"]) and 0 < row["ssim"] <= 1, method
        assert (row["seconds_per_image"] > 0) == (method != "bicubic")
    assert summary["results"]["dit_sr"]["parameters"] < summary["results"]["dit_sr_adaln"]["parameters"]
    quartiles = summary["psnr_y_by_bicubic_quartile"]
    assert sum(quartiles["images_per_bin"]) == summary["test_crops"]
    for method, row in summary["results"].items():  # the bins' weighted mean is the overall mean
        weighted = np.dot(quartiles["mean"][method], quartiles["images_per_bin"]) / summary["test_crops"]
        assert weighted == pytest.approx(row["psnr_y"]), method
    assert "sklearn:flower.jpg" in summary["images"]["test"]
    assert not set(summary["images"]["train"]) & set(summary["images"]["test"])
    assert (run_dir.path / "plots" / "sr_grid.png").is_file()
    log = [json.loads(line) for line in run_dir.metrics_log.read_text().splitlines()]
    assert {r["method"] for r in log} == {"dit_sr", "dit_sr_adaln", "resshift_unet", "regression"}
    again, _ = run_workload("sr", resolve_config("sr", overrides=[*overrides, "resume=true"]))
    assert again["training"]["dit_sr"]["source"].endswith("dit_sr.safetensors")
    assert again["results"]["dit_sr"]["psnr_y"] == pytest.approx(summary["results"]["dit_sr"]["psnr_y"])


def test_a_corrupt_weights_file_is_a_one_line_error(tmp_path: Path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[regression]", f"checkpoints={{regression: {bad}}}"]
    with pytest.raises(DataError, match="cannot read checkpoint"):
        run_workload("sr", resolve_config("sr", overrides=overrides))
    misfit = tmp_path / "misfit.safetensors"
    save_arrays(misfit, {"x": np.zeros(2, dtype=np.float32)})
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[dit_sr]", f"checkpoints={{dit_sr: {misfit}}}"]
    with pytest.raises(DataError, match=re.escape(f"{misfit} does not fit this model (model.* and data.hr_size")):
        run_workload("sr", resolve_config("sr", overrides=overrides))


@pytest.mark.parametrize("method", ["dit_sr", "dit_sr_adaln", "resshift_unet"])
@pytest.mark.parametrize("residual", [True, False])
def test_an_untrained_residual_network_samples_the_bicubic_image(method: str, residual: bool):
    """Zero-initialised output layers: x̂₀ = y₀ + 0 makes every ResShift step's posterior mean end at y₀ exactly,
    while the official parameterisation starts at x̂₀ = 0."""
    cfg = load_config(SRConfig, overrides=[*TINY, f"resshift.residual={str(residual).lower()}"])
    net, diffusion = build_network(cfg, method).eval(), build_resshift(cfg)
    y0 = torch.rand(2, 3, 16, 16) * 2 - 1
    x0 = diffusion.predict_x0(net, torch.randn(2, 3, 16, 16), torch.tensor([3, 14]), y0, y0)
    torch.testing.assert_close(x0, y0 if residual else torch.zeros_like(y0))
    sample = diffusion.sample(net, y0, y0, generator=torch.Generator().manual_seed(0))
    if residual:
        torch.testing.assert_close(sample, y0)
    else:
        assert (sample - y0).abs().mean() > 0.1


def test_with_the_xt_skip_an_untrained_network_samples_close_to_the_bicubic_image():
    """x̂₀ = y₀ + w_t(x̃_t − y₀): at the first step (w ≈ 0) the prediction is y₀; along the chain every x_t is y₀ plus
    fresh noise, which the skip partly passes on (w ≈ 0.34 at t = 1, where the de-shifted noise has std ≈ 0.24), so
    the sample is y₀ plus noise of std ≈ 0.08 until a network learns to remove it."""
    cfg = load_config(SRConfig, overrides=[*TINY, "resshift.xt_skip=true"])
    net, diffusion = build_network(cfg, "dit_sr").eval(), build_resshift(cfg)
    y0 = torch.rand(2, 3, 16, 16) * 2 - 1
    first = torch.full((2,), diffusion.num_timesteps - 1)
    xt = diffusion.prior_sample(y0, torch.randn_like(y0))
    torch.testing.assert_close(diffusion.predict_x0(net, xt, first, y0, y0), y0, atol=2e-3, rtol=0)  # w·σ ≈ 3e-4
    sample = diffusion.sample(net, y0, y0, generator=torch.Generator().manual_seed(0))
    assert 0.03 < float((sample - y0).std()) < 0.15
