"""Composition triplets, images in [−1, 1] as ``[N, C, S, S]`` float32.

A triplet is what a composition model is given and what it should produce: a conditioning view of an object with its
soft mask, a background with the region where the object goes, and the ground-truth composite. Built-in triplets are
synthesised from photographs that ship offline (see :class:`~fedray.tasks.compose.config.ComposeData`); a folder in
FC22k's layout replaces them.

Details the config leaves open:

* The conditioning view is premultiplied by its mask in [−1, 1]: ``foreground = mask · colour``, so it is exactly 0
  (mid grey) outside the mask, a neutral value for the token encoder, and alpha compositing is simply
  ``foreground + (1 − mask) · background``.
* The plate is the scene blended toward grey ``PLATE_GREY`` with weight ``PLATE_OPACITY`` under the region's ellipse
  blurred by ``PLATE_SIGMA`` px. The ground truth composites onto this plated background, so the plate's blurred rim
  shows around the object like a dish's edge, and it equals the background exactly where the feathered alpha is 0,
  i.e. more than ``ceil(4 · feather)`` px (chessboard distance) from the region.
* Harmonisation moves the object's per-channel mean/std over the region toward those of the background in a ring
  just beyond the plate's blur (there the background is the bare scene): the lighting the object should match.
* Object photographs are cut by columns: training objects come from the left ``OBJECT_TRAIN_FRACTION`` of each,
  test objects from the rest, so no object pixel is shared. The photographs used as objects are left out of the
  scenes, so test object pixels never appear in a training background either.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from scipy.ndimage import distance_transform_cdt, gaussian_filter
from skimage import io as skio
from skimage.draw import ellipse
from skimage.transform import AffineTransform, rescale, resize, warp

from fedray.platform.data.folder import SkippedImages, as_channels, find_images, read_image
from fedray.platform.data.natural import OPENCV_DATA, Image, builtin_images
from fedray.platform.errors import DataError
from fedray.platform.seeding import numpy_rng
from fedray.tasks.compose.config import ComposeData

OPENCV_OBJECTS = ("apple.jpg", "orange.jpg", "fruits.jpg", "smarties.png")
SKIMAGE_OBJECTS = ("chelsea", "coffee", "astronaut")  # always installed: the objects when OpenCV's are missing
OBJECT_TRAIN_FRACTION = 0.7  # of each object photograph's width, from the left
SCENE_CROP = (0.25, 0.6)  # crop side as a fraction of the scene photograph's shorter side
OBJECT_CROP = (0.3, 0.7)  # crop side as a fraction of the object photograph's height
OBJECT_AXES = (0.34, 0.44)  # semi-axes of the object's cut-out ellipse, as a fraction of the crop side
PLATE_GREY = 0.85
PLATE_OPACITY = 0.8
PLATE_SIGMA = 1.0
MASK_LEVEL = 0.5  # where a soft foreground mask counts as the object, for naive paste's bounding box
FOLDERS = ("background", "foreground", "gt")
OPTIONAL_FOLDERS = ("mask", "fg_mask")


@dataclass
class Triplets:
    """Composition triplets; all float32 ``[N, C, S, S]``.

    ``foreground``: the conditioning view of the object, premultiplied by ``fg_mask`` (0, mid grey, outside it);
    ``fg_mask``: its soft mask in [0, 1]; ``background``: the scene with the plate drawn in; ``gt``: the composite;
    ``region``: where the object goes in the composite, in {0, 1}.
    """

    foreground: np.ndarray
    fg_mask: np.ndarray
    background: np.ndarray
    gt: np.ndarray
    region: np.ndarray

    def __len__(self) -> int:
        return len(self.gt)

    def subset(self, index: np.ndarray) -> Triplets:
        """The triplets at ``index`` (to hand a shard to a task)."""
        return Triplets(*(getattr(self, f.name)[index] for f in fields(self)))


# --- sources -----------------------------------------------------------------------------------------------------


def object_part(pixels: np.ndarray, split: str) -> np.ndarray:
    """The columns of an object photograph that ``split`` may use: the left ``OBJECT_TRAIN_FRACTION`` for training,
    the rest for testing, so train and test objects never share a pixel."""
    cut = round(pixels.shape[1] * OBJECT_TRAIN_FRACTION)
    if split == "train":
        return pixels[:, :cut]
    if split == "test":
        return pixels[:, cut:]
    raise ValueError(f"split must be train or test, got {split!r}")


def _object_photos(opencv_dir: Path) -> list[Image]:
    """OpenCV's fruit and sweets photographs where installed, else scikit-image's cat, coffee and astronaut."""
    found = [n for n in OPENCV_OBJECTS if (opencv_dir / n).is_file()]
    if found:
        return [(f"opencv:{n}", as_channels(skio.imread(opencv_dir / n), 3).astype(np.float32)) for n in found]
    import skimage.data

    return [(f"skimage:{n}", as_channels(getattr(skimage.data, n)(), 3).astype(np.float32)) for n in SKIMAGE_OBJECTS]


def builtin_sources(split: str, opencv_dir: Path = OPENCV_DATA) -> tuple[list[Image], list[Image]]:
    """``(scenes, objects)`` for ``train`` or ``test``: the built-in photographs of the split, less those used as
    objects, and the split's column part of each object photograph (see :func:`object_part`)."""
    photos = _object_photos(opencv_dir)
    used = {name for name, _ in photos}
    scenes = [image for image in builtin_images(split, opencv_dir) if image[0] not in used]
    objects = [(name, np.ascontiguousarray(object_part(pixels, split))) for name, pixels in photos]
    return scenes, objects


