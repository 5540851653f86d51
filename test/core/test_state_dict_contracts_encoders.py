"""Full-size encoder state dicts vs the official contracts in `reference/state_dict_keys/`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig, dinov2_hub_to_hf
from scenegen_core.models.vggt import VGGT, VGGTAggregator, VGGTAggregatorConfig, VGGTConfig, aggregator_state_dict
from scenegen_core.models.vggt.layers import DinoViTConfig, DinoVisionTransformer

pytestmark = pytest.mark.parity


def read_contract(reference_dir, name: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (reference_dir / "state_dict_keys" / name).read_text().splitlines():
        key, shape, _dtype = line.split("\t")
        rows.append((key, tuple(json.loads(shape))))
    return rows


def names_and_shapes(state_dict: dict[str, torch.Tensor]) -> list[tuple[str, tuple[int, ...]]]:
    return [(k, tuple(v.shape)) for k, v in state_dict.items()]


def test_vggt_aggregator_matches_contract_in_order(reference_dir):
    with torch.device("meta"):
        model = VGGTAggregator(VGGTAggregatorConfig.full())
    assert names_and_shapes(model.state_dict()) == read_contract(reference_dir, "vggt_aggregator.tsv")
    assert sum(p.numel() for p in model.state_dict().values()) == 909_112_320
    assert VGGTAggregatorConfig.full().tokens_per_frame == 1374


def test_full_vggt_matches_contract_in_order_and_aggregator_extracts(reference_dir):
    with torch.device("meta"):
        model = VGGT(VGGTConfig())
        aggregator = VGGTAggregator(VGGTAggregatorConfig.full())
    state = model.state_dict()
    assert names_and_shapes(state) == read_contract(reference_dir, "vggt_full.tsv")
    aggregator.load_state_dict(aggregator_state_dict(state), strict=True)
    with pytest.raises(ValueError, match="aggregator"):
        aggregator_state_dict({"camera_head.empty_pose_tokens": torch.zeros(1)})


def test_dinov2_hf_model_matches_contract(reference_dir):
    with torch.device("meta"):
        encoder = DinoEncoder(DinoEncoderConfig.full())
    assert names_and_shapes(encoder.backbone.state_dict()) == read_contract(reference_dir, "dinov2_vitl14_reg_hf.tsv")
    assert DinoEncoderConfig.full().num_tokens == 1374


def test_hub_layout_of_our_dino_vit_and_its_conversion(reference_dir):
    with torch.device("meta"):
        hub_model = DinoVisionTransformer(DinoViTConfig.vit_large())
    hub_state = hub_model.state_dict()
    assert names_and_shapes(hub_state) == read_contract(reference_dir, "dinov2_vitl14_reg_torchhub.tsv")
    converted = dinov2_hub_to_hf(hub_state)
    assert dict(names_and_shapes(converted)) == dict(read_contract(reference_dir, "dinov2_vitl14_reg_hf.tsv"))


def test_hub_to_hf_map_agrees_with_reference_map_row_by_row(reference_dir):
    lines = (reference_dir / "state_dict_keys" / "dinov2_torchhub_to_hf_map.tsv").read_text().splitlines()
    rows = [line.split("\t") for line in lines if not line.startswith("#")]
    # Distinct values per row index let us see exactly which rows each HF tensor received.
    hub_state = {hub: torch.arange(3072.0 if "qkv" in hub else 1.0) for hub, _, _ in rows}
    converted = dinov2_hub_to_hf(hub_state)
    assert set(converted) == {hf for _, hf, _ in rows}
    for hub, hf, how in rows:
        if how == "copy":
            assert converted[hf] is hub_state[hub]
        else:
            start, stop = (int(x) for x in how.removeprefix("rows[").removesuffix("]").split(":"))
            assert torch.equal(converted[hf], hub_state[hub][start:stop]), hf
    with pytest.raises(ValueError, match="unexpected"):
        dinov2_hub_to_hf({"blocks.0.attn.qkv_typo.weight": torch.zeros(1)})


def _random_hub_vit(image_size: int) -> DinoVisionTransformer:
    generator = torch.Generator().manual_seed(0)
    model = DinoVisionTransformer(DinoViTConfig(img_size=image_size, embed_dim=64, depth=2, num_heads=4)).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            scale = 1.0 / param.shape[-1] ** 0.5 if param.ndim > 1 and "token" not in name else 0.1
            param.copy_(torch.randn(param.shape, generator=generator) * scale + (1.0 if "gamma" in name else 0.0))
    return model


def test_mapped_hub_weights_give_the_same_x_prenorm_in_transformers():
    """Numerical proof of the map: our torch.hub-layout DINOv2 (the VGGT-internal ViT) and
    transformers with converted weights agree on x_prenorm, the final norm and the feature."""
    hub = _random_hub_vit(56)
    encoder = DinoEncoder(DinoEncoderConfig.tiny(image_size=56)).eval()
    encoder.load_backbone_weights(hub.state_dict())
    pixels = torch.randn(2, 3, 56, 56, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference = hub(pixels)
        hf_out = encoder.backbone(pixels, output_hidden_states=True)
        prenorm = encoder.prenorm_tokens(pixels)
        features = encoder(pixels)
    assert prenorm.shape == (2, 21, 64)
    torch.testing.assert_close(prenorm, reference.x_prenorm, atol=1e-6, rtol=0)
    torch.testing.assert_close(prenorm, hf_out.hidden_states[-1], atol=0, rtol=0)
    torch.testing.assert_close(hf_out.last_hidden_state, reference.x_norm, atol=1e-6, rtol=0)
    torch.testing.assert_close(features, F.layer_norm(reference.x_prenorm, (64,), eps=1e-5), atol=1e-5, rtol=0)
    # The feature is NOT the final-norm output (different eps and no affine).
    assert (features - reference.x_norm).abs().max() > 1e-2


def test_transformers4_names_load_and_strictness():
    hub = _random_hub_vit(28)
    encoder = DinoEncoder(DinoEncoderConfig.tiny(image_size=28)).eval()
    encoder.load_backbone_weights(hub.state_dict())
    hf5 = encoder.backbone.state_dict()
    hf4 = {}
    for name, tensor in hf5.items():
        for new, old in (
            (".attention.q_proj.", ".attention.attention.query."),
            (".attention.k_proj.", ".attention.attention.key."),
            (".attention.v_proj.", ".attention.attention.value."),
            (".attention.o_proj.", ".attention.output.dense."),
        ):
            name = name.replace(new, old)
        hf4["dinov2." + name] = tensor.clone()
    other = DinoEncoder(DinoEncoderConfig.tiny(image_size=28)).eval()
    other.load_backbone_weights(hf4)
    pixels = torch.randn(1, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(other(pixels), encoder(pixels), atol=0, rtol=0)
    del hf4["dinov2.layernorm.bias"]
    with pytest.raises(RuntimeError, match="layernorm.bias"):
        other.load_backbone_weights(hf4)
    with pytest.raises(ValueError, match="expects"):
        encoder(torch.zeros(1, 3, 42, 42))
