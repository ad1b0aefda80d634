"""The fast selective scan in pure torch (forward and backward), for CPUs and any device without mamba-ssm.

Three things make it fast where the reference is slow. Tensors are time-major (``[L, batch, dim, state]``), so each
time step is one contiguous slab. The linear recurrence h_l = a_l ⊙ h_{l−1} + b_l runs as one fused in-place
multiply-add per step (``stepwise``, O(L) work, best on CPUs) or as a Hillis–Steele scan of ⌈log₂ L⌉ whole-tensor
steps (``parallel``, O(log L) depth, for GPUs). And the backward pass is not autograd through those steps but
another linear recurrence run backwards in time: with g_l = ∂L/∂h_l (total), g_l = ∂L/∂h_l (direct) + a_{l+1} g_{l+1},
then ∂L/∂b_l = g_l and ∂L/∂a_l = g_l ⊙ h_{l−1}; a custom autograd function keeps only ``a`` and ``h`` for it.
Since 0 < a_l ≤ 1 (Ā = exp(δA), A < 0, δ ≥ 0) only bounded products and sums occur: nothing overflows.
"""

from __future__ import annotations

from typing import Literal

import torch

from fedray.platform.modules.ssm.common import Discretization, discretize, epilogue, prepare, readout

ScanMethod = Literal["auto", "stepwise", "parallel"]


def _stepwise(a: torch.Tensor, h: torch.Tensor, reverse: bool) -> torch.Tensor:
    """O(L) work: one fused in-place multiply-add per time step on a contiguous slab (best on CPUs)."""
    if reverse:
        for step in range(len(h) - 2, -1, -1):
            h[step].addcmul_(a[step + 1], h[step + 1])
    else:
        for step in range(1, len(h)):
            h[step].addcmul_(a[step], h[step - 1])
    return h


def _parallel(a: torch.Tensor, h: torch.Tensor, reverse: bool) -> torch.Tensor:
    """O(log L) depth (Hillis–Steele): ⌈log₂ L⌉ whole-tensor steps, for devices where launches, not bytes, cost."""
    if reverse:  # the adjoint uses a_{l+1} at step l: shift once, then it is the plain backward recurrence
        shifted = torch.zeros_like(a)
        shifted[:-1] = a[1:]
        a = shifted
    else:
        a = a.clone()
    offset = 1
    while offset < len(h):
        # each product is formed in full before the overlapping in-place write
        if reverse:
            h[:-offset] += a[:-offset] * h[offset:]
            if offset * 2 < len(h):
                a[:-offset] = a[:-offset] * a[offset:]
        else:
            h[offset:] += a[offset:] * h[:-offset]
            if offset * 2 < len(h):
                a[offset:] = a[offset:] * a[:-offset]
        offset *= 2
    return h


def linear_scan(
    a: torch.Tensor, b: torch.Tensor, reverse: bool = False, method: ScanMethod = "auto", inplace: bool = False
) -> torch.Tensor:
    """All states of h_l = a_l h_{l−1} + b_l (h_{−1} = 0) along the first dimension, without autograd.

    ``reverse`` runs the adjoint recurrence backwards in time, g_l = a_{l+1} g_{l+1} + b_l (g_L = 0), which is how
    gradients flow through the forward one. ``auto`` is ``parallel``
    on CUDA and ``stepwise`` elsewhere (on two CPU cores the stepwise loop is 4–13× faster, see
    ``benchmarks/selective_scan.py``). ``inplace`` overwrites ``b`` with the states instead of copying it.
    """
    if method == "auto":
        method = "parallel" if a.is_cuda else "stepwise"
    kernel = _parallel if method == "parallel" else _stepwise
    return kernel(a, b if inplace else b.clone(), reverse)


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, a: torch.Tensor, b: torch.Tensor, method: ScanMethod
    ) -> torch.Tensor:
        h = linear_scan(a, b, method=method)
        ctx.save_for_backward(a, h)
        ctx.method = method
        return h

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, None]:
        a, h = ctx.saved_tensors
        grad_b = linear_scan(a, grad_h.contiguous(), reverse=True, method=ctx.method)
        grad_a = torch.zeros_like(a)
        grad_a[1:] = grad_b[1:] * h[:-1]
        return grad_a, grad_b, None


