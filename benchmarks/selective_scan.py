"""The fast selective scan against the sequential reference, and the cost of Mamba-CL's projected update.

Part 1 times forward + backward of ``fast`` (both linear-scan kernels: ``stepwise``, the CPU default, and
``parallel``) and ``reference`` at batch 2, D 128, N 16, float32, input-dependent B and C with D, z, δ-bias and
softplus on, for each length L, and reports the maximum absolute error of the output and the largest relative error
of any gradient against the reference — and, because both are float32, each one's output error against the same
scan computed in float64. Part 2 times one optimiser step of the continual workload's backbone (d_model 64,
d_inner 128, four blocks) with Mamba-CL's projections against the same step without them, and a whole training
step (batch 128, 28×28) for scale. Medians of ``--repeats`` runs, one process; prints JSON, then a table. Usage::

    python benchmarks/selective_scan.py [--lengths 256,1024,4096] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from fedray.platform.modules.config import MambaConfig
from fedray.platform.modules.ssm import selective_scan, selective_scan_fast
from fedray.platform.optim.null_space import projection_matrix
from fedray.tasks.continual.model import ContinualMamba
from fedray.tasks.continual.null_space_cl import projected_adam


def scan_inputs(length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch, dim, state = 2, 128, 16
    return {
        "u": torch.randn(batch, dim, length, generator=g),
        "delta": 0.5 * torch.rand(batch, dim, length, generator=g),
        "A": -0.5 * torch.rand(dim, state, generator=g),
        "B": torch.randn(batch, state, length, generator=g),
        "C": torch.randn(batch, state, length, generator=g),
        "D": torch.randn(dim, generator=g),
        "z": torch.randn(batch, dim, length, generator=g),
        "delta_bias": 0.5 * torch.rand(dim, generator=g),
    }


def forward_backward(name: str, inputs: dict[str, torch.Tensor]) -> tuple[float, dict[str, torch.Tensor]]:
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    start = time.perf_counter()
    if name == "reference":
        out = selective_scan(**leaves, delta_softplus=True, impl="reference")
    else:
        out = selective_scan_fast(**leaves, delta_softplus=True, method=name.removeprefix("fast-"))
    out.backward(torch.ones_like(out))
    seconds = time.perf_counter() - start
    return seconds, {"out": out.detach(), **{f"d{k}": v.grad for k, v in leaves.items()}}


@torch.no_grad()
def float64_output(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The forward output computed in float64 by the reference: the ground truth both float32 scans round from."""
    return selective_scan(**{k: v.double() for k, v in inputs.items()}, delta_softplus=True, impl="reference")


def scan_part(lengths: list[int], repeats: int, reference_repeats: int) -> list[dict]:
    rows = []
    for length in lengths:
        inputs = scan_inputs(length)
        truth = float64_output(inputs)
        timings, outputs = {}, {}
        for name in ("reference", "fast-stepwise", "fast-parallel"):
            runs = [
                forward_backward(name, inputs) for _ in range(reference_repeats if name == "reference" else repeats)
            ]
            timings[name] = statistics.median(t for t, _ in runs)
            outputs[name] = runs[0][1]
        for name in ("fast-stepwise", "fast-parallel"):
            ref = outputs["reference"]
            errors = {k: float((outputs[name][k] - ref[k]).abs().max()) for k in ref}
            relative = {k: errors[k] / float(ref[k].abs().max()) for k in ref}  # gradients sum over L: scale them
            rows.append({
                "L": length, "impl": name, "seconds": timings[name], "reference_seconds": timings["reference"],
                "speedup": timings["reference"] / timings[name], "max_abs_error_output": errors["out"],
                "max_relative_error_gradients": max(v for k, v in relative.items() if k != "out"),
                "abs_errors": errors, "relative_errors": relative, "max_abs_output": float(truth.abs().max()),
                "output_error_vs_float64": float((outputs[name]["out"].double() - truth).abs().max()),
                "reference_output_error_vs_float64": float((ref["out"].double() - truth).abs().max()),
            })  # fmt: skip
    return rows


def projection_part(repeats: int) -> dict:
    torch.manual_seed(0)
    model = ContinualMamba(MambaConfig(), 1, 28)
    model.freeze_all_but_ssm()
    model.heads.add_task(2)
    eye = torch.eye(128) + 1e-3 * torch.randn(128, 128)
    projections = {e.param: (projection_matrix(eye @ eye.T, 0.9), e.side) for e in model.ssm_parameters()}
    images, labels = torch.rand(128, 1, 28, 28), torch.randint(0, 2, (128,))
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()

    def time_steps(optimizer: torch.optim.Optimizer) -> float:
        optimizer.step()  # state allocation outside the timing
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(20):
                optimizer.step()
            samples.append((time.perf_counter() - start) / 20)
        return statistics.median(samples)

    plain = time_steps(projected_adam(model, 2e-4, 1e-2, 5e-5, {}))
    projected = time_steps(projected_adam(model, 2e-4, 1e-2, 5e-5, projections))
    optimizer = projected_adam(model, 2e-4, 1e-2, 5e-5, projections)
    train = []
    for _ in range(repeats):
        start = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(images), labels).backward()
        optimizer.step()
        train.append(time.perf_counter() - start)
    return {
        "projected_parameters": len(projections),
        "plain_step_ms": plain * 1e3,
        "projected_step_ms": projected * 1e3,
        "projected_over_plain": projected / plain,
        "train_step_ms": statistics.median(train) * 1e3,
        "projection_share_of_train_step": (projected - plain) / statistics.median(train),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="256,1024,4096")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {
        "threads": args.threads,
        "shape": {"batch": 2, "D": 128, "N": 16, "dtype": "float32"},
        "scan": scan_part([int(x) for x in args.lengths.split(",")], args.repeats, args.reference_repeats),
        "projection": projection_part(args.repeats),
    }
    print(json.dumps(result, indent=2))
    print(f"\n{'L':>6} {'impl':<14}{'seconds':>9}{'ref s':>9}{'speed-up':>10}{'|out| max':>11}{'err vs ref':>12}"
          f"{'err vs f64':>12}{'ref vs f64':>12}{'grad rel':>10}")  # fmt: skip
    for r in result["scan"]:
        print(f"{r['L']:>6} {r['impl']:<14}{r['seconds']:>9.4f}{r['reference_seconds']:>9.2f}{r['speedup']:>9.1f}×"
              f"{r['max_abs_output']:>11.1f}{r['max_abs_error_output']:>12.2e}{r['output_error_vs_float64']:>12.2e}"
              f"{r['reference_output_error_vs_float64']:>12.2e}{r['max_relative_error_gradients']:>10.1e}")  # fmt: skip
    p = result["projection"]
    print(f"\noptimiser step: plain {p['plain_step_ms']:.2f} ms, projected {p['projected_step_ms']:.2f} ms "
          f"({p['projected_over_plain']:.2f}×); whole training step {p['train_step_ms']:.0f} ms, of which the "
          f"projection is {100 * p['projection_share_of_train_step']:.1f} %")  # fmt: skip


if __name__ == "__main__":
    main()
