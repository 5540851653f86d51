"""VGGT heads on small configs: output shapes, activations, and the official DPT quirks."""

from __future__ import annotations

import pytest
import torch

from scenegen_core.models.vggt.heads import (
    CameraHead,
    CameraHeadConfig,
    DPTHead,
    DPTHeadConfig,
    TrackHead,
    TrackHeadConfig,
)
from scenegen_core.models.vggt.heads.dpt_head import ResidualConvUnit
from scenegen_core.models.vggt.heads.track_predictor import TrackPredictorConfig

DIM = 32  # 2 * a 16-wide aggregator


def fake_layers(frames: int = 2, grid_h: int = 4, grid_w: int = 3, count: int = 2) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.randn(1, frames, 5 + grid_h * grid_w, DIM, generator=generator) for _ in range(count))


def small_dpt(**changes) -> DPTHead:
    config = DPTHeadConfig(
        dim_in=DIM, out_channels=(8, 16, 32, 32), intermediate_layer_idx=(0, 1, 1, 1), **changes
    )
    torch.manual_seed(0)
    return DPTHead(config).eval()


def test_dpt_depth_and_points_shapes_and_activations():
    layers = fake_layers()
    with torch.no_grad():
        depth = small_dpt(output_dim=2, activation="exp")(layers, (56, 42), patch_start_idx=5)
        points = small_dpt(output_dim=4, activation="inv_log")(layers, (56, 42), patch_start_idx=5)
    assert depth.prediction.shape == (1, 2, 56, 42, 1) and depth.confidence.shape == (1, 2, 56, 42)
    assert points.prediction.shape == (1, 2, 56, 42, 3)
    assert torch.all(depth.prediction > 0)
    assert torch.all(depth.confidence > 1) and torch.all(points.confidence > 1)
    with pytest.raises(ValueError, match="layers"):
        small_dpt()(layers[:1], (56, 42), patch_start_idx=5)


def test_residual_unit_skip_is_relu_of_input_like_the_official_inplace_relu():
    unit = ResidualConvUnit(4)
    with torch.no_grad():
        for param in unit.parameters():
            param.zero_()
    x = torch.randn(1, 4, 3, 3)
    torch.testing.assert_close(unit(x), torch.relu(x))


def test_camera_head_refines_and_keeps_field_of_view_non_negative():
    torch.manual_seed(0)
    head = CameraHead(CameraHeadConfig(dim_in=DIM, trunk_depth=1, num_heads=4)).eval()
    with torch.no_grad():
        head.pose_branch.fc2.bias.fill_(-0.5)  # pushes the raw FoV negative so the ReLU matters
        outputs = head(fake_layers(frames=3), num_iterations=3)
    assert len(outputs) == 3 and all(o.shape == (1, 3, 9) for o in outputs)
    assert all(torch.all(o[..., 7:] >= 0) for o in outputs)
    assert any(torch.any(o[..., 7:] == 0) for o in outputs)
    assert (outputs[1] - outputs[0]).abs().max() > 1e-4


def test_track_head_features_and_tracks_have_the_documented_shapes():
    # A 28x21 feature map halves into at most 5 correlation levels.
    tracker = TrackPredictorConfig(
        latent_dim=16, hidden_size=32, depth=1, num_heads=2, num_virtual_tracks=4, corr_levels=5
    )
    head = TrackHead(TrackHeadConfig(dim_in=DIM, intermediate_layer_idx=(0, 1, 1, 1), tracker=tracker))
    with torch.no_grad():
        features = head.features(fake_layers(), (56, 42), patch_start_idx=5)
        out = head(fake_layers(), (56, 42), 5, torch.tensor([[[10.0, 20.0]]]))
    assert features.shape == (1, 2, 16, 28, 21)
    assert out.last.shape == (1, 2, 1, 2)
    # Frame 0 is the query itself, in image pixels.
    torch.testing.assert_close(out.last[0, 0], torch.tensor([[10.0, 20.0]]))
