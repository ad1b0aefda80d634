"""BPFA on a hand-built model whose activations are known, the pruning baselines, and the threshold rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from fedray.tasks.fairness.pruning import channel_bias, group_activation_norms, prune, pruning_scores
from fedray.tasks.fairness.thresholds import best_balanced_threshold, group_thresholds

# conv: 2 input channels → 2 output channels, 1×1 kernel, no bias: act_i = W[i,0]·x0 + W[i,1]·x1 on a 2×2 map
CONV_W = [[1.0, 0.5], [1.2, 3.0]]
LIN_W = [0.1 * j for j in range(1, 9)]  # Linear(8 → 1) over the flattened conv output (channel 0's 4 pixels first)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, kernel_size=1, bias=False)
        self.fc = nn.Linear(8, 1, bias=False)
        self.unused = nn.Linear(3, 3)  # never called: no statistics, never pruned
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(CONV_W).reshape(2, 2, 1, 1))
            self.fc.weight.copy_(torch.tensor([LIN_W]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def images() -> tuple[np.ndarray, np.ndarray]:
    """Constant 2×2 images. Group 0: x0 ∈ {-3, 5} (mean 1), x1 = 1. Group 1: x0 ∈ {2, 4} (mean 3), x1 = 2."""
    rows = [(-3, 1, 0), (5, 1, 0), (2, 2, 1), (4, 2, 1)]
    x = np.stack([np.stack([np.full((2, 2), a), np.full((2, 2), b)]) for a, b, _ in rows]).astype(np.float32)
    return x, np.array([g for *_, g in rows])


# By hand. Mean activation over a group's images (linear, so the activation at the mean input):
#   group 0: act0 = 1·1 + 0.5·1 = 1.5, act1 = 1.2·1 + 3·1 = 4.2
#   group 1: act0 = 1·3 + 0.5·2 = 4.0, act1 = 1.2·3 + 3·2 = 9.6
# Z = L2 norm over the 2×2 map of a constant map = 2·|value|: Z^0 = [3, 8.4], Z^1 = [8, 19.2]
#   (norm-then-average would give 2·(2.5 + 5.5)/2 = 8 for group 0's channel 0, not 3)
# BIAS = population std over two groups = half the gap: [2.5, 5.4]
# Linear: output = act0·(0.1+0.2+0.3+0.4) + act1·(0.5+0.6+0.7+0.8) = act0·1.0 + act1·2.6
#   group 0: 1.5 + 10.92 = 12.42; group 1: 4.0 + 24.96 = 28.96; Z = |mean| (a scalar map); BIAS = 8.27
Z_CONV = [[3.0, 8.4], [8.0, 19.2]]
BIAS_CONV = [2.5, 5.4]
BIAS_FC = [8.27]


def stats(model: nn.Module) -> dict[str, np.ndarray]:
    x, g = images()
    return group_activation_norms(model, x, g, num_groups=2, batch_size=3)  # batches cross the group boundary


def test_group_norms_and_bias_by_hand():
    norms = stats(Tiny())
    assert set(norms) == {"conv", "fc"}  # the unused layer has no statistics
    np.testing.assert_allclose(norms["conv"], Z_CONV, atol=1e-5)
    np.testing.assert_allclose(norms["fc"], [[12.42], [28.96]], atol=1e-4)
    bias = channel_bias(norms)
    np.testing.assert_allclose(bias["conv"], BIAS_CONV, atol=1e-5)
    np.testing.assert_allclose(bias["fc"], BIAS_FC, atol=1e-4)


def zeroed(model: nn.Module, name: str) -> list[int]:
    return torch.flatten(getattr(model, name).weight == 0).nonzero().flatten().tolist()


def test_bpfa_weig_roba_prune_the_weights_worked_out_by_hand():
    model = Tiny()
    bias = channel_bias(stats(model))
    # conv weights flattened: W00=1, W01=0.5, W10=1.2, W11=3 (index 0..3)
    #   BPFA |W|/BIAS: 1/2.5 = 0.4, 0.5/2.5 = 0.2, 1.2/5.4 = 0.222, 3/5.4 = 0.556 -> lowest two: 1, 2
    #   WEIG |W|:       1, 0.5, 1.2, 3                                         -> lowest two: 1, 0
    #   RoBA 1/BIAS:    0.4, 0.4, 0.185, 0.185                                 -> lowest two: 2, 3 (channel 1)
    expected_conv = {"bpfa": [1, 2], "weig": [0, 1], "roba": [2, 3]}
    for kind, expected in expected_conv.items():
        scores = pruning_scores(model, bias, kind)
        assert set(scores) == {"conv", "fc"}
        pruned, fractions = prune(model, scores, 0.5)
        assert zeroed(pruned, "conv") == expected, kind
        assert fractions == {"conv": 0.5, "fc": 0.5}
        assert len(zeroed(pruned, "fc")) == 4 and pruned.unused.weight.count_nonzero() == 9
    # one output channel in fc: BPFA and WEIG both drop its four smallest |w| (0.1..0.4), RoBA ties break by position
    bpfa, _ = prune(model, pruning_scores(model, bias, "bpfa"), 0.5)
    assert zeroed(bpfa, "fc") == [0, 1, 2, 3]
    assert zeroed(model, "conv") == []  # the original is untouched


def test_exact_fraction_per_layer_is_the_floor_and_random_is_seeded():
    model = Tiny()
    bias = channel_bias(stats(model))
    _, fractions = prune(model, pruning_scores(model, bias, "bpfa"), 0.3)  # ⌊0.3·4⌋ = 1, ⌊0.3·8⌋ = 2
    assert fractions == {"conv": 0.25, "fc": 0.25}
    _, fractions = prune(model, pruning_scores(model, bias, "bpfa"), 0.001)  # nothing at this size
    assert fractions == {"conv": 0.0, "fc": 0.0}
    a, _ = prune(model, pruning_scores(model, bias, "random", seed=1), 0.5)
    b, _ = prune(model, pruning_scores(model, bias, "random", seed=1), 0.5)
    c, _ = prune(model, pruning_scores(model, bias, "random", seed=2), 0.5)
    assert zeroed(a, "fc") == zeroed(b, "fc") and len(zeroed(a, "fc")) == 4
    assert (zeroed(a, "conv"), zeroed(a, "fc")) != (zeroed(c, "conv"), zeroed(c, "fc"))


def test_a_channel_without_group_difference_is_never_pruned_first():
    model = Tiny()
    bias = {"conv": np.array([0.0, 1.0])}  # channel 0 responds identically to every group
    scores = pruning_scores(model, bias, "bpfa")
    assert torch.isinf(scores["conv"][0]).all() and set(scores) == {"conv"}
    pruned, _ = prune(model, scores, 0.5)
    assert zeroed(pruned, "conv") == [2, 3]
    with pytest.raises(ValueError, match="unknown pruning score"):
        pruning_scores(model, bias, "magnitude")


def test_balanced_accuracy_threshold_and_per_group_rules():
    scores = np.array([0.1, 0.3, 0.35, 0.8, 0.9, 0.2, 0.25, 0.6, 0.7, 0.75])
    labels = np.array([0, 0, 1, 1, 1, 0, 0, 0, 1, 1])
    groups = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
    # group 0: reals 0.1, 0.3; fakes 0.35, 0.8, 0.9 -> any threshold in (0.3, 0.35] separates; midpoint 0.325
    # group 1: reals 0.2, 0.25, 0.6; fakes 0.7, 0.75 -> midpoint 0.65 separates
    assert best_balanced_threshold(scores[:5], labels[:5], 0.5) == pytest.approx(0.325)
    per_group = group_thresholds("balanced_accuracy", scores, labels, groups, 2, 0.5)
    assert per_group == pytest.approx([0.325, 0.65])
    # pooled: 0.325 (TPR 1, TNR 4/5) and 0.65 (TPR 4/5, TNR 1) tie at balanced accuracy 0.9; 0.65 is nearer 0.5
    assert group_thresholds("global", scores, labels, groups, 2, 0.5) == pytest.approx([0.65, 0.65])
    # match_fpr: at 0.5 one of five reals is flagged (0.6) -> FPR* = 0.2; group 0 (2 reals) may flag ⌊0.4⌋ = 0,
    # so its threshold sits just above its highest real (0.3); group 1 (3 reals) may flag ⌊0.6⌋ = 0 as well
    fpr = group_thresholds("match_fpr", scores, labels, groups, 2, 0.5)
    assert fpr == pytest.approx([0.3 + 1e-6, 0.6 + 1e-6])
