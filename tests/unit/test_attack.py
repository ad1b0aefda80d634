"""The attack workload: CAMs on a hand-computed case, the constraints of every attack, the CAM objective, adaptive
region choice, the success rate, bad input, and a tiny inline run end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import ATTACK_TINY
from torch import nn

from fedray.cluster.launch import resolve_config, run_workload
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.modules.build import build_model
from fedray.platform.modules.cam import batch_minmax, cam_weight, channel_cams, release_cam, saliency
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.heads import ClassifierHead
from fedray.tasks.attack.attacks import attack_specs, craft_shard, perturb
from fedray.tasks.attack.config import ATTACKS, AttackConfig
from fedray.tasks.attack.metrics import attack_success_rate, outcome, perturbation_stats
from fedray.tasks.attack.regions import box_mask, group_masks, load_mask_file, select_groups, union_mask

SIZE = 16


class Identity(nn.Module):
    """A 'classifier' whose features are its input, so its CAM can be computed by hand."""

    def __init__(self, weight: list[list[float]]) -> None:
        super().__init__()
        self.head = ClassifierHead(len(weight[0]), len(weight))
        with torch.no_grad():
            self.head.fc.weight.copy_(torch.tensor(weight))
            self.head.fc.bias.zero_()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@pytest.fixture(scope="module")
def model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("cnn", ModelConfig(widths=[4, 8]), 1, 2).eval()


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, SIZE, SIZE, generator=gen)
    x[0, 0, :2] = 0.0  # some pixels at the bounds, so clipping to [0, 1] matters
    x[1, 0, -2:] = 1.0
    y = torch.tensor([0, 1, 0, 1])
    mask = torch.from_numpy(union_mask(AttackConfig().regions.boxes, AttackConfig().regions.fixed, SIZE))
    return x, y, mask.expand(4, 1, SIZE, SIZE).contiguous()


# --- class activation maps -------------------------------------------------------------------------------------------


def test_channel_cams_match_a_hand_computed_case():
    # Prepare: two channels of 2×2 features; class 1's weights are (-1, 2)
    net = Identity([[1.0, 0.0], [-1.0, 2.0]])
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.5, -1.0], [2.0, 0.0]]]])
    # Execute
    cams = channel_cams(net, x, torch.tensor([1]))
    predicted = channel_cams(net, x)  # logits: class 0 = 2.5, class 1 = -2.5 + 0.75 → class 0
    # Assert: ReLU(F ⊙ w_c)
    expected = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [4.0, 0.0]]]])
    torch.testing.assert_close(cams, expected)
    torch.testing.assert_close(predicted, torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]]]))
    torch.testing.assert_close(batch_minmax(cams), expected / 4.0)
    torch.testing.assert_close(saliency(net, x, torch.tensor([1])), torch.tensor([[[1.0, 0.0], [4.0, 0.0]]]))


def test_release_cam_normalises_over_the_whole_batch_then_resizes():
    net = Identity([[1.0, 0.0], [0.0, 1.0]])
    x = torch.zeros(2, 2, 4, 4)
    x[0, 0] = 2.0  # image 0 predicts class 0, its CAM is channel 0 = 2
    x[1, 1] = 8.0  # image 1 predicts class 1, its CAM is channel 1 = 8
    maps = release_cam(net, x, size=8)
    assert maps.shape == (2, 2, 8, 8)
    torch.testing.assert_close(maps[0, 0], torch.full((8, 8), 0.25))  # 2 / 8: one scale for the batch
    torch.testing.assert_close(maps[1, 1], torch.ones(8, 8))
    assert maps[0, 1].abs().max() == 0 and maps[1, 0].abs().max() == 0


def test_a_model_without_gap_and_fc_has_no_cam():
    with pytest.raises(TypeError, match=r"no forward_features and head\.fc"):
        cam_weight(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))


# --- the attacks ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ATTACKS)
def test_every_attack_stays_in_its_eps_ball_and_in_the_unit_range(model, batch, name):
    x, y, mask = batch
    spec = attack_specs(AttackConfig())[name]
    final = perturb(model, spec, x, y, mask, torch.Generator().manual_seed(1))
    delta = final - x
    assert final.min() >= 0 and final.max() <= 1
    assert delta.abs().max() <= spec.eps + 1e-6
    assert delta.abs().max() > 0  # it did move


@pytest.mark.parametrize("name", ["asma", "asma_masked", "pgd_masked_ce"])
def test_masked_attacks_leave_every_pixel_outside_the_mask_alone(model, batch, name):
    x, y, mask = batch
    final = perturb(model, attack_specs(AttackConfig())[name], x, y, mask, torch.Generator().manual_seed(1))
    delta = final - x
    assert (delta[mask == 0] == 0).all()
    assert (delta[mask == 1] != 0).float().mean() > 0.5


def test_the_cam_discrepancy_grows_over_the_iterations(model, batch):
    x, y, mask = batch
    spec = attack_specs(AttackConfig())["asma"]
    trace: list[float] = []
    perturb(model, spec, x, y, mask, torch.Generator().manual_seed(1), trace)
    assert len(trace) == spec.steps
    assert trace[-1] > 2 * trace[0] and max(trace) == pytest.approx(max(trace[-5:]))


def test_fgsm_is_one_signed_gradient_step(model, batch):
    x, y, mask = batch
    spec = attack_specs(AttackConfig())["fgsm"]
    final = perturb(model, spec, x, y, mask, torch.Generator().manual_seed(1))
    probe = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(probe), y), probe)
    torch.testing.assert_close(final, (x + spec.eps * grad.sign()).clamp(0, 1))


def test_craft_shard_results_do_not_depend_on_the_sharding(model, batch):
    x, y, mask = batch
    spec = attack_specs(AttackConfig())["asma"]
    groups = group_masks(AttackConfig().regions.boxes, AttackConfig().regions.candidates, SIZE)
    args = (groups, {"rule": "topk", "k": 2}, 2, 0)
    whole = craft_shard(model, spec, x.numpy(), y.numpy(), mask[:, 0].numpy(), *args, 0, 1)["images"]
    halves = [
        craft_shard(model, spec, x[i : i + 2].numpy(), y[i : i + 2].numpy(), mask[i : i + 2, 0].numpy(), *args, i, 1)
        for i in (0, 2)
    ]
    np.testing.assert_array_equal(whole, np.concatenate([h["images"] for h in halves]))


# --- regions ----------------------------------------------------------------------------------------------------------


def test_adaptive_selection_picks_the_region_with_the_highest_cam():
    boxes = AttackConfig().regions.boxes
    candidates = AttackConfig().regions.candidates  # eyes, brows, nose, mouth, cheeks
    size = 64  # the boxes do not touch at this size
    groups = group_masks(boxes, candidates, size)
    sal = np.full((2, size, size), 0.1)
    sal[0] += 5 * box_mask(boxes["mouth"], size)  # image 0: the mouth lights up
    sal[1] += 3 * box_mask(boxes["nose"], size) + 2 * box_mask(boxes["l_eye"], size)
    top1 = select_groups(sal, groups, "topk", 1)
    assert top1.tolist() == [[False, False, False, True, False], [False, False, True, False, False]]
    top2 = select_groups(sal, groups, "topk", 2)
    assert top2[1].tolist() == [True, False, True, False, False]  # nose, then the eyes (one eye lit)
    above = select_groups(sal, groups, "above_mean", 0)
    assert above[0].tolist() == [False, False, False, True, False]
    flat = select_groups(np.ones((1, size, size)), groups, "above_mean", 0)
    assert flat.sum() == 1  # nothing above the mean: the best group still gets attacked


def test_mask_files_are_read_and_shape_checked(tmp_path: Path):
    one = np.zeros((SIZE, SIZE))
    one[4:8, 4:8] = 1
    np.save(tmp_path / "one.npy", one)
    masks = load_mask_file(tmp_path / "one.npy", 3, SIZE)
    assert masks.shape == (3, SIZE, SIZE) and masks.sum() == 3 * 16
    np.save(tmp_path / "wrong.npy", np.ones((2, SIZE, SIZE)))
    with pytest.raises(DataError, match=r"has shape \(2, 16, 16\); expected \[16, 16\] or \[3, 16, 16\]"):
        load_mask_file(tmp_path / "wrong.npy", 3, SIZE)
    np.save(tmp_path / "empty.npy", np.zeros((SIZE, SIZE)))
    with pytest.raises(DataError, match="empty mask"):
        load_mask_file(tmp_path / "empty.npy", 3, SIZE)
    (tmp_path / "mask.txt").write_text("1 0")
    with pytest.raises(DataError, match=r"must be a \.npy file or a folder"):
        load_mask_file(tmp_path / "mask.txt", 3, SIZE)
    with pytest.raises(DataError, match="does not exist"):
        load_mask_file(tmp_path / "nothing.npy", 3, SIZE)
    (tmp_path / "bad.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match=r"regions\.mask_file=.*bad\.npy is not a readable \.npy array: not a \.npy"):
        load_mask_file(tmp_path / "bad.npy", 3, SIZE)


def test_a_folder_of_mask_images_is_one_mask_per_image(tmp_path: Path):
    from skimage.io import imsave

    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(2):
        img = np.zeros((SIZE, SIZE), dtype=np.uint8)
        img[i : i + 4, :4] = 255
        imsave(folder / f"{i}.png", img, check_contrast=False)
    masks = load_mask_file(folder, 2, SIZE)
    assert masks.shape == (2, SIZE, SIZE) and masks[0, 0, 0] == 1 and masks[1, 0, 0] == 0
    with pytest.raises(DataError, match="expected"):
        load_mask_file(folder, 5, SIZE)


# --- metrics ----------------------------------------------------------------------------------------------------------


def test_attack_success_rate_counts_only_images_correct_before():
    before = np.array([True, True, True, False, False])
    after = np.array([False, True, False, False, True])
    assert attack_success_rate(before, after) == pytest.approx(2 / 3)
    assert np.isnan(attack_success_rate(np.zeros(2, bool), np.zeros(2, bool)))
    labels = np.array([1, 1, 0, 0])
    out = outcome(labels, np.array([1, 1, 0, 1]), np.array([0, 1, 0, 0]))
    assert out == {"acc_before": 0.75, "acc_after": 0.75, "asr": pytest.approx(1 / 3), "asr_fake": 0.5}


def test_perturbation_stats_on_a_hand_case():
    x = np.zeros((2, 1, 8, 8))
    final = x.copy()
    final[0, 0, 0, :2] = 0.1  # two pixels of image 0
    stats = perturbation_stats(x, final)
    assert stats["perturbed_area"] == pytest.approx((2 / 64 + 0) / 2)
    assert stats["l2"] == pytest.approx(np.sqrt(0.02) / 2)
    assert stats["linf"] == pytest.approx(0.05)
    assert stats["psnr_images"] == 1 and stats["psnr"] == pytest.approx(10 * np.log10(1 / (0.02 / 64)))
    assert stats["ssim"] < 1


# --- configuration and input errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("asma.epsilon=0.1", "unknown config key 'asma.epsilon'"),
        ("victims.vgg.epochs=2", "unknown config key 'victims.vgg'"),
        ("attacks=[asma,cw]", "attacks: unknown \\['cw'\\]"),
        ("adaptive.k=5", "adaptive.k=5 must lie in \\[1, 4\\]"),
        ("regions.fixed=[nose,chin]", "regions name boxes that regions.boxes lacks: \\['chin'\\]"),
        ("asma.eps=0", "asma.eps must lie in \\(0, 1\\]"),
        ("data.forgery.families=[blur,warp]", "data.forgery.families: unknown \\['warp'\\]"),
        ("victims.resnet.model.widths=[8,0]", "victims.resnet.model.widths must be one or more positive"),
    ],
)
def test_bad_configs_are_one_line_errors(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        resolve_config("attack", overrides=[override])


# --- end to end -----------------------------------------------------------------------------------------------------

TINY = ["cluster.mode=inline", *ATTACK_TINY, "grid_images=3"]


def same(a: dict, b: dict) -> bool:
    """Equal nested results, NaN included (an undefined ASR is NaN on both sides)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def run(tmp_path: Path, *overrides: str) -> tuple[dict, Path]:
    cfg = resolve_config("attack", overrides=[*TINY, f"run.root={tmp_path}", *overrides])
    summary, run_dir = run_workload("attack", cfg)
    return summary, run_dir.path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[dict, Path]:
    return run(tmp_path_factory.mktemp("attack"), "run.name=tiny")


