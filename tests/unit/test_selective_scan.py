"""The fast selective scan against the sequential reference: outputs, last states and every gradient.

Inputs are drawn as in mamba-ssm's own scan tests (A = −0.5·U(0,1), δ = 0.5·U(0,1), δ-bias = 0.5·U(0,1)) and the
float32 tolerances are theirs: (rtol, atol) = (6e-4, 2e-3) for outputs and input gradients (×2 for u, ×5/×10 for δ),
(1e-3, 1e-3) for weight gradients (raised to the output tolerance when z is present, atol ×5 for A).
"""

from __future__ import annotations

import types

import pytest
import torch

from fedray.platform.modules.ssm import linear_scan, resolve_impl, selective_scan, selective_scan_fast

OPTION_SETS = {
    "plain": {},
    "D": {"has_D": True},
    "z": {"has_z": True},
    "bias": {"has_bias": True},
    "softplus": {"softplus": True},
    "all": {"has_D": True, "has_z": True, "has_bias": True, "softplus": True},
    "all-zoh": {"has_D": True, "has_z": True, "has_bias": True, "softplus": True, "zoh": True},
}
BC_KINDS = {  # (B, C): constant [dim, state], variable [batch, state, L], grouped [batch, groups, state, L]
    "const-const": ("const", "const"),
    "var-var": ("var", "var"),
    "const-var": ("const", "var"),
    "grouped": ("grouped", "grouped"),
}


def _matrix(kind: str, batch: int, dim: int, state: int, length: int, dtype: torch.dtype) -> torch.Tensor:
    shape = {"const": (dim, state), "var": (batch, state, length), "grouped": (batch, 2, state, length)}[kind]
    return torch.randn(*shape, dtype=dtype)


def _inputs(dtype: torch.dtype, bc: tuple[str, str], length: int, options: dict[str, bool]) -> dict:
    batch, dim, state = 2, 4, 8
    return {
        "u": torch.randn(batch, dim, length, dtype=dtype),
        "delta": 0.5 * torch.rand(batch, dim, length, dtype=dtype),
        "A": -0.5 * torch.rand(dim, state, dtype=dtype),
        "B": _matrix(bc[0], batch, dim, state, length, dtype),
        "C": _matrix(bc[1], batch, dim, state, length, dtype),
        "D": torch.randn(dim, dtype=dtype) if options.get("has_D") else None,
        "z": torch.randn(batch, dim, length, dtype=dtype) if options.get("has_z") else None,
        "delta_bias": 0.5 * torch.rand(dim, dtype=dtype) if options.get("has_bias") else None,
    }


def _run(impl: str, tensors: dict, options: dict[str, bool], grad_out: torch.Tensor | None = None):
    """``impl`` is ``reference``, ``cuda`` or ``fast-<method>`` (the fast scan with one linear-scan kernel)."""
    leaves = {k: (v.clone().requires_grad_() if v is not None else None) for k, v in tensors.items()}
    kwargs = {
        "delta_softplus": options.get("softplus", False),
        "return_last_state": True,
        "discretization": "zoh" if options.get("zoh") else "mamba",
    }
    if impl.startswith("fast-"):
        out, last = selective_scan_fast(**leaves, **kwargs, method=impl.removeprefix("fast-"))
    else:
        out, last = selective_scan(**leaves, **kwargs, impl=impl)
    grad_out = torch.randn_like(out) if grad_out is None else grad_out
    out.backward(grad_out)
    grads = {k: v.grad for k, v in leaves.items() if v is not None}
    return out.detach(), last.detach(), grads, grad_out


def _tolerances(dtype: torch.dtype, has_z: bool) -> dict[str, tuple[float, float]]:
    if dtype == torch.float64:
        return {k: (1e-9, 1e-9) for k in ("out", "u", "delta", "A", "B", "C", "D", "z", "delta_bias")}
    rtol, atol = 6e-4, 2e-3
    rtolw, atolw = (max(1e-3, rtol), max(1e-3, atol)) if has_z else (1e-3, 1e-3)
    return {
        "out": (rtol, atol),
        "u": (rtol * 2, atol * 2),
        "delta": (rtol * 5, atol * 10),
        "A": (rtolw, atolw * 5),
        "B": (rtol, atol),
        "C": (rtol, atol),
        "D": (rtolw, atolw),
        "z": (rtolw, atolw),
        "delta_bias": (rtolw, atolw),
    }


