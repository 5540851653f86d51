"""Analytic checks of the evaluation metrics (SceneGen protocol, relative poses, robotics metrics)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import open3d as o3d
import pytest

from scipy.spatial.transform import Rotation

from scenegen_core.evaluation.metrics import (
    ProtocolConfig,
    RoboticsConfig,
    VoxelBlock,
    chamfer_distance,
    filterreg_sigma,
    fscore,
    iou_bbox,
    mesh_defect,
    normalize_object_per_axis,
    normalize_scene,
    object_protocol_scores,
    register_rigid,
    relative_pose_errors,
    relative_scene_scale,
    robotics_scores,
    sample_surface,
    scene_protocol_scores,
    voxelize,
)
from scenegen_core.placement import compose
from scenegen_core.types import Mesh, Pose
from scenegen_core.world.ground_truth import relative_pose


def box_mesh(lo, hi) -> Mesh:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    box = o3d.geometry.TriangleMesh.create_box(*(hi - lo))
    return Mesh(np.asarray(box.vertices) + lo, np.asarray(box.triangles))


def sphere_mesh(radius: float, center=(0.0, 0.0, 0.0)) -> Mesh:
    sphere = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=80)
    return Mesh(np.asarray(sphere.vertices) + np.asarray(center), np.asarray(sphere.triangles))


def rotation_about(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    half = math.radians(degrees) / 2
    return Pose(rotation_wxyz=[math.cos(half), *(math.sin(half) * axis)]).rotation_matrix


# ----------------------------------------------------------------------------- sampling, CD, F


def test_sample_surface_is_on_the_surface_and_uniform():
    points = sample_surface(box_mesh([0, 0, 0], [1, 2, 3]), 60000, seed=3)
    distance_to_surface = np.min(np.concatenate([points, [1, 2, 3] - points], axis=1), axis=1)
    assert np.all(np.abs(distance_to_surface) < 1e-9)
    # Faces x=0 / x=1 have area 6 of the total 22: share ≈ 6/22 each by area weighting.
    on_x0 = np.mean(np.abs(points[:, 0]) < 1e-9)
    assert on_x0 == pytest.approx(6 / 22, abs=0.01)
    assert np.array_equal(points, sample_surface(box_mesh([0, 0, 0], [1, 2, 3]), 60000, seed=3))


def test_cube_against_itself_has_zero_chamfer_and_full_fscore():
    points = sample_surface(box_mesh([0, 0, 0], [1, 1, 1]), 5000, seed=0)
    cd = chamfer_distance(points, points)
    assert cd.distance == 0.0 and cd.pred_to_gt == 0.0 and cd.gt_to_pred == 0.0
    f = fscore(points, points, 0.1)
    assert f.fscore == pytest.approx(1.0, abs=1e-7) and f.precision == 1.0 and f.recall == 1.0


def expected_shifted_cube(d: float, tau: float) -> tuple[float, float]:
    """Unit cube vs the same cube shifted by d along x (tau < d < 0.5), continuous surfaces.

    One direction, per face of A (area 6 in total), squared distance to B's surface:
    back face x=0: d (area 1) -> d²; front face x=1 lies inside B, distance min(d, m) with m the
    distance to the square's border, P(m > s) = (1-2s)², E[min(d,m)²] = ∫0^d 2s(1-2s)² ds =
    d² - 8d³/3 + 2d⁴; four side faces: the strip x < d is outside B at distance d - x, each face
    contributes ∫0^d (d-x)² dx = d³/3, the rest lies on B's faces (0).
    Mean = (2d² - 4d³/3 + 2d⁴) / 6 per direction; CD = twice that (symmetric).
    Matches within tau: back face none (d > tau), front face P(m < tau) = 1 - (1-2tau)², sides all
    but the strip x < d - tau: 4(1 - (d - tau)). F = P = R = that area / 6.
    """
    one_way = (2 * d**2 - 4 * d**3 / 3 + 2 * d**4) / 6
    matched = (1 - (1 - 2 * tau) ** 2 + 4 * (1 - (d - tau))) / 6
    return 2 * one_way, matched


@pytest.mark.parametrize("d", [0.1, 0.2, 0.3])
def test_shifted_cube_matches_the_analytic_chamfer_and_fscore(d):
    tau = 0.05
    a = sample_surface(box_mesh([0, 0, 0], [1, 1, 1]), 100_000, seed=1)
    b = sample_surface(box_mesh([d, 0, 0], [1 + d, 1, 1]), 100_000, seed=2)
    expected_cd, expected_f = expected_shifted_cube(d, tau)
    cd = chamfer_distance(a, b)
    assert cd.distance == pytest.approx(expected_cd, rel=0.02)
    assert cd.pred_to_gt == pytest.approx(expected_cd / 2, rel=0.02)
    f = fscore(a, b, tau)
    assert f.precision == pytest.approx(expected_f, abs=0.01)
    assert f.recall == pytest.approx(expected_f, abs=0.01)
    assert f.fscore == pytest.approx(expected_f, abs=0.01)


def test_fscore_threshold_is_strict_and_checked():
    a = np.zeros((1, 3))
    b = np.array([[0.1, 0.0, 0.0]])
    assert fscore(a, b, 0.1).fscore == pytest.approx(0.0)
    assert fscore(a, b, 0.1000001).fscore == pytest.approx(1.0, abs=1e-7)
    with pytest.raises(ValueError, match="threshold"):
        fscore(a, b, 0.0)
    with pytest.raises(ValueError, match=r"\[N, 3\]"):
        chamfer_distance(np.zeros((4, 2)), b)
    with pytest.raises(ValueError, match="empty"):
        chamfer_distance(np.zeros((0, 3)), b)


# ----------------------------------------------------------------------------- normalisation, IoU-B


def test_normalisations():
    points = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.5], [1.0, 0.5, 0.25]])
    scene = normalize_scene(points)
    assert np.allclose(scene.min(0), [-0.98, -0.49, -0.245]) and np.allclose(scene.max(0), [0.98, 0.49, 0.245])
    obj = normalize_object_per_axis(points)
    assert np.allclose(obj.min(0), -0.95) and np.allclose(obj.max(0), 0.95)
    assert np.allclose(obj[2], 0.0)
    flat = normalize_object_per_axis(np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]))
    assert np.allclose(flat[:, 2], -0.95)


def test_iou_bbox_of_boxes_with_known_overlap():
    a = np.asarray(box_mesh([0, 0, 0], [2, 1, 1]).vertices)
    b = np.asarray(box_mesh([1, 0, 0], [3, 1, 1]).vertices)
    assert iou_bbox(a, b) == pytest.approx(1 / 3, abs=1e-7)
    c = np.asarray(box_mesh([0.5, 0.5, 0.5], [1.5, 1.5, 1.5]).vertices)
    # Overlap [0.5,1.5]x[0.5,1]x[0.5,1] = 0.25; union 2 + 1 - 0.25.
    assert iou_bbox(a, c) == pytest.approx(0.25 / 2.75, abs=1e-7)
    assert iou_bbox(a, a + 10.0) == 0.0


# ----------------------------------------------------------------------------- registration


def test_registration_recovers_a_known_transform():
    source = sample_surface(box_mesh([0, 0, 0], [0.3, 0.2, 0.1]), 4000, seed=5)
    rotation = rotation_about([1, 2, 3], 12.0)
    translation = np.array([0.03, -0.02, 0.01])
    target = source @ rotation.T + translation
    result = register_rigid(source, target, max_iterations=100, tolerance=1e-9)
    assert result.converged
    assert np.allclose(result.rotation, rotation, atol=1e-6)
    assert np.allclose(result.translation, translation, atol=1e-6)
    assert result.rmse < 1e-6
    assert np.allclose(result.apply(source), target, atol=1e-6)


def two_object_scene() -> list[Mesh]:
    return [box_mesh([0, 0, 0.5], [0.2, 0.1, 0.6]), sphere_mesh(0.05, (0.35, 0.0, 0.6))]


def test_scene_protocol_is_invariant_to_scale_and_translation():
    gt = two_object_scene()
    pred = [m.transformed(Pose(translation=[0.02, 0.01, -0.03], scale=2.0)) for m in gt]
    scores = scene_protocol_scores(pred, gt, [(0, 0), (1, 1)], ProtocolConfig(num_points=3000))
    assert scores.fscore.fscore > 0.999
    assert scores.chamfer.distance < 1e-3  # sampling noise only (different samples on each side)
    assert np.all(scores.iou_bbox > 0.97)
    # Object level normalises each object to [-0.95, 0.95]^3, where 3000 samples are sparse.
    assert all(o.fscore.fscore > 0.98 and o.chamfer.distance < 1e-2 for o in scores.objects)


def test_scene_protocol_registration_removes_a_rigid_motion():
    gt = two_object_scene()
    motion = Pose(translation=[0.02, 0.01, -0.03], rotation_wxyz=[math.cos(0.05), 0, math.sin(0.05), 0])
    pred = [m.transformed(motion) for m in gt]
    # Metric comparison (no per-scene normalisation, whose box would change with the rotation).
    config = ProtocolConfig(num_points=3000, normalize_scene=False, fscore_threshold=0.01)
    scores = scene_protocol_scores(pred, gt, [(0, 0), (1, 1)], config)
    assert np.allclose(scores.registration.rotation, motion.rotation_matrix.T, atol=1e-2)
    assert scores.fscore.fscore > 0.99
    assert np.all(scores.iou_bbox > 0.95)
    unaligned = scene_protocol_scores(pred, gt, [(0, 0), (1, 1)], dataclasses.replace(config, align=False))
    assert unaligned.fscore.fscore < 0.5
    assert unaligned.chamfer.distance > 20 * scores.chamfer.distance


def test_scene_protocol_penalises_a_missing_object():
    gt = [box_mesh([0, 0, 0.5], [0.2, 0.1, 0.6]), box_mesh([0.5, 0, 0.5], [0.6, 0.1, 0.6])]
    config = ProtocolConfig(num_points=2000, align=False, normalize_scene=False)
    scores = scene_protocol_scores(gt[:1], gt, [(0, 0)], config)
    assert scores.fscore.recall < 0.6 and scores.fscore.precision > 0.99
    assert scores.iou_bbox.shape == (1,)
    with pytest.raises(ValueError, match="out of range"):
        scene_protocol_scores(gt[:1], gt, [(1, 0)], ProtocolConfig(num_points=100))


# ----------------------------------------------------------------------------- robotics metrics


def test_voxel_blocks_combine_on_the_shared_lattice():
    # Two 2x2x2 blocks overlapping in one 1x2x2 slab of cells.
    a = VoxelBlock(np.array([0, 0, 0]), np.ones((2, 2, 2), bool), 0.01)
    b = VoxelBlock(np.array([1, 0, 0]), np.ones((2, 2, 2), bool), 0.01)
    assert a.intersection_volume(b) == pytest.approx(4e-6)
    assert a.difference(b).count == 4 and a.difference(b).volume == pytest.approx(4e-6)
    union = VoxelBlock.union([a, b, VoxelBlock.empty(0.01)], 0.01)
    assert union.count == 12 and np.array_equal(union.first, [0, 0, 0])
    assert np.allclose(union.centroid(), [0.015, 0.01, 0.01])
    far = VoxelBlock(np.array([50, 0, 0]), np.ones((1, 1, 1), bool), 0.01)
    assert a.intersection_volume(far) == 0.0 and a.difference(far).count == 8
    assert math.isnan(VoxelBlock.empty(0.01).centroid()[0])


def test_sphere_volume_and_centroid():
    radius, center = 0.05, np.array([0.1, -0.05, 0.7])
    voxels = voxelize(sphere_mesh(radius, center), 0.0025)
    assert voxels.volume == pytest.approx(4 / 3 * math.pi * radius**3, rel=0.01)
    assert np.allclose(voxels.centroid(), center, atol=5e-4)


def test_lattice_aligned_box_volume_is_exact():
    voxels = voxelize(box_mesh([0.0, 0.0, 0.5], [0.1, 0.05, 0.6]), 0.0025)
    assert voxels.count == 40 * 20 * 40
    assert voxels.volume == pytest.approx(0.1 * 0.05 * 0.1, rel=1e-9)


def test_nested_boxes_completeness_and_false_occupancy():
    config = RoboticsConfig(voxel_size=0.0025)
    truth = box_mesh([0.0, 0.0, 0.5], [0.1, 0.1, 0.6])
    # Prediction twice as long in x and containing the truth.
    outer = box_mesh([0.0, 0.0, 0.5], [0.2, 0.1, 0.6])
    scores = robotics_scores([outer], [truth], [(0, 0)], config)
    obj = scores.objects[0]
    assert obj.completeness == pytest.approx(1.0)
    assert obj.false_occupancy_m3 == pytest.approx(0.001, rel=1e-9)
    assert obj.false_occupancy_fraction == pytest.approx(0.5)
    assert obj.volume_iou == pytest.approx(0.5)
    assert obj.centroid_error_m == pytest.approx(0.05, abs=1e-9)
    assert scores.false_occupancy_fraction == pytest.approx(0.5)
    # Prediction inside the truth: 1/8 of its volume, nothing outside.
    inner = box_mesh([0.025, 0.025, 0.525], [0.075, 0.075, 0.575])
    obj = robotics_scores([inner], [truth], [(0, 0)], config).objects[0]
    assert obj.completeness == pytest.approx(0.125)
    assert obj.volume_iou == pytest.approx(0.125)
    assert obj.false_occupancy_m3 == 0.0 and obj.false_occupancy_fraction == 0.0
    assert obj.centroid_error_m == pytest.approx(0.0, abs=1e-9)


def test_missed_object_and_unmatched_prediction():
    truths = [box_mesh([0, 0, 0.5], [0.1, 0.1, 0.6]), box_mesh([0.3, 0, 0.5], [0.4, 0.1, 0.6])]
    # Prediction 0 matches truth 0 exactly; prediction 1 is a stray box half over truth 1.
    preds = [truths[0], box_mesh([0.35, 0, 0.5], [0.45, 0.1, 0.6])]
    scores = robotics_scores(preds, truths, [(0, 0)], RoboticsConfig(voxel_size=0.0025))
    matched, missed = scores.objects
    assert matched.volume_iou == pytest.approx(1.0) and matched.false_occupancy_m3 == 0.0
    assert missed.volume_iou == 0.0 and math.isnan(missed.centroid_error_m)
    # A collision checker still sees half of the missed object through the stray prediction.
    assert missed.completeness == pytest.approx(0.5)
    assert scores.completeness == pytest.approx(0.75)
    assert scores.false_occupancy_m3 == pytest.approx(0.0005, rel=1e-9)
    assert scores.false_occupancy_fraction == pytest.approx(0.25)
    with pytest.raises(ValueError, match="at most once"):
        robotics_scores(preds, truths, [(0, 0), (1, 0)])


def test_voxel_blocks_on_different_lattices_are_rejected():
    a = VoxelBlock(np.zeros(3, np.int64), np.ones((1, 1, 1), bool), 0.01)
    b = VoxelBlock(np.zeros(3, np.int64), np.ones((1, 1, 1), bool), 0.02)
    with pytest.raises(ValueError, match="different lattices"):
        a.intersection_volume(b)
    with pytest.raises(ValueError, match="voxels"):
        voxelize(box_mesh([0, 0, 0], [10, 10, 10]), 0.001)


# ----------------------------------------------------------------------------- unusable meshes


def test_mesh_defects_are_named_and_refused_by_the_sampler_and_the_voxelizer():
    box = box_mesh([0, 0, 0.5], [0.1, 0.1, 0.6])
    assert mesh_defect(box) is None
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3), int))
    assert mesh_defect(empty) == "empty mesh"
    vertices = box.vertices.copy()
    vertices[3] = np.nan
    broken = Mesh(vertices, box.faces)
    assert mesh_defect(broken) == "non-finite vertices (1 of 8)"
    flat = Mesh(np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]]), np.array([[0, 1, 2]]))
    assert mesh_defect(flat) == "zero surface area"
    for mesh, reason in ((empty, "empty"), (broken, "non-finite"), (flat, "zero surface area")):
        with pytest.raises(ValueError, match=reason):
            sample_surface(mesh, 10)
    with pytest.raises(ValueError, match="non-finite"):
        voxelize(broken, 0.01)


# ----------------------------------------------------------------------------- upstream protocol


def test_protocol_defaults_are_the_official_run():
    """scene_evaluation_scenegen.yaml: 10240 points, 200 iterations; point_alignment's tolerance 1e-4."""
    config = ProtocolConfig()
    assert (config.num_points, config.icp_iterations, config.icp_tolerance) == (10240, 200, 1e-4)
    assert config.fscore_threshold == 0.1 and config.align and config.normalize_scene
    with pytest.raises(ValueError, match="icp_max_points"):
        ProtocolConfig(icp_max_points=0)


