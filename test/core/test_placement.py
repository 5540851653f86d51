"""Metric placement: closed-form similarity estimation and depth back-projection on analytic data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from scenegen_core.placement import (
    LEVEL_CAMERA_FROM_SCENE,
    PlacementConfig,
    PlacementMethod,
    back_project,
    compose,
    estimate_placement,
    umeyama,
)
from scenegen_core.types import CameraIntrinsics, Pose, rotation_matrix_to_wxyz


def test_quaternion_round_trip_covers_every_branch():
    matrices = list(Rotation.random(200, random_state=4).as_matrix())
    # Rotations by ~180 degrees about each axis take the non-trace branches.
    matrices += [np.diag([1.0, -1.0, -1.0]), np.diag([-1.0, 1.0, -1.0]), np.diag([-1.0, -1.0, 1.0])]
    for matrix in matrices:
        q = rotation_matrix_to_wxyz(matrix)
        assert q[0] >= 0 and abs(np.linalg.norm(q) - 1) < 1e-12
        np.testing.assert_allclose(Pose(rotation_wxyz=q).rotation_matrix, matrix, atol=1e-10)


def test_umeyama_recovers_a_known_similarity():
    rng = np.random.default_rng(0)
    truth = Pose([0.3, -0.2, 1.4], Rotation.random(random_state=1).as_quat(scalar_first=True), 0.37)
    source = rng.normal(size=(6, 3))
    estimate = umeyama(source, truth.apply(source))
    np.testing.assert_allclose(estimate.matrix, truth.matrix, atol=1e-10)


def test_compose_matches_matrix_product():
    a = Pose([1, 2, 3], Rotation.random(random_state=5).as_quat(scalar_first=True), 2.0)
    b = Pose([-1, 0, 0.5], Rotation.random(random_state=6).as_quat(scalar_first=True), 0.25)
    np.testing.assert_allclose(compose(a, b).matrix, a.matrix @ b.matrix, atol=1e-12)


def _plane_view(distance: float = 1.5, size: int = 64):
    intrinsics = CameraIntrinsics(fx=60.0, fy=60.0, cx=(size - 1) / 2, cy=(size - 1) / 2, width=size, height=size)
    depth = np.full((size, size), distance, dtype=np.float32)
    return intrinsics, depth


def test_back_project_a_fronto_parallel_plane():
    intrinsics, depth = _plane_view()
    depth[0, :] = np.nan  # invalid readings are dropped
    depth[1, :] = 0.0
    mask = np.ones(depth.shape, dtype=bool)
    points = back_project(depth, mask, intrinsics)
    assert len(points) == 62 * 64
    np.testing.assert_allclose(points[:, 2], 1.5)
    # Pixel (u, v) = (63, 63) -> x = y = (63 - 31.5) * 1.5 / 60.
    np.testing.assert_allclose(points[:, 0].max(), 31.5 * 1.5 / 60.0)


def test_three_objects_give_the_umeyama_similarity():
    intrinsics, depth = _plane_view()
    masks = np.zeros((3, 64, 64), dtype=bool)
    masks[0, 10:20, 10:20] = True
    masks[1, 40:50, 12:22] = True
    masks[2, 25:35, 45:55] = True
    observed = np.stack([np.median(back_project(depth, m, intrinsics), axis=0) for m in masks])
    truth = Pose([0.1, -0.05, 1.2], Rotation.random(random_state=7).as_quat(scalar_first=True), 0.8)
    # Generated centres that map exactly onto the observations under `truth`.
    centres = (observed - truth.translation) @ truth.rotation_matrix / truth.scale
    boxes = np.stack([centres - 0.05, centres + 0.05], axis=1)
    placement = estimate_placement(boxes, masks, depth, intrinsics)
    assert placement.method is PlacementMethod.UMEYAMA and placement.metric
    assert placement.observed.all()
    assert placement.residual_m < 1e-9
    np.testing.assert_allclose(placement.camera_from_scene.matrix, truth.matrix, atol=1e-8)


def test_single_object_uses_the_level_camera_convention_and_box_size():
    intrinsics, depth = _plane_view()
    masks = np.zeros((1, 64, 64), dtype=bool)
    masks[0, 20:44, 20:44] = True
    boxes = np.array([[[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]]])
    placement = estimate_placement(boxes, masks, depth, intrinsics)
    assert placement.method is PlacementMethod.AXIS_CONVENTION
    np.testing.assert_allclose(placement.camera_from_scene.rotation_matrix, LEVEL_CAMERA_FROM_SCENE, atol=1e-12)
    points = back_project(depth, masks[0], intrinsics)
    lo, hi = np.percentile(points, [2, 98], axis=0)
    assert placement.camera_from_scene.scale == pytest.approx(np.linalg.norm(hi - lo) / np.sqrt(3))
    np.testing.assert_allclose(placement.camera_from_scene.translation, np.median(points, axis=0), atol=1e-12)


def test_without_depth_the_scene_stays_unitless():
    masks = np.zeros((2, 8, 8), dtype=bool)
    boxes = np.zeros((2, 2, 3))
    placement = estimate_placement(boxes, masks, None, None)
    assert placement.method is PlacementMethod.NONE and not placement.metric
    np.testing.assert_allclose(placement.camera_from_scene.matrix, np.eye(4))


def test_objects_without_valid_depth_are_not_observations():
    intrinsics, depth = _plane_view()
    depth[:32] = np.nan
    masks = np.zeros((2, 64, 64), dtype=bool)
    masks[0, 5:15, 5:15] = True  # only NaN depth under it
    masks[1, 40:50, 40:50] = True
    boxes = np.array([[[-0.1] * 3, [0.1] * 3], [[0.4, 0.0, 0.0], [0.6, 0.2, 0.2]]])
    placement = estimate_placement(boxes, masks, depth, intrinsics)
    np.testing.assert_array_equal(placement.observed, [False, True])
    assert placement.method is PlacementMethod.AXIS_CONVENTION


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(min_depth_pixels=0), "min_depth_pixels"),
        (dict(depth_range_m=(2.0, 1.0)), "depth_range_m"),
        (dict(collinear_tolerance=0.0), "collinear_tolerance"),
    ],
)
def test_bad_placement_config_is_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        PlacementConfig(**fields)
