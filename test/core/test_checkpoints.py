"""Checkpoint loading: safe formats, strict matching, official layouts with tiny local weights."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from scenegen_core.checkpoints import (
    CheckpointError,
    CheckpointMismatchError,
    inspect_sam2_checkpoint,
    load_scenegen_models,
    load_state_dict_file,
    load_strict,
    pipeline_model_stems,
    validate_weights_dir,
)
from scenegen_core.models.dinov2 import DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.layers.vision_transformer import DinoViTConfig, DinoVisionTransformer

IMAGE_SIZE = 56  # 4x4 patches: 1 + 4 + 16 = 21 DINO tokens
FLOW_ARGS = {
    "resolution": 8, "in_channels": 8, "out_channels": 8, "model_channels": 64, "cond_channels": 64,
    "num_blocks": 2, "num_heads": 4, "mlp_ratio": 4, "patch_size": 1, "pe_mode": "ape",
    "qk_rms_norm": True, "use_fp16": False, "use_checkpoint": False, "use_global": True,
    "trunk_depth": 2, "num_iteration": 2, "use_batch_encoder": False,
}
DECODER_ARGS = {
    "out_channels": 1, "latent_channels": 8, "num_res_blocks": 1, "channels": [32, 16, 8],
    "num_res_blocks_middle": 2, "norm_type": "layer", "use_fp16": False,
}
PIPELINE = {
    "name": "SceneGenImageToScenePipeline",
    "args": {
        "models": {
            "sparse_structure_flow_model": "ckpts/ss_flow_tiny",
            # written the way a pipeline.json may point at TRELLIS's hub copy
            "sparse_structure_decoder": "microsoft/TRELLIS-image-large/ckpts/ss_dec_tiny",
        },
        "sparse_structure_sampler": {
            "name": "FlowEulerGuidanceIntervalSamplerVGGT",
            "args": {"sigma_min": 1e-5},
            "params": {"steps": 25, "cfg_strength": 5.0, "cfg_interval": [0.5, 1.0], "rescale_t": 3.0},
        },
        "image_cond_model": "dinov2_vitl14_reg",
    },
}


class NotATensor:
    """Pickled next to tensors to check that weights_only loading refuses arbitrary objects."""


def dino_config() -> DinoEncoderConfig:
    return DinoEncoderConfig.tiny(image_size=IMAGE_SIZE)


def vggt_config() -> VGGTAggregatorConfig:
    return VGGTAggregatorConfig.tiny(img_size=IMAGE_SIZE)


def randomized(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """The module's state dict with every floating tensor replaced by seeded random values."""
    generator = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=generator).to(v.dtype) if v.is_floating_point() else v.clone()
        for k, v in module.state_dict().items()
    }


@pytest.fixture
def weights_root(tmp_path):
    """A complete official layout with tiny random weights; returns (root, source state dicts)."""
    root = tmp_path / "weights"
    ckpts = root / "scenegen" / "ckpts"
    ckpts.mkdir(parents=True)
    (root / "scenegen" / "pipeline.json").write_text(json.dumps(PIPELINE))

    flow_sd = randomized(SSFlowModel(SSFlowConfig.from_official_json(FLOW_ARGS, object_context_tokens=21)), 1)
    (ckpts / "ss_flow_tiny.json").write_text(json.dumps({"name": "SparseStructureFlowModel", "args": FLOW_ARGS}))
    save_file(flow_sd, str(ckpts / "ss_flow_tiny.safetensors"))

    decoder_sd = randomized(SSDecoder(SSDecoderConfig.from_official_json(DECODER_ARGS)), 2)
    (ckpts / "ss_dec_tiny.json").write_text(json.dumps({"name": "SparseStructureDecoder", "args": DECODER_ARGS}))
    save_file(decoder_sd, str(ckpts / "ss_dec_tiny.safetensors"))

    # A full-VGGT-style checkpoint: aggregator keys plus head keys that must be dropped.
    aggregator_sd = randomized(VGGTAggregator(vggt_config()), 3)
    full = {f"aggregator.{k}": v for k, v in aggregator_sd.items()}
    full["camera_head.trunk.0.norm1.weight"] = torch.ones(128)
    (root / "VGGT-1B").mkdir()
    torch.save(full, root / "VGGT-1B" / "model.pt")

    # torch.hub layout DINOv2 (same architecture as VGGT's internal DINOv2 ViT)
    hub_config = DinoViTConfig(img_size=IMAGE_SIZE, patch_size=14, embed_dim=64, depth=2, num_heads=4)
    dino_sd = randomized(DinoVisionTransformer(hub_config), 4)
    (root / "dinov2").mkdir()
    torch.save(dino_sd, root / "dinov2" / "dinov2_vitl14_reg4_pretrain.pth")
    return root, {"flow": flow_sd, "decoder": decoder_sd, "vggt": aggregator_sd, "dino": dino_sd}


