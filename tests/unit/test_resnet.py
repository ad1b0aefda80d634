"""The ResNet encoder: stage shapes and names, residual shortcuts, and the ``resnet`` architecture."""

from __future__ import annotations

import pytest
import torch

from fedray.platform.modules.build import build_model
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.resnet import BasicBlock, ResNetEncoder


def test_stages_halve_the_size_after_the_first_and_are_addressable_by_name():
    encoder = ResNetEncoder(1, (8, 16, 32), blocks=2, norm_groups=4)
    out = encoder.forward_stages(torch.zeros(2, 1, 32, 32))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "stage1": (2, 8, 32, 32), "stage2": (2, 16, 16, 16), "stage3": (2, 32, 8, 8)
    }  # fmt: skip
    assert [(s.name, s.channels, s.reduction) for s in encoder.feature_info] == [
        ("stage1", 8, 1), ("stage2", 16, 2), ("stage3", 32, 4)
    ]  # fmt: skip
    assert torch.equal(encoder(torch.ones(1, 1, 32, 32)), encoder.forward_stages(torch.ones(1, 1, 32, 32))["stage3"])
    assert len(encoder.stages["stage2"]) == 2
    with pytest.raises(KeyError, match="unknown stages"):
        encoder.forward_stages(torch.zeros(1, 1, 8, 8), ("stage9",))


def test_a_block_adds_its_shortcut():
    """With the residual branch's last norm zeroed, a block is ReLU(shortcut(x)): identity, or the projection."""
    same = BasicBlock(4, 4, stride=1, norm_groups=2)
    torch.nn.init.zeros_(same.norm2.weight)
    x = torch.randn(2, 4, 8, 8)
    assert torch.allclose(same(x), torch.relu(x))
    down = BasicBlock(4, 8, stride=2, norm_groups=2)
    torch.nn.init.zeros_(down.norm2.weight)
    assert torch.allclose(down(x), torch.relu(down.shortcut(x)))
    assert tuple(down(x).shape) == (2, 8, 4, 4)


def test_the_resnet_architecture_is_a_classifier_with_a_named_encoder_and_head():
    model = build_model("resnet", ModelConfig(widths=[8, 16, 32], res_blocks=1, norm_groups=4), 1, 2)
    assert tuple(model(torch.zeros(3, 1, 64, 64)).shape) == (3, 2)
    names = dict(model.named_parameters())
    assert "encoder.stages.stage1.0.conv1.weight" in names and "head.fc.weight" in names
    assert tuple(model.forward_features(torch.zeros(1, 1, 64, 64)).shape) == (1, 32, 16, 16)
