"""Differential privacy of a client's shared layers: opacus DP-SGD with a per-client accountant that persists.

Only shared tensors leave the client, so only they need the guarantee: their per-example gradients are clipped to
``max_grad_norm`` and noised by opacus' :class:`~opacus.optimizers.DPOptimizer`; personal tensors train with plain
SGD in the same steps. Minibatches are drawn by Poisson sampling (each example joins a step with probability
q = batch_size / N), which is what the RDP accountant's subsampled-Gaussian analysis assumes. The accountant's
history, ``[(noise_multiplier, q, steps), ...]``, is part of the client's saved state, so ε keeps growing across
rounds, restarts and resumes instead of starting over. Rounds with the same noise and sampling rate are one entry
whose steps add up: Rényi DP composes additively over steps, so ε is the same, and computing it (for every fit and
evaluation) stays as cheap in round 40 as in round 1 instead of growing with the history.

The guarantee is per training example of the arrays a client trains on. Where a client draws fresh synthetic
samples each epoch from a few source images (self-blended forgeries), ε bounds what one drawn sample reveals, not
what one source face does.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Iterator

import torch
from opacus import GradSampleModule
from opacus.accountants import RDPAccountant
from opacus.optimizers import DPOptimizer
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from opacus.validators import ModuleValidator
from torch import nn

from fedray.clients.config import PrivacyConfig
from fedray.clients.methods import MakeOptimizer
from fedray.clients.training import Batches
from fedray.platform.errors import ConfigError

# opacus hooks every layer, the first one included, whose input (the images) needs no gradient; torch then warns on
# every backward pass that the hook sees output gradients only, which is all opacus uses.
warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed with respect")


History = list[tuple[float, float, int]]


def merged(history: History) -> History:
    """``history`` with consecutive entries of the same (noise multiplier, sampling rate) folded into one."""
    out: History = []
    for sigma, q, steps in history:
        if out and out[-1][:2] == (sigma, q):
            out[-1] = (sigma, q, out[-1][2] + steps)
        else:
            out.append((sigma, q, steps))
    return out


@functools.lru_cache(maxsize=256)
def spent_epsilon(history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    """ε at ``delta`` after ``history``, remembered: a fit's planned ε is its ε after the commit, and the evaluation
    that follows asks again (as do the pool's other clients with the same sampling rate)."""
    if not history:
        return 0.0
    accountant = RDPAccountant()
    accountant.history = list(history)
    return float(accountant.get_epsilon(delta))


class _MixedOptimizer:
    """Steps an opacus DP optimizer over the shared parameters and a plain one over the personal ones together.

    ``zero_grad`` clears every per-example gradient of the model, personal ones included, so none accumulate."""

    def __init__(self, privacy: ClientPrivacy, private: DPOptimizer | None, plain: torch.optim.Optimizer | None):
        self.privacy, self.private, self.plain = privacy, private, plain

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self.private is not None:
            self.private.zero_grad(set_to_none=True)  # also opacus' "step processed" marks
        self.privacy.grad_sample_module.zero_grad(set_to_none=True)

    def step(self) -> None:
        if self.private is not None:
            self.private.step()
            self.privacy.pending_steps += 1
        if self.plain is not None:
            self.plain.step()


class ClientPrivacy:
    """DP-SGD for ``model``'s ``shared_names`` parameters and the accountant of one client."""

    def __init__(self, model: nn.Module, shared_names: list[str], cfg: PrivacyConfig, batch_size: int) -> None:
        problems = ModuleValidator.validate(model, strict=False)
        if problems:
            raise ConfigError(f"privacy.enabled: the model is not DP-SGD compatible: {problems[0]}")
        self.cfg, self.batch_size = cfg, batch_size
        self.grad_sample_module = GradSampleModule(model)  # hooks the model's layers; the model is still called
        shared = set(shared_names)
        self.shared_ids = {id(p) for n, p in model.named_parameters() if n in shared}
        self.accountant = RDPAccountant()
        self.pending_steps = 0

    def sample_rate(self, num_samples: int) -> float:
        return min(1.0, self.batch_size / max(num_samples, 1))

    def batches(self, generator: torch.Generator) -> Batches:
        """Poisson-sampled batches: each example joins each step with probability q; 1/q steps per epoch."""

        def epoch(num_samples: int) -> Iterator[torch.Tensor]:
            sampler = UniformWithReplacementSampler(
                num_samples=num_samples, sample_rate=self.sample_rate(num_samples), generator=generator
            )
            for indices in sampler:
                yield torch.as_tensor(indices, dtype=torch.long)

        return epoch

    def optimizers(self, make_sgd: MakeOptimizer) -> MakeOptimizer:
        """An optimizer factory: DP-SGD over the shared parameters among ``params``, plain SGD over the rest."""

        def make(params: list[nn.Parameter]) -> torch.optim.Optimizer:
            shared = [p for p in params if id(p) in self.shared_ids]
            personal = [p for p in params if id(p) not in self.shared_ids]
            private = (
                DPOptimizer(
                    make_sgd(shared),
                    noise_multiplier=self.cfg.noise_multiplier,
                    max_grad_norm=self.cfg.max_grad_norm,
                    expected_batch_size=self.batch_size,
                )
                if shared
                else None
            )
            return _MixedOptimizer(self, private, make_sgd(personal) if personal else None)  # type: ignore[return-value]

        return make

    def epsilon(self, extra_steps: int = 0, sample_rate: float = 0.0) -> float:
        """ε spent so far at ``delta`` (or after ``extra_steps`` more steps at ``sample_rate``)."""
        history = self.accountant.history
        if extra_steps:
            history = merged([*history, (self.cfg.noise_multiplier, sample_rate, extra_steps)])
        return spent_epsilon(tuple(history), self.cfg.delta)

    def refusal(self, planned_steps: int, sample_rate: float) -> str | None:
        """Why this client must not train this round (its budget would be exceeded), or None."""
        budget = self.cfg.epsilon_budget
        if budget is None or planned_steps == 0:
            return None
        after = self.epsilon(planned_steps, sample_rate)
        if after <= budget:
            return None
        return f"privacy budget spent: ε={self.epsilon():.3f} now, {after:.3f} after this round > budget {budget:g}"

    def commit(self, sample_rate: float) -> None:
        """Record the DP steps taken since the last commit with the accountant."""
        if self.pending_steps:
            entry = (self.cfg.noise_multiplier, sample_rate, self.pending_steps)
            self.accountant.history = merged([*self.accountant.history, entry])
            self.pending_steps = 0

    def state(self) -> list[list[float]]:
        return [list(entry) for entry in self.accountant.history]

    def load_state(self, history: list[list[float]]) -> None:
        self.accountant.history = merged([(float(s), float(q), int(n)) for s, q, n in history])
        self.pending_steps = 0
