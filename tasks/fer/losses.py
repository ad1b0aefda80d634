"""KE2NT's losses as pure functions of features, labels and the frozen text embeddings, as in the official code.

Glossary: f_e ``[B, D]`` the projected image (expression) features; f_n = MLP(f_e) ``[B, D]`` their neutral
transformation; t ``[K, D]`` the prompt embeddings in RAF-DB order, t_neutral = t[6]; I = the samples of the batch
whose label is not neutral; a hat means unit-normalised. All weights are 1 (``L = L_s + L_t + L_c``), as in the official
``swint_raf_main.py``; the two KE2NT terms are skipped for a batch without a non-neutral sample (the official code
would take the mean of an empty set there).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedray.tasks.fer.classes import NEUTRAL


def text_logits(f_e: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """``[B, K]``: s · cos(f_e, t_k), classification by matching the image feature to each prompt."""
    return scale * F.normalize(f_e, dim=-1) @ F.normalize(text, dim=-1).T


def transformation_loss(
    f_e: torch.Tensor, f_n: torch.Tensor, t_y: torch.Tensor, t_neutral: torch.Tensor
) -> torch.Tensor:
    """L_t = mean over I of 1 − cos(f_e − f_n, t_y − t_neutral): the visual emotional→neutral displacement (raw
    features subtracted) must point the way the textual one does. Inputs hold the samples of I only."""
    return (1.0 - F.cosine_similarity(f_e - f_n, t_y - t_neutral, dim=-1)).mean()


def self_contrast_loss(t_y: torch.Tensor, f_e: torch.Tensor, f_n: torch.Tensor) -> torch.Tensor:
    """L_c = (1/|I|²) Σ_i Σ_j [t̂_{y_i}·f̂_n,j − t̂_{y_i}·f̂_e,j] + 2 over the full |I|×|I| matrix: pull every expression
    feature toward the label anchors, push the neutral representations away (official ``SelfConLoss``)."""
    anchor, pos, neg = F.normalize(t_y, dim=-1), F.normalize(f_e, dim=-1), F.normalize(f_n, dim=-1)
    return (anchor @ neg.T - anchor @ pos.T + 2.0).mean()


def ke2nt_terms(
    logits: torch.Tensor,
    labels: torch.Tensor,
    f_e: torch.Tensor,
    f_n: torch.Tensor | None,
    text: torch.Tensor,
    terms: tuple[str, ...],
) -> dict[str, torch.Tensor]:
    """Named loss terms of one batch: ``ce`` (L_s) always, ``lt`` and ``lc`` when listed in ``terms`` and the batch has
    a non-neutral sample, and their sum ``loss``."""
    out = {"ce": F.cross_entropy(logits, labels)}
    emotional = labels != NEUTRAL
    if terms and bool(emotional.any()):
        assert f_n is not None, "the KE2NT terms need the neutral features f_n"
        t_y = text[labels[emotional]]
        fe, fn = f_e[emotional], f_n[emotional]
        if "lt" in terms:
            out["lt"] = transformation_loss(fe, fn, t_y, text[NEUTRAL].expand_as(t_y))
        if "lc" in terms:
            out["lc"] = self_contrast_loss(t_y, fe, fn)
    out["loss"] = sum(out.values(), torch.zeros((), device=logits.device))
    return out
