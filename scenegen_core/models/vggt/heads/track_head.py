"""VGGT track head = DPT feature extractor (stride 2, no position embedding) + point tracker.

Held for strict loading of full VGGT checkpoints; SceneGen does not track points. The
feature extractor runs (`features`), the tracker's forward pass is not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from scenegen_core.models.vggt.heads.dpt_head import DPTHead, DPTHeadConfig
from scenegen_core.models.vggt.heads.track_predictor import TrackPredictor, TrackPredictorConfig


@dataclass(frozen=True)
class TrackHeadConfig:
    """dim_in = 2 * aggregator embed_dim; features = the tracker's latent width. Defaults = VGGT-1B."""

    dim_in: int = 2048
    patch_size: int = 14
    features: int = 128
    intermediate_layer_idx: tuple[int, int, int, int] = (4, 11, 17, 23)
    tracker: TrackPredictorConfig = TrackPredictorConfig()


class TrackHead(nn.Module):
    def __init__(self, config: TrackHeadConfig):
        super().__init__()
        if config.tracker.latent_dim != config.features:
            raise ValueError("tracker latent_dim must equal the feature extractor's features")
        self.config = config
        self.feature_extractor = DPTHead(
            DPTHeadConfig(
                dim_in=config.dim_in,
                patch_size=config.patch_size,
                features=config.features,
                intermediate_layer_idx=config.intermediate_layer_idx,
                pos_embed=False,
                feature_only=True,
                down_ratio=2,
            )
        )
        self.tracker = TrackPredictor(config.tracker)

    def features(self, layers: tuple[torch.Tensor, ...], image_hw: tuple[int, int], patch_start_idx: int):
        """Tracking feature maps [B, S, features, H/2, W/2] float32."""
        return self.feature_extractor.features(layers, image_hw, patch_start_idx)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("VGGT point tracking is not implemented (weights layout only); use features()")
