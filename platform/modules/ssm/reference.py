"""The selective scan by its definition: a sequential loop over time, as mamba-ssm's ``selective_scan_ref``.

h_l = Ā_l ⊙ h_{l−1} + B̄_l u_l,  y_l = C_l · h_l, then ``(y + D ⊙ u) ⊙ SiLU(z)``. Slow (one small step per token)
but obviously right; the fast and CUDA implementations are tested against it.
"""

from __future__ import annotations

import torch

from fedray.platform.modules.ssm.common import Discretization, discretize, epilogue, prepare, time_major


def selective_scan_reference(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    discretization: Discretization = "mamba",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Output ``[batch, dim, length]`` (and the last state ``[batch, dim, state]`` when asked)."""
    u_c, delta, A, B, C = prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    decay, drive = discretize(u_c, delta, A, B, discretization)
    readout_c = time_major(C, u.shape[1])
    state = u_c.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for step in range(u.shape[2]):
        state = decay[step] * state + drive[step]
        ys.append((state * readout_c[step if len(readout_c) > 1 else 0]).sum(dim=-1))
    out = epilogue(torch.stack(ys, dim=-1), u_c, D, z, u.dtype)
    return (out, state) if return_last_state else out
