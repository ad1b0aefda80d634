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


def test_fedprox_aggregates_like_fedavg():
    out = aggregate_named("fedprox", [_u(1.0, 10), _u(4.0, 30)], ServerConfig())
    np.testing.assert_allclose(out["w"], [3.25, 3.25])


def test_server_adam_follows_the_published_update():
    from fedray.server.strategies import ServerAdam

    # Prepare: global 0, average 1 → Δ = 1; m = 0.1, v = 0.01 after one step; w = 0.5 · 0.1 / (0.1 + 0.01)
    opt = ServerAdam(lr=0.5, beta1=0.9, beta2=0.99, tau=0.01)
    w = opt.step({"w": np.zeros(2, dtype=np.float32)}, {"w": np.ones(2, dtype=np.float32)})
    np.testing.assert_allclose(w["w"], 0.5 * 0.1 / (0.1 + 0.01), rtol=1e-6)
    assert w["w"].dtype == np.float32
    # Second step with the same average: m and v carry over from the first
    w2 = opt.step(w, {"w": np.ones(2, dtype=np.float32)})
    delta = 1 - 0.5 * 0.1 / 0.11
    m, v = 0.9 * 0.1 + 0.1 * delta, 0.99 * 0.01 + 0.01 * delta**2
    np.testing.assert_allclose(w2["w"], w["w"] + 0.5 * m / (np.sqrt(v) + 0.01), rtol=1e-5)
