"""ControlNet: a trainable copy of a UNet's encoder half, conditioned on an image, whose outputs enter the frozen UNet
through zero-initialised 1×1 convolutions — one per skip connection and one for the middle block.

Foodfusion's Content-Structure Control Module is this network conditioned on the background. The hint encoder
(small convolutions ending in a zero convolution) embeds the conditioning image at the UNet's input resolution and is
added after the copy's input convolution, as in ControlNet; because every output convolution starts at zero, a fresh
control branch leaves the UNet's prediction unchanged. The copy's cross-attention layers get no context (the official
branch reads the null-text embedding; here the base model was trained without context, which is the same thing).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.cross_attention import CrossAttentionBlock
from fedray.platform.modules.diffusion.embedding import zero_init
from fedray.platform.modules.diffusion.unet import UNet, WithEncoder

COPIED = ("time_embed.", "input.", "down.", "middle.")  # the parameters the copy shares names with the UNet


class HintEncoder(nn.Sequential):
    """Conditioning image ``[B, hint_channels, S, S]`` → ``[B, channels, S, S]``: conv–SiLU stacks, zero conv last."""

    def __init__(self, hint_channels: int, channels: int, hidden: int = 16) -> None:
        super().__init__(
            nn.Conv2d(hint_channels, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, 2 * hidden, 3, padding=1),
            nn.SiLU(),
            zero_init(nn.Conv2d(2 * hidden, channels, 3, padding=1)),
        )


class ControlNet(WithEncoder):
    """``forward(x, t, hint) -> residuals`` for :meth:`UNet.forward`'s ``control`` (skips in order, middle last)."""

    def __init__(
        self,
        cfg: UNetConfig,
        in_channels: int,
        image_size: int,
        hint_channels: int = 3,
        cross_attention_resolutions: Sequence[int] = (),
    ) -> None:
        super().__init__()
        encoder = self.build_encoder(cfg, in_channels, image_size, cross_attention_resolutions)
        for block in self.modules():
            if isinstance(block, CrossAttentionBlock):
                block.requires_grad_(False)  # kept for the UNet's parameter names; no context ever reaches them
        self.hint = HintEncoder(hint_channels, cfg.model_channels)
        self.zero_convs = nn.ModuleList(zero_init(nn.Conv2d(c, c, 1)) for c in encoder.skip_channels)
        self.middle_out = zero_init(nn.Conv2d(encoder.channels, encoder.channels, 1))

    @classmethod
    def from_unet(cls, unet: UNet, cfg: UNetConfig, in_channels: int, image_size: int, **kwargs) -> ControlNet:
        """A control branch whose encoder starts as a copy of ``unet``'s (ControlNet's initialisation)."""
        control = cls(cfg, in_channels, image_size, **kwargs)
        shared = {k: v for k, v in unet.state_dict().items() if k.startswith(COPIED)}
        missing = [k for k in control.state_dict() if k.startswith(COPIED) and k not in shared]
        if missing:
            raise ValueError(
                f"the UNet lacks {len(missing)} encoder parameters of the control branch, e.g. {missing[0]}"
            )
        control.load_state_dict(shared, strict=False)
        return control

    def forward(self, x: torch.Tensor, t: torch.Tensor, hint: torch.Tensor) -> list[torch.Tensor]:
        emb = self.embed(t, x.dtype)
        h = self.input(x) + self.hint(hint)
        residuals = [self.zero_convs[0](h)]
        for stage, zero_conv in zip(self.down, self.zero_convs[1:], strict=True):
            h = stage(h, emb)
            residuals.append(zero_conv(h))
        residuals.append(self.middle_out(self.middle(h, emb)))
        return residuals