class _FusedSelectiveScan(torch.autograd.Function):
    """Discretisation, scan and read-out in one function with a hand-written backward, for input-dependent B and C
    (``[batch, state, length]``) and mamba-ssm's discretisation — the Mamba block's case.

    Autograd through the broadcast products would materialise and reduce several ``[L, b, dim, state]`` tensors
    per step of the chain rule; here only Ā and the states are kept, read-outs and the gradients of B, C and δu are
    batched matrix products, and the sum over the state never forms a temporary.
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx,
        u: torch.Tensor,
        delta: torch.Tensor,
        A: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        method: ScanMethod,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u_t, delta_t = u.permute(2, 0, 1).contiguous(), delta.permute(2, 0, 1).contiguous()  # [L, b, dim]
        B_t, C_t = B.permute(2, 0, 1).contiguous(), C.permute(2, 0, 1).contiguous()  # [L, b, state]
        decay = torch.exp(delta_t[..., None] * A)  # [L, b, dim, state]
        states = linear_scan(decay, (delta_t * u_t)[..., None] * B_t[:, :, None, :], method=method, inplace=True)
        y = torch.matmul(states, C_t[..., None]).squeeze(-1)  # [L, b, dim]
        ctx.save_for_backward(u_t, delta_t, A, B_t, C_t, decay, states)
        ctx.method = method
        return y.permute(1, 2, 0), states[-1]

    @staticmethod
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad_y: torch.Tensor, grad_last: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, ...]:
        u_t, delta_t, A, B_t, C_t, decay, states = ctx.saved_tensors
        grad_y = grad_y.permute(2, 0, 1).contiguous()  # [L, b, dim]
        grad_C = torch.matmul(grad_y[:, :, None, :], states).squeeze(-2)  # [L, b, state]
        grad_states = grad_y[..., None] * C_t[:, :, None, :]
        if grad_last is not None:
            grad_states[-1] += grad_last
        grad_drive = linear_scan(decay, grad_states, reverse=True, method=ctx.method, inplace=True)
        grad_du = torch.matmul(grad_drive, B_t[..., None]).squeeze(-1)  # ∂/∂(δu): [L, b, dim]
        grad_B = torch.matmul((delta_t * u_t)[:, :, None, :], grad_drive).squeeze(-2)  # [L, b, state]
        grad_delta_a = torch.zeros_like(decay)  # ∂/∂(δA) = ∂/∂Ā ⊙ Ā, with ∂/∂Ā_l = g_l ⊙ h_{l−1}
        torch.mul(grad_drive[1:], states[:-1], out=grad_delta_a[1:])
        grad_delta_a.mul_(decay)
        # elementwise products and reductions: einsum would permute these large tensors into matmul layout first
        grad_A = (grad_delta_a * delta_t[..., None]).sum(dim=(0, 1))
        grad_delta = grad_du * u_t + (grad_delta_a * A).sum(dim=-1)
        grad_u = grad_du * delta_t
        return (
            grad_u.permute(1, 2, 0),
            grad_delta.permute(1, 2, 0),
            grad_A,
            grad_B.permute(1, 2, 0),
            grad_C.permute(1, 2, 0),
            None,
        )


def selective_scan_fast(
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
    method: ScanMethod = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Same contract and numbers as :func:`~fedray.platform.modules.ssm.reference.selective_scan_reference`."""
    u_c, delta, A, B, C = prepare(u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    if discretization == "mamba" and B.dim() == 3 and C.dim() == 3:
        y, last = _FusedSelectiveScan.apply(u_c, delta, A, B, C, method)
    else:
        decay, drive = discretize(u_c, delta, A, B, discretization)
        states = _LinearScan.apply(decay, drive, method)
        y, last = readout(states, C), states[-1]
    out = epilogue(y, u_c, D, z, u.dtype)
    return (out, last) if return_last_state else out
