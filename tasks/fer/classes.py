"""The seven expression classes in RAF-DB label order, their KE2NT prompts, and how class folder names map onto them.

RAF-DB numbers its basic-expression classes 1–7 (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger,
7 neutral); KE2NT uses that order 0-based, so neutral is label 6 and the prompts follow the same order. FER2013 and
most Kaggle-style folders name the classes instead (angry, disgust, fear, happy, neutral, sad, surprise): those names,
and their usual variants, are mapped onto the RAF-DB labels rather than taken in alphabetical order.
"""

from __future__ import annotations

RAF_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
NEUTRAL = 6
NUM_CLASSES = len(RAF_CLASSES)

# The official code's prompts, word for word (models/backbone_raf.py of the KE2NT release).
PROMPTS = (
    "a photo of a person making a surprise facial expression.",
    "a photo of a person making a fear facial expression.",
    "a photo of a person making a disgust facial expression.",
    "a photo of a person making a happiness facial expression.",
    "a photo of a person making a sadness facial expression.",
    "a photo of a person making an anger facial expression.",
    "a photo of a person making a neutral facial expression.",
)

# Folder name (lower case) → RAF-DB label: RAF-DB's own 1–7, then names as FER2013 and other sets spell them.
FOLDER_LABELS: dict[str, int] = {
    **{str(k + 1): k for k in range(NUM_CLASSES)},
    "surprise": 0, "surprised": 0,
    "fear": 1, "fearful": 1, "afraid": 1,
    "disgust": 2, "disgusted": 2,
    "happiness": 3, "happy": 3,
    "sadness": 4, "sad": 4,
    "anger": 5, "angry": 5,
    "neutral": 6,
}  # fmt: skip


def folder_label(name: str) -> int | None:
    """The RAF-DB label of a class folder called ``name`` (any case), or None when the name is not an expression."""
    return FOLDER_LABELS.get(name.strip().lower())
