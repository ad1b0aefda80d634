"""FairFD metrics against numbers worked out by hand (every metric, both forms, both UR denominators)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedray.platform.errors import DataError
from fedray.platform.metrics.fairness import (
    METRIC_NAMES,
    accuracy_matrix,
    all_fairness_metrics,
    cell_counts,
    group_rates,
    official_metrics,
    paper_metrics,
    paper_metrics_from_counts,
    predict_fake,
    scores_to_accuracy_matrix,
)

# rows: real, method A, method B; columns: groups 0 and 1
ACC = np.array([[0.9, 0.7], [0.8, 0.6], [0.5, 0.7]])

# By hand, official (notebook) form:
#   mean over rows per group: g0 (0.9+0.8+0.5)/3 = 0.733333, g1 (0.7+0.6+0.7)/3 = 0.666667
#     DPD = 0.733333 - 0.666667 = 0.066667;  STD (population, two values) = half the gap = 0.033333
#   mean over method rows per group: g0 (0.8+0.5)/2 = 0.65, g1 (0.6+0.7)/2 = 0.65 -> DEO = 0 (A and B cancel:
#     the "bias offset" AA exists for);  DEOdds = 0.5 * (ptp(real) 0.2 + 0) = 0.1
#   per-row ptp: 0.2, 0.2, 0.2; per-row std: 0.1, 0.1, 0.1
#     AADPD = 0.2, AADEOdds = 0.5 * (0.2 + 0.2) = 0.2, AADEO = 0.2, AASTD = 0.1
#   row means 0.8, 0.7, 0.6
#   UR, ACC + 1 (1.8, 1.7, 1.6): gaps 0.2/1.8 = 0.111111, 0.2/1.7 = 0.117647, 0.2/1.6 = 0.125
#     URDPD = (0.111111 + 0.117647 + 0.125) / 3 = 0.117919
#     URDEO = (0.117647 + 0.125) / 2 = 0.121324;  URDEOdds = 0.5 * (0.111111 + 0.121324) = 0.116217
#     URSTD = (0.1/1.8 + 0.1/1.7 + 0.1/1.6) / 3 = (0.055556 + 0.058824 + 0.0625) / 3 = 0.058960
#   UR, ACC (0.8, 0.7, 0.6): gaps 0.25, 0.285714, 0.333333
#     URDPD = 0.869048 / 3 = 0.289683;  URDEO = (0.285714 + 0.333333) / 2 = 0.309524
#     URDEOdds = 0.5 * (0.25 + 0.309524) = 0.279762;  URSTD = (0.125 + 0.142857 + 0.166667) / 3 = 0.144841
OFFICIAL_NAIVE_AA = {"DPD": 0.066667, "DEOdds": 0.1, "DEO": 0.0, "STD": 0.033333,
                     "AADPD": 0.2, "AADEOdds": 0.2, "AADEO": 0.2, "AASTD": 0.1}  # fmt: skip
OFFICIAL_UR = {
    "acc_plus_one": {"URDPD": 0.117919, "URDEOdds": 0.116217, "URDEO": 0.121324, "URSTD": 0.058960},
    "acc": {"URDPD": 0.289683, "URDEOdds": 0.279762, "URDEO": 0.309524, "URSTD": 0.144841},
}

# The same accuracies from unequal cells, so the paper's sample-pooled form differs from the notebook's:
#   (n, predicted fake) per cell   group 0      group 1
#   real                           (10, 1)      (10, 3)     acc 0.9 / 0.7
#   method A                       (10, 8)      (10, 6)     acc 0.8 / 0.6
#   method B                       (20, 10)     (10, 7)     acc 0.5 / 0.7
N = np.array([[10, 10], [10, 10], [20, 10]])
K = np.array([[1, 3], [8, 6], [10, 7]])
# By hand, paper form:
#   P(Ŷ=1 | s): g0 (1+8+10)/40 = 0.475, g1 (3+6+7)/30 = 0.533333 -> DPD = 0.058333
#   P(Ŷ=1 | Y=0, s): 0.1, 0.3 (gap 0.2);  P(Ŷ=1 | Y=1, s): g0 18/30 = 0.6, g1 13/20 = 0.65 -> DEO = 0.05
#     DEOdds = 0.5 * (0.2 + 0.05) = 0.125
#   acc(s): g0 (9+8+10)/40 = 0.675, g1 (7+6+7)/30 = 0.666667 -> STD = 0.008333 / 2 = 0.004167
#   AA: per-source gaps as in the official form -> 0.2, 0.2, 0.2, 0.1
#   ACC_{F=f} pooled: real 16/20 = 0.8, A 14/20 = 0.7, B 17/30 = 0.566667
#   UR, ACC: gaps 0.25, 0.285714, 0.352941 -> URDPD = 0.888655 / 3 = 0.296218
#     URDEO = (0.285714 + 0.352941) / 2 = 0.319328;  URDEOdds = 0.5 * (0.25 + 0.319328) = 0.284664
#     URSTD = (0.125 + 0.142857 + 0.176471) / 3 = 0.148109
#   UR, ACC + 1 (1.8, 1.7, 1.566667): gaps 0.111111, 0.117647, 0.127660 -> URDPD = 0.356418 / 3 = 0.118806
#     URDEO = 0.122653;  URDEOdds = 0.5 * (0.111111 + 0.122653) = 0.116882
#     URSTD = (0.055556 + 0.058824 + 0.063830) / 3 = 0.059403
PAPER_NAIVE_AA = {"DPD": 0.058333, "DEOdds": 0.125, "DEO": 0.05, "STD": 0.004167,
                  "AADPD": 0.2, "AADEOdds": 0.2, "AADEO": 0.2, "AASTD": 0.1}  # fmt: skip
PAPER_UR = {
    "acc": {"URDPD": 0.296218, "URDEOdds": 0.284664, "URDEO": 0.319328, "URSTD": 0.148109},
    "acc_plus_one": {"URDPD": 0.118806, "URDEOdds": 0.116882, "URDEO": 0.122653, "URSTD": 0.059403},
}


def samples_from_counts(n: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-sample (label, prediction, method, group) arrays that have the given cell counts."""
    y, pred, method, group = [], [], [], []
    for f in range(n.shape[0]):
        for s in range(n.shape[1]):
            y += [int(f > 0)] * n[f, s]
            pred += [1] * k[f, s] + [0] * (n[f, s] - k[f, s])
            method += [f - 1 if f else 7] * n[f, s]  # a real sample's method is ignored
            group += [s] * n[f, s]
    return tuple(np.array(a) for a in (y, pred, method, group))


