"""Mamba-CL's projector: the elbow rule, the projection matrix, and the projected Adam update."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedray.platform.optim.null_space import elbow_index, null_space_basis, projection_matrix
from fedray.platform.optim.projected_adam import ProjectedAdam


def _low_rank(rows: int, dim: int, rank: int, seed: int = 0) -> torch.Tensor:
    """Features in a ``rank``-dimensional subspace with a flat spectrum there (the elbow is the drop to the tail;
    a steeply decaying spectrum would put the elbow among the large values, by design of the rule)."""
    g = torch.Generator().manual_seed(seed)
    subspace, _ = torch.linalg.qr(torch.randn(dim, rank, generator=g, dtype=torch.float64))
    data = torch.randn(rows, rank, generator=g, dtype=torch.float64) @ subspace.T
    return data + 1e-7 * torch.randn(rows, dim, generator=g, dtype=torch.float64)  # distinct tiny tail values


def test_elbow_of_a_short_spectrum_is_the_drop_unsmoothed():
    # n < 128: second differences of the raw values; d2 peaks right after the drop from 9 to 1
    spectrum = np.array([10.0, 9.5, 9.0, 1.0, 0.9, 0.8, 0.7, 0.6])
    # d1 = [.5,.5,8,.1,.1,.1,.1], d2 = [0,-7.5,7.9,0,0,0] → argmax 2, offset (8-6)//2 = 1 → thr = S[3] = 1.0
    assert elbow_index(spectrum) == 3


def test_elbow_of_a_long_spectrum_is_found_after_smoothing():
    spectrum = np.concatenate([np.linspace(10, 9, 40), np.linspace(1e-3, 1e-4, 88)])  # n = 128: smoothed branch
    index = elbow_index(spectrum)
    assert 40 <= index <= 60  # at or past the drop: the smoothed elbow never counts range directions as free


def test_elbow_needs_three_values():
    with pytest.raises(ValueError, match="at least 3"):
        elbow_index(np.array([1.0, 0.5]))


@pytest.mark.parametrize("dim", [16, 128])
def test_null_space_basis_annihilates_the_old_inputs(dim):
    features = _low_rank(400, dim, rank=dim // 4)
    basis = null_space_basis(features.T @ features)
    assert len(basis) >= dim - dim // 4 - 12  # (nearly) the whole null space
    assert (features @ basis.T).abs().max() < 1e-4 * features.abs().max()


def test_projection_matrix_follows_the_official_rule():
    features = _low_rank(300, 16, rank=5)
    cov = features.T @ features
    basis = null_space_basis(cov)
    plain = basis.T @ basis
    eta = 0.9
    expected = eta * plain / torch.linalg.matrix_norm(plain) + (1 - eta) * torch.eye(16, dtype=torch.float64)
    torch.testing.assert_close(projection_matrix(cov, eta), expected)
    torch.testing.assert_close(projection_matrix(cov, 1.0, normalize=False), plain)
    # with normalisation the null-space directions keep η/√r + (1 − η) of an update
    r = len(basis)
    v = basis[0]
    torch.testing.assert_close(projection_matrix(cov, eta) @ v, (eta / r**0.5 + 1 - eta) * v)
    torch.testing.assert_close(projection_matrix(cov, 0.0), torch.eye(16, dtype=torch.float64))


def test_projected_adam_without_projections_is_adam_with_l2_decay():
    torch.manual_seed(0)
    ours, theirs = torch.nn.Parameter(torch.randn(5, 4)), torch.nn.Parameter(torch.zeros(5, 4))
    theirs.data.copy_(ours.data)
    opt_ours = ProjectedAdam([ours], lr=1e-2, weight_decay=5e-5)
    opt_theirs = torch.optim.Adam([theirs], lr=1e-2, weight_decay=5e-5)
    for _ in range(5):
        grad = torch.randn(5, 4)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        opt_ours.step()
        opt_theirs.step()
    torch.testing.assert_close(ours.data, theirs.data)


def test_right_and_left_projections_keep_old_outputs():
    """η = 1, plain projector: a weight (out×in, right) and A_log (D×N, left) move only where old inputs are blind."""
    torch.set_default_dtype(torch.float64)
    try:
        old_tokens, old_steps = _low_rank(300, 12, rank=4, seed=1), _low_rank(300, 12, rank=3, seed=2)
        weight, a_log = torch.nn.Parameter(torch.randn(6, 12)), torch.nn.Parameter(torch.randn(12, 5))
        before_w, before_a = weight.detach().clone(), a_log.detach().clone()
        h_tokens = projection_matrix(old_tokens.T @ old_tokens, 1.0, normalize=False)
        h_steps = projection_matrix(old_steps.T @ old_steps, 1.0, normalize=False)
        opt = ProjectedAdam([weight, a_log], lr=0.1, weight_decay=5e-5,
                            projections={weight: (h_tokens, "right"), a_log: (h_steps, "left")})  # fmt: skip
        for _ in range(10):
            weight.grad, a_log.grad = torch.randn(6, 12), torch.randn(12, 5)
            opt.step()
        delta_w, delta_a = weight.detach() - before_w, a_log.detach() - before_a
        assert delta_w.abs().max() > 0.1 and delta_a.abs().max() > 0.1  # they did move
        assert (old_tokens @ delta_w.T).abs().max() < 1e-4  # X ΔWᵀ = 0: same outputs on old tokens
        assert (old_steps @ delta_a).abs().max() < 1e-4  # δ ΔA = 0
    finally:
        torch.set_default_dtype(torch.float32)


def test_projection_shape_mismatch_is_an_error():
    param = torch.nn.Parameter(torch.zeros(4, 6))
    with pytest.raises(ValueError, match="does not act on dimension"):
        ProjectedAdam([param], projections={param: (torch.eye(4), "right")})


def test_covariances_across_tasks_sum_or_average_by_samples():
    from fedray.tasks.continual.null_space_cl import NullSpaceState

    eye = torch.eye(3, dtype=torch.float64)
    summed, averaged = NullSpaceState("sum"), NullSpaceState("mean")
    for state in (summed, averaged):
        state.add_task({"0.x": 2 * eye}, samples=10, batches=2)  # two batch terms of I each
        state.add_task({"0.x": 8 * eye}, samples=30, batches=4)  # four batch terms of 2·I each
    torch.testing.assert_close(summed.covariances["0.x"], 10 * eye)
    torch.testing.assert_close(averaged.covariances["0.x"], (1 * 10 + 2 * 30) / 40 * eye)  # per-batch means, by samples
    restored = NullSpaceState("sum")
    restored.load(summed.arrays())
    torch.testing.assert_close(restored.covariances["0.x"], summed.covariances["0.x"])
    assert restored.samples == 40
