"""Self-blended forgeries made from real faces (the SBI idea), with one artifact family per forgery source.

A fake blends a face with an artifact-bearing, slightly misaligned copy of itself inside a soft elliptical face mask:
blending boundaries and statistics mismatches without any second identity. Each artifact family is a natural forgery
source, so giving each federated client one family reproduces the "one forgery source per client" non-IID setting.

Families: ``colour`` (gamma/contrast/brightness), ``blur`` (Gaussian), ``resample`` (bilinear down-up), ``sharpen``
(unsharp mask), ``jpeg`` (8×8 block-DCT quantisation). Default strengths are the ones measured to be learnable on
upscaled LFW faces (weaker settings stayed near chance). Every draw is deterministic in its seed labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.fft import dctn, idctn
from scipy.ndimage import gaussian_filter
from skimage.filters import unsharp_mask
from skimage.transform import AffineTransform, resize, warp

from fedray.platform.data.config import FAMILIES, ForgeryConfig
from fedray.platform.errors import ConfigError
from fedray.platform.messages import ClientData
from fedray.platform.seeding import numpy_rng

# The IJG (libjpeg) luminance quantisation table at quality 50.
JPEG_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)


def load_lfw_faces(size: int) -> np.ndarray:
    """The 100 real LFW faces bundled with scikit-image (the other 100 images there are non-faces), ``[100, s, s]``."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    return resize(faces, (len(faces), size, size), order=1, anti_aliasing=True).astype(np.float32)


def _jpeg_quantise(img: np.ndarray, quality: float) -> np.ndarray:
    """8×8 block DCT, quantise with the IJG table scaled to ``quality``, inverse DCT (edge-padded to 8·k)."""
    scale = 5000.0 / quality if quality < 50 else 200.0 - 2 * quality
    table = np.clip(np.floor((JPEG_LUMA * scale + 50) / 100), 1, 255)
    h, w = img.shape
    ph, pw = -h % 8, -w % 8
    x = np.pad(img * 255.0 - 128.0, ((0, ph), (0, pw)), mode="edge")
    blocks = x.reshape(x.shape[0] // 8, 8, x.shape[1] // 8, 8).transpose(0, 2, 1, 3)
    coeffs = dctn(blocks, axes=(2, 3), norm="ortho")
    restored = idctn(np.round(coeffs / table) * table, axes=(2, 3), norm="ortho")
    out = restored.transpose(0, 2, 1, 3).reshape(x.shape)[:h, :w]
    return np.clip((out + 128.0) / 255.0, 0, 1)


def artifact(face: np.ndarray, family: str, rng: np.random.Generator, cfg: ForgeryConfig) -> np.ndarray:
    """The face with one family's artifact applied (``face`` in [0, 1], ``[H, W]``)."""
    if family == "colour":
        gamma = np.exp(rng.uniform(-cfg.gamma_log, cfg.gamma_log))
        contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
        out = (np.power(face, gamma) - 0.5) * contrast + 0.5 + rng.uniform(-cfg.brightness, cfg.brightness)
    elif family == "blur":
        out = gaussian_filter(face, sigma=rng.uniform(*cfg.blur_sigma))
    elif family == "resample":
        h, w = face.shape
        f = rng.uniform(*cfg.resample_factor)
        small = resize(face, (max(2, round(h * f)), max(2, round(w * f))), order=1, anti_aliasing=False)
        out = resize(small, (h, w), order=1, anti_aliasing=False)
    elif family == "sharpen":
        out = unsharp_mask(face, radius=1.0, amount=rng.uniform(*cfg.sharpen_amount))
    elif family == "jpeg":
        out = _jpeg_quantise(face, rng.uniform(*cfg.jpeg_quality))
    else:
        raise ValueError(f"unknown artifact family {family!r}; known: {', '.join(FAMILIES)}")
    return np.clip(out, 0, 1)


def _affine(
    img: np.ndarray, rng: np.random.Generator, max_px: float, scale: tuple[float, float], rot: float
) -> np.ndarray:
    h, w = img.shape
    centre = np.array([w / 2, h / 2])
    s = rng.uniform(*scale)
    tf = (
        AffineTransform(translation=-centre)
        + AffineTransform(scale=s, rotation=np.deg2rad(rng.uniform(-rot, rot)))
        + AffineTransform(translation=centre + rng.uniform(-max_px, max_px, size=2))
    )
    return warp(img, tf.inverse, mode="edge", order=1)


def ellipse_mask(shape: tuple[int, int], rng: np.random.Generator, jitter: float = 0.05) -> np.ndarray:
    """A soft elliptical face region: semi-axes 0.30·W and 0.45·H, centre jittered, blurred with σ ~ U(1, 3)."""
    h, w = shape
    cy, cx = h / 2 * (1 + rng.uniform(-jitter, jitter)), w / 2 * (1 + rng.uniform(-jitter, jitter))
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx + 0.5 - cx) / (0.30 * w)) ** 2 + ((yy + 0.5 - cy) / (0.45 * h)) ** 2 <= 1.0
    return gaussian_filter(inside.astype(np.float64), sigma=rng.uniform(1, 3))


