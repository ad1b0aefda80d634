"""What a pool worker's call costs beyond the client's own work: building a client per call against switching one.

A pool worker (``clients.placement=pool``) serves many virtual clients. For each call it either builds that client's
:class:`FederatedClient` (model, privacy wrapper, device copies of its samples, personal state from the store) or,
as it does, switches the one client it built with :meth:`FederatedClient.serve` (samples and personal state only).
This script times, side by side in one process with one torch thread, for the PFR network without and with DP-SGD:

- ``build``: constructing a client over a store that holds its saved state;
- ``serve``: switching an existing client to another virtual client;
- ``evaluate`` and ``fit``: the client's own work per call (its test split; one local epoch of its samples).

Prints one JSON document and a table of milliseconds (medians) and what building would add to each call. Usage::

    python benchmarks/pool_calls.py [--repeats 20] [--image-size 16] [--samples 60] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from fedray.clients.config import ClientConfig, ClientSpec, PrivacyConfig
from fedray.clients.federated_client import FederatedClient
from fedray.clients.state_store import ClientStateStore
from fedray.platform.messages import ClientData
from fedray.platform.modules.config import ModelConfig

CLIENTS = 8


def _median_ms(fn: Callable[[int], object], repeats: int) -> float:
    fn(0)  # warm-up
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times)


def _clients(samples: int, size: int) -> list[ClientData]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(CLIENTS):
        labels = rng.integers(0, 2, samples)
        images = rng.random((samples, 3, size, size)).astype(np.float32)
        test = max(1, samples // 5)
        out.append(ClientData(images[test:], labels[test:], images[:test], labels[:test], num_classes=2))
    return out


def measure(privacy: bool, args: argparse.Namespace) -> dict:
    data = _clients(args.samples, args.image_size)
    train = ClientConfig(batch_size=32, epochs=1)
    spec = ClientSpec(ModelConfig(widths=[16, 32, 64]), train, seed=0, method="pfr", privacy=PrivacyConfig(privacy))
    store = ClientStateStore(None, cache_size=CLIENTS)
    host = FederatedClient(0, data[0], spec, store)
    state = host.model.state_dict()
    shared = {n: state[n].numpy().copy() for n in host.shared_names}
    for k in range(CLIENTS):  # every client has a saved personal state to load
        host.serve(k, data[k])
        host.fit(shared, 1)

    timings = {
        "build": _median_ms(lambda i: FederatedClient(i % CLIENTS, data[i % CLIENTS], spec, store), args.repeats),
        "serve": _median_ms(lambda i: host.serve(i % CLIENTS, data[i % CLIENTS]), args.repeats),
        "evaluate": _median_ms(lambda i: host.evaluate(shared, 2), args.repeats),
        "fit": _median_ms(lambda i: host.fit(shared, 2 + i), args.repeats),
    }
    row = {"privacy": privacy, **{f"{k}_ms": v for k, v in timings.items()}}
    row["build_over_serve"] = timings["build"] / timings["serve"]
    for work in ("evaluate", "fit"):  # what building per call added to a call, as a fraction of the call's own work
        row[f"build_share_of_{work}"] = (timings["build"] - timings["serve"]) / timings[work]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--image-size", type=int, default=16)
    parser.add_argument("--samples", type=int, default=60, help="per client; a fifth is its test split")
    parser.add_argument("--out", help="also write the JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = {"config": vars(args), "rows": [measure(p, args) for p in (False, True)]}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'privacy':<9}{'build ms':>10}{'serve ms':>10}{'evaluate ms':>13}{'fit ms':>9}{'build/serve':>13}"
          f"{'+ per eval':>12}{'+ per fit':>11}")  # fmt: skip
    for r in result["rows"]:
        print(f"{'on' if r['privacy'] else 'off':<9}{r['build_ms']:>10.2f}{r['serve_ms']:>10.2f}"
              f"{r['evaluate_ms']:>13.2f}{r['fit_ms']:>9.1f}{r['build_over_serve']:>12.1f}×{r['build_share_of_evaluate']:>11.0%}"
              f"{r['build_share_of_fit']:>11.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