def assert_state_equal(module: torch.nn.Module, expected: dict[str, torch.Tensor]) -> None:
    actual = module.state_dict()
    assert set(actual) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(actual[key], value.to(actual[key].dtype), rtol=0, atol=0, msg=key)


def test_load_official_layout(weights_root):
    root, sources = weights_root
    loaded = load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config())
    assert_state_equal(loaded.ss_flow, sources["flow"])
    assert_state_equal(loaded.ss_decoder, sources["decoder"])
    assert_state_equal(loaded.vggt, sources["vggt"])
    assert loaded.ss_flow.config.object_context_tokens == 21
    # torch.hub fused qkv rows were split q, k, v into the transformers model
    qkv = sources["dino"]["blocks.1.attn.qkv.weight"]
    backbone = loaded.dino.backbone.state_dict()
    torch.testing.assert_close(backbone["encoder.layer.1.attention.k_proj.weight"], qkv[64:128], rtol=0, atol=0)
    torch.testing.assert_close(backbone["encoder.layer.0.layer_scale2.lambda1"], sources["dino"]["blocks.0.ls2.gamma"], rtol=0, atol=0)
    assert loaded.sampler is not None and loaded.sampler.steps == 25 and loaded.sampler.cfg_interval == (0.5, 1.0)
    assert all(not m.training for m in (loaded.ss_flow, loaded.ss_decoder, loaded.vggt, loaded.dino))
    assert "ss_flow_tiny.safetensors" in loaded.description
    # the loaded tiny networks run
    with torch.no_grad():
        features = loaded.dino(torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE))
    assert features.shape == (1, 21, 64)


@pytest.mark.parametrize(
    "edit, fragment",
    [
        (lambda sd: sd.pop("blocks.1.norm4.weight"), "1 missing keys: blocks.1.norm4.weight"),
        (lambda sd: sd.__setitem__("blocks.0.extra.weight", torch.zeros(3)), "1 unexpected keys: blocks.0.extra.weight"),
        (lambda sd: sd.__setitem__("input_layer.weight", torch.zeros(64, 9)), "input_layer.weight: [64, 9] vs [64, 8]"),
    ],
    ids=["missing", "unexpected", "shape"],
)
def test_flow_checkpoint_mismatch_names_the_key(weights_root, edit, fragment):
    root, sources = weights_root
    state = dict(sources["flow"])
    edit(state)
    save_file(state, str(root / "scenegen" / "ckpts" / "ss_flow_tiny.safetensors"))
    with pytest.raises(CheckpointMismatchError) as info:
        load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config())
    assert fragment in str(info.value)
    assert "SSFlowModel" in str(info.value)


def test_mismatch_error_lists_at_most_twenty_keys():
    module = torch.nn.Sequential(*[torch.nn.Linear(2, 2) for _ in range(15)])
    with pytest.raises(CheckpointMismatchError) as info:
        load_strict(module, {})
    assert len(info.value.missing) == 30
    assert "30 missing keys" in str(info.value) and "(+10 more)" in str(info.value)


def test_load_strict_prefixes_and_no_partial_load():
    module = torch.nn.Linear(3, 2)
    weight, bias = torch.randn(2, 3), torch.randn(2)
    load_strict(module, {"net.weight": weight, "net.bias": bias, "head.w": torch.zeros(1)}, keep_prefix="net.")
    torch.testing.assert_close(module.weight.data, weight, rtol=0, atol=0)
    load_strict(module, {"module.weight": -weight, "module.bias": -bias}, prefix_strip="module.")
    torch.testing.assert_close(module.bias.data, -bias, rtol=0, atol=0)
    before = module.weight.detach().clone()
    with pytest.raises(CheckpointMismatchError):
        load_strict(module, {"weight": torch.zeros(2, 3)})  # bias missing
    torch.testing.assert_close(module.weight.data, before, rtol=0, atol=0)


def test_official_fixture_weights_load_strictly(reference_dir):
    """The golden fixture's `model.*` tensors are an official state dict of the tiny decoder."""
    state = load_state_dict_file(reference_dir / "ss_decoder_tiny_fp32.safetensors")
    decoder = SSDecoder(SSDecoderConfig.tiny())
    load_strict(decoder, state, keep_prefix="model.")
    torch.testing.assert_close(decoder.state_dict()["out_layer.2.bias"], state["model.out_layer.2.bias"], rtol=0, atol=0)
    with pytest.raises(CheckpointMismatchError, match="unexpected keys: input"):
        load_strict(decoder, state, prefix_strip="model.")


