"""VGGT track head = DPT feature extractor (stride 2, no position embedding) + point tracker.

The feature extractor turns aggregator tokens into per-frame tracking features at half the image
resolution; the tracker (``track_predictor``) follows query points of frame 0 through all frames.
Parameter names match the official ``track_head.*`` layout of VGGT-1B.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from scenegen_core.models.vggt.heads.dpt_head import DPTHead, DPTHeadConfig
from scenegen_core.models.vggt.heads.track_predictor import (
    TrackOutput,
    TrackPredictor,
    TrackPredictorConfig,
    check_query_points,
)

FEATURE_DOWN_RATIO = 2  # the official track head's DPT runs at half resolution


@dataclass(frozen=True)
class TrackHeadConfig:
    """dim_in = 2 * aggregator embed_dim; the feature maps are tracker.latent_dim wide; iters:
    default refinement iterations. Defaults = VGGT-1B."""

    dim_in: int = 2048
    patch_size: int = 14
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)
    tracker: TrackPredictorConfig = TrackPredictorConfig()
    iters: int = 4


class TrackHead(nn.Module):
    def __init__(self, config: TrackHeadConfig):
        super().__init__()
        if config.tracker.stride != FEATURE_DOWN_RATIO:
            raise ValueError(
                f"tracker stride {config.tracker.stride} must equal the feature down ratio {FEATURE_DOWN_RATIO}"
            )
        self.config = config
        self.feature_extractor = DPTHead(
            DPTHeadConfig(
                dim_in=config.dim_in,
                patch_size=config.patch_size,
                features=config.tracker.latent_dim,
                intermediate_layer_idx=config.intermediate_layer_idx,
                pos_embed=False,
                feature_only=True,
                down_ratio=FEATURE_DOWN_RATIO,
            )
        )
        self.tracker = TrackPredictor(config.tracker)

    def features(self, layers: tuple[torch.Tensor, ...], image_hw: tuple[int, int], patch_start_idx: int):
        """Tracking feature maps [B, S, tracker.latent_dim, H/2, W/2] float32."""
        return self.feature_extractor.features(layers, image_hw, patch_start_idx)

    def forward(
        self,
        layers: tuple[torch.Tensor, ...],
        image_hw: tuple[int, int],
        patch_start_idx: int,
        query_points: torch.Tensor,
        iters: int | None = None,
    ) -> TrackOutput:
        """Track query points of frame 0 through all S frames.

        layers: aggregator outputs [B, S, P, dim_in]; image_hw: (H, W) of the input images;
        query_points: [B, N, 2] float, (x, y) pixels of frame 0 (pixel centres at integers);
        iters: refinement iterations (default config.iters). Returns a TrackOutput with tracks
        [B, S, N, 2] image pixels per iteration and visibility / confidence [B, S, N] in (0, 1).
        """
        check_query_points(query_points, layers[0].shape[0])  # before the DPT pass, not after it
        fmaps = self.features(layers, image_hw, patch_start_idx)
        return self.tracker(query_points, fmaps, self.config.iters if iters is None else iters)
