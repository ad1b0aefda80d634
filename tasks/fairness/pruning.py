"""BPFA — Bias Pruning with Fair Activations (FairFD, eqs. 4–5 and the official ``pruning_pipeline`` notebooks).

Post-hoc and without retraining. For every ``Conv2d``/``Linear`` layer with weights W ``[C_out, C_in, (k_h, k_w)]``:

1. forward hooks record the layer's output on the real calibration faces of each group s; Z_i^s is the L2 norm over
   the spatial map of output channel i's activation map averaged over that group's images (a ``Linear`` output's
   "map" is one value, so Z_i^s = |mean activation|);
2. BIAS_i = std_s(Z_i^s) (population std);
3. PS_ijkm = |W_ijkm| / BIAS_i;
4. in each layer the fraction p of weights with the lowest score is set to zero (unstructured; the lowest
   ⌊p · numel⌋ scores, ties broken by position).

Baseline scores at the same p: ``weig`` = |W|, ``roba`` = 1 / BIAS_i, ``random`` = uniform. A channel with
BIAS_i = 0 (the same response for every group) scores +inf under ``bpfa``/``roba``: it is never pruned first.
Layers the forward pass never reaches (e.g. PFR's personal branch under its shared prediction) have no statistics and
are left as they are; layer biases are never pruned.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from fedray.platform.modules.state import as_tensor
from fedray.platform.seeding import derive_seed

PRUNABLE = (nn.Conv2d, nn.Linear)


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every Conv2d/Linear module by its qualified name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


@torch.no_grad()
def group_activation_norms(
    model: nn.Module, images: np.ndarray, groups: np.ndarray, num_groups: int, batch_size: int = 256
) -> dict[str, np.ndarray]:
    """Z ``[num_groups, C_out]`` per layer: the L2 norm over space of each channel's activation map averaged over a
    group's images. Only layers the forward pass reached are returned."""
    model.eval()
    layers = prunable_layers(model)
    sums: dict[str, list[torch.Tensor | None]] = {name: [None] * num_groups for name in layers}
    current = {"group": 0}

    def hook(name: str):
        def record(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
            total = output.detach().double().sum(dim=0)  # [C, *spatial]
            slot = sums[name]
            g = current["group"]
            slot[g] = total if slot[g] is None else slot[g] + total

        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in layers.items()]
    device = next(model.parameters()).device
    counts = np.zeros(num_groups, dtype=np.int64)
    try:
        for g in range(num_groups):
            own = images[groups == g]
            if len(own) == 0:
                raise ValueError(f"group {g} has no real calibration images")
            current["group"] = g
            counts[g] = len(own)
            for start in range(0, len(own), batch_size):
                model(as_tensor(own[start : start + batch_size], np.float32).to(device))
    finally:
        for handle in handles:
            handle.remove()
    out = {}
    for name, slot in sums.items():
        if any(s is None for s in slot):
            continue
        means = [s / int(n) for s, n in zip(slot, counts, strict=True)]  # type: ignore[operator]
        out[name] = np.stack([m.reshape(m.shape[0], -1).norm(dim=1).cpu().numpy() for m in means])
    return out


def channel_bias(norms: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """BIAS_i = std over groups of Z_i^s (ddof 0), per layer ``[C_out]``."""
    return {name: z.std(axis=0) for name, z in norms.items()}


def pruning_scores(model: nn.Module, bias: dict[str, np.ndarray], kind: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Per layer with statistics, a score of W's shape; the lowest scores are pruned first."""
    layers = prunable_layers(model)
    out = {}
    for name, b in bias.items():
        w = layers[name].weight.detach().abs().double().cpu()
        per_channel = torch.from_numpy(b).double().reshape(-1, *([1] * (w.dim() - 1))).expand_as(w)
        zero = per_channel == 0
        if kind == "bpfa":
            score = torch.where(zero, torch.inf, w / torch.where(zero, 1.0, per_channel))
        elif kind == "weig":
            score = w
        elif kind == "roba":
            score = torch.where(zero, torch.inf, 1.0 / torch.where(zero, 1.0, per_channel))
        elif kind == "random":
            generator = torch.Generator().manual_seed(derive_seed(seed, "random-prune", name) % 2**63)
            score = torch.rand(w.shape, generator=generator, dtype=torch.float64)
        else:
            raise ValueError(f"unknown pruning score {kind!r}; known: bpfa, weig, roba, random")
        out[name] = score.contiguous()
    return out


@torch.no_grad()
def prune(model: nn.Module, scores: dict[str, torch.Tensor], rate: float) -> tuple[nn.Module, dict[str, float]]:
    """A copy of ``model`` with, in every scored layer, the ⌊rate · numel⌋ lowest-scoring weights set to zero; and
    the fraction of each layer's weights that this zeroed."""
    if not 0 <= rate <= 1:
        raise ValueError(f"pruning rate must lie in [0, 1], got {rate}")
    pruned = copy.deepcopy(model)
    layers = prunable_layers(pruned)
    fractions = {}
    for name, score in scores.items():
        weight = layers[name].weight
        flat = score.flatten()
        k = int(np.floor(rate * flat.numel() + 1e-9))
        order = torch.argsort(flat, stable=True)[:k]
        weight.view(-1)[order.to(weight.device)] = 0.0
        fractions[name] = k / flat.numel()
    return pruned, fractions
