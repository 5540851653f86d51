"""VGGT's point tracker (official ``BaseTrackerPredictor``, CoTracker-style update transformer).

Given per-frame feature maps and query points in frame 0, it iteratively refines one track per
query: each iteration correlates the track features with a feature pyramid around the current
positions, feeds [flow embedding, correlation, track feature] per frame to the
EfficientUpdateFormer (attention over time per track, attention over space through virtual
tracks) and adds the predicted position / feature updates. Module and parameter names follow the
official layout (state-dict prefix ``track_head.tracker.``) so VGGT-1B checkpoints load strictly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from scenegen_core.models.vggt.heads.track_modules import (
    CorrelationPyramid,
    flow_embedding,
    grid_sincos_embedding,
    sample_features,
)
from scenegen_core.models.vggt.layers.mlp import Mlp


@dataclass(frozen=True)
class TrackPredictorConfig:
    """Defaults = VGGT-1B: 128-channel features, 7 correlation levels of radius 4, 384-wide
    transformer with 6 time / space blocks, 8 heads, 64 virtual tracks. stride: feature-map
    pixels per image pixel divisor (the track head's DPT runs at down_ratio 2); max_scale: the
    flow normaliser (pixels) of the raw-flow input channels."""

    latent_dim: int = 128
    corr_levels: int = 7
    corr_radius: int = 4
    hidden_size: int = 384
    depth: int = 6
    num_heads: int = 8
    mlp_ratio: float = 4.0
    num_virtual_tracks: int = 64
    predict_conf: bool = True
    stride: int = 2
    max_scale: float = 518.0

    def __post_init__(self) -> None:
        if self.latent_dim % 4:
            raise ValueError(f"latent_dim must be a multiple of 4 (sin-cos embeddings), got {self.latent_dim}")
        if self.corr_levels < 1 or self.corr_radius < 0 or self.depth < 1 or self.stride < 1:
            raise ValueError(f"invalid tracker config {self}")

    @property
    def transformer_dim(self) -> int:
        """Update-transformer input width: flow embedding (latent + 4) + correlation + track feature."""
        return 3 * self.latent_dim + 4


@dataclass(frozen=True)
class TrackOutput:
    """tracks: one [B, S, N, 2] float32 per refinement iteration, (x, y) image pixels of each
    query's position in every frame (frame 0 is the query itself); visibility / confidence:
    [B, S, N] float32 in (0, 1) after the last iteration (confidence None when the tracker has no
    confidence head)."""

    tracks: tuple[torch.Tensor, ...]
    visibility: torch.Tensor
    confidence: torch.Tensor | None

    @property
    def last(self) -> torch.Tensor:
        """Tracks of the final iteration, [B, S, N, 2] image pixels."""
        return self.tracks[-1]


class AttnBlock(nn.Module):
    """Self-attention block (torch MultiheadAttention) + MLP; names norm1/norm2/attn/mlp.

    As in the official block the residual stream restarts from the normalised input:
    y = n + attn(n) with n = norm1(x), then y + mlp(norm2(y)).
    """

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, num_heads, batch_first=True)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [M, L, hidden] -> [M, L, hidden] (attention over L)."""
        x = self.norm1(x)
        # need_weights=False: the official call discards the weights; the output is the same.
        x = x + self.attn(x, x, x, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class CrossAttnBlock(nn.Module):
    """Cross-attention block + MLP; names norm1/norm_context/norm2/cross_attn/mlp. Same
    normalised-residual form as AttnBlock: y = n + attn(n, norm_context(c)), n = norm1(x)."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.norm_context = nn.LayerNorm(hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.cross_attn = nn.MultiheadAttention(hidden, num_heads, batch_first=True)
        self.mlp = Mlp(hidden, int(hidden * mlp_ratio))

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """x [M, L, hidden] queries, context [M, K, hidden] keys / values -> [M, L, hidden]."""
        x = self.norm1(x)
        context = self.norm_context(context)
        x = x + self.cross_attn(x, context, context, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class EfficientUpdateFormer(nn.Module):
    """Time attention per track and space attention through virtual tracks.
    (``virual_tracks`` is the official spelling and must stay for checkpoint compatibility.)"""

    def __init__(self, config: TrackPredictorConfig, input_dim: int, output_dim: int):
        super().__init__()
        hidden, heads, ratio = config.hidden_size, config.num_heads, config.mlp_ratio
        self.num_virtual_tracks = config.num_virtual_tracks
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
        self._init_weights()

    def _init_weights(self) -> None:
        # Official init (matters only when training from scratch): Xavier-uniform weights and zero
        # biases for every Linear (attention output projections included), and near-zero flow-head
        # weights so that the first updates are small.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.trunc_normal_(self.flow_head.weight, std=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, N, S, input_dim] per-track, per-frame tokens -> [B, N, S, output_dim] updates."""
        batch, count, frames, _ = x.shape
        init = self.input_transform(self.input_norm(x))
        virtual = self.virual_tracks.repeat(batch, 1, frames, 1)
        tokens = torch.cat([init, virtual], dim=1)  # [B, N + K, S, hidden]
        total = tokens.shape[1]
        # The official model interleaves one space stage after every (time / space depth)-th time
        # block, starting with the first; with equal depths that is after every time block.
        space_every = len(self.time_blocks) // len(self.space_virtual_blocks)
        space_idx = 0
        for i, time_block in enumerate(self.time_blocks):
            # 1. Attention over the S frames of each (real or virtual) track.
            tokens = time_block(tokens.reshape(batch * total, frames, -1)).reshape(batch, total, frames, -1)
            if i % space_every:
                continue
            # 2. Space attention per frame: virtual tracks read the points, talk among
            # themselves, then the points read the virtual tracks.
            space = tokens.transpose(1, 2).reshape(batch * frames, total, -1)
            points, virtual = space[:, :count], space[:, count:]
            virtual = self.space_virtual2point_blocks[space_idx](virtual, points)
            virtual = self.space_virtual_blocks[space_idx](virtual)
            points = self.space_point2virtual_blocks[space_idx](points, virtual)
            space = torch.cat([points, virtual], dim=1)
            tokens = space.reshape(batch, frames, total, -1).transpose(1, 2)
            space_idx += 1
        tokens = tokens[:, :count] + init
        return self.flow_head(self.output_norm(tokens))


def check_query_points(query_points: torch.Tensor, batch: int) -> None:
    """ValueError unless query_points is a floating-point [batch, N, 2] tensor with N >= 1."""
    if query_points.dim() != 3 or query_points.shape[-1] != 2 or query_points.shape[0] != batch:
        raise ValueError(f"query_points must be [B, N, 2] with B = {batch}, got {tuple(query_points.shape)}")
    if query_points.shape[1] == 0:
        raise ValueError("query_points holds no points (N = 0)")
    if not query_points.is_floating_point():
        raise ValueError(f"query_points must be floating point pixels, got {query_points.dtype}")


def _check_inputs(query_points: torch.Tensor, feature_maps: torch.Tensor, latent_dim: int, iters: int) -> None:
    if feature_maps.dim() != 5 or feature_maps.shape[2] != latent_dim:
        raise ValueError(f"feature maps must be [B, S, {latent_dim}, H, W], got {tuple(feature_maps.shape)}")
    check_query_points(query_points, feature_maps.shape[0])
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")


class TrackPredictor(nn.Module):
    """Official ``BaseTrackerPredictor`` (state-dict prefix ``tracker.``)."""

    def __init__(self, config: TrackPredictorConfig):
        super().__init__()
        self.config = config
        latent = config.latent_dim
        corr_features = config.corr_levels * (2 * config.corr_radius + 1) ** 2
        transformer_dim = config.transformer_dim
        self.corr_mlp = Mlp(corr_features, config.hidden_size, latent)
        self.query_ref_token = nn.Parameter(torch.randn(1, 2, transformer_dim))
        self.updateformer = EfficientUpdateFormer(config, transformer_dim, latent + 2)
        self.fmap_norm = nn.LayerNorm(latent)
        self.ffeat_norm = nn.GroupNorm(1, latent)
        self.ffeat_updater = nn.Sequential(nn.Linear(latent, latent), nn.GELU())
        self.vis_predictor = nn.Sequential(nn.Linear(latent, 1))
        self.conf_predictor = nn.Sequential(nn.Linear(latent, 1)) if config.predict_conf else None

    def forward(self, query_points: torch.Tensor, feature_maps: torch.Tensor, iters: int = 4) -> TrackOutput:
        """query_points [B, N, 2] float, (x, y) image pixels in frame 0; feature_maps
        [B, S, latent_dim, H / stride, W / stride] float32 (the track head's DPT features);
        iters: refinement iterations -> TrackOutput (tracks in image pixels)."""
        cfg = self.config
        _check_inputs(query_points, feature_maps, cfg.latent_dim, iters)
        batch, frames, latent, height, width = feature_maps.shape
        count = query_points.shape[1]

        # 1. LayerNorm over channels of every feature-map pixel; queries to feature-map pixels.
        fmaps = self.fmap_norm(feature_maps.permute(0, 1, 3, 4, 2)).permute(0, 1, 4, 2, 3)
        queries = query_points.to(fmaps.dtype) / cfg.stride
        coords = queries.unsqueeze(1).repeat(1, frames, 1, 1)  # [B, S, N, 2], every frame starts at the query

        # 2. Track features start as the query features sampled in frame 0, for every frame.
        query_feats = sample_features(fmaps[:, 0], queries)  # [B, N, C]
        track_feats = query_feats.unsqueeze(1).repeat(1, frames, 1, 1)  # [B, S, N, C]
        pyramid = CorrelationPyramid(fmaps, cfg.corr_levels, cfg.corr_radius)

        # 3. Constant per-iteration terms: the 2D sin-cos position of each query in the feature map
        # (the official code re-samples it every iteration at the unchanged frame-0 coords) and the
        # query-reference token (one for frame 0, another for all later frames).
        grid_pe = grid_sincos_embedding(cfg.transformer_dim, height, width, device=fmaps.device)
        query_pe = sample_features(grid_pe.expand(batch, -1, -1, -1), queries).reshape(batch * count, 1, -1)
        ref = self.query_ref_token
        ref_token = torch.cat([ref[:, :1], ref[:, 1:2].expand(-1, frames - 1, -1)], dim=1)  # [1, S, D]

        tracks = []
        for _ in range(iters):
            coords = coords.detach()  # as official: no gradient through earlier iterations' positions
            # 4. Correlation features around the current positions, per track over time.
            corr = pyramid.sample(track_feats, coords)  # [B, S, N, L]
            corr = self.corr_mlp(corr.transpose(1, 2).reshape(batch * count, frames, -1))
            # 5. Flow relative to frame 0: sin-cos embedding + the raw flow (twice) / max_scale.
            flows = (coords - coords[:, :1]).transpose(1, 2).reshape(batch * count, frames, 2)
            flow_emb = torch.cat(
                [flow_embedding(flows, latent // 2), flows / cfg.max_scale, flows / cfg.max_scale], dim=-1
            )
            feats = track_feats.transpose(1, 2).reshape(batch * count, frames, latent)
            x = torch.cat([flow_emb, corr, feats], dim=-1) + query_pe + ref_token.to(flows.dtype)

            # 6. Update transformer -> position and feature increments.
            delta = self.updateformer(x.reshape(batch, count, frames, -1)).reshape(batch * count * frames, -1)
            feats = feats.reshape(-1, latent) + self.ffeat_updater(self.ffeat_norm(delta[:, 2:]))
            track_feats = feats.reshape(batch, count, frames, latent).transpose(1, 2)
            coords = coords + delta[:, :2].reshape(batch, count, frames, 2).transpose(1, 2)
            # 7. Frame 0 is pinned to the query; report positions in image pixels.
            coords[:, 0] = queries
            tracks.append(coords * cfg.stride)

        # 8. Visibility / confidence from the final track features.
        flat = track_feats.reshape(-1, latent)
        visibility = torch.sigmoid(self.vis_predictor(flat)).reshape(batch, frames, count)
        confidence = None
        if self.conf_predictor is not None:
            confidence = torch.sigmoid(self.conf_predictor(flat)).reshape(batch, frames, count)
        return TrackOutput(tracks=tuple(tracks), visibility=visibility, confidence=confidence)
