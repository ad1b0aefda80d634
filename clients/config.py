"""Client-side configuration (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClientConfig:
    """How many clients, and how each trains locally.

    ``num_cpus`` / ``num_gpus`` are per client actor; left empty, the runtime's CPUs (at most one each) and GPUs are
    divided evenly among the clients, so that all of them can be placed at once.
    """

    num_clients: int = 5
    epochs: int = 1
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    num_threads: int = 1  # torch intra-op threads per client process
    num_cpus: float | None = None
    num_gpus: float | None = None
    startup_timeout_s: float = 300.0  # client actors not constructed by then fail the run with a clear message
