"""Collision geometry kinds: closed, within budget, containing every observed point with the padding."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from scenegen_core.collision_geometry import (
    COLLISION_KINDS,
    CollisionGeometryConfig,
    collision_geometry,
    contains_points,
    oriented_box,
    padded_hull,
)
from scenegen_core.evaluation.collision_kinds import evaluate_kinds, main as collision_kinds_main
from scenegen_core.evaluation.evaluate import gt_meshes_in_camera
from scenegen_core.mesh_ops import is_closed_manifold, mesh_volume, signed_distance
from scenegen_core.placement import back_project
from scenegen_core.types import Mesh
from scenegen_core.world import WorldConfig, generate_scene


@pytest.fixture(scope="module")
def bowl_and_points():
    """A true bowl (camera frame, metres) and its depth points from the realistic world."""
    scene = generate_scene(1_100_003, WorldConfig())
    view = scene.views()[0]
    k = [o.label for o in scene.objects].index("bowl")
    return gt_meshes_in_camera(scene)[k], back_project(view.depth, view.masks[k], view.intrinsics)


def _min_signed_distance(parts, points) -> np.ndarray:
    return np.min([signed_distance(p, points) for p in parts], axis=0)


@pytest.mark.parametrize("kind", COLLISION_KINDS)
def test_every_kind_is_closed_within_budget_and_holds_the_points_padding_deep(kind, bowl_and_points):
    mesh, points = bowl_and_points
    # Points the generated shape misses: the depth surface pushed 1 cm outwards from the centroid.
    centre = mesh.vertices.mean(axis=0)
    stray = points[:50] + 0.01 * (points[:50] - centre) / np.linalg.norm(points[:50] - centre, axis=1, keepdims=True)
    observed = np.concatenate([points, stray])
    config = CollisionGeometryConfig(kind=kind, max_faces=300, padding_m=0.004, max_parts=4)
    geometry = collision_geometry(mesh, observed, config)
    assert geometry.kind == kind and 1 <= len(geometry.parts) <= config.max_parts
    for part in geometry.parts:
        assert is_closed_manifold(part)
        assert len(part.faces) <= config.max_faces
    # Every observed point at least the padding inside.
    assert contains_points(geometry, observed, config.padding_m)
    assert _min_signed_distance(geometry.parts, observed).max() <= -config.padding_m + 2e-4
    if kind == "box":
        assert geometry.box is not None and len(geometry.parts[0].faces) == 12
        np.testing.assert_allclose(mesh_volume(geometry.parts[0]), np.prod(geometry.box.extents), rtol=1e-5)
    else:
        assert geometry.box is None


def test_mesh_kind_without_padding_or_stray_points_is_the_simplified_mesh(bowl_and_points):
    mesh, points = bowl_and_points
    inside = points[signed_distance(mesh, points) < -1e-3]
    geometry = collision_geometry(mesh, inside, CollisionGeometryConfig(kind="mesh", max_faces=400))
    (part,) = geometry.parts
    assert is_closed_manifold(part) and len(part.faces) <= 400
    # Same solid: the simplified surface stays within a few mm of the true one.
    assert np.abs(signed_distance(mesh, part.vertices)).max() < 0.005


def test_padded_hull_offsets_every_face_of_a_cube_by_the_padding():
    corners = np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T * 0.1
    hull = padded_hull(corners, 100, 0.01)
    lo, hi = hull.bounds()
    # Planes move out by the padding plus sqrt(3) snaps (snap = 1e-3 of the diagonal); snapping
    # the corners moves them by at most half a snap either way.
    snap = 1e-3 * 0.1 * np.sqrt(3)
    extra = np.sqrt(3) * snap
    for value in np.concatenate([-lo, hi - 0.1]):
        assert 0.01 + extra - snap / 2 - 1e-9 <= value <= 0.01 + extra + snap / 2 + 1e-9
    np.testing.assert_allclose(mesh_volume(hull), (hi - lo).prod(), rtol=1e-4)


def test_padded_hull_meets_a_small_budget_by_a_subset_and_still_contains_every_point():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(3000, 3)) * [0.1, 0.05, 0.03]
    hull = padded_hull(points, 60, 0.002)
    assert is_closed_manifold(hull) and len(hull.faces) <= 60
    assert signed_distance(hull, points).max() <= -0.002 + 1e-5


def test_oriented_box_of_a_rotated_box_recovers_its_extents():
    box = trimesh.creation.box(extents=[0.3, 0.2, 0.1])
    angle = np.deg2rad(30)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    result = oriented_box(box.vertices @ rotation.T + [1.0, 2.0, 3.0], padding=0.01)
    np.testing.assert_allclose(np.sort(result.extents), [0.12, 0.22, 0.32], atol=1e-6)
    np.testing.assert_allclose(result.pose.translation, [1.0, 2.0, 3.0], atol=1e-6)


def test_bad_input_is_refused_with_a_clear_error(bowl_and_points):
    mesh, points = bowl_and_points
    with pytest.raises(ValueError, match="empty mesh"):
        collision_geometry(Mesh(np.zeros((0, 3)), np.zeros((0, 3))), points, CollisionGeometryConfig())
    with pytest.raises(ValueError, match="NaN or inf"):
        collision_geometry(mesh, np.full((3, 3), np.nan), CollisionGeometryConfig())
    with pytest.raises(ValueError, match="collision kind"):
        CollisionGeometryConfig(kind="spheres")
    with pytest.raises(ValueError, match="padding_m"):
        CollisionGeometryConfig(padding_m=-0.01)


def test_kinds_on_true_shapes_box_and_hull_cover_everything_and_the_mesh_overfills_least():
    scores = {s.kind: s for s in evaluate_kinds(range(1_100_000, 1_100_002), ("mesh", "convex_hull", "box"), CollisionGeometryConfig(max_faces=300), WorldConfig())}
    for s in scores.values():
        assert s.objects >= 5 and s.valid == 1.0
    # Hull and box contain the true solid (4 mm voxels: a few boundary cells differ); the mesh is
    # the true surface, so it overfills least.
    assert scores["convex_hull"].completeness > 0.97 and scores["box"].completeness > 0.97
    assert scores["mesh"].completeness > 0.9
    assert scores["mesh"].false_occupancy < scores["convex_hull"].false_occupancy <= scores["box"].false_occupancy + 1e-9


def test_collision_kinds_cli_refuses_bad_counts(capsys):
    with pytest.raises(SystemExit):
        collision_kinds_main(["--scenes", "0"])
    assert "--scenes must be >= 1" in capsys.readouterr().err
