"""Baselines and depth segmentation on real synthetic scenes (open3d ray casting, no mocks)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import open3d as o3d
import pytest

from scenegen_core.evaluation.baselines import (
    box_baseline,
    box_mesh_from_corners,
    hull_baseline,
    min_area_rectangle,
    object_points,
)
from scenegen_core.segmentation.depth_proposals import (
    TablePlane,
    mask_iou_matrix,
    match_masks,
    segment_depth,
)
from scenegen_core.evaluation.evaluate import gt_meshes_in_camera
from scenegen_core.evaluation.metrics import RoboticsConfig, robotics_scores
from scenegen_core.mesh_ops import is_watertight, mesh_volume
from scenegen_core.world.scene import WorldConfig, generate_scene

# Three well separated objects (gap >= 6 cm) of simple kinds in the idealised world (no room walls
# for the depth clusters), two cameras, small images.
EASY = WorldConfig.idealised(
    min_objects=3,
    max_objects=3,
    min_gap=0.06,
    cluster_half_size=0.2,
    image_width=160,
    image_height=160,
    num_cameras=2,
    shape_kinds=("box", "cylinder", "sphere", "cone"),
)
VOXELS = RoboticsConfig(voxel_size=0.004)


@pytest.fixture(scope="module")
def scene():
    return generate_scene(0, EASY)


@pytest.fixture(scope="module")
def gt_meshes(scene):
    return gt_meshes_in_camera(scene)


def true_table_plane(scene) -> TablePlane:
    """World plane z = 0 (normal +z) expressed in camera 0's optical frame."""
    camera_from_world = scene.cameras[0].camera_from_world
    normal = camera_from_world[:3, :3] @ np.array([0.0, 0.0, 1.0])
    return TablePlane(normal, -float(normal @ camera_from_world[:3, 3]))


def known_pairs(predictions):
    return [(i, p.gt_index) for i, p in enumerate(predictions)]


def test_table_plane_from_depth_matches_the_truth(scene):
    estimated, _ = object_points(scene.views()[:1], use_gt_masks=True)
    truth = true_table_plane(scene)
    angle = math.degrees(math.acos(min(1.0, float(estimated.normal @ truth.normal))))
    assert angle < 0.2
    assert abs(estimated.offset - truth.offset) < 1e-3


def test_gt_hull_covers_only_the_visible_surface(scene, gt_meshes):
    views = scene.views()[:1]
    predictions = hull_baseline(views, use_gt_masks=True)
    assert [p.gt_index for p in predictions] == [0, 1, 2]
    # Hull vertices are back-projected depth samples: they lie on the true surfaces (< 1 mm).
    raycast = o3d.t.geometry.RaycastingScene()
    for mesh in gt_meshes:
        raycast.add_triangles(o3d.core.Tensor(mesh.vertices), o3d.core.Tensor(mesh.faces.astype(np.uint32)))
    for p in predictions:
        assert is_watertight(p.mesh)
        distance = raycast.compute_distance(o3d.core.Tensor(p.mesh.vertices)).numpy()
        assert distance.max() < 1e-3
    scores = robotics_scores([p.mesh for p in predictions], gt_meshes, known_pairs(predictions), VOXELS)
    for obj, mesh in zip(scores.objects, gt_meshes):
        extent = float(np.max(mesh.bounds()[1] - mesh.bounds()[0]))
        assert 0.2 < obj.completeness < 0.9  # the back of every object is missing
        assert obj.centroid_error_m < 0.4 * extent
        assert obj.false_occupancy_fraction < 0.05  # convex objects: the hull stays inside


def test_box_baseline_is_more_complete_than_the_hull(scene, gt_meshes):
    views = scene.views()[:1]
    hulls = hull_baseline(views, use_gt_masks=True)
    boxes = box_baseline(views, use_gt_masks=True)
    plane, _ = object_points(views, use_gt_masks=True)
    for box in boxes:
        assert is_watertight(box.mesh) and mesh_volume(box.mesh) > 0
        # Extruded down to the estimated table plane: four corners on it, four above.
        heights = np.sort(plane.height(box.mesh.vertices))
        assert np.all(np.abs(heights[:4]) < 1e-5) and np.all(heights[4:] > 0.01)
    hull_scores = robotics_scores([p.mesh for p in hulls], gt_meshes, known_pairs(hulls), VOXELS)
    box_scores = robotics_scores([p.mesh for p in boxes], gt_meshes, known_pairs(boxes), VOXELS)
    assert box_scores.completeness > hull_scores.completeness + 0.1
    assert box_scores.false_occupancy_fraction > hull_scores.false_occupancy_fraction


