"""Checkpoint files: safe loading, strict matching, and the official on-disk weight layouts.

Weights directory layout (mirrors the official ``SceneGen/checkpoints/`` folder, plus DINOv2)::

    <root>/
      scenegen/pipeline.json                 SceneGen pipeline config (HF haoningwu/SceneGen)
      scenegen/ckpts/<name>.json             model config {"name", "args"} for every model that
      scenegen/ckpts/<name>.safetensors      pipeline.json names (SS flow, SS decoder are used)
      VGGT-1B/model.safetensors | model.pt   full VGGT-1B state dict (HF facebook/VGGT-1B)
      dinov2/dinov2_vitl14_reg4_pretrain.pth torch.hub DINOv2 ViT-L/14-reg weights, or
      dinov2/config.json + model.safetensors HF facebook/dinov2-with-registers-large
      sam2-hiera-large/sam2_hiera_large.pt   SAM2 Hiera-L (HF facebook/sam2-hiera-large)

Only safetensors and ``torch.load(..., weights_only=True)`` are ever used: a pickle holding
anything but tensors and plain containers is refused.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn as nn
from safetensors.torch import load_file as load_safetensors

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt")
MAX_LISTED_KEYS = 20

# Hugging Face / download sources (official ones, as the SceneGen README and code use them).
SCENEGEN_REPO = "haoningwu/SceneGen"
TRELLIS_REPO = "microsoft/TRELLIS-image-large"
VGGT_REPO = "facebook/VGGT-1B"
DINOV2_HF_REPO = "facebook/dinov2-with-registers-large"
DINOV2_TORCHHUB_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_reg4_pretrain.pth"
SAM2_REPO = "facebook/sam2-hiera-large"
SAM2_CHECKPOINT = "sam2_hiera_large.pt"
SAM2_CONFIG = "sam2_hiera_l.yaml"
SS_DECODER_TRELLIS_NAME = "ckpts/ss_dec_conv3d_16l8_fp16"

# pipeline.json model keys of the stages this package runs (sparse structure + poses).
SS_FLOW_KEY = "sparse_structure_flow_model"
SS_DECODER_KEY = "sparse_structure_decoder"
SAM2_REQUIRED_PREFIXES = ("image_encoder", "sam_prompt_encoder", "sam_mask_decoder")

COMPONENTS = ("scenegen", "vggt", "dinov2", "sam2")


class CheckpointError(ValueError):
    """A weights file is missing, unreadable, unsafe, or not a flat tensor state dict."""


class CheckpointMismatchError(CheckpointError):
    """A state dict does not match the module: lists missing/unexpected keys and shape mismatches."""

    def __init__(
        self,
        what: str,
        missing: Sequence[str],
        unexpected: Sequence[str],
        shape_mismatches: Sequence[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        self.missing = tuple(missing)
        self.unexpected = tuple(unexpected)
        self.shape_mismatches = tuple(shape_mismatches)
        lines = [f"checkpoint does not match {what}:"]
        for title, items in (
            ("missing keys", self.missing),
            ("unexpected keys", self.unexpected),
            ("shape mismatches (key: checkpoint vs model)", [f"{k}: {list(a)} vs {list(b)}" for k, a, b in self.shape_mismatches]),
        ):
            if items:
                shown = ", ".join(items[:MAX_LISTED_KEYS])
                more = f" ... (+{len(items) - MAX_LISTED_KEYS} more)" if len(items) > MAX_LISTED_KEYS else ""
                lines.append(f"  {len(items)} {title}: {shown}{more}")
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------------
# Files and strict loading
# --------------------------------------------------------------------------------------------


def load_state_dict_file(path: str | Path, nested_key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a flat ``{name: tensor}`` state dict from disk onto the CPU.

    ``.safetensors`` via safetensors; ``.pt/.pth/.bin/.ckpt`` only via
    ``torch.load(weights_only=True, map_location="cpu")``. nested_key: for pickles that wrap the
    state dict (SAM2 stores ``{"model": {...}}``). Raises FileNotFoundError when absent and
    CheckpointError for unknown formats, refused pickles, or non-tensor entries.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            data = load_safetensors(str(path), device="cpu")
        except Exception as exc:  # safetensors raises its own SafetensorError / OSError types
            raise CheckpointError(f"cannot read safetensors file {path}: {exc}") from exc
    elif suffix in PICKLE_SUFFIXES:
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise CheckpointError(
                f"refused to load {path}: it holds Python objects other than tensors "
                f"(torch.load weights_only=True rejected it): {str(exc).splitlines()[0]}"
            ) from exc
        except Exception as exc:
            raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    else:
        raise CheckpointError(
            f"unsupported checkpoint format {suffix!r} for {path}; expected .safetensors or one of {PICKLE_SUFFIXES}"
        )
    if nested_key is not None:
        if not isinstance(data, Mapping) or nested_key not in data:
            keys = list(data)[:10] if isinstance(data, Mapping) else type(data).__name__
            raise CheckpointError(f"{path} has no top-level entry {nested_key!r} (top level: {keys})")
        data = data[nested_key]
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{path} does not hold a state dict (got {type(data).__name__})")
    bad = [k for k, v in data.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path} is not a flat tensor state dict; non-tensor entries: {bad[:MAX_LISTED_KEYS]}")
    return dict(data)


def select_prefix(state_dict: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys starting with ``prefix``, with the prefix removed; everything else dropped."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def load_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    prefix_strip: str | None = None,
    keep_prefix: str | None = None,
) -> None:
    """Load ``state_dict`` into ``module`` requiring an exact name and shape match.

    keep_prefix: first keep only keys starting with it (removed), e.g. ``"aggregator."`` to take
    the aggregator out of a full VGGT checkpoint. prefix_strip: then remove this prefix where
    present (e.g. ``"module."``); keys without it stay as they are. Values are cast to the
    module's dtypes by ``load_state_dict``. Raises CheckpointMismatchError listing (the first 20
    of) missing keys, unexpected keys and shape mismatches; the module is untouched then.
    """
    if keep_prefix is not None:
        state_dict = select_prefix(state_dict, keep_prefix)
    if prefix_strip is not None:
        state_dict = {k[len(prefix_strip):] if k.startswith(prefix_strip) else k: v for k, v in state_dict.items()}
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(state_dict[k].shape), tuple(expected[k].shape))
        for k in expected
        if k in state_dict and tuple(state_dict[k].shape) != tuple(expected[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(type(module).__name__, missing, unexpected, mismatched)
    module.load_state_dict(dict(state_dict), strict=True)


def read_model_json(path: str | Path) -> dict:
    """An official model config json ``{"name": str, "args": {...}}``; CheckpointError otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model config not found: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("args"), dict):
        raise CheckpointError(f"{path} must be a model json with a string 'name' and an 'args' object")
    return data


