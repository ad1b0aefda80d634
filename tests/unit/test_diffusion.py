"""Closed forms of the shared diffusion modules, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.embedding import timestep_embedding
from fedray.platform.modules.diffusion.feature_mlp import FeatureDenoiser
from fedray.platform.modules.diffusion.gaussian import GaussianDiffusion
from fedray.platform.modules.diffusion.samplers import ddim_invert, ddim_sample, ddpm_sample
from fedray.platform.modules.diffusion.schedules import beta_schedule, space_timesteps
from fedray.platform.modules.diffusion.unet import UNet


def test_linear_schedule_matches_ddpm_and_scales_with_steps():
    betas = beta_schedule("linear", 1000)
    assert betas[0] == pytest.approx(1e-4) and betas[-1] == pytest.approx(0.02)
    assert beta_schedule("linear", 250)[-1] == pytest.approx(0.08)  # guided-diffusion's 1000/T scaling


def test_ldm_linear_is_a_squared_linspace_of_roots():
    betas = beta_schedule("ldm_linear", 100)
    assert betas[0] == pytest.approx(0.0015) and betas[-1] == pytest.approx(0.0195)
    roots = np.sqrt(betas)
    assert np.allclose(np.diff(roots), roots[1] - roots[0])


def test_cosine_schedule_follows_its_alpha_bar():
    steps, s = 50, 0.008
    abar = np.cumprod(1 - beta_schedule("cosine", steps))
    f = np.cos((np.arange(1, steps + 1) / steps + s) / (1 + s) * np.pi / 2) ** 2 / np.cos(s / (1 + s) * np.pi / 2) ** 2
    assert np.allclose(abar[:-1], f[:-1], rtol=1e-9)  # the last β is clipped at 0.999


def test_unknown_schedule_and_bad_respacing_are_refused():
    with pytest.raises(ValueError, match="known: linear"):
        beta_schedule("quadratic", 10)
    with pytest.raises(ValueError, match="respace"):
        space_timesteps(10, 11)


def test_alpha_bar_and_posterior_match_their_definitions():
    d = GaussianDiffusion(beta_schedule("linear", 1000))
    assert d.alphas_cumprod[99] == pytest.approx(np.prod(1 - d.betas[:100]))
    # the DDPM posterior variance β̃_t = (1 − ᾱ_{t−1}) / (1 − ᾱ_t) · β_t, and PFAD's ω_t = 1 − √ᾱ_t at t = 499
    t = 500
    assert d.posterior_variance[t] == pytest.approx(
        (1 - d.alphas_cumprod[t - 1]) / (1 - d.alphas_cumprod[t]) * d.betas[t]
    )
    assert 1 - np.sqrt(d.alphas_cumprod[499]) == pytest.approx(0.72, abs=0.01)


def test_posterior_is_the_gaussian_product_of_prior_and_likelihood():
    """q(x_{t−1}|x_t,x₀) ∝ q(x_t|x_{t−1}) q(x_{t−1}|x₀): check mean and variance by completing the square."""
    d = GaussianDiffusion(beta_schedule("cosine", 40))
    x0, xt = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64)
    for t in (1, 17, 39):
        abar_prev, beta = d.alphas_cumprod[t - 1], d.betas[t]
        precision = 1 / (1 - abar_prev) + (1 - beta) / beta
        mean = (np.sqrt(abar_prev) * x0 / (1 - abar_prev) + np.sqrt(1 - beta) * xt / beta) / precision
        got_mean, got_var, _ = d.q_posterior(x0, xt, torch.full((3,), t))
        assert torch.allclose(got_mean, mean, atol=1e-12)
        assert got_var.flatten()[0].item() == pytest.approx(1 / precision, rel=1e-12)


def test_q_sample_and_eps_x0_conversions_are_inverse():
    d = GaussianDiffusion(beta_schedule("linear", 100))
    x0, eps = torch.randn(4, 1, 6, 6, dtype=torch.float64), torch.randn(4, 1, 6, 6, dtype=torch.float64)
    t = torch.tensor([0, 10, 50, 99])
    xt = d.q_sample(x0, t, eps)
    assert torch.allclose(d.x0_from_eps(xt, t, eps), x0, atol=1e-10)
    assert torch.allclose(d.eps_from_x0(xt, t, x0), eps, atol=1e-8)


def _oracle(d: GaussianDiffusion, x0: torch.Tensor):
    """The exact ε-predictor for data concentrated on ``x0``."""

    def model(xt: torch.Tensor, model_t: torch.Tensor) -> torch.Tensor:
        index = torch.as_tensor(np.searchsorted(d.timestep_map, model_t.numpy()))
        return d.eps_from_x0(xt, index, x0.expand_as(xt))

    return model


def test_ddim_eta0_is_deterministic_and_lands_on_the_data_with_an_exact_model():
    d = GaussianDiffusion(beta_schedule("linear", 1000)).respaced(space_timesteps(1000, 25))
    target = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 2 - 1
    noise = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    a = ddim_sample(d, _oracle(d, target), noise)
    b = ddim_sample(d, _oracle(d, target), noise)
    assert torch.equal(a, b)
    assert torch.allclose(a, target, atol=1e-9)


def _gaussian_oracle(d: GaussianDiffusion, scale: float):
    """The exact ε-predictor for data x₀ ~ N(0, scale²·I): ε̂ = √(1−ᾱ)·x_t / (ᾱ·scale² + 1 − ᾱ)."""

    def model(xt: torch.Tensor, model_t: torch.Tensor) -> torch.Tensor:
        index = np.searchsorted(d.timestep_map, model_t.numpy())
        abar = torch.as_tensor(d.alphas_cumprod[index]).reshape(-1, *([1] * (xt.ndim - 1)))
        return torch.sqrt(1 - abar) * xt / (abar * scale**2 + 1 - abar)

    return model


def test_ddim_inversion_recovers_the_noise_it_started_from():
    """DDIM at η = 0 discretises an invertible ODE: encoding the sample returns its noise, closer with more steps."""
    noise = torch.randn(4, 8, dtype=torch.float64)
    errors = []
    for steps in (20, 200):
        d = GaussianDiffusion(beta_schedule("linear", 1000)).respaced(space_timesteps(1000, steps))
        model = _gaussian_oracle(d, 0.5)
        back = ddim_invert(d, model, ddim_sample(d, model, noise))
        errors.append((back - noise).abs().max().item())
    assert errors[1] < 0.1 and errors[1] < errors[0] / 5, errors  # first order in the step size


def test_one_ddim_step_inverts_exactly_with_the_same_prediction():
    """On the network's own prediction at x_t, x_{t−1} determines x_t (the DDIM map is invertible)."""
    torch.manual_seed(0)
    d = GaussianDiffusion(beta_schedule("linear", 100))
    net = FeatureDenoiser(6, width=12, depth=2).double()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    xt, t = torch.randn(5, 6, dtype=torch.float64), torch.full((5,), 40)
    eps, x0 = d.predict(net, xt, t)
    prev = d.ddim_update(x0, eps, t)
    abar, abar_prev = d.alphas_cumprod[40], d.alphas_cumprod[39]
    recovered = np.sqrt(abar) * (prev - np.sqrt(1 - abar_prev) * eps) / np.sqrt(abar_prev) + np.sqrt(1 - abar) * eps
    assert torch.allclose(recovered, xt, atol=1e-10)


