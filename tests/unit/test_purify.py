"""PFAD's pieces against the official per-image definitions, the motion model, the slice data and the workload."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PURIFY_TINY

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import save_arrays
from fedray.platform.metrics.image import error_split
from fedray.platform.modules.diffusion.gaussian import GaussianDiffusion
from fedray.platform.modules.diffusion.schedules import beta_schedule, space_timesteps
from fedray.tasks.purify import pfad
from fedray.tasks.purify.config import MotionSetting, SliceData
from fedray.tasks.purify.data import CH2BET, folder_slices, prepare_slice, template_split
from fedray.tasks.purify.metrics import slice_quality
from fedray.tasks.purify.motion import corrupt

TINY = ["cluster.mode=inline", *PURIFY_TINY]


def deal_out_reference(y, x_prop, y_t, t, mask, abar, gamma=0.7, total=1000):
    """The official numpy ``deal_out`` for one image, transcribed from its specification."""
    u, r, v = [(np.clip(a, -1, 1) + 1) / 2 for a in (y, x_prop, y_t)]
    w = (1 - np.sqrt(abar[t])) * mask
    n = y.shape[0]
    f = np.fft.fftfreq(n, d=1 / np.pi)
    low = np.abs(f) < np.pi / 10
    fu, fr = np.fft.fft2(u), np.fft.fft2(r)
    k_space = np.where(low[:, None], fu, fu * w + fr * (1 - w))
    x1 = 2 * np.abs(np.fft.ifft2(k_space)) - 1
    x2 = 2 * (v * w + r * (1 - w)) - 1
    k = 1 - gamma * np.exp(-t / total)
    return k * x1 + (1 - k) * x2


def test_checkerboard_and_low_band_follow_the_official_masks():
    mask = pfad.checkerboard(8, 2).numpy()
    assert mask[0, 0] == 0 and mask[0, 2] == 1 and mask[2, 2] == 0 and mask[1, 3] == 1
    assert int(pfad.low_rows(64, 0.1).sum()) == 13  # |k_y| < 6.4: 13 of 64 rows, as the official code keeps
    assert int(pfad.low_rows(256, 0.1).sum()) == 51


def test_mask_sequence_alternates_as_m_1m_1m_m_m():
    m = pfad.checkerboard(4, 1)
    seq = pfad._alternating_masks(m, 6)
    assert [bool(torch.equal(s, m)) for s in seq] == [True, False, False, True, True, False]


@pytest.mark.parametrize("t", [0, 99, 499, 999])
def test_merge_equals_the_official_deal_out(t):
    rng = np.random.default_rng(t)
    abar = np.cumprod(1 - beta_schedule("linear", 1000))
    y, x_prop, y_t = (rng.uniform(-1.2, 1.2, size=(2, 1, 30, 30)) for _ in range(3))  # 30: not a multiple of 10
    mask = pfad.checkerboard(30, 3).double()
    got = pfad.merge(
        torch.from_numpy(y), torch.from_numpy(x_prop), torch.from_numpy(y_t), 1 - math.sqrt(abar[t]),
        1 - 0.7 * math.exp(-t / 1000), mask, pfad.low_rows(30, 0.1).double(),
    )  # fmt: skip
    for i in range(2):
        expected = deal_out_reference(y[i, 0], x_prop[i, 0], y_t[i, 0], t, mask.numpy(), abar)
        np.testing.assert_allclose(got[i, 0].numpy(), expected, atol=1e-10)


def test_merge_of_agreeing_inputs_returns_them():
    y = torch.rand(1, 1, 16, 16) * 2 - 1
    out = pfad.merge(y, y, y, 0.4, 0.6, pfad.checkerboard(16, 2), pfad.low_rows(16, 0.1))
    assert torch.allclose(out, y, atol=1e-5)


def test_respaced_purification_uses_the_original_timesteps_for_omega_k_and_y_t(monkeypatch):
    full = GaussianDiffusion(beta_schedule("linear", 1000))
    respaced = full.respaced(space_timesteps(1000, 4))
    seen = []
    real_merge = pfad.merge

    def spy(y, x_prop, y_t, omega, k, mask, low):
        seen.append((omega, k))
        return real_merge(y, x_prop, y_t, omega, k, mask, low)

    monkeypatch.setattr(pfad, "merge", spy)
    y = torch.zeros(2, 1, 8, 8)
    out = pfad.pfad_purify(respaced, full.alphas_cumprod, lambda x, t: torch.zeros_like(x), y, patch=2,
                           generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert out.shape == y.shape
    for (omega, k), t in zip(seen, [999, 666, 333, 0], strict=True):
        assert omega == pytest.approx(1 - math.sqrt(full.alphas_cumprod[t]))
        assert k == pytest.approx(1 - 0.7 * math.exp(-t / 1000))
    seen.clear()
    pfad.pfad_purify(respaced, full.alphas_cumprod, lambda x, t: torch.zeros_like(x), y, patch=2, masks=False)
    assert all(omega == 0.0 for omega, _ in seen)


def test_purification_is_reproducible_by_generator():
    full = GaussianDiffusion(beta_schedule("linear", 1000))
    respaced = full.respaced(space_timesteps(1000, 5))
    y = torch.rand(2, 1, 8, 8) * 2 - 1
    model = lambda x, t: 0.1 * x  # noqa: E731
    runs = [pfad.pfad_purify(respaced, full.alphas_cumprod, model, y, 2, generator=torch.Generator().manual_seed(3))
            for _ in range(2)]  # fmt: skip
    assert torch.equal(runs[0], runs[1])
    restarts = [pfad.sdedit_purify(respaced, model, y, 0.4, torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(restarts[0], restarts[1])


def test_lowpass_keeps_only_the_low_band():
    y = torch.rand(1, 1, 20, 20) * 2 - 1
    spectrum = torch.fft.fft2((pfad.lowpass(y, 0.1) + 1) / 2)
    high = 1 - pfad.low_rows(20, 0.1)
    # |ifft| of a low-band spectrum is not exactly band-limited, but nearly all energy stays in the band
    assert (spectrum * high).abs().pow(2).sum() < 0.05 * spectrum.abs().pow(2).sum()


def _phantom(size: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    image = ((xx / 0.35) ** 2 + (yy / 0.42) ** 2 < 1).astype(float) * 0.8
    image += ((xx / 0.1) ** 2 + ((yy + 0.1) / 0.15) ** 2 < 1) * 0.2
    return (image * 2 - 1).astype(np.float32)


def test_motion_is_deterministic_and_grows_with_severity():
    clean = _phantom()
    mild, severe = MotionSetting("mild", 1.5, 1.5, 0.1), MotionSetting("severe", 3.0, 4.0, 0.0)
    a = corrupt(clean, mild, np.random.default_rng(1))
    assert np.array_equal(a, corrupt(clean, mild, np.random.default_rng(1)))
    assert a.min() == pytest.approx(-1) and a.max() == pytest.approx(1)
    err = {s.name: np.mean([np.mean((corrupt(clean, s, np.random.default_rng(i)) - clean) ** 2) for i in range(8)])
           for s in (mild, severe)}  # fmt: skip
    assert 0 < err["mild"] < err["severe"]
    still = corrupt(clean, MotionSetting("none", 0.0, 0.0, 0.0), np.random.default_rng(0))
    np.testing.assert_allclose(still, clean, atol=1e-5)  # no motion: the clean slice back


def test_quality_metrics_use_the_unit_range():
    clean = _phantom()
    q = slice_quality(clean, clean, clean > -1)
    assert q["psnr"] == math.inf and q["ssim"] == pytest.approx(1.0)
    shifted = np.clip(clean + 0.2, -1, 1)  # +0.1 in [0, 1] wherever not clipped
    q = slice_quality(clean, shifted, (clean > 0.5) & (clean < 0.7))
    assert q["psnr_mask"] == pytest.approx(20.0, abs=1e-3)  # bright pixels clip at 1: check inside the mask only


def test_a_samples_error_splits_into_its_means_error_and_the_spread():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 8, 8))
    samples = x + rng.normal(0.1, 0.2, size=(5, 3, 8, 8))
    split = error_split(x, samples)
    assert split["per_sample"] == pytest.approx(split["of_mean"] + split["spread"], rel=1e-12)
    assert split["of_mean"] == pytest.approx(((samples.mean(0) - x) ** 2).mean())
    # two samples mirrored around the truth: their mean is exact, all the error is spread (0.3² per pixel)
    mirrored = error_split(x, np.stack([x + 0.3, x - 0.3]))
    assert mirrored["of_mean"] == pytest.approx(0.0, abs=1e-15) and mirrored["spread"] == pytest.approx(0.09)
    # identical samples: no spread, the error is the mean's
    same = error_split(x, np.stack([x + 0.3, x + 0.3]))
    assert same["spread"] == 0.0 and same["per_sample"] == pytest.approx(0.09)


def test_prepare_slice_pads_to_a_square_and_normalises():
    image = np.zeros((20, 40))
    image[5:15, 10:30] = 3.0
    out, mask, fraction = prepare_slice(image, 16, level=1.0)
    assert out.shape == (16, 16) and out.min() == -1 and out.max() == pytest.approx(1)
    assert fraction == pytest.approx(0.25) and mask[:4].sum() == 0  # the padding rows are background


def test_the_test_volume_is_ch2bet_when_installed_and_a_missing_path_is_an_error(tmp_path: Path):
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[lowpass]", f"data.test_volume={tmp_path / 'nowhere.nii.gz'}"]
    with pytest.raises(DataError, match=r"^data\.test_volume .*nowhere\.nii\.gz does not exist$"):
        run_workload("purify", resolve_config("purify", overrides=overrides))
    assert not (tmp_path / "purify").exists()  # refused before the run folder is made
    _, _, auto = template_split(SliceData(image_size=16, test_volume="auto", test_slices=4))
    installed = Path(CH2BET).is_file()
    assert auto["test"].endswith(f"{CH2BET} (a different head)" if installed else f"{CH2BET} not found")


def test_held_out_template_slices_are_disjoint_and_kept_apart():
    cfg = SliceData(image_size=16, test_volume="none", test_slices=100)
    train, test, info = template_split(cfg)
    train_z = {int(n.split("[")[1][:-1]) for n in train.names}
    test_z = {int(n.split("[")[1][:-1]) for n in test.names}
    assert train_z and test_z and min(abs(a - b) for a in train_z for b in test_z) > cfg.gap
    assert "held out" in info["test"] and train.images.shape[1:] == (16, 16)


def test_folder_slices_read_volumes_and_images_and_skip_bad_files(tmp_path: Path):
    import nibabel as nib
    from skimage.io import imsave

    volume = np.zeros((24, 24, 5), dtype=np.float32)
    volume[4:20, 4:20, 1:4] = 100.0
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "head.nii.gz")
    imsave(tmp_path / "slice.png", (np.kron(np.eye(2), np.ones((8, 8))) * 255).astype(np.uint8), check_contrast=False)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "broken.nii").write_bytes(b"nor a volume")
    slices = folder_slices(tmp_path, SliceData(image_size=8, min_brain_fraction=0.3))
    assert len(slices) == 3 + 1 and slices.skipped.count == 2  # 3 volume slices with foreground, 1 image
    assert {"broken.png", "broken.nii"} == {e.split(":")[0] for e in slices.skipped.examples}
    with pytest.raises(DataError, match="does not exist"):
        folder_slices(tmp_path / "missing", SliceData())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("methods=[pfad,magic]", "unknown entries"),
        ("data.source=folder", "needs data.path"),
        ("pfad.patch=3", "must tile"),
        ("diffusion.sample_steps=2000", "sample_steps"),
        ("motion=[{name: a, shift: -1}]", "shift and rotation"),
        ("pfad.gama=0.5", "unknown config key 'pfad.gama'"),
    ],
)
def test_bad_config_values_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("purify", overrides=[override])


def test_purify_workload_end_to_end_and_resume_reuses_outputs(tmp_path: Path):
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[pfad,lowband_ddpm,lowpass,supervised]", "samples=2"]
    summary, run_dir = run_workload("purify", resolve_config("purify", overrides=overrides))
    assert summary["data"]["test_slices"] == 4 and set(summary["results"]) == {"mild", "severe"}
    for rows in summary["results"].values():
        assert set(rows) == {"input", "pfad", "lowband_ddpm", "lowpass", "supervised"}
        assert all(np.isfinite(rows[m]["psnr"]) and 0 < rows[m]["ssim"] <= 1 for m in rows)
        for method in ("pfad", "lowband_ddpm"):  # two sampling seeds: their mean and the error split
            split = rows[method]["mse_split"]
            assert split["per_sample"] == pytest.approx(split["of_mean"] + split["spread"]) and split["spread"] > 0
            assert rows[method]["mean_of_samples"]["psnr"] == pytest.approx(-10 * math.log10(split["of_mean"]), abs=3)
        assert "mse_split" not in rows["lowpass"] and "mean_of_samples" not in rows["supervised"]  # one output each
    assert set(summary["pfad_psnr_gain"]) == {"mild", "severe"}
    assert (run_dir.path / "checkpoints" / "ddpm.safetensors").is_file()
    assert (run_dir.path / "plots" / "purified_severe.png").is_file()
    log = [json.loads(line) for line in run_dir.metrics_log.read_text().splitlines()]
    assert {r["model"] for r in log} == {"ddpm", "supervised"} and all(np.isfinite(r["loss"]) for r in log)
    # a resumed run recomputes only the missing output, with the same seed-determined numbers
    (run_dir.path / "outputs" / "severe__pfad__s0.safetensors").unlink()
    again, _ = run_workload("purify", resolve_config("purify", overrides=[*overrides, "resume=true"]))
    assert again["training"]["ddpm"]["source"].endswith("ddpm.safetensors")
    assert again["results"]["severe"]["pfad"]["psnr"] == pytest.approx(summary["results"]["severe"]["pfad"]["psnr"])


def test_a_missing_weights_file_is_a_one_line_error(tmp_path: Path):
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[pfad]", f"train.ddpm_checkpoint={tmp_path}/none.safetensors"]
    with pytest.raises(DataError, match=r"^train.ddpm_checkpoint .*none.safetensors does not exist$"):
        run_workload("purify", resolve_config("purify", overrides=overrides))
    misfit = tmp_path / "misfit.safetensors"
    save_arrays(misfit, {"x": np.zeros(2, dtype=np.float32)})
    overrides = [*TINY, f"run.root={tmp_path}", "methods=[pfad]", f"train.ddpm_checkpoint={misfit}"]
    with pytest.raises(DataError, match=re.escape(f"{misfit} does not fit this model (model.* and data.image_size")):
        run_workload("purify", resolve_config("purify", overrides=overrides))
