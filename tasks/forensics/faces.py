"""Faces with group labels, split by face into disjoint train / calibration / test sets, and grouped SBI samples.

No demographic labels ship offline, so by default a face's group is the quantile of a proxy attribute — the mean
intensity of its central region, a crude skin-tone proxy — with groups ordered darkest to brightest and equal in
size. A ``group_file`` replaces the proxy with real labels. Splitting by face (not by sample) keeps every identity in
one split, so calibration statistics and test metrics never see a training face.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.data.forgery import draw_samples, forgery_faces
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.seeding import numpy_rng
from fedray.tasks.forensics.config import FacesConfig

SPLITS = ("train", "calibration", "test")


@dataclass(frozen=True)
class GroupedFaces:
    """Faces ``[N, s, s]`` in [0, 1], their group ``[N]`` and the face indices of each split."""

    faces: np.ndarray
    groups: np.ndarray
    num_groups: int
    splits: dict[str, np.ndarray]
    source: str

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(faces, groups)`` of one split."""
        idx = self.splits[name]
        return self.faces[idx], self.groups[idx]


@dataclass(frozen=True)
class GroupedSamples:
    """SBI samples with everything fairness needs per sample: image ``[N, 1, s, s]``, label (1 = fake), forgery
    family (index into the family list, -1 for real) and group."""

    images: np.ndarray
    labels: np.ndarray
    families: np.ndarray
    groups: np.ndarray


def proxy_groups(faces: np.ndarray, num_groups: int) -> np.ndarray:
    """Equal-size groups by rank of the mean intensity of the central half of each face (0 = darkest)."""
    if not 1 <= num_groups <= len(faces):
        raise ConfigError(f"num_groups={num_groups} must lie between 1 and the number of faces ({len(faces)})")
    h, w = faces.shape[1:]
    centre = faces[:, h // 4 : h - h // 4, w // 4 : w - w // 4].mean(axis=(1, 2))
    ranks = np.argsort(np.argsort(centre, kind="stable"), kind="stable")
    return (ranks * num_groups // len(faces)).astype(np.int64)


def read_group_file(path: str | Path, num_faces: int) -> np.ndarray:
    """Groups from a CSV of ``index,group`` rows (a header line is allowed); every face needs exactly one row."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"group_file {path} does not exist")
    groups = np.full(num_faces, -1, dtype=np.int64)
    first_row: dict[int, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"group_file {path} is not a UTF-8 text CSV ({err.reason} at byte {err.start})") from None
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or (line_no == 1 and not row[0].strip().isdigit()):
            continue
        try:
            index, group = int(row[0]), int(row[1])
        except (ValueError, IndexError):
            raise DataError(f"{path}:{line_no}: expected 'index,group' integers, got {row}") from None
        if not 0 <= index < num_faces or group < 0:
            raise DataError(f"{path}:{line_no}: index {index} outside 0..{num_faces - 1} or negative group")
        if index in first_row:
            raise DataError(f"{path}:{line_no}: face {index} already has a row (line {first_row[index]})")
        first_row[index] = line_no
        groups[index] = group
    missing = np.flatnonzero(groups < 0)
    if len(missing):
        raise DataError(f"{path} gives no group for {len(missing)} faces (first: index {missing[0]})")
    return groups


def split_by_group(groups: np.ndarray, fractions: tuple[float, float, float], seed: int) -> dict[str, np.ndarray]:
    """Face indices of each split, stratified so that every split holds every group (at least one face each)."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for g in np.unique(groups):
        members = numpy_rng(seed, "face-split", int(g)).permutation(np.flatnonzero(groups == g))
        if len(members) < len(SPLITS):
            raise DataError(f"group {g} has {len(members)} faces; every split needs at least one")
        counts = np.maximum(1, np.floor(np.asarray(fractions) * len(members)).astype(int))
        counts[0] = len(members) - counts[1:].sum()
        for name, chunk in zip(SPLITS, np.split(members, np.cumsum(counts)[:-1]), strict=True):
            parts[name].append(chunk)
    return {name: np.sort(np.concatenate(chunks)) for name, chunks in parts.items()}


def load_grouped_faces(cfg: FacesConfig, fractions: tuple[float, float, float], seed: int) -> GroupedFaces:
    """The configured faces, grouped and split by face."""
    faces, skipped = forgery_faces(cfg.forgery, cfg.image_size)
    if cfg.group_file is not None:
        groups = read_group_file(cfg.group_file, len(faces))
        source = f"groups from {cfg.group_file}"
    else:
        groups = proxy_groups(faces, cfg.num_groups)
        source = f"{cfg.num_groups} groups by central-intensity quantile (proxy attribute)"
    faces_from = cfg.forgery.faces_dir or "LFW (scikit-image)"
    note = f"; {skipped.count} unreadable files skipped" if skipped.count else ""
    num_groups = int(groups.max()) + 1
    return GroupedFaces(
        faces, groups, num_groups, split_by_group(groups, fractions, seed), f"{faces_from}: {source}{note}"
    )


def grouped_samples(
    faces: np.ndarray,
    groups: np.ndarray,
    families: list[str],
    per_cell: int,
    cfg: ForgeryConfig,
    seed: int,
    *labels: object,
) -> GroupedSamples:
    """At least ``per_cell`` samples in every (real or family) × group cell, drawn from that group's faces."""
    images, ys, fams, gs = [], [], [], []
    for g in np.unique(groups):
        own = faces[groups == g]
        for i, family in enumerate(families):
            if i == 0:  # per_cell real and per_cell fakes of the first family
                x, y, _ = draw_samples(own, family, per_cell, cfg, seed, *labels, "group", int(g), family)
            else:  # only fakes
                x, y, _ = draw_samples(
                    own, family, -(-per_cell // 2), cfg, seed, *labels, "group", int(g), family, num_real=0
                )
            images.append(x)
            ys.append(y)
            fams.append(np.where(y == 1, i, -1))
            gs.append(np.full(len(y), g))
    return GroupedSamples(
        np.concatenate(images), np.concatenate(ys), np.concatenate(fams), np.concatenate(gs).astype(np.int64)
    )


def group_pool(faces: np.ndarray, groups: np.ndarray, shares: list[float], size: int, seed: int) -> np.ndarray:
    """A training pool of ``size`` faces whose groups follow ``shares`` (faces repeated as needed): the same SBI
    draws then see each group in that proportion, which is how a detector is made biased on purpose."""
    present = np.unique(groups)
    if len(shares) != len(present):
        raise ConfigError(f"detector.group_shares has {len(shares)} entries; the faces have {len(present)} groups")
    weights = np.asarray(shares, dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ConfigError(f"detector.group_shares must be non-negative with a positive sum, got {shares}")
    counts = np.round(weights / weights.sum() * size).astype(int)
    rng = numpy_rng(seed, "group-pool")
    picks = [rng.choice(np.flatnonzero(groups == g), size=n) for g, n in zip(present, counts, strict=True) if n > 0]
    return faces[np.concatenate(picks)]