# --------------------------------------------------------------------------------------------
# Official directory layouts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedFile:
    """One required file of a component, satisfied by any of ``alternatives``.

    alternatives: tuples of paths relative to the weights root that together satisfy the
    requirement (e.g. ``(("dinov2/x.pth",), ("dinov2/config.json", "dinov2/model.safetensors"))``).
    found: the satisfied alternative (absolute paths), or () when none is complete.
    """

    component: str
    description: str
    alternatives: tuple[tuple[str, ...], ...]
    found: tuple[Path, ...] = ()

    @property
    def present(self) -> bool:
        return bool(self.found)

    def describe(self, root: Path) -> str:
        options = " OR ".join(" + ".join(str(root / p) for p in alt) for alt in self.alternatives)
        return f"{self.description}: {options}"


@dataclass(frozen=True)
class ComponentReport:
    """What was found for one component (``scenegen``, ``vggt``, ``dinov2``, ``sam2``)."""

    name: str
    directory: Path
    source: str
    files: tuple[ExpectedFile, ...]

    @property
    def complete(self) -> bool:
        return all(f.present for f in self.files)

    @property
    def missing(self) -> tuple[ExpectedFile, ...]:
        return tuple(f for f in self.files if not f.present)


@dataclass(frozen=True)
class WeightsReport:
    """Result of :func:`validate_weights_dir`."""

    root: Path
    components: tuple[ComponentReport, ...]

    @property
    def complete(self) -> bool:
        return all(c.complete for c in self.components)

    def component(self, name: str) -> ComponentReport:
        for c in self.components:
            if c.name == name:
                return c
        raise KeyError(f"component {name!r} was not validated")

    def missing_message(self) -> str:
        """Human-readable list of every missing file and the directory it belongs in."""
        lines = []
        for c in self.components:
            if c.complete:
                continue
            lines.append(f"[{c.name}] place these in {c.directory} (source: {c.source}):")
            lines.extend(f"  - {f.describe(self.root)}" for f in c.missing)
        return "\n".join(lines)


