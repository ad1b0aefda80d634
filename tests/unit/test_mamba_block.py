"""The Mamba block and the vision backbone: causality, recorded tensors, scan choices and covariances."""

from __future__ import annotations

import pytest
import torch

from fedray.platform.modules.config import MambaConfig
from fedray.platform.modules.mamba import GroupRMSNorm, MambaBlock, VisionMamba
from fedray.tasks.continual.null_space_cl import batch_covariances

SMALL = MambaConfig(d_model=16, expand=2, d_state=4, dt_rank=2, depth=2, group_norm=8, patch_size=4)


@pytest.mark.parametrize("group_norm", [8, None])
def test_block_is_causal(group_norm):
    """Changing token 5 changes no output before position 5 (causal conv and a forward scan)."""
    torch.manual_seed(0)
    block = MambaBlock(16, MambaConfig(d_model=16, d_state=4, dt_rank=2, group_norm=group_norm)).eval()
    tokens = torch.randn(2, 9, 16)
    changed = tokens.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        a, b = block(tokens), block(changed)
    assert torch.equal(a[:, :5], b[:, :5])
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-3


def test_block_records_what_the_projector_needs():
    block = MambaBlock(16, SMALL)
    block.record = {}
    block(torch.randn(3, 7, 16))
    assert {k: tuple(v.shape) for k, v in block.record.items()} == {
        "tokens": (3, 7, 32),
        "delta": (3, 7, 32),
        "gated": (3, 7, 32),
    }
    assert (block.record["delta"] > 0).all()  # softplus step sizes


def test_reference_and_fast_scans_give_the_same_backbone():
    torch.manual_seed(1)
    fast = VisionMamba(SMALL, in_channels=1, image_size=16)
    reference = VisionMamba(MambaConfig(**{**SMALL.__dict__, "scan": "reference"}), 1, 16)
    reference.load_state_dict(fast.state_dict())
    images = torch.rand(4, 1, 16, 16)
    torch.testing.assert_close(fast(images), reference(images), rtol=1e-5, atol=1e-5)


def test_backbone_shapes_and_errors():
    assert VisionMamba(SMALL, 3, 16)(torch.rand(2, 3, 16, 16)).shape == (2, 16)
    with pytest.raises(ValueError, match="patch_size=4 must divide the image size 18"):
        VisionMamba(SMALL, 1, 18)
    with pytest.raises(ValueError, match="group_norm=5 must divide"):
        GroupRMSNorm(32, 5)


def test_batch_covariances_match_their_definitions():
    torch.manual_seed(2)
    tokens, delta, gated = torch.randn(3, 5, 4), torch.rand(3, 5, 4), torch.randn(3, 5, 4)
    cov = batch_covariances({"tokens": tokens, "delta": delta, "gated": gated})
    x = tokens.double().reshape(15, 4)
    torch.testing.assert_close(cov["x"], x.T @ x / 15)
    torch.testing.assert_close(cov["A"], delta.double().reshape(15, 4).T @ delta.double().reshape(15, 4) / 15)
    torch.testing.assert_close(cov["out"], gated.double().reshape(15, 4).T @ gated.double().reshape(15, 4) / 15)
    # W_B: per image, row i of M is Σ_l δ_{l,i} x_l; all images' rows stacked, divided by b·D
    rows = [
        sum(delta[k, step, i].double() * tokens[k, step].double() for step in range(5))
        for k in range(3)
        for i in range(4)
    ]
    m = torch.stack(rows)
    torch.testing.assert_close(cov["B"], m.T @ m / 12)
