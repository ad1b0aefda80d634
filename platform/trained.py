"""Collect models that training tasks return: checkpoint each and log its loss curve as soon as it arrives."""

from __future__ import annotations

from typing import Any

from fedray.platform.progress import StepProgress
from fedray.platform.rundir import RunDir
from fedray.platform.runtime import Runtime


def collect_trained(
    runtime: Runtime, run_dir: RunDir, pending: dict[str, Any], label: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Wait for every training task in ``pending`` (name → reference to ``(state, info)``), in order; each result is
    checkpointed and logged before the next wait, so an interrupted run keeps what finished. ``(states, infos)``."""
    states: dict[str, Any] = {}
    infos: dict[str, Any] = {}
    with StepProgress(f"trained {label}", len(pending)) as progress:
        for name, ref in pending.items():
            states[name], infos[name] = runtime.get(ref)
            run_dir.save_trained(name, states[name], infos[name], label=label)
            progress.advance({"loss": infos[name]["loss_curve"][-1]["loss"]})
    return states, infos
