"""MR slices for purification: NIfTI volumes (nibabel) or 2-D images, cut, filtered, squared and normalised.

The default trains on nilearn's bundled MNI152 T1 template and tests on another head (Debian ``mricron-data``'s
ch2bet, skull-stripped like the template) when it is installed; without it, test slices are a disjoint subset of the
template's, kept ``gap`` slices away from every training slice. Foreground pixels are those above 5 % of the
volume's (or image's) 99th percentile [fedray: a fixed rule, since neither template ships a brain mask].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from skimage import io as skio
from skimage.color import rgb2gray
from skimage.transform import resize

from fedray.platform.data.folder import SkippedImages
from fedray.platform.errors import DataError
from fedray.tasks.purify.config import SliceData

VOLUME_SUFFIXES = (".nii", ".nii.gz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy")
FOREGROUND = 0.05  # of the 99th percentile
CH2BET = "/usr/share/mricron/templates/ch2bet.nii.gz"  # Debian mricron-data: a second, skull-stripped head


@dataclass
class Slices:
    """``images`` float32 ``[S, N, N]`` in [−1, 1], ``masks`` bool ``[S, N, N]`` (foreground), and their names."""

    images: np.ndarray
    masks: np.ndarray
    names: list[str]
    skipped: SkippedImages = field(default_factory=SkippedImages)

    def __len__(self) -> int:
        return len(self.images)


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Zero-pad to a centred square, then resize (anti-aliased) to ``size``."""
    h, w = image.shape
    side = max(h, w)
    padded = np.zeros((side, side), dtype=np.float64)
    top, left = (side - h) // 2, (side - w) // 2
    padded[top : top + h, left : left + w] = image
    return resize(padded, (size, size), order=1, anti_aliasing=True)


