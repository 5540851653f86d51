"""Full-size state-dict contracts (names, shapes, dtypes, order) of the SS flow model and SS decoder,
built on the meta device and compared with the official TSVs in shared/reference/state_dict_keys."""

from __future__ import annotations

import json

import pytest
import torch

from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel

DTYPE_NAMES = {torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}


def _read_tsv(path) -> list[tuple[str, list[int], str]]:
    rows = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape, dtype = line.split("\t")
            rows.append((name, json.loads(shape), dtype))
    return rows


def _contract(module: torch.nn.Module) -> list[tuple[str, list[int], str]]:
    return [(k, list(v.shape), DTYPE_NAMES[v.dtype]) for k, v in module.state_dict().items()]


@pytest.fixture(scope="module")
def index(reference_dir) -> dict:
    return json.loads((reference_dir / "state_dict_keys" / "index.json").read_text())


@pytest.mark.parametrize(
    "tsv,config_cls,model_cls",
    [("ss_flow_scenegen.tsv", SSFlowConfig, SSFlowModel), ("ss_decoder_trellis.tsv", SSDecoderConfig, SSDecoder)],
)
def test_full_size_contract(reference_dir, index, tsv, config_cls, model_cls):
    entry = index[tsv]
    config = config_cls.from_official_json(entry["args"])
    assert config == config_cls.full()
    with torch.device("meta"):
        model = model_cls(config)
    expected = _read_tsv(reference_dir / "state_dict_keys" / tsv)
    got = _contract(model)
    assert [r[0] for r in got] == [r[0] for r in expected]  # names, in order
    assert got == expected  # shapes and dtypes
    assert (len(got), sum(v.numel() for v in model.state_dict().values())) == tuple(entry["counts"])


@pytest.mark.parametrize("name", ["ss_flow_tiny", "ss_flow_tiny_fp32"])
def test_tiny_fixture_keys_and_dtypes(reference_dir, name):
    """The fixture holds parameters in the dtype the official module holds them: ours must agree."""
    from safetensors import safe_open

    meta = json.loads((reference_dir / f"{name}.json").read_text())
    with torch.device("meta"):
        model = SSFlowModel(SSFlowConfig.from_official_json(meta["config"]))
    with safe_open(reference_dir / f"{name}.safetensors", "pt") as f:
        fixture = {k.removeprefix("model."): f.get_slice(k) for k in f.keys() if k.startswith("model.")}
        expected = {k: (list(s.get_shape()), s.get_dtype()) for k, s in fixture.items()}
    got = {k: (list(v.shape), {"float32": "F32", "float16": "F16"}[DTYPE_NAMES[v.dtype]]) for k, v in model.state_dict().items()}
    assert got == expected


def test_bfloat16_variant_has_the_same_layout():
    with torch.device("meta"):
        half = SSFlowModel(SSFlowConfig.tiny(use_fp16=True))
        bf16 = SSFlowModel(SSFlowConfig.tiny(use_fp16=True, half_dtype="bfloat16"))
        fp32 = SSFlowModel(SSFlowConfig.tiny())
    for (k, a), (k2, b), (k3, c) in zip(half.state_dict().items(), bf16.state_dict().items(), fp32.state_dict().items()):
        assert k == k2 == k3 and a.shape == b.shape == c.shape
        assert c.dtype == torch.float32
        assert b.dtype == (torch.bfloat16 if a.dtype == torch.float16 else torch.float32), k
