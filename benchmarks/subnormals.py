"""What float32 subnormals cost on the CPU, and what flushing them to zero (``select_device`` does it) gives back.

Late in a long CPU run the gradients of a well-fitted model fall below float32's smallest normal number (1.2e-38),
and Adam's squared-gradient averages do so much earlier (a gradient of 1e-20 squares to 1e-40). x86 arithmetic on
such subnormals takes a slow path. This script times, in one process and side by side, with flushing off and on:

- ``backward``: one backward pass of the attack workload's CNN detector (widths 32/64/128, batch 64, 64×64 grey
  images) with the loss gradient scaled by 1 (normal), 1e-30 (small but normal) and 1e-39 (subnormal);
- ``adam``: one Adam step over 2M parameters with gradients of 1, 1e-20 (subnormal squares) and 1e-39.

Prints one JSON document and a table of milliseconds, the slow-down against scale 1, and what flushing gains.
Usage::

    python benchmarks/subnormals.py [--repeats 5] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from fedray.platform.device import flush_subnormals
from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig

BACKWARD_SCALES = (1.0, 1e-30, 1e-39)
ADAM_SCALES = (1.0, 1e-20, 1e-39)


def _median_ms(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up: allocator, oneDNN primitives
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def backward_case(scale: float) -> Callable[[], None]:
    torch.manual_seed(0)
    model = build_model("cnn", ModelConfig(widths=[32, 64, 128]), 1, 2)
    x = torch.rand(64, 1, 64, 64)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        (model(x) * scale).sum().backward()

    return step


def adam_case(scale: float) -> Callable[[], None]:
    torch.manual_seed(0)
    param = torch.nn.Parameter(torch.randn(2_000_000))
    optimizer = torch.optim.Adam([param], lr=1e-3)
    grad = torch.randn(2_000_000) * scale

    def step() -> None:
        param.grad = grad.clone()
        optimizer.step()

    return step


def measure(repeats: int) -> list[dict]:
    rows = []
    for name, scales, case in (("backward", BACKWARD_SCALES, backward_case), ("adam", ADAM_SCALES, adam_case)):
        for scale in scales:
            timings = {}
            for flush in (False, True):
                torch.set_flush_denormal(False)
                if flush and not flush_subnormals():
                    continue  # this CPU cannot flush subnormals
                timings["flush" if flush else "plain"] = _median_ms(case(scale), repeats)
            rows.append({"case": name, "gradient_scale": scale, **{f"{k}_ms": v for k, v in timings.items()}})
    torch.set_flush_denormal(False)
    for row in rows:
        base = next(r for r in rows if r["case"] == row["case"] and r["gradient_scale"] == 1.0)
        row["plain_slowdown"] = row["plain_ms"] / base["plain_ms"]
        if "flush_ms" in row:
            row["flush_gain"] = row["plain_ms"] / row["flush_ms"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    result = {"threads": args.threads, "repeats": args.repeats, "rows": measure(args.repeats)}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'case':<10}{'gradient':>10}{'plain ms':>11}{'flushed ms':>12}{'slow-down':>11}{'flush gain':>12}")
    for r in result["rows"]:
        flushed = f"{r['flush_ms']:>12.1f}" if "flush_ms" in r else f"{'n/a':>12}"
        gain = f"{r['flush_gain']:>11.1f}×" if "flush_gain" in r else f"{'n/a':>12}"
        print(f"{r['case']:<10}{r['gradient_scale']:>10.0e}{r['plain_ms']:>11.1f}{flushed}"
              f"{r['plain_slowdown']:>10.1f}×{gain}")  # fmt: skip


if __name__ == "__main__":
    main()
