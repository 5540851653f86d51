"""Full VGGT = aggregator + camera, point, depth and track heads (VGGT-1B state-dict layout).

SceneGen only runs the aggregator; the full model loads an official checkpoint strictly
(`VGGT.load_state_dict(sd, strict=True)`) and runs every head, including point tracking when
query points are given. `model.aggregator` can be used alone (or use `aggregator_state_dict` to
load just the aggregator).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn

from scenegen_core.models.vggt.aggregator import AggregatorOutput, VGGTAggregator, VGGTAggregatorConfig
from scenegen_core.models.vggt.heads.camera_head import CameraHead, CameraHeadConfig
from scenegen_core.models.vggt.heads.dpt_head import DPTHead, DPTHeadConfig, DPTOutput
from scenegen_core.models.vggt.heads.track_head import TrackHead, TrackHeadConfig
from scenegen_core.models.vggt.heads.track_predictor import TrackOutput, TrackPredictorConfig

AGGREGATOR_PREFIX = "aggregator."


@dataclass(frozen=True)
class VGGTConfig:
    """aggregator: see VGGTAggregatorConfig. dpt_layers: the four aggregator layers the DPT heads
    read (VGGT-1B: 4, 11, 17, 23; must be < aggregator depth). camera_trunk_depth / camera_heads:
    the camera head's trunk. tracker: the point tracker (its latent_dim is also the track
    feature width)."""

    aggregator: VGGTAggregatorConfig = field(default_factory=VGGTAggregatorConfig)
    dpt_layers: tuple[int, int, int, int] = (4, 11, 17, 23)
    camera_trunk_depth: int = 4
    camera_heads: int = 16
    tracker: TrackPredictorConfig = field(default_factory=TrackPredictorConfig)

    def __post_init__(self) -> None:
        if max(self.dpt_layers) >= self.aggregator.depth or min(self.dpt_layers) < 0:
            raise ValueError(f"dpt_layers {self.dpt_layers} out of range for depth {self.aggregator.depth}")


@dataclass(frozen=True)
class VGGTOutput:
    """aggregator: layer tokens; pose_encodings: [B, S, 9] per camera-head iteration;
    depth: [B, S, H, W, 1] + confidence; world_points: [B, S, H, W, 3] + confidence;
    tracks: point tracks (image pixels, see TrackOutput) when query points were given, else None."""

    aggregator: AggregatorOutput
    pose_encodings: tuple[torch.Tensor, ...]
    depth: DPTOutput
    world_points: DPTOutput
    tracks: TrackOutput | None = None


def aggregator_state_dict(full_state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys of a full VGGT checkpoint that start with ``aggregator.``, prefix removed."""
    out = {k[len(AGGREGATOR_PREFIX) :]: v for k, v in full_state_dict.items() if k.startswith(AGGREGATOR_PREFIX)}
    if not out:
        raise ValueError("state dict has no 'aggregator.' keys; is it a full VGGT checkpoint?")
    return out


class VGGT(nn.Module):
    """Aggregator + heads. forward(images [B, S, 3, H, W], query_points [B, N, 2] | None) -> VGGTOutput:
    camera pose encodings, depth and world points per frame, and point tracks when queried.
    Parameter names = the official VGGT-1B state dict."""

    def __init__(self, config: VGGTConfig):
        super().__init__()
        self.config = config
        agg = config.aggregator
        dim_in = 2 * agg.embed_dim
        self.aggregator = VGGTAggregator(agg)
        self.camera_head = CameraHead(
            CameraHeadConfig(dim_in=dim_in, trunk_depth=config.camera_trunk_depth, num_heads=config.camera_heads)
        )
        dpt = DPTHeadConfig(dim_in=dim_in, patch_size=agg.patch_size, intermediate_layer_idx=config.dpt_layers)
        self.point_head = DPTHead(dpt)
        self.depth_head = DPTHead(DPTHeadConfig(**{**dpt.__dict__, "output_dim": 2, "activation": "exp"}))
        self.track_head = TrackHead(
            TrackHeadConfig(
                dim_in=dim_in,
                patch_size=agg.patch_size,
                intermediate_layer_idx=config.dpt_layers,
                tracker=config.tracker,
            )
        )

    def forward(self, images: torch.Tensor, query_points: torch.Tensor | None = None) -> VGGTOutput:
        """images: [B, S, 3, H, W] float32 in [0, 1]. query_points: optional [B, N, 2] float, (x, y)
        pixels in frame 0 (pixel centres at integers; like the official model, [N, 2] is taken as
        B = 1); when given, the track head follows them through all frames (``tracks``)."""
        if query_points is not None and query_points.dim() == 2:
            query_points = query_points.unsqueeze(0)
        tokens = self.aggregator(images)
        image_hw = tuple(images.shape[-2:])
        tracks = None
        if query_points is not None:
            tracks = self.track_head(tokens.layers, image_hw, tokens.patch_start_idx, query_points)
        return VGGTOutput(
            aggregator=tokens,
            pose_encodings=tuple(self.camera_head(tokens.layers)),
            depth=self.depth_head(tokens.layers, image_hw, tokens.patch_start_idx),
            world_points=self.point_head(tokens.layers, image_hw, tokens.patch_start_idx),
            tracks=tracks,
        )
