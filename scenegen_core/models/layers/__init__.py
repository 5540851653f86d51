"""Building blocks shared by the SceneGen models (no model-level wiring here)."""

from scenegen_core.models.layers.attention import MultiHeadAttention, multihead_sdpa
from scenegen_core.models.layers.embeddings import (
    TimestepEmbedder,
    absolute_position_embedding_3d,
    grid_coords_3d,
    patchify_3d,
    pixel_shuffle_3d,
    timestep_frequencies,
    unpatchify_3d,
)
from scenegen_core.models.layers.modulated import (
    FeedForwardNet,
    ModulatedTransformerBlock,
    SceneModulatedCrossBlock,
    modulate,
)
from scenegen_core.models.layers.norm import ChannelLayerNorm32, GroupNorm32, LayerNorm32, MultiHeadRMSNorm
from scenegen_core.models.layers.official_config import official_args
from scenegen_core.models.layers.precision import HALF_DTYPES, convert_to_half, resolve_half_dtype, torso_dtype

__all__ = [
    "ChannelLayerNorm32",
    "FeedForwardNet",
    "GroupNorm32",
    "HALF_DTYPES",
    "LayerNorm32",
    "ModulatedTransformerBlock",
    "MultiHeadAttention",
    "MultiHeadRMSNorm",
    "SceneModulatedCrossBlock",
    "TimestepEmbedder",
    "absolute_position_embedding_3d",
    "convert_to_half",
    "grid_coords_3d",
    "modulate",
    "multihead_sdpa",
    "official_args",
    "patchify_3d",
    "pixel_shuffle_3d",
    "resolve_half_dtype",
    "timestep_frequencies",
    "torso_dtype",
    "unpatchify_3d",
]
