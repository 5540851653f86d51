"""Parameter layout of VGGT's point tracker (CoTracker-style update transformer).

Only the module structure is reproduced, so that full VGGT-1B checkpoints load strictly; SceneGen
never tracks points and the iterative correlation-sampling forward pass is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from scenegen_core.models.vggt.layers.mlp import Mlp


@dataclass(frozen=True)
class TrackPredictorConfig:
    """Defaults = VGGT-1B: 128-channel features, 7 correlation levels of radius 4, 384-wide
    transformer with 6 time / space blocks, 8 heads, 64 virtual tracks."""

    latent_dim: int = 128
    corr_levels: int = 7
    corr_radius: int = 4
    hidden_size: int = 384
    depth: int = 6
    num_heads: int = 8
    mlp_ratio: float = 4.0
    num_virtual_tracks: int = 64
    predict_conf: bool = True


class AttnBlock(nn.Module):
    """Self-attention block (torch MultiheadAttention) + MLP; names norm1/norm2/attn/mlp."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, num_heads, batch_first=True)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))


class CrossAttnBlock(nn.Module):
    """Cross-attention block + MLP; names norm1/norm_context/norm2/cross_attn/mlp."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.norm_context = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.cross_attn = nn.MultiheadAttention(hidden, num_heads, batch_first=True)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))


class EfficientUpdateFormer(nn.Module):
    """Time attention per track and space attention through virtual tracks.
    (``virual_tracks`` is the official spelling and must stay for checkpoint compatibility.)"""

    def __init__(self, config: TrackPredictorConfig, input_dim: int, output_dim: int):
        super().__init__()
        hidden, heads, ratio = config.hidden_size, config.num_heads, config.mlp_ratio
        self.input_norm = nn.LayerNorm(input_dim)
        self.input_transform = nn.Linear(input_dim, hidden)
        self.output_norm = nn.LayerNorm(hidden)
        self.flow_head = nn.Linear(hidden, output_dim)
        self.virual_tracks = nn.Parameter(torch.randn(1, config.num_virtual_tracks, 1, hidden))
        self.time_blocks = nn.ModuleList(AttnBlock(hidden, heads, ratio) for _ in range(config.depth))
        self.space_virtual_blocks = nn.ModuleList(AttnBlock(hidden, heads, ratio) for _ in range(config.depth))
        self.space_point2virtual_blocks = nn.ModuleList(
            CrossAttnBlock(hidden, heads, ratio) for _ in range(config.depth)
        )
        self.space_virtual2point_blocks = nn.ModuleList(
            CrossAttnBlock(hidden, heads, ratio) for _ in range(config.depth)
        )


class TrackPredictor(nn.Module):
    """Official ``BaseTrackerPredictor`` parameter layout (state-dict prefix ``tracker.``)."""

    def __init__(self, config: TrackPredictorConfig):
        super().__init__()
        latent = config.latent_dim
        corr_features = config.corr_levels * (2 * config.corr_radius + 1) ** 2
        transformer_dim = 3 * latent + 4
        self.corr_mlp = Mlp(corr_features, config.hidden_size, latent)
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, transformer_dim))
        self.updateformer = EfficientUpdateFormer(config, transformer_dim, latent + 2)
        self.fmap_norm = nn.LayerNorm(latent)
        self.ffeat_norm = nn.GroupNorm(1, latent)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent, latent), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent, 1)) if config.predict_conf else None
