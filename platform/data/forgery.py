"""Self-blended forgeries made from real faces (the SBI idea), with one artifact family per forgery source.

A fake blends a face with an artifact-bearing, slightly misaligned copy of itself inside a soft elliptical face mask:
blending boundaries and statistics mismatches without any second identity. Each artifact family is a natural forgery
source, so giving each federated client one family reproduces the "one forgery source per client" non-IID setting;
``data.forgery.split`` can instead skew each client's real/fake proportion (a Dirichlet draw), or do both.

Families: ``colour`` (gamma/contrast/brightness), ``blur`` (Gaussian), ``resample`` (bilinear down-up), ``sharpen``
(unsharp mask), ``jpeg`` (8×8 block-DCT quantisation). Default strengths are the ones measured to be learnable on
upscaled LFW faces (weaker settings stayed near chance). Every draw is deterministic in its seed labels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.fft import dctn, idctn
from scipy.ndimage import gaussian_filter
from skimage.filters import unsharp_mask
from skimage.transform import AffineTransform, resize, warp

from fedray.platform.data.config import FAMILIES, ForgeryConfig
from fedray.platform.data.folder import IMAGE_EXTENSIONS, SkippedImages, find_images, read_images
from fedray.platform.errors import ConfigError, DataError
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
MIN_CLASS_SHARE = 0.1  # under label skew each class keeps this share of a draw, so every client's AUC is defined


def load_lfw_faces(size: int) -> np.ndarray:
    """The 100 real LFW faces bundled with scikit-image (the other 100 images there are non-faces), ``[100, s, s]``."""
    from skimage.data import lfw_subset

    faces = lfw_subset()[:100]
    return resize(faces, (len(faces), size, size), order=1, anti_aliasing=True).astype(np.float32)


def forgery_faces(cfg: ForgeryConfig, size: int) -> tuple[np.ndarray, SkippedImages]:
    """The real faces to forge from, ``[N, size, size]``: every readable image under ``cfg.faces_dir`` (grayscale,
    in sorted path order), else LFW's 100; and the files of ``faces_dir`` that could not be read."""
    if cfg.faces_dir is None:
        return load_lfw_faces(size), SkippedImages()
    root = Path(cfg.faces_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data.forgery.faces_dir={root} is not a directory")
    paths = find_images(root)
    if not paths:
        raise DataError(f"data.forgery.faces_dir={root} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    images, _, skipped = read_images(paths, 1, size, root)
    return images[:, 0], skipped


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


def real_count(share: float, size: int) -> int:
    """Real samples in a draw of ``size`` at ``share`` real, each class keeping ``MIN_CLASS_SHARE`` of it (≥ 1)."""
    floor = max(1, math.ceil(MIN_CLASS_SHARE * size))
    return int(np.clip(round(share * size), floor, size - floor))


def draw_samples(
    faces: np.ndarray,
    family: str | list[str] | tuple[str, ...],
    per_class: int,
    cfg: ForgeryConfig,
    seed: int,
    *labels: object,
    num_real: int | None = None,
    random_family: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``2·per_class`` samples from ``faces``, the first ``num_real`` (default ``per_class``) real and the rest fake:
    images ``[2n, 1, H, W]`` float32, labels (1 = fake) and, per sample, the family index (-1 for real).
    ``family`` may list several families, drawn in turn, or uniformly per fake with ``random_family``."""
    rng = numpy_rng(seed, "forgery", *labels)
    families = [family] if isinstance(family, str) else list(family)
    reals = per_class if num_real is None else num_real
    images, fam = [], []
    for i in range(2 * per_class):
        face = faces[rng.integers(len(faces))].astype(np.float64)
        if i < reals:
            img, f = face, -1
        else:
            name = families[rng.integers(len(families)) if random_family else i % len(families)]
            img, f = self_blend(face, name, rng, cfg), FAMILIES.index(name)
        img = augment(img, rng) + rng.normal(0, cfg.noise_sigma, size=img.shape)
        images.append(np.clip(img, 0, 1))
        fam.append(f)
    labels_out = (np.arange(2 * per_class) >= reals).astype(np.int64)
    return np.stack(images)[:, None].astype(np.float32), labels_out, np.asarray(fam, dtype=np.int64)


@dataclass(frozen=True)
class ForgerySampler:
    """A client's training draw: fresh real and self-blended samples of its own faces for each (round, epoch).

    ``real_share`` of each draw is real; ``family`` is one family, or with ``random_family`` the families each fake
    is drawn from uniformly.
    """

    faces: np.ndarray
    family: str | tuple[str, ...]
    cfg: ForgeryConfig
    seed: int
    client_id: int
    real_share: float = 0.5
    random_family: bool = False

    def __call__(self, round_idx: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        per_class = self.cfg.train_per_class
        images, labels, _ = draw_samples(
            self.faces, self.family, per_class, self.cfg, self.seed,
            "client", self.client_id, "round", round_idx, "epoch", epoch,
            num_real=real_count(self.real_share, 2 * per_class), random_family=self.random_family,
        )  # fmt: skip
        return images, labels


def real_shares(cfg: ForgeryConfig, num_clients: int, seed: int) -> np.ndarray:
    """Each client's real share: one half under the ``family`` split, else the real component of a per-client
    Dirichlet(``label_alpha``) draw over the two classes (clipped later by :func:`real_count`)."""
    if cfg.split == "family":
        return np.full(num_clients, 0.5)
    alpha = [cfg.label_alpha, cfg.label_alpha]
    return np.array([numpy_rng(seed, "forgery-labels", k).dirichlet(alpha)[0] for k in range(num_clients)])


def _check_counts(cfg: ForgeryConfig, num_clients: int, num_faces: int) -> None:
    if not 0 < cfg.test_faces < cfg.faces_per_client:
        raise ConfigError(
            f"data.forgery.test_faces={cfg.test_faces} must lie between 0 and "
            f"data.forgery.faces_per_client={cfg.faces_per_client} (both excluded), leaving faces to train on"
        )
    need = num_clients * cfg.faces_per_client
    if need <= num_faces:
        return
    if cfg.faces_dir is not None:
        raise DataError(
            f"data.forgery.faces_dir={cfg.faces_dir} holds {num_faces} readable faces; {num_clients} clients × "
            f"data.forgery.faces_per_client={cfg.faces_per_client} need {need}"
        )
    raise ConfigError(
        f"{num_clients} clients × data.forgery.faces_per_client={cfg.faces_per_client} needs more than the "
        f"{num_faces} LFW faces; lower one of them or set data.forgery.faces_dir"
    )


def client_face_indices(cfg: ForgeryConfig, num_clients: int, num_faces: int, seed: int) -> list[np.ndarray]:
    """The face indices each client owns (``faces_per_client`` of a seeded permutation, in order); its first
    ``test_faces`` are held out for its test set. Other workloads re-derive a run's split from this."""
    order = numpy_rng(seed, "forgery-faces").permutation(num_faces)
    per = cfg.faces_per_client
    return [order[k * per : (k + 1) * per] for k in range(num_clients)]


def forgery_clients(
    cfg: ForgeryConfig, num_clients: int, image_size: int, seed: int, faces: np.ndarray | None = None
) -> list[ClientData]:
    """One :class:`ClientData` per client: disjoint faces, its families and real share by ``cfg.split``, a fixed
    test set by seed. ``faces`` are the ones :func:`forgery_faces` gave (read here when omitted)."""
    cfg.check("data.forgery")
    if cfg.split not in ("family", "dirichlet", "mixed"):
        raise ConfigError(f"data.forgery.split must be family, dirichlet or mixed, got {cfg.split!r}")
    if faces is None:
        faces, _ = forgery_faces(cfg, image_size)
    _check_counts(cfg, num_clients, len(faces))
    shares = real_shares(cfg, num_clients, seed)
    random_family = cfg.split == "dirichlet"
    clients = []
    for k, owned in enumerate(client_face_indices(cfg, num_clients, len(faces), seed)):
        own = faces[owned]
        test_faces, train_faces = own[: cfg.test_faces], own[cfg.test_faces :]
        family = tuple(cfg.families) if random_family else cfg.families[k % len(cfg.families)]
        test_x, test_y, _ = draw_samples(
            test_faces, family, cfg.test_per_class, cfg, seed, "client", k, "test",
            num_real=real_count(shares[k], 2 * cfg.test_per_class), random_family=random_family,
        )  # fmt: skip
        clients.append(
            ClientData(
                None,
                None,
                test_x,
                test_y,
                num_classes=2,
                sampler=ForgerySampler(train_faces, family, cfg, seed, k, float(shares[k]), random_family),
                draw_size=2 * cfg.train_per_class,
            )
        )
    return clients
