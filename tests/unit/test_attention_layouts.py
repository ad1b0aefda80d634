"""Every scaled-dot-product attention in the model library gets q, k, v and mask with a unit last stride. CUDA's
fused kernels (flash, memory-efficient) require it and otherwise fall back, silently, to the unfused math kernel
that materialises the whole attention matrix; the CPU never checks, so this test records the layouts on the CPU."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fedray.platform.modules.config import SRNetConfig, UNetConfig
from fedray.platform.modules.diffusion.cross_attention import KeyValue
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.dit_sr import DiTSRNet


@pytest.fixture
def attention_inputs(monkeypatch):
    """The (name, last stride) of every tensor each attention call received."""
    calls: list[dict[str, int]] = []
    real = F.scaled_dot_product_attention

    def recording(q, k, v, attn_mask=None, **kwargs):
        tensors = {"q": q, "k": k, "v": v, **({"mask": attn_mask} if attn_mask is not None else {})}
        calls.append({name: t.stride(-1) for name, t in tensors.items()})
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", recording)
    return calls


def test_unet_self_attention(attention_inputs):
    cfg = UNetConfig(model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[8], num_heads=2)
    UNet(cfg, 1, 1, image_size=16)(torch.randn(2, 1, 16, 16), torch.tensor([3, 700]))
    assert len(attention_inputs) == 4 and all(set(c.values()) == {1} for c in attention_inputs)


def test_swin_window_attention_shifted_and_not(attention_inputs):
    cfg = SRNetConfig(model_channels=8, channel_mult=[1, 2], embed_dim=16, depth=2, window=4, num_heads=2)
    x = torch.randn(2, 3, 16, 16)
    DiTSRNet(cfg, 3, 3, 3, 16)(x, torch.tensor([0, 14]), x)
    masked = [c for c in attention_inputs if "mask" in c]
    assert masked and all(set(c.values()) == {1} for c in attention_inputs)


def test_cross_attention_over_tokens(attention_inputs):
    q = torch.randn(2, 16, 2, 4).transpose(1, 2)  # [B, heads, L, C/heads] as the UNet block hands it over
    KeyValue(context_dim=6, channels=8).attend(q.contiguous(), torch.randn(2, 5, 6), heads=2)
    assert attention_inputs == [{"q": 1, "k": 1, "v": 1}]
