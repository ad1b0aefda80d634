"""Binary real/fake detectors: trained centrally on self-blended forgeries, saved as one self-describing
safetensors file, and loaded back — from such a file or from a ``federated`` run directory.

A federated run's detector is its global model (the server checkpoint) where the method has one: ``fedavg`` (the
whole classifier), ``pfr`` (the shared trunk, shared branch and shared head: ``head_s(z_s)``, what a new client
would use) and ``ditto`` (the federated ``global_model``). With ``client=k`` it is client ``k``'s own model: the
server's shared tensors plus that client's newest personal state (PFR's joint prediction).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fedray.clients.training import shuffled_batches, train_epochs
from fedray.platform.data.config import ForgeryConfig
from fedray.platform.data.forgery import draw_samples
from fedray.platform.device import select_device
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import load_arrays, read_metadata, save_arrays, strip_wrapper_prefixes
from fedray.platform.metrics.running import finite_loss
from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.state import as_tensor, load_state_arrays, state_arrays
from fedray.tasks.forensics.config import DetectorConfig

DETECTOR_KEY = "fedray_detector"
GLOBAL_MODELS = ("fedavg", "pfr", "ditto")  # federated methods whose server checkpoint is a complete detector


class SharedPrediction(nn.Module):
    """PFR's prediction from the shared tensors alone (``head_s(z_s)``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_shared(x)


def learning_rate(cfg: DetectorConfig, epoch: int) -> float:
    """The rate of ``epoch`` (0-based): linear warm-up over ``warmup_epochs``, then cosine to zero at ``epochs``."""
    if epoch < cfg.warmup_epochs:
        return cfg.lr * (epoch + 1) / (cfg.warmup_epochs + 1)
    span = max(1, cfg.epochs - cfg.warmup_epochs)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / span))


def _optimizer(cfg: DetectorConfig, model: nn.Module) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(
        model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.momentum > 0, weight_decay=cfg.weight_decay
    )


