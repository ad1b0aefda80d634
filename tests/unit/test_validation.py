import numpy as np
import pytest

from fedray.server.validation import update_problem

REF = {"w": np.zeros((2, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}


def _ok():
    return {k: v + 0.1 for k, v in REF.items()}


def test_a_good_update_passes():
    assert update_problem(_ok(), 5, REF, max_norm=1.0) is None


@pytest.mark.parametrize(
    ("mutate", "n", "fragment"),
    [
        (lambda a: a.update(w=np.full((2, 2), np.inf, dtype=np.float32)), 5, "non-finite"),
        (lambda a: a.update(w=np.zeros((3, 2), dtype=np.float32)), 5, "shape"),
        (lambda a: a.update(w=np.zeros((2, 2), dtype=np.float64)), 5, "dtype"),
        (lambda a: a.pop("b"), 5, "names differ"),
        (lambda a: a.update(extra=np.zeros(1, dtype=np.float32)), 5, "names differ"),
        (lambda a: a.update(w=[[0, 0], [0, 0]]), 5, "not an array"),
        (lambda a: None, 0, "num_examples must be a positive integer"),
        (lambda a: None, 2.5, "num_examples must be a positive integer"),
        (lambda a: a.update(w=np.full((2, 2), 10, dtype=np.float32)), 5, "exceeds the bound"),
    ],
)
def test_each_problem_is_named(mutate, n, fragment):
    arrays = _ok()
    mutate(arrays)
    problem = update_problem(arrays, n, REF, max_norm=1.0)
    assert problem is not None and fragment in problem


def test_not_a_mapping():
    assert "mapping" in update_problem([1, 2], 5, REF, None)
