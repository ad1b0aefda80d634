"""The latent feature diffusion network (LFDN): training on ID features, and DLSR's light-noise reconstruction.

Indices are 0-based as in :class:`GaussianDiffusion`: the paper's 1-based step s is index s − 1, so ᾱ_s is
``alphas_cumprod[s − 1]`` and ᾱ_{s−1} is ``alphas_cumprod_prev[s − 1]`` (1 at s = 1). Training draws indices
uniformly from 0..T−1 (the paper's t ~ U{1..T}) and the network sees the index as its timestep, at training and at
inference alike.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import torch

from fedray.clients.training import shuffled_batches
from fedray.platform.device import select_device, torch_threads
from fedray.platform.metrics.running import RunningLoss, finite_loss
from fedray.platform.modules.diffusion.feature_mlp import FeatureDenoiser
from fedray.platform.modules.diffusion.gaussian import Denoiser, GaussianDiffusion, gaussian_like, mean_flat
from fedray.platform.modules.diffusion.samplers import ddim_sample
from fedray.platform.modules.diffusion.schedules import beta_schedule
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.platform.seeding import derive_seed
from fedray.tasks.ood.compute import batched
from fedray.tasks.ood.config import LFDN
from fedray.tasks.ood.features import Bounds
from fedray.tasks.ood.scores import mfsim, mse

Kind = Literal["diffusion", "autoencoder"]


def feature_diffusion(cfg: LFDN) -> GaussianDiffusion:
    """T steps of β = linspace(√0.0015, √0.0195, T)², x₀-parameterised (DLSR's latent-diffusion settings)."""
    return GaussianDiffusion(beta_schedule("ldm_linear", cfg.timesteps), prediction="x0")


def build_lfdn(dim: int, cfg: LFDN) -> FeatureDenoiser:
    return FeatureDenoiser(dim, width=cfg.width or 2 * dim, depth=cfg.depth, dropout=cfg.dropout)


def _batch_loss(model: Denoiser, diffusion: GaussianDiffusion, x0: torch.Tensor, kind: Kind, gen: torch.Generator):
    """The batch mean of the per-sample sum of squares ‖z₀ − net(z_t, t)‖² (``training_loss`` gives the per-sample
    mean, so it is scaled by the dimension); the autoencoder sees z₀ itself at t = 0."""
    if kind == "diffusion":
        t = torch.randint(0, diffusion.num_timesteps, (len(x0),), generator=gen, device=x0.device)
        per_sample = diffusion.training_loss(model, x0, t, gaussian_like(x0, gen))
    else:
        out = model(x0, torch.zeros(len(x0), dtype=torch.long, device=x0.device))
        per_sample = mean_flat((out - x0) ** 2)
    return per_sample.mean() * x0.shape[1]


def train_feature_model(cfg: LFDN, z0: np.ndarray, kind: Kind, epochs: int, seed: int, threads: int) -> dict[str, Any]:
    """Runtime task: an LFDN (``diffusion``) or the same MLP as a plain autoencoder (``autoencoder``) trained with
    AdamW on ``z0``. Returns ``{"final": state, "epoch1": state, "losses": [per epoch], "seconds"}``."""
    started = time.perf_counter()
    with torch_threads(threads):
        device = select_device()
        torch.manual_seed(derive_seed(seed, "lfdn", kind, "init"))
        model = build_lfdn(z0.shape[1], cfg).to(device)
        diffusion = feature_diffusion(cfg)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        gen = torch.Generator(device=device).manual_seed(derive_seed(seed, "lfdn", kind, "noise"))
        batches = shuffled_batches(
            cfg.batch_size, torch.Generator().manual_seed(derive_seed(seed, "lfdn", kind, "batches"))
        )
        data = as_tensor(z0).to(device)
        losses, epoch1 = [], None
        for epoch in range(epochs):
            model.train()
            running = RunningLoss()
            for idx in batches(len(data)):
                loss = _batch_loss(model, diffusion, data[idx.to(device)], kind, gen)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                running.add(loss, len(idx))
            losses.append(finite_loss(running.total() / len(data), f"ood {kind} feature diffusion, epoch {epoch + 1}"))
            if epoch == 0:
                epoch1 = state_arrays(model)
    return {"final": state_arrays(model), "epoch1": epoch1, "losses": losses, "seconds": time.perf_counter() - started}


@torch.no_grad()
def reconstruct(
    diffusion: GaussianDiffusion, model: Denoiser, z0: torch.Tensor, t: int, eta: float, generator: torch.Generator
) -> torch.Tensor:
    """Algorithm 2: z_t = √ᾱ_t z₀ + √(1 − ᾱ_t) ε, then DDIM steps s = t … 1 (x₀-prediction, η = ``eta``) back to
    z̃₀; ``t`` is 1-based. The last step lands on ᾱ_0 = 1, so z̃₀ is the network's final x₀ estimate."""
    index = torch.full((len(z0),), t - 1, dtype=torch.long, device=z0.device)
    zt = diffusion.q_sample(z0, index, gaussian_like(z0, generator))
    return ddim_sample(diffusion, model, zt, start=t - 1, eta=eta, clip=False, generator=generator)


@torch.no_grad()
def dlsr_scores(
    cfg: LFDN,
    states: dict[str, dict[str, np.ndarray] | None],
    z0: np.ndarray,
    bounds: Bounds,
    ts: list[int],
    eta: float,
    batch_size: int,
    seed: int,
    set_name: str,
    threads: int,
) -> dict[str, np.ndarray]:
    """Runtime task: the OOD scores (higher = more OOD) of one set's z₀.

    For every t: ``mse_t{t}`` (sum of squares), ``lr_t{t}`` (MSE under the epoch-1 checkpoint − MSE under the final
    one, from the same noise draws), ``mfsim_t{t}`` (−mean cosine over all blocks) and, with several blocks,
    ``mfsim_skip1_t{t}`` (the official code's average, which skips the first block). With an autoencoder state:
    ``ae_mfsim`` and ``ae_mse``. ``states`` holds ``final``, ``epoch1`` and optionally ``autoencoder``."""
    with torch_threads(threads):
        device = select_device()
        diffusion = feature_diffusion(cfg)
        dim = z0.shape[1]
        final = load_state_arrays(build_lfdn(dim, cfg), states["final"], "LFDN state").to(device).eval()
        first = load_state_arrays(build_lfdn(dim, cfg), states["epoch1"], "LFDN epoch-1 state").to(device).eval()
        data = as_tensor(z0).to(device)
        out: dict[str, list[np.ndarray]] = {}

        def add(name: str, values: torch.Tensor) -> None:
            out.setdefault(name, []).append(values.cpu().numpy())

        for t in ts:
            noise_seed = derive_seed(seed, "score", set_name, t)
            gen_final = torch.Generator(device=device).manual_seed(noise_seed)
            gen_first = torch.Generator(device=device).manual_seed(noise_seed)  # the same draws: a paired difference
            for s in batched(len(data), batch_size):
                x = data[s]
                rec = reconstruct(diffusion, final, x, t, eta, gen_final)
                rec_first = reconstruct(diffusion, first, x, t, eta, gen_first)
                add(f"mse_t{t}", mse(x, rec))
                add(f"lr_t{t}", mse(x, rec_first) - mse(x, rec))
                add(f"mfsim_t{t}", mfsim(x, rec, bounds))
                if len(bounds) > 1:
                    add(f"mfsim_skip1_t{t}", mfsim(x, rec, bounds, skip_first=True))
        if states.get("autoencoder") is not None:
            ae = load_state_arrays(build_lfdn(dim, cfg), states["autoencoder"], "autoencoder state").to(device).eval()
            for s in batched(len(data), batch_size):
                x = data[s]
                rec = ae(x, torch.zeros(len(x), dtype=torch.long, device=device))
                add("ae_mfsim", mfsim(x, rec, bounds))
                add("ae_mse", mse(x, rec))
    return {k: np.concatenate(v).astype(np.float64) for k, v in out.items()}
