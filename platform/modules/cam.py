"""Class activation maps of a Conv → GAP → FC classifier (Zhou et al., CVPR 2016), as the ASMA attack uses them.

For a :class:`~fedray.platform.modules.classifier.Classifier` the logit of class ``c`` is
``Σ_k w_ck · mean_hw F_k + b_c`` with ``F = forward_features(x)`` ``[B, C, h, w]`` and ``w = head.fc.weight``, so
``F_k · w_ck`` says where channel ``k`` adds evidence for ``c``. ASMA's released attack keeps that map per channel:
``CAM = ReLU(F ⊙ w_c)`` ``[B, C, h, w]``, min–max normalised over the whole batch tensor (one min and one max for all
images and channels, so images in one batch share a scale), then resized bilinearly to 32×32. The channel-summed map
at image size is the usual CAM picture, which the adaptive region selection ranks regions by.

Everything here is differentiable in ``x`` except the choice of class (an argmax), so an attack can ascend a loss on
the maps directly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RELEASE_CAM_SIZE = 32  # the released attack compares maps resized to 32×32


def cam_weight(model: nn.Module) -> torch.Tensor:
    """The FC weight ``[num_classes, C]`` of a classifier that ends Conv → GAP → FC: it must offer
    ``forward_features``, ``forward_head`` and a ``head.fc`` linear layer. Other detectors have no class activation
    map (TypeError)."""
    fc = getattr(getattr(model, "head", None), "fc", None)
    if not (hasattr(model, "forward_features") and hasattr(model, "forward_head")) or not isinstance(fc, nn.Linear):
        raise TypeError(
            f"{type(model).__name__} has no forward_features and head.fc (Conv → GAP → FC), so it has no CAM"
        )
    return fc.weight


def channel_cams(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """Per-channel CAM ``ReLU(F ⊙ w_c)`` ``[B, C, h, w]`` of class ``target`` ``[B]`` (default: the predicted
    class of ``x``, chosen without gradient)."""
    weight = cam_weight(model)
    features = model.forward_features(x)  # [B, C, h, w]
    if target is None:
        with torch.no_grad():
            target = model.forward_head(features).argmax(dim=1)
    w = weight[target]  # [B, C]
    return F.relu(features * w[:, :, None, None])


def batch_minmax(maps: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``(maps − min) / (max − min)`` with one min and max over the whole tensor (all images and channels)."""
    lo, hi = maps.min(), maps.max()
    return (maps - lo) / (hi - lo + eps)


def release_cam(
    model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None, size: int = RELEASE_CAM_SIZE
) -> torch.Tensor:
    """The released attack's map: per-channel CAM, min–max normalised over the batch tensor, bilinearly resized to
    ``size``×``size`` ``[B, C, size, size]``."""
    maps = batch_minmax(channel_cams(model, x, target))
    return F.interpolate(maps, size=(size, size), mode="bilinear", align_corners=False)


def saliency(model: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
    """The channel-summed CAM ``Σ_k ReLU(F_k · w_ck)``, bilinearly resized to the image size ``[B, H, W]`` (not
    normalised: region means are compared within one image)."""
    summed = channel_cams(model, x, target).sum(dim=1, keepdim=True)
    return F.interpolate(summed, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False)[:, 0]
