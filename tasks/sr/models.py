"""The networks of every ``sr`` method, built from the config, and the ResShift process they share."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion, resshift_sqrt_etas
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.dit_sr import DiTSRNet
from fedray.tasks.sr.config import SRConfig

DIFFUSION_METHODS = ("dit_sr", "dit_sr_adaln", "resshift_unet")
TRAINED_METHODS = (*DIFFUSION_METHODS, "regression")


class ResShiftUNet(nn.Module):
    """The conventional-UNet ResShift baseline: widths grow with depth, attention only at low resolution,
    scale-shift time conditioning; the conditioning image is concatenated to x_t (and, with ``residual``, added to
    the output as in :class:`DiTSRNet`)."""

    def __init__(self, unet: UNet, residual: bool = False) -> None:
        super().__init__()
        self.unet = unet
        self.residual = residual

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.unet(torch.cat([x, cond], dim=1), t)
        return cond + out if self.residual else out


class Regressor(nn.Module):
    """The regression baseline: the residual DiT-SR network in one pass, ŷ = y_up + f(y_up, 0, y_up), trained with
    L1."""

    def __init__(self, net: DiTSRNet) -> None:
        super().__init__()
        if not net.residual:
            raise ValueError("the regression baseline needs a residual network")
        self.net = net

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.net(cond, torch.zeros(len(cond), dtype=torch.long, device=cond.device), cond)


def build_network(cfg: SRConfig, method: str) -> nn.Module:
    size, residual = cfg.data.hr_size, cfg.resshift.residual
    if method == "dit_sr":
        return DiTSRNet(cfg.model, 3, 3, 3, size, residual)
    if method == "dit_sr_adaln":
        return DiTSRNet(dataclasses.replace(cfg.model, modulation="adaln"), 3, 3, 3, size, residual)
    if method == "resshift_unet":
        return ResShiftUNet(UNet(cfg.unet, in_channels=6, out_channels=3, image_size=size), residual)
    if method == "regression":
        return Regressor(DiTSRNet(cfg.model, 3, 3, 3, size, residual=True))
    raise ValueError(f"method {method!r} has no network")


def build_resshift(cfg: SRConfig) -> ResShiftDiffusion:
    r = cfg.resshift
    etas = resshift_sqrt_etas(r.steps, r.kappa, r.power, r.min_noise_level, r.etas_end)
    return ResShiftDiffusion(
        etas, r.kappa, scaling="pixel", xt_skip_variance=r.lr_error_variance if r.xt_skip else None
    )
