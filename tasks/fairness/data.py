"""Which faces a seed's evaluation (and training) uses, and where its detector comes from.

* Trained here, or a detector file: the configured faces grouped and split by face with ``evaluation.split`` for the
  seed (``tasks.forensics.faces``). The detectors this workload saves were trained on exactly that seed's train
  split, so evaluating one again with the same seed and split keeps its test faces unseen; a detector file from
  elsewhere carries no record of its training faces, which the summary says.
* A ``federated`` run: only faces no client of that run trained on. :func:`held_out_faces` re-derives the run's face
  assignment exactly as ``platform/data/forgery.py::forgery_clients`` makes it (the permutation seeded by the run's
  seed; client k owns ``faces_per_client`` consecutive faces, the first ``test_faces`` of them held out) and keeps
  the held-out faces plus any face no client owned. Groups are then formed among those faces (proxy quantiles, so
  every group has the same number of faces; or the ``group_file`` labels) and split into calibration and test.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.errors import DataError
from fedray.tasks.fairness.config import FairnessConfig
from fedray.tasks.forensics.config import FacesConfig

Split = dict[str, tuple[np.ndarray, np.ndarray]]  # split name → (faces [N, s, s], groups [N])


@dataclasses.dataclass(frozen=True)
class DetectorSource:
    """Where the detector comes from: ``kind`` ``trained`` (here, per seed), ``file`` or ``federated``."""

    kind: str
    path: str | None
    client: int | None
    info: dict[str, Any]
    run_cfg: Any = None  # the federated run's FederatedConfig


def resolve_source(cfg: FairnessConfig) -> DetectorSource:
    """Load the configured checkpoint once (a missing or wrong one fails here, before any work) and describe it."""
    det = cfg.detector
    if det.checkpoint is None:
        return DetectorSource("trained", None, None, {"architecture": det.architecture})
    from fedray.tasks.forensics.detector import load_detector

    path = Path(det.checkpoint).expanduser()
    model, info = load_detector(path, det.client)
    info = {**info, "parameters": int(sum(p.numel() for p in model.parameters()))}
    if not path.is_dir():
        return DetectorSource("file", str(path), None, info)
    from fedray.cluster.federation_config import FederatedConfig
    from fedray.platform.config import load_config
    from fedray.platform.rundir import RunDir

    run_cfg = load_config(FederatedConfig, RunDir(path).config_file)
    return DetectorSource("federated", str(path), det.client, info, run_cfg)


def held_out_faces(forgery: ForgeryConfig, num_clients: int, seed: int, num_faces: int) -> np.ndarray:
    """Indices of the faces no client of a ``federated`` forgery run trained on (sorted)."""
    from fedray.platform.data.forgery import client_face_indices

    owned = client_face_indices(forgery, num_clients, num_faces, seed)
    trained = np.concatenate([own[forgery.test_faces :] for own in owned] or [np.zeros(0, dtype=np.int64)])
    return np.setdiff1d(np.arange(num_faces), trained)


def faces_config(cfg: FairnessConfig, source: DetectorSource) -> FacesConfig:
    """The faces recipe of this evaluation: a federated run's own faces, size and SBI strengths; a detector file's
    input size; else the configured one."""
    if source.kind == "federated":
        data = source.run_cfg.data
        return dataclasses.replace(cfg.faces, image_size=data.image_size, forgery=data.forgery)
    if source.kind == "file":
        return dataclasses.replace(cfg.faces, image_size=int(source.info["image_size"]))
    return cfg.faces


def seed_faces(cfg: FairnessConfig, source: DetectorSource, seed: int) -> tuple[Split, int, str]:
    """This seed's ``train`` (absent for a federated detector), ``calibration`` and ``test`` faces with groups; the
    number of groups; and a line saying where the faces come from."""
    from fedray.tasks.forensics.faces import load_grouped_faces, proxy_groups, read_group_file, split_by_group

    faces_cfg = faces_config(cfg, source)
    if source.kind != "federated":
        grouped = load_grouped_faces(faces_cfg, tuple(cfg.evaluation.split), seed)  # type: ignore[arg-type]
        return (
            {name: grouped.split(name) for name in ("train", "calibration", "test")},
            grouped.num_groups,
            grouped.source,
        )
    from fedray.platform.data.forgery import forgery_faces

    run = source.run_cfg
    faces, _ = forgery_faces(faces_cfg.forgery, faces_cfg.image_size)
    held = held_out_faces(faces_cfg.forgery, run.clients.num_clients, run.seed, len(faces))
    if faces_cfg.group_file is not None:
        groups = read_group_file(faces_cfg.group_file, len(faces))[held]
        how = f"groups from {faces_cfg.group_file}"
    else:
        groups = proxy_groups(faces[held], faces_cfg.num_groups)
        how = f"{faces_cfg.num_groups} groups by central-intensity quantile among them (proxy attribute)"
    if len(np.unique(groups)) < 2:
        raise DataError(f"the {len(held)} faces the federated run never trained on fall into fewer than two groups")
    cal = cfg.evaluation.held_out_calibration
    parts = split_by_group(groups, (0.0, cal, 1.0 - cal), seed)
    calibration = np.sort(np.concatenate([parts["train"], parts["calibration"]]))
    split = {"calibration": (faces[held][calibration], groups[calibration]),
             "test": (faces[held][parts["test"]], groups[parts["test"]])}  # fmt: skip
    note = (
        f"{len(held)} faces the federated run (seed {run.seed}, {run.clients.num_clients} clients × "
        f"{faces_cfg.forgery.faces_per_client} faces, {faces_cfg.forgery.test_faces} held out each) never trained on; "
        f"{how}"
    )
    return split, int(groups.max()) + 1, note
