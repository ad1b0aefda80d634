"""The selective scan of Mamba behind one function, with three interchangeable implementations.

``reference`` is the sequential definition, ``fast`` a parallel scan in pure torch (CPU and any GPU), ``cuda``
mamba-ssm's fused kernel. ``impl="auto"`` picks ``cuda`` for CUDA tensors when mamba-ssm is installed and the
discretisation is mamba-ssm's own, and ``fast`` otherwise.
"""

from __future__ import annotations

from typing import Literal

import torch

from fedray.platform.modules.ssm.common import Discretization
from fedray.platform.modules.ssm.cuda import cuda_scan_available, selective_scan_cuda
from fedray.platform.modules.ssm.fast import ScanMethod, linear_scan, selective_scan_fast
from fedray.platform.modules.ssm.reference import selective_scan_reference

ScanImpl = Literal["auto", "reference", "fast", "cuda"]
SCAN_IMPLS: tuple[str, ...] = ("auto", "reference", "fast", "cuda")

__all__ = [
    "SCAN_IMPLS",
    "Discretization",
    "ScanImpl",
    "ScanMethod",
    "cuda_scan_available",
    "linear_scan",
    "resolve_impl",
    "selective_scan",
    "selective_scan_fast",
    "selective_scan_reference",
]


def resolve_impl(impl: str, u: torch.Tensor, discretization: Discretization = "mamba") -> str:
    """The implementation ``impl`` stands for with input ``u``; ``cuda`` asked for where it cannot run is an error."""
    if impl not in SCAN_IMPLS:
        raise ValueError(f"unknown selective-scan implementation {impl!r}; choose one of {', '.join(SCAN_IMPLS)}")
    if impl == "auto":
        return "cuda" if discretization == "mamba" and cuda_scan_available(u) else "fast"
    if impl == "cuda" and discretization != "mamba":
        raise ValueError("the cuda selective scan only computes mamba-ssm's discretisation (discretization='mamba')")
    return impl


def selective_scan(
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
    impl: str = "auto",
    discretization: Discretization = "mamba",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Mamba's selective scan (shapes as mamba-ssm's ``selective_scan_fn``, see :mod:`.common`)."""
    chosen = resolve_impl(impl, u, discretization)
    if chosen == "cuda":
        return selective_scan_cuda(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    scan = selective_scan_reference if chosen == "reference" else selective_scan_fast
    return scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state, discretization)
