"""The attacks, all one L∞ projected-gradient ascent with different objectives, budgets and masks.

Every attack moves δ by ``step_size · sign(∇ loss)``, clips it to the ε-ball and keeps ``x + δ`` in [0, 1]:

- ``asma`` — the released attack: the loss is MSE(CAM(x+δ), CAM(x)) with the per-channel, batch-normalised 32×32
  CAM of the attacked detector (:mod:`fedray.platform.modules.cam`), so it destroys the activation pattern instead
  of raising the cross-entropy; random start, ε 0.20, 20 steps of 0.015; the semantic mask M is applied once, after
  the attack: ``x_final = M·x_adv + (1 − M)·x``.
- ``asma_masked`` — δ projected into M at every step (and at the start), so the whole budget works inside M.
- ``asma_adaptive`` — M chosen per image from the detector's channel-summed CAM on x (:func:`select_groups`).
- ``fgsm`` / ``bim`` / ``pgd`` — cross-entropy on the full image at ε = 8/255 (torchattacks' settings; without a
  random start BIM and PGD take the same steps).
- ``pgd_masked_ce`` — cross-entropy with ASMA's budget, δ projected into M every step: the region-restricted
  baseline that isolates what the CAM objective adds.

Images are processed in batches of ``batch_size`` (the CAM's min–max normalisation spans one batch, as in the
release, which evaluates a whole batch at once). The fixed mask's region list is the same for every image — the
release's per-image overwrite of it is not reproduced.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedray.platform.device import select_device, torch_threads
from fedray.platform.modules.cam import release_cam, saliency
from fedray.platform.modules.state import as_tensor
from fedray.platform.seeding import derive_seed
from fedray.tasks.attack.config import AttackConfig
from fedray.tasks.attack.regions import chosen_masks, select_groups

MaskMode = Literal["none", "after", "project"]


@dataclass(frozen=True)
class AttackSpec:
    """One attack: ``objective`` (``cam``: CAM discrepancy, ``ce``: cross-entropy of the true label), the L∞ budget
    ``eps``, ``steps`` of ``step_size``, a uniform random start or none, and how the mask enters (``none``; ``after``
    the attack; ``project`` every step) and which mask (``fixed``: regions.fixed or the mask file; ``adaptive``)."""

    name: str
    objective: Literal["cam", "ce"]
    eps: float
    step_size: float
    steps: int
    random_start: bool
    mask_mode: MaskMode
    mask_source: Literal["none", "fixed", "adaptive"] = "none"
    cam_size: int = 32


def attack_specs(cfg: AttackConfig) -> dict[str, AttackSpec]:
    """The configured attacks by name, in the order of ``cfg.attacks``."""
    a, b = cfg.asma, cfg.baselines
    cam = {"objective": "cam", "eps": a.eps, "step_size": a.step_size, "steps": a.steps, "random_start": True,
           "cam_size": a.cam_size}  # fmt: skip
    full = {"objective": "ce", "eps": b.eps, "random_start": False, "mask_mode": "none"}
    every = {
        "asma": AttackSpec("asma", mask_mode="after", mask_source="fixed", **cam),
        "asma_masked": AttackSpec("asma_masked", mask_mode="project", mask_source="fixed", **cam),
        "asma_adaptive": AttackSpec(
            "asma_adaptive", mask_mode="project" if cfg.adaptive.masked else "after", mask_source="adaptive", **cam
        ),
        "fgsm": AttackSpec("fgsm", step_size=b.eps, steps=1, **full),
        "bim": AttackSpec("bim", step_size=b.alpha, steps=b.steps, **full),
        "pgd": AttackSpec("pgd", step_size=b.alpha, steps=b.steps, **full),
        "pgd_masked_ce": AttackSpec(
            "pgd_masked_ce", "ce", a.eps, a.step_size, a.steps, True, "project", "fixed", a.cam_size
        ),
    }
    return {name: every[name] for name in cfg.attacks}


def _loss(model: nn.Module, spec: AttackSpec, x_adv: torch.Tensor, y: torch.Tensor, ref: torch.Tensor | None):
    if spec.objective == "cam":
        return F.mse_loss(release_cam(model, x_adv, size=spec.cam_size), ref)
    return F.cross_entropy(model(x_adv), y)


def perturb(
    model: nn.Module,
    spec: AttackSpec,
    x: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None,
    generator: torch.Generator,
    trace: list[float] | None = None,
) -> torch.Tensor:
    """``x_final`` ``[B, 1, H, W]`` for images ``x`` in [0, 1], labels ``y`` and mask ``[B, 1, H, W]`` (ignored when
    ``spec.mask_mode`` is ``none``). ``trace`` collects the loss before each step."""
    project = mask if spec.mask_mode == "project" else None
    delta = torch.zeros_like(x)
    if spec.random_start:
        # drawn with the CPU generator, then moved: the same random start on any device
        start = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        delta = (start * 2 - 1) * spec.eps
    if project is not None:
        delta = delta * project
    delta = (x + delta).clamp(0, 1) - x
    ref = None
    if spec.objective == "cam":
        with torch.no_grad():
            ref = release_cam(model, x, size=spec.cam_size)
    for _ in range(spec.steps):
        delta.requires_grad_(True)
        loss = _loss(model, spec, x + delta, y, ref)
        (grad,) = torch.autograd.grad(loss, delta)
        if trace is not None:
            trace.append(float(loss.detach()))
        delta = (delta.detach() + spec.step_size * grad.sign()).clamp(-spec.eps, spec.eps)
        if project is not None:
            delta = delta * project
        delta = (x + delta).clamp(0, 1) - x
    x_adv = (x + delta).clamp(0, 1)
    if spec.mask_mode == "after":
        x_adv = mask * x_adv + (1 - mask) * x
    return x_adv.detach()


def adaptive_masks(
    model: nn.Module, x: torch.Tensor, groups: np.ndarray, rule: str, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per image the union of the candidate groups its channel-summed CAM ranks highest ``[B, H, W]``, and which
    groups were chosen ``[B, G]``."""
    with torch.no_grad():
        sal = saliency(model, x).cpu().numpy()
    chosen = select_groups(sal, groups, rule, k)
    return chosen_masks(chosen, groups), chosen