def test_filterreg_sigma_is_the_mean_squared_pair_distance_per_coordinate():
    rng = np.random.default_rng(4)
    source, target = rng.normal(size=(40, 3)), rng.normal(loc=2.0, size=(30, 3))
    pair_mean = np.mean(np.sum((source[:, None] - target[None]) ** 2, axis=-1))
    assert filterreg_sigma(source, target) == pytest.approx(math.sqrt(pair_mean / 3), rel=1e-12)
    # Coincident points: probreg's floor sigma² = 1e-4.
    assert filterreg_sigma(np.zeros((5, 3)), np.zeros((5, 3))) == pytest.approx(0.01)


def test_registration_stopping_rule():
    source = sample_surface(box_mesh([0, 0, 0], [0.3, 0.2, 0.1]), 2000, seed=5)
    target = source @ rotation_about([0, 0, 1], 5.0).T + [0.01, 0.0, 0.0]
    # Tolerance 0: |q - q_prev| < 0 never holds, every one of the updates is made.
    exhaustive = register_rigid(source, target, max_iterations=7, tolerance=0.0)
    assert (exhaustive.iterations, exhaustive.converged) == (7, False)
    # An infinite tolerance stops at the second objective, after two updates (upstream's loop
    # compares each objective with the previous one after updating).
    assert (register_rigid(source, target, tolerance=math.inf).iterations, True) == (2, True)
    # The default runs until the objective stops changing: an exact copy is recovered.
    result = register_rigid(source, target)
    assert result.converged and result.iterations < 200 and result.rmse < 1e-9


