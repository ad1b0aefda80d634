"""Configuration of the ``fairness`` workload (torch-free, so ``fedray config fairness`` stays fast).

The defaults are FairFD's small-scale recipe: the 100 LFW faces in 4 proxy groups (central-intensity quartiles), the
five SBI artifact families as forgery methods, a detector trained centrally on group-imbalanced faces (50/25/15/10 %),
at least 100 test samples per (real | method) × group cell, 3 seeds, and BPFA with its baselines at
p ∈ {0.1, 0.4, 1, 3, 7, 10} %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

from fedray.platform.config import WorkloadConfig, check_training
from fedray.platform.errors import ConfigError, require
from fedray.tasks.forensics.config import DetectorConfig, FacesConfig

PRUNING_SCORES = ("bpfa", "weig", "roba", "random")
THRESHOLD_RULES = ("global", "balanced_accuracy", "match_fpr")


@dataclass
class FairnessDetector(DetectorConfig):
    """The detector under test.

    ``checkpoint``: a detector file (``checkpoints/detector_seed*.safetensors`` of an earlier fairness run, or any
    ``fedray`` detector file), or a ``federated`` run directory — its global model (fedavg, pfr's shared prediction,
    ditto's global model), or client ``client``'s own model. Without it, a detector is trained centrally per seed as
    a runtime task (the shared detector recipe), on a pool of ``pool_size`` training faces whose groups follow
    ``group_shares`` (biased on purpose). ``architecture`` ``pfr`` (default) is PFR's network trained centrally on
    its three-head loss, predicting with its joint head: at 32 px on the five mixed families the plain ``cnn`` stays
    near chance, while PFR's feature-statistics branch learns. With the shared recipe's warm-up and cosine decay,
    Adam at 0.01 left PFR's loss at 3·ln 2 for 20 epochs; 0.001 learns (measured, seed 0).
    """

    architecture: Literal["cnn", "resnet", "pfr"] = "pfr"  # type: ignore[assignment]
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.001
    group_shares: list[float] = field(default_factory=lambda: [0.5, 0.25, 0.15, 0.10])
    pool_size: int = 400


@dataclass
class Evaluation:
    """Which faces the metrics see, and how many samples.

    Faces are split by face (every identity in one split) with ``split`` = train / calibration / test fractions, per
    seed. A ``federated`` detector is instead evaluated only on faces no client of that run trained on (its clients'
    held-out test faces and faces no client owned), re-derived from the run's config and seed; ``held_out_calibration``
    of them (per group) form the calibration split, the rest the test split. ``per_cell``: samples at least per
    (real | method) × group cell of the test set (``calibration_per_cell`` for calibration). A sample is called fake
    when P(fake) ≥ ``threshold``.
    """

    split: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])
    held_out_calibration: float = 0.4
    per_cell: int = 100
    calibration_per_cell: int = 50
    threshold: float = 0.5
    batch_size: int = 512


@dataclass
class Metrics:
    """Which block is the headline (every block is reported in metrics.json, labelled). ``variant``: ``official``
    (the notebook's matrix form on acc[f, s]) or ``paper`` (the probability form); ``ur_denominator``:
    ``acc_plus_one`` (the notebook; reproduces the paper's Table 2) or ``acc`` (the paper's text)."""

    variant: Literal["official", "paper"] = "official"
    ur_denominator: Literal["acc_plus_one", "acc"] = "acc_plus_one"


@dataclass
class Pruning:
    """BPFA (|W| / BIAS_i, BIAS_i = std over groups of the channel's activation norm on real calibration faces) and
    its baselines at the same rates: ``weig`` (|W|), ``roba`` (1 / BIAS_i), ``random``. Each Conv2d/Linear layer
    loses the lowest-scoring ``rates_percent`` % of its weights; no retraining."""

    enabled: bool = True
    rates_percent: list[float] = field(default_factory=lambda: [0.1, 0.4, 1.0, 3.0, 7.0, 10.0])
    scores: list[str] = field(default_factory=lambda: list(PRUNING_SCORES))


@dataclass
class Thresholds:
    """Decision-threshold baselines tuned on the calibration split: ``global`` (one threshold maximising balanced
    accuracy), ``balanced_accuracy`` (each group its own threshold maximising that group's balanced accuracy) and
    ``match_fpr`` (each group's threshold set so its false-positive rate equals the overall calibration FPR at
    ``evaluation.threshold``)."""

    enabled: bool = True
    rules: list[str] = field(default_factory=lambda: list(THRESHOLD_RULES))


@dataclass
class FairnessConfig(WorkloadConfig):
    """FairFD: fairness metrics of a forgery detector across groups, BPFA pruning and its baselines.

    One evaluation per seed in ``seeds`` (offset by ``seed``): its own face split, detector (when trained here),
    SBI draws and random-pruning masks; metrics are reported per seed and as mean ± std. ``predictions_csv`` skips
    all of that and computes the metrics from a CSV of ``label,method,group,score`` (or ``pred``) rows. Training and
    each seed's evaluation run as runtime tasks with ``num_cpus``/``num_gpus`` and ``threads`` torch threads.
    """

    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = (
        *WorkloadConfig.RESUME_MAY_CHANGE,
        "evaluation.",
        "metrics.",
        "pruning.",
        "thresholds.",
        "num_cpus",
        "num_gpus",
        "threads",
    )

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    faces: FacesConfig = field(default_factory=FacesConfig)
    detector: FairnessDetector = field(default_factory=FairnessDetector)
    evaluation: Evaluation = field(default_factory=Evaluation)
    metrics: Metrics = field(default_factory=Metrics)
    pruning: Pruning = field(default_factory=Pruning)
    thresholds: Thresholds = field(default_factory=Thresholds)
    predictions_csv: str | None = None
    num_cpus: float = 1.0  # per task
    num_gpus: float = 0.0
    threads: int = 1

    def task_resources(self) -> tuple[float, float] | None:
        """Metrics of a predictions CSV are computed in the driver and need no task."""
        return None if self.predictions_csv is not None else super().task_resources()

    def input_paths(self) -> dict[str, str | None]:
        return {"detector.checkpoint": self.detector.checkpoint, "predictions_csv": self.predictions_csv,
                "faces.group_file": self.faces.group_file}  # fmt: skip

    def validate(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must list at least one seed, each once; got {self.seeds}")
        ev = self.evaluation
        if len(ev.split) != 3 or any(f < 0 for f in ev.split) or ev.split[1] <= 0 or ev.split[2] <= 0:
            raise ConfigError(
                f"evaluation.split must be 3 non-negative train/calibration/test fractions, got {ev.split}"
            )
        if not 0 < ev.held_out_calibration < 1:
            raise ConfigError(f"evaluation.held_out_calibration must lie in (0, 1), got {ev.held_out_calibration}")
        if not 0 <= ev.threshold <= 1:
            raise ConfigError(f"evaluation.threshold must lie in [0, 1], got {ev.threshold}")
        positive = {
            "evaluation.per_cell": ev.per_cell,
            "evaluation.calibration_per_cell": ev.calibration_per_cell,
            "evaluation.batch_size": ev.batch_size,
            "detector.pool_size": self.detector.pool_size,
            "faces.num_groups": self.faces.num_groups,
            "threads": self.threads,
        }
        require("positive", positive)
        check_training("detector", self.detector)
        if self.detector.checkpoint is None and self.detector.client is not None:
            raise ConfigError("detector.client names a client of a federated run: set detector.checkpoint to its run")
        self.detector.model.check("detector.model")
        self.faces.forgery.check("faces.forgery")
        if self.faces.num_groups < 2 and self.faces.group_file is None:
            raise ConfigError(
                f"faces.num_groups must be at least 2 (fairness compares groups), got {self.faces.num_groups}"
            )
        rates = self.pruning.rates_percent
        if self.pruning.enabled and not (rates and self.pruning.scores):
            raise ConfigError("pruning.enabled needs pruning.rates_percent and pruning.scores (or set it false)")
        if any(not 0 < r < 100 for r in rates):
            raise ConfigError(f"pruning.rates_percent must lie in (0, 100), got {rates}")
        for key, chosen, known in (
            ("pruning.scores", self.pruning.scores, PRUNING_SCORES),
            ("thresholds.rules", self.thresholds.rules, THRESHOLD_RULES),
        ):
            unknown = [c for c in chosen if c not in known]
            if unknown or len(set(chosen)) != len(chosen):
                raise ConfigError(f"{key} must list distinct entries of {', '.join(known)}; got {chosen}")
