"""The weight average every generative workload evaluates: decay warm-up and buffers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fedray.platform.optim.ema_steps import ema_model, train_with_ema, warmed_decay


def test_warmed_decay_by_hand() -> None:
    assert warmed_decay(0.999, 0) == pytest.approx(1 / 10)
    assert warmed_decay(0.999, 90) == pytest.approx(91 / 100)
    assert warmed_decay(0.999, 990) == pytest.approx(991 / 1000)
    assert warmed_decay(0.999, 20_000) == 0.999  # capped late in a long run
    assert warmed_decay(0.5, 3) == pytest.approx(4 / 13)
    assert warmed_decay(0.5, 100) == 0.5  # a low decay is reached sooner and never exceeded


def _scalar() -> nn.Linear:
    layer = nn.Linear(1, 1, bias=False)
    nn.init.zeros_(layer.weight)
    return layer


def test_average_follows_the_warmed_recurrence() -> None:
    layer = _scalar()
    ema = ema_model(layer, 0.999)
    averages = []
    for value in [0.0, 2.0, -1.0]:
        layer.weight.data.fill_(value)
        ema.update_parameters(layer)
        averages.append(ema.module.weight.item())
    # by hand: copy 0; decay 2/11 → 18/11; decay 3/12 → 0.25·18/11 − 0.75
    assert averages == pytest.approx([0.0, 18 / 11, 4.5 / 11 - 0.75])


def test_a_short_run_forgets_the_initial_weights() -> None:
    """500 updates of 0.999 without warm-up would keep 0.999^499 ≈ 61 % of the zero initialisation."""
    layer = _scalar()
    ema = ema_model(layer, 0.999)
    ema.update_parameters(layer)  # the initial (zero) weights
    layer.weight.data.fill_(1.0)
    for _ in range(499):
        ema.update_parameters(layer)
    kept = math.prod(warmed_decay(0.999, n) for n in range(1, 500))
    assert ema.module.weight.item() == pytest.approx(1 - kept)
    assert kept < 0.02 < 0.999**499


def test_floating_buffers_are_averaged_and_counters_copied() -> None:
    norm = nn.BatchNorm1d(2)
    ema = ema_model(norm, 0.999)
    ema.update_parameters(norm)
    norm.running_mean.fill_(3.0)
    norm.num_batches_tracked.fill_(7)
    ema.update_parameters(norm)
    assert torch.allclose(ema.module.running_mean, torch.full((2,), (1 - warmed_decay(0.999, 1)) * 3.0))
    assert int(ema.module.num_batches_tracked) == 7


def test_train_with_ema_returns_the_warmed_average() -> None:
    torch.manual_seed(0)
    layer = _scalar()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    seen = []

    def loss_of(net: nn.Module, target: float, step: int) -> torch.Tensor:
        return (net.weight.sum() - target) ** 2

    def batches():
        for _ in range(30):
            yield 1.0
            seen.append(layer.weight.item())

    ema, curve = train_with_ema(layer, loss_of, batches(), optimizer, 0.999, log_every=10)
    expected = seen[0]
    for n, value in enumerate(seen[1:], start=1):
        expected = warmed_decay(0.999, n) * expected + (1 - warmed_decay(0.999, n)) * value
    assert ema.weight.item() == pytest.approx(expected)
    assert [point["step"] for point in curve] == [10, 20, 30]


def test_losses_kept_on_their_device_give_the_host_sums() -> None:
    from fedray.platform.metrics.running import RunningLoss, window_mean

    generator = torch.Generator().manual_seed(0)
    losses = [torch.rand((), generator=generator) * 3 for _ in range(50)]
    sizes = [int(n) for n in torch.randint(1, 64, (50,), generator=generator)]
    running, host = RunningLoss(), 0.0
    assert running.mean() == 0.0  # no batch yet
    for loss, n in zip(losses, sizes, strict=True):
        running.add(loss, n)
        host += loss.item() * n
    assert running.total() == host and running.mean() == host / sum(sizes)  # bit for bit
    assert window_mean(losses[:10]) == pytest.approx(sum(x.item() for x in losses[:10]) / 10, rel=1e-12)


@pytest.mark.parametrize("bad_step", [3, 12])  # inside the first log window, and in the last, partial one
def test_a_loss_that_stops_being_finite_stops_training_at_its_log_window(bad_step: int) -> None:
    from fedray.platform.errors import DivergedError

    layer = _scalar()
    optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
    steps = []

    def loss_of(net: nn.Module, batch: float, step: int) -> torch.Tensor:
        steps.append(step)
        loss = (net.weight.sum() - 1.0) ** 2
        return loss * float("nan") if step == bad_step else loss

    window_end = 5 if bad_step < 5 else 13
    with pytest.raises(DivergedError, match=rf"^toy, step {window_end}: the training loss became nan; training "):
        train_with_ema(layer, loss_of, iter([0.0] * 13), optimizer, 0.9, log_every=5, name="toy")
    assert steps[-1] == window_end - 1  # no step after the window that showed it


def test_finite_loss_passes_numbers_and_names_what_diverged() -> None:
    from fedray.platform.errors import DivergedError
    from fedray.platform.metrics.running import finite_loss

    assert finite_loss(0.25, "x") == 0.25
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(DivergedError, match=r"^detector, epoch 2: the training loss became"):
            finite_loss(bad, "detector, epoch 2")
