"""VGGT aggregator: DINOv2 patch embedding followed by alternating frame / global attention.

This is the only part of VGGT that SceneGen uses: the scene image's last-layer tokens become
part of every object's conditioning (see `scenegen_core.conditioning`). No autocast: it computes
in its weights' dtype, fp32 as in the official pipeline unless the module was cast to half
precision (`PipelineConfig.encoder_dtype`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from scenegen_core.models.vggt.layers.block import Block
from scenegen_core.models.vggt.layers.rope import RotaryPositionEmbedding2D, patch_positions
from scenegen_core.models.vggt.layers.vision_transformer import DinoViTConfig, DinoVisionTransformer
from scenegen_core.preprocessing import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class VGGTAggregatorConfig:
    """Aggregator architecture. Defaults = VGGT-1B (embed 1024, depth 24, 16 heads, 518 px,
    DINOv2 ViT-L/14-reg patch embedding).

    The frame/global order is fixed to [frame, global] with one block per step (VGGT-1B's only
    setting). backbone: the DINOv2 patch embedder; image size, patch size, width and register
    count are the backbone's (one value each, so they cannot disagree).
    """

    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    proj_bias: bool = True
    ffn_bias: bool = True
    qk_norm: bool = True
    rope_freq: float = 100.0
    init_values: float = 0.01
    backbone: DinoViTConfig = field(default_factory=DinoViTConfig)

    def __post_init__(self) -> None:
        if self.embed_dim % self.num_heads != 0 or (self.embed_dim // self.num_heads) % 4 != 0:
            raise ValueError(f"head dim of embed_dim {self.embed_dim} / {self.num_heads} heads must be divisible by 4")

    @property
    def img_size(self) -> int:
        return self.backbone.img_size

    @property
    def patch_size(self) -> int:
        return self.backbone.patch_size

    @property
    def embed_dim(self) -> int:
        return self.backbone.embed_dim

    @property
    def num_register_tokens(self) -> int:
        return self.backbone.num_register_tokens

    @classmethod
    def full(cls) -> "VGGTAggregatorConfig":
        """VGGT-1B at 518 px: 1374 tokens per frame (camera, 4 registers, 37x37 patches), 2048 channels."""
        return cls()

    @classmethod
    def tiny(cls, img_size: int = 112) -> "VGGTAggregatorConfig":
        """CPU-sized default for untrained runs: embed 64, depth 2, 4 heads (DINOv2 the same size).

        At 112 px: 5 + 8*8 = 69 tokens per frame, 128 channels.
        """
        return cls.sized(img_size=img_size, embed_dim=64, depth=2, num_heads=4)

    @classmethod
    def sized(cls, img_size: int, embed_dim: int, depth: int, num_heads: int, patch_size: int = 14):
        """Aggregator and its DINOv2 backbone shrunk together to one width/depth/head count."""
        backbone = DinoViTConfig(
            img_size=img_size, patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads
        )
        return cls(depth=depth, num_heads=num_heads, backbone=backbone)

    @property
    def patch_start_idx(self) -> int:
        """Index of the first patch token: after 1 camera token and the register tokens."""
        return 1 + self.num_register_tokens

    @property
    def tokens_per_frame(self) -> int:
        """P at the nominal square size img_size."""
        return self.patch_start_idx + (self.img_size // self.patch_size) ** 2


@dataclass(frozen=True)
class AggregatorOutput:
    """layers: one [B, S, P, 2C] tensor (the aggregator's weight dtype) per depth step; channels [0, C) are the frame
    block's output, [C, 2C) the global block's output of that step. P = patch_start_idx + patches.
    """

    layers: tuple[torch.Tensor, ...]
    patch_start_idx: int

    @property
    def last(self) -> torch.Tensor:
        return self.layers[-1]


def _special_tokens(param: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
    """[1, 2, X, C] learned tokens -> [batch*frames, X, C]: slot 0 for each batch element's first
    frame, slot 1 for all later frames."""
    first = param[:, :1].expand(batch, 1, *param.shape[2:])
    others = param[:, 1:].expand(batch, frames - 1, *param.shape[2:])
    return torch.cat([first, others], dim=1).reshape(batch * frames, *param.shape[2:])


class VGGTAggregator(nn.Module):
    """Alternating-attention aggregator. Parameter names match ``aggregator.*`` of VGGT-1B."""

    def __init__(self, config: VGGTAggregatorConfig):
        super().__init__()
        self.config = config
        self.patch_embed = DinoVisionTransformer(config.backbone)
        self.rope = RotaryPositionEmbedding2D(config.rope_freq) if config.rope_freq > 0 else None

        def make_block() -> Block:
            return Block(
                config.embed_dim,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=config.qkv_bias,
                proj_bias=config.proj_bias,
                ffn_bias=config.ffn_bias,
                init_values=config.init_values,
                qk_norm=config.qk_norm,
                rope=self.rope,
            )

        self.frame_blocks = nn.ModuleList(make_block() for _ in range(config.depth))
        self.global_blocks = nn.ModuleList(make_block() for _ in range(config.depth))
        self.camera_token = nn.Parameter(torch.randn(1, 2, 1, config.embed_dim) * 1e-6)
        self.register_token = nn.Parameter(torch.randn(1, 2, config.num_register_tokens, config.embed_dim) * 1e-6)
        self.register_buffer("_resnet_mean", torch.tensor(IMAGENET_MEAN).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer("_resnet_std", torch.tensor(IMAGENET_STD).view(1, 1, 3, 1, 1), persistent=False)

    @property
    def patch_start_idx(self) -> int:
        return self.config.patch_start_idx

    def forward(self, images: torch.Tensor) -> AggregatorOutput:
        """images: [B, S, 3, H, W] float32 RGB in [0, 1] (H, W multiples of the patch size);
        S frames of one scene attend to each other in the global blocks, batches never mix.
        Autocast is disabled: the blocks compute in the weights' dtype (fp32 as the official
        pipeline, or the half dtype the module was cast to; the normalised images are cast to it)."""
        if images.ndim != 5 or images.shape[2] != 3:
            raise ValueError(f"aggregator expects [B, S, 3, H, W] images, got {tuple(images.shape)}")
        if images.dtype != torch.float32:
            raise ValueError(f"aggregator runs in float32, got {images.dtype} images")
        with torch.autocast(device_type=images.device.type, enabled=False):
            return self._forward(images)

    def _forward(self, images: torch.Tensor) -> AggregatorOutput:
        batch, frames, _, height, width = images.shape
        patch = self.config.patch_size
        if height % patch or width % patch:
            raise ValueError(f"image size {height}x{width} is not a multiple of the patch size {patch}")

        # 1. ImageNet normalisation, then DINOv2 on every frame independently.
        normalised = ((images - self._resnet_mean) / self._resnet_std).reshape(batch * frames, 3, height, width)
        normalised = normalised.to(self.camera_token.dtype)
        patch_tokens = self.patch_embed(normalised).patch_tokens

        # 2. Camera + register tokens (first-frame slot vs later-frame slot) before the patches.
        tokens = torch.cat(
            [
                _special_tokens(self.camera_token, batch, frames),
                _special_tokens(self.register_token, batch, frames),
                patch_tokens,
            ],
            dim=1,
        )
        num_tokens, channels = tokens.shape[1:]
        pos = patch_positions(batch * frames, height // patch, width // patch, self.patch_start_idx, images.device)

        # 3. Alternate: frame attention within each frame, then global attention across the S
        #    frames of each batch element; the layer output is both results side by side.
        layers = []
        global_pos = pos.reshape(batch, frames * num_tokens, 2)
        for frame_block, global_block in zip(self.frame_blocks, self.global_blocks):
            tokens = frame_block(tokens.reshape(batch * frames, num_tokens, channels), pos=pos)
            frame_out = tokens.reshape(batch, frames, num_tokens, channels)
            tokens = global_block(tokens.reshape(batch, frames * num_tokens, channels), pos=global_pos)
            global_out = tokens.reshape(batch, frames, num_tokens, channels)
            layers.append(torch.cat([frame_out, global_out], dim=-1))
        return AggregatorOutput(layers=tuple(layers), patch_start_idx=self.patch_start_idx)

    @torch.inference_mode()
    def encode_scene(self, images: torch.Tensor) -> torch.Tensor:
        """SceneGen's ``encode_vggt_image``: last layer of batch element 0, [S, P, 2C] float32."""
        return self.forward(images).last[0].float()