def self_blend(face: np.ndarray, family: str, rng: np.random.Generator, cfg: ForgeryConfig) -> np.ndarray:
    """A fake: the face blended with its own artifact-bearing, misaligned copy inside a soft face mask."""
    source = _affine(artifact(face, family, rng, cfg), rng, cfg.max_shift_px, cfg.scale, rot=0.0)
    mask = ellipse_mask(face.shape, rng) * rng.uniform(*cfg.blend)
    return mask * source + (1 - mask) * face


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The geometric augmentation real and fake samples share: shift/crop, horizontal flip, small rotation."""
    out = _affine(img, rng, max_px=2.0, scale=(1.0, 1.0), rot=5.0)
    return out[:, ::-1] if rng.random() < 0.5 else out


def draw_samples(
    faces: np.ndarray, family: str | list[str], per_class: int, cfg: ForgeryConfig, seed: int, *labels: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``per_class`` real and ``per_class`` fake samples from ``faces``: images ``[2n, 1, H, W]`` float32, labels
    (1 = fake) and, per sample, the family index (-1 for real). ``family`` may list several families, drawn in turn."""
    rng = numpy_rng(seed, "forgery", *labels)
    families = [family] if isinstance(family, str) else list(family)
    images, fam = [], []
    for i in range(2 * per_class):
        face = faces[rng.integers(len(faces))].astype(np.float64)
        if i < per_class:
            img, f = face, -1
        else:
            name = families[i % len(families)]
            img, f = self_blend(face, name, rng, cfg), FAMILIES.index(name)
        img = augment(img, rng) + rng.normal(0, cfg.noise_sigma, size=img.shape)
        images.append(np.clip(img, 0, 1))
        fam.append(f)
    labels_out = np.repeat(np.array([0, 1], dtype=np.int64), per_class)
    return np.stack(images)[:, None].astype(np.float32), labels_out, np.asarray(fam, dtype=np.int64)


@dataclass(frozen=True)
class ForgerySampler:
    """A client's training draw: fresh real and self-blended samples of its own faces for each (round, epoch)."""

    faces: np.ndarray
    family: str
    cfg: ForgeryConfig
    seed: int
    client_id: int

    def __call__(self, round_idx: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        images, labels, _ = draw_samples(
            self.faces, self.family, self.cfg.train_per_class, self.cfg, self.seed,
            "client", self.client_id, "round", round_idx, "epoch", epoch,
        )  # fmt: skip
        return images, labels


def forgery_clients(cfg: ForgeryConfig, num_clients: int, image_size: int, seed: int) -> list[ClientData]:
    """One :class:`ClientData` per client: disjoint faces, one artifact family each, a fixed test set by seed."""
    unknown = set(cfg.families) - set(FAMILIES)
    if unknown or not cfg.families:
        raise ConfigError(f"data.forgery.families: unknown {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    faces = load_lfw_faces(image_size)
    if num_clients * cfg.faces_per_client > len(faces) or not 0 < cfg.test_faces < cfg.faces_per_client:
        raise ConfigError(
            f"{num_clients} clients × data.forgery.faces_per_client={cfg.faces_per_client} needs more than the "
            f"{len(faces)} LFW faces, or data.forgery.test_faces={cfg.test_faces} leaves no training faces"
        )
    order = numpy_rng(seed, "forgery-faces").permutation(len(faces))
    clients = []
    for k in range(num_clients):
        own = faces[order[k * cfg.faces_per_client : (k + 1) * cfg.faces_per_client]]
        test_faces, train_faces = own[: cfg.test_faces], own[cfg.test_faces :]
        family = cfg.families[k % len(cfg.families)]
        test_x, test_y, _ = draw_samples(test_faces, family, cfg.test_per_class, cfg, seed, "client", k, "test")
        clients.append(
            ClientData(
                None,
                None,
                test_x,
                test_y,
                num_classes=2,
                sampler=ForgerySampler(train_faces, family, cfg, seed, k),
                draw_size=2 * cfg.train_per_class,
            )
        )
    return clients
