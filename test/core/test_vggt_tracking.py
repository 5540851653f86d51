"""VGGT point tracker: sampling / correlation / embedding helpers against hand-computed values,
the official block quirks, symmetry properties of the tracker, and the full tiny VGGT with queries."""

from __future__ import annotations

import math

import pytest
import torch

from scenegen_core.models.vggt import VGGT, VGGTAggregatorConfig, VGGTConfig
from scenegen_core.models.vggt.heads.track_head import TrackHead, TrackHeadConfig
from scenegen_core.models.vggt.heads.track_modules import (
    CorrelationPyramid,
    flow_embedding,
    grid_sincos_embedding,
    sample_features,
)
from scenegen_core.models.vggt.heads.track_predictor import (
    AttnBlock,
    CrossAttnBlock,
    TrackOutput,
    TrackPredictor,
    TrackPredictorConfig,
)

TINY_TRACKER = TrackPredictorConfig(
    latent_dim=16, corr_levels=3, corr_radius=2, hidden_size=32, depth=2, num_heads=2, num_virtual_tracks=4
)


def tent(d: float) -> float:
    """Bilinear weight of a pixel centre at distance d along one axis."""
    return max(0.0, 1.0 - abs(d))


def window_points(cx: float, cy: float, level: int, radius: int):
    """(flat index, x, y) of each correlation-window sample at one pyramid level, official order:
    index i * (2r + 1) + j samples (x + i - r, y + j - r)."""
    side = 2 * radius + 1
    for i in range(side):
        for j in range(side):
            yield i * side + j, cx / 2**level + i - radius, cy / 2**level + j - radius


@pytest.fixture()
def tracker() -> TrackPredictor:
    torch.manual_seed(0)
    model = TrackPredictor(TINY_TRACKER).eval()
    with torch.no_grad():  # the official flow-head init is ~0; larger weights make the tracks move
        model.updateformer.flow_head.weight.normal_(std=0.5)
    return model


def random_inputs(batch: int = 2, frames: int = 3, count: int = 6):
    generator = torch.Generator().manual_seed(1)
    fmaps = torch.randn(batch, frames, TINY_TRACKER.latent_dim, 12, 10, generator=generator)
    queries = torch.rand(batch, count, 2, generator=generator) * torch.tensor([19.0, 23.0])  # image px
    return fmaps, queries


def assert_same_output(a: TrackOutput, b: TrackOutput, atol: float) -> None:
    assert len(a.tracks) == len(b.tracks)
    for ta, tb in zip(a.tracks, b.tracks):
        torch.testing.assert_close(ta, tb, atol=atol, rtol=0)
    torch.testing.assert_close(a.visibility, b.visibility, atol=atol, rtol=0)
    torch.testing.assert_close(a.confidence, b.confidence, atol=atol, rtol=0)


# --- helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("centre", [(4.0, 5.0), (3.5, 5.0), (2.5, 4.5), (0.5, 7.0)])
def test_correlation_of_one_hot_features_is_the_bilinear_tent_at_every_level(centre):
    size, levels, radius = 8, 3, 2
    channels = size * size
    fmaps = torch.eye(channels).reshape(channels, size, size)[None, None]  # pixel (x, y) = e_{y*8+x}
    targets_xy = [(3, 5), (6, 1), (0, 7)]
    targets = torch.stack([fmaps[0, 0, :, y, x] for x, y in targets_xy])[None, None]  # [1, 1, 3, C]
    coords = torch.tensor(centre).expand(1, 1, len(targets_xy), 2)
    out = CorrelationPyramid(fmaps, levels, radius).sample(targets, coords)
    side = (2 * radius + 1) ** 2
    assert out.shape == (1, 1, len(targets_xy), levels * side)
    for n, (tx, ty) in enumerate(targets_xy):
        for level in range(levels):
            # 2x2 average pooling spreads the one-hot over its block: <t, f_l(X, Y)> = 4^-l at the
            # block holding the target pixel, 0 elsewhere; then / sqrt(C).
            peak_x, peak_y, value = tx // 2**level, ty // 2**level, 1.0 / 4**level / math.sqrt(channels)
            for k, px, py in window_points(*centre, level, radius):
                expected = value * tent(px - peak_x) * tent(py - peak_y)
                assert out[0, 0, n, level * side + k].item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("centre", [(0.0, 0.0), (0.5, 3.0), (7.0, 6.5)])
