"""Adam whose *update* (not gradient) is multiplied by a per-parameter matrix: Mamba-CL's ModAdam.

u = lr · m̂ / (√v̂ + ε) is computed as in Adam (L2 weight decay is added to the gradient first, so it is projected
too); then u ← u·H for weights stored out×in whose input dimension H acts on (``right``), or u ← H·u for
parameters whose first dimension it acts on (``left``, A_log); θ ← θ − u. Parameters without a matrix take plain
Adam steps. Projecting the gradient instead would be undone by Adam's per-coordinate scaling.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Literal

import torch

Side = Literal["left", "right"]


class ProjectedAdam(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        projections: dict[torch.nn.Parameter, tuple[torch.Tensor, Side]] | None = None,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self.projections: dict[torch.nn.Parameter, tuple[torch.Tensor, Side]] = {}
        for param, (matrix, side) in (projections or {}).items():
            self.set_projection(param, matrix, side)

    def set_projection(self, param: torch.nn.Parameter, matrix: torch.Tensor, side: Side) -> None:
        """Project ``param``'s updates by ``matrix`` from the ``side`` whose dimension it matches."""
        axis = 0 if side == "left" else -1
        if matrix.shape != (param.shape[axis], param.shape[axis]):
            raise ValueError(
                f"projection {tuple(matrix.shape)} does not act on dimension {axis} of a {tuple(param.shape)} parameter"
            )
        self.projections[param] = (matrix.to(param.device, param.dtype), side)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                grad = param.grad
                if group["weight_decay"]:
                    grad = grad.add(param, alpha=group["weight_decay"])
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(param)
                    state["exp_avg_sq"] = torch.zeros_like(param)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias1 = 1 - beta1 ** state["step"]
                bias2 = 1 - beta2 ** state["step"]
                denom = (exp_avg_sq.sqrt() / math.sqrt(bias2)).add_(group["eps"])
                update = exp_avg / denom * (group["lr"] / bias1)
                if param in self.projections:
                    matrix, side = self.projections[param]
                    update = matrix @ update if side == "left" else update @ matrix
                param.sub_(update)
        return loss
