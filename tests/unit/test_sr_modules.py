"""ResShift's closed forms, the Swin window machinery, AdaFM/AdaLN and the DiT-SR network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedray.platform.modules.adafm import AdaFM, AdaLN, build_modulation
from fedray.platform.modules.config import SRNetConfig
from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion, resshift_sqrt_etas
from fedray.platform.modules.dit_sr import DiTSRNet
from fedray.platform.modules.swin import WindowAttention, shifted_window_mask, window_merge, window_partition

OFFICIAL_SQRT_ETAS = [0.0200, 0.1172, 0.1763, 0.2336, 0.2916, 0.3510, 0.4124, 0.4759, 0.5417, 0.6099, 0.6807,
                      0.7540, 0.8300, 0.9086, 0.9900]  # fmt: skip


def test_exponential_schedule_matches_the_official_sequence():
    np.testing.assert_allclose(resshift_sqrt_etas(15, kappa=2.0, power=0.3), OFFICIAL_SQRT_ETAS, atol=6e-5)


def _process(scaling: str = "pixel") -> ResShiftDiffusion:
    return ResShiftDiffusion(resshift_sqrt_etas(15), kappa=2.0, scaling=scaling)


def test_posterior_is_the_product_of_marginal_and_transition():
    """q(x_{t−1}|x_t,x₀) ∝ N(x_t; x_{t−1} + α_t e₀, κ²α_t) · N(x_{t−1}; x₀ + η_{t−1} e₀, κ²η_{t−1}), e₀ = y₀ − x₀."""
    d = _process()
    x0, y0, xt = (torch.randn(2, 3, dtype=torch.float64) for _ in range(3))
    for t in (1, 7, 14):
        eta, prev = d.etas[t], d.etas_prev[t]
        alpha = eta - prev
        e0 = y0 - x0
        precision = 1 / (d.kappa**2 * alpha) + 1 / (d.kappa**2 * prev)
        mean = ((xt - alpha * e0) / (d.kappa**2 * alpha) + (x0 + prev * e0) / (d.kappa**2 * prev)) / precision
        got_mean, got_var = d.q_posterior(x0, xt, torch.full((2,), t))
        assert torch.allclose(got_mean, mean, atol=1e-10)
        assert got_var.flatten()[0].item() == pytest.approx(1 / precision, rel=1e-10)


def test_q_sample_shifts_the_residual_and_scales_the_noise():
    d = _process()
    x0, y0, noise = torch.zeros(1, 4), torch.ones(1, 4), torch.full((1, 4), 0.5)
    out = d.q_sample(x0, y0, torch.tensor([14]), noise)
    assert torch.allclose(out, torch.full((1, 4), 0.99**2 + 2.0 * 0.99 * 0.5))
    assert torch.allclose(d.scale_input(out, torch.tensor([14])), out / (3 * 2.0 * 0.99 + 1))
    assert torch.allclose(_process("latent").scale_input(out, torch.tensor([14])), out / np.sqrt(4 * 0.99**2 + 1))


def test_sampling_with_an_exact_model_returns_the_clean_image():
    d = _process()
    x0, y0 = torch.rand(2, 3, 4, 4) * 2 - 1, torch.rand(2, 3, 4, 4) * 2 - 1
    exact = lambda x, t, cond: x0  # noqa: E731
    assert torch.allclose(d.sample(exact, y0, y0, generator=torch.Generator().manual_seed(0)), x0)
    assert torch.allclose(d.ddim_sample(exact, y0, y0, torch.randn_like(y0)), x0, atol=1e-6)


def test_sampling_reports_every_step_prediction_clipped_and_ends_on_the_last():
    d = _process()
    y0 = torch.rand(2, 3, 4, 4) * 2 - 1
    seen: list[tuple[int, torch.Tensor]] = []
    overshoot = lambda x, t, cond: 3 * x  # noqa: E731  (far outside [-1, 1] at the start of the chain)
    out = d.sample(
        overshoot, y0, y0, generator=torch.Generator().manual_seed(0), on_step=lambda t, x0: seen.append((t, x0))
    )
    assert [t for t, _ in seen] == list(range(d.num_timesteps - 1, -1, -1))
    assert all(x0.abs().max() <= 1 for _, x0 in seen) and seen[0][1].abs().max() == 1
    assert torch.equal(out, seen[-1][1])  # no noise and η_{−1} = 0 at the last step: the sample is its x̂₀


def test_ddim_step_is_the_tad_sr_linear_combination():
    d = _process()
    x0, xt, y = torch.randn(3, 5), torch.randn(3, 5), torch.randn(3, 5)
    for t in (1, 8, 14):
        eta, prev = d.etas[t], d.etas_prev[t]
        m, j = np.sqrt(prev / eta), prev - np.sqrt(prev * eta)
        k = 1 - prev + np.sqrt(prev * eta) - np.sqrt(prev / eta)
        assert torch.allclose(d.ddim_step(x0, xt, y, t), k * x0 + m * xt + j * y, atol=1e-5)


def test_window_partition_round_trip_and_shift_mask_blocks_wraparound():
    x = torch.randn(2, 16, 16, 4)
    assert torch.equal(window_merge(window_partition(x, 8), 8, 16, 16), x)
    attention = WindowAttention(dim=4, window=8, heads=1)
    for masked in (True, False):
        tokens = torch.randn(1, 16, 16, 4, requires_grad=True)
        rolled = torch.roll(tokens, (-4, -4), dims=(1, 2))
        mask = shifted_window_mask(16, 16, 8, 4, tokens.device) if masked else None
        out = window_merge(attention(window_partition(rolled, 8), mask), 8, 16, 16)
        out = torch.roll(out, (4, 4), dims=(1, 2))
        out[0, 15, 15].sum().backward()  # the bottom-right token: its shifted window wraps around the edges
        leaked = tokens.grad[0, 0, 0].abs().sum().item()  # the top-left corner, joined to it only by the roll
        assert (leaked == 0) == masked


def test_adafm_with_unit_scale_is_the_plain_norm_and_has_one_scale_per_bin():
    fm = AdaFM(dim=8, emb_dim=6, resolution=16)
    assert fm.scale[1].out_features == 8 * 5  # rfft bins of an 8×8 patch
    torch.nn.init.zeros_(fm.scale[1].weight)
    torch.nn.init.ones_(fm.scale[1].bias)
    x, emb = torch.randn(2, 8, 16, 16), torch.randn(2, 6)
    out, gate = fm(x, emb)
    assert gate == 1.0 and torch.allclose(out, fm.norm(x), atol=1e-5)
    dc_only = torch.zeros(40)
    dc_only[0] = 1.0
    fm.scale[1].bias.data = dc_only
    out, _ = fm(x, emb)  # only each patch's mean survives
    patch_means = fm.norm(x).reshape(2, 8, 2, 8, 2, 8).mean(dim=(3, 5))
    assert torch.allclose(out[:, :, ::8, ::8], patch_means, atol=1e-5)


def test_adaln_starts_as_identity_branch_and_other_names_are_refused():
    ln = AdaLN(dim=8, emb_dim=4)
    _, gate = ln(torch.randn(1, 8, 4, 4), torch.randn(1, 4))
    assert torch.count_nonzero(gate) == 0  # adaLN-Zero
    with pytest.raises(ValueError, match="known: adafm"):
        build_modulation("film", 8, 4, 8)


@pytest.mark.parametrize("modulation", ["adafm", "adaln"])
def test_dit_sr_network_shapes_and_gradients(modulation):
    cfg = SRNetConfig(model_channels=8, channel_mult=[1, 2], embed_dim=16, depth=2, window=4, num_heads=2,
                      modulation=modulation)  # fmt: skip
    net = DiTSRNet(cfg, 3, 3, 3, 16)
    x = torch.randn(2, 3, 16, 16)
    out = net(x, torch.tensor([0, 14]), x)
    assert out.shape == (2, 3, 16, 16)
    torch.nn.init.normal_(net.out[-1].weight)
    net(x, torch.tensor([0, 14]), x).square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="tile"):
        DiTSRNet(cfg, 3, 3, 3, 12)


def test_sharpness_is_a_ratio_of_summed_laplacian_energy():
    from scipy.ndimage import gaussian_filter

    from fedray.platform.metrics.image import laplacian_variance_ratio

    rng = np.random.default_rng(0)
    textured = np.repeat(rng.uniform(-1, 1, (1, 1, 32, 32)), 3, axis=1)  # [1, 3, H, W] in [-1, 1]
    assert laplacian_variance_ratio(textured, textured) == pytest.approx(1.0)
    blurred = gaussian_filter(textured, sigma=(0, 0, 1.5, 1.5))
    assert laplacian_variance_ratio(textured, blurred) < 0.2
    # A nearly flat reference crop restored with faint noise: its own ratio is in the hundreds, but it carries almost
    # no energy, so it must not swamp the textured crop restored exactly.
    flat = np.full((1, 3, 32, 32), 0.2) + 1e-4 * rng.standard_normal((1, 3, 32, 32))
    noisy_flat = flat + 1e-2 * rng.standard_normal(flat.shape)
    pair_ref, pair_out = np.concatenate([textured, flat]), np.concatenate([textured, noisy_flat])
    assert laplacian_variance_ratio(pair_ref, pair_out) == pytest.approx(1.0, abs=0.01)
    assert np.isnan(laplacian_variance_ratio(np.zeros((1, 3, 8, 8)), np.zeros((1, 3, 8, 8))))


def test_a_residual_network_needs_matching_conditioning_channels():
    cfg = SRNetConfig(model_channels=8, channel_mult=[1, 2], embed_dim=16, depth=1, window=4, num_heads=2)
    net = DiTSRNet(cfg, 3, 3, 3, 16, residual=True)
    torch.nn.init.normal_(net.out[-1].weight)
    x, cond = torch.randn(2, 3, 16, 16), torch.randn(2, 3, 16, 16)
    t = torch.tensor([0, 3])
    net.residual = False
    plain = net(x, t, cond)
    net.residual = True
    torch.testing.assert_close(net(x, t, cond), cond + plain)
    with pytest.raises(ValueError, match="cond_channels"):
        DiTSRNet(cfg, 3, 1, 3, 16, residual=True)


def test_the_xt_skip_is_the_linear_mmse_blend_of_the_deshifted_xt_and_y0():
    """w_t = v/(v + σ_t²) with σ_t = κ√η_t/(1 − η_t): the blend's error variance v·σ_t²/(v + σ_t²) is below both
    estimates' (checked empirically at a late and an early step), w_t rises towards the clean end, and
    w_t·σ_t ≤ √v/2."""
    v = 0.04
    d = ResShiftDiffusion(resshift_sqrt_etas(15), kappa=2.0, scaling="pixel", xt_skip_variance=v)
    sigma = d.kappa * d.sqrt_etas / (1 - d.etas)
    np.testing.assert_allclose(d.skip_weights, v / (v + sigma**2))
    assert (np.diff(d.skip_weights) < 0).all() and d.skip_weights[0] > 0.9 and d.skip_weights[-1] < 1e-4
    assert (d.skip_weights * sigma <= np.sqrt(v) / 2 + 1e-12).all()
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4000, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    y0 = x0 + np.sqrt(v) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    for index in (0, 3):
        t = torch.full((len(x0),), index)
        xt = d.q_sample(x0, y0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64))
        blend = y0 + d.xt_skip(xt, y0, t)
        expected = v * sigma[index] ** 2 / (v + sigma[index] ** 2)
        assert float(((blend - x0) ** 2).mean()) == pytest.approx(expected, rel=0.03)
        assert expected < min(v, sigma[index] ** 2)


def test_without_the_xt_skip_the_prediction_is_the_network_output():
    d, skipping = _process(), ResShiftDiffusion(resshift_sqrt_etas(15), 2.0, "pixel", xt_skip_variance=0.03)
    y0, xt = (torch.rand(2, 3, 4, 4) * 2 - 1 for _ in range(2))
    starts_at_y0 = lambda x, t, cond: cond  # noqa: E731
    t = torch.tensor([0, 14])
    torch.testing.assert_close(d.predict_x0(starts_at_y0, xt, t, y0, y0), y0)
    torch.testing.assert_close(skipping.predict_x0(starts_at_y0, xt, t, y0, y0), y0 + skipping.xt_skip(xt, y0, t))
    assert skipping.xt_skip(xt, y0, t)[0].abs().mean() > 0.1  # at t = 0 the skip moves far towards x_t
    with pytest.raises(ValueError, match="positive variance"):
        ResShiftDiffusion(resshift_sqrt_etas(15), xt_skip_variance=0.0)
