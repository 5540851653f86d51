"""Model bundles: every network of the sparse-structure + pose pipeline in one directory, as our
training exports it (and as the embedded default ships):

    <dir>/bundle.json        {"format": 1, "description", "configs": {ss_flow, ss_decoder, dino, vggt}
                              (the dataclass fields of each config), "sampler": {steps, cfg_strength,
                              cfg_interval, rescale_t} (the settings the model was validated with)}
    <dir>/model.safetensors  state dicts under the prefixes ss_flow. ss_decoder. dino. vggt.
    <dir>/README.md          the model card (written by the exporter's caller)

Loading is strict (every key present, nothing extra, shapes equal) and reads safetensors only.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import save_file

from scenegen_core.checkpoints import CheckpointError, LoadedModels, OfficialSamplerSettings, load_state_dict_file, load_strict
from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.layers.vision_transformer import DinoViTConfig

BUNDLE_FORMAT = 1
BUNDLE_JSON = "bundle.json"
BUNDLE_WEIGHTS = "model.safetensors"
COMPONENTS = ("ss_flow", "ss_decoder", "dino", "vggt")
DEFAULT_BUNDLE_DIR = Path(__file__).resolve().parent / "default_model"
SAMPLER_NAME = "FlowEulerGuidanceIntervalSampler"


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    steps: int
    cfg_strength: float
    cfg_interval: tuple[float, float]
    rescale_t: float


def is_bundle(path: str | Path) -> bool:
    return (Path(path) / BUNDLE_JSON).is_file()


def _config_dict(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def _vggt_config(data: dict) -> VGGTAggregatorConfig:
    return VGGTAggregatorConfig(**{**data, "backbone": DinoViTConfig(**data["backbone"])})


def build_models(configs: dict[str, dict]) -> dict[str, nn.Module]:
    """Networks from the ``configs`` section of bundle.json (random weights)."""
    missing = set(COMPONENTS) - set(configs)
    if missing:
        raise CheckpointError(f"bundle configs lack {sorted(missing)}")
    dino_config = DinoEncoderConfig(**configs["dino"])
    flow_config = SSFlowConfig(**configs["ss_flow"])
    if flow_config.object_context_tokens != dino_config.num_tokens:
        raise CheckpointError(
            f"ss_flow object_context_tokens {flow_config.object_context_tokens} != DINOv2 tokens {dino_config.num_tokens}"
        )
    return {
        "ss_flow": SSFlowModel(flow_config),
        "ss_decoder": SSDecoder(SSDecoderConfig(**configs["ss_decoder"])),
        "dino": DinoEncoder(dino_config),
        "vggt": VGGTAggregator(_vggt_config(configs["vggt"])),
    }


def save_bundle(
    directory: str | Path,
    models: dict[str, nn.Module],
    sampler: SamplerSettings,
    description: str,
    storage_dtype: torch.dtype = torch.float32,
) -> Path:
    """Write bundle.json + model.safetensors for models {ss_flow, ss_decoder, dino, vggt}; floating
    tensors are stored as storage_dtype (float16 halves the file; loading casts back to the
    module's dtype)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {
        f"{name}.{key}": (value.detach().to(storage_dtype) if value.is_floating_point() else value.detach()).contiguous().cpu()
        for name in COMPONENTS
        for key, value in models[name].state_dict().items()
    }
    save_file(tensors, str(directory / BUNDLE_WEIGHTS))
    meta = {
        "format": BUNDLE_FORMAT,
        "description": description,
        "configs": {name: _config_dict(models[name].config) for name in COMPONENTS},
        "sampler": _config_dict(sampler),
    }
    (directory / BUNDLE_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    return directory


def load_bundle(directory: str | Path, device: str | torch.device = "cpu", half_dtype: str | None = None) -> LoadedModels:
    """Build and strictly load a bundle. half_dtype: torso precision of the flow and decoder
    ("float16", "bfloat16", or None for fp32); the encoders stay fp32. Raises FileNotFoundError
    naming the missing file, CheckpointError for a malformed bundle.json or mismatching weights."""
    directory = Path(directory)
    meta_path, weights_path = directory / BUNDLE_JSON, directory / BUNDLE_WEIGHTS
    for path in (meta_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"model bundle {directory}: missing {path.name}")
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != BUNDLE_FORMAT:
            raise CheckpointError(f"{meta_path}: format {meta.get('format')!r}, expected {BUNDLE_FORMAT}")
        configs = meta["configs"]
        precision = dict(use_fp16=half_dtype is not None, half_dtype=half_dtype or "float16")
        configs = {**configs, "ss_flow": {**configs["ss_flow"], **precision}, "ss_decoder": {**configs["ss_decoder"], **precision}}
        models = build_models(configs)
        sampler = SamplerSettings(**{**meta["sampler"], "cfg_interval": tuple(meta["sampler"]["cfg_interval"])})
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{meta_path} is malformed: {error!r}") from error
    state = load_state_dict_file(weights_path)
    unknown = sorted({key.split(".", 1)[0] for key in state} - set(COMPONENTS))
    if unknown:
        raise CheckpointError(f"{weights_path}: tensors under unknown prefixes {unknown}")
    for name in COMPONENTS:
        load_strict(models[name], state, keep_prefix=f"{name}.")
    loaded = {name: models[name].to(device).eval() for name in COMPONENTS}
    settings = OfficialSamplerSettings(SAMPLER_NAME, 1e-5, sampler.steps, sampler.cfg_strength, sampler.cfg_interval, sampler.rescale_t)
    return LoadedModels(**loaded, sampler=settings, files=(meta_path, weights_path), description=str(meta["description"]))
