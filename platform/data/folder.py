"""Real/fake images from a folder: ``ROOT/real/**`` is label 0, ``ROOT/fake/**`` label 1, and an optional
``ROOT/metadata.csv`` lists the samples with their labels, clients, forgery methods and groups.

A file that cannot be decoded is skipped and counted instead of ending the run: collected image folders nearly always
hold a few truncated downloads or stray non-images, and one of them should not cost a whole run. Everything is read
in sorted path order, so each seeded split sees the same samples in the same order on every machine.
"""

from __future__ import annotations

import csv
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from skimage import io as skio
from skimage.color import rgb2gray
from skimage.transform import resize
from skimage.util import img_as_float

from fedray.platform.data.config import DataConfig
from fedray.platform.data.load import stratified_split
from fedray.platform.data.partition import make_client_shards
from fedray.platform.errors import ConfigError, DataError
from fedray.platform.messages import ClientData
from fedray.platform.seeding import derive_seed

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
CLASS_DIRS = ("real", "fake")  # the position is the label
LABEL_VALUES = {"0": 0, "1": 1, "real": 0, "fake": 1}
MAX_SKIP_EXAMPLES = 5


@dataclass
class SkippedImages:
    """Images that could not be read: all counted, the first few kept with the reason, to show the user."""

    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, name: str, reason: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_SKIP_EXAMPLES:
            self.examples.append(f"{name}: {reason}")


@dataclass(frozen=True)
class FolderSample:
    """One image a folder dataset lists; ``client``, ``method`` and ``group`` are None without those columns."""

    path: Path
    label: int
    client: str | None = None
    method: str | None = None
    group: str | None = None


def find_images(directory: Path) -> list[Path]:
    """Image files under ``directory`` at any depth (extensions in any case), sorted."""
    return sorted(p for p in directory.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def as_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """``[H, W, channels]`` floats in [0, 1] from decoded grey, grey+alpha, RGB or RGBA pixels (alpha dropped)."""
    image = img_as_float(image)
    if image.ndim == 3 and image.shape[-1] in (1, 2):
        image = image[..., 0]
    elif image.ndim == 3 and image.shape[-1] == 4:
        image = image[..., :3]
    if image.ndim == 2:
        return np.repeat(image[..., None], channels, axis=-1)
    if image.ndim == 3 and image.shape[-1] == 3:
        return rgb2gray(image)[..., None] if channels == 1 else image
    raise ValueError(f"unsupported pixel array of shape {image.shape}")


def decode_image(path: Path) -> np.ndarray:
    """The file's pixels as decoded; raises whatever decoding a bad file raises."""
    with warnings.catch_warnings():  # imageio announces plugin deprecations while it probes a bad file's format
        warnings.simplefilter("ignore", DeprecationWarning)
        return skio.imread(path)


def read_image(path: Path, channels: int, size: int) -> np.ndarray:
    """One image as float32 ``[channels, size, size]`` in [0, 1]; raises whatever decoding a bad file raises."""
    pixels = as_channels(decode_image(path), channels)
    pixels = resize(pixels, (size, size), order=1, anti_aliasing=True)
    return np.clip(pixels, 0, 1).transpose(2, 0, 1).astype(np.float32)


def read_images(
    paths: list[Path], channels: int, size: int, root: Path | None = None
) -> tuple[np.ndarray, np.ndarray, SkippedImages]:
    """The readable ones of ``paths`` as float32 ``[N, channels, size, size]``, their indices into ``paths``, and
    the skipped rest (named relative to ``root`` when given)."""
    images = np.empty((len(paths), channels, size, size), dtype=np.float32)
    kept: list[int] = []
    skipped = SkippedImages()
    for i, path in enumerate(paths):
        name = str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)
        if not path.is_file():
            skipped.add(name, "no such file")
            continue
        try:
            images[len(kept)] = read_image(path, channels, size)
        except Exception as exc:  # noqa: BLE001 - decoders raise many types for bad bytes; each is a per-file skip
            detail = (str(exc).splitlines() or ["unreadable"])[0].replace(str(path), name)
            skipped.add(name, f"{type(exc).__name__}: {detail}"[:160])
            continue
        kept.append(i)
    return images[: len(kept)], np.asarray(kept, dtype=np.int64), skipped