COMPONENT_DIRS = {"scenegen": "scenegen", "vggt": "VGGT-1B", "dinov2": "dinov2", "sam2": "sam2-hiera-large"}
"""Folder of each component under the weights root (names as in the official SceneGen README)."""


@dataclass(frozen=True)
class WeightsLayout:
    """Where each component's files live under ``root`` (see the module docstring)."""

    root: Path

    def directory(self, component: str) -> Path:
        if component not in COMPONENT_DIRS:
            raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")
        return self.root / COMPONENT_DIRS[component]


def _rel(layout: WeightsLayout, component: str, name: str) -> str:
    return str(layout.directory(component).relative_to(layout.root) / name)


def _checkpoint_alternatives(layout: WeightsLayout, component: str, stem: str) -> tuple[tuple[str, ...], ...]:
    """``stem.json`` with ``stem.safetensors`` (preferred) or ``stem.pt`` (as official ``from_pretrained``)."""
    return tuple((_rel(layout, component, f"{stem}.json"), _rel(layout, component, f"{stem}.{ext}")) for ext in ("safetensors", "pt"))


def pipeline_model_stems(pipeline_json: Mapping) -> dict[str, str]:
    """Model stems (paths without extension, relative to ``scenegen/``) that pipeline.json names
    for the SS flow and the SS decoder. A value written as a Hugging Face path
    (``owner/repo/ckpts/name``) is mapped to the local ``ckpts/name``."""
    try:
        models = pipeline_json["args"]["models"]
    except (KeyError, TypeError) as exc:
        raise CheckpointError("pipeline.json lacks args.models") from exc
    stems = {}
    for key in (SS_FLOW_KEY, SS_DECODER_KEY):
        if key not in models or not isinstance(models[key], str):
            raise CheckpointError(f"pipeline.json args.models has no {key!r} entry")
        value = models[key].strip("/")
        parts = value.split("/")
        if "ckpts" in parts and parts[0] != "ckpts":
            value = "/".join(parts[parts.index("ckpts"):])
        stems[key] = value
    return stems


def _expected_files(layout: WeightsLayout, component: str) -> list[ExpectedFile]:
    if component == "scenegen":
        pipeline_rel = _rel(layout, "scenegen", "pipeline.json")
        files = [ExpectedFile(component, "pipeline config", ((pipeline_rel,),))]
        pipeline_path = layout.root / pipeline_rel
        if pipeline_path.is_file():
            stems = pipeline_model_stems(json.loads(pipeline_path.read_text()))
        else:  # unknown until pipeline.json is there: say so with the official decoder name
            stems = {SS_FLOW_KEY: f"ckpts/<name in pipeline.json args.models.{SS_FLOW_KEY}>", SS_DECODER_KEY: SS_DECODER_TRELLIS_NAME}
        for key, stem in stems.items():
            files.append(ExpectedFile(component, f"{key} config + weights", _checkpoint_alternatives(layout, "scenegen", stem)))
        return files
    if component == "vggt":
        return [
            ExpectedFile(
                component,
                "VGGT-1B full state dict",
                ((_rel(layout, "vggt", "model.safetensors"),), (_rel(layout, "vggt", "model.pt"),)),
            )
        ]
    if component == "dinov2":
        return [
            ExpectedFile(
                component,
                "DINOv2 ViT-L/14 with registers",
                (
                    (_rel(layout, "dinov2", Path(DINOV2_TORCHHUB_URL).name),),
                    (_rel(layout, "dinov2", "config.json"), _rel(layout, "dinov2", "model.safetensors")),
                ),
            )
        ]
    if component == "sam2":
        return [ExpectedFile(component, "SAM2 Hiera-L checkpoint", ((_rel(layout, "sam2", SAM2_CHECKPOINT),),))]
    raise ValueError(f"unknown component {component!r}; expected one of {COMPONENTS}")


COMPONENT_SOURCES = {
    "scenegen": f"https://huggingface.co/{SCENEGEN_REPO} (SS decoder also in {TRELLIS_REPO})",
    "vggt": f"https://huggingface.co/{VGGT_REPO}",
    "dinov2": f"https://huggingface.co/{DINOV2_HF_REPO} or torch.hub {DINOV2_TORCHHUB_URL}",
    "sam2": f"https://huggingface.co/{SAM2_REPO}",
}