# --- synthesis ---------------------------------------------------------------------------------------------------


def _shrunk(images: list[Image], side: int) -> list[np.ndarray]:
    """Each image shrunk (never enlarged) so its shorter side is about ``side``: crops are then resized from a few
    times ``S`` rather than from full resolution, which keeps thousands of triplets fast and loses nothing at ``S``."""
    out = []
    for _, pixels in images:
        factor = side / min(pixels.shape[:2])
        if factor < 1:
            pixels = rescale(pixels, factor, order=1, channel_axis=-1, anti_aliasing=True)
        out.append(np.clip(pixels, 0, 1).astype(np.float32))
    return out


def _crop(pixels: np.ndarray, side: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``side``² crop resized to ``size``², flipped horizontally half the time; ``[S, S, 3]`` in [0, 1]."""
    top = rng.integers(pixels.shape[0] - side + 1)
    left = rng.integers(pixels.shape[1] - side + 1)
    crop = resize(pixels[top : top + side, left : left + side], (size, size), order=1, anti_aliasing=True)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def _scene_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A background: a crop ``SCENE_CROP`` of the photograph's shorter side."""
    short = min(pixels.shape[:2])
    side = max(1, round(rng.uniform(*SCENE_CROP) * short))
    return _crop(pixels, side, size, rng)


def _object_crop(pixels: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """An object: a crop ``OBJECT_CROP`` of the photograph's height (which the column split keeps, so train and test
    parts crop at the same scale), as far as the part's width allows."""
    side = max(1, min(round(rng.uniform(*OBJECT_CROP) * pixels.shape[0]), *pixels.shape[:2]))
    return _crop(pixels, side, size, rng)


def _ellipse_mask(size: int, centre: tuple[float, float], axes: tuple[float, float], angle: float) -> np.ndarray:
    """A binary ``[S, S]`` ellipse: centre (row, col), semi-axes (rows, cols) before the rotation by ``angle``."""
    mask = np.zeros((size, size), dtype=np.float32)
    rows, cols = ellipse(centre[0], centre[1], axes[0], axes[1], shape=(size, size), rotation=angle)
    mask[rows, cols] = 1
    return mask


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    """``mask`` with its edge blurred by a Gaussian of ``sigma`` px (reaching ``ceil(4σ)`` px beyond it)."""
    return np.clip(gaussian_filter(mask, sigma, mode="constant"), 0, 1) if sigma > 0 else mask


@dataclass(frozen=True)
class Plate:
    """Where the object goes: an ellipse with centre (row, col), semi-axes before rotation, angle in radians, and
    the half height and half width of its bounding box."""

    centre: tuple[float, float]
    axes: tuple[float, float]
    angle: float
    half: tuple[float, float]


def _plate(size: int, cfg: ComposeData, rng: np.random.Generator) -> Plate:
    """A random plate ellipse, placed so that it stays inside the image."""
    a, b = rng.uniform(*cfg.region_scale, size=2) * size
    angle = rng.uniform(-math.pi, math.pi)
    half_h = math.sqrt((a * math.cos(angle)) ** 2 + (b * math.sin(angle)) ** 2)
    half_w = math.sqrt((a * math.sin(angle)) ** 2 + (b * math.cos(angle)) ** 2)
    centre = tuple(rng.uniform(h, max(h, size - 1 - h)) for h in (half_h, half_w))
    return Plate(centre, (a, b), angle, (half_h, half_w))


def _draw_plate(scene: np.ndarray, region: np.ndarray) -> np.ndarray:
    """The scene with a light, blurred plate under ``region``."""
    weight = PLATE_OPACITY * _soft(region, PLATE_SIGMA)[..., None]
    return scene + weight * (PLATE_GREY - scene)


def _affine(image: np.ndarray, forward: AffineTransform, mode: str) -> np.ndarray:
    """``image`` [S, S, C] moved by ``forward`` (bilinear), same shape."""
    return warp(image, forward.inverse, order=1, mode=mode, cval=0.0, preserve_range=True)


def _about_centre(size: int, scale: float, degrees: float) -> AffineTransform:
    """Scaling and rotation about the image centre."""
    centre = (size - 1) / 2
    shift = AffineTransform(translation=(-centre, -centre))
    turn = AffineTransform(scale=scale, rotation=math.radians(degrees))
    return AffineTransform(matrix=AffineTransform(translation=(centre, centre)).params @ turn.params @ shift.params)


def _jitter(rgb: np.ndarray, weight: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation each multiplied by 1 + U(±amount); contrast about the object's mean grey."""
    brightness, contrast, saturation = 1 + rng.uniform(-amount, amount, size=3)
    rgb = rgb * brightness
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=rgb.dtype)
    mean = float((grey * weight).sum() / max(weight.sum(), 1e-6))
    rgb = (rgb - mean) * contrast + mean
    grey = (grey - mean) * contrast + mean
    rgb = grey[..., None] + (rgb - grey[..., None]) * saturation
    return np.clip(rgb, 0, 1)


def _condition_view(
    crop: np.ndarray, mask: np.ndarray, cfg: ComposeData, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The object and its mask scaled and rotated together about the centre, then colour-jittered: ``(rgb, mask)``,
    both in [0, 1]."""
    size = crop.shape[0]
    scale = rng.uniform(*cfg.fg_scale)
    degrees = rng.uniform(-cfg.fg_rotation, cfg.fg_rotation)
    moved = _affine(np.concatenate([crop, mask[..., None]], axis=-1), _about_centre(size, scale, degrees), "constant")
    view_mask = np.clip(moved[..., 3], 0, 1)
    return _jitter(moved[..., :3], view_mask, cfg.colour_jitter, rng), view_mask


def _fit_to_plate(crop: np.ndarray, axes: tuple[float, float], plate: Plate) -> np.ndarray:
    """The un-augmented object scaled (per axis, no rotation) so that its ellipse's bounding box fills the plate's."""
    centre = (crop.shape[0] - 1) / 2
    factor = (plate.half[0] / axes[0], plate.half[1] / axes[1])  # rows, cols
    blur = [max(0.0, (1 / f - 1) / 2) for f in factor]  # anti-aliasing where the object shrinks
    if max(blur) > 0:
        crop = gaussian_filter(crop, (*blur, 0), mode="nearest")
    forward = AffineTransform(
        matrix=np.array(
            [
                [factor[1], 0, plate.centre[1] - factor[1] * centre],
                [0, factor[0], plate.centre[0] - factor[0] * centre],
                [0, 0, 1],
            ]
        )
    )
    return _affine(crop, forward, "edge")


def _surround(region: np.ndarray) -> np.ndarray:
    """Background pixels the object should match: a ring just beyond the plate's blur (bare scene there), of width
    ``max(2, S // 8)``; failing that anything beyond the blur, failing that everything."""
    reach = math.ceil(4 * PLATE_SIGMA)
    distance = distance_transform_cdt(region < 0.5, metric="chessboard")
    for candidate in (
        (distance > reach) & (distance <= reach + max(2, region.shape[0] // 8)),
        distance > reach,
    ):
        if candidate.any():
            return candidate
    return np.ones_like(region, dtype=bool)


def _harmonised(obj: np.ndarray, background: np.ndarray, region: np.ndarray, amount: float) -> np.ndarray:
    """``obj`` with its per-channel mean/std over ``region`` moved ``amount`` of the way to the surrounding
    background's."""
    inside = obj[region > 0.5]
    if amount == 0 or len(inside) == 0:
        return obj
    around = background[_surround(region)]
    mean, std = inside.mean(axis=0), inside.std(axis=0)
    target_mean = mean + amount * (around.mean(axis=0) - mean)
    target_std = std + amount * (around.std(axis=0) - std)
    return np.clip((obj - mean) / np.maximum(std, 1e-3) * target_std + target_mean, 0, 1)


def _triplet(
    scene: np.ndarray, photo: np.ndarray, size: int, cfg: ComposeData, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    """One triplet in [0, 1], channels last: ``(view, view_mask, background, gt, region)``."""
    bare = _scene_crop(scene, size, rng)
    plate = _plate(size, cfg, rng)
    region = _ellipse_mask(size, plate.centre, plate.axes, plate.angle)
    background = _draw_plate(bare, region)
    crop = _object_crop(photo, size, rng)
    axes = tuple(rng.uniform(*OBJECT_AXES, size=2) * size)
    centre = ((size - 1) / 2, (size - 1) / 2)
    cut_out = _soft(_ellipse_mask(size, centre, axes, 0.0), cfg.feather)
    view, view_mask = _condition_view(crop, cut_out, cfg, rng)
    obj = _harmonised(_fit_to_plate(crop, axes, plate), background, region, cfg.harmonise)
    alpha = _soft(region, cfg.feather)[..., None]
    gt = background + alpha * (obj - background)
    return view, view_mask, background, gt, region


def synthesize(
    scenes: list[Image], objects: list[Image], count: int, cfg: ComposeData, rng: np.random.Generator
) -> Triplets:
    """``count`` triplets at ``cfg.image_size`` from random scene and object photographs (see the module docstring
    and :class:`ComposeData`); deterministic given ``rng``."""
    size = cfg.image_size
    scene_pixels = _shrunk(scenes, math.ceil(size / SCENE_CROP[0]))
    object_pixels = _shrunk(objects, math.ceil(size / OBJECT_CROP[0]))
    rgb = np.empty((3, count, 3, size, size), dtype=np.float32)  # view, background, gt
    masks = np.empty((2, count, 1, size, size), dtype=np.float32)  # view mask, region
    for i in range(count):
        scene = scene_pixels[rng.integers(len(scene_pixels))]
        photo = object_pixels[rng.integers(len(object_pixels))]
        view, view_mask, background, gt, region = _triplet(scene, photo, size, cfg, rng)
        rgb[0, i] = (view * 2 - 1).transpose(2, 0, 1) * view_mask
        rgb[1, i] = (background * 2 - 1).transpose(2, 0, 1)
        rgb[2, i] = (gt * 2 - 1).transpose(2, 0, 1)
        masks[0, i, 0], masks[1, i, 0] = view_mask, region
    return Triplets(rgb[0], masks[0], rgb[1], rgb[2], masks[1])


# --- folders -----------------------------------------------------------------------------------------------------


def _listing(directory: Path) -> dict[str, Path]:
    """Images under ``directory`` by relative path without extension, so ``a.jpg`` in gt/ matches ``a.png`` in
    mask/."""
    listing: dict[str, Path] = {}
    for path in find_images(directory):
        listing.setdefault(str(path.relative_to(directory).with_suffix("")), path)
    return listing


def _read(path: Path, channels: int, size: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return read_image(path, channels, size)


def _folder_triplet(paths: dict[str, Path], size: int, threshold: float) -> tuple[np.ndarray, ...]:
    """One triplet from its files (``[C, S, S]``, [−1, 1] for pictures), as :class:`Triplets` orders them; raises
    ``ValueError`` naming the folder of a file that cannot be used."""
    pixels = {}
    for folder, path in paths.items():
        try:
            pixels[folder] = _read(path, 1 if folder in OPTIONAL_FOLDERS else 3, size)
        except Exception as exc:  # decoders raise many types for bad bytes; re-raised as a per-triplet skip
            detail = (str(exc).splitlines() or ["unreadable"])[0].replace(str(path), path.name)
            raise ValueError(f"{folder}/{path.name}: {type(exc).__name__}: {detail}"[:160]) from exc
    fg_mask = pixels.get("fg_mask", np.ones((1, size, size), dtype=np.float32))
    if "mask" in pixels:
        region = (pixels["mask"] > 0.5).astype(np.float32)
    else:
        region = np.abs(pixels["gt"] - pixels["background"]).mean(axis=0, keepdims=True) > threshold
        region = region.astype(np.float32)
    if not region.any():
        raise ValueError("empty region: gt and background agree everywhere and no mask/ marks one")
    foreground = (pixels["foreground"] * 2 - 1) * fg_mask
    return foreground, fg_mask, pixels["background"] * 2 - 1, pixels["gt"] * 2 - 1, region


def folder_triplets(directory: Path, size: int, threshold: float) -> tuple[Triplets, SkippedImages]:
    """The triplets under ``directory`` (``background/``, ``foreground/``, ``gt/``, optionally ``mask/`` and
    ``fg_mask/``, matched by name) in sorted name order; names missing from a folder or with an unreadable file are
    skipped and counted."""
    if not directory.is_dir():
        raise DataError(f"composition folder {directory} does not exist; it needs {', '.join(FOLDERS)} subfolders")
    absent = [name for name in FOLDERS if not (directory / name).is_dir()]
    if absent:
        raise DataError(f"{directory} has no {', '.join(f'{n}/' for n in absent)} subfolder (FC22k's layout)")
    folders = [name for name in (*FOLDERS, *OPTIONAL_FOLDERS) if (directory / name).is_dir()]
    listings = {folder: _listing(directory / folder) for folder in folders}
    rows, skipped = [], SkippedImages()
    for name in sorted(set().union(*listings.values())):
        missing = [folder for folder in folders if name not in listings[folder]]
        if missing:
            skipped.add(f"{directory.name}/{name}", f"missing in {', '.join(f'{m}/' for m in missing)}")
            continue
        try:
            rows.append(_folder_triplet({f: listings[f][name] for f in folders}, size, threshold))
        except ValueError as exc:
            skipped.add(f"{directory.name}/{name}", str(exc))
    if not rows:
        example = f", e.g. {skipped.examples[0]}" if skipped.examples else ""
        raise DataError(f"no usable triplets in {directory} ({skipped.count} skipped{example})")
    return Triplets(*(np.stack(column).astype(np.float32) for column in zip(*rows, strict=True))), skipped


# --- entry points ------------------------------------------------------------------------------------------------


def load_triplets(cfg: ComposeData, seed: int) -> tuple[Triplets, Triplets, dict]:
    """``(train, test, description)`` per ``cfg.source``; built-in triplets are drawn from streams of ``seed``."""
    description: dict = {"source": cfg.source, "image_size": cfg.image_size}
    if cfg.source == "builtin":
        sources = {split: builtin_sources(split) for split in ("train", "test")}
        counts = {"train": cfg.train_triplets, "test": cfg.test_triplets}
        train, test = (
            synthesize(*sources[split], counts[split], cfg, numpy_rng(seed, "compose", split))
            for split in ("train", "test")
        )
        description |= {
            "scenes": {split: [n for n, _ in sources[split][0]] for split in sources},
            "objects": {split: [n for n, _ in sources[split][1]] for split in sources},
            "object_split": f"train objects from the left {OBJECT_TRAIN_FRACTION:.0%} of each photograph, "
            "test objects from the rest",
            "skipped": 0,
            "skipped_examples": [],
        }
    else:
        root = Path(cfg.path or "").expanduser()
        train, skipped = folder_triplets(root / "train", cfg.image_size, cfg.region_threshold)
        test, skipped_test = folder_triplets(root / "test", cfg.image_size, cfg.region_threshold)
        description |= {
            "path": str(root),
            "skipped": skipped.count + skipped_test.count,
            "skipped_examples": (skipped.examples + skipped_test.examples)[:5],
        }
    description["counts"] = {"train": len(train), "test": len(test)}
    return train, test, description


def _box(mask: np.ndarray) -> tuple[slice, slice] | None:
    """The bounding box of a ``[S, S]`` boolean mask, None when it is empty."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return None
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def naive_paste(t: Triplets) -> np.ndarray:
    """Cut-and-paste: the conditioning view's object (its mask's bounding box) resized into the region's bounding box
    and alpha-composited there with its own mask, nothing harmonised; the background elsewhere. ``[N, 3, S, S]``."""
    out = t.background.copy()
    for i in range(len(t)):
        target = _box(t.region[i, 0] > 0.5)
        if target is None:
            continue
        source = _box(t.fg_mask[i, 0] > MASK_LEVEL) or (slice(None), slice(None))
        shape = (target[0].stop - target[0].start, target[1].stop - target[1].start)
        view = np.concatenate([t.foreground[i], t.fg_mask[i]])[:, source[0], source[1]].transpose(1, 2, 0)
        view = resize(view, shape, order=1, anti_aliasing=True).transpose(2, 0, 1)
        colour, alpha = view[:3], np.clip(view[3:], 0, 1)
        out[i][:, target[0], target[1]] = np.clip(colour + (1 - alpha) * out[i][:, target[0], target[1]], -1, 1)
    return out
