"""VGGT aggregator vs the official code (golden fixture `vggt_aggregator_tiny`)."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from scenegen_core.conditioning import split_vggt_channels
from scenegen_core.models.vggt import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.layers import patch_positions

pytestmark = pytest.mark.parity

ATOL = 1e-5  # README: kernel choice alone moves outputs by <= 3.7e-6; eps mistakes by >= 2e-5.
CASES = ("main", "single", "b2s1", "nonsq")
TINY_EMBED = 64


@pytest.fixture(scope="module")
def fixture(reference_dir):
    return load_file(str(reference_dir / "vggt_aggregator_tiny.safetensors"))


@pytest.fixture(scope="module")
def aggregator(fixture):
    model = VGGTAggregator(VGGTAggregatorConfig.sized(img_size=56, embed_dim=TINY_EMBED, depth=2, num_heads=4))
    weights = {k.removeprefix("model."): v for k, v in fixture.items() if k.startswith("model.")}
    model.load_state_dict(weights, strict=True)
    return model.eval()


@pytest.mark.parametrize("case", CASES)
def test_every_layer_matches_official(aggregator, fixture, case):
    with torch.no_grad():
        out = aggregator(fixture[f"input.{case}.images"])
    assert out.patch_start_idx == int(fixture[f"output.{case}.patch_start_idx"]) == 5
    assert len(out.layers) == 2
    for i, layer in enumerate(out.layers):
        expected = fixture[f"output.{case}.layer.{i}"]
        assert layer.shape == expected.shape
        torch.testing.assert_close(layer, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("case", CASES)
def test_dino_patch_embedding_and_rope_positions(aggregator, fixture, case):
    images = fixture[f"input.{case}.images"]
    batch, frames, _, height, width = images.shape
    normalised = ((images - aggregator._resnet_mean) / aggregator._resnet_std).reshape(-1, 3, height, width)
    with torch.no_grad():
        dino = aggregator.patch_embed(normalised)
    torch.testing.assert_close(dino.x_prenorm, fixture[f"debug.{case}.dino_x_prenorm"], atol=ATOL, rtol=0)
    torch.testing.assert_close(dino.patch_tokens, fixture[f"debug.{case}.dino_x_norm_patchtokens"], atol=ATOL, rtol=0)
    pos = patch_positions(batch * frames, height // 14, width // 14, 5, images.device)
    assert torch.equal(pos, fixture[f"debug.{case}.rope_pos"])


def test_encode_vggt_image_and_scenegen_channel_split(aggregator, fixture):
    features = aggregator.encode_scene(fixture["input.single.images"])
    torch.testing.assert_close(features, fixture["output.single.encode_vggt_image"], atol=ATOL, rtol=0)
    tokens = split_vggt_channels(features, TINY_EMBED)
    assert tokens.shape == (1, 42, TINY_EMBED)
    torch.testing.assert_close(tokens, fixture["output.single.scenegen_cond_tokens"], atol=ATOL, rtol=0)


def test_batches_never_mix_but_frames_do(aggregator, fixture):
    images = fixture["input.main.images"]  # [1, 2, 3, 56, 56]
    with torch.no_grad():
        joint = aggregator(images).last
        as_batch = aggregator(images.transpose(0, 1)).last  # two one-frame scenes
        first_alone = aggregator(images[:, :1]).last
    torch.testing.assert_close(as_batch[0], first_alone[0], atol=1e-6, rtol=0)
    # Frame 0's frame-attention half differs only through the global blocks of earlier layers.
    assert (joint[0, 0] - first_alone[0, 0]).abs().max() > 1e-3


def test_bad_input_is_rejected(aggregator):
    with pytest.raises(ValueError, match="B, S, 3, H, W"):
        aggregator(torch.zeros(1, 3, 56, 56))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        aggregator(torch.zeros(1, 1, 3, 50, 56))


def test_strict_loading_rejects_a_missing_key(fixture):
    model = VGGTAggregator(VGGTAggregatorConfig.sized(img_size=56, embed_dim=TINY_EMBED, depth=2, num_heads=4))
    weights = {k.removeprefix("model."): v for k, v in fixture.items() if k.startswith("model.")}
    del weights["global_blocks.1.attn.k_norm.weight"]
    with pytest.raises(RuntimeError, match="k_norm"):
        model.load_state_dict(weights, strict=True)