def test_respacing_keeps_alpha_bar_and_maps_timesteps():
    d = GaussianDiffusion(beta_schedule("linear", 1000))
    keep = space_timesteps(1000, 250)
    r = d.respaced(keep)
    assert r.num_timesteps == 250 and keep[0] == 0 and keep[-1] == 999
    assert np.allclose(r.alphas_cumprod, d.alphas_cumprod[keep], rtol=1e-12)
    assert r.model_t(torch.tensor([0, 249])).tolist() == [0, 999]


def test_ddpm_sampling_is_reproducible_by_generator_and_reaches_the_data():
    d = GaussianDiffusion(beta_schedule("linear", 1000), variance="fixed_small").respaced(space_timesteps(1000, 50))
    target = torch.full((3, 4), 0.5, dtype=torch.float64)
    run = [
        ddpm_sample(d, _oracle(d, target[:1]), torch.zeros(3, 4, dtype=torch.float64),
                    generator=torch.Generator().manual_seed(7))
        for _ in range(2)
    ]  # fmt: skip
    assert torch.equal(run[0], run[1])
    assert torch.allclose(run[0], target, atol=1e-6)  # no noise at the last step; exact model


@pytest.mark.parametrize("variance", ["fixed_large", "fixed_small"])
def test_coefficients_are_their_closed_forms_and_each_table_reaches_a_device_once(variance):
    d = GaussianDiffusion(beta_schedule("linear", 1000), variance=variance).respaced(space_timesteps(1000, 50))
    t, like = torch.tensor([0, 17, 49]), torch.zeros(3, 2, dtype=torch.float64)
    abar = d.alphas_cumprod[t.numpy()]
    recipm1 = d.coef("sqrt_recipm1_alphas_cumprod", t, like).flatten()
    assert torch.allclose(recipm1, torch.from_numpy(np.sqrt(1 / abar - 1)))
    large = np.append(d.posterior_variance[1], d.betas[1:])[t.numpy()]
    assert torch.allclose(d.coef("log_large_variance", t, like).flatten(), torch.from_numpy(np.log(large)))
    assert d.model_t(t).tolist() == d.timestep_map[[0, 17, 49]].tolist()
    target = torch.full((3, 2), 0.5, dtype=torch.float64)
    ddpm_sample(d, _oracle(d, target[:1]), torch.zeros(3, 2, dtype=torch.float64))
    cached = dict(d.__dict__["_device_tables"])
    ddpm_sample(d, _oracle(d, target[:1]), torch.zeros(3, 2, dtype=torch.float64))
    assert d.__dict__["_device_tables"].keys() == cached.keys()  # a second run copies nothing new
    assert all(d.table(name, device) is tensor for (name, device), tensor in cached.items())


