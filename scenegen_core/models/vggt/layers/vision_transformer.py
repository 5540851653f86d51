"""DINOv2 vision transformer with register tokens, in the torch.hub parameter layout.

VGGT embeds patches with this network (``Aggregator.patch_embed``) and SceneGen's image
conditioner is the same architecture (``dinov2_vitl14_reg``), so one implementation serves both;
`scenegen_core.models.dinov2` maps its state dict onto the transformers model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from scenegen_core.models.vggt.layers.block import Block
from scenegen_core.models.vggt.layers.patch_embed import PatchEmbed


@dataclass(frozen=True)
class DinoViTConfig:
    """Architecture of a DINOv2 ViT. Defaults = torch.hub ``dinov2_vitl14_reg`` at 518 px.

    img_size / patch_size in pixels; the position table has (img_size/patch_size)^2 + 1 rows.
    init_values: LayerScale init. interpolate_*: position-table resampling for other grids.
    """

    img_size: int = 518
    patch_size: int = 14
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    num_register_tokens: int = 4
    init_values: float = 1.0
    interpolate_antialias: bool = True
    interpolate_offset: float = 0.0
    norm_eps: float = 1e-6

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size != 0:
            raise ValueError(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads != 0:
            raise ValueError(f"embed_dim {self.embed_dim} is not divisible by num_heads {self.num_heads}")

    @classmethod
    def vit_large(cls, img_size: int = 518, patch_size: int = 14) -> "DinoViTConfig":
        return cls(img_size=img_size, patch_size=patch_size)


@dataclass(frozen=True)
class DinoViTOutput:
    """Token sequences of one forward pass, [B, 1 + R + N, C] float32 each.

    Order along tokens: cls, R register tokens, N patch tokens (row-major over the patch grid).
    x_prenorm is the last block's output; x_norm is it after the final LayerNorm.
    """

    x_prenorm: torch.Tensor
    x_norm: torch.Tensor
    num_register_tokens: int

    @property
    def patch_tokens(self) -> torch.Tensor:
        """[B, N, C] normed patch tokens (the official ``x_norm_patchtokens``)."""
        return self.x_norm[:, 1 + self.num_register_tokens :]


class DinoVisionTransformer(nn.Module):
    """DINOv2 ViT. Input [B, 3, H, W] normalised pixels (H, W multiples of the patch size)."""

    def __init__(self, config: DinoViTConfig):
        super().__init__()
        self.config = config
        dim = config.embed_dim
        self.patch_embed = PatchEmbed(config.img_size, config.patch_size, 3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches + 1, dim))
        self.register_tokens = nn.Parameter(torch.zeros(1, config.num_register_tokens, dim))
        self.blocks = nn.ModuleList(
            Block(
                dim,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                init_values=config.init_values,
                norm_eps=config.norm_eps,
            )
            for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(dim, eps=config.norm_eps)
        # Only used by DINOv2's masked-image training; kept so official checkpoints load strictly.
        self.mask_token = nn.Parameter(torch.zeros(1, dim))
        nn.init.normal_(self.pos_embed, std=0.02)

    def interpolate_pos_encoding(self, num_patches: int, height: int, width: int) -> torch.Tensor:
        """Position table for an H x W input: [1, 1 + num_patches, C].

        The stored table is used as-is for the nominal square grid; otherwise its patch part is
        resampled bicubically (antialias per config) to (H/p, W/p); the cls entry is unchanged.
        """
        stored = self.pos_embed.shape[1] - 1
        if num_patches == stored and height == width:
            return self.pos_embed
        table = self.pos_embed.float()
        side = int(math.sqrt(stored))
        if side * side != stored:
            raise ValueError(f"position table with {stored} patch rows is not a square grid")
        grid_h, grid_w = height // self.config.patch_size, width // self.config.patch_size
        offset = self.config.interpolate_offset
        if offset:
            resize = {"scale_factor": ((grid_h + offset) / side, (grid_w + offset) / side)}
        else:
            resize = {"size": (grid_h, grid_w)}
        patch_table = F.interpolate(
            table[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2),
            mode="bicubic",
            antialias=self.config.interpolate_antialias,
            **resize,
        )
        patch_table = patch_table.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1)
        return torch.cat([table[:, :1], patch_table], dim=1).to(self.pos_embed.dtype)

    def prepare_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, H, W] -> [B, 1 + R + N, C]: patches, cls prepended, positions added, registers
        inserted after cls (registers carry no position embedding)."""
        height, width = images.shape[-2:]
        patches = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        x = x + self.interpolate_pos_encoding(patches.shape[1], height, width)
        registers = self.register_tokens.expand(x.shape[0], -1, -1)
        return torch.cat([x[:, :1], registers, x[:, 1:]], dim=1)

    def forward(self, images: torch.Tensor) -> DinoViTOutput:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"DINOv2 expects [B, 3, H, W] images, got {tuple(images.shape)}")
        x = self.prepare_tokens(images)
        for block in self.blocks:
            x = block(x)
        return DinoViTOutput(x_prenorm=x, x_norm=self.norm(x), num_register_tokens=self.config.num_register_tokens)