def _label_from_path(relative: str) -> int | None:
    top = Path(relative).parts[0].lower() if Path(relative).parts else ""
    return CLASS_DIRS.index(top) if top in CLASS_DIRS else None


def read_metadata(root: Path, file: Path) -> list[FolderSample]:
    """The samples ``file`` lists: a header row naming ``path`` (relative to ``root``) and optionally ``label``
    (0/1 or real/fake; else taken from the real/fake directory the path starts with), ``client``, ``method``, ``group``.
    """
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read {file}: {exc}") from exc
    if not rows:
        raise DataError(f"{file} is empty; it needs a header row with a 'path' column")
    header = [name.strip().lower() for name in rows[0]]
    if "path" not in header:
        raise DataError(f"{file} has no 'path' column (header: {', '.join(header)}); add one, relative to {root}")
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:
        raise DataError(f"{file} names the columns {', '.join(twice)} more than once")
    samples: list[FolderSample] = []
    first_line: dict[Path, int] = {}
    inside = root.resolve()
    for line, values in enumerate(rows[1:], start=2):
        row = {name: value.strip() for name, value in zip(header, values, strict=False)}  # short rows: empty cells
        if not any(row.values()):
            continue
        if not row.get("path"):
            raise DataError(f"{file} line {line} has no path")
        where = (root / row["path"]).resolve()
        if not where.is_relative_to(inside):
            raise DataError(f"{file} line {line}: {row['path']!r} is not inside {root}; paths are relative to it")
        if where in first_line:
            raise DataError(f"{file} line {line} lists {row['path']!r} again (first on line {first_line[where]})")
        first_line[where] = line
        text = row.get("label", "").lower()
        label = LABEL_VALUES.get(text) if text else _label_from_path(row["path"])
        if label is None and text:
            raise DataError(f"{file} line {line} has label {row['label']!r}; use 0/1 or real/fake")
        if label is None:
            raise DataError(f"{file} line {line}: no label, and {row['path']!r} is not under real/ or fake/")
        if "client" in header and not row.get("client"):
            raise DataError(f"{file} line {line} has no client; fill every row's client or drop the column")
        samples.append(
            FolderSample(
                root / row["path"],
                label,
                row.get("client") if "client" in header else None,
                row.get("method") if "method" in header else None,
                row.get("group", "") if "group" in header else None,
            )
        )
    return samples


def list_samples(root: Path) -> list[FolderSample]:
    """Every image under ``root/real`` (label 0) and ``root/fake`` (label 1)."""
    return [
        FolderSample(path, label)
        for label, name in enumerate(CLASS_DIRS)
        if (root / name).is_dir()
        for path in find_images(root / name)
    ]


def client_order(names: set[str]) -> list[str]:
    """Distinct client names sorted, numbers by value (``2`` before ``10``), then the rest alphabetically."""

    def key(name: str) -> tuple[int, float, str]:
        try:
            return (0, float(name), name)
        except ValueError:
            return (1, 0.0, name)

    return sorted(names, key=key)


def _train_test(
    indices: np.ndarray, labels: np.ndarray, fraction: float, seed: int, client: str
) -> tuple[np.ndarray, np.ndarray]:
    """A seeded split of one client's samples, stratified by label unless a class is too small to be."""
    if len(indices) < 2:
        raise DataError(
            f"client {client} has {len(indices)} readable images; each needs at least 2 (to train and to test)"
        )
    return stratified_split(indices, labels[indices], fraction, derive_seed(seed, "folder-split", client) % 2**32)


