"""Building blocks of VGGT: the DINOv2 ViT it embeds patches with, its transformer block
(qk-LayerNorm + 2D RoPE + LayerScale), the 2D rotary embedding and the MLP.

Parameter names follow the official VGGT / DINOv2 state dicts exactly so checkpoints load strictly.
"""

from scenegen_core.models.vggt.layers.block import Attention, Block, LayerScale
from scenegen_core.models.vggt.layers.mlp import Mlp
from scenegen_core.models.vggt.layers.patch_embed import PatchEmbed
from scenegen_core.models.vggt.layers.rope import RotaryPositionEmbedding2D, patch_positions
from scenegen_core.models.vggt.layers.vision_transformer import DinoViTConfig, DinoViTOutput, DinoVisionTransformer

__all__ = [
    "Attention",
    "Block",
    "DinoViTConfig",
    "DinoViTOutput",
    "DinoVisionTransformer",
    "LayerScale",
    "Mlp",
    "PatchEmbed",
    "RotaryPositionEmbedding2D",
    "patch_positions",
]
