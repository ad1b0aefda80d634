"""Residual-shifting diffusion (ResShift) for image restoration: the chain moves from the high-quality image x₀ to
the degraded image y₀ (plus noise) instead of to pure noise, so a handful of steps suffice.

q(x_t | x₀, y₀) = N(x₀ + η_t (y₀ − x₀), κ² η_t I); α_t = η_t − η_{t−1}, η_{−1} = 0 (0-based t here, the official
code's convention); posterior q(x_{t−1} | x_t, x₀) = N((η_{t−1}/η_t) x_t + (α_t/η_t) x₀, κ² (η_{t−1}/η_t) α_t I).
The network predicts x₀ from a rescaled x_t, the time index and the conditioning image. Computed in float64 numpy
and cast when used, like :mod:`gaussian`.

Optionally [fedray] the prediction gets an x_t skip in the spirit of EDM's c_skip: x_t carries two unbiased
estimates of x₀, the de-shifted x̃_t = (x_t − η_t y₀)/(1 − η_t) = x₀ + σ_t ε with σ_t = κ√η_t/(1 − η_t), and y₀
itself with error e₀ of variance v (about bicubic's MSE). Their linear-MMSE blend weighs x̃_t by w_t = v/(v + σ_t²):
w_t → 1 at the last steps, where x_t is nearly clean and a network must otherwise learn the identity from scratch
(the teacher-forced CPU-tier DiT-SR's t = 0 estimate is several times worse than x_t itself), and w_t → 0 at the
first, where x_t is mostly noise. ``w_t·σ_t ≤ √v/2``, so the skip never amplifies the noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, Protocol

import numpy as np
import torch

from fedray.platform.modules.diffusion.coefficients import CoefficientTables
from fedray.platform.modules.diffusion.gaussian import gaussian_like, mean_flat

Scaling = Literal["latent", "pixel", "none"]


class Restorer(Protocol):
    def __call__(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor: ...


def resshift_sqrt_etas(
    steps: int, kappa: float = 2.0, power: float = 0.3, min_noise_level: float = 0.04, etas_end: float = 0.99
) -> np.ndarray:
    """The "exponential" schedule: √η_t = √η_1 · b^{β_t}, β_t = ((t−1)/(T−1))^p · (T−1), b = (√η_T/√η_1)^{1/(T−1)},
    √η_1 = min(min_noise_level/κ, min_noise_level), √η_T = ``etas_end`` (t = 1..T; returned 0-based)."""
    if steps < 2:
        raise ValueError(f"a ResShift schedule needs at least 2 steps, got {steps}")
    first = min(min_noise_level / kappa, min_noise_level)
    base = (etas_end / first) ** (1 / (steps - 1))
    exponents = ((np.arange(steps, dtype=np.float64) / (steps - 1)) ** power) * (steps - 1)
    return first * base**exponents


class ResShiftDiffusion(CoefficientTables):
    """The process for one schedule; ``scaling`` is how x_t is normalised before the network sees it
    (``latent``: x/√(κ²η_t + 1); ``pixel``: x/(3κ√η_t + 1); ``none``)."""

    def __init__(
        self,
        sqrt_etas: np.ndarray,
        kappa: float = 2.0,
        scaling: Scaling = "pixel",
        xt_skip_variance: float | None = None,
    ) -> None:
        if scaling not in ("latent", "pixel", "none"):
            raise ValueError(f"scaling must be latent, pixel or none, got {scaling!r}")
        if xt_skip_variance is not None and xt_skip_variance <= 0:
            raise ValueError(f"the x_t skip needs a positive variance of y₀'s error, got {xt_skip_variance}")
        self.sqrt_etas = np.asarray(sqrt_etas, dtype=np.float64)
        self.etas = self.sqrt_etas**2
        self.etas_prev = np.append(0.0, self.etas[:-1])
        self.kappa, self.scaling = kappa, scaling
        self.num_timesteps = len(self.etas)
        deshifted_var = (kappa * self.sqrt_etas / (1 - self.etas)) ** 2
        v = xt_skip_variance
        self.skip_weights = np.zeros_like(self.etas) if v is None else v / (v + deshifted_var)

    def q_sample(self, x0: torch.Tensor, y0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = x₀ + η_t (y₀ − x₀) + κ √η_t ε."""
        return x0 + self.coef("etas", t, x0) * (y0 - x0) + self.kappa * self.coef("sqrt_etas", t, x0) * noise

    def prior_sample(self, y0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_{T−1} = y₀ + κ √η_{T−1} ε, where sampling starts."""
        return y0 + self.kappa * float(self.sqrt_etas[-1]) * noise

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(x_{t−1} | x_t, x₀)."""
        eta, prev = self.coef("etas", t, xt), self.coef("etas_prev", t, xt)
        mean = prev / eta * xt + (eta - prev) / eta * x0
        return mean, self.kappa**2 * prev / eta * (eta - prev)

    def scale_input(self, xt: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.scaling == "latent":
            return xt / torch.sqrt(self.kappa**2 * self.coef("etas", t, xt) + 1)
        if self.scaling == "pixel":
            return xt / (3 * self.kappa * self.coef("sqrt_etas", t, xt) + 1)
        return xt

    def xt_skip(self, xt: torch.Tensor, y0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """w_t·(x̃_t − y₀): what the x_t skip adds to a prediction that starts from y₀ (zero when the skip is off)."""
        deshifted = (xt - self.coef("etas", t, xt) * y0) / (1 - self.coef("etas", t, xt))
        return self.coef("skip_weights", t, xt) * (deshifted - y0)

    def predict_x0(
        self, model: Restorer, xt: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, y0: torch.Tensor
    ) -> torch.Tensor:
        out = model(self.scale_input(xt, t), t, cond)
        return out + self.xt_skip(xt, y0, t) if self.skip_weights.any() else out

    def training_loss(
        self,
        model: Restorer,
        x0: torch.Tensor,
        y0: torch.Tensor,
        t: torch.Tensor,
        noise: torch.Tensor,
        cond: torch.Tensor,
    ) -> torch.Tensor:
        """Per-sample MSE of the x₀ prediction at x_t = q_sample(x₀, y₀, t, ε)."""
        return mean_flat((self.predict_x0(model, self.q_sample(x0, y0, t, noise), t, cond, y0) - x0) ** 2)

    @torch.no_grad()
    def sample(
        self,
        model: Restorer,
        y0: torch.Tensor,
        cond: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        clip: bool = True,
        on_step: Callable[[int, torch.Tensor], None] | None = None,
    ) -> torch.Tensor:
        """Ancestral sampling from x_{T−1} = y₀ + κ√η_{T−1} ε down to x₀ (no noise at the last step).
        ``on_step(t, x̂₀)`` sees every step's prediction (diagnostics: where along the chain the estimate degrades)."""
        x = self.prior_sample(y0, gaussian_like(y0, generator) if noise is None else noise)
        for index in range(self.num_timesteps - 1, -1, -1):
            t = torch.full((len(y0),), index, device=y0.device, dtype=torch.long)
            x0 = self.predict_x0(model, x, t, cond, y0)
            if clip:
                x0 = x0.clamp(-1, 1)
            if on_step is not None:
                on_step(index, x0)
            mean, var = self.q_posterior(x0, x, t)
            x = mean + torch.sqrt(var) * gaussian_like(x, generator) if index > 0 else mean
        return x

    def ddim_step(self, x0: torch.Tensor, xt: torch.Tensor, y0: torch.Tensor, t: int) -> torch.Tensor:
        """The deterministic step x_{t−1} = x̂₀ + η_{t−1}(y₀ − x̂₀) + √(η_{t−1}/η_t)·(x_t − x̂₀ − η_t(y₀ − x̂₀))."""
        eta, prev = float(self.etas[t]), float(self.etas_prev[t])
        return x0 + prev * (y0 - x0) + math.sqrt(prev / eta) * (xt - x0 - eta * (y0 - x0))

    @torch.no_grad()
    def ddim_sample(
        self, model: Restorer, y0: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor, clip: bool = True
    ) -> torch.Tensor:
        """Deterministic multi-step sampling from x_{T−1} = y₀ + κ√η_{T−1} ε (TAD-SR's teacher targets)."""
        x = self.prior_sample(y0, noise)
        for index in range(self.num_timesteps - 1, -1, -1):
            t = torch.full((len(y0),), index, device=y0.device, dtype=torch.long)
            x0 = self.predict_x0(model, x, t, cond, y0)
            x = self.ddim_step(x0.clamp(-1, 1) if clip else x0, x, y0, index)
        return x
