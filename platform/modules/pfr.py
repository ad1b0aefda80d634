"""Personalized forgery representation (PFR): a shared conv trunk whose feature statistics feed a personal branch.

Glossary (fedray's concrete design of the method; the paper publishes no code):
``h = trunk(x)`` shared conv features ``[B, C, h, w]``; ``mu, sd`` their per-channel mean and standard deviation;
``n = (h - mu) / sd`` instance-normalised content;
``R_s``: ``z_s = GAP(gamma_s·n + beta_s)``, the shared representation (parameters ``R_s.gamma``, ``R_s.beta``);
``R_p``: ``z_p = GAP(gamma_p·n + beta_p) + P_p([mu; sd])``, the personal one, which sees the statistics that
blending, colour and resampling artifacts disturb;
``logit_j = head_j([z_s; z_p])`` (the client's prediction), ``logit_s = head_s(z_s)``, ``logit_p = head_p(z_p)``;
``L = alpha·CE(logit_j) + beta·CE(logit_p) + gamma·CE(logit_s)``.
Shared (aggregated): ``trunk.*``, ``R_s.*``, ``head_s.*``; everything else stays on its client.
The affine maps are modules of their own (not bare parameters of the network) so that opacus can compute their
per-example gradients under differential privacy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.modules.encoders import ConvEncoder

PFR_SHARED = ["trunk.*", "R_s.*", "head_s.*"]


class ChannelAffine(nn.Module):
    """``gamma·n + beta`` per channel of ``[B, C, H, W]`` features, averaged over space (GAP): ``[B, C]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, n: torch.Tensor) -> torch.Tensor:
        return (self.gamma[:, None, None] * n + self.beta[:, None, None]).mean(dim=(2, 3))


class PFRNet(nn.Module):
    def __init__(
        self,
        in_channels: int,
        widths: list[int] | tuple[int, ...] = (32, 64, 128),
        norm_groups: int = 8,
        num_classes: int = 2,
        loss_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        super().__init__()
        self.trunk = ConvEncoder(in_channels, widths, norm_groups)
        c = self.trunk.out_channels
        self.R_s, self.R_p = ChannelAffine(c), ChannelAffine(c)
        self.P_p = nn.Linear(2 * c, c)
        self.head_j = nn.Linear(2 * c, num_classes)
        self.head_s = nn.Linear(c, num_classes)
        self.head_p = nn.Linear(c, num_classes)
        self.alpha, self.beta, self.gamma = loss_weights

    def representations(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z_s, z_p)``, each ``[B, C]``."""
        h = self.trunk(x)
        mu = h.mean(dim=(2, 3), keepdim=True)
        sd = torch.sqrt(h.var(dim=(2, 3), keepdim=True, unbiased=False) + 1e-5)
        n = (h - mu) / sd
        stats = torch.cat([mu.flatten(1), sd.flatten(1)], dim=1)
        return self.R_s(n), self.R_p(n) + self.P_p(stats)

    def all_logits(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z_s, z_p = self.representations(x)
        return {
            "joint": self.head_j(torch.cat([z_s, z_p], dim=1)),
            "shared": self.head_s(z_s),
            "personal": self.head_p(z_p),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The client's prediction, ``logit_j``."""
        return self.all_logits(x)["joint"]

    def forward_shared(self, x: torch.Tensor) -> torch.Tensor:
        """``head_s(z_s)``: the prediction for a client that has no personal tensors yet (zero-shot)."""
        z_s, _ = self.representations(x)
        return self.head_s(z_s)

    def training_losses(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self.all_logits(x)
        terms = {name: F.cross_entropy(value, y) for name, value in logits.items()}
        terms["loss"] = self.alpha * terms["joint"] + self.beta * terms["personal"] + self.gamma * terms["shared"]
        return terms