def test_registration_matches_open3d_icp_update_for_update():
    """Both make the same nearest-neighbour + Kabsch updates; with no early stop (tolerance 0 here,
    0 relative criteria in open3d) the transforms after 60 updates agree."""
    mesh = box_mesh([0, 0, 0], [0.3, 0.2, 0.1])
    turn = Rotation.from_rotvec(np.radians(8.0) * np.array([0.3, 0.9, 0.3]) / np.linalg.norm([0.3, 0.9, 0.3]))
    motion = Pose(translation=[0.02, -0.01, 0.015], rotation_wxyz=turn.as_quat(scalar_first=True))
    source = motion.apply(sample_surface(mesh, 3000, seed=10))
    target = sample_surface(mesh, 3000, seed=20)
    ours = register_rigid(source, target, max_iterations=60, tolerance=0.0)
    theirs = o3d.pipelines.registration.registration_icp(
        o3d.geometry.PointCloud(o3d.utility.Vector3dVector(source)),
        o3d.geometry.PointCloud(o3d.utility.Vector3dVector(target)),
        10.0,  # metres: every nearest neighbour is a correspondence, as in ours
        np.eye(4),
        o3d.pipelines.registration.TransformationEstimationPointToPoint(with_scaling=False),
        o3d.pipelines.registration.ICPConvergenceCriteria(relative_fitness=0.0, relative_rmse=0.0, max_iteration=60),
    )
    transform = np.asarray(theirs.transformation)
    assert np.allclose(ours.rotation, transform[:3, :3], atol=1e-9)
    assert np.allclose(ours.translation, transform[:3, 3], atol=1e-9)
    assert ours.rmse == pytest.approx(theirs.inlier_rmse, rel=1e-9)