def test_pickle_with_arbitrary_object_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "payload": NotATensor()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_state_dict_file(path)


def test_file_format_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_state_dict_file(tmp_path / "absent.safetensors")
    (tmp_path / "w.npz").write_bytes(b"")
    with pytest.raises(CheckpointError, match="unsupported checkpoint format"):
        load_state_dict_file(tmp_path / "w.npz")
    (tmp_path / "bad.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read safetensors"):
        load_state_dict_file(tmp_path / "bad.safetensors")
    torch.save({"nested": {"w": torch.zeros(1)}}, tmp_path / "nested.pt")
    with pytest.raises(CheckpointError, match="non-tensor entries"):
        load_state_dict_file(tmp_path / "nested.pt")
    assert list(load_state_dict_file(tmp_path / "nested.pt", nested_key="nested")) == ["w"]
    with pytest.raises(CheckpointError, match="no top-level entry 'model'"):
        load_state_dict_file(tmp_path / "nested.pt", nested_key="model")


def test_validate_reports_missing_and_alternatives(weights_root):
    root, _ = weights_root
    report = validate_weights_dir(root)
    assert not report.complete  # no SAM2
    assert [c.name for c in report.components if c.complete] == ["scenegen", "vggt", "dinov2"]
    assert report.component("vggt").files[0].found == (root / "VGGT-1B" / "model.pt",)
    message = report.missing_message()
    assert str(root / "sam2-hiera-large" / "sam2_hiera_large.pt") in message
    assert message.startswith("[sam2] place these in")

    # HF-style DINOv2 folder is an accepted alternative once both of its files exist
    (root / "dinov2" / "dinov2_vitl14_reg4_pretrain.pth").unlink()
    assert not validate_weights_dir(root, ["dinov2"]).complete
    (root / "dinov2" / "config.json").write_text("{}")
    (root / "dinov2" / "model.safetensors").write_bytes(b"")
    assert validate_weights_dir(root, ["dinov2"]).component("dinov2").files[0].found == (
        root / "dinov2" / "config.json",
        root / "dinov2" / "model.safetensors",
    )

    (root / "scenegen" / "ckpts" / "ss_dec_tiny.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="ss_dec_tiny.safetensors"):
        load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config())


def test_hf_dinov2_config_must_match_architecture(weights_root):
    root, sources = weights_root
    from scenegen_core.models.dinov2 import dinov2_hub_to_hf

    (root / "dinov2" / "dinov2_vitl14_reg4_pretrain.pth").unlink()
    save_file({k: v.contiguous() for k, v in dinov2_hub_to_hf(sources["dino"]).items()}, str(root / "dinov2" / "model.safetensors"))
    hf_config = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "patch_size": 14, "num_register_tokens": 4}
    (root / "dinov2" / "config.json").write_text(json.dumps(hf_config))
    loaded = load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config())
    torch.testing.assert_close(
        loaded.dino.backbone.state_dict()["embeddings.cls_token"], sources["dino"]["cls_token"], rtol=0, atol=0
    )
    (root / "dinov2" / "config.json").write_text(json.dumps({**hf_config, "num_hidden_layers": 24}))
    with pytest.raises(CheckpointError, match="num_hidden_layers"):
        load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config())


def test_pipeline_model_stems():
    stems = pipeline_model_stems(PIPELINE)
    assert stems == {"sparse_structure_flow_model": "ckpts/ss_flow_tiny", "sparse_structure_decoder": "ckpts/ss_dec_tiny"}
    with pytest.raises(CheckpointError, match="sparse_structure_decoder"):
        pipeline_model_stems({"args": {"models": {"sparse_structure_flow_model": "ckpts/a"}}})


def test_sam2_checkpoint_inspection(tmp_path):
    state = {
        "image_encoder.trunk.pos_embed": torch.zeros(1, 4),
        "sam_prompt_encoder.point_embeddings.0.weight": torch.zeros(1, 4),
        "sam_mask_decoder.iou_token.weight": torch.zeros(1, 4),
        "memory_encoder.out_proj.weight": torch.zeros(4, 4),
    }
    torch.save({"model": state}, tmp_path / "sam2_hiera_large.pt")
    info = inspect_sam2_checkpoint(tmp_path / "sam2_hiera_large.pt")
    assert info.num_tensors == 4 and info.config_name == "sam2_hiera_l.yaml"
    assert info.prefixes == ("image_encoder", "memory_encoder", "sam_mask_decoder", "sam_prompt_encoder")
    torch.save({"model": {"image_encoder.x": torch.zeros(1)}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="does not look like a SAM2 checkpoint"):
        inspect_sam2_checkpoint(tmp_path / "other.pt")
