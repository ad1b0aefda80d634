"""Where a trained `sr` diffusion model loses to bicubic: PSNR-Y and pixel MSE of its x̂₀ prediction at every ResShift
step, once with x_t drawn from the forward process around the true high-resolution crop (teacher forcing:
``<method>``) and once along its own sampling chain (``<method> sampled``: the workload's sampler, with noise of its
own), against bicubic and against x_t itself (clipped to [−1, 1]); over all test crops and per quarter of them
ordered by bicubic's PSNR-Y.

Why: a sampled result can only be as good as the last step's x̂₀. Teacher-forced, each step shows what the network has
learnt at that noise level (at the least-noisy step x_t is already close to the truth, so a network below x_t there
has not yet learnt to pass its input through); along the chain, the gap to the teacher-forced value shows how much
the steps' errors compound. ``heldout_loss`` is the teacher-forced MSE averaged over the steps: the training
objective on held-out crops, which compares two networks without any sampling noise.

``--samples K`` also draws K samples per crop (different sampling noise) and splits their mean squared error exactly
into the error of their mean and their spread around it: mean_k ‖s_k − x₀‖² = ‖s̄ − x₀‖² + mean_k ‖s_k − s̄‖². A
sampler that draws from the posterior p(x₀ | y₀) pays the spread on top of the posterior mean's error (in the limit,
twice the minimum MSE), so this shows how much of the sampled deficit comes from drawing a sample at all. Usage::

    python benchmarks/sr_steps.py runs/bench-sr/sr/main --samples 8 --out benchmarks/results/sr_steps.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fedray.platform.config import load_config
from fedray.platform.io import load_arrays
from fedray.platform.metrics.image import by_reference_quantile, per_image_quality
from fedray.platform.modules.diffusion.resshift import ResShiftDiffusion
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.platform.rundir import RunDir
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.data import load_images
from fedray.tasks.sr.models import DIFFUSION_METHODS, build_network, build_resshift
from fedray.tasks.sr.run import test_set

Score = tuple[list[float], float]


def score(hr: np.ndarray, images: torch.Tensor) -> Score:
    """Per-crop PSNR-Y, and the MSE over all pixels of all crops in [−1, 1] (what the networks are trained on: a mean
    over pixels weighs textured crops most, a mean of per-crop PSNR weighs smooth ones)."""
    images = images.clamp(-1, 1)
    mse = float(((images - torch.from_numpy(hr).to(images.dtype)) ** 2).mean())
    return [row["psnr_y"] for row in per_image_quality(hr, images.numpy())], mse


def summarise(scores: dict[str, Score]) -> dict[str, object]:
    """Mean PSNR-Y and MSE per entry, and PSNR-Y per quarter of the crops ordered by bicubic's (hardest first)."""
    psnr = {k: v[0] for k, v in scores.items()}
    return {
        "mean": {k: float(np.mean(v)) for k, v in psnr.items()},
        "mse": {k: v[1] for k, v in scores.items()},
        "by_bicubic_quartile": by_reference_quantile(psnr, "bicubic", 4),
    }


def along_chain(diffusion: ResShiftDiffusion, net: nn.Module, hr: np.ndarray, y0: torch.Tensor) -> dict[int, Score]:
    """:func:`score` of x̂₀ at every step of one sampling chain (fixed noise), by step index."""
    seen: dict[int, Score] = {}

    def record(index: int, x0_hat: torch.Tensor) -> None:
        seen[index] = score(hr, x0_hat)

    diffusion.sample(net, y0, y0, generator=torch.Generator().manual_seed(1), on_step=record)
    return seen


