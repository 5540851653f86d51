"""SSDecoder + logits_to_coords vs the official TRELLIS SparseStructureDecoder (ss_decoder_tiny*)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig, logits_to_coords

pytestmark = pytest.mark.parity

ATOL = {"ss_decoder_tiny_fp32": 1e-4, "ss_decoder_tiny": 1e-2}


@pytest.fixture(scope="module", params=sorted(ATOL))
def decoded(request, reference_dir):
    name = request.param
    tensors = load_file(reference_dir / f"{name}.safetensors")
    meta = json.loads((reference_dir / f"{name}.json").read_text())
    decoder = SSDecoder(SSDecoderConfig.from_official_json(meta["config"])).eval()
    state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    decoder.load_state_dict(state, strict=True)
    with torch.no_grad():
        logits = decoder(tensors["input.z"])
    return name, decoder, state, tensors, meta, logits


def test_logits_match(decoded):
    name, _, _, tensors, _, logits = decoded
    ref = tensors["output.logits"]
    assert logits.dtype == torch.float32 and logits.shape == ref.shape == (2, 1, 16, 16, 16)
    assert (logits - ref).abs().max().item() < ATOL[name]


def test_parameter_dtypes_follow_fp16_layout(decoded):
    _, decoder, state, _, meta, _ = decoded
    for key, value in decoder.state_dict().items():
        assert value.dtype == state[key].dtype, key
    half = meta["config"]["use_fp16"]
    assert decoder.middle_block[0].conv1.weight.dtype == (torch.float16 if half else torch.float32)
    assert decoder.blocks[1].conv.weight.dtype == (torch.float16 if half else torch.float32)  # upsample conv
    assert decoder.input_layer.weight.dtype == decoder.out_layer[2].weight.dtype == torch.float32
    assert decoder.middle_block[0].norm1.weight.dtype == torch.float32


def test_coords_as_pipeline(decoded):
    name, _, _, tensors, meta, logits = decoded
    ref = tensors["output.logits"]
    coords = logits_to_coords(logits)
    assert coords.dtype == torch.int32 and coords.shape[1] == 4
    assert coords.shape[0] == int((logits > 0).sum())
    # rows are (object, x, y, z), sorted row-major, and point at positive logits
    n, x, y, z = coords.long().unbind(1)
    assert torch.all(logits[n, 0, x, y, z] > 0)
    flat = ((n * 16 + x) * 16 + y) * 16 + z
    assert torch.all(flat[1:] > flat[:-1])
    ref_occupied = ref > 0
    if name.endswith("fp32"):
        assert torch.equal(coords, logits_to_coords(ref))
        assert ref_occupied.float().mean().item() == pytest.approx(meta["occupied_fraction"], abs=0)
    else:
        # fp16 rounding may only flip voxels whose reference logit is within the tolerance of 0
        flipped = (logits > 0) != ref_occupied
        assert torch.all(ref[flipped].abs() < ATOL[name])
        assert flipped.sum().item() <= 10


def test_full_size_grid_and_bad_inputs():
    cfg = SSDecoderConfig.full()
    assert cfg.upsampling == 4 and cfg.channels == (512, 128, 32)
    tiny = SSDecoder(SSDecoderConfig.tiny(norm_type="group", channels=(32, 32)))
    assert tiny(torch.zeros(1, 8, 2, 2, 2)).shape == (1, 1, 4, 4, 4)
    with pytest.raises(ValueError, match="z must be"):
        tiny(torch.zeros(1, 4, 2, 2, 2))
    with pytest.raises(ValueError, match="logits must be"):
        logits_to_coords(torch.zeros(1, 2, 4, 4, 4))
    with pytest.raises(ValueError, match="norm_type"):
        SSDecoderConfig(norm_type="batch")
    with pytest.raises(ValueError, match="unknown"):
        SSDecoderConfig.from_official_json({"out_channels": 1, "latent_channels": 8, "num_res_blocks": 1,
                                            "channels": [8], "dropout": 0.1})
