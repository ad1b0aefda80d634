"""Mamba-CL: covariances of each block's SSM inputs over a finished task, and the projectors they define.

Per block and per batch of the task's training set (frozen model, eval mode), with tokens x ``[b, L, D]``, step
sizes δ ``[b, L, D]`` and the gated scan output y ``[b, L, D]`` that enters out_proj:

- ``x``  (W_δ and W_C): XᵀX / (b·L) over the b·L token rows;
- ``B``  (W_B): MᵀM / (b·D), where each image contributes the D rows of M = δᵀx (row i = Σ_l δ_{l,i} x_l);
- ``A``  (A_log): δᵀδ / (b·L);
- ``out`` (out_proj): YᵀY / (b·L).

These terms are summed over batches; across tasks the new sum is added (``sum``) or averaged with the old one by
sample count (``mean``).
"""

from __future__ import annotations

import numpy as np
import torch

from fedray.platform.optim.null_space import projection_matrix
from fedray.platform.optim.projected_adam import ProjectedAdam
from fedray.tasks.continual.model import ContinualMamba

COVARIANCE_OF_PART = {"delta": "x", "C": "x", "B": "B", "A": "A", "out": "out"}


def batch_covariances(record: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The four per-batch terms of one block from what it recorded (float64)."""
    tokens, delta, gated = (record[k].double() for k in ("tokens", "delta", "gated"))
    b, length, dim = tokens.shape
    rows = tokens.reshape(-1, dim)
    weighted = delta.transpose(1, 2) @ tokens  # [b, D, D]: row i of image k is Σ_l δ_{l,i} x_l
    stacked = weighted.reshape(-1, dim)
    steps, out = delta.reshape(-1, dim), gated.reshape(-1, dim)
    return {
        "x": rows.T @ rows / (b * length),
        "B": stacked.T @ stacked / (b * dim),
        "A": steps.T @ steps / (b * length),
        "out": out.T @ out / (b * length),
    }


@torch.no_grad()
def task_covariances(
    model: ContinualMamba, images: torch.Tensor, batch_size: int
) -> tuple[dict[str, torch.Tensor], int]:
    """Σ over batches of :func:`batch_covariances`, per block (keys ``"<block>.<kind>"``), and the batch count."""
    model.eval()
    blocks = model.blocks()
    totals: dict[str, torch.Tensor] = {}
    batches = 0
    for start in range(0, len(images), batch_size):
        batches += 1
        for block in blocks:
            block.record = {}
        model.backbone(images[start : start + batch_size])
        for index, block in enumerate(blocks):
            for kind, term in batch_covariances(block.record).items():
                key = f"{index}.{kind}"
                totals[key] = totals[key] + term if key in totals else term
    for block in blocks:
        block.record = None
    return totals, batches


class NullSpaceState:
    """Accumulated covariances (and the samples behind them) across the tasks seen so far."""

    def __init__(self, accumulate: str = "sum") -> None:
        self.accumulate = accumulate
        self.covariances: dict[str, torch.Tensor] = {}
        self.samples = 0

    def add_task(self, covariances: dict[str, torch.Tensor], samples: int, batches: int) -> None:
        """Fold in a task's summed batch terms: added as they are (``sum``), or as their per-batch mean weighted by
        the task's sample count (``mean``)."""
        for key, value in covariances.items():
            value = value.cpu()  # kept on the CPU whatever the model's device: checkpoints and restores mix freely
            if self.accumulate == "mean":
                value = value / batches
                old = self.covariances.get(key, torch.zeros_like(value))
                self.covariances[key] = (old * self.samples + value * samples) / (self.samples + samples)
            else:
                self.covariances[key] = self.covariances[key] + value if key in self.covariances else value.clone()
        self.samples += samples

    def projections(self, model: ContinualMamba, parts: list[str], eta: float, normalize: bool) -> dict:
        """``{parameter: (H, side)}`` for the projected parts of every block (empty before the first task ends)."""
        if not self.covariances:
            return {}
        matrices: dict[str, torch.Tensor] = {}
        out = {}
        for entry in model.ssm_parameters():
            if entry.part not in parts:
                continue
            key = f"{entry.block}.{COVARIANCE_OF_PART[entry.part]}"
            if key not in matrices:
                matrices[key] = projection_matrix(self.covariances[key], eta, normalize).float()
            out[entry.param] = (matrices[key], entry.side)
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"cov.{k}": v.numpy() for k, v in self.covariances.items()}
        out["cov_samples"] = np.asarray([self.samples], dtype=np.int64)
        return out

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self.covariances = {
            k.removeprefix("cov."): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("cov.")
        }
        self.samples = int(arrays["cov_samples"][0]) if "cov_samples" in arrays else 0


def projected_adam(
    model: ContinualMamba, lr: float, head_lr: float, weight_decay: float, projections: dict
) -> ProjectedAdam:
    """Mamba-CL's optimiser: SSM parameters at ``lr`` with their projections, heads at ``head_lr`` unprojected."""
    ssm = [entry.param for entry in model.ssm_parameters()]
    return ProjectedAdam(
        [{"params": ssm, "lr": lr}, {"params": list(model.heads.parameters()), "lr": head_lr}],
        lr=lr,
        weight_decay=weight_decay,
        projections=projections,
    )
