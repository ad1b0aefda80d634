"""Semantic face regions as pixel masks: fixed boxes for aligned crops, user mask files, and the adaptive choice.

The released attack parses every face into 19 classes (FaceParseNet50 at 512×512) and keeps adversarial pixels in
{nose, eyes, brows}. No face parser ships offline, so here a region is a box in fractions of the image side, placed
once on the mean of the aligned LFW faces (:func:`overlay_plot` draws them there). A user who has parser output can
pass it as ``regions.mask_file`` instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedray.platform.errors import DataError
from fedray.platform.io import load_npy

Box = list[float]  # [y0, x0, y1, x1], fractions of the side


def box_mask(box: Box, size: int) -> np.ndarray:
    """``[size, size]`` float mask, 1 on the pixels the box covers (at least one pixel each way)."""
    y0, x0, y1, x1 = box
    r0, c0 = int(np.floor(y0 * size)), int(np.floor(x0 * size))
    r1, c1 = max(r0 + 1, int(np.ceil(y1 * size))), max(c0 + 1, int(np.ceil(x1 * size)))
    mask = np.zeros((size, size), dtype=np.float32)
    mask[r0:r1, c0:c1] = 1.0
    return mask


def union_mask(boxes: dict[str, Box], names: list[str], size: int) -> np.ndarray:
    """The union of the named boxes, ``[size, size]``."""
    return np.clip(sum(box_mask(boxes[n], size) for n in names), 0, 1).astype(np.float32)


def group_masks(boxes: dict[str, Box], candidates: dict[str, list[str]], size: int) -> np.ndarray:
    """One mask per candidate group ``[G, size, size]``, in the order of ``candidates``."""
    return np.stack([union_mask(boxes, members, size) for members in candidates.values()])


def select_groups(saliency: np.ndarray, groups: np.ndarray, rule: str, k: int) -> np.ndarray:
    """Which candidate groups each image keeps ``[N, G]`` (bool), from its channel-summed CAM ``[N, H, W]``: the
    ``k`` groups of highest mean CAM inside them (``topk``; ties go to the earlier group), or every group whose mean
    exceeds the image's mean CAM (``above_mean``; the best group when none does, so no image goes unattacked)."""
    area = groups.reshape(len(groups), -1).sum(axis=1)  # [G]
    means = np.einsum("nhw,ghw->ng", saliency, groups) / area  # [N, G]
    if rule == "topk":
        order = np.argsort(-means, axis=1, kind="stable")[:, :k]
        chosen = np.zeros(means.shape, dtype=bool)
        np.put_along_axis(chosen, order, True, axis=1)
        return chosen
    if rule == "above_mean":
        chosen = means > saliency.reshape(len(saliency), -1).mean(axis=1, keepdims=True)
        chosen[np.arange(len(means)), means.argmax(axis=1)] = True
        return chosen
    raise ValueError(f"unknown selection rule {rule!r}")


def chosen_masks(chosen: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per image the union of its chosen groups ``[N, H, W]``."""
    return np.clip(np.einsum("ng,ghw->nhw", chosen.astype(np.float32), groups), 0, 1).astype(np.float32)


def _read_folder(root: Path) -> np.ndarray:
    from fedray.platform.data.folder import as_channels, decode_image, find_images

    paths = find_images(root)
    if not paths:
        raise DataError(f"regions.mask_file={root} holds no mask images")
    masks = []
    for path in paths:
        try:
            masks.append(as_channels(decode_image(path), 1)[..., 0])
        except Exception as exc:  # noqa: BLE001 - decoders raise many types for bad bytes; each means this file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DataError(f"regions.mask_file: cannot read {path} ({reason})") from None
    shapes = {m.shape for m in masks}
    if len(shapes) != 1:
        raise DataError(f"regions.mask_file={root}: masks differ in size ({sorted(shapes)})")
    return np.stack(masks)


def load_mask_file(path: str | Path, num_images: int, size: int) -> np.ndarray:
    """User masks for ``num_images`` images of ``size``×``size`` ``[num_images, size, size]`` (float 0/1) from a
    ``.npy`` (``[H, W]`` or ``[N, H, W]``) or a folder of 1 or N grey images; anything else is a one-line error."""
    path = Path(path).expanduser()
    if path.is_dir():
        masks = _read_folder(path)
    elif path.is_file() and path.suffix == ".npy":
        masks = load_npy(path, "regions.mask_file")
    elif path.exists():
        raise DataError(f"regions.mask_file={path} must be a .npy file or a folder of mask images")
    else:
        raise DataError(f"regions.mask_file={path} does not exist")
    if not np.issubdtype(masks.dtype, np.number):
        raise DataError(f"regions.mask_file={path} holds {masks.dtype} values, not numbers")
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != (size, size) or len(masks) not in (1, num_images):
        raise DataError(
            f"regions.mask_file={path} has shape {tuple(masks.shape)}; expected [{size}, {size}] or "
            f"[{num_images}, {size}, {size}] (one mask, or one per test image, at data.image_size)"
        )
    binary = (np.asarray(masks, dtype=np.float64) > 0.5).astype(np.float32)
    if not binary.reshape(len(binary), -1).any(axis=1).all():
        raise DataError(f"regions.mask_file={path} has an empty mask (no value above 0.5)")
    return np.broadcast_to(binary, (num_images, size, size)).copy()


def overlay_plot(path: str | Path, mean_face: np.ndarray, boxes: dict[str, Box], fixed: list[str]) -> Path:
    """The boxes drawn on the mean face (fixed mask solid, the others dashed), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    size = mean_face.shape[0]
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(mean_face, cmap="gray", vmin=0, vmax=1)
    for name, (y0, x0, y1, x1) in boxes.items():
        colour = "tab:red" if name in fixed else "tab:cyan"
        ax.add_patch(
            Rectangle(
                (x0 * size - 0.5, y0 * size - 0.5), (x1 - x0) * size, (y1 - y0) * size, fill=False,
                edgecolor=colour, linestyle="-" if name in fixed else "--", linewidth=1.2,
            )
        )  # fmt: skip
        ax.text(x0 * size, y0 * size - 0.8, name, color=colour, fontsize=6)
    ax.set_title("regions on the mean face (red: fixed mask M)", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