def test_object_scores_use_the_unregistered_samples():
    """Upstream hands the samples drawn before the scene registration to the object metrics."""
    gt = two_object_scene()
    motion = Pose(translation=[0.02, 0.01, -0.03], rotation_wxyz=[math.cos(0.2), 0, math.sin(0.2), 0])  # 23 deg
    pred = [m.transformed(motion) for m in gt]
    config = ProtocolConfig(num_points=1500)
    scores = scene_protocol_scores(pred, gt, [(0, 0), (1, 1)], config)
    # The protocol's own samples: seed + i for prediction i, seed + 1000 + i for true object i.
    pred_samples = [sample_surface(m, 1500, config.seed + i) for i, m in enumerate(pred)]
    gt_samples = [sample_surface(m, 1500, config.seed + 1000 + i) for i, m in enumerate(gt)]
    for obj, pred_points, gt_points in zip(scores.objects, pred_samples, gt_samples):
        expected = object_protocol_scores(pred_points, gt_points, config)
        assert obj.chamfer.distance == pytest.approx(expected.chamfer.distance, rel=1e-9)
        assert obj.fscore.fscore == pytest.approx(expected.fscore.fscore, abs=1e-12)
    # Scored after the scene registration instead, the box would score differently: the per-axis
    # normalisation stretches the turned box unlike the upright one.
    registered = np.split(scores.registration.apply(normalize_scene(np.concatenate(pred_samples))), 2)
    box_registered = object_protocol_scores(registered[0], gt_samples[0], config)
    unregistered = scores.objects[0].chamfer.distance
    assert abs(box_registered.chamfer.distance - unregistered) > 0.1 * unregistered