def sample_spread(diffusion: ResShiftDiffusion, net: nn.Module, hr: np.ndarray, y0: torch.Tensor, k: int) -> dict:
    """Per sampler (the workload's ancestral one, and the deterministic DDIM one that TAD-SR distils from the same
    starting noise): PSNR-Y and MSE of one sample and of the mean of ``k`` (noise seeded 1..k), the mean MSE of a
    sample and the spread mean_k ‖s_k − s̄‖² that separates the two."""

    def ancestral(seed: int) -> torch.Tensor:
        return diffusion.sample(net, y0, y0, generator=torch.Generator().manual_seed(seed))

    def ddim(seed: int) -> torch.Tensor:
        return diffusion.ddim_sample(net, y0, y0, torch.randn(y0.shape, generator=torch.Generator().manual_seed(seed)))

    result = {}
    for name, draw in (("ancestral", ancestral), ("ddim", ddim)):
        samples = torch.stack([draw(1 + i) for i in range(k)])
        mean = samples.mean(0)
        one, averaged = score(hr, samples[0]), score(hr, mean)
        result[name] = {
            "k": k,
            "psnr_y": {"one_sample": float(np.mean(one[0])), "mean_of_k": float(np.mean(averaged[0]))},
            "mse": {
                "per_sample": float(np.mean([score(hr, s)[1] for s in samples])),
                "mean_of_k": averaged[1],
                "spread": float(((samples - mean) ** 2).mean()),
            },
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="an sr run directory (its config.yaml and checkpoints/<method>.safetensors)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=0, help="K samples per crop for the spread split (0: skip)")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = RunDir(Path(args.run_dir))
    cfg = load_config(SRConfig, run.config_file)
    hr, _, cond = test_set(cfg, load_images(cfg.data).test)
    x0, y0 = as_tensor(hr), as_tensor(cond)
    diffusion = build_resshift(cfg)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    methods = [m for m in DIFFUSION_METHODS if run.checkpoint(m).is_file()]
    if not methods:
        raise SystemExit(f"{run.path}/checkpoints holds no diffusion method's weights ({', '.join(DIFFUSION_METHODS)})")
    models = {m: load_state_arrays(build_network(cfg, m), load_arrays(run.checkpoint(m))).eval() for m in methods}
    bicubic = score(hr, y0)
    steps = {}
    with torch.no_grad():
        chains = {f"{m} sampled": along_chain(diffusion, net, hr, y0) for m, net in models.items()}
        for index in range(diffusion.num_timesteps):
            t = torch.full((len(x0),), index, dtype=torch.long)
            xt = diffusion.q_sample(x0, y0, t, noise)
            scores = {"bicubic": bicubic, "x_t": score(hr, xt)}
            scores.update({m: score(hr, diffusion.predict_x0(net, xt, t, y0, y0)) for m, net in models.items()})
            if diffusion.skip_weights.any():  # what the x_t skip alone (an untrained network) predicts
                scores["x_t skip"] = score(hr, y0 + diffusion.xt_skip(xt, y0, t))
            scores.update({name: chain[index] for name, chain in chains.items()})
            steps[index] = {"noise_std": diffusion.kappa * float(diffusion.sqrt_etas[index]), **summarise(scores)}
        spread = {m: sample_spread(diffusion, net, hr, y0, args.samples) for m, net in models.items() if args.samples}
    result = {
        "run_dir": str(run.path),
        "scale": cfg.data.scale,
        "test_crops": len(hr),
        "methods": methods,
        "steps": steps,
        "heldout_loss": {m: float(np.mean([row["mse"][m] for row in steps.values()])) for m in methods},
        "sample_spread": spread,
    }
    text = json.dumps(result, indent=1)
    print(text)
    columns = ["bicubic", "x_t", *methods, *(f"{m} sampled" for m in methods)]
    print(
        f"{'t':>3} {'κ√η_t':>6} " + " ".join(f"{c:>18}" for c in columns) + "   (PSNR-Y: all crops / smoothest quarter)"
    )
    for index, row in steps.items():
        smooth = row["by_bicubic_quartile"]["mean"]
        cells = " ".join(f"{row['mean'][c]:>10.2f} / {smooth[c][-1]:>5.2f}" for c in columns)
        print(f"{index:>3} {row['noise_std']:>6.3f} {cells}")
    print(f"{'t':>3} " + " ".join(f"{c:>18}" for c in columns) + "   (MSE over all pixels, [−1, 1])")
    for index, row in steps.items():
        print(f"{index:>3} " + " ".join(f"{row['mse'][c]:>18.5f}" for c in columns))
    print("held-out loss (teacher-forced MSE, mean over t): " + ", ".join(f"{m} {v:.5f}" for m, v in
          result["heldout_loss"].items()))  # fmt: skip
    for m, by_sampler in spread.items():
        for sampler, row in by_sampler.items():
            psnr, mse = row["psnr_y"], row["mse"]
            print(f"{m} {sampler}: one sample {psnr['one_sample']:.2f} dB PSNR-Y, mean of {row['k']} "
                  f"{psnr['mean_of_k']:.2f} dB; MSE per sample {mse['per_sample']:.5f} = mean of {row['k']} "
                  f"{mse['mean_of_k']:.5f} + spread {mse['spread']:.5f} (bicubic {bicubic[1]:.5f})")  # fmt: skip
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
