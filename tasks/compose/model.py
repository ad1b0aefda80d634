"""The composition models: a frozen base UNet whose cross-attention layers read foreground and background tokens
through the method's processor, optionally with a control branch conditioned on the background.

=====================  ==============================  =====================
method                 cross-attention processor       control branch
=====================  ==============================  =====================
``fusion``             dual K/V + FusionBlock          yes (Foodfusion)
``concat``             one K/V over [fg; bg] tokens    no
``fusion_nocontrol``   dual K/V + FusionBlock          no
=====================  ==============================  =====================
"""

from __future__ import annotations

import torch
from torch import nn

from fedray.platform.modules.diffusion.controlnet import ControlNet
from fedray.platform.modules.diffusion.cross_attention import ImageContext, set_cross_attention
from fedray.platform.modules.diffusion.gaussian import GaussianDiffusion
from fedray.platform.modules.diffusion.schedules import beta_schedule, space_timesteps
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.encoders import ConvEncoder
from fedray.platform.modules.tokens import ImageTokenizer
from fedray.tasks.compose.config import ComposeConfig

PROCESSOR = {"fusion": "fusion", "concat": "concat", "fusion_nocontrol": "fusion"}
CONTROLLED = ("fusion",)


def build_base(cfg: ComposeConfig) -> UNet:
    """The ε-prediction UNet over RGB images, with (processor-less) cross-attention layers."""
    return UNet(cfg.model, 3, 3, cfg.data.image_size, cfg.cross_attention_resolutions)


def build_token_encoder(cfg: ComposeConfig) -> ConvEncoder:
    return ConvEncoder(3, cfg.tokens.widths)


def build_diffusion(cfg: ComposeConfig, respaced: bool = False) -> GaussianDiffusion:
    """The training process, or (``respaced``) the ``sample_steps``-step process DDIM walks."""
    diffusion = GaussianDiffusion(beta_schedule(cfg.diffusion.schedule, cfg.diffusion.steps), prediction="eps")
    if respaced:
        return diffusion.respaced(space_timesteps(cfg.diffusion.steps, cfg.diffusion.sample_steps))
    return diffusion


def unit_range(images: torch.Tensor) -> torch.Tensor:
    """[−1, 1] → [0, 1]: the control branch reads the background as the official pipeline does."""
    return (images + 1) / 2


class Compositor(nn.Module):
    """ε̂(x_t, t, E_fg, E_bg, control(background)). Trainable: the processors, the tokenizer's projections and
    resampler, and the control branch; the base UNet and the token encoder stay frozen."""

    def __init__(self, cfg: ComposeConfig, method: str, base: UNet, encoder: ConvEncoder) -> None:
        super().__init__()
        if method not in PROCESSOR:
            raise ValueError(f"unknown composition method {method!r}; choose from {', '.join(PROCESSOR)}")
        self.method = method
        self.unet = base.requires_grad_(False)
        set_cross_attention(self.unet, PROCESSOR[method], cfg.tokens.dim)
        size = cfg.data.image_size
        self.tokenizer = ImageTokenizer(encoder, cfg.tokens.stages, size, cfg.tokens.dim, cfg.tokens.heads)
        self.control = (
            ControlNet.from_unet(base, cfg.model, 3, size, cross_attention_resolutions=cfg.cross_attention_resolutions)
            if method in CONTROLLED
            else None
        )

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def context(self, foreground: torch.Tensor, background: torch.Tensor) -> ImageContext:
        return ImageContext(self.tokenizer(foreground), self.tokenizer(background))

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, context: ImageContext, background: torch.Tensor
    ) -> torch.Tensor:
        control = self.control(x, t, unit_range(background)) if self.control is not None else None
        return self.unet(x, t, context, control)


def build_compositor(cfg: ComposeConfig, method: str) -> Compositor:
    """A compositor with freshly initialised weights (load a trained state, or the base and encoder, into it)."""
    return Compositor(cfg, method, build_base(cfg), build_token_encoder(cfg))
