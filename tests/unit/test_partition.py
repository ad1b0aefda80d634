import numpy as np
import pytest

from fedray.platform.data.partition import dirichlet_partition, iid_partition, make_client_shards
from fedray.platform.errors import ConfigError

LABELS = np.repeat(np.arange(10), 100)


def _label_entropy(labels, part):
    counts = np.bincount(labels[part], minlength=10) / len(part)
    counts = counts[counts > 0]
    return -(counts * np.log(counts)).sum()


def test_dirichlet_covers_every_sample_once_and_respects_min_size():
    parts = dirichlet_partition(LABELS, 7, 0.3, np.random.default_rng(0), min_size=20)
    joined = np.concatenate(parts)
    assert sorted(joined.tolist()) == list(range(len(LABELS)))
    assert min(len(p) for p in parts) >= 20


def test_small_alpha_skews_labels_more_than_iid():
    skewed = dirichlet_partition(LABELS, 5, 0.1, np.random.default_rng(1))
    iid = iid_partition(len(LABELS), 5, np.random.default_rng(1))
    assert np.mean([_label_entropy(LABELS, p) for p in skewed]) < 0.8 * np.mean(
        [_label_entropy(LABELS, p) for p in iid]
    )


def test_shards_are_deterministic_and_train_test_disjoint():
    a = make_client_shards(LABELS, 4, "dirichlet", 0.5, 0.25, seed=3)
    b = make_client_shards(LABELS, 4, "dirichlet", 0.5, 0.25, seed=3)
    c = make_client_shards(LABELS, 4, "dirichlet", 0.5, 0.25, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.train, y.train)
    assert any(len(x.train) != len(z.train) or (x.train != z.train).any() for x, z in zip(a, c, strict=True))
    for s in a:
        assert not set(s.train) & set(s.test)
        assert abs(len(s.test) - 0.25 * (len(s.train) + len(s.test))) <= 1


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"scheme": "dirichlet", "alpha": -1.0, "test_fraction": 0.2}, "alpha must be positive"),
        ({"scheme": "iid", "alpha": 1.0, "test_fraction": 1.5}, "test_fraction"),
        ({"scheme": "zipf", "alpha": 1.0, "test_fraction": 0.2}, "unknown partition scheme"),
    ],
)
def test_bad_partition_settings(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make_client_shards(LABELS, 4, seed=0, **kwargs)


def test_too_many_clients_for_the_data():
    with pytest.raises(ConfigError, match="cannot give 200 clients"):
        dirichlet_partition(LABELS, 200, 1.0, np.random.default_rng(0), min_size=10)
