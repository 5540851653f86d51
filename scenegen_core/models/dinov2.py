"""SceneGen's image conditioner: DINOv2 ViT-L/14 with registers, run through `transformers`.

Feature = the last block's output BEFORE the backbone's final norm (official ``x_prenorm``; in
transformers ``hidden_states[-1]``, not ``last_hidden_state``), then a parameter-free LayerNorm
with eps 1e-5. At 518 px this is [B, 1374, 1024]: cls, 4 registers, 37x37 patches row-major.

Weights: the official torch.hub state dict (``dinov2_vitl14_reg``) is converted with
`dinov2_hub_to_hf`; transformers checkpoints (v5 ``q_proj`` names, or v4 ``attention.attention.query``
names) load directly. Loading is strict either way. No download happens here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel


@dataclass(frozen=True)
class DinoEncoderConfig:
    """Architecture + feature settings. Defaults = ``dinov2_vitl14_reg`` at 518 px.

    image_size: square input side in pixels (a multiple of patch_size); the position table is
    sized for it, so no interpolation happens at this size. feature_eps: eps of the
    parameter-free LayerNorm applied to the features (1e-5 as in SceneGen).
    """

    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    mlp_ratio: int = 4
    image_size: int = 518
    patch_size: int = 14
    num_register_tokens: int = 4
    layerscale_value: float = 1.0
    layer_norm_eps: float = 1e-6
    feature_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size != 0:
            raise ValueError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads != 0:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")

    @classmethod
    def full(cls) -> "DinoEncoderConfig":
        """ViT-L/14-reg at 518 px: 1374 tokens of 1024 channels per image."""
        return cls()

    @classmethod
    def tiny(cls, image_size: int = 112) -> "DinoEncoderConfig":
        """CPU-sized default for untrained runs: hidden 64, 2 layers, 4 heads.
        At 112 px: 1 + 4 + 8*8 = 69 tokens of 64 channels per image."""
        return cls(hidden_size=64, num_layers=2, num_heads=4, image_size=image_size)

    @property
    def num_tokens(self) -> int:
        """Tokens per image: cls + registers + (image_size / patch_size)^2."""
        return 1 + self.num_register_tokens + (self.image_size // self.patch_size) ** 2

    def to_hf(self) -> Dinov2WithRegistersConfig:
        return Dinov2WithRegistersConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            hidden_act="gelu",
            layer_norm_eps=self.layer_norm_eps,
            image_size=self.image_size,
            patch_size=self.patch_size,
            qkv_bias=True,
            layerscale_value=self.layerscale_value,
            use_swiglu_ffn=False,
            num_register_tokens=self.num_register_tokens,
            attn_implementation="sdpa",
        )


# torch.hub name -> transformers (>= 5) name; "{i}" is the block index. The fused qkv is split.
_HUB_TO_HF_FIXED = {
    "cls_token": "embeddings.cls_token",
    "mask_token": "embeddings.mask_token",
    "pos_embed": "embeddings.position_embeddings",
    "register_tokens": "embeddings.register_tokens",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight",
    "norm.bias": "layernorm.bias",
}
_HUB_TO_HF_BLOCK = {
    "norm1": "norm1",
    "norm2": "norm2",
    "attn.proj": "attention.o_proj",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "ls1.gamma": "layer_scale1.lambda1",
    "ls2.gamma": "layer_scale2.lambda1",
}
# transformers 4 checkpoints (e.g. facebook/dinov2-with-registers-large) -> transformers 5 names.
_HF4_TO_HF5 = {
    ".attention.attention.query.": ".attention.q_proj.",
    ".attention.attention.key.": ".attention.k_proj.",
    ".attention.attention.value.": ".attention.v_proj.",
    ".attention.output.dense.": ".attention.o_proj.",
}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+?)(\.weight|\.bias)?$")


def dinov2_hub_to_hf(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Convert a torch.hub DINOv2 state dict to transformers (>= 5) names.

    ``blocks.i.attn.qkv.{weight,bias}`` rows [0:C), [C:2C), [2C:3C) become q/k/v_proj. Unknown keys
    raise ValueError (so nothing is dropped silently). Tensors are not copied except the qkv split.
    """
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state_dict.items():
        if name in _HUB_TO_HF_FIXED:
            out[_HUB_TO_HF_FIXED[name]] = tensor
            continue
        match = _BLOCK_KEY.match(name)
        if match is None:
            raise ValueError(f"unexpected torch.hub DINOv2 key {name!r}")
        index, module, suffix = match.group(1), match.group(2), match.group(3) or ""
        prefix = f"encoder.layer.{index}."
        if module == "attn.qkv":
            for part, chunk in zip(("q_proj", "k_proj", "v_proj"), tensor.chunk(3, dim=0)):
                out[f"{prefix}attention.{part}{suffix}"] = chunk
        elif module in _HUB_TO_HF_BLOCK:
            out[f"{prefix}{_HUB_TO_HF_BLOCK[module]}{suffix}"] = tensor
        else:
            raise ValueError(f"unexpected torch.hub DINOv2 key {name!r}")
    return out


def _hf4_to_hf5(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for name, tensor in state_dict.items():
        for old, new in _HF4_TO_HF5.items():
            name = name.replace(old, new)
        out[name] = tensor
    return out


class DinoEncoder(nn.Module):
    """DINOv2 feature extractor. ``backbone`` is the transformers model (its state-dict names)."""

    def __init__(self, config: DinoEncoderConfig):
        super().__init__()
        self.config = config
        self.backbone = Dinov2WithRegistersModel(config.to_hf())

    @property
    def num_tokens(self) -> int:
        return self.config.num_tokens

    def load_backbone_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Strictly load torch.hub-, transformers-4- or transformers-5-named DINOv2 weights.

        A leading ``dinov2.`` prefix (transformers' classification checkpoints) is ignored.
        Raises RuntimeError on missing/unexpected keys or shape mismatches.
        """
        state_dict = {k.removeprefix("dinov2."): v for k, v in state_dict.items()}
        if "cls_token" in state_dict:
            state_dict = dinov2_hub_to_hf(state_dict)
        else:
            state_dict = _hf4_to_hf5(state_dict)
        self.backbone.load_state_dict(state_dict, strict=True)

    def prenorm_tokens(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Last block's output before the final norm (``hidden_states[-1]``): [B, T, C]."""
        expected = (3, self.config.image_size, self.config.image_size)
        if pixel_values.ndim != 4 or tuple(pixel_values.shape[1:]) != expected:
            raise ValueError(f"DINOv2 expects [B, 3, {expected[1]}, {expected[2]}], got {tuple(pixel_values.shape)}")
        # Embeddings + encoder directly: same tensor as hidden_states[-1] without keeping every
        # layer's output alive (which costs ~25x the activation memory at 518 px).
        embeddings = self.backbone.embeddings(pixel_values.to(self.backbone.dtype))
        return self.backbone.encoder(embeddings).last_hidden_state

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values: [B, 3, S, S] ImageNet-normalised RGB (see `preprocessing.dino_pixel_values`),
        S = config.image_size. Returns features [B, T, C] float32 (T = config.num_tokens)."""
        tokens = self.prenorm_tokens(pixel_values).float()
        return F.layer_norm(tokens, tokens.shape[-1:], eps=self.config.feature_eps)