def test_correlation_of_constant_features_fades_to_zero_outside_the_map(centre):
    size, levels, radius, channels = 8, 3, 2, 4
    fmaps = torch.ones(1, 2, channels, size, size)
    targets = torch.ones(1, 2, 1, channels)
    out = CorrelationPyramid(fmaps, levels, radius).sample(targets, torch.tensor(centre).expand(1, 2, 1, 2))
    side = (2 * radius + 1) ** 2
    for level in range(levels):
        extent = size // 2**level
        for k, px, py in window_points(*centre, level, radius):
            cover_x = sum(tent(px - x) for x in range(extent))
            cover_y = sum(tent(py - y) for y in range(extent))
            expected = math.sqrt(channels) * cover_x * cover_y  # C / sqrt(C) inside, zero padding outside
            for frame in range(2):
                assert out[0, frame, 0, level * side + k].item() == pytest.approx(expected, abs=1e-5)


def test_correlation_pyramid_rejects_maps_too_small_for_its_levels():
    with pytest.raises(ValueError, match="corr_levels"):
        CorrelationPyramid(torch.zeros(1, 1, 4, 7, 20), levels=4, radius=1)  # 7 px < 2^3
    CorrelationPyramid(torch.zeros(1, 1, 4, 8, 20), levels=4, radius=1)


def test_feature_sampling_uses_pixel_centres_and_border_padding():
    generator = torch.Generator().manual_seed(2)
    fmap = torch.randn(2, 5, 6, 7, generator=generator)  # [B, C, H, W]
    points = torch.tensor([[[0.0, 0.0], [3.0, 2.0], [6.0, 5.0], [3.5, 2.0], [3.5, 2.5], [-1.0, 0.0]]]).repeat(2, 1, 1)
    got = sample_features(fmap, points)  # [B, N, C]
    assert got.shape == (2, 6, 5)
    f = fmap.permute(0, 2, 3, 1)  # [B, H, W, C], index [b, y, x]
    torch.testing.assert_close(got[:, 0], f[:, 0, 0], atol=1e-6, rtol=0)
    torch.testing.assert_close(got[:, 1], f[:, 2, 3], atol=1e-6, rtol=0)
    torch.testing.assert_close(got[:, 2], f[:, 5, 6], atol=1e-6, rtol=0)  # last pixel centre = W-1, H-1
    torch.testing.assert_close(got[:, 3], (f[:, 2, 3] + f[:, 2, 4]) / 2, atol=1e-6, rtol=0)
    torch.testing.assert_close(got[:, 4], (f[:, 2, 3] + f[:, 2, 4] + f[:, 3, 3] + f[:, 3, 4]) / 4, atol=1e-6, rtol=0)
    torch.testing.assert_close(got[:, 5], f[:, 0, 0], atol=1e-6, rtol=0)  # border padding, as official


