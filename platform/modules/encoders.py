"""Convolutional encoders whose stage outputs are addressable by name.

Workloads that need intermediate features (OOD feature diffusion, CAM, fairness statistics) ask for stages by name
through :meth:`ConvEncoder.forward_stages` and :attr:`ConvEncoder.feature_info`, never by hooking arbitrary layers.
GroupNorm is used instead of BatchNorm: it has no running statistics, so "shared" parameters are unambiguous in
federated runs and the encoder is compatible with DP-SGD.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from fedray.platform.modules.diffusion.embedding import group_count


@dataclass(frozen=True)
class StageInfo:
    """Name, channel count and total stride (input size ÷ output size) of one encoder stage."""

    name: str
    channels: int
    reduction: int


class ConvBlock(nn.Sequential):
    """3×3 conv → GroupNorm → ReLU → 2×2 max-pool; halves the spatial size.

    The parts are named (``conv``, ``norm``) because names are the interface: FedBN keeps ``*.norm.*`` personal.
    The activation is not in-place: opacus' per-example gradient hooks cannot see through in-place ops.
    """

    def __init__(self, in_channels: int, out_channels: int, norm_groups: int) -> None:
        super().__init__(
            OrderedDict(
                conv=nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                norm=nn.GroupNorm(group_count(out_channels, norm_groups), out_channels),
                act=nn.ReLU(),
                pool=nn.MaxPool2d(2),
            )
        )


class StagedEncoder(nn.Module):
    """Stages in ``self.stages`` (a ModuleDict named ``stage1``, ``stage2``, …) after an optional stem; the outputs of
    any stages by name. Subclasses build the stages and ``feature_info`` and may override :meth:`stem_forward`."""

    stages: nn.ModuleDict
    feature_info: tuple[StageInfo, ...]
    out_channels: int

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_stages(self, x: torch.Tensor, names: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
        """Outputs of the requested stages (all by default), keyed by stage name."""
        wanted = set(names) if names is not None else set(self.stages.keys())
        unknown = wanted - set(self.stages.keys())
        if unknown:
            raise KeyError(f"unknown stages {sorted(unknown)}; encoder has {list(self.stages.keys())}")
        out = {}
        x = self.stem_forward(x)
        for name, stage in self.stages.items():
            x = stage(x)
            if name in wanted:
                out[name] = x
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map ``[B, out_channels, h, w]``."""
        x = self.stem_forward(x)
        for stage in self.stages.values():
            x = stage(x)
        return x


class ConvEncoder(StagedEncoder):
    """A stack of :class:`ConvBlock` stages named ``stage1``, ``stage2``, …

    Input ``[B, in_channels, H, W]``; stage ``i`` outputs ``[B, widths[i-1], H / 2**i, W / 2**i]``.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...] | list[int], norm_groups: int = 8) -> None:
        super().__init__()
        if not widths:
            raise ValueError("an encoder needs at least one stage width")
        self.stages = nn.ModuleDict()
        info = []
        channels = in_channels
        for i, width in enumerate(widths, start=1):
            self.stages[f"stage{i}"] = ConvBlock(channels, width, norm_groups)
            info.append(StageInfo(f"stage{i}", width, 2**i))
            channels = width
        self.feature_info = tuple(info)
        self.out_channels = channels