def _client_parts(
    samples: list[FolderSample], labels: np.ndarray, cfg: DataConfig, num_clients: int, seed: int
) -> list[tuple[str, np.ndarray]]:
    """Each client's name and sample indices: by the metadata's client column, else by ``data.partition`` (IID or
    Dirichlet, as for every other dataset)."""
    if samples[0].client is not None:
        names = client_order({s.client for s in samples})
        owner = np.array([names.index(s.client) for s in samples], dtype=np.int64)
        return [(name, np.flatnonzero(owner == k)) for k, name in enumerate(names)]
    shards = make_client_shards(
        labels, num_clients, cfg.partition, cfg.alpha, cfg.test_fraction, seed, cfg.min_client_samples
    )
    # make_client_shards' own train/test cut is not stratified; each shard is re-split by _train_test.
    return [(str(s.client_id), np.sort(np.concatenate([s.train, s.test]))) for s in shards]


def _check_settings(cfg: DataConfig) -> Path:
    if cfg.folder.channels not in (1, 3):
        raise ConfigError(f"data.folder.channels must be 1 (grayscale) or 3 (RGB), got {cfg.folder.channels}")
    if cfg.image_size < 1:
        raise DataError(f"data.image_size must be positive, got {cfg.image_size}")
    if not 0 < cfg.test_fraction < 1:
        raise ConfigError(f"data.test_fraction must lie in (0, 1), got {cfg.test_fraction}")
    if cfg.path is None:
        raise ConfigError("data.name=folder needs data.path=ROOT, a folder with real/ and fake/ images")
    root = Path(cfg.path).expanduser()
    if not root.is_dir():
        raise DataError(f"data.path={root} is not a directory")
    return root


def _samples(root: Path, cfg: DataConfig, num_clients: int) -> list[FolderSample]:
    metadata = root / cfg.folder.metadata
    default = DataConfig().folder.metadata
    if cfg.folder.metadata != default and not metadata.is_file():  # named on purpose: not an optional default
        raise DataError(f"data.folder.metadata={cfg.folder.metadata}: {metadata} does not exist")
    samples = read_metadata(root, metadata) if metadata.is_file() else list_samples(root)
    if cfg.scope == "all":  # a silo's own folder: every sample is this client's, whatever a client column says
        samples = [replace(s, client=None) for s in samples]
    if not samples:
        source = f"{metadata} lists" if metadata.is_file() else f"{root}/real and {root}/fake hold"
        raise DataError(f"{source} no images ({', '.join(IMAGE_EXTENSIONS)})")
    if samples[0].client is not None:
        count = len({s.client for s in samples})
        if count != num_clients:
            raise ConfigError(
                f"{metadata} names {count} clients but clients.num_clients={num_clients}; make them equal"
            )
    return samples


def folder_clients(cfg: DataConfig, num_clients: int, seed: int) -> tuple[list[ClientData], SkippedImages]:
    """One :class:`ClientData` per client from the folder ``cfg.path``, and the images that could not be read."""
    root = _check_settings(cfg)
    listed = _samples(root, cfg, num_clients)
    images, kept, skipped = read_images([s.path for s in listed], cfg.folder.channels, cfg.image_size, root)
    samples = [listed[i] for i in kept]
    labels = np.array([s.label for s in samples], dtype=np.int64)
    if len(samples) == 0:
        raise DataError(f"none of the {len(listed)} images in {root} could be read, e.g. {skipped.examples[0]}")
    for label, name in enumerate(CLASS_DIRS):
        if not (labels == label).any():
            raise DataError(f"{root} has no readable {name} images (label {label}); a detector needs both classes")
    groups = np.array([s.group for s in samples], dtype=str) if samples[0].group is not None else None
    clients = []
    for name, part in _client_parts(samples, labels, cfg, num_clients, seed):
        train, test = _train_test(part, labels, cfg.test_fraction, seed, name)
        clients.append(
            ClientData(
                images[train],
                labels[train],
                images[test],
                labels[test],
                num_classes=2,
                test_groups=groups[test] if groups is not None else None,
            )
        )
    return clients, skipped
