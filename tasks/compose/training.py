"""The three trainings of ``compose``, each a function that runs as a Ray task (or inline) and returns
``(EMA weights, info)``: the token encoder (an autoencoder), the base UNet (stage 1) and one method's conditioning
(stage 2). Every stage-2 method sees the same batches in the same order."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.config import load_config
from fedray.platform.device import select_device, torch_threads
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.platform.modules.tokens import TokenAutoencoder
from fedray.platform.optim.ema_steps import train_with_ema
from fedray.platform.seeding import derive_seed, numpy_rng
from fedray.tasks.compose.config import ComposeConfig
from fedray.tasks.compose.data import Triplets
from fedray.tasks.compose.model import Compositor, build_base, build_diffusion, build_token_encoder

State = dict[str, np.ndarray]


def _batches(arrays: list[np.ndarray], steps: int, batch: int, rng: np.random.Generator, device) -> Iterator[list]:
    """``steps`` batches of the same random rows of every array in ``arrays``."""
    for _ in range(steps):
        rows = rng.integers(len(arrays[0]), size=batch)
        yield [as_tensor(a[rows]).to(device) for a in arrays]


def _train(
    cfg: ComposeConfig,
    name: str,
    model: nn.Module,
    parameters: list[nn.Parameter],
    loss_of: Callable[[nn.Module, Any, int], torch.Tensor],
    batches: Iterator[Any],
    lr: float,
    steps: int,
) -> tuple[nn.Module, dict[str, Any]]:
    began, started = time.time(), time.perf_counter()
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=cfg.train.weight_decay)
    ema, curve = train_with_ema(
        model, loss_of, batches, optimizer, cfg.train.ema, cfg.train.log_every, name=f"compose {name}"
    )
    info = {
        "steps": steps,
        "loss_curve": curve,
        "seconds": time.perf_counter() - started,
        "trainable_parameters": sum(p.numel() for p in parameters),
        "device": str(next(model.parameters()).device),
        "began_unix": began,
        "stage": name,
    }
    return ema, info


def _setup(config_yaml: str, *labels: str) -> tuple[ComposeConfig, torch.device]:
    cfg = load_config(ComposeConfig, text=config_yaml)
    torch.manual_seed(derive_seed(cfg.seed, "compose", *labels, "init"))
    return cfg, select_device()


def _in_threads(task: Callable[..., Any]) -> Callable[..., Any]:
    """Run a training task with ``train.threads`` torch/BLAS threads, restored afterwards (inline tasks run in the
    caller's process)."""

    @functools.wraps(task)
    def wrapped(config_yaml: str, *args: Any) -> Any:
        with torch_threads(load_config(ComposeConfig, text=config_yaml).train.threads):
            return task(config_yaml, *args)

    return wrapped


@_in_threads
def train_encoder(config_yaml: str, triplets: Triplets) -> tuple[State, dict[str, Any]]:
    """The token encoder: an autoencoder on the training foreground views and backgrounds (L1), encoder kept."""
    cfg, device = _setup(config_yaml, "encoder")
    model = TokenAutoencoder(cfg.tokens.widths).to(device)
    images = np.concatenate([triplets.foreground, triplets.background])
    batches = _batches([images], cfg.tokens.encoder_steps, cfg.train.batch_size, numpy_rng(cfg.seed, "encoder"), device)

    def loss_of(net: nn.Module, batch: list[torch.Tensor], step: int) -> torch.Tensor:
        return F.l1_loss(net(batch[0]), batch[0])

    ema, info = _train(
        cfg, "encoder", model, list(model.parameters()), loss_of, batches, cfg.tokens.encoder_lr,
        cfg.tokens.encoder_steps,
    )  # fmt: skip
    return state_arrays(ema.encoder), info


@_in_threads
def train_base(config_yaml: str, triplets: Triplets) -> tuple[State, dict[str, Any]]:
    """Stage 1: the ε-prediction UNet on ground-truth composites alone (no context, no control)."""
    cfg, device = _setup(config_yaml, "base")
    model = build_base(cfg).to(device)
    diffusion = build_diffusion(cfg)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "compose", "base", "noise"))
    batches = _batches([triplets.gt], cfg.train.base_steps, cfg.train.batch_size, numpy_rng(cfg.seed, "base"), device)

    def loss_of(net: nn.Module, batch: list[torch.Tensor], step: int) -> torch.Tensor:
        (x0,) = batch
        t = torch.randint(diffusion.num_timesteps, (len(x0),), generator=generator).to(device)
        return diffusion.training_loss(net, x0, t, torch.randn(x0.shape, generator=generator).to(device)).mean()

    trainable = [p for p in model.parameters() if p.requires_grad]
    ema, info = _train(cfg, "base", model, trainable, loss_of, batches, cfg.train.base_lr, cfg.train.base_steps)
    return state_arrays(ema), info


def drop_tokens(images: torch.Tensor, drop: torch.Tensor) -> torch.Tensor:
    """``images`` with the rows where ``drop`` is true replaced by all-zero images (the unconditional input)."""
    return torch.where(drop.reshape(-1, 1, 1, 1), torch.zeros_like(images), images)


@_in_threads
def train_method(
    config_yaml: str, method: str, triplets: Triplets, base_state: State, encoder_state: State
) -> tuple[State, dict[str, Any]]:
    """Stage 2: ``method``'s conditioning on the frozen base UNet and token encoder; ε loss on the composites, with
    foreground and background token images both zeroed with probability ``train.token_dropout``."""
    cfg, device = _setup(config_yaml, "method", method)
    base = load_state_arrays(build_base(cfg), base_state, "the base UNet checkpoint", "model, data.image_size")
    encoder = load_state_arrays(build_token_encoder(cfg), encoder_state, "the token encoder checkpoint", "tokens")
    model = Compositor(cfg, method, base, encoder).to(device)
    diffusion = build_diffusion(cfg)
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, "compose", "stage2", "noise"))
    arrays = [triplets.gt, triplets.foreground, triplets.background]
    batches = _batches(arrays, cfg.train.steps, cfg.train.batch_size, numpy_rng(cfg.seed, "stage2"), device)

    def loss_of(net: nn.Module, batch: list[torch.Tensor], step: int) -> torch.Tensor:
        x0, fg, bg = batch
        t = torch.randint(diffusion.num_timesteps, (len(x0),), generator=generator).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        drop = (torch.rand(len(x0), generator=generator) < cfg.train.token_dropout).to(device)
        context = net.context(drop_tokens(fg, drop), drop_tokens(bg, drop))
        return diffusion.training_loss(lambda x, s: net(x, s, context, bg), x0, t, noise).mean()

    ema, info = _train(cfg, method, model, model.trainable(), loss_of, batches, cfg.train.lr, cfg.train.steps)
    return state_arrays(ema), info
