"""Named tensors: which are shared, which are personal, and their conversion to and from numpy.

Only shared tensors cross the wire. They travel as ``dict[str, np.ndarray]`` keyed by parameter name, the format
the parameter server validates and aggregates and that Flower's ``ArrayRecord`` carries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

import numpy as np
import torch
from torch import nn

from fedray.platform.io import strip_wrapper_prefixes
from fedray.platform.messages import NamedArrays


def is_shared(name: str, patterns: Iterable[str]) -> bool:
    """Whether a parameter name matches any of the shared fnmatch patterns."""
    return any(fnmatchcase(name, p) for p in patterns)


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict with wrapper prefixes removed (see :mod:`fedray.platform.io`)."""
    return strip_wrapper_prefixes(model.state_dict())


def split_names(model: nn.Module, shared_patterns: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(shared, personal)`` state-dict names of ``model`` under ``shared_patterns``."""
    patterns = list(shared_patterns)
    names = list(model_state(model))
    shared = [n for n in names if is_shared(n, patterns)]
    return shared, [n for n in names if n not in set(shared)]


def get_arrays(model: nn.Module, names: Iterable[str]) -> NamedArrays:
    """Copies of the named state tensors as numpy arrays (on the CPU)."""
    state = model_state(model)
    return {name: state[name].detach().cpu().numpy().copy() for name in names}


def set_arrays(model: nn.Module, arrays: Mapping[str, np.ndarray]) -> None:
    """Copy named arrays into the model's state in place; every name must exist with the same shape."""
    state = model_state(model)
    for name, value in arrays.items():
        if name not in state:
            raise KeyError(f"model has no tensor named {name!r}")
        target = state[name]
        if tuple(target.shape) != tuple(value.shape):
            raise ValueError(f"{name}: model shape {tuple(target.shape)} but array shape {tuple(value.shape)}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.array(value)))  # a writable copy


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
