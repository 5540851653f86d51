"""Model bundles: save -> strict load round trip, and clear errors for broken bundles."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from scenegen_core.bundle import BUNDLE_JSON, BUNDLE_WEIGHTS, SamplerSettings, build_models, load_bundle, save_bundle
from scenegen_core.checkpoints import CheckpointError, CheckpointMismatchError

CONFIGS = {
    "dino": {"hidden_size": 16, "num_layers": 1, "num_heads": 2, "image_size": 28},
    "vggt": {"depth": 1, "num_heads": 2, "backbone": {"img_size": 28, "embed_dim": 16, "depth": 1, "num_heads": 2}},
    "ss_flow": {"resolution": 4, "in_channels": 4, "out_channels": 4, "model_channels": 16, "cond_channels": 16,
                "num_blocks": 1, "num_heads": 2, "patch_size": 2, "trunk_depth": 1, "num_iteration": 1,
                "use_fp16": False, "object_context_tokens": 9},
    "ss_decoder": {"latent_channels": 4, "channels": [8, 4], "num_res_blocks": 0, "num_res_blocks_middle": 1, "use_fp16": False},
}
SAMPLER = SamplerSettings(steps=3, cfg_strength=2.0, cfg_interval=(0.5, 1.0), rescale_t=3.0)


@pytest.fixture()
def bundle(tmp_path):
    torch.manual_seed(0)
    models = build_models(CONFIGS)
    save_bundle(tmp_path, models, SAMPLER, "test bundle")
    return tmp_path, models


def test_round_trip_is_exact(bundle):
    path, models = bundle
    loaded = load_bundle(path)
    assert loaded.description == "test bundle"
    assert loaded.sampler.steps == 3 and loaded.sampler.cfg_interval == (0.5, 1.0)
    for name in ("ss_flow", "ss_decoder", "dino", "vggt"):
        mine, theirs = getattr(loaded, name).state_dict(), models[name].state_dict()
        assert mine.keys() == theirs.keys()
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), (name, key)
    half = load_bundle(path, half_dtype="bfloat16")
    assert half.ss_flow.blocks[0].self_attn.to_qkv.weight.dtype == torch.bfloat16


def test_missing_extra_and_malformed(bundle):
    path, _ = bundle
    tensors = load_file(str(path / BUNDLE_WEIGHTS))
    key = next(k for k in tensors if k.startswith("ss_flow."))
    save_file({k: v for k, v in tensors.items() if k != key}, str(path / BUNDLE_WEIGHTS))
    with pytest.raises(CheckpointMismatchError, match="missing"):
        load_bundle(path)
    save_file({**tensors, "extra.weight": torch.zeros(1)}, str(path / BUNDLE_WEIGHTS))
    with pytest.raises(CheckpointError, match="unknown prefixes"):
        load_bundle(path)
    meta = json.loads((path / BUNDLE_JSON).read_text())
    del meta["configs"]["vggt"]
    (path / BUNDLE_JSON).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_bundle(path)
    (path / BUNDLE_WEIGHTS).unlink()
    with pytest.raises(FileNotFoundError, match=BUNDLE_WEIGHTS):
        load_bundle(path)
