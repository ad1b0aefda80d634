"""The Gaussian diffusion process in closed form: q(x_t | x_0), the posterior q(x_{t−1} | x_t, x_0), conversions
between the ε- and x₀-parameterisations, one ancestral (DDPM) or DDIM reverse step, the training loss, and
respacing to fewer steps.

Coefficients are computed in float64 and cast to the sample's dtype when used, as guided-diffusion does. Time
indices are 0-based: ``alphas_cumprod[t]`` is ᾱ_t = Π_{i≤t}(1 − β_i) and ``alphas_cumprod_prev[0]`` = 1. A respaced
process keeps its own (renumbered) indices and calls the model with the original timestep values
(``timestep_map``), so a network trained on the full process serves any respacing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch

from fedray.platform.modules.diffusion.coefficients import CoefficientTables

Prediction = Literal["eps", "x0"]
Variance = Literal["fixed_large", "fixed_small"]
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gaussian_like(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like ``x``, drawn from ``generator`` when given (reproducible by seed)."""
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def mean_flat(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension but the batch."""
    return x.reshape(x.shape[0], -1).mean(dim=1)


class GaussianDiffusion(CoefficientTables):
    """A T-step Gaussian diffusion with fixed β; ``prediction`` says what the network outputs (ε or x₀).

    ``variance`` is the reverse-step variance of a network that does not learn it: ``fixed_large`` (β_t, with the
    posterior variance at t = 0 — guided-diffusion's default) or ``fixed_small`` (the posterior variance β̃_t).
    """

    def __init__(
        self,
        betas: np.ndarray,
        prediction: Prediction = "eps",
        variance: Variance = "fixed_large",
        timestep_map: Sequence[int] | None = None,
    ) -> None:
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise ValueError("betas must be a 1-D array in (0, 1]")
        if prediction not in ("eps", "x0"):
            raise ValueError(f"prediction must be eps or x0, got {prediction!r}")
        if variance not in ("fixed_large", "fixed_small"):
            raise ValueError(f"variance must be fixed_large or fixed_small, got {variance!r}")
        self.betas, self.prediction, self.variance = betas, prediction, variance
        self.num_timesteps = len(betas)
        self.timestep_map = np.asarray(timestep_map if timestep_map is not None else range(len(betas)), np.int64)
        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # The posterior variance is 0 at t = 0; its log is clipped to the t = 1 value, as in guided-diffusion.
        self.posterior_log_variance_clipped = np.log(
            np.append(self.posterior_variance[1], self.posterior_variance[1:])
            if len(betas) > 1
            else np.maximum(self.posterior_variance, 1e-20)
        )
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        # Derived tables, computed once (see CoefficientTables).
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        large = np.append(self.posterior_variance[1], betas[1:]) if self.num_timesteps > 1 else betas
        self.log_large_variance = np.log(large)  # fixed_large: β_t, with the posterior variance at t = 0

    # -- closed forms ---------------------------------------------------------------------------------------------

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """x_t = √ᾱ_t·x₀ + √(1 − ᾱ_t)·ε."""
        noise = torch.randn_like(x0) if noise is None else noise
        return self.coef("sqrt_alphas_cumprod", t, x0) * x0 + self.coef("sqrt_one_minus_alphas_cumprod", t, x0) * noise

    def q_posterior(
        self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, variance and (clipped) log-variance of q(x_{t−1} | x_t, x₀)."""
        mean = self.coef("posterior_mean_coef1", t, xt) * x0 + self.coef("posterior_mean_coef2", t, xt) * xt
        return mean, self.coef("posterior_variance", t, xt), self.coef("posterior_log_variance_clipped", t, xt)

    def x0_from_eps(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return (
            self.coef("sqrt_recip_alphas_cumprod", t, xt) * xt - self.coef("sqrt_recipm1_alphas_cumprod", t, xt) * eps
        )

    def eps_from_x0(self, xt: torch.Tensor, t: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        scaled_xt = self.coef("sqrt_recip_alphas_cumprod", t, xt) * xt
        return (scaled_xt - x0) / self.coef("sqrt_recipm1_alphas_cumprod", t, xt)

    # -- the network ----------------------------------------------------------------------------------------------

    def model_t(self, t: torch.Tensor) -> torch.Tensor:
        """The timestep value the network sees for (possibly respaced) index ``t``."""
        return self.table("timestep_map", t.device)[t]

    def predict(
        self, model: Denoiser, xt: torch.Tensor, t: torch.Tensor, clip: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(ε̂, x̂₀) from one network call; with ``clip``, x̂₀ is clamped to [−1, 1] and ε̂ re-derived from it."""
        out = model(xt, self.model_t(t))
        if self.prediction == "eps":
            eps, x0 = out, self.x0_from_eps(xt, t, out)
        else:
            eps, x0 = self.eps_from_x0(xt, t, out), out
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
            eps = self.eps_from_x0(xt, t, x0)
        return eps, x0

    def p_mean_variance(
        self, model: Denoiser, xt: torch.Tensor, t: torch.Tensor, clip: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean and log-variance of p(x_{t−1} | x_t), and the x̂₀ they came from."""
        _, x0 = self.predict(model, xt, t, clip)
        mean, _, _ = self.q_posterior(x0, xt, t)
        name = "log_large_variance" if self.variance == "fixed_large" else "posterior_log_variance_clipped"
        log_var = self.coef(name, t, xt)
        return mean, log_var, x0

    def p_sample(
        self,
        model: Denoiser,
        xt: torch.Tensor,
        t: torch.Tensor,
        clip: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One ancestral step x_t → x_{t−1} (no noise is added at t = 0)."""
        mean, log_var, _ = self.p_mean_variance(model, xt, t, clip)
        nonzero = (t != 0).to(xt.dtype).reshape(-1, *([1] * (xt.ndim - 1)))
        return mean + nonzero * torch.exp(0.5 * log_var) * gaussian_like(xt, generator)

    def ddim_step(
        self,
        model: Denoiser,
        xt: torch.Tensor,
        t: torch.Tensor,
        eta: float = 0.0,
        clip: bool = False,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One DDIM step x_t → x_{t−1}: √ᾱ_{t−1}·x̂₀ + √(1 − ᾱ_{t−1} − σ²)·ε̂ + σ·z,
        σ = η·√((1 − ᾱ_{t−1})/(1 − ᾱ_t)·(1 − ᾱ_t/ᾱ_{t−1})); deterministic at η = 0."""
        eps, x0 = self.predict(model, xt, t, clip)
        return self.ddim_update(x0, eps, t, eta, generator)

    def ddim_update(
        self,
        x0: torch.Tensor,
        eps: torch.Tensor,
        t: torch.Tensor,
        eta: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The DDIM update from given predictions (shared by :meth:`ddim_step` and samplers that modify them)."""
        abar, abar_prev = self.coef("alphas_cumprod", t, x0), self.coef("alphas_cumprod_prev", t, x0)
        sigma = eta * torch.sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev))
        out = torch.sqrt(abar_prev) * x0 + torch.sqrt(1 - abar_prev - sigma**2) * eps
        if eta > 0:
            out = out + sigma * gaussian_like(x0, generator)
        return out

    def ddim_reverse_step(self, model: Denoiser, xt: torch.Tensor, t: torch.Tensor, clip: bool = False) -> torch.Tensor:
        """DDIM inversion x_t → x_{t+1} with the network's predictions at x_t (η = 0)."""
        eps, x0 = self.predict(model, xt, t, clip)
        abar_next = self.coef("alphas_cumprod_next", t, xt)
        return torch.sqrt(abar_next) * x0 + torch.sqrt(1 - abar_next) * eps

    def training_loss(
        self, model: Denoiser, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-sample MSE of the network's output against its target (ε or x₀) at x_t = q_sample(x₀, t, ε)."""
        noise = torch.randn_like(x0) if noise is None else noise
        out = model(self.q_sample(x0, t, noise), self.model_t(t))
        return mean_flat((out - (noise if self.prediction == "eps" else x0)) ** 2)

    # -- respacing ------------------------------------------------------------------------------------------------

    def respaced(self, keep: Sequence[int]) -> GaussianDiffusion:
        """The process restricted to timesteps ``keep`` (sorted original indices): new β_i = 1 − ᾱ_{k_i}/ᾱ_{k_{i−1}}
        keep every kept ᾱ unchanged, and the network is called with the original timestep values."""
        keep = sorted(set(int(k) for k in keep))
        if not keep or keep[0] < 0 or keep[-1] >= self.num_timesteps:
            raise ValueError(f"respacing indices must lie in [0, {self.num_timesteps})")
        betas, last = [], 1.0
        for k in keep:
            betas.append(1.0 - self.alphas_cumprod[k] / last)
            last = self.alphas_cumprod[k]
        return GaussianDiffusion(
            np.array(betas), self.prediction, self.variance, timestep_map=[int(self.timestep_map[k]) for k in keep]
        )
