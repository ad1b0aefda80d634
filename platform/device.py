"""Pick the torch device a worker should use, and time work on it."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch

from fedray.platform.inline_gpus import requested_gpus

log = logging.getLogger(__name__)
_capped_fraction: float | None = None  # the memory cap this process set


def granted_gpu_fraction() -> float | None:
    """The GPUs Ray granted the task or actor running in this process (e.g. 0.25), or None outside a Ray worker.

    Ray is only asked when this process already imported it: the platform never imports Ray itself.
    """
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        context = ray.get_runtime_context()
        if context.worker.mode != ray.WORKER_MODE:  # the driver was granted nothing
            return None
        return float(context.get_assigned_resources().get("GPU", 0.0))
    except (AttributeError, RuntimeError):
        return None


def cap_gpu_memory(fraction: float | None) -> float | None:
    """Cap this process's CUDA memory to ``fraction`` of the device when it is a share (0 < fraction < 1).

    Ray's fractional GPUs only decide placement: four actors granted 0.25 each may still allocate the whole card and
    crash one another. Capping each process's caching allocator to its share turns that into an out-of-memory error
    inside the process that overdraws. Returns the cap in force (None when none applies); set again only when the
    share changes.
    """
    global _capped_fraction
    if fraction is None or not 0 < fraction < 1 or not torch.cuda.is_available():
        return None
    if _capped_fraction != fraction:
        torch.cuda.set_per_process_memory_fraction(fraction)
        _capped_fraction = fraction
        log.warning(
            "granted %.3g GPU: CUDA memory of this process capped to %.0f%% of the device", fraction, 100 * fraction
        )
    return _capped_fraction


def flush_subnormals() -> bool:
    """Make this process's CPU arithmetic treat float32 subnormals (|x| < 1.2e-38) as zero; False where the CPU
    cannot. Why: late in a long CPU run the gradients of a well-fitted model, and Adam's squared-gradient averages,
    fall into that range, and x86 arithmetic on subnormals is one to two orders of magnitude slower. Measured on the
    attack workload's CNN detector, 160 epochs on one thread: near epoch 145 an epoch took about 100 s, against 12 s
    for the runs beside it, and the run was stopped at epoch 150 after 74 minutes; with subnormals flushed all 160
    epochs took 22 minutes (an 80-epoch run ends at the same training loss either way). ``benchmarks/subnormals.py``
    measures the mechanism. Values that small are zero for every purpose here. Every worker calls
    :func:`select_device`, which calls this, so the inline and Ray runtimes compute alike."""
    return bool(torch.set_flush_denormal(True))


def select_device(prefer_gpu: bool = True) -> torch.device:
    """CUDA when it is visible to this process (Ray sets ``CUDA_VISIBLE_DEVICES`` to the granted GPUs) and the work
    asked for a GPU, else CPU.

    A Ray task or actor granted no GPU stays on the CPU even when CUDA is visible: Ray hides the devices from such
    workers only while ``RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO`` is unset or 1 (its announced future default is not to),
    and a worker on a GPU it never reserved would share it behind the scheduler's back. The inline runtime's tasks
    and actors follow their own requests the same way (``fedray.platform.inline_gpus``); code in the driver outside
    any task may use a visible GPU. Picking CUDA inside a Ray task or actor granted a fraction of a GPU also caps
    this process's CUDA memory to that fraction (:func:`cap_gpu_memory`). CPU arithmetic flushes subnormals to zero
    from here on (:func:`flush_subnormals`).
    """
    flush_subnormals()
    if not prefer_gpu or not torch.cuda.is_available():
        return torch.device("cpu")
    granted = granted_gpu_fraction()
    if granted is None:  # not a Ray worker: an inline task or actor, or the driver itself
        requested = requested_gpus()
        return torch.device("cpu") if requested is not None and requested <= 0 else torch.device("cuda")
    if granted == 0.0:
        return torch.device("cpu")
    cap_gpu_memory(granted)
    return torch.device("cuda")


def _synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


@torch.no_grad()
def timed_batches(
    fn: Callable[..., torch.Tensor], batches: Iterable[tuple[torch.Tensor, ...]], warmup: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, float]:
    """``fn(*batch)`` for every batch, concatenated on the CPU, and the wall-clock seconds they took — after one
    untimed call on ``warmup`` (FFT plans, allocator), with CUDA work synchronised on both sides of the timing."""
    fn(*warmup)
    _synchronize()
    started = time.perf_counter()
    outputs = [fn(*batch).cpu() for batch in batches]
    _synchronize()
    return torch.cat(outputs), time.perf_counter() - started


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with ``threads`` intra-op threads in torch and in numpy's BLAS, then restore the previous counts. The same
    count under Ray and inline keeps their floating-point summation order, hence their numbers, identical; restoring
    matters because the inline runtime runs tasks in the caller's process."""
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous)
