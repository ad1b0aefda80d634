"""The expression network: a ResNet image encoder projected into the text space, matched to the prompt embeddings.

f_e = W · GAP(ResNet(x)) ∈ R^D (D = the text dimension); ``text`` heads classify by s · cos(f_e, t_k) and, for the
KE2NT terms, carry the emotional-to-neutral MLP f_n = fc2(ReLU(fc1(f_e))) (D → hidden → D, as the official ``MLP``);
the ``linear`` head (the baseline) puts a softmax classifier on the same f_e. Inference never uses the MLP. Inputs are
standardised with the training split's pixel mean and std, and the text embeddings are a buffer, so a checkpoint
holds everything inference needs.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Literal

import numpy as np
import torch
from torch import nn

from fedray.platform.modules.resnet import ResNetEncoder
from fedray.platform.seeding import derive_seed
from fedray.tasks.fer.config import LINEAR_HEAD_METHODS, METHOD_TERMS, Model
from fedray.tasks.fer.losses import ke2nt_terms, text_logits

Head = Literal["text", "linear"]


class NeutralMLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, f_e: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(f_e)))


class ExpressionNet(nn.Module):
    """``forward(x)`` → logits ``[B, 7]``; ``training_losses(x, y)`` → the method's named loss terms."""

    def __init__(
        self,
        cfg: Model,
        in_channels: int,
        text: np.ndarray,
        head: Head,
        terms: tuple[str, ...],
        logit_scale: float,
        seed: int,
    ) -> None:
        super().__init__()
        dim = text.shape[1]
        # The encoder and projection draw from one seed for every method, so all methods start from the same weights.
        torch.manual_seed(derive_seed(seed, "fer", "encoder-init"))
        self.encoder = ResNetEncoder(in_channels, list(cfg.widths), cfg.blocks, cfg.norm_groups)
        self.project = nn.Linear(self.encoder.out_channels, dim)
        torch.manual_seed(derive_seed(seed, "fer", "head-init"))
        self.classifier = nn.Linear(dim, len(text)) if head == "linear" else None
        self.mlp = NeutralMLP(dim, cfg.mlp_hidden) if terms else None
        self.register_buffer("text", torch.tensor(np.asarray(text, dtype=np.float32)))  # copied: may be read-only
        self.register_buffer("input_mean", torch.zeros(1))
        self.register_buffer("input_std", torch.ones(1))
        self.head, self.terms, self.logit_scale = head, terms, logit_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """f_e ``[B, D]``."""
        h = self.encoder((x - self.input_mean) / self.input_std)
        return self.project(h.mean(dim=(2, 3)))

    def logits(self, f_e: torch.Tensor) -> torch.Tensor:
        if self.classifier is not None:
            return self.classifier(f_e)
        return text_logits(f_e, self.text, self.logit_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))

    def training_losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        f_e = self.features(x)
        f_n = self.mlp(f_e) if self.mlp is not None else None
        return ke2nt_terms(self.logits(f_e), y, f_e, f_n, self.text, self.terms)


def build_model(method: str, cfg: Model, in_channels: int, text: np.ndarray, logit_scale: float, seed: int):
    """The network of ``method`` (see ``METHOD_TERMS``): text matching, or the linear head for ``linear_ce``."""
    head: Head = "linear" if method in LINEAR_HEAD_METHODS else "text"
    return ExpressionNet(cfg, in_channels, text, head, METHOD_TERMS[method], logit_scale, seed)


def parameter_counts(model: ExpressionNet) -> dict[str, int]:
    """Trainable parameters: those used at inference, and those used only in training (the MLP)."""
    groups: OrderedDict[str, int] = OrderedDict(inference=0, training_only=0)
    for name, p in model.named_parameters():
        groups["training_only" if name.startswith("mlp.") else "inference"] += p.numel()
    return dict(groups)
