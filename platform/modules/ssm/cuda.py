"""mamba-ssm's fused CUDA selective scan, used when it is installed (the ``cuda`` extra) and the input is on a GPU.

mamba-ssm cannot even be imported without its compiled extension, so the import is attempted lazily, once, and a
failure only means the kernel is unavailable — fedray never needs mamba-ssm to import or run.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import torch


@cache
def load_kernel() -> Callable[..., Any] | None:
    """mamba-ssm's ``selective_scan_fn``, or None when mamba-ssm (or its CUDA extension) is missing."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except Exception:  # noqa: BLE001 - ImportError, or the extension failing to load without CUDA
        return None
    return selective_scan_fn


# The input dtypes mamba-ssm's kernel computes (it asserts on anything else): float64 parity runs stay on ``fast``.
KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def cuda_scan_available(u: torch.Tensor | None = None) -> bool:
    """True when the kernel is importable, CUDA is up, and ``u`` (if given) is a CUDA tensor of a dtype the kernel
    computes (:data:`KERNEL_DTYPES`)."""
    if not torch.cuda.is_available() or (u is not None and (not u.is_cuda or u.dtype not in KERNEL_DTYPES)):
        return False
    return load_kernel() is not None


def selective_scan_cuda(
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
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The fused kernel (Euler B̄ only, as mamba-ssm computes it)."""
    kernel = load_kernel()
    if kernel is None or not u.is_cuda:
        raise RuntimeError("the cuda selective scan needs mamba-ssm (pip install 'fedray[cuda]') and CUDA tensors")
    if u.dtype not in KERNEL_DTYPES:
        raise RuntimeError(f"the cuda selective scan computes float32, float16 or bfloat16, not {u.dtype}; use 'fast'")
    contiguous = [t.contiguous() if t is not None else None for t in (u, delta, A, B, C, D, z, delta_bias)]
    return kernel(
        *contiguous[:6],
        z=contiguous[6],
        delta_bias=contiguous[7],
        delta_softplus=delta_softplus,
        return_last_state=return_last_state,
    )
