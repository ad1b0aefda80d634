"""What the EMA decay warm-up changes in a short run: one ``sr`` method trained once, evaluated with its raw weights,
with a constant-decay EMA (no warm-up) and with the warmed-up EMA every workload uses (the run is
``train_with_ema`` itself), against bicubic, on the
held-out test crops. Prints one JSON document and a table. Usage::

    python benchmarks/ema_warmup.py --method dit_sr --extra resshift.residual=false --out ema.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fedray.platform.config import load_config, to_yaml
from fedray.platform.metrics.image import mean_quality
from fedray.platform.modules.state import state_arrays
from fedray.platform.optim.ema_steps import train_with_ema
from fedray.tasks.sr.config import SRConfig
from fedray.tasks.sr.data import load_images
from fedray.tasks.sr.evaluate import super_resolve
from fedray.tasks.sr.run import test_set
from fedray.tasks.sr.training import init_network, optimizer_of, sr_loss, training_pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="dit_sr")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[], help="sr config overrides")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    cfg = load_config(SRConfig, overrides=[*args.extra, f"train.threads={args.threads}"])
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    images = load_images(cfg.data)
    model = init_network(cfg, args.method, device)
    constant = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.train.ema))

    def batches_updating_the_constant_average():
        for batch in training_pairs(cfg, images.train, device):
            yield batch
            constant.update_parameters(model)  # resumed after the step on this batch

    optimizer, scheduler = optimizer_of(cfg, model)
    started = time.perf_counter()
    warmed, _ = train_with_ema(
        model, sr_loss(cfg, args.method, device), batches_updating_the_constant_average(), optimizer, cfg.train.ema,
        cfg.train.log_every, scheduler,
    )  # fmt: skip
    result = {"method": args.method, "config": args.extra, "steps": cfg.train.steps,
              "train_seconds": time.perf_counter() - started, "results": {}}  # fmt: skip
    hr, _, cond = test_set(cfg, images.test)
    weights = {"raw": model, "ema_constant": constant.module, "ema_warmup": warmed, "bicubic": None}
    for name, net in weights.items():
        method = "bicubic" if net is None else args.method
        output, _ = super_resolve(to_yaml(cfg), method, None if net is None else state_arrays(net), cond)
        quality = mean_quality(hr, output)
        result["results"][name] = {key: quality[key] for key in ("psnr", "psnr_y", "ssim_y")}
    print(json.dumps(result, indent=1))
    print(f"{'weights':<14} {'PSNR-Y':>7} {'SSIM-Y':>7}")
    for name, quality in result["results"].items():
        print(f"{name:<14} {quality['psnr_y']:>7.2f} {quality['ssim_y']:>7.4f}")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=1)


if __name__ == "__main__":
    main()
