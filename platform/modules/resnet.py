"""A small ResNet encoder (basic blocks, GroupNorm) with the same named-stage interface as :class:`ConvEncoder`.

ResNet-8 (``widths=(16, 32, 64)``, one block per stage) is the second detector family the attack workload transfers
between; ResNet-18-style (``widths=(32, 64, 128, 256)``, two blocks per stage) is the expression encoder. GroupNorm
for the same reasons as the conv encoder: no running statistics and DP-SGD compatibility.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from fedray.platform.modules.diffusion.embedding import group_count
from fedray.platform.modules.encoders import StagedEncoder, StageInfo


class BasicBlock(nn.Module):
    """Two 3×3 conv → GroupNorm layers with an identity (or 1×1 strided projection) shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, norm_groups: int) -> None:
        super().__init__()
        groups = group_count(out_channels, norm_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.act = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                OrderedDict(
                    conv=nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    norm=nn.GroupNorm(groups, out_channels),
                )
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)) + self.shortcut(x))


class ResNetEncoder(StagedEncoder):
    """Stem (3×3 conv at ``widths[0]``), then stages ``stage1``, ``stage2``, … of ``blocks`` basic blocks each; every
    stage after the first halves the spatial size. ``forward`` returns the last stage's map ``[B, widths[-1], h, w]``.
    """

    def __init__(
        self, in_channels: int, widths: tuple[int, ...] | list[int], blocks: int = 1, norm_groups: int = 8
    ) -> None:
        super().__init__()
        if not widths or blocks < 1:
            raise ValueError("a ResNet encoder needs at least one stage width and one block per stage")
        self.stem = nn.Sequential(
            OrderedDict(
                conv=nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                norm=nn.GroupNorm(group_count(widths[0], norm_groups), widths[0]),
                act=nn.ReLU(),
            )
        )
        self.stages = nn.ModuleDict()
        info = []
        channels = widths[0]
        for i, width in enumerate(widths, start=1):
            stride = 1 if i == 1 else 2
            layers = [
                BasicBlock(channels if b == 0 else width, width, stride if b == 0 else 1, norm_groups)
                for b in range(blocks)
            ]
            self.stages[f"stage{i}"] = nn.Sequential(*layers)
            info.append(StageInfo(f"stage{i}", width, 2 ** (i - 1)))
            channels = width
        self.feature_info = tuple(info)
        self.out_channels = channels

    def stem_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stem(x)