def validate_weights_dir(root: str | Path, components: Sequence[str] = COMPONENTS) -> WeightsReport:
    """Check which files of each component exist under ``root``; never raises for absent files."""
    layout = WeightsLayout(Path(root))
    reports = []
    for component in components:
        checked = []
        for expected in _expected_files(layout, component):
            found: tuple[Path, ...] = ()
            for alternative in expected.alternatives:
                paths = tuple(layout.root / p for p in alternative)
                if all(p.is_file() for p in paths):
                    found = paths
                    break
            checked.append(ExpectedFile(expected.component, expected.description, expected.alternatives, found))
        reports.append(ComponentReport(component, layout.directory(component), COMPONENT_SOURCES[component], tuple(checked)))
    return WeightsReport(layout.root, tuple(reports))


def require_components(root: str | Path, components: Sequence[str]) -> WeightsReport:
    """:func:`validate_weights_dir`, raising FileNotFoundError with the full list when incomplete."""
    report = validate_weights_dir(root, components)
    if not report.complete:
        raise FileNotFoundError(f"model weights incomplete under {report.root}:\n{report.missing_message()}")
    return report


@dataclass(frozen=True)
class Sam2CheckpointInfo:
    """A located SAM2 checkpoint: path, the SAM2 model config name it needs, tensor count and the
    sorted top-level module prefixes of its state dict (``image_encoder``, ``sam_mask_decoder``...)."""

    path: Path
    config_name: str
    num_tensors: int
    prefixes: tuple[str, ...]


def inspect_sam2_checkpoint(path: str | Path, config_name: str = SAM2_CONFIG) -> Sam2CheckpointInfo:
    """Validate a SAM2 checkpoint (``{"model": state_dict}``, weights_only) without building SAM2."""
    state_dict = load_state_dict_file(path, nested_key="model")
    prefixes = tuple(sorted({k.split(".", 1)[0] for k in state_dict}))
    absent = [p for p in SAM2_REQUIRED_PREFIXES if p not in prefixes]
    if absent:
        raise CheckpointError(f"{path} does not look like a SAM2 checkpoint: no {absent} parameters (has {list(prefixes)})")
    return Sam2CheckpointInfo(Path(path), config_name, len(state_dict), prefixes)


# --------------------------------------------------------------------------------------------
# Loading the official weights into our models
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OfficialSamplerSettings:
    """``args.sparse_structure_sampler`` of pipeline.json: sampler class name, sigma_min and the
    default call parameters (steps, cfg_strength, cfg_interval, rescale_t)."""

    name: str
    sigma_min: float
    steps: int
    cfg_strength: float
    cfg_interval: tuple[float, float]
    rescale_t: float


