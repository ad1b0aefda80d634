"""Detector configuration shared by the forgery-analysis workloads (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fedray.platform.data.config import ForgeryConfig
from fedray.platform.modules.config import ModelConfig


@dataclass
class DetectorConfig:
    """A binary real/fake detector trained centrally on self-blended forgeries of the training faces.

    ``architecture`` ``cnn`` is the conv trunk of the federated workload (Conv → GAP → FC); ``resnet`` a ResNet of
    ``model.res_blocks`` basic blocks per width (ResNet-8 by default). ``group_shares`` skews the training faces'
    groups (one share per group, renormalised; empty: the faces as they come) to create measurable bias on purpose.

    Training: ``epochs`` of fresh SBI draws, Adam (or SGD with Nesterov momentum ``momentum``), the learning rate
    warmed up linearly over the first ``warmup_epochs`` and then cosine-annealed to zero. Why: SBI artifacts on
    upsampled LFW faces are a few grey levels, so the loss sits at ln 2 for several epochs until the first filters
    turn high-pass. Measured at 64×64 (blur + resample fakes, 80 training faces, 500 test images of 20 unseen faces):
    this recipe gave 0.94 test accuracy for the 32/64/128 CNN and the ResNet-8 after 40 epochs (0.91 for a 16/32/64
    CNN after 30); SGD at lr 0.01 or 0.02 learned as fast but diverged once the loss fell (0.63 and 0.72). What
    decides whether a detector learns at all is the artifact strength relative to the image size: at 64×64 with the
    forgery defaults (made for 32×32) neither optimiser left ln 2. Strengths are in pixels, so they must grow with
    ``image_size`` (the attack workload's forgery defaults are the 64×64 ones).
    """

    architecture: Literal["cnn", "resnet"] = "cnn"
    model: ModelConfig = field(default_factory=lambda: ModelConfig(widths=[32, 64, 128]))
    epochs: int = 40
    batch_size: int = 64
    optimizer: Literal["adam", "sgd"] = "adam"
    lr: float = 1e-3
    momentum: float = 0.9  # sgd (Nesterov)
    warmup_epochs: int = 2
    weight_decay: float = 5e-4  # L2, added to the gradient
    group_shares: list[float] = field(default_factory=list)
    checkpoint: str | None = None  # a detector file (``fedray`` detector or a ``federated`` run directory) to load
    client: int | None = None  # with a federated checkpoint: that client's own model instead of the global one


@dataclass
class FacesConfig:
    """Which faces, at what size, grouped how, and the SBI forgery recipe used to fake them.

    Faces are LFW's 100 (or ``forgery.faces_dir``). ``num_groups`` groups by quantiles of the mean intensity of the
    central face region — a crude skin-tone proxy, since no demographic labels ship offline; ``group_file`` (a CSV
    with ``index,group`` rows over the sorted faces) replaces it with real labels.
    """

    image_size: int = 32
    num_groups: int = 4
    group_file: str | None = None
    forgery: ForgeryConfig = field(default_factory=ForgeryConfig)
