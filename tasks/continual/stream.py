"""One task stream: a model trained through the tasks in order, evaluated on every seen task after each.

A :class:`TaskStream` is the unit the driver runs as an actor (one per stream). It owns its model, its learner's
state (covariances, Fisher, replay buffer) and its accuracy matrix, and after every task it writes all of them to
``checkpoints/stream_<k>/task_<t>.safetensors``, so a stopped run continues from the last finished task with the
same numbers it would have reached uninterrupted (every task re-seeds from ``(seed, task)``) — on the same device
and thread count; another device or thread count changes the floating-point summation order, not the method.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedray.clients.training import shuffled_batches
from fedray.platform.config import load_config
from fedray.platform.data.arrays import ImageArrays
from fedray.platform.device import select_device
from fedray.platform.io import load_arrays, read_metadata, save_arrays
from fedray.platform.metrics.continual import average_accuracy, backward_transfer, forgetting
from fedray.platform.metrics.running import RunningLoss, finite_loss
from fedray.platform.seeding import derive_seed
from fedray.tasks.continual.config import ContinualConfig
from fedray.tasks.continual.learners import make_learner
from fedray.tasks.continual.model import ContinualMamba
from fedray.tasks.continual.task_split import TaskData, build_tasks


class TaskStream:
    """Runs one stream task by task; ``run_task(t)`` returns that task's record."""

    def __init__(
        self,
        cfg_yaml: str,
        stream: int,
        data: tuple[ImageArrays, ImageArrays],
        backbone: dict[str, np.ndarray] | None,
        checkpoint_dir: str,
        resume_task: int | None = None,
    ) -> None:
        base = load_config(ContinualConfig, text=cfg_yaml)
        self.cfg = dataclasses.replace(base, seed=base.seed + stream)
        self.stream = stream
        torch.set_num_threads(self.cfg.train.threads)
        self.device = select_device()
        self.order, self.tasks = build_tasks(self.cfg, *data)
        torch.manual_seed(derive_seed(self.cfg.seed, "init"))  # the same weights in any process or runtime
        self.model = ContinualMamba(self.cfg.model, data[0].in_channels, self.cfg.data.image_size)
        if backbone is not None:
            self.model.backbone.load_state_dict({k: torch.from_numpy(v) for k, v in backbone.items()})
        self.model.freeze_all_but_ssm()
        self.learner = make_learner(self.cfg)
        self.matrix: list[list[float]] = []
        self.checkpoint_dir = Path(checkpoint_dir) / f"stream_{stream}"
        if resume_task is not None:
            self._restore(resume_task)
        self.model.to(self.device)

    # --- checkpoints -------------------------------------------------------------------------------------------
    def _checkpoint(self, task: int) -> Path:
        return self.checkpoint_dir / f"task_{task}.safetensors"

    def _save(self, task: int) -> None:
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        arrays = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        arrays.update({f"learner.{k}": v for k, v in self.learner.arrays().items()})
        meta = {"task": str(task), "matrix": json.dumps(self.matrix), "order": json.dumps(self.order)}
        save_arrays(self._checkpoint(task), arrays, meta)

    def _restore(self, task: int) -> None:
        path = self._checkpoint(task)
        arrays, meta = load_arrays(path), read_metadata(path)
        if json.loads(meta["order"]) != self.order:
            raise RuntimeError(f"{path} was written for class order {meta['order']}, this stream has {self.order}")
        for t in range(task + 1):
            self.model.heads.add_task(len(self.tasks[t].classes))
        self.model.load_state_dict(
            {k.removeprefix("model."): torch.from_numpy(v) for k, v in arrays.items() if k.startswith("model.")}
        )
        self.learner.load({k.removeprefix("learner."): v for k, v in arrays.items() if k.startswith("learner.")})
        self.matrix = json.loads(meta["matrix"])

    # --- one task ----------------------------------------------------------------------------------------------
    def run_task(self, task: int) -> dict[str, Any]:
        if task != len(self.matrix):
            raise RuntimeError(f"stream {self.stream} has finished {len(self.matrix)} tasks; cannot run task {task}")
        started = time.perf_counter()
        torch.manual_seed(derive_seed(self.cfg.seed, "task", task))
        data = self.tasks[task]
        offset = sum(len(t.classes) for t in self.tasks[:task])
        self.model.heads.add_task(len(data.classes)).to(self.device)
        self.learner.before_task(self.model, task)
        loss = self._train(task, *self.learner.training_set(self.tasks, task), offset)
        self.learner.after_task(self.model, data.train_images.to(self.device), data.train_labels.to(self.device), task)
        row = [self._accuracy(self.tasks[j], seen=task + 1) for j in range(task + 1)]
        self.matrix.append(row)
        self._save(task)
        sizes = [len(t.test_labels) for t in self.tasks]
        return {
            "stream": self.stream,
            "task": task,
            "classes": data.classes,
            "train_loss": loss,
            "accuracies": row,
            "avg_acc": average_accuracy(row, sizes),
            "forgetting": forgetting(self.matrix),
            "bwt": backward_transfer(self.matrix),
            "seconds": time.perf_counter() - started,
            "device": str(self.device),
        }

    def _train(self, task: int, images: torch.Tensor, labels: torch.Tensor, offset: int) -> float:
        cfg = self.cfg.train
        optimizer = self.learner.optimizer(self.model, task)
        milestones = sorted({max(1, math.floor(m * cfg.epochs + 0.5)) for m in cfg.milestones})  # half up
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.gamma)
        batches = shuffled_batches(
            cfg.batch_size, torch.Generator().manual_seed(derive_seed(self.cfg.seed, "batches", task))
        )
        images, labels = images.to(self.device), labels.to(self.device)
        running = RunningLoss()
        for epoch in range(cfg.epochs):
            self.model.train()
            for idx in batches(len(labels)):
                optimizer.zero_grad(set_to_none=True)
                loss = self.learner.loss(self.model, images[idx], labels[idx], task, offset)
                loss.backward()
                optimizer.step()
                running.add(loss, len(idx))
            schedule.step()
            finite_loss(running.mean(), f"continual stream {self.stream}, task {task + 1}, epoch {epoch + 1}")
        return running.mean()

    @torch.no_grad()
    def _accuracy(self, data: TaskData, seen: int) -> float:
        """Class-incremental accuracy: argmax over the concatenated logits of all ``seen`` task heads."""
        self.model.eval()
        batch = self.cfg.train.eval_batch_size
        correct = 0
        for start in range(0, len(data.test_labels), batch):
            images = data.test_images[start : start + batch].to(self.device)
            predicted = self.model(images, tasks=seen).argmax(dim=1).cpu()
            correct += int((predicted == data.test_labels[start : start + batch]).sum())
        return correct / max(len(data.test_labels), 1)

    def summary(self) -> dict[str, Any]:
        """The stream's accuracy matrix and its metrics after the tasks it has finished."""
        sizes = [len(t.test_labels) for t in self.tasks]
        return {
            "stream": self.stream,
            "seed": self.cfg.seed,
            "class_order": self.order,
            "acc_matrix": self.matrix,
            "avg_acc_curve": [average_accuracy(row, sizes) for row in self.matrix],
            "avg_acc": average_accuracy(self.matrix[-1], sizes) if self.matrix else float("nan"),
            "forgetting": forgetting(self.matrix) if self.matrix else float("nan"),
            "bwt": backward_transfer(self.matrix) if self.matrix else float("nan"),
            "test_sizes": sizes,
        }


def finished_tasks(checkpoint_dir: str | Path, stream: int) -> int:
    """How many tasks stream ``stream`` has checkpointed (tasks 0..n−1 all present)."""
    done = 0
    while (Path(checkpoint_dir) / f"stream_{stream}" / f"task_{done}.safetensors").is_file():
        done += 1
    return done
