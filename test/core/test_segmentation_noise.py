"""Depth proposals on realistic rooms and noisy depth (scenegen_core/segmentation/depth_proposals.py):
the table among larger planes, the sensor noise estimated from it, thresholds that follow it,
clusters joined across thin rims, and the degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scenegen_core.segmentation.depth_proposals import (
    DepthNoise,
    DepthSamples,
    SegmentationConfig,
    TableEstimate,
    TablePlane,
    find_table,
    fit_table_plane,
    mask_iou_matrix,
    match_masks,
    segment_depth,
    view_points,
)
from scenegen_core.world.scene import WorldConfig, generate_scene
from scenegen_core.world.sensor import DepthNoiseConfig

ROOM = WorldConfig(image_width=128, image_height=128, segments=24, max_objects=4)
D435 = DepthNoiseConfig()


def true_table(scene) -> TablePlane:
    camera_from_world = scene.cameras[0].camera_from_world
    normal = camera_from_world[:3, :3] @ np.array([0.0, 0.0, 1.0])
    return TablePlane(normal, -float(normal @ camera_from_world[:3, 3]))


def plane_error(estimated: TablePlane, truth: TablePlane) -> tuple[float, float]:
    """(degrees between the normals, metres between the offsets)."""
    angle = math.degrees(math.acos(min(1.0, float(estimated.normal @ truth.normal))))
    return angle, abs(estimated.offset - truth.offset)


@pytest.mark.parametrize("seed, largest", [(1_100_000, "wall"), (1_100_007, "floor")])
@pytest.mark.parametrize("noise", [None, D435])
def test_the_table_is_found_where_a_wall_or_the_floor_is_the_largest_plane(seed, largest, noise):
    scene = generate_scene(seed, ROOM)
    truth = true_table(scene)
    exact = view_points(scene.views())[0]
    angle, offset = plane_error(fit_table_plane(exact.points[exact.valid]), truth)
    assert angle > 45 if largest == "wall" else (angle < 1 and offset > 0.5)  # the largest plane is not the table
    per_view = view_points(scene.with_depth_noise(noise).views())
    table = find_table(per_view, [None])
    angle, offset = plane_error(table.plane, truth)
    assert angle < (0.5 if noise else 0.05) and offset < (0.004 if noise else 0.0005)


def test_the_noise_is_estimated_from_the_table_and_the_thresholds_follow_it():
    scene = generate_scene(1_100_007, ROOM)
    exact = find_table(view_points(scene.views()), [None])
    assert exact.noise.at_1m < 1e-4 and exact.noise.floor < 1e-4
    per_view = view_points(scene.with_depth_noise(D435).views())
    table = find_table(per_view, [None])
    # The measured spread of the true table's heights, against the estimate at the same pixels.
    on_table = per_view[0].valid & (scene.renders[0].instance_ids == -2)
    samples = DepthSamples.of(per_view, [on_table])
    measured = 1.4826 * np.median(np.abs(true_table(scene).height(samples.points)))
    assert np.median(table.height_sigma(samples)) == pytest.approx(measured, rel=0.2)
    assert table.noise.at_1m == pytest.approx(0.003, rel=0.25)
    # Thresholds: max(floor, sigmas * sigma_z(z) * |n . ray|); sigma_z grows with z^2.
    estimate = TableEstimate(TablePlane([0.0, 0.0, -1.0], 2.0), DepthNoise(at_1m=0.003), np.zeros((0, 2)), 0, 0, 1)
    points = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 2.0]])  # on the optical axis, |n . ray| = 1
    near_far = estimate.threshold(DepthSamples(points, points[:, 2], np.zeros_like(points)), 0.006, 3.0)
    np.testing.assert_allclose(near_far, [0.009, 0.036])
    assert np.all(exact.threshold(DepthSamples(points, points[:, 2], np.zeros_like(points)), 0.006, 3.0) == 0.006)


def test_noise_adapted_thresholds_keep_noise_out_of_the_objects():
    scene = generate_scene(1_100_007, ROOM).with_depth_noise(D435)
    views = scene.views()
    ids = scene.renders[0].instance_ids

    def background_clusters(segmentation) -> int:
        return sum(np.mean(ids[mask] >= 0) < 0.5 for mask in segmentation.masks[0])

    adapted = segment_depth(views)
    fixed = segment_depth(views, SegmentationConfig(noise_sigmas=0.0, peak_sigmas=0.0))  # the exact-depth thresholds
    assert background_clusters(fixed) >= 5 and background_clusters(adapted) == 0
    matching = match_masks(adapted.masks[0], views[0].masks, min_iou=0.5)
    assert len(matching.pairs) >= 2 and min(matching.ious) > 0.8


def test_a_cup_seen_from_above_is_one_object():
    scene = generate_scene(1_100_006, WorldConfig.idealised())  # object 1: an upright mug, its inside in view
    views = scene.views()
    assert scene.objects[1].label == "mug" and scene.objects[1].resting == "upright"
    joined = mask_iou_matrix(segment_depth(views).masks[0], views[0].masks)[:, 1].max()
    split = mask_iou_matrix(segment_depth(views, SegmentationConfig(min_link_pairs=0)).masks[0], views[0].masks)[:, 1].max()
    assert joined > 0.95 and split < 0.8


def test_no_predictions_match_nothing():
    gt = np.ones((2, 4, 5), bool)
    assert mask_iou_matrix(np.zeros((0, 4, 5), bool), gt).shape == (0, 2)
    assert match_masks(np.zeros((0, 4, 5), bool), gt).pairs == ()


def test_hysteresis_gives_noisy_objects_back_their_foot():
    easy = WorldConfig.idealised(
        min_objects=3, max_objects=3, min_gap=0.06, cluster_half_size=0.2, image_width=160, image_height=160,
        shape_kinds=("box", "cylinder", "sphere", "cone"),
    )  # fmt: skip
    views = generate_scene(0, easy).with_depth_noise(D435).views()
    grown = match_masks(segment_depth(views).masks[0], views[0].masks, min_iou=0.5)
    strict = match_masks(segment_depth(views, SegmentationConfig(grow_sigmas=3.0)).masks[0], views[0].masks, min_iou=0.5)
    by_object = [dict((g, iou) for (_, g), iou in zip(m.pairs, m.ious)) for m in (grown, strict)]
    assert sorted(by_object[0]) == sorted(by_object[1]) == [0, 1, 2]
    assert all(by_object[0][g] >= by_object[1][g] - 1e-9 for g in range(3))
    assert np.mean(grown.ious) > np.mean(strict.ious) + 0.02
