"""The continual learner's network: a vision Mamba backbone and one linear head per task.

Which backbone tensors continual methods may train is Mamba-CL's choice: the input-dependent SSM projections W_δ,
W_B, W_C, the state matrix A (through A_log) and out_proj — ``ssm_parameters`` names them with the part of the
method they belong to. in_proj, the convolution, dt_proj, D, norms and embeddings stay as pre-trained.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from fedray.platform.modules.config import MambaConfig
from fedray.platform.modules.heads import TaskHeads
from fedray.platform.modules.mamba import MambaBlock, VisionMamba

# part → (attribute of a MambaBlock, side its projection multiplies the update from)
SSM_PARTS: dict[str, tuple[str, str]] = {
    "delta": ("x_proj_dt.weight", "right"),
    "B": ("x_proj_B.weight", "right"),
    "C": ("x_proj_C.weight", "right"),
    "A": ("A_log", "left"),
    "out": ("out_proj.weight", "right"),
}


@dataclass(frozen=True)
class SSMParameter:
    block: int
    part: str
    side: str
    param: nn.Parameter


class ContinualMamba(nn.Module):
    def __init__(self, cfg: MambaConfig, in_channels: int, image_size: int) -> None:
        super().__init__()
        self.backbone = VisionMamba(cfg, in_channels, image_size)
        self.heads = TaskHeads(self.backbone.out_features)

    def forward(self, images: torch.Tensor, tasks: int | None = None) -> torch.Tensor:
        """Concatenated logits of the first ``tasks`` heads (all seen classes by default)."""
        return self.heads(self.backbone(images), tasks)

    def blocks(self) -> list[MambaBlock]:
        return self.backbone.blocks()

    def ssm_parameters(self) -> Iterator[SSMParameter]:
        for index, block in enumerate(self.blocks()):
            for part, (name, side) in SSM_PARTS.items():
                yield SSMParameter(index, part, side, block.get_parameter(name))

    def freeze_all_but_ssm(self) -> None:
        """Only the SSM parameters (and the heads) keep ``requires_grad``."""
        trainable = {id(p.param) for p in self.ssm_parameters()}
        for param in self.backbone.parameters():
            param.requires_grad_(id(param) in trainable)
