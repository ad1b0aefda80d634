"""Ditto's pair of models per client (Li et al., "Ditto: Fair and Robust Federated Learning Through
Personalization", 2021).

``global_model`` is the federated model w (aggregated by the server); ``personal_model`` is the client's own v_k,
trained on its data with a pull (λ/2)·‖v_k − w‖² towards the global model it received. Both start from the same
weights. The client predicts with ``personal_model``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

DITTO_SHARED = ["global_model.*"]


class DittoPair(nn.Module):
    def __init__(self, make_model: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.global_model = make_model()
        self.personal_model = make_model()
        self.personal_model.load_state_dict(self.global_model.state_dict())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.personal_model(x)