def test_second_view_completes_the_hull(scene, gt_meshes):
    one = hull_baseline(scene.views()[:1], use_gt_masks=True)
    two = hull_baseline(scene.views(), use_gt_masks=True)
    one_scores = robotics_scores([p.mesh for p in one], gt_meshes, known_pairs(one), VOXELS)
    two_scores = robotics_scores([p.mesh for p in two], gt_meshes, known_pairs(two), VOXELS)
    assert two_scores.completeness > one_scores.completeness + 0.15
    assert two_scores.false_occupancy_fraction < 0.05  # the views were merged in the right frame


def test_depth_segmentation_recovers_the_objects_of_an_easy_scene(scene):
    views = scene.views()
    segmentation = segment_depth(views)
    assert segmentation.num_objects == len(scene.objects)
    matching = match_masks(segmentation.masks[0], views[0].masks, min_iou=0.5)
    assert len(matching.pairs) == len(scene.objects)
    assert min(matching.ious) > 0.8
    # Masks of the second view come from the same clusters.
    matching_second = match_masks(segmentation.masks[1], views[1].masks, min_iou=0.5)
    assert len(matching_second.pairs) == len(scene.objects)
    # Predicted-mask baselines give one prediction per recovered object, without gt indices.
    predictions = box_baseline(views[:1], use_gt_masks=False)
    assert len(predictions) == len(scene.objects) and all(p.gt_index is None for p in predictions)


def test_depth_segmentation_ignores_true_masks():
    scene = generate_scene(2, dataclasses.replace(EASY, num_cameras=1))
    view = scene.views()[0]
    blank = dataclasses.replace(view, masks=None)
    with_masks, without = segment_depth([view]), segment_depth([blank])
    assert all(np.array_equal(a, b) for a, b in zip(with_masks.masks[0], without.masks[0]))
    with pytest.raises(ValueError, match="needs masks"):
        hull_baseline([blank], use_gt_masks=True)
    with pytest.raises(ValueError, match="depth and intrinsics"):
        segment_depth([dataclasses.replace(view, depth=None)])


def test_min_area_rectangle_of_a_rotated_rectangle():
    rng = np.random.default_rng(0)
    angle = math.radians(30)
    axes = np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
    corners = np.array([[0, 0], [2, 0], [2, 1], [0, 1]], float) @ axes + [0.5, -0.3]
    inside = rng.uniform([0, 0], [2, 1], size=(200, 2)) @ axes + [0.5, -0.3]
    rectangle = min_area_rectangle(np.concatenate([corners, inside]))
    edges = np.roll(rectangle, -1, axis=0) - rectangle
    assert np.prod(np.sort(np.linalg.norm(edges, axis=1))[[0, 2]]) == pytest.approx(2.0, abs=1e-9)
    # Same corner set (any starting corner), counter-clockwise.
    assert all(np.min(np.linalg.norm(rectangle - c, axis=1)) < 1e-9 for c in corners)
    assert edges[0, 0] * edges[1, 1] - edges[0, 1] * edges[1, 0] > 0  # z of the cross product
    with pytest.raises(ValueError, match="no area"):
        min_area_rectangle(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]))


def test_box_mesh_from_corners_is_closed_and_outward():
    bottom = np.array([[0, 0, 0], [2, 0, 0], [2, 1, 0], [0, 1, 0]], float)
    mesh = box_mesh_from_corners(np.concatenate([bottom, bottom + [0, 0, 3]]))
    assert is_watertight(mesh)
    assert mesh_volume(mesh) == pytest.approx(6.0)
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
    assert signed == pytest.approx(6.0)  # positive: faces wound outward


def test_mask_matching_is_one_to_one_and_thresholded():
    gt = np.zeros((2, 4, 4), bool)
    gt[0, :2, :2] = True
    gt[1, 2:, 2:] = True
    pred = np.zeros((3, 4, 4), bool)
    pred[0, 2:, 2:] = True  # = gt 1
    pred[1, :2, :1] = True  # half of gt 0
    pred[2, :1, 3:] = True  # overlaps nothing
    iou = mask_iou_matrix(pred, gt)
    assert np.allclose(iou, [[0, 1], [0.5, 0], [0, 0]])
    assert match_masks(pred, gt, min_iou=0.25).pairs == ((0, 1), (1, 0))
    assert match_masks(pred, gt, min_iou=0.6).pairs == ((0, 1),)
    with pytest.raises(ValueError, match="one image size"):
        mask_iou_matrix(pred, np.zeros((1, 3, 4), bool))