def test_a_tiny_run_reports_every_attack_on_both_victims(tiny_run):
    summary, path = tiny_run
    on_disk = json.loads((path / "metrics.json").read_text())
    assert same(on_disk["results"], summary["results"]) and same(on_disk["headline"], summary["headline"])
    assert set(summary["results"]) == set(ATTACKS) and summary["runtime"] == "inline"
    assert summary["data"]["test_images"] == 8 and summary["data"]["test_fakes"] == 4
    assert summary["data"]["train_faces"] + summary["data"]["test_faces"] == 100
    fixed_area = summary["regions"]["fixed_area"]
    for attack, r in summary["results"].items():
        assert set(r["white_box"]) == set(r["transfer_asr"]) == {"cnn", "resnet"}, attack
        for row in r["transfer_asr"].values():
            assert set(row) == {"cnn", "resnet"}
        for w in r["white_box"].values():
            if attack in ("asma", "asma_masked", "pgd_masked_ce"):
                assert 0 < w["perturbed_area"] <= fixed_area + 1e-9
    assert summary["results"]["fgsm"]["white_box"]["cnn"]["linf"] == pytest.approx(8 / 255, abs=1e-6)
    assert "chosen_share" in summary["results"]["asma_adaptive"]["white_box"]["cnn"]
    for name in ("cnn", "resnet"):
        assert summary["victims"][name]["source"] == "trained in this run"
        assert (path / "checkpoints" / f"{name}.safetensors").is_file()
    plots = {p.name for p in (path / "plots").iterdir()}
    assert plots == {"regions.png", *(f"attack_{a}.png" for a in ATTACKS)}


