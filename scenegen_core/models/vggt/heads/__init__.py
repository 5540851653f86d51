"""VGGT prediction heads: camera, DPT (depth / world points) and point tracking. SceneGen runs
none of them (only the aggregator); they load from full VGGT-1B checkpoints strictly and run."""

from scenegen_core.models.vggt.heads.camera_head import CameraHead, CameraHeadConfig
from scenegen_core.models.vggt.heads.dpt_head import DPTHead, DPTHeadConfig, DPTOutput
from scenegen_core.models.vggt.heads.track_head import TrackHead, TrackHeadConfig
from scenegen_core.models.vggt.heads.track_predictor import TrackOutput, TrackPredictorConfig

__all__ = [
    "CameraHead",
    "CameraHeadConfig",
    "DPTHead",
    "DPTHeadConfig",
    "DPTOutput",
    "TrackHead",
    "TrackHeadConfig",
    "TrackOutput",
    "TrackPredictorConfig",
]