@pytest.mark.parametrize("length", [1, 33, 128])
@pytest.mark.parametrize("option_set", list(OPTION_SETS))
@pytest.mark.parametrize("bc_kind", list(BC_KINDS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", ["stepwise", "parallel"])
def test_fast_scan_matches_reference(method, dtype, bc_kind, option_set, length):
    torch.manual_seed(0)
    options = OPTION_SETS[option_set]
    tensors = _inputs(dtype, BC_KINDS[bc_kind], length, options)
    out_ref, last_ref, grads_ref, grad_out = _run("reference", tensors, options)
    out, last, grads, _ = _run(f"fast-{method}", tensors, options, grad_out)
    tol = _tolerances(dtype, bool(options.get("has_z")))
    assert out.dtype == dtype and out.shape == tensors["u"].shape
    torch.testing.assert_close(out, out_ref, rtol=tol["out"][0], atol=tol["out"][1])
    torch.testing.assert_close(last, last_ref, rtol=tol["out"][0], atol=tol["out"][1])
    assert set(grads) == set(grads_ref)
    for name, grad in grads.items():
        rtol, atol = tol[name]
        torch.testing.assert_close(grad, grads_ref[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"d{n}: {m}")


def test_zoh_differs_from_euler_and_tends_to_it_for_small_steps():
    """The two discretisations are different computations, and agree to first order in δ."""
    torch.manual_seed(1)
    tensors = _inputs(torch.float64, ("var", "var"), 16, {})
    euler = selective_scan(**tensors, impl="reference")
    zoh = selective_scan(**tensors, impl="reference", discretization="zoh")
    assert (euler - zoh).abs().max() > 1e-4

    def relative_gap(scale: float) -> float:
        scaled = dict(tensors, delta=tensors["delta"] * scale)
        euler = selective_scan(**scaled, impl="reference")
        zoh = selective_scan(**scaled, impl="reference", discretization="zoh")
        return float((euler - zoh).abs().max() / euler.abs().max())

    # B̄ differs by a factor (exp(δA) − 1)/(δA) = 1 + O(δA): a 100× smaller δ gives a ~100× smaller gap
    assert relative_gap(1e-4) < relative_gap(1e-2) / 50


def test_linear_scan_solves_the_recurrence():
    torch.manual_seed(2)
    a, b = torch.rand(50, 3, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    expected, h = torch.zeros_like(b), torch.zeros(3, dtype=torch.float64)
    for step in range(50):
        h = a[step] * h + b[step]
        expected[step] = h
    backwards, g = torch.zeros_like(b), torch.zeros(3, dtype=torch.float64)  # the adjoint: g_l = a_{l+1} g_{l+1} + b_l
    for step in reversed(range(50)):
        g = (a[step + 1] * g if step + 1 < 50 else 0) + b[step]
        backwards[step] = g
    a_before, b_before = a.clone(), b.clone()
    for method in ("stepwise", "parallel"):
        torch.testing.assert_close(linear_scan(a, b, method=method), expected)
        torch.testing.assert_close(linear_scan(a, b, reverse=True, method=method), backwards)
    assert torch.equal(a, a_before) and torch.equal(b, b_before)  # the inputs are not modified in place


def test_scan_is_stable_over_long_sequences_with_strong_decay():
    """Large δ·|A| drives Ā to 0: no overflow or NaN, where a cumulative-sum formulation would blow up."""
    torch.manual_seed(3)
    tensors = _inputs(torch.float32, ("var", "var"), 2048, {})
    tensors["delta"] = tensors["delta"] * 200
    out = selective_scan(**tensors, impl="fast")
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, selective_scan(**tensors, impl="reference"), rtol=6e-4, atol=2e-3)


def test_auto_picks_fast_without_cuda_and_names_bad_choices():
    u = torch.zeros(1, 2, 3)
    if not torch.cuda.is_available():
        assert resolve_impl("auto", u) == "fast"
    assert resolve_impl("auto", u, "zoh") == "fast"
    with pytest.raises(ValueError, match="unknown selective-scan implementation 'jax'"):
        resolve_impl("jax", u)
    with pytest.raises(ValueError, match="only computes mamba-ssm's discretisation"):
        resolve_impl("cuda", u, "zoh")


def test_auto_takes_the_kernel_only_for_cuda_inputs_of_a_dtype_it_computes(monkeypatch):
    from fedray.platform.modules.ssm import cuda

    monkeypatch.setattr(cuda.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "load_kernel", lambda: object())  # mamba-ssm "installed"

    def on_gpu(dtype: torch.dtype):  # stands in for a CUDA tensor: the rule reads only these two attributes
        return types.SimpleNamespace(is_cuda=True, dtype=dtype)

    assert all(resolve_impl("auto", on_gpu(d)) == "cuda" for d in (torch.float32, torch.float16, torch.bfloat16))
    assert resolve_impl("auto", on_gpu(torch.float64)) == "fast"  # float64 parity runs: the kernel asserts on it
    assert resolve_impl("auto", torch.zeros(1, 2, 3)) == "fast"  # a CPU tensor
    assert resolve_impl("auto", on_gpu(torch.float32), "zoh") == "fast"


def test_cuda_choice_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA present: covered by the gpu test")
    tensors = _inputs(torch.float32, ("var", "var"), 4, {})
    with pytest.raises(RuntimeError, match="needs mamba-ssm"):
        selective_scan(**tensors, impl="cuda")


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("delta", torch.zeros(2, 4, 5), "u and delta"),
        ("A", torch.zeros(3, 8), "A must be"),
        ("B", torch.zeros(2, 8, 5), "B must be"),
        ("C", torch.zeros(2, 3, 8, 6), "C must be"),
    ],
)
def test_shape_mismatches_are_one_line_errors(name, bad, message):
    tensors = _inputs(torch.float32, ("var", "var"), 6, {})
    tensors[name] = bad
    with pytest.raises(ValueError, match=message):
        selective_scan(**tensors, impl="fast")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("option_set", ["plain", "all"])
def test_cuda_scan_matches_reference(option_set):
    pytest.importorskip("mamba_ssm", reason="needs the cuda extra (mamba-ssm)")
    torch.manual_seed(0)
    options = OPTION_SETS[option_set]
    tensors = {
        k: (v.cuda() if v is not None else None)
        for k, v in _inputs(torch.float32, ("var", "var"), 256, options).items()
    }
    assert resolve_impl("auto", tensors["u"]) == "cuda"
    out_ref, last_ref, grads_ref, grad_out = _run("reference", tensors, options)
    out, last, grads, _ = _run("cuda", tensors, options, grad_out)
    tol = _tolerances(torch.float32, bool(options.get("has_z")))
    torch.testing.assert_close(out, out_ref, rtol=tol["out"][0], atol=tol["out"][1])
    torch.testing.assert_close(last, last_ref, rtol=tol["out"][0], atol=tol["out"][1])
    for name, grad in grads.items():
        torch.testing.assert_close(grad, grads_ref[name], rtol=tol[name][0], atol=tol[name][1])
