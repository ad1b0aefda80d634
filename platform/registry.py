"""The workload registry: a name maps to import strings and declared resources, nothing is imported eagerly.

``fedray list`` and ``fedray --help`` read this table without importing torch or any model. A workload module is
imported only when it runs (``entry``) or when its config schema is needed (``schema``); keep schema modules free of
heavy imports.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from fedray.platform.errors import WorkloadError


@dataclass(frozen=True)
class Workload:
    """One runnable workload: ``entry`` is ``run(cfg, runtime) -> dict``; ``schema`` its config dataclass."""

    name: str
    entry: str
    schema: str
    summary: str
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def load_entry(self) -> Any:
        return _import_string(self.entry)

    def load_schema(self) -> Any:
        return _import_string(self.schema)


def _import_string(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            name="federated",
            entry="fedray.cluster.federation:run",
            schema="fedray.cluster.federation_config:FederatedConfig",
            summary="federated training: client actors + parameter-server actor, shared-layer aggregation",
            num_cpus=1.0,
        ),
        Workload(
            name="continual",
            entry="fedray.tasks.continual.run:run",
            schema="fedray.tasks.continual.config:ContinualConfig",
            summary="class-incremental task streams as actors: Mamba-CL null-space projection and its baselines",
            num_cpus=1.0,
        ),
        Workload(
            name="purify",
            entry="fedray.tasks.purify.run:run",
            schema="fedray.tasks.purify.config:PurifyConfig",
            summary="MR motion-artifact purification (PFAD): unconditional DDPM + alternate pixel/frequency masks",
            num_cpus=1.0,
        ),
        Workload(
            name="ood",
            entry="fedray.tasks.ood.run:run",
            schema="fedray.tasks.ood.config:OODConfig",
            summary="OOD detection (DLSR): diffusion reconstruction of multi-layer encoder features",
            num_cpus=1.0,
        ),
        Workload(
            name="sr",
            entry="fedray.tasks.sr.run:run",
            schema="fedray.tasks.sr.config:SRConfig",
            summary="super-resolution (DiT-SR): ResShift diffusion with an isotropic Swin U-shape and AdaFM",
            num_cpus=1.0,
        ),
        Workload(
            name="distill",
            entry="fedray.tasks.distill.run:run",
            schema="fedray.tasks.distill.config:DistillConfig",
            summary="one-step SR distillation (TAD-SR): regression, high-frequency score distillation, time-aware GAN",
            num_cpus=1.0,
        ),
        Workload(
            name="compose",
            entry="fedray.tasks.compose.run:run",
            schema="fedray.tasks.compose.config:ComposeConfig",
            summary="image composition (Foodfusion): fusion cross-attention over fg/bg tokens + background control",
            num_cpus=1.0,
        ),
        Workload(
            name="fairness",
            entry="fedray.tasks.fairness.run:run",
            schema="fedray.tasks.fairness.config:FairnessConfig",
            summary="fairness of forgery detectors (FairFD): DPD/DEOdds/DEO/STD, AA and UR variants, BPFA pruning",
            num_cpus=1.0,
        ),
        Workload(
            name="attack",
            entry="fedray.tasks.attack.run:run",
            schema="fedray.tasks.attack.config:AttackConfig",
            summary="semantic-mask attack on forgery detectors (ASMA): CAM-discrepancy PGD inside face regions",
            num_cpus=1.0,
        ),
        Workload(
            name="fer",
            entry="fedray.tasks.fer.run:run",
            schema="fedray.tasks.fer.config:FERConfig",
            summary="expression recognition with text embeddings (KE2NT): emotional-to-neutral transformation",
            num_cpus=1.0,
        ),
    )
}


def get_workload(name: str) -> Workload:
    """The registered workload ``name``; an unknown name is a one-line error listing the known ones."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise WorkloadError(f"unknown workload {name!r}; known workloads: {', '.join(sorted(WORKLOADS))}") from None
