"""Composition building blocks: fusion and concatenation cross-attention against their formulas, the control branch,
the image tokenizer, what trains and what stays frozen, classifier-free guidance and the composite metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fedray.platform.modules.config import UNetConfig
from fedray.platform.modules.diffusion.controlnet import ControlNet
from fedray.platform.modules.diffusion.cross_attention import (
    ConcatProcessor,
    CrossAttentionBlock,
    FusionBlock,
    FusionProcessor,
    ImageContext,
    set_cross_attention,
)
from fedray.platform.modules.diffusion.unet import UNet
from fedray.platform.modules.encoders import ConvEncoder
from fedray.platform.modules.tokens import ImageTokenizer, Resampler
from fedray.tasks.compose.config import ComposeConfig
from fedray.tasks.compose.metrics import composite_quality, region_feature_cosine
from fedray.tasks.compose.model import Compositor, build_base, build_token_encoder
from fedray.tasks.compose.sampling import guided_denoiser
from fedray.tasks.compose.training import drop_tokens

UNET = UNetConfig(model_channels=8, channel_mult=[1, 2], num_res_blocks=1, attention_resolutions=[4], num_heads=2)


def _small_config() -> ComposeConfig:
    cfg = ComposeConfig()
    cfg.data.image_size = 8
    cfg.model = UNET
    cfg.cross_attention_resolutions = [8, 4]
    cfg.tokens.widths, cfg.tokens.stages, cfg.tokens.dim, cfg.tokens.heads = [4, 8], ["stage1", "stage2"], 8, 2
    return cfg


def _randomised(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every parameter redrawn (zero-initialised layers included), so that formulas are tested on generic weights."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=generator))
    return module


def _sdpa_by_hand(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    weights = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5, dim=-1)
    return weights @ v


def _split(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.reshape(b, n, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, c = x.shape
    return x.transpose(1, 2).reshape(b, n, h * c)


def test_fusion_processor_is_dual_key_value_attention_merged_by_the_fusion_block():
    torch.manual_seed(0)
    proc = _randomised(FusionProcessor(context_dim=6, channels=8))
    q = torch.randn(2, 2, 5, 4)  # [B, heads, L, C/heads]
    ctx = ImageContext(torch.randn(2, 3, 6), torch.randn(2, 7, 6))
    o_fg = _merge(_sdpa_by_hand(q, _split(ctx.foreground @ proc.foreground.to_k.weight.T, 2),
                                _split(ctx.foreground @ proc.foreground.to_v.weight.T, 2)))  # fmt: skip
    o_bg = _merge(_sdpa_by_hand(q, _split(ctx.background @ proc.background.to_k.weight.T, 2),
                                _split(ctx.background @ proc.background.to_v.weight.T, 2)))  # fmt: skip
    w1, w2, w3 = (layer.weight for layer in proc.fusion if isinstance(layer, torch.nn.Linear))
    expected = F.elu(F.elu(torch.cat([o_fg, o_bg], -1) @ w1.T) @ w2.T) @ w3.T
    torch.testing.assert_close(proc(q, ctx, heads=2), expected, atol=1e-5, rtol=1e-5)
    assert all(layer.bias is None for layer in proc.fusion if isinstance(layer, torch.nn.Linear))
    assert [tuple(m.weight.shape) for m in proc.fusion if isinstance(m, torch.nn.Linear)] == [(16, 16), (8, 16), (8, 8)]


def test_concat_processor_attends_once_over_both_token_sets():
    torch.manual_seed(0)
    proc = _randomised(ConcatProcessor(context_dim=6, channels=8))
    q = torch.randn(2, 2, 5, 4)
    ctx = ImageContext(torch.randn(2, 3, 6), torch.randn(2, 7, 6))
    tokens = torch.cat([ctx.foreground, ctx.background], dim=1)
    expected = _merge(_sdpa_by_hand(q, _split(tokens @ proc.tokens.to_k.weight.T, 2),
                                    _split(tokens @ proc.tokens.to_v.weight.T, 2)))  # fmt: skip
    torch.testing.assert_close(proc(q, ctx, heads=2), expected, atol=1e-5, rtol=1e-5)


def test_cross_attention_adds_nothing_without_processor_or_context_and_starts_at_zero():
    torch.manual_seed(0)
    block = CrossAttentionBlock(8, num_heads=2, head_channels=None)
    x, ctx = torch.randn(2, 8, 4, 4), ImageContext(torch.randn(2, 3, 6), torch.randn(2, 5, 6))
    assert torch.equal(block(x, None, ctx), x)  # no processor installed
    (processor,) = set_cross_attention(block, "fusion", 6)
    assert torch.equal(block(x, None, None), x)  # no context
    torch.testing.assert_close(block(x, None, ctx), x)  # value projections start at zero
    _randomised(processor)
    out = block(x, None, ctx)
    assert not torch.allclose(out, x)
    changed = block(x, None, ImageContext(ctx.foreground + 1, ctx.background))
    assert not torch.allclose(changed, out)  # the foreground tokens matter
    with pytest.raises(ValueError, match="must be one of"):
        set_cross_attention(block, "sum", 6)
    with pytest.raises(ValueError, match="no cross-attention layers"):
        set_cross_attention(torch.nn.Linear(2, 2), "fusion", 6)


def test_fusion_block_merges_two_results_into_one_width():
    block = FusionBlock(8)
    assert block(torch.randn(3, 5, 16)).shape == (3, 5, 8)


def test_unet_places_cross_attention_at_the_named_sides_and_in_the_middle():
    unet = UNet(UNET, 3, 3, 8, cross_attention_resolutions=[4])
    blocks = [m for m in unet.modules() if isinstance(m, CrossAttentionBlock)]
    # side 4: one down stage + two up stages at level 1, plus the middle block
    assert len(blocks) == 4
    assert not any(isinstance(m, CrossAttentionBlock) for m in UNet(UNET, 3, 3, 8).modules())


def test_control_branch_copies_the_encoder_starts_at_zero_and_steers_the_unet():
    torch.manual_seed(0)
    unet = _randomised(UNet(UNET, 3, 3, 8))
    control = ControlNet.from_unet(unet, UNET, 3, 8)
    for name, value in control.state_dict().items():
        if name.startswith(("time_embed.", "input.", "down.", "middle.")):
            assert torch.equal(value, unet.state_dict()[name]), name
    x, t, hint = torch.randn(2, 3, 8, 8), torch.tensor([3, 500]), torch.rand(2, 3, 8, 8)
    residuals = control(x, t, hint)
    assert len(residuals) == len(unet.down) + 2  # input conv, every down stage, the middle block
    assert all(torch.count_nonzero(r) == 0 for r in residuals)
    torch.testing.assert_close(unet(x, t, control=residuals), unet(x, t))
    _randomised(control, seed=1)
    assert not torch.allclose(unet(x, t, control=control(x, t, hint)), unet(x, t))
    assert not torch.allclose(control(x, t, hint)[0], control(x, t, hint + 0.5)[0])  # it reads the hint
    with pytest.raises(ValueError, match="residuals"):
        unet(x, t, control=residuals[:-1])


def test_tokenizer_freezes_its_encoder_and_counts_tokens_per_stage():
    encoder = ConvEncoder(3, [4, 8, 16])
    tokenizer = ImageTokenizer(encoder, ["stage2", "stage3"], image_size=32, dim=8, heads=2).train()
    assert not encoder.training and tokenizer.resampler.training
    tokens = tokenizer(torch.randn(2, 3, 32, 32))
    assert tokens.shape == (2, 8 * 8 + 4 * 4, 8) and tokenizer.num_tokens == 80
    tokens.sum().backward()
    assert all(p.grad is None for p in encoder.parameters())
    assert tokenizer.proj["stage2"].weight.grad is not None
    with pytest.raises(ValueError, match="unknown encoder stages"):
        ImageTokenizer(encoder, ["stage9"], 32, 8, 2)


def test_resampler_is_a_residual_pre_norm_block_that_keeps_the_token_count():
    resampler = Resampler(8, heads=2)
    x = torch.randn(2, 5, 8)
    assert resampler(x).shape == x.shape
    for layer in (resampler.attn.out_proj, resampler.ff[-1]):
        torch.nn.init.zeros_(layer.weight)
        torch.nn.init.zeros_(layer.bias)
    torch.testing.assert_close(resampler(x), x)


@pytest.mark.parametrize(("method", "has_control"), [("fusion", True), ("concat", False), ("fusion_nocontrol", False)])
def test_compositor_trains_only_the_conditioning_and_starts_at_the_base_model(method, has_control):
    torch.manual_seed(0)
    cfg = _small_config()
    base, encoder = _randomised(build_base(cfg)), build_token_encoder(cfg)
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([10, 900])
    reference = base(x, t)
    model = Compositor(cfg, method, base, encoder)
    fg, bg = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(model(x, t, model.context(fg, bg), bg), reference)
    trainable = {id(p) for p in model.trainable()}
    assert not any(id(p) in trainable for name, p in base.named_parameters() if ".processor." not in name)
    assert not any(id(p) in trainable for p in encoder.parameters())
    assert (model.control is not None) == has_control
    if has_control:
        unused = {id(p) for m in model.control.modules() if isinstance(m, CrossAttentionBlock) for p in m.parameters()}
        assert all((id(p) in trainable) != (id(p) in unused) for p in model.control.parameters())
    kinds = {type(m.processor) for m in base.modules() if isinstance(m, CrossAttentionBlock)}
    assert kinds == {ConcatProcessor if method == "concat" else FusionProcessor}
    model(x, t, model.context(fg, bg), bg).square().mean().backward()
    assert all(p.grad is not None for p in model.trainable())


def test_guidance_one_is_the_conditional_model_and_zero_the_unconditional_one():
    torch.manual_seed(0)
    cfg = _small_config()
    model = _randomised(Compositor(cfg, "fusion", build_base(cfg), build_token_encoder(cfg)))
    x, t = torch.randn(2, 3, 8, 8), torch.tensor([5, 700])
    fg, bg = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    conditional = model(x, t, model.context(fg, bg), bg)
    zeros = torch.zeros_like(fg)
    unconditional = model(x, t, model.context(zeros, zeros), bg)
    torch.testing.assert_close(guided_denoiser(model, fg, bg, 1.0)(x, t), conditional, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(guided_denoiser(model, fg, bg, 0.0)(x, t), unconditional, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(
        guided_denoiser(model, fg, bg, 2.0)(x, t), 2 * conditional - unconditional, atol=1e-4, rtol=1e-4
    )


def test_token_dropout_zeroes_exactly_the_chosen_rows():
    images = torch.ones(3, 3, 4, 4)
    out = drop_tokens(images, torch.tensor([True, False, True]))
    assert out[[0, 2]].abs().sum() == 0 and torch.equal(out[1], images[1])


def test_composite_metrics_split_the_error_between_region_and_background():
    reference = np.zeros((3, 8, 8), dtype=np.float32)
    region = np.zeros((1, 8, 8), dtype=np.float32)
    region[0, 2:6, 2:6] = 1
    output = reference.copy()
    output[:, 2:6, 2:6] = 0.2  # in [−1, 1]: 0.1 in [0, 1] units, inside the region only
    row = composite_quality(reference, output, region)
    assert row["psnr_region"] == pytest.approx(20.0)  # 10·log10(1 / 0.1²)
    assert row["psnr_background"] == float("inf")
    big, big_region = np.zeros((3, 24, 24), np.float32), np.zeros((1, 24, 24), np.float32)
    big_region[0, 8:16, 8:16] = 1
    noisy = big + 0.3 * np.random.default_rng(1).standard_normal(big.shape).astype(np.float32) * big_region
    ssim = composite_quality(big, noisy, big_region)
    assert ssim["ssim_region"] < ssim["ssim"] < 1  # the error is inside the region
    assert composite_quality(big, big, big_region)["ssim_region"] == pytest.approx(1.0)
    assert row["mse"] == pytest.approx(0.01 * 16 / 64)
    assert row["psnr"] == pytest.approx(10 * np.log10(1 / (0.01 * 16 / 64)))
    encoder = ConvEncoder(3, [4, 8]).eval()
    batch = np.random.default_rng(0).uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32)
    regions = np.repeat(region[None], 2, axis=0)
    np.testing.assert_allclose(region_feature_cosine(encoder, batch, batch, regions), 1.0, atol=1e-5)
    assert (region_feature_cosine(encoder, batch, -batch, regions) < 0.999).all()