# ----------------------------------------------------------------------------- relative poses


def test_relative_pose_errors_by_hand():
    """Query: 10 cm longest side at (0, 0, 1) m, upright. Object 1: 5 cm, 20 cm to its right.
    Relative truth (scene frame: (x, y, z) -> (x, z, -y)): t = (2, 0, 0), s = 0.5, R = I.
    Scene scale: the cubes [-0.5, 0.5]^3 and (2, 0, 0) ± 0.25 span x in [-0.5, 2.25]: S = 2.75.
    Prediction: the whole scene under another similarity (scale 2, turned 40 deg about z, moved),
    object 1 at query-frame offset (2, 0, 0.55) (scene frame (2, 0.55, 0): 0.55 off), turned
    30 deg about z, scale 0.6 (ratio 1.2)."""
    true_query = Pose(translation=[0.0, 0.0, 1.0], scale=0.1)
    true_object = Pose(translation=[0.2, 0.0, 1.0], scale=0.05)
    assert relative_scene_scale([Pose(), relative_pose(true_object, true_query)]) == pytest.approx(2.75)
    turn = Rotation.from_euler("z", 40, degrees=True).as_quat(scalar_first=True)
    pred_query = Pose(translation=[0.1, 0.0, 1.2], rotation_wxyz=turn, scale=0.2)
    offset = Pose(
        translation=[2.0, 0.0, 0.55],
        rotation_wxyz=Rotation.from_euler("z", 30, degrees=True).as_quat(scalar_first=True),
        scale=0.6,
    )
    pred_object = compose(pred_query, offset)
    query_error, object_error = relative_pose_errors([pred_query, pred_object], [true_query, true_object], 0)
    assert math.isnan(query_error.translation) and math.isnan(query_error.rotation_deg)
    assert math.isnan(query_error.scale_ratio)
    assert object_error.translation == pytest.approx(0.55 / 2.75, rel=1e-9)
    assert object_error.rotation_deg == pytest.approx(30.0, rel=1e-9)
    assert object_error.scale_ratio == pytest.approx(1.2, rel=1e-9)
    # The truth given in another common frame (here: world = camera moved and turned) changes nothing.
    tilt = Rotation.from_euler("x", 70, degrees=True).as_quat(scalar_first=True)
    frame = Pose(translation=[1.0, -2.0, 0.5], rotation_wxyz=tilt)
    true_in_frame = [compose(frame, true_query), compose(frame, true_object)]
    moved = relative_pose_errors([pred_query, pred_object], true_in_frame, 0)
    assert moved[1].translation == pytest.approx(0.2, rel=1e-9) and moved[1].rotation_deg == pytest.approx(30.0)
    # Without a predicted query pose there is no reference; without an object pose no error.
    no_query = relative_pose_errors([None, pred_object], [true_query, true_object], 0)
    assert all(math.isnan(e.translation) for e in no_query)
    assert math.isnan(relative_pose_errors([pred_query, None], [true_query, true_object], 0)[1].rotation_deg)
    with pytest.raises(ValueError, match="query_index"):
        relative_pose_errors([pred_query], [true_query], 1)


def test_relative_scene_scale_is_floored():
    assert relative_scene_scale([Pose(scale=1e-4)]) == pytest.approx(1e-2)


# ----------------------------------------------------------------------------- voxel accuracy


@pytest.mark.parametrize("offset_in_voxels, cells_per_axis", [(0.1, 8), (0.6, 7)])
def test_small_cube_volume_error_on_the_default_lattice(offset_in_voxels, cells_per_axis):
    """A 3 cm cube is 7.5 cells of 4 mm: 7 or 8 cell centres fall inside along each axis, so its
    volume comes out 7³/7.5³ - 1 = -18.7 % or 8³/7.5³ - 1 = +21.4 % (module docstring)."""
    h = RoboticsConfig().voxel_size
    lo = np.array([25.0, 10.0, 120.0]) * h + offset_in_voxels * h
    voxels = voxelize(box_mesh(lo, lo + 0.03), h)
    assert voxels.count == cells_per_axis**3
    assert voxels.volume / 0.03**3 - 1 == pytest.approx((cells_per_axis / 7.5) ** 3 - 1, abs=1e-9)