def test_saved_victims_attack_again_with_the_same_numbers(tiny_run, tmp_path: Path):
    summary, path = tiny_run
    again, _ = run(
        tmp_path,
        f"victims.cnn.checkpoint={path / 'checkpoints' / 'cnn.safetensors'}",
        f"victims.resnet.checkpoint={path / 'checkpoints' / 'resnet.safetensors'}",
        "attacks=[asma,fgsm]",
        "shards=1",
    )
    assert again["victims"]["cnn"]["source"].endswith("cnn.safetensors")
    for attack in ("asma", "fgsm"):
        assert same(again["results"][attack], summary["results"][attack]), attack


def test_a_missing_checkpoint_or_a_bad_mask_file_is_a_one_line_error(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        run(tmp_path, f"victims.cnn.checkpoint={tmp_path / 'none.safetensors'}")
    np.save(tmp_path / "mask.npy", np.ones((32, 32)))
    with pytest.raises(DataError, match=r"has shape \(1, 32, 32\); expected \[16, 16\]"):
        run(tmp_path, f"regions.mask_file={tmp_path / 'mask.npy'}")
    for name, content in (("short", b"\x89P"), ("garbage", np.random.default_rng(0).bytes(300))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "a.png").write_bytes(content)
        with pytest.raises(DataError, match=re.escape(f"regions.mask_file: cannot read {folder / 'a.png'} (")) as info:
            load_mask_file(folder, 4, 16)
        assert "\n" not in str(info.value)
