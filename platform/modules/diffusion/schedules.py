"""β schedules (float64 numpy, the precision the closed forms are computed in before casting)."""

from __future__ import annotations

import math

import numpy as np

from fedray.platform.errors import ConfigError

SCHEDULES = ("linear", "cosine", "ldm_linear")


def beta_schedule(name: str, steps: int, beta_start: float | None = None, beta_end: float | None = None) -> np.ndarray:
    """β_0 … β_{T−1} of a named schedule.

    ``linear``: DDPM's linspace(1e-4, 0.02), scaled by 1000/T as guided-diffusion does, so any T has the same
    overall noise level. ``cosine``: Nichol & Dhariwal's ᾱ(t) = cos²((t/T + s)/(1 + s)·π/2), s = 0.008, β clipped at
    0.999. ``ldm_linear``: latent diffusion's "linear" — linspace(√β_start, √β_end)², default 0.0015 → 0.0195 (the
    DLSR feature diffusion's schedule). ``beta_start``/``beta_end`` override the linear endpoints.
    """
    if steps < 1:
        raise ValueError(f"a schedule needs at least one step, got {steps}")
    if name == "linear":
        scale = 1000.0 / steps
        start = beta_start if beta_start is not None else scale * 1e-4
        end = beta_end if beta_end is not None else scale * 0.02
        return np.linspace(start, end, steps, dtype=np.float64)
    if name == "ldm_linear":
        start = beta_start if beta_start is not None else 0.0015
        end = beta_end if beta_end is not None else 0.0195
        return np.linspace(math.sqrt(start), math.sqrt(end), steps, dtype=np.float64) ** 2
    if name == "cosine":
        s = 0.008

        def alpha_bar(t: float) -> float:
            return math.cos((t + s) / (1 + s) * math.pi / 2) ** 2

        betas = [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)]
        return np.array(betas, dtype=np.float64)
    raise ValueError(f"unknown beta schedule {name!r}; known: {', '.join(SCHEDULES)}")


def space_timesteps(steps: int, count: int) -> list[int]:
    """``count`` timesteps of a ``steps``-step process, evenly spaced and including 0 and ``steps − 1`` (sorted)."""
    if not 1 <= count <= steps:
        raise ValueError(f"cannot respace {steps} steps to {count}")
    if count == 1:
        return [steps - 1]
    return sorted({round(i * (steps - 1) / (count - 1)) for i in range(count)})


def check_schedule(prefix: str, name: str, steps: int) -> None:
    """A :class:`ConfigError` unless ``steps`` steps of ``name`` keep every β in (0, 1): β = 1 makes ᾱ vanish and the
    ε ↔ x₀ conversions divide by zero, so a run would finish with NaN metrics (the linear schedule, scaled by
    1000/T, needs T > 20). ``prefix`` is the config section (``diffusion``)."""
    betas = beta_schedule(name, steps)
    if not ((betas > 0) & (betas < 1)).all():
        raise ConfigError(
            f"{prefix}.steps={steps} is too few for the {name} schedule: its largest β is {betas.max():g}, "
            "and every β must stay below 1"
        )
