"""ASMA against full-image and region-restricted baselines on two SBI forgery detectors (64×64 LFW faces).

Runs ``fedray run attack`` at the METHODS scale (500 test images of faces the victims never saw, both victims trained
in the run), then once more per extra adaptive rule reusing the first run's victims through
``victims.<name>.checkpoint`` (``--adaptive-k``, ``--above-mean``). Prints one JSON document (also written to
``--out``) and a table per attack: white-box ASR on each victim (and on fakes alone: fakes passed off as real),
accuracy after, perturbed area, L2/L∞ of δ, PSNR/SSIM, then the transfer matrices (crafted on the row victim with its
own CAM and gradients, evaluated on the column victim). Usage::

    python benchmarks/attack_methods.py --out benchmarks/results/attack_lfw64.json
    python benchmarks/attack_methods.py --extra data.test_images=100 victims.cnn.epochs=5   # a quick check
    python benchmarks/attack_methods.py --render benchmarks/results/attack_lfw64.json      # the saved table
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from workload_run import run_workload

VICTIMS = ("cnn", "resnet")


def rows_of(run: dict, rename: dict[str, str] | None = None) -> dict[str, dict]:
    """Table label → the white-box numbers of both victims and the transfer matrix of one run's attacks."""
    out = {}
    for attack, r in run["results"].items():
        label = (rename or {}).get(attack, attack)
        out[label] = {"white_box": r["white_box"], "transfer_asr": r["transfer_asr"]}
    return out


def print_table(results: dict) -> None:
    main = results["main"]
    accs = ", ".join(f"{v} {main['victims'][v]['clean_accuracy']:.3f}" for v in VICTIMS)
    d = main["data"]
    print(f"\n{d['test_images']} test images ({d['test_fakes']} fake) of {d['test_faces']} unseen faces, "
          f"{d['image_size']}×{d['image_size']}; clean accuracy: {accs}; fixed mask M covers "
          f"{main['regions']['fixed_area']:.1%} of the image")  # fmt: skip
    head = f"{'attack':<24}{'victim':<8}{'ASR':>6}{'ASRfake':>8}{'acc→':>6}{'area':>7}{'L2':>7}{'L∞':>7}"
    print(head + f"{'PSNR':>7}{'SSIM':>7}")
    for label, row in results["table"].items():
        for v in VICTIMS:
            w = row["white_box"][v]
            outcome = f"{w['asr']:>6.3f}{w['asr_fake']:>8.3f}{w['acc_after']:>6.2f}"
            cost = f"{w['perturbed_area']:>7.3f}{w['l2']:>7.2f}{w['linf']:>7.3f}{w['psnr']:>7.1f}{w['ssim']:>7.3f}"
            print(f"{label:<24}{v:<8}{outcome}{cost}")
    print("\ntransfer ASR (row: crafted on, column: evaluated on)")
    print(f"{'attack':<24}" + "".join(f"{s + '→' + t:>15}" for s in VICTIMS for t in VICTIMS))
    for label, row in results["table"].items():
        print(f"{label:<24}" + "".join(f"{row['transfer_asr'][s][t]:>15.3f}" for s in VICTIMS for t in VICTIMS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="local", choices=["local", "inline"], help="cluster.mode of every run")
    parser.add_argument("--cpus", type=int, default=2, help="local mode: CPUs Ray may use; tasks take 1 each")
    parser.add_argument("--adaptive-k", type=int, nargs="*", default=[2], help="extra top-k runs of asma_adaptive")
    parser.add_argument("--above-mean", action="store_true", help="also run the above-mean adaptive rule")
    parser.add_argument("--extra", nargs="*", default=[], help="further overrides for every run")
    parser.add_argument("--root", help="keep the run directories here (default: a temporary folder)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--render", help="print the table of a saved result and exit")
    args = parser.parse_args()
    if args.render:
        print_table(json.loads(Path(args.render).read_text()))
        return
    threads = 1 if args.mode == "local" else args.cpus
    common = [f"cluster.mode={args.mode}", f"cluster.num_cpus={args.cpus}", "num_cpus=1", f"threads={threads}",
              *args.extra]  # fmt: skip
    results: dict = {"config": {"common": common}}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or tmp
        start = time.perf_counter()
        main_run = run_workload("attack", common, root, "main")
        results["main"] = {**main_run, "wall_seconds": time.perf_counter() - start}
        print(f"# main run: {results['main']['wall_seconds']:.0f} s", file=sys.stderr, flush=True)
        adaptive = main_run["regions"]["adaptive"]
        label = "above mean" if adaptive["rule"] == "above_mean" else f"topk k={adaptive['k']}"
        table = rows_of(main_run, {"asma_adaptive": f"asma_adaptive ({label})"})
        ckpt = Path(root) / "attack" / "main" / "checkpoints"
        reuse = [f"victims.{v}.checkpoint={ckpt / f'{v}.safetensors'}" for v in VICTIMS]
        variants = {f"asma_adaptive (topk k={k})": [f"adaptive.k={k}"] for k in args.adaptive_k}
        if args.above_mean:
            variants["asma_adaptive (above mean)"] = ["adaptive.rule=above_mean"]
        results["adaptive_variants"] = {}
        for label, overrides in variants.items():
            start = time.perf_counter()
            name = "adaptive_" + "_".join(o.replace("=", "-").replace(".", "-") for o in overrides)
            run = run_workload("attack", [*common, *reuse, "attacks=[asma_adaptive]", *overrides], root, name)
            results["adaptive_variants"][label] = {**run, "wall_seconds": time.perf_counter() - start}
            table[label] = rows_of(run)["asma_adaptive"]
            print(f"# {label}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    results["table"] = table
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps({k: v for k, v in results.items() if k != "table"}, indent=1)[:2000])
    print_table(results)


if __name__ == "__main__":
    main()