def close(got: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.parametrize("denominator", ["acc_plus_one", "acc"])
def test_official_matrix_form_by_hand(denominator):
    got = official_metrics(ACC, denominator)
    assert set(got) == set(METRIC_NAMES)
    close(got, OFFICIAL_NAIVE_AA)
    close(got, OFFICIAL_UR[denominator])


def test_the_default_denominator_is_acc_plus_one_and_ur_never_exceeds_aa_with_it():
    got = official_metrics(ACC)
    close(got, OFFICIAL_UR["acc_plus_one"])
    for m in ("DPD", "DEOdds", "DEO", "STD"):
        assert got[f"UR{m}"] <= got[f"AA{m}"] <= official_metrics(ACC, "acc")[f"UR{m}"]


@pytest.mark.parametrize("denominator", ["acc", "acc_plus_one"])
def test_paper_probability_form_by_hand(denominator):
    y, pred, method, group = samples_from_counts(N, K)
    got = paper_metrics(y, pred, method, group, denominator)
    assert set(got) == set(METRIC_NAMES)
    close(got, PAPER_NAIVE_AA)
    close(got, PAPER_UR[denominator])
    assert paper_metrics_from_counts(N, K, denominator) == got


def test_counts_and_accuracy_matrix_from_samples():
    y, pred, method, group = samples_from_counts(N, K)
    n, k = cell_counts(y, pred, method, group)
    assert n.tolist() == N.tolist() and k.tolist() == K.tolist()
    assert accuracy_matrix(n, k) == pytest.approx(ACC)
    # with equal cells the paper's AA and UR equal the official ones, the naive metrics need not
    official = official_metrics(ACC, "acc")
    paper = paper_metrics_from_counts(N, K, "acc")
    assert paper["AADPD"] == official["AADPD"] and paper["DPD"] != pytest.approx(official["DPD"])


def test_accuracy_matrix_from_scores_at_a_threshold():
    # group 0: real 0.2 (right at 0.5), fake 0.7 (right); group 1: real 0.6 (wrong), fake 0.4 (wrong)
    y, scores, method, group = [0, 1, 0, 1], [0.2, 0.7, 0.6, 0.4], [0, 0, 0, 0], [0, 0, 1, 1]
    assert scores_to_accuracy_matrix(y, scores, method, group).tolist() == [[1.0, 0.0], [1.0, 0.0]]
    # at 0.3 the fake of group 1 is caught and the real of group 0 still passes
    assert scores_to_accuracy_matrix(y, scores, method, group, 0.3).tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_group_rates_by_hand():
    rates = group_rates(N, K)
    assert rates["tpr"] == pytest.approx([0.6, 0.65])  # 18/30, 13/20
    assert rates["fpr"] == pytest.approx([0.1, 0.3])
    assert rates["acc"] == pytest.approx([0.675, 2 / 3])  # 27/40, 20/30


def test_threshold_is_inclusive_and_may_differ_per_sample():
    scores = np.array([0.5, 0.49, 0.7, 0.2])
    assert predict_fake(scores).tolist() == [1, 0, 1, 0]
    assert predict_fake(scores, 0.8).tolist() == [0, 0, 0, 0]
    assert predict_fake(scores, np.array([0.6, 0.4, 0.8, 0.1])).tolist() == [0, 1, 0, 1]


def test_every_block_is_labelled():
    blocks = all_fairness_metrics(N, K)
    assert set(blocks) == {"official_ur_acc_plus_one", "official_ur_acc", "paper_ur_acc", "paper_ur_acc_plus_one"}
    for name, block in blocks.items():
        assert name == f"{block['variant']}_ur_{block['ur_denominator']}"
    close(blocks["official_ur_acc"], OFFICIAL_UR["acc"])
    close(blocks["paper_ur_acc_plus_one"], PAPER_UR["acc_plus_one"])


def test_degenerate_inputs():
    with pytest.raises(DataError, match="at least two groups"):
        official_metrics(ACC[:, :1])
    with pytest.raises(DataError, match="at least two groups"):
        paper_metrics([0, 1], [0, 1], [0, 0], [0, 0])
    with pytest.raises(DataError, match=r"1 cells have no samples, e\.g\. \(row 2, group 1\)"):
        paper_metrics_from_counts(np.array([[2, 2], [2, 2], [2, 0]]), np.zeros((3, 2), dtype=int))
    with pytest.raises(DataError, match="real row and at least one method row"):
        official_metrics(ACC[:1])
    with pytest.raises(DataError, match="must be 0 \\(real\\) or 1"):
        cell_counts([0, 2], [0, 1], [0, 0], [0, 1])
    # a source never detected (accuracy 0) has no gap: 0 / (0 + 1) = 0, but 0 / 0 = NaN with the paper's text
    zero = np.array([[0.9, 0.7], [0.0, 0.0]])
    assert official_metrics(zero)["URDEO"] == 0.0
    assert math.isnan(official_metrics(zero, "acc")["URDEO"])
    # identical groups: every metric is 0
    flat = official_metrics(np.array([[0.8, 0.8], [0.6, 0.6]]), "acc")
    assert all(v == pytest.approx(0.0) for v in flat.values())