def parse_sampler_settings(pipeline_json: Mapping) -> OfficialSamplerSettings | None:
    """The SS sampler section of pipeline.json, or None when the file has none."""
    section = pipeline_json.get("args", {}).get("sparse_structure_sampler")
    if section is None:
        return None
    try:
        params = section["params"]
        interval = tuple(float(x) for x in params["cfg_interval"])
        if len(interval) != 2:
            raise ValueError(f"cfg_interval must have 2 entries, got {interval}")
        return OfficialSamplerSettings(
            name=str(section["name"]),
            sigma_min=float(section.get("args", {}).get("sigma_min", 1e-5)),
            steps=int(params["steps"]),
            cfg_strength=float(params["cfg_strength"]),
            cfg_interval=interval,  # type: ignore[arg-type]
            rescale_t=float(params["rescale_t"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"pipeline.json args.sparse_structure_sampler is malformed: {exc}") from exc


@dataclass(frozen=True, eq=False)
class LoadedModels:
    """Every network the sparse-structure + pose pipeline runs, with official weights loaded.

    ss_flow: SSFlowModel; ss_decoder: SSDecoder; vggt: VGGTAggregator (fp32); dino: DinoEncoder.
    All in eval mode on ``device``. sampler: pipeline.json's SS sampler defaults (or None).
    files: the weight files that were read. description: one line for logs / the ROS node.
    """

    ss_flow: nn.Module
    ss_decoder: nn.Module
    vggt: nn.Module
    dino: nn.Module
    sampler: OfficialSamplerSettings | None
    files: tuple[Path, ...]
    description: str


def _load_pair(found: tuple[Path, ...]) -> tuple[dict, dict[str, torch.Tensor]]:
    config_path, weights_path = found
    return read_model_json(config_path), load_state_dict_file(weights_path)


def _dino_config_from_hf(config_path: Path, expected):
    """Check that an HF DINOv2 config.json describes the architecture we build."""
    data = json.loads(config_path.read_text())
    pairs = {
        "hidden_size": expected.hidden_size,
        "num_hidden_layers": expected.num_layers,
        "num_attention_heads": expected.num_heads,
        "patch_size": expected.patch_size,
        "num_register_tokens": expected.num_register_tokens,
    }
    wrong = {k: (data.get(k), v) for k, v in pairs.items() if data.get(k) != v}
    if wrong:
        raise CheckpointError(f"{config_path} does not match the DINOv2 architecture in use (file, expected): {wrong}")


def load_scenegen_models(
    root: str | Path,
    *,
    vggt_config=None,
    dino_config=None,
    device: str | torch.device = "cpu",
    half_dtype: str | None = "float16",
) -> LoadedModels:
    """Build the SS flow, SS decoder, VGGT aggregator and DINOv2 and load their official weights.

    root: weights directory in the layout of this module (``scenegen``, ``vggt``, ``dinov2``
    needed; SAM2 is not loaded here). The flow and decoder architectures come from their
    ``ckpts/*.json``; VGGT and DINOv2 default to the released sizes (``vggt_config`` /
    ``dino_config`` override them, e.g. for tiny test weights). The flow's object-context split is
    set to the DINOv2 token count. half_dtype: torso precision of the flow and decoder, "float16"
    (as released), "bfloat16", or None for pure fp32 (CPU); VGGT and DINOv2 stay fp32. Raises FileNotFoundError listing every missing file,
    CheckpointMismatchError / CheckpointError for wrong weights.
    """
    # Model code (and transformers) is imported here, not at module level, so that validating
    # or downloading weights stays light.
    from scenegen_core.models.dinov2 import DinoEncoder, DinoEncoderConfig
    from scenegen_core.models.ss_decoder import SSDecoder, SSDecoderConfig
    from scenegen_core.models.ss_flow import SSFlowConfig, SSFlowModel
    from scenegen_core.models.vggt.aggregator import VGGTAggregator, VGGTAggregatorConfig

    vggt_config = vggt_config or VGGTAggregatorConfig.full()
    dino_config = dino_config or DinoEncoderConfig.full()
    report = require_components(root, ("scenegen", "vggt", "dinov2"))
    layout = WeightsLayout(Path(root))
    pipeline_json = json.loads((layout.directory("scenegen") / "pipeline.json").read_text())
    files: list[Path] = []

    scenegen = report.component("scenegen").files
    flow_json, flow_sd = _load_pair(scenegen[1].found)
    precision = dict(use_fp16=half_dtype is not None, half_dtype=half_dtype or "float16")
    flow = SSFlowModel(
        SSFlowConfig.from_official_json(flow_json, object_context_tokens=dino_config.num_tokens, **precision)
    )
    load_strict(flow, flow_sd)
    decoder_json, decoder_sd = _load_pair(scenegen[2].found)
    decoder = SSDecoder(SSDecoderConfig.from_official_json(decoder_json, **precision))
    load_strict(decoder, decoder_sd)
    files += [scenegen[0].found[0], *scenegen[1].found, *scenegen[2].found]

    (vggt_file,) = report.component("vggt").files[0].found
    vggt = VGGTAggregator(vggt_config)
    load_strict(vggt, load_state_dict_file(vggt_file), keep_prefix="aggregator.")
    files.append(vggt_file)

    dino_found = report.component("dinov2").files[0].found
    if len(dino_found) == 2:
        _dino_config_from_hf(dino_found[0], dino_config)
    dino = DinoEncoder(dino_config)
    dino.load_backbone_weights(load_state_dict_file(dino_found[-1]))
    files += list(dino_found)

    models = [m.to(device).eval() for m in (flow, decoder, vggt, dino)]
    description = (
        f"SceneGen official weights from {layout.root} (SS flow {Path(scenegen[1].found[1]).name}, "
        f"decoder {Path(scenegen[2].found[1]).name}, VGGT {vggt_file.name}, DINOv2 {dino_found[-1].name})"
    )
    return LoadedModels(*models, parse_sampler_settings(pipeline_json), tuple(files), description)