def train_detector(
    cfg: DetectorConfig, faces: np.ndarray, families: list[str], forgery: ForgeryConfig, seed: int
) -> tuple[nn.Module, dict[str, Any]]:
    """A detector trained on fresh SBI draws of ``faces`` each epoch (``forgery.train_per_class`` real and as many
    fakes, each fake's family drawn uniformly from ``families``) with :func:`learning_rate`'s schedule. The stats
    hold the mean loss of every epoch (``loss_curve``)."""
    torch.manual_seed(seed)
    device = select_device()
    model = build_model(cfg.architecture, cfg.model, 1, 2).to(device)
    optimizer = _optimizer(cfg, model)
    batches = shuffled_batches(cfg.batch_size, torch.Generator().manual_seed(seed))

    def epoch_data(epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y, _ = draw_samples(
            faces, families, forgery.train_per_class, forgery, seed, "detector", epoch, random_family=True
        )
        return as_tensor(x).to(device), as_tensor(y).to(device)

    started = time.perf_counter()
    curve, steps = [], 0.0
    for epoch in range(cfg.epochs):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(cfg, epoch)
        stats = train_epochs(model, epoch_data, optimizer, range(epoch, epoch + 1), batches)
        steps += stats["steps"]
        loss = finite_loss(stats["train_loss"], f"detector, epoch {epoch + 1}")
        curve.append({"epoch": epoch + 1, "loss": loss, "lr": learning_rate(cfg, epoch)})
    model.eval()
    info = {
        "train_loss": curve[-1]["loss"] if curve else float("nan"),
        "steps": steps,
        "loss_curve": curve,
        "train_seconds": time.perf_counter() - started,
        "device": str(device),
    }
    return model.cpu(), info


def save_detector(
    path: str | Path, model: nn.Module, architecture: str, model_cfg: ModelConfig, image_size: int
) -> None:
    """Weights plus what rebuilds the network (architecture, sizes, input size) in the file's metadata."""
    spec = {"architecture": architecture, "model": dataclasses.asdict(model_cfg), "image_size": image_size}
    save_arrays(path, state_arrays(model), {DETECTOR_KEY: json.dumps(spec)})


def _load_file(path: Path) -> tuple[nn.Module, dict[str, Any]]:
    metadata = read_metadata(path)
    if DETECTOR_KEY not in metadata:
        raise DataError(f"{path} is not a fedray detector file (no '{DETECTOR_KEY}' metadata)")
    try:
        spec = json.loads(metadata[DETECTOR_KEY])
        model = build_model(spec["architecture"], ModelConfig(**spec["model"]), 1, 2)
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: unreadable detector description ({exc})") from None
    load_state_arrays(model, load_arrays(path), str(path))
    return model.eval(), {"source": str(path), "architecture": spec["architecture"], "image_size": spec["image_size"]}


def _load_federated(run: Path, client: int | None) -> tuple[nn.Module, dict[str, Any]]:
    from fedray.clients.methods import METHODS
    from fedray.clients.state_store import ClientStateStore
    from fedray.cluster.federation_config import FederatedConfig
    from fedray.platform.config import load_config
    from fedray.platform.rundir import RunDir
    from fedray.server.checkpoint import ServerCheckpoint

    run_dir = RunDir(run)
    if not run_dir.config_file.is_file():
        raise DataError(f"{run} is a directory but no federated run (no {run_dir.config_file.name})")
    try:
        cfg = load_config(FederatedConfig, run_dir.config_file)
    except ConfigError as exc:
        raise DataError(f"{run} is not a federated run: its config.yaml does not fit that workload ({exc})") from None
    if cfg.data.name != "forgery":
        raise DataError(f"{run} trained on data.name={cfg.data.name}, not forgery: it is not a forgery detector")
    server_file = run_dir.checkpoint("server")
    if not server_file.is_file():
        raise DataError(f"{run} has no server checkpoint ({server_file}): the run never completed a round")
    method = METHODS[cfg.method]
    model = build_model(method.architecture, cfg.model, 1, 2)
    state = state_arrays(model)
    state.update(strip_wrapper_prefixes(ServerCheckpoint.load(server_file).weights))
    info: dict[str, Any] = {"source": str(run), "method": cfg.method, "image_size": cfg.data.image_size}
    if client is not None:
        saved = ClientStateStore(run_dir.client_states).load(client)
        if saved is None:
            raise DataError(f"{run}: client {client} has no saved personal state under {run_dir.client_states}")
        state.update(strip_wrapper_prefixes(saved.arrays))
        load_state_arrays(model, state, str(run))
        return model.eval(), {**info, "client": client, "round": saved.round}
    if cfg.method not in GLOBAL_MODELS:
        raise DataError(
            f"{run}: method {cfg.method} keeps part of the model personal, so there is no global detector; "
            f"name a client (detector.client=k) or use one of {', '.join(GLOBAL_MODELS)}"
        )
    load_state_arrays(model, state, str(run))
    detector = {"pfr": lambda m: SharedPrediction(m), "ditto": lambda m: m.global_model}.get(cfg.method, lambda m: m)
    return detector(model).eval(), {**info, "client": None}


def load_detector(path: str | Path, client: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """The detector in ``path`` (a detector file or a ``federated`` run directory) and where it came from."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _load_federated(path, client)
    if not path.is_file():
        raise DataError(f"detector checkpoint {path} does not exist")
    if client is not None:
        raise ConfigError(f"detector.client={client} picks a client of a federated run directory; {path} is one file")
    return _load_file(path)


@torch.no_grad()
def fake_probability(model: nn.Module, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """P(fake) of every image ``[N, 1, s, s]`` (softmax of the two logits)."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        torch.softmax(model(as_tensor(images[i : i + batch_size]).to(device)), dim=1)[:, 1].cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.float32)
