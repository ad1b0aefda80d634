"""What every selective-scan implementation shares: argument checks, discretisation and the output epilogue.

Shapes follow mamba-ssm's ``selective_scan_fn``: ``u, delta, z: [batch, dim, length]``; ``A: [dim, state]``; ``B``
and ``C`` are either constant ``[dim, state]``, input-dependent ``[batch, state, length]`` or grouped
``[batch, groups, state, length]`` (each group serves ``dim // groups`` consecutive channels); ``D, delta_bias:
[dim]``. The scan runs in float32, or in float64 when any input is float64 (mamba-ssm's reference always casts to
float32; keeping float64 lets the parity tests check the algorithms far below float32 rounding).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

Discretization = Literal["mamba", "zoh"]


def compute_dtype(*tensors: torch.Tensor | None) -> torch.dtype:
    """float64 when any input is float64, float32 otherwise."""
    return torch.float64 if any(t is not None and t.dtype == torch.float64 for t in tensors) else torch.float32


def check_shapes(u: torch.Tensor, delta: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    """A one-line ValueError for arguments that do not describe one scan."""
    if u.dim() != 3 or delta.shape != u.shape:
        raise ValueError(
            f"u and delta must both be [batch, dim, length], got {tuple(u.shape)} and {tuple(delta.shape)}"
        )
    batch, dim, length = u.shape
    if A.dim() != 2 or A.shape[0] != dim:
        raise ValueError(f"A must be [dim={dim}, state], got {tuple(A.shape)}")
    state = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        ok = (
            (m.dim() == 2 and tuple(m.shape) == (dim, state))
            or (m.dim() == 3 and tuple(m.shape) == (batch, state, length))
            or (m.dim() == 4 and m.shape[0] == batch and m.shape[2:] == (state, length) and dim % m.shape[1] == 0)
        )
        if not ok:
            raise ValueError(
                f"{name} must be [dim, state], [batch, state, length] or [batch, groups, state, length] "
                f"with groups dividing dim; got {tuple(m.shape)} for u {tuple(u.shape)} and A {tuple(A.shape)}"
            )


def time_major(m: torch.Tensor, dim: int) -> torch.Tensor:
    """B or C broadcastable to the scan's time-major layout ``[length, batch, dim, state]``."""
    if m.dim() == 2:
        return m[None, None]
    if m.dim() == 3:
        return m.permute(2, 0, 1)[:, :, None, :]
    return m.permute(3, 0, 1, 2).repeat_interleave(dim // m.shape[1], dim=2)


def prepare(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None,
    z: torch.Tensor | None,
    delta_bias: torch.Tensor | None,
    delta_softplus: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked inputs in the compute dtype: ``(u, δ after bias and softplus, A, B, C)``."""
    check_shapes(u, delta, A, B, C)
    dtype = compute_dtype(u, delta, A, B, C, D, z, delta_bias)
    delta = effective_delta(delta, delta_bias, delta_softplus, dtype)
    return u.to(dtype), delta, A.to(dtype), B.to(dtype), C.to(dtype)


def effective_delta(
    delta: torch.Tensor, delta_bias: torch.Tensor | None, delta_softplus: bool, dtype: torch.dtype
) -> torch.Tensor:
    """δ in the compute dtype, with the optional bias added before the optional softplus (mamba-ssm's order)."""
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[:, None]
    return F.softplus(delta) if delta_softplus else delta


def discretize(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    discretization: Discretization,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Ā, B̄u)``, both time-major ``[length, batch, dim, state]`` (one contiguous slab per time step, which is
    what both the sequential loop and the parallel scan walk over).

    ``mamba`` is what mamba-ssm's kernel computes: Ā = exp(δA) and B̄ = δB (Euler for B). ``zoh`` is the exact
    zero-order hold of the papers' equations, B̄ = (δA)⁻¹(exp(δA) − I)·δB = (exp(δA) − 1)/A · B, for A ≠ 0.
    """
    delta_t = delta.permute(2, 0, 1).contiguous()[..., None]  # [L, b, dim, 1]; contiguous, so products are too
    u_t = u.permute(2, 0, 1).contiguous()[..., None]
    delta_a = delta_t * A
    decay = torch.exp(delta_a)
    B_t = time_major(B, u.shape[1])
    if discretization == "zoh":
        return decay, torch.expm1(delta_a) / A * B_t * u_t
    return decay, (delta_t * u_t) * B_t


def readout(states: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """y_l = C_l · h_l summed over the state: ``[batch, dim, length]`` from time-major states."""
    return (states * time_major(C, states.shape[2])).sum(dim=-1).permute(1, 2, 0)


def epilogue(
    y: torch.Tensor, u: torch.Tensor, D: torch.Tensor | None, z: torch.Tensor | None, out_dtype: torch.dtype
) -> torch.Tensor:
    """``(y + D ⊙ u) ⊙ SiLU(z)`` (each term optional), cast to the input's dtype."""
    if D is not None:
        y = y + u * D.to(y.dtype)[:, None]
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    return y.to(out_dtype)
