"""Continual-learning metrics on a hand-computed accuracy matrix."""

from __future__ import annotations

import pytest

from fedray.platform.metrics.continual import average_accuracy, backward_transfer, forgetting

MATRIX = [
    [0.9],
    [0.6, 0.8],
    [0.7, 0.5, 0.9],
]


def test_forgetting_uses_the_best_earlier_accuracy():
    # task 1: max(0.9, 0.6, 0.7) − 0.7 = 0.2; task 2: max(0.8, 0.5) − 0.5 = 0.3 → mean 0.25
    assert forgetting(MATRIX) == pytest.approx(0.25)
    assert forgetting(MATRIX[:2]) == pytest.approx(0.3)
    assert forgetting(MATRIX[:1]) == 0.0


def test_backward_transfer():
    # (0.7 − 0.9 + 0.5 − 0.8) / 2 = −0.25
    assert backward_transfer(MATRIX) == pytest.approx(-0.25)
    assert backward_transfer(MATRIX[:1]) == 0.0


def test_average_accuracy_pools_the_test_samples():
    # (0.7·100 + 0.5·300 + 0.9·100) / 500 = 0.62
    assert average_accuracy(MATRIX[2], [100, 300, 100]) == pytest.approx(0.62)
    assert average_accuracy(MATRIX[0], [100, 300, 100]) == pytest.approx(0.9)