def test_flow_embedding_matches_the_interleaved_linear_frequency_formula():
    channels = 8  # w_k = 2k * 1000 / 8 = 0, 250, 500, 750: exact in float32 with dyadic inputs
    xy = torch.tensor([[[0.5, -2.0], [1.25, 0.0]]])
    got = flow_embedding(xy, channels)
    assert got.shape == (1, 2, 2 * channels) and got.dtype == torch.float32
    for n, (x, y) in enumerate(xy[0].tolist()):
        expected = []
        for t in (x, y):
            for k in range(channels // 2):
                w = 2 * k * 1000.0 / channels
                expected += [math.sin(t * w), math.cos(t * w)]
        torch.testing.assert_close(got[0, n], torch.tensor(expected), atol=1e-6, rtol=0)


def test_grid_sincos_embedding_matches_the_formula_with_x_first():
    dim, height, width = 8, 3, 4
    got = grid_sincos_embedding(dim, height, width)
    assert got.shape == (1, dim, height, width)
    omega = [1.0, 10000.0 ** -0.5]  # 10000^(-k / (dim / 4)), k = 0, 1
    for x, y in [(0, 0), (2, 1), (3, 2)]:
        expected = [f(x * w) for f in (math.sin, math.cos) for w in omega]
        expected += [f(y * w) for f in (math.sin, math.cos) for w in omega]
        torch.testing.assert_close(got[0, :, y, x], torch.tensor(expected), atol=1e-6, rtol=0)


# --- blocks and tracker ------------------------------------------------------------------------


def test_attention_blocks_keep_the_official_normalised_residual():
    torch.manual_seed(3)
    attn, cross = AttnBlock(8, 2, 2.0), CrossAttnBlock(8, 2, 2.0)
    with torch.no_grad():
        for block in (attn, cross):
            block.norm1.weight.uniform_(0.5, 2.0)
            block.norm1.bias.normal_()
        for proj in (attn.attn.out_proj, cross.cross_attn.out_proj, attn.mlp.fc2, cross.mlp.fc2):
            proj.weight.zero_()
            proj.bias.zero_()
        x, context = torch.randn(3, 5, 8), torch.randn(3, 4, 8)
        # With attention and MLP silenced, the block returns norm1(x), not x.
        torch.testing.assert_close(attn(x), attn.norm1(x))
        torch.testing.assert_close(cross(x, context), cross.norm1(x))


def test_tracker_output_types_ranges_and_pinned_first_frame(tracker):
    fmaps, queries = random_inputs()
    with torch.no_grad():
        out = tracker(queries, fmaps, iters=3)
    assert len(out.tracks) == 3 and all(t.shape == (2, 3, 6, 2) for t in out.tracks)
    assert out.visibility.shape == out.confidence.shape == (2, 3, 6)
    assert torch.all((out.visibility > 0) & (out.visibility < 1))
    assert torch.all((out.confidence > 0) & (out.confidence < 1))
    for tracks in out.tracks:
        assert torch.equal(tracks[:, 0], queries)  # frame 0 pinned (queries / 2 * 2 is exact)
    assert (out.tracks[-1][:, 1:] - queries[:, None]).abs().max() > 0.1  # later frames do move
    assert (out.tracks[1] - out.tracks[0]).abs().max() > 1e-3  # and each iteration refines


def test_zero_updates_leave_every_frame_at_the_query_in_image_pixels(tracker):
    fmaps, queries = random_inputs()
    with torch.no_grad():
        tracker.updateformer.flow_head.weight.zero_()
        tracker.updateformer.flow_head.bias.zero_()
        out = tracker(queries, fmaps, iters=2)
    for tracks in out.tracks:
        assert torch.equal(tracks, queries[:, None].expand(-1, 3, -1, -1))


def test_tracker_is_equivariant_to_query_order_and_batches_never_mix(tracker):
    # float64: the official flow embedding has frequencies up to ~1000 rad/px, so float32 rounding
    # (~4e-6 px) in one iteration becomes ~1e-3 px in the next; the symmetry itself is exact.
    tracker = tracker.double()
    fmaps, queries = (t.double() for t in random_inputs())
    perm = torch.tensor([4, 0, 5, 2, 1, 3])
    with torch.no_grad():
        joint = tracker(queries, fmaps, iters=2)
        permuted = tracker(queries[:, perm], fmaps, iters=2)
        alone = [tracker(queries[b : b + 1], fmaps[b : b + 1], iters=2) for b in range(2)]
    unpermuted = TrackOutput(
        tracks=tuple(t[:, :, perm] for t in joint.tracks),
        visibility=joint.visibility[:, :, perm],
        confidence=joint.confidence[:, :, perm],
    )
    assert_same_output(permuted, unpermuted, atol=1e-5)
    for b in range(2):
        one = TrackOutput(
            tracks=tuple(t[b : b + 1] for t in joint.tracks),
            visibility=joint.visibility[b : b + 1],
            confidence=joint.confidence[b : b + 1],
        )
        assert_same_output(alone[b], one, atol=1e-5)


def test_identical_later_frames_get_identical_tracks(tracker):
    # No time position encoding upstream: frames 1.. differ only through their inputs, and frame 0
    # only through its query-reference token, so equal feature maps give equal later-frame tracks.
    fmaps, queries = random_inputs(frames=4)
    fmaps = torch.cat([fmaps[:, :1], fmaps[:, 1:2].expand(-1, 3, -1, -1, -1)], dim=1)
    with torch.no_grad():
        out = tracker(queries, fmaps, iters=2)
    for frame in (2, 3):
        torch.testing.assert_close(out.tracks[-1][:, frame], out.tracks[-1][:, 1], atol=1e-5, rtol=0)
        torch.testing.assert_close(out.visibility[:, frame], out.visibility[:, 1], atol=1e-6, rtol=0)


def test_tracker_rejects_bad_inputs(tracker):
    fmaps, queries = random_inputs()
    for bad in (queries[..., :1], queries[:1], queries[:, :0], queries[0], queries.round().long()):
        with pytest.raises(ValueError, match="query_points"):
            tracker(bad, fmaps)
    with pytest.raises(ValueError, match="iters"):
        tracker(queries, fmaps, iters=0)
    with pytest.raises(ValueError, match="feature maps"):
        tracker(queries, fmaps[:, :, :8])


# --- full model --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_vggt() -> VGGT:
    torch.manual_seed(0)
    config = VGGTConfig(
        aggregator=VGGTAggregatorConfig.sized(img_size=56, embed_dim=64, depth=2, num_heads=4),
        dpt_layers=(0, 1, 1, 1),
        camera_trunk_depth=1,
        camera_heads=4,
        tracker=TINY_TRACKER,
    )
    return VGGT(config).eval()


def test_full_vggt_tracks_query_points(tiny_vggt):
    generator = torch.Generator().manual_seed(4)
    frame0 = torch.rand(2, 1, 3, 56, 56, generator=generator)
    later = torch.rand(2, 1, 3, 56, 56, generator=generator)
    images = torch.cat([frame0, later.expand(-1, 2, -1, -1, -1)], dim=1)  # frames 1 and 2 identical
    queries = torch.tensor([[[3.0, 4.0], [20.5, 30.0], [55.0, 0.0]], [[10.0, 10.0], [27.5, 27.5], [0.0, 55.0]]])
    with torch.no_grad():
        out = tiny_vggt(images, query_points=queries)
        plain = tiny_vggt(images)
    assert plain.tracks is None
    tracks = out.tracks
    assert len(tracks.tracks) == 4 and all(t.shape == (2, 3, 3, 2) for t in tracks.tracks)
    assert all(torch.isfinite(t).all() for t in tracks.tracks)
    assert tracks.visibility.shape == (2, 3, 3) and torch.all((tracks.visibility > 0) & (tracks.visibility < 1))
    assert torch.all((tracks.confidence > 0) & (tracks.confidence < 1))
    assert torch.equal(tracks.last[:, 0], queries)
    # The aggregator treats frames 1.. symmetrically (only frame 0 has its own camera / register
    # tokens), so identical later images give identical tracks; frame 0 is pinned, not equal.
    torch.testing.assert_close(tracks.last[:, 2], tracks.last[:, 1], atol=1e-4, rtol=0)
    torch.testing.assert_close(out.depth.prediction, plain.depth.prediction)


def test_full_vggt_rejects_malformed_query_points(tiny_vggt):
    images = torch.rand(1, 2, 3, 56, 56)
    for bad in (torch.zeros(1, 3, 3), torch.zeros(2, 3, 2), torch.zeros(3)):
        with pytest.raises(ValueError, match="query_points"):
            tiny_vggt(images, query_points=bad)


def test_track_head_default_iterations_and_feature_stride():
    tracker = TINY_TRACKER
    head = TrackHead(TrackHeadConfig(dim_in=32, intermediate_layer_idx=(0, 1, 1, 1), tracker=tracker))
    layers = tuple(torch.randn(1, 2, 5 + 4 * 3, 32) for _ in range(2))
    with torch.no_grad():
        out = head(layers, (56, 42), 5, torch.tensor([[[10.0, 20.0]]]))
    assert len(out.tracks) == 4 and out.last.shape == (1, 2, 1, 2)
    with pytest.raises(ValueError, match="stride"):
        TrackHead(TrackHeadConfig(dim_in=32, tracker=TrackPredictorConfig(latent_dim=16, stride=4)))
