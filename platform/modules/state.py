"""Model state as named numpy arrays: what tasks return through Ray's object store, what safetensors checkpoints
hold, and what the inline runtime hands back unchanged."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from fedray.platform.errors import DataError


def as_tensor(array: np.ndarray, dtype: np.dtype | None = None) -> torch.Tensor:
    """A tensor over ``array``'s data, copied only when it is read-only or not contiguous (as arrays from Ray's
    object store are read-only): torch must not alias memory it may not write."""
    array = np.asarray(array, dtype=dtype)
    return torch.from_numpy(array if array.flags.writeable and array.flags.c_contiguous else np.array(array))


def state_arrays(module: nn.Module) -> dict[str, np.ndarray]:
    """The module's parameters and buffers as numpy arrays (copies, on the CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_state_arrays(
    module: nn.Module, state: Mapping[str, np.ndarray], source: str = "weights", hint: str = ""
) -> nn.Module:
    """Load ``state`` into ``module``; weights of another architecture are a one-line DataError naming ``source``
    (and ``hint``: which settings decide the shapes)."""
    try:
        module.load_state_dict({k: as_tensor(v) for k, v in state.items()})
    except RuntimeError as exc:
        problem = " ".join(str(exc).split("\n\t")[1:2]).strip() or str(exc).splitlines()[0]
        where = f" ({hint})" if hint else ""
        raise DataError(f"{source} does not fit this model{where}: {problem[:200]}") from None
    return module
