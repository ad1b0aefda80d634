import pytest
import torch

from fedray.platform.modules.classifier import build_classifier
from fedray.platform.modules.config import ModelConfig
from fedray.platform.modules.encoders import ConvEncoder
from fedray.platform.params import count_parameters, get_arrays, set_arrays, split_names


def test_stage_outputs_match_feature_info():
    enc = ConvEncoder(3, [8, 16, 32], norm_groups=4)
    x = torch.randn(2, 3, 32, 32)
    stages = enc.forward_stages(x)
    assert list(stages) == [s.name for s in enc.feature_info] == ["stage1", "stage2", "stage3"]
    for info in enc.feature_info:
        assert stages[info.name].shape == (2, info.channels, 32 // info.reduction, 32 // info.reduction)
    assert torch.equal(enc(x), stages["stage3"])
    assert list(enc.forward_stages(x, ("stage2",))) == ["stage2"]
    with pytest.raises(KeyError, match="unknown stages"):
        enc.forward_stages(x, ("stage9",))


def test_classifier_split_and_parameter_names():
    model = build_classifier(ModelConfig(widths=[8, 16]), in_channels=1, num_classes=4)
    x = torch.randn(5, 1, 16, 16)
    feats = model.forward_features(x)
    assert feats.shape == (5, 16, 4, 4)
    assert model.forward_head(feats, pre_logits=True).shape == (5, 16)
    assert torch.allclose(model(x), model.forward_head(feats))
    names = [n for n, _ in model.named_parameters()]
    assert names[0] == "encoder.stages.stage1.conv.weight" and names[-1] == "head.fc.bias"
    assert "encoder.stages.stage2.norm.weight" in names


def test_benchmark_model_has_about_fifty_thousand_parameters():
    model = build_classifier(ModelConfig(widths=[24, 48, 96]), in_channels=3, num_classes=10)
    assert 45_000 <= count_parameters(model) <= 60_000


def test_shared_personal_split_and_array_round_trip():
    model = build_classifier(ModelConfig(widths=[8]), in_channels=1, num_classes=2)
    shared, personal = split_names(model, ["encoder.*"])
    assert shared and personal == ["head.fc.weight", "head.fc.bias"]
    arrays = get_arrays(model, shared)
    arrays = {k: v + 1 for k, v in arrays.items()}
    set_arrays(model, arrays)
    after = get_arrays(model, shared)
    assert all((after[k] == arrays[k]).all() for k in shared)
    with pytest.raises(ValueError, match="shape"):
        set_arrays(model, {shared[0]: arrays[shared[0]][:1]})
    with pytest.raises(KeyError, match="no tensor named"):
        set_arrays(model, {"nope": arrays[shared[0]]})
