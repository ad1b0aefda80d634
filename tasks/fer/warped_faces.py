"""Seven expressions rendered on real faces by action-unit warps: a labelled expression dataset that can be built
offline.

No facial-expression dataset ships offline. The 100 real, roughly aligned LFW faces of scikit-image do, so every
face here is warped into each of the seven RAF-DB expressions by moving the landmarks of the Facial Action Coding
System's prototype action units (AUs) — mouth corners, lips, brows, eyelids, nose wings — with a smooth displacement
field, and an open mouth is darkened where the lips part. Unlike a relabelled object dataset, the classes are then
what expressions are: a displacement of one person's neutral face, with identity as the nuisance. That is the
premise of KE2NT's emotional-to-neutral transformation. It is still a synthetic rendering (one exaggerated prototype
per class, no real muscle texture), and "neutral" is the unwarped photograph with whatever expression it already shows
(many LFW faces smile or talk), so results on it are not FER results and :data:`DATA_NOTE` says so.

Every image draws its own AU intensity, landmark jitter and a small global similarity transform (so a class cannot
be read off fixed pixels); identities are split so that no test face is a training face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.transform import SimilarityTransform, warp

from fedray.platform.data.forgery import load_lfw_faces
from fedray.platform.seeding import derive_seed
from fedray.tasks.fer.classes import NUM_CLASSES

RENDER_SIZE = 64  # the faces are 25×25 in scikit-image; warps are drawn at this size, then resized to the config's
TEST_IDENTITIES = 30  # of the 100: faces 70–99 are only ever test faces
DATA_NOTE = (
    "[fedray] SYNTHETIC EXPRESSIONS ON REAL FACES, NOT FER DATA: each of scikit-image's 100 LFW faces warped into the "
    "seven RAF-DB expressions by prototype action-unit displacements (mouth corners, lips, brows, eyelids, nose wings; "
    "open mouths darkened), random intensity 0.5–1, landmark jitter and a small random similarity transform per "
    f"image; faces 0–{99 - TEST_IDENTITIES} train, the other {TEST_IDENTITIES} test. These numbers show how the "
    "methods compare on expression-like displacements of unseen faces; they are not FER results."
)

# Landmarks as (row, column) fractions of the side, placed inside the attack workload's face-region boxes, which were
# calibrated on the mean of the aligned LFW faces (eye band at y ≈ 0.34, the face's vertical axis at x ≈ 0.44).
LANDMARKS: dict[str, tuple[float, float]] = {
    "l_brow_outer": (0.23, 0.17),
    "l_brow_inner": (0.23, 0.35),
    "r_brow_inner": (0.23, 0.53),
    "r_brow_outer": (0.23, 0.71),
    "l_upper_lid": (0.31, 0.26),
    "r_upper_lid": (0.31, 0.62),
    "l_lower_lid": (0.38, 0.26),
    "r_lower_lid": (0.38, 0.62),
    "l_nose_wing": (0.57, 0.39),
    "r_nose_wing": (0.57, 0.50),
    "l_mouth_corner": (0.73, 0.31),
    "r_mouth_corner": (0.73, 0.58),
    "upper_lip": (0.70, 0.445),
    "lower_lip": (0.77, 0.445),
    "l_cheek": (0.52, 0.22),
    "r_cheek": (0.52, 0.67),
}


@dataclass(frozen=True)
class Expression:
    """One expression's prototype: landmark → displacement (d_row, d_col) at full intensity, in fractions of the
    side, and how dark its open mouth is (0: closed). ``l_`` landmarks lie on the image's left, ``r_`` ones mirror
    them."""

    moves: dict[str, tuple[float, float]]
    mouth_open: float = 0.0


def _mirrored(**left: tuple[float, float]) -> dict[str, tuple[float, float]]:
    """Left-side moves plus their mirror images on the right (column displacement negated)."""
    moves = dict(left)
    moves.update({"r_" + name[2:]: (dr, -dc) for name, (dr, dc) in left.items() if name.startswith("l_")})
    return moves


# RAF-DB order: surprise, fear, disgust, happiness, sadness, anger, neutral. The AUs of each prototype (FACS/EMFACS):
EXPRESSIONS: tuple[Expression, ...] = (
    # surprise — AU1+2 (whole brow raised), AU5 (upper lid raised), AU26/27 (jaw drop: lower lip down, mouth open)
    Expression(
        _mirrored(l_brow_outer=(-0.06, 0.0), l_brow_inner=(-0.06, 0.0), l_upper_lid=(-0.03, 0.0), lower_lip=(0.08, 0)),
        mouth_open=0.7,
    ),
    # fear — AU1+2+4 (brows raised and drawn together), AU5, AU20 (lips stretched sideways), AU25 (lips parted)
    Expression(
        _mirrored(
            l_brow_outer=(-0.04, 0.0),
            l_brow_inner=(-0.05, 0.03),
            l_upper_lid=(-0.03, 0.0),
            l_mouth_corner=(0.01, -0.06),
            lower_lip=(0.03, 0.0),
        ),
        mouth_open=0.4,
    ),
    # disgust — AU9 (nose wrinkle: wings and lower lids up), AU10 (upper lip raised), AU4 (brows lowered)
    Expression(
        _mirrored(
            l_nose_wing=(-0.05, 0.0),
            upper_lip=(-0.05, 0.0),
            l_lower_lid=(-0.02, 0.0),
            l_brow_inner=(0.03, 0.02),
            l_mouth_corner=(0.02, 0.0),
        )
    ),
    # happiness — AU6 (cheeks raised, lower lids up), AU12 (lip corners pulled up and out), AU25 (lips parted)
    Expression(
        _mirrored(l_mouth_corner=(-0.06, -0.04), l_cheek=(-0.04, 0.0), l_lower_lid=(-0.02, 0.0), lower_lip=(0.02, 0)),
        mouth_open=0.3,
    ),
    # sadness — AU1 (inner brows raised), AU4, AU15 (lip corners pulled down), AU17 (chin raised: lower lip up)
    Expression(
        _mirrored(
            l_brow_inner=(-0.05, 0.02), l_brow_outer=(0.02, 0.0), l_mouth_corner=(0.06, 0.01), lower_lip=(-0.02, 0)
        )
    ),
    # anger — AU4 (brows lowered and drawn together), AU5+7 (lids tightened), AU23/24 (lips pressed together)
    Expression(
        _mirrored(
            l_brow_inner=(0.05, 0.04),
            l_brow_outer=(0.01, 0.0),
            l_lower_lid=(-0.02, 0.0),
            upper_lip=(0.025, 0.0),
            lower_lip=(-0.025, 0.0),
            l_mouth_corner=(0.0, 0.03),
        )
    ),
    # neutral — no action unit
    Expression({}),
)
RADIUS = 0.07  # Gaussian radius of a landmark's displacement, in fractions of the side


def displacement_field(
    expression: Expression, intensity: float, jitter: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel the (row, col) displacement in pixels: each moved landmark (shifted by its row of ``jitter``,
    in fractions) pushes its neighbourhood by ``intensity`` × its move, weighted by a Gaussian of :data:`RADIUS`."""
    grid = (np.arange(size) + 0.5) / size
    rows, cols = np.meshgrid(grid, grid, indexing="ij")
    d_row, d_col = np.zeros((size, size)), np.zeros((size, size))
    for k, name in enumerate(LANDMARKS):
        if name not in expression.moves:
            continue
        r0, c0 = np.asarray(LANDMARKS[name]) + jitter[k]
        weight = np.exp(-((rows - r0) ** 2 + (cols - c0) ** 2) / (2 * RADIUS**2))
        dr, dc = expression.moves[name]
        d_row += intensity * dr * weight * size
        d_col += intensity * dc * weight * size
    return d_row, d_col


