"""How far a trained `compose` stage-1 base UNet is from generating images: its ε- and x̂₀-error per timestep on
held-out and training composites, and its unconditional DDIM samples with and without x̂₀ clipping (value spread and
share of saturated pixels against the data's).

Why: the stage-2 methods sample through this frozen network, so when their composites are far from the ground truth
this tells whether the base already fails alone (a training-scale problem) or only the conditioning does. Usage::

    python benchmarks/compose_base.py runs/bench-compose/compose/seed0 --out benchmarks/results/compose_base.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from fedray.platform.config import load_config
from fedray.platform.io import load_arrays
from fedray.platform.modules.diffusion.gaussian import GaussianDiffusion
from fedray.platform.modules.diffusion.samplers import ddim_sample
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.state import as_tensor, load_state_arrays
from fedray.platform.rundir import RunDir
from fedray.tasks.compose.config import ComposeConfig
from fedray.tasks.compose.data import load_triplets
from fedray.tasks.compose.model import build_base, build_diffusion

TIMESTEPS = (10, 100, 300, 600, 900, 999)


def value_stats(images: torch.Tensor) -> dict[str, float]:
    """Mean, standard deviation and the share of values at or beyond ±0.99 (saturated after clipping)."""
    return {
        "mean": float(images.mean()),
        "std": float(images.std()),
        "saturated": float((images.abs() > 0.99).float().mean()),
    }


def errors_by_timestep(
    diffusion: GaussianDiffusion, base: UNet, x0: torch.Tensor, generator: torch.Generator
) -> dict[int, dict[str, float]]:
    """Per timestep: MSE of ε̂ against the true noise and of the implied x̂₀ against x₀, on q_sample(x₀, t)."""
    out = {}
    for t in TIMESTEPS:
        steps = torch.full((len(x0),), t)
        noise = torch.randn(x0.shape, generator=generator)
        xt = diffusion.q_sample(x0, steps, noise)
        eps = base(xt, steps)
        x0_hat = diffusion.x0_from_eps(xt, steps, eps)
        out[t] = {"eps_mse": float(((eps - noise) ** 2).mean()), "x0_mse": float(((x0_hat - x0) ** 2).mean())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a compose run directory (its config.yaml and checkpoints/base.safetensors)")
    parser.add_argument("--images", type=int, default=32, help="held-out and training composites, and samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = RunDir(Path(args.run_dir))
    cfg = load_config(ComposeConfig, run.config_file)
    cfg.data.train_triplets, cfg.data.test_triplets = args.images, args.images
    train, test, _ = load_triplets(cfg.data, cfg.seed)
    base = load_state_arrays(build_base(cfg), load_arrays(run.checkpoint("base"))).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        diffusion, respaced = build_diffusion(cfg), build_diffusion(cfg, respaced=True)
        result = {
            "run_dir": str(run.path),
            "data": value_stats(as_tensor(test.gt)),
            "errors": {
                split: errors_by_timestep(diffusion, base, as_tensor(t.gt), generator)
                for split, t in (("test", test), ("train", train))
            },
            "samples": {
                f"ddim{cfg.diffusion.sample_steps}_{'clip' if clip else 'noclip'}": value_stats(
                    ddim_sample(respaced, base, torch.randn(test.gt.shape, generator=generator), clip=clip)
                )
                for clip in (True, False)
            },
        }
    text = json.dumps(result, indent=1)
    print(text)
    print(f"data: std {result['data']['std']:.2f}, saturated {result['data']['saturated']:.1%}")
    for name, stats in result["samples"].items():
        print(f"{name}: std {stats['std']:.2f}, saturated {stats['saturated']:.1%}")
    for split, rows in result["errors"].items():
        print(split + ": " + "  ".join(f"t={t} ε {r['eps_mse']:.4f} x̂₀ {r['x0_mse']:.3f}" for t, r in rows.items()))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
