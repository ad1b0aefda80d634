"""Local training and evaluation as plain functions.

The Ray actor, the inline runtime and the Flower ``ClientApp`` all call these, so the training step cannot drift
between deployment paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch
from torch import nn

from fedray.platform.metrics.classification import classification_metrics
from fedray.platform.metrics.running import RunningLoss

Batches = Callable[[int], Iterable[torch.Tensor]]
"""``batches(num_samples)``: the index batches of one epoch over ``num_samples`` samples."""


def shuffled_batches(batch_size: int, generator: torch.Generator) -> Batches:
    """Shuffled batches covering every sample once per epoch (the last batch may be smaller)."""

    def epoch(num_samples: int) -> Iterator[torch.Tensor]:
        yield from torch.randperm(num_samples, generator=generator).split(batch_size)

    return epoch


EpochData = Callable[[int], tuple[torch.Tensor, torch.Tensor]]
"""The samples of epoch ``e`` (the same arrays every epoch, or a fresh draw per epoch)."""


def train_epochs(
    model: nn.Module,
    data: EpochData,
    optimizer: torch.optim.Optimizer,
    epochs: range,
    batches: Batches,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> dict[str, float]:
    """SGD on the model's own ``training_losses`` (plus ``penalty()``, e.g. FedProx's proximal term), one pass of
    ``batches`` over ``data(e)`` for each epoch index ``e``. Returns the mean loss and the step count.
    """
    model.train()
    running, steps = RunningLoss(), 0
    for epoch in epochs:
        images, labels = data(epoch)
        for idx in batches(len(labels)):
            if len(idx) == 0:  # Poisson sampling can draw an empty batch (probability e^-batch_size)
                continue
            optimizer.zero_grad(set_to_none=True)
            loss = model.training_losses(images[idx], labels[idx])["loss"]
            if penalty is not None:
                loss = loss + penalty()
            loss.backward()
            optimizer.step()
            running.add(loss, len(idx))
            steps += 1
    return {"train_loss": running.mean(), "steps": float(steps)}


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 512) -> dict[str, float]:
    """Accuracy and loss (and AUC for two classes) of ``model`` on the given samples."""
    model.eval()
    logits = torch.cat([model(images[i : i + batch_size]) for i in range(0, len(labels), batch_size)])
    return classification_metrics(logits, labels)