def test_training_loss_targets_eps_or_x0():
    x0, noise, t = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 5, 50, 99])
    for prediction, target in (("eps", noise), ("x0", x0)):
        d = GaussianDiffusion(beta_schedule("ldm_linear", 100), prediction=prediction)
        assert torch.allclose(d.training_loss(lambda xt, mt, y=target: y, x0, t, noise), torch.zeros(4))
        assert (d.training_loss(lambda xt, mt: torch.zeros_like(xt), x0, t, noise) > 0).all()


def test_timestep_embedding_is_sinusoidal():
    emb = timestep_embedding(torch.tensor([0, 3]), 8)
    assert torch.allclose(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert emb[1, 0].item() == pytest.approx(np.cos(3.0)) and emb[1, 4].item() == pytest.approx(np.sin(3.0))


def test_unet_shapes_attention_levels_and_zero_initial_output():
    cfg = UNetConfig(model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[8], num_heads=2)
    net = UNet(cfg, in_channels=2, out_channels=1, image_size=16)
    x, t = torch.randn(3, 2, 16, 16), torch.tensor([0, 10, 999])
    out = net(x, t)
    assert out.shape == (3, 1, 16, 16) and torch.count_nonzero(out) == 0  # zero-initialised output conv
    assert sum(type(m).__name__ == "AttentionBlock" for m in net.modules()) == 1 + 1 + 2  # down 8×8, middle, up 8×8
    torch.nn.init.normal_(net.out[-1].weight)
    out = net(x, t)
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    with pytest.raises(ValueError, match="divisible"):
        UNet(cfg, 1, 1, image_size=15)


def test_unet_resblock_updown_variant_runs():
    cfg = UNetConfig(model_channels=8, channel_mult=[1, 2, 2], num_res_blocks=1, attention_resolutions=[4],
                     num_heads=1, resblock_updown=True, scale_shift_norm=False)  # fmt: skip
    assert UNet(cfg, 1, 1, 16)(torch.randn(2, 1, 16, 16), torch.tensor([1, 2])).shape == (2, 1, 16, 16)


def test_feature_denoiser_matches_the_lfdn_layout():
    net = FeatureDenoiser(dim=20, depth=3)
    assert net.input.out_features == 40 and len(net.blocks) == 3
    assert all(isinstance(b.in_layers[0], torch.nn.GroupNorm) and b.in_layers[0].num_groups == 1 for b in net.blocks)
    z = torch.randn(4, 20)
    assert torch.count_nonzero(net(z, torch.tensor([0, 1, 2, 3]))) == 0  # zero-initialised output layer
