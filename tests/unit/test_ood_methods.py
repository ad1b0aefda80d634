"""DLSR's pieces against hand computations: feature z-scoring, the scores, the metrics, Algorithm 2, the LFDN
training, the baselines, the OOD sources and the config checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from fedray.platform.config import load_config
from fedray.platform.errors import ConfigError
from fedray.platform.modules.diffusion.schedules import beta_schedule
from fedray.tasks.ood.baselines import KNN, Mahalanobis, energy, msp
from fedray.tasks.ood.config import LFDN, OODConfig
from fedray.tasks.ood.data import load_ood
from fedray.tasks.ood.features import make_z0, stage_bounds, zscore_blocks
from fedray.tasks.ood.lfdn import feature_diffusion, reconstruct, train_feature_model
from fedray.tasks.ood.scores import auroc, detection_metrics, fpr_at_tpr, mfsim, mse

# -- features ---------------------------------------------------------------------------------------------------------


def test_stage_bounds_follow_the_encoder_widths():
    assert stage_bounds([32, 64, 128, 256]) == [(0, 32), (32, 96), (96, 224), (224, 480)]
    assert stage_bounds([32, 64, 128, 256], "last") == [(0, 256)]


def test_each_block_is_z_scored_over_its_own_channels_as_the_official_code():
    rng = np.random.default_rng(0)
    pooled = np.concatenate([rng.normal(5, 3, (4, 3)), rng.normal(-1, 0.01, (4, 5))], axis=1).astype(np.float32)
    z = zscore_blocks(torch.from_numpy(pooled), [(0, 3), (3, 8)]).numpy()
    for a, b in [(0, 3), (3, 8)]:
        block = pooled[:, a:b].astype(np.float64)
        expected = (block - block.mean(1, keepdims=True)) / (block.std(1, ddof=1, keepdims=True) + 1e-5)
        np.testing.assert_allclose(z[:, a:b], expected, rtol=1e-4, atol=1e-5)
    # the last-layer ablation keeps only the last stage's columns, z-scored as one block
    last = make_z0(pooled, [3, 5], "last")
    np.testing.assert_allclose(last, z[:, 3:], rtol=1e-6)


# -- scores and metrics -----------------------------------------------------------------------------------------------


def test_mse_and_mfsim_against_hand_computation():
    z0 = torch.tensor([[1.0, 0.0, 1.0, 0.0, 0.0]])
    rec = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0]])  # block 1 orthogonal (cos 0), block 2 parallel (cos 1)
    bounds = [(0, 2), (2, 5)]
    assert mse(z0, rec).item() == pytest.approx(1 + 1 + 1)
    assert mfsim(z0, rec, bounds).item() == pytest.approx(-(0.0 + 1.0) / 2)
    assert mfsim(z0, rec, bounds, skip_first=True).item() == pytest.approx(-1.0)
    assert mfsim(z0, z0, bounds).item() == pytest.approx(-1.0)  # a perfect reconstruction
    assert mfsim(z0, -z0, bounds).item() == pytest.approx(1.0)


def test_fpr95_and_auroc_on_a_toy_case():
    id_scores = np.arange(20.0)  # 95 % TPR accepts the 19 lowest ID scores: threshold 18
    ood_scores = np.array([18.5, 10.0, 30.0, 40.0])  # only 10.0 is accepted -> FPR 1/4
    assert fpr_at_tpr(id_scores, ood_scores) == pytest.approx(0.25)
    # a tie with the threshold is accepted as ID
    assert fpr_at_tpr(id_scores, np.array([18.0, 30.0])) == pytest.approx(0.5)
    # pairs (ID, OOD) ranked correctly: 19 + (10 + ½ tie) + 20 + 20 out of 80
    assert auroc(id_scores, ood_scores) == pytest.approx(69.5 / 80)
    metrics = detection_metrics({"s": id_scores}, {"a": {"s": ood_scores}, "b": {"s": np.array([100.0])}})
    assert metrics["s"]["auroc"] == {"a": pytest.approx(69.5 / 80), "b": 1.0}
    assert metrics["s"]["mean_auroc"] == pytest.approx((69.5 / 80 + 1.0) / 2)
    assert metrics["s"]["mean_fpr95"] == pytest.approx((0.25 + 0.0) / 2)
    nan = detection_metrics({"s": np.array([0.0, np.nan])}, {"a": {"s": ood_scores}})
    assert math.isnan(nan["s"]["mean_auroc"])


# -- Algorithm 2 ------------------------------------------------------------------------------------------------------


def _algorithm_2(model, z0: torch.Tensor, t: int, eta: float, gen: torch.Generator) -> torch.Tensor:
    """The paper's loop, 1-based, written from its pseudo-code (the network sees index s − 1, as in training)."""
    betas = beta_schedule("ldm_linear", 100)
    abar = np.concatenate([[1.0], np.cumprod(1 - betas)])  # abar[0] = 1, abar[s] for s = 1..T
    z = math.sqrt(abar[t]) * z0 + math.sqrt(1 - abar[t]) * torch.randn(z0.shape, generator=gen, dtype=z0.dtype)
    for s in range(t, 0, -1):
        zh = model(z, torch.full((len(z),), s - 1))
        eps = (z - math.sqrt(abar[s]) * zh) / math.sqrt(1 - abar[s])
        sig = eta * math.sqrt((1 - abar[s - 1]) / (1 - abar[s]) * (1 - abar[s] / abar[s - 1]))
        z = math.sqrt(abar[s - 1]) * zh + math.sqrt(max(1 - abar[s - 1] - sig**2, 0.0)) * eps
        if eta > 0:
            z = z + sig * torch.randn(z0.shape, generator=gen, dtype=z0.dtype)
    return z


