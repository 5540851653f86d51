"""VGGT prediction heads. SceneGen uses none of them; they exist so that full VGGT-1B
checkpoints load strictly (and the camera / DPT heads can run)."""

from scenegen_core.models.vggt.heads.camera_head import CameraHead, CameraHeadConfig
from scenegen_core.models.vggt.heads.dpt_head import DPTHead, DPTHeadConfig, DPTOutput
from scenegen_core.models.vggt.heads.track_head import TrackHead, TrackHeadConfig

__all__ = [
    "CameraHead",
    "CameraHeadConfig",
    "DPTHead",
    "DPTHeadConfig",
    "DPTOutput",
    "TrackHead",
    "TrackHeadConfig",
]
