import numpy as np
import pytest

from fedray.server.config import ServerConfig
from fedray.server.strategies import aggregate_named


def _u(value, n):
    return ({"w": np.full((2,), value, dtype=np.float32), "b": np.array([value], dtype=np.float32)}, n)


def test_fedavg_weights_by_examples():
    # Prepare: (1·10 + 4·30) / 40 = 3.25
    out = aggregate_named("fedavg", [_u(1.0, 10), _u(4.0, 30)], ServerConfig())
    np.testing.assert_allclose(out["w"], [3.25, 3.25])
    assert out["w"].dtype == np.float32 and list(out) == ["w", "b"]


def test_median_ignores_one_outlier():
    out = aggregate_named("median", [_u(1.0, 1), _u(2.0, 1), _u(1000.0, 1)], ServerConfig())
    np.testing.assert_allclose(out["b"], [2.0])


def test_trimmed_mean_cuts_both_ends():
    updates = [_u(v, 1) for v in (-100.0, 1.0, 2.0, 3.0, 100.0)]
    out = aggregate_named("trimmed_mean", updates, ServerConfig(trim_fraction=0.2))
    np.testing.assert_allclose(out["w"], [2.0, 2.0])


def test_krum_picks_a_client_from_the_honest_cluster():
    updates = [_u(v, 1) for v in (1.0, 1.1, 0.9, 1.05, 50.0)]
    out = aggregate_named("krum", updates, ServerConfig(num_byzantine=1))
    assert 0.9 <= float(out["b"][0]) <= 1.1


def test_unknown_strategy_and_empty_input():
    with pytest.raises(ValueError, match="unknown strategy"):
        aggregate_named("fedsgd", [_u(1.0, 1)], ServerConfig())
    with pytest.raises(ValueError, match="nothing to aggregate"):
        aggregate_named("fedavg", [], ServerConfig())