def _mouth_cavity(expression: Expression, intensity: float, size: int) -> np.ndarray:
    """``[S, S]`` weight in [0, 1] of the open mouth: a soft ellipse between the upper lip and the dropped lower lip."""
    top = LANDMARKS["upper_lip"][0]
    bottom = LANDMARKS["lower_lip"][0] + intensity * expression.moves.get("lower_lip", (0.0, 0.0))[0]
    centre_row, centre_col = (top + bottom) / 2 * size, LANDMARKS["upper_lip"][1] * size
    half_height, half_width = max(bottom - top, 0.02) / 2 * size, 0.09 * size
    rows, cols = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5, indexing="ij")
    inside = ((rows - centre_row) / half_height) ** 2 + ((cols - centre_col) / half_width) ** 2
    return np.exp(-(inside**2))


def render_expression(face: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
    """One grey face ``[S, S]`` in [0, 1] (neutral, roughly aligned) rendered as expression ``label``."""
    size = face.shape[0]
    expression = EXPRESSIONS[label]
    intensity = rng.uniform(0.5, 1.0)
    jitter = rng.normal(0.0, 0.01, size=(len(LANDMARKS), 2))
    d_row, d_col = displacement_field(expression, intensity, jitter, size)
    rows, cols = np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64), indexing="ij")
    # backward map: the output pixel p shows the input at p − d(p), so a landmark's neighbourhood moves by about d
    image = warp(face, np.stack([rows - d_row, cols - d_col]), order=1, mode="edge")
    if expression.mouth_open > 0:  # the parted lips show the dark mouth cavity, as tall as the jaw dropped
        image = image * (1.0 - intensity * expression.mouth_open * _mouth_cavity(expression, intensity, size))
    angle, scale = np.deg2rad(rng.uniform(-5, 5)), rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * size
    centre = np.array([size / 2, size / 2])
    similarity = (
        SimilarityTransform(translation=-centre)
        + SimilarityTransform(rotation=angle, scale=scale)
        + SimilarityTransform(translation=centre + shift)
    )
    return np.clip(warp(image, similarity.inverse, order=1, mode="edge"), 0.0, 1.0)


def warped_faces(per_face: tuple[int, int], seed: int = 0) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """``(train, test)``, each ``(images [N, 64, 64] in [0, 1], labels in RAF-DB order)``: ``per_face[0]`` renders of
    every expression for each of the first 70 faces, ``per_face[1]`` for each of the last 30 (identity-disjoint).
    Deterministic in ``seed``."""
    faces = load_lfw_faces(RENDER_SIZE).astype(np.float64)
    splits = []
    for name, identities, count in (
        ("train", range(len(faces) - TEST_IDENTITIES), per_face[0]),
        ("test", range(len(faces) - TEST_IDENTITIES, len(faces)), per_face[1]),
    ):
        rng = np.random.default_rng(derive_seed(seed, "fer-warped-faces", name) % 2**32)
        images, labels = [], []
        for face in identities:
            for label in range(NUM_CLASSES):
                for _ in range(count):
                    images.append(render_expression(faces[face], label, rng))
                    labels.append(label)
        splits.append((np.stack(images).astype(np.float32), np.asarray(labels, dtype=np.int64)))
    return tuple(splits)
