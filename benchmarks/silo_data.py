"""What a Flower silo spends on its data per message: reading its folder against loading the prepared arrays.

Flower starts a new ClientApp process for every message, twice a round per silo. Each process needs the silo's
samples: without a cache it lists, decodes and resizes every image of ``data.path`` (``cold``); with the cache in
its state folder it lists the files (to notice changes) and loads one tensor file (``warm``). The folder holds
``--images`` 128×128 JPEG crops of the photographs that ship with scikit-image, half under ``real/`` and half under
``fake/``; one thread, medians over ``--repeats``.

Prints one JSON document and a table. Usage::

    python benchmarks/silo_data.py [--images 2000 8000] [--repeats 3] [--image-size 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data as skdata
from skimage import io

from fedray.platform.data.config import DataConfig
from fedray.platform.data.silo_cache import CACHE_FILE, cached_silo_data

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry")
CROP = 128


def write_folder(root: Path, count: int) -> None:
    """``count`` JPEG crops of real photographs at seeded positions."""
    rng = np.random.default_rng(count)
    photos = [getattr(skdata, name)() for name in PHOTOS]
    for i in range(count):
        photo = photos[i % len(photos)]
        y, x = (int(rng.integers(0, s - CROP)) for s in photo.shape[:2])
        path = root / ("fake" if i % 2 else "real") / f"{i:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        io.imsave(path, photo[y : y + CROP, x : x + CROP], check_contrast=False)


def measure(count: int, repeats: int, image_size: int, work: Path) -> dict:
    root, state = work / f"frames{count}", work / f"state{count}"
    write_folder(root, count)
    cfg = DataConfig(name="folder", path=str(root), image_size=image_size, scope="all")
    cold, warm = [], []
    for _ in range(repeats):
        (state / CACHE_FILE).unlink(missing_ok=True)
        started = time.perf_counter()
        data, hit = cached_silo_data(cfg, 3, 0, 0, state)
        cold.append(time.perf_counter() - started)
        assert not hit
        started = time.perf_counter()
        again, hit = cached_silo_data(cfg, 3, 0, 0, state)
        warm.append(time.perf_counter() - started)
        assert hit and np.array_equal(again.clients[0].test_images, data.clients[0].test_images)
    shutil.rmtree(root)
    return {
        "images": count,
        "cold_s": statistics.median(cold),
        "warm_s": statistics.median(warm),
        "speedup": statistics.median(cold) / statistics.median(warm),
        "cache_mb": (state / CACHE_FILE).stat().st_size / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=32)  # the federated workload's default
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as work:
        rows = [measure(n, args.repeats, args.image_size, Path(work)) for n in args.images]
    result = {"threads": 1, "image_size": args.image_size, "repeats": args.repeats, "rows": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    print(f"\n{'images':>7} {'read folder (s)':>16} {'from cache (s)':>15} {'ratio':>7} {'cache (MiB)':>12}")
    for r in rows:
        print(
            f"{r['images']:>7} {r['cold_s']:>16.3f} {r['warm_s']:>15.3f} {r['speedup']:>6.0f}× {r['cache_mb']:>12.1f}"
        )


if __name__ == "__main__":
    main()
