"""The schema of a pipeline file (``fedray pipeline configs/pipelines/<name>.yaml``), torch-free.

A pipeline is a DAG of workload runs. Each step names its workload, the steps it ``needs``, an optional config file
and ``key=value`` overrides; an override may refer to a needed step's run directory as ``{<step>.run_dir}`` (for
example ``detector.checkpoint={detector.run_dir}``), which is how checkpoints pass from one step to the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter

from fedray.platform.config import WorkloadConfig
from fedray.platform.errors import ConfigError
from fedray.platform.registry import WORKLOADS

ARTIFACT = re.compile(r"\{([A-Za-z_][\w-]*)\.run_dir\}")


@dataclass
class StepConfig:
    """One workload run in the DAG."""

    workload: str = "???"
    needs: list[str] = field(default_factory=list)
    config: str | None = None  # the workload's YAML file (relative to the current directory)
    overrides: list[str] = field(default_factory=list)


@dataclass
class PipelineConfig(WorkloadConfig):
    """``name`` names the pipeline; results go to ``run.root/pipelines/<name>/<run.name>/``: ``pipeline.json`` (the
    DAG, every step's status, timings and metrics) and one run directory per step, ``<workload>/<step>/``.

    ``seed`` is passed to every step (a ``seed=`` in the step's overrides wins). ``cluster`` says where the pipeline
    runs; every step runs as a Ray task with its workload's declared resources, on the same cluster.
    ``resume=true`` reuses the steps that completed and continues the others from their own checkpoints.
    """

    name: str = "pipeline"
    steps: dict[str, StepConfig] = field(default_factory=dict)

    def validate(self) -> None:
        if not self.steps:
            raise ConfigError("a pipeline needs at least one step under 'steps'")
        for name, step in self.steps.items():
            if step.workload not in WORKLOADS:
                known = ", ".join(sorted(WORKLOADS))
                raise ConfigError(f"step {name!r}: unknown workload {step.workload!r}; known workloads: {known}")
            unknown = [need for need in step.needs if need not in self.steps]
            if unknown:
                raise ConfigError(f"step {name!r} needs unknown steps {unknown}; steps: {', '.join(self.steps)}")
            for item in step.overrides:
                for ref in ARTIFACT.findall(item):
                    if ref not in step.needs:
                        raise ConfigError(f"step {name!r} uses {{{ref}.run_dir}} but does not list {ref!r} in needs")
        try:
            self.order()
        except CycleError as exc:
            raise ConfigError(f"the pipeline's steps form a cycle: {' -> '.join(exc.args[1])}") from None

    def order(self) -> list[str]:
        """The steps in an order that runs every step after the steps it needs."""
        return list(TopologicalSorter({name: step.needs for name, step in self.steps.items()}).static_order())
