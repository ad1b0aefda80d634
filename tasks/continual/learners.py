"""Continual-learning methods as small strategy objects around one training loop (``stream.py``).

Each learner decides which samples a task trains on (``training_set``), what is trained and how (``optimizer``), what
the loss adds (``loss``), and what it keeps from a finished task (``after_task``); its kept state round-trips
through ``arrays``/``load`` for checkpoints. Every method trains the same SSM parameters and per-task heads, except
``heads`` (backbone frozen).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F

from fedray.platform.seeding import derive_seed
from fedray.tasks.continual.config import ContinualConfig
from fedray.tasks.continual.model import ContinualMamba
from fedray.tasks.continual.null_space_cl import NullSpaceState, projected_adam, task_covariances
from fedray.tasks.continual.task_split import TaskData


class Learner:
    """Sequential fine-tuning (Seq-FT, the paper's Mamba-Seq): Adam on the SSM parameters, CE on the current head."""

    def __init__(self, cfg: ContinualConfig) -> None:
        self.cfg = cfg

    def optimizer(self, model: ContinualMamba, task: int) -> torch.optim.Optimizer:
        return projected_adam(model, self.cfg.train.lr, self.cfg.train.head_lr, self.cfg.train.weight_decay, {})

    def training_set(self, tasks: list[TaskData], task: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The images and global labels task ``task`` trains on: its own, for every method that learns sequentially."""
        return tasks[task].train_images, tasks[task].train_labels

    def before_task(self, model: ContinualMamba, task: int) -> None:
        """Called once the new task's head exists, before its first step."""

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        """CE over the current task's classes with local labels (``labels`` are global; ``offset`` the task's first)."""
        logits = model.heads.heads[task](model.backbone(images))
        return F.cross_entropy(logits, labels - offset)

    def after_task(self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int) -> None:
        """Called with the finished task's training set."""

    def arrays(self) -> dict[str, np.ndarray]:
        return {}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`arrays` returned."""


class HeadsOnly(Learner):
    """Frozen pre-trained backbone, one linear head per task: the strongest simple baseline for pre-trained CL."""

    def optimizer(self, model: ContinualMamba, task: int) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.heads.parameters(), lr=self.cfg.train.head_lr)

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        with torch.no_grad():
            features = model.backbone(images)
        return F.cross_entropy(model.heads.heads[task](features), labels - offset)


class MambaCLLearner(Learner):
    """Seq-FT whose SSM updates are projected towards the null space of earlier tasks' features (projected Adam)."""

    def __init__(self, cfg: ContinualConfig) -> None:
        super().__init__(cfg)
        self.state = NullSpaceState(cfg.mambacl.accumulate)

    def optimizer(self, model: ContinualMamba, task: int) -> torch.optim.Optimizer:
        mcl = self.cfg.mambacl
        projections = self.state.projections(model, list(mcl.project), mcl.eta, mcl.normalize)
        return projected_adam(
            model, self.cfg.train.lr, self.cfg.train.head_lr, self.cfg.train.weight_decay, projections
        )

    def after_task(self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int) -> None:
        if task + 1 < self.cfg.data.tasks:  # nothing comes after the last task to protect it from
            covariances, batches = task_covariances(model, images, self.cfg.mambacl.batch_size)
            self.state.add_task(covariances, len(images), batches)

    def arrays(self) -> dict[str, np.ndarray]:
        return self.state.arrays()

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self.state.load(arrays)


class EWCLearner(Learner):
    """Online EWC: λ/2 · Σ_i F_i (θ_i − θ*_i)² over the SSM parameters, F the diagonal empirical Fisher (squared
    gradients of the task loss over mini-batches of the task's training set) summed over tasks, θ* the parameters
    after the latest task."""

    FISHER_BATCH = 32

    def __init__(self, cfg: ContinualConfig) -> None:
        super().__init__(cfg)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._on_device: tuple[torch.device, dict[str, tuple[torch.Tensor, torch.Tensor]]] | None = None

    def _terms_on(self, device: torch.device) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """(Fisher, anchor) per parameter on the model's device, copied once per task: they stay on the CPU for
        checkpoints, and a copy per step would be a host-to-GPU transfer at every step."""
        if self._on_device is None or self._on_device[0] != device:
            terms = {name: (self.fisher[name].to(device), self.anchor[name].to(device)) for name in self.fisher}
            self._on_device = (device, terms)
        return self._on_device[1]

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        loss = super().loss(model, images, labels, task, offset)
        if not self.fisher:
            return loss
        params = _named_ssm(model)
        terms = self._terms_on(next(iter(params.values())).device)
        penalty = sum((terms[name][0] * (param - terms[name][1]).pow(2)).sum() for name, param in params.items())
        return loss + self.cfg.baselines.ewc_lambda / 2 * penalty

    def after_task(self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int) -> None:
        params = _named_ssm(model)
        fisher = {name: torch.zeros_like(p) for name, p in params.items()}
        offset = int(labels.min())
        model.eval()
        batches = 0
        for start in range(0, len(images), self.FISHER_BATCH):
            model.zero_grad(set_to_none=True)
            chunk, target = images[start : start + self.FISHER_BATCH], labels[start : start + self.FISHER_BATCH]
            F.cross_entropy(model.heads.heads[task](model.backbone(chunk)), target - offset).backward()
            for name, p in params.items():
                if p.grad is not None:
                    fisher[name] += p.grad.detach() ** 2
            batches += 1
        model.zero_grad(set_to_none=True)
        for name, value in fisher.items():  # kept on the CPU, like everything a checkpoint restores
            self.fisher[name] = self.fisher.get(name, 0) + value.cpu() / max(batches, 1)
            self.anchor[name] = params[name].detach().cpu().clone()
        self._on_device = None

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"fisher.{k}": v.numpy() for k, v in self.fisher.items()}
        out.update({f"anchor.{k}": v.numpy() for k, v in self.anchor.items()})
        return out

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        self.fisher = {
            k.removeprefix("fisher."): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("fisher.")
        }
        self.anchor = {
            k.removeprefix("anchor."): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("anchor.")
        }
        self._on_device = None


class LwFLearner(Learner):
    """Learning without Forgetting: CE on the new head + λ·T²·KL(old ‖ new) on the old heads' logits, the old
    model being a frozen copy taken when the task starts (so a resumed stream rebuilds it from its checkpoint)."""

    def __init__(self, cfg: ContinualConfig) -> None:
        super().__init__(cfg)
        self.previous: ContinualMamba | None = None

    def before_task(self, model: ContinualMamba, task: int) -> None:
        self.previous = copy.deepcopy(model).eval() if task > 0 else None
        if self.previous is not None:
            self.previous.requires_grad_(False)

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        features = model.backbone(images)
        loss = F.cross_entropy(model.heads.heads[task](features), labels - offset)
        if self.previous is None:
            return loss
        temperature = self.cfg.baselines.lwf_temperature
        with torch.no_grad():
            old = self.previous(images, tasks=task) / temperature
        new = model.heads(features, tasks=task) / temperature
        distill = F.kl_div(F.log_softmax(new, dim=1), F.log_softmax(old, dim=1), log_target=True, reduction="batchmean")
        return loss + self.cfg.baselines.lwf_lambda * temperature**2 * distill


class ReplayLearner(Learner):
    """Experience replay: a fixed buffer of ``replay_per_class`` training samples of every seen class; each batch is
    joined by as many buffer samples and trained with CE over all seen classes (global labels)."""

    def __init__(self, cfg: ContinualConfig) -> None:
        super().__init__(cfg)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.generator = torch.Generator()

    def before_task(self, model: ContinualMamba, task: int) -> None:
        self.generator.manual_seed(derive_seed(self.cfg.seed, "replay", task))  # the same draws after a resume

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        if self.images is not None:
            pick = torch.randint(len(self.labels), (len(labels),), generator=self.generator)
            stored, stored_labels = self.images[pick].to(images.device), self.labels[pick].to(labels.device)
            images, labels = torch.cat([images, stored]), torch.cat([labels, stored_labels])
        return F.cross_entropy(model(images, tasks=task + 1), labels)

    def after_task(self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int) -> None:
        keep = []
        for cls in labels.unique():
            members = torch.nonzero(labels == cls).flatten().cpu()
            keep.append(
                members[torch.randperm(len(members), generator=self.generator)[: self.cfg.baselines.replay_per_class]]
            )
        chosen = torch.cat(keep).to(labels.device)
        new_images, new_labels = images[chosen].cpu(), labels[chosen].cpu()
        if self.images is None:
            self.images, self.labels = new_images, new_labels
        else:
            self.images, self.labels = torch.cat([self.images, new_images]), torch.cat([self.labels, new_labels])

    def arrays(self) -> dict[str, np.ndarray]:
        if self.images is None:
            return {}
        return {"replay.images": self.images.numpy(), "replay.labels": self.labels.numpy()}

    def load(self, arrays: dict[str, np.ndarray]) -> None:
        if "replay.images" in arrays:
            self.images = torch.from_numpy(arrays["replay.images"])
            self.labels = torch.from_numpy(arrays["replay.labels"])


class JointLearner(Learner):
    """Joint training, the upper bound: at task t the same trainable set learns the union of tasks 1..t, with CE
    over all seen classes (global labels), so the last row of its accuracy matrix is training on every task at
    once. Nothing is kept between tasks but the weights: the data come from the stream itself."""

    def training_set(self, tasks: list[TaskData], task: int) -> tuple[torch.Tensor, torch.Tensor]:
        seen = tasks[: task + 1]
        return torch.cat([t.train_images for t in seen]), torch.cat([t.train_labels for t in seen])

    def loss(
        self, model: ContinualMamba, images: torch.Tensor, labels: torch.Tensor, task: int, offset: int
    ) -> torch.Tensor:
        return F.cross_entropy(model(images, tasks=task + 1), labels)


def _named_ssm(model: ContinualMamba) -> dict[str, torch.nn.Parameter]:
    return {f"{e.block}.{e.part}": e.param for e in model.ssm_parameters()}


LEARNERS: dict[str, type[Learner]] = {
    "mambacl": MambaCLLearner,
    "finetune": Learner,
    "heads": HeadsOnly,
    "ewc": EWCLearner,
    "lwf": LwFLearner,
    "replay": ReplayLearner,
    "joint": JointLearner,
}


def make_learner(cfg: ContinualConfig) -> Learner:
    return LEARNERS[cfg.method](cfg)