def craft_shard(
    model: nn.Module,
    spec: AttackSpec,
    images: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray | None,
    groups: np.ndarray,
    adaptive: dict[str, Any],
    batch_size: int,
    seed: int,
    first_index: int,
    threads: int,
) -> dict[str, np.ndarray]:
    """One task's share of an attack: ``x_final`` ``[n, 1, H, W]`` of ``images`` (in batches of ``batch_size``) and,
    for the adaptive attack, the groups each image used ``[n, G]``. ``images`` start at test image ``first_index``,
    a multiple of ``batch_size``; each batch's random start is seeded by its own position, so the result does not
    depend on how the test set was sharded."""
    with torch_threads(threads):
        device = select_device()
        model.to(device).eval()
        for p in model.parameters():
            p.requires_grad_(False)
        out, used = [], []
        for start in range(0, len(images), batch_size):
            generator = torch.Generator().manual_seed(derive_seed(seed, "attack", spec.name, first_index + start))
            x = as_tensor(images[start : start + batch_size]).to(device)
            y = as_tensor(labels[start : start + batch_size], np.int64).to(device)
            mask = None
            if spec.mask_source == "fixed":
                mask = as_tensor(masks[start : start + batch_size])[:, None].to(device)
            elif spec.mask_source == "adaptive":
                chosen_mask, chosen = adaptive_masks(model, x, groups, adaptive["rule"], adaptive["k"])
                mask = as_tensor(chosen_mask)[:, None].to(device)
                used.append(chosen)
            out.append(perturb(model, spec, x, y, mask, generator).cpu().numpy())
    result = {"images": np.concatenate(out).astype(np.float32)}
    if used:
        result["chosen"] = np.concatenate(used)
    return result