@pytest.mark.parametrize(("t", "eta"), [(3, 1.0), (10, 1.0), (5, 0.0), (1, 1.0)])
def test_reconstruction_is_algorithm_2(t: int, eta: float):
    def model(z: torch.Tensor, step: torch.Tensor) -> torch.Tensor:  # a hand-made x0 predictor
        return 0.8 * z + 0.01 * step[:, None].to(z.dtype) + 0.1

    z0 = torch.randn(6, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = reconstruct(feature_diffusion(LFDN()), model, z0, t, eta, torch.Generator().manual_seed(7))
    paper = _algorithm_2(model, z0, t, eta, torch.Generator().manual_seed(7))
    torch.testing.assert_close(ours, paper, rtol=1e-10, atol=1e-10)


def test_the_feature_schedule_is_dlsr_s():
    diffusion = feature_diffusion(LFDN())
    betas = np.linspace(math.sqrt(0.0015), math.sqrt(0.0195), 100) ** 2
    np.testing.assert_allclose(diffusion.betas, betas)
    assert diffusion.prediction == "x0"


# -- LFDN training ----------------------------------------------------------------------------------------------------


def test_lfdn_training_learns_keeps_epoch_1_and_repeats_exactly():
    z0 = make_z0(np.random.default_rng(0).gamma(2.0, size=(256, 12)).astype(np.float32), [4, 8], "all")
    cfg = LFDN(width=32, depth=2, epochs=4, lr=1e-3, batch_size=32)
    first = train_feature_model(cfg, z0, "diffusion", 4, seed=0, threads=1)
    again = train_feature_model(cfg, z0, "diffusion", 4, seed=0, threads=1)
    assert len(first["losses"]) == 4 and first["losses"][-1] < first["losses"][0]
    # the zero-initialised output predicts 0, whose loss is Σ z₀² ≈ 3 + 7 per sample (blocks of 4 and 8 channels,
    # unbiased z-scores); one epoch of training has already improved on it
    assert first["losses"][0] < 10.0
    changed = [k for k in first["final"] if not np.array_equal(first["final"][k], first["epoch1"][k])]
    assert changed, "the epoch-1 checkpoint must differ from the final one"
    for k, v in first["final"].items():
        np.testing.assert_array_equal(v, again["final"][k])
    ae = train_feature_model(cfg, z0, "autoencoder", 4, seed=0, threads=1)
    assert ae["losses"][-1] < ae["losses"][0]


# -- baselines --------------------------------------------------------------------------------------------------------


def test_msp_and_energy_rank_confident_logits_as_id():
    logits = np.array([[10.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    assert msp(logits)[1] == pytest.approx(-1 / 3) and msp(logits)[0] < msp(logits)[1]
    assert energy(logits)[1] == pytest.approx(-math.log(3)) and energy(logits)[0] < energy(logits)[1]


def test_mahalanobis_is_the_min_over_class_means_with_a_tied_covariance():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    features = rng.normal(size=(100, 2)) * [1.0, 3.0] + np.where(labels[:, None] == 0, [0.0, 0.0], [5.0, 0.0])
    detector = Mahalanobis(features, labels)
    means = np.stack([features[labels == c].mean(0) for c in (0, 1)])
    centred = features - means[labels]
    precision = np.linalg.inv(centred.T @ centred / len(features))
    query = np.array([[1.0, 2.0], [6.0, -1.0]])
    expected = np.min([np.einsum("ni,ij,nj->n", query - m, precision, query - m) for m in means], axis=0)
    np.testing.assert_allclose(detector.score(query), expected, rtol=1e-8)


def test_knn_is_the_distance_to_the_kth_neighbour_of_normalised_features():
    bank = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0]])
    knn = KNN(bank, k=2)
    # query along (1, 1): normalised neighbours (1,0) and (0,1) are both at distance √(2 − √2)
    np.testing.assert_allclose(knn.score(np.array([[5.0, 5.0]])), [math.sqrt(2 - math.sqrt(2))], rtol=1e-6)
    assert KNN(bank, k=50).k == 3  # never more neighbours than ID samples


# -- OOD sources ------------------------------------------------------------------------------------------------------


def test_missing_and_unreadable_sources_are_skipped_and_reported(tmp_path: Path):
    from skimage import io as skio

    good = tmp_path / "mine"
    good.mkdir()
    skio.imsave(
        good / "a.png", (np.random.default_rng(0).random((40, 30)) * 255).astype(np.uint8), check_contrast=False
    )
    (good / "broken.png").write_bytes(b"not a png")
    cfg = load_config(OODConfig, overrides=[
        f"ood.digit_sheet={tmp_path / 'absent.png'}", "ood.sets=[digits_sheet,sklearn_digits,textures,uniform_noise]",
        f"ood.folders=[{good},{tmp_path / 'nowhere'}]", "ood.texture_crops=10", "ood.noise_samples=7",
    ])  # fmt: skip
    ood = load_ood(cfg)
    assert "not found" in ood.skipped_sets["digits_sheet"]
    assert "no such folder" in ood.skipped_sets["folder:nowhere"]
    assert ood.skipped_images == {"folder:mine": 1} and "broken.png" in ood.skipped_examples[0]
    assert {k: v.shape for k, v in ood.sets.items()} == {
        "sklearn_digits": (1797, 1, 28, 28),
        "textures": (10, 1, 28, 28),
        "uniform_noise": (7, 1, 28, 28),
        "folder:mine": (1, 1, 28, 28),
    }
    assert all(v.dtype == np.float32 and v.min() >= 0 and v.max() <= 1 for v in ood.sets.values())


def test_digit_sets_are_left_out_when_the_id_data_are_digits():
    cfg = load_config(OODConfig, overrides=["data.id=digits", "ood.sets=[sklearn_digits,gaussian_noise]"])
    ood = load_ood(cfg)
    assert list(ood.sets) == ["gaussian_noise"] and "not OOD" in ood.left_out["sklearn_digits"]


# -- config -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["ood.sets=[svhn]"], r"unknown sets \['svhn'\]"),
        (["ood.sets=[lfw,lfw]"], "lists a set twice"),
        (["data.id=digits", "ood.sets=[sklearn_digits]"], "no OOD sets to score"),
        (["inference.t=[0,3]"], r"inference.t must list steps in \[1, lfdn.timesteps=100\]"),
        (["inference.t=[101]"], "inference.t must list steps"),
        (["lfdn.epochs=1"], "lfdn.epochs must be at least 2"),
        (["data.image_size=8"], "too small for 4 encoder stages"),
        (["data.id=mnist"], "bad value for config key 'data.id'"),
        (["lfdn.batch_size=0"], r"these must be positive: lfdn.batch_size=0"),
        (["data.train_samples=5"], "data.train_samples must be at least 20"),
        (["inference.eta=-1"], "inference.eta \\(DDIM's noise\\) must lie in \\[0, 1\\]"),
        (["lfdn.steps=3"], "unknown config key 'lfdn.steps'"),
    ],
)
def test_bad_configs_are_one_line_errors(override: list[str], message: str):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(OODConfig, overrides=override)
    assert "\n" not in str(info.value)


# -- throughput -------------------------------------------------------------------------------------------------------


def test_best_rates_time_every_step_and_keep_its_fastest_round():
    import time

    from fedray.tasks.ood.throughput import best_rates

    calls = {"slow": 0, "fast": 0}

    def slow(batch: torch.Tensor) -> torch.Tensor:
        calls["slow"] += 1
        time.sleep(0.01)
        return batch

    def fast(batch: torch.Tensor) -> torch.Tensor:
        calls["fast"] += 1
        return batch

    rates = best_rates({"slow": slow, "fast": fast}, torch.zeros(40, 3), batch_size=10, repeats=2)
    assert calls == {"slow": 1 + 2 * 4, "fast": 1 + 2 * 4}  # one warm-up batch, then 2 rounds of 4 batches
    assert rates["slow"] <= 40 / (4 * 0.01) and rates["fast"] > rates["slow"]