def prepare_slice(image: np.ndarray, size: int, level: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The slice squared to ``size`` and min–max normalised to [−1, 1], its foreground mask (pixels above
    ``level``), and the foreground fraction of the original slice."""
    fraction = float((image > level).mean())
    squared = _square(image.astype(np.float64), size)
    mask = _square((image > level).astype(np.float64), size) > 0.5
    span = squared.max() - squared.min()
    normalised = 2 * (squared - squared.min()) / span - 1 if span > 0 else np.full_like(squared, -1.0)
    return normalised.astype(np.float32), mask, fraction


def _foreground_level(values: np.ndarray) -> float:
    return FOREGROUND * float(np.percentile(values, 99))


def volume_slices(volume: np.ndarray, cfg: SliceData, label: str) -> tuple[list[int], Slices]:
    """Every slice of ``volume`` along ``cfg.axis`` with enough foreground, and its index in the volume."""
    volume = np.nan_to_num(np.asarray(volume, dtype=np.float64))
    if volume.ndim == 4 and volume.shape[-1] == 1:
        volume = volume[..., 0]
    if volume.ndim != 3:
        raise DataError(f"{label}: expected a 3-D volume, got shape {volume.shape}")
    level = _foreground_level(volume)
    planes = np.ascontiguousarray(np.moveaxis(volume, cfg.axis, 0))
    indices, images, masks = [], [], []
    for i, plane in enumerate(planes):
        if (plane > level).mean() > cfg.min_brain_fraction:
            image, mask, _ = prepare_slice(plane, cfg.image_size, level)
            indices.append(i)
            images.append(image)
            masks.append(mask)
    if not images:
        raise DataError(f"{label}: no slice along axis {cfg.axis} has over {cfg.min_brain_fraction:.0%} foreground")
    names = [f"{label}[{i}]" for i in indices]
    return indices, Slices(np.stack(images), np.stack(masks), names)


def _read_nifti(path: Path) -> np.ndarray:
    import nibabel as nib

    try:
        return np.asarray(nib.load(str(path)).get_fdata(dtype=np.float32))
    except Exception as exc:  # noqa: BLE001 - nibabel raises many types for a bad file; reported in one line
        raise DataError(f"cannot read NIfTI volume {path}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


def mni152_template() -> np.ndarray:
    """nilearn's bundled MNI152 T1 template at 1 mm (197×233×189), read offline."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nilearn.datasets import load_mni152_template

        return np.asarray(load_mni152_template(resolution=1).get_fdata(dtype=np.float32))


def _take(slices: Slices, keep: list[int] | np.ndarray) -> Slices:
    keep = list(keep)
    return Slices(slices.images[keep], slices.masks[keep], [slices.names[i] for i in keep], slices.skipped)


def evenly_spaced(slices: Slices, count: int) -> Slices:
    """``count`` slices spread evenly over ``slices`` (all of them when there are fewer)."""
    if count >= len(slices):
        return slices
    return _take(slices, np.unique(np.linspace(0, len(slices) - 1, count).round().astype(int)))


def template_split(cfg: SliceData) -> tuple[Slices, Slices, dict[str, str]]:
    """Training slices of MNI152; test slices of ``cfg.test_volume`` (``auto``: ch2bet when installed), else held
    out of MNI152."""
    indices, mni = volume_slices(mni152_template(), cfg, "mni152")
    named = CH2BET if cfg.test_volume == "auto" else cfg.test_volume
    test_volume = None if cfg.test_volume == "none" else Path(named).expanduser()
    if test_volume is not None and test_volume.is_file():
        _, test = volume_slices(_read_nifti(test_volume), cfg, test_volume.name.split(".")[0])
        info = {"train": "MNI152 T1 template (nilearn)", "test": f"{test_volume} (a different head)"}
        return mni, evenly_spaced(test, cfg.test_slices), info
    held = set(range(0, len(indices), cfg.test_every))
    held_z = [indices[i] for i in held]
    train_keep = [i for i, z in enumerate(indices) if all(abs(z - h) > cfg.gap for h in held_z)]
    test = _take(mni, sorted(held))
    info = {
        "train": "MNI152 T1 template (nilearn)",
        "test": f"MNI152 slices held out (every {cfg.test_every}th, ±{cfg.gap} kept from training); "
        + ("data.test_volume=none" if test_volume is None else f"{test_volume} not found"),
    }
    return _take(mni, train_keep), evenly_spaced(test, cfg.test_slices), info


def _read_plane(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        image = np.load(path, allow_pickle=False)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            image = skio.imread(path)
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            image = rgb2gray(image[..., :3])
    image = np.squeeze(np.asarray(image, dtype=np.float64))
    if image.ndim != 2 or min(image.shape) < 2:
        raise ValueError(f"expected a 2-D image, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError("non-finite pixel values")
    return image


def folder_slices(directory: Path, cfg: SliceData) -> Slices:
    """Every NIfTI volume (sliced) and 2-D image under ``directory``; unreadable files are skipped and counted."""
    if not directory.is_dir():
        raise DataError(f"slice folder {directory} does not exist (data.path needs train/ and test/ folders)")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    images, masks, names, skipped = [], [], [], SkippedImages()
    for path in files:
        name = str(path.relative_to(directory))
        lower = path.name.lower()
        try:
            if lower.endswith(VOLUME_SUFFIXES):
                _, part = volume_slices(_read_nifti(path), cfg, name)
                images.extend(part.images)
                masks.extend(part.masks)
                names.extend(part.names)
            elif lower.endswith(IMAGE_SUFFIXES):
                plane = _read_plane(path)
                image, mask, fraction = prepare_slice(plane, cfg.image_size, _foreground_level(plane))
                if fraction > cfg.min_brain_fraction:
                    images.append(image)
                    masks.append(mask)
                    names.append(name)
        except (DataError, ValueError, OSError) as exc:
            skipped.add(name, str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__)
        except Exception as exc:  # noqa: BLE001 - image decoders raise many types for bad bytes; a per-file skip
            skipped.add(name, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:160])
    if not images:
        raise DataError(f"no usable slices under {directory} ({skipped.count} files skipped: {skipped.examples[:2]})")
    return Slices(np.stack(images), np.stack(masks), names, skipped)


def load_slices(cfg: SliceData) -> tuple[Slices, Slices, dict[str, str]]:
    """(train, test, description) as ``cfg.source`` says."""
    if cfg.source == "templates":
        return template_split(cfg)
    root = Path(cfg.path or "")
    train, test = folder_slices(root / "train", cfg), folder_slices(root / "test", cfg)
    return train, evenly_spaced(test, cfg.test_slices), {"train": str(root / "train"), "test": str(root / "test")}
