"""The attacked detectors: trained in parallel runtime tasks on the training faces, or loaded from checkpoints.

A trained victim is saved as a self-describing detector file (``checkpoints/<name>.safetensors``), so a later run can
attack it again through ``victims.<name>.checkpoint``; ``resume=true`` reuses this run's own files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch import nn

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.device import torch_threads
from fedray.platform.errors import DataError
from fedray.platform.modules.build import build_model
from fedray.platform.modules.cam import cam_weight
from fedray.platform.modules.state import load_state_arrays, state_arrays
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime
from fedray.tasks.attack.config import AttackConfig
from fedray.tasks.forensics.config import DetectorConfig
from fedray.tasks.forensics.detector import load_detector, save_detector, train_detector

VICTIMS = ("cnn", "resnet")


def train_victim(
    cfg: DetectorConfig, faces: np.ndarray, families: list[str], forgery: ForgeryConfig, seed: int, threads: int
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A runtime task: the detector's weights (numpy) and its training stats."""
    with torch_threads(threads):
        model, info = train_detector(cfg, faces, families, forgery, seed)
    return state_arrays(model), info


def _check_cam(name: str, model: nn.Module, source: str) -> nn.Module:
    try:
        cam_weight(model)
    except TypeError:
        raise DataError(
            f"victims.{name}: the detector in {source} ({type(model).__name__}) does not end Conv → GAP → FC, so it "
            "has no class activation map to attack; use a cnn/resnet detector, a fedavg or ditto run, or a client "
            "of a fedavg-style run"
        ) from None
    return model


def victims(
    cfg: AttackConfig, runtime: Runtime, run_dir: RunDir, train_faces: np.ndarray
) -> tuple[dict[str, nn.Module], dict[str, dict[str, Any]]]:
    """Every victim as an eval-mode module on the CPU, and where it came from (with training stats when trained)."""
    models: dict[str, nn.Module] = {}
    infos: dict[str, dict[str, Any]] = {}
    pending = {}
    faces_ref = None
    for name in VICTIMS:
        det: DetectorConfig = getattr(cfg.victims, name)
        own = run_dir.checkpoint(name)
        source = det.checkpoint or (str(own) if cfg.resume and own.is_file() else None)
        if source is not None:
            try:
                model, info = load_detector(source, det.client)
            except DataError as exc:
                raise DataError(f"victims.{name}.checkpoint: {exc}") from None
            if info.get("image_size", cfg.data.image_size) != cfg.data.image_size:
                raise DataError(
                    f"victims.{name}: {source} was trained on {info['image_size']}px images; data.image_size is "
                    f"{cfg.data.image_size}"
                )
            models[name], infos[name] = _check_cam(name, model, source), info
            continue
        faces_ref = faces_ref if faces_ref is not None else runtime.put(train_faces)
        pending[name] = runtime.submit(
            train_victim, det, faces_ref, list(cfg.data.forgery.families), cfg.data.forgery, cfg.seed, cfg.threads,
            num_cpus=cfg.num_cpus, num_gpus=cfg.num_gpus,
        )  # fmt: skip
    for name, ref in pending.items():
        det = getattr(cfg.victims, name)
        state, info = runtime.get(ref)
        model = build_model(det.architecture, det.model, 1, 2)
        load_state_arrays(model, state, name)
        save_detector(run_dir.checkpoint(name), model, det.architecture, det.model, cfg.data.image_size)
        for point in info.get("loss_curve", []):
            run_dir.log({"phase": "train", "victim": name, **point})
        models[name] = model.eval()
        infos[name] = {**info, "source": "trained in this run", "architecture": det.architecture}
    return {name: models[name] for name in VICTIMS}, {name: infos[name] for name in VICTIMS}
