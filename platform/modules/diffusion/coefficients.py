"""Per-timestep coefficient tables of a diffusion process, looked up on the device of the batch being denoised."""

from __future__ import annotations

import numpy as np
import torch


class CoefficientTables:
    """Mixin for a process whose coefficients are float64 numpy attributes indexed by timestep.

    Each table is copied to a device once and indexed there. Copying it per lookup (``from_numpy(...).to(device)``)
    is, on a GPU, a blocking host-to-device copy that stalls the stream — several times per sampling step — so the
    CPU can never queue work ahead of the GPU. The attributes must not change after the first lookup.
    """

    def table(self, name: str, device: torch.device) -> torch.Tensor:
        """The whole table ``self.<name>`` on ``device`` (copied there on first use)."""
        cache: dict[tuple[str, torch.device], torch.Tensor] = self.__dict__.setdefault("_device_tables", {})
        key = (name, device)
        if key not in cache:
            cache[key] = torch.from_numpy(np.ascontiguousarray(getattr(self, name))).to(device)
        return cache[key]

    def coef(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``self.<name>[t]`` per batch element, in ``like``'s dtype, broadcastable against ``like``."""
        picked = self.table(name, t.device)[t].to(like.dtype)
        return picked.reshape(-1, *([1] * (like.ndim - 1)))
