"""Scene assembly against the official code's golden outputs (scene_assembly.safetensors)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from scenegen_core.assembly import (
    TO_GLB_AXIS_ROWVEC,
    assemble_in_query_frame,
    occupancy_to_voxels,
    official_export_assembly,
    preview_points,
    quaternion_matrix,
    rotation_x,
    split_coords_by_object,
    voxels_to_mesh,
)
from scenegen_core.types import rotation_matrix_to_wxyz

pytestmark = pytest.mark.parity

VIS_ATOL = 1e-5
EXPORT_ATOL = 1e-9
N_OBJECTS = 3
RESOLUTION = 64
VARIANTS = {"demo": None, "inference": [1, 2, 0]}


@pytest.fixture(scope="module")
def golden(reference_dir):
    return load_file(str(reference_dir / "scene_assembly.safetensors"))


@pytest.fixture(scope="module")
def golden_meta(reference_dir):
    return json.loads((reference_dir / "scene_assembly.json").read_text())


@pytest.fixture(scope="module")
def mesh_vertices(golden):
    return [golden[f"input.export.mesh_vertices.{i}"] for i in range(N_OBJECTS)]


def test_preview_matches_official(golden):
    preview = preview_points(golden["input.coords"], golden["input.positions"], RESOLUTION)
    for i in range(N_OBJECTS):
        assert preview.pre_norm[i].dtype == np.float32
        np.testing.assert_allclose(preview.rotations[i], golden[f"debug.vis.rot_matrix.{i}"], atol=VIS_ATOL, rtol=0)
        np.testing.assert_allclose(preview.pre_norm[i], golden[f"output.vis.pre_norm.{i}"], atol=VIS_ATOL, rtol=0)
        np.testing.assert_allclose(preview.post_norm[i], golden[f"output.vis.post_norm.{i}"], atol=VIS_ATOL, rtol=0)
    np.testing.assert_allclose(preview.center, golden["output.vis.center"], atol=VIS_ATOL, rtol=0)
    np.testing.assert_allclose(preview.edge_length, golden["output.vis.edge_length"], atol=VIS_ATOL, rtol=0)
    # the normalised scene's largest extent is exactly the unit box
    all_points = np.concatenate(preview.post_norm)
    assert np.max(all_points.max(0) - all_points.min(0)) == pytest.approx(1.0, abs=1e-6)


def test_export_mesh_vertices_are_voxel_lower_corners(golden, mesh_vertices):
    """The fixture's export meshes are v = c/64 - 0.5, the same points the preview transforms."""
    per_object = split_coords_by_object(golden["input.coords"], N_OBJECTS)
    for coords, vertices in zip(per_object, mesh_vertices):
        np.testing.assert_array_equal(coords.astype(np.float32) / RESOLUTION - np.float32(0.5), vertices)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_export_matches_official(golden, golden_meta, mesh_vertices, variant):
    resorted = VARIANTS[variant]
    meta = golden_meta["export"][variant]
    assembly = official_export_assembly(mesh_vertices, golden["input.positions"], resorted)
    prefix = f"output.export.{variant}."

    assert assembly.reference_index == meta["reference_object"]
    assert list(assembly.node_order) == meta["node_add_order"]
    np.testing.assert_allclose(assembly.global_translations, golden[prefix + "global_pos"], atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(assembly.scales, golden[prefix + "scales"], atol=EXPORT_ATOL, rtol=0)
    # quaternion signs are arbitrary: compare the rotations as matrices
    golden_rotations = np.stack([quaternion_matrix(q) for q in golden[prefix + "global_quat_wxyz"]])
    np.testing.assert_allclose(assembly.global_rotations, golden_rotations, atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(assembly.reference_frame_move, golden[prefix + "reference_frame_move"], atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(assembly.normalize, golden[prefix + "normalize"], atol=EXPORT_ATOL, rtol=0)
    assert assembly.scale_factor == pytest.approx(meta["scale_factor"], abs=EXPORT_ATOL)
    np.testing.assert_allclose(assembly.scene_center, meta["scene_center_before_norm"], atol=EXPORT_ATOL, rtol=0)
    for i in range(N_OBJECTS):
        np.testing.assert_allclose(
            assembly.local_vertices[i], golden[f"output.export.glb_local_vertices.{i}"], atol=EXPORT_ATOL, rtol=0
        )
        np.testing.assert_allclose(
            assembly.node_transforms_pre_norm[i], golden[prefix + f"node_transform_pre_norm.{i}"], atol=EXPORT_ATOL, rtol=0
        )
        np.testing.assert_allclose(assembly.node_transforms[i], golden[prefix + f"node_transform.{i}"], atol=EXPORT_ATOL, rtol=0)
        np.testing.assert_allclose(assembly.pre_norm[i], golden[prefix + f"pre_norm.{i}"], atol=EXPORT_ATOL, rtol=0)
        np.testing.assert_allclose(assembly.post_norm[i], golden[prefix + f"post_norm.{i}"], atol=EXPORT_ATOL, rtol=0)
    all_final = np.concatenate(assembly.post_norm)
    np.testing.assert_allclose(all_final.min(0), meta["bounds_after_norm"][0], atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(all_final.max(0), meta["bounds_after_norm"][1], atol=EXPORT_ATOL, rtol=0)
    np.testing.assert_allclose(
        assembly.global_translations[list(assembly.node_order)], meta["returned_positions_reordered"], atol=EXPORT_ATOL, rtol=0
    )


def test_to_glb_axis_matrix(golden):
    np.testing.assert_array_equal(TO_GLB_AXIS_ROWVEC, golden["output.export.to_glb_axis_matrix_rowvec"])
    # row-vector M equals the column-vector rotation R_x(-90 deg)
    np.testing.assert_allclose(TO_GLB_AXIS_ROWVEC.T, rotation_x(-90.0), atol=0)


def test_demo_export_equals_preview_minus_half(golden, mesh_vertices):
    """README: with reference = query, path B before normalisation = path A before normalisation - 0.5."""
    preview = preview_points(golden["input.coords"], golden["input.positions"], RESOLUTION)
    assembly = official_export_assembly(mesh_vertices, golden["input.positions"])
    for i in range(N_OBJECTS):
        np.testing.assert_allclose(assembly.pre_norm[i], preview.pre_norm[i].astype(np.float64) - 0.5, atol=1e-6, rtol=0)


def test_query_frame_poses_reproduce_official_scene(golden, mesh_vertices):
    """Our convention: pose_i maps asset vertices to the query's asset frame = R_x(+90) * official demo pre-norm."""
    poses = assemble_in_query_frame(golden["input.positions"])
    assembly = official_export_assembly(mesh_vertices, golden["input.positions"])
    to_query = rotation_x(90.0)
    np.testing.assert_array_equal(poses[0].matrix, np.eye(4))
    for i, pose in enumerate(poses):
        expected = golden[f"output.export.demo.pre_norm.{i}"] @ to_query.T
        np.testing.assert_allclose(pose.apply(mesh_vertices[i]), expected, atol=EXPORT_ATOL, rtol=0)
        # also equal to path B's placement before the reference move, on the to_glb vertices
        placed = assembly.local_vertices[i] @ assembly.placements[i, :3, :3].T + assembly.placements[i, :3, 3]
        np.testing.assert_allclose(pose.apply(mesh_vertices[i]), placed, atol=EXPORT_ATOL, rtol=0)
        assert abs(np.linalg.norm(pose.rotation_wxyz) - 1) < 1e-12
        if i > 0:
            assert pose.scale == pytest.approx(float(golden["input.positions"][i, 7]), abs=1e-7)


def test_query_frame_ignores_row0_and_normalises_quaternions():
    positions = np.array([[5.0, 5, 5, 0, 1, 0, 0, 3], [0.1, 0.2, 0.3, 2.0, 0.0, 0.0, 0.0, 0.5]])
    poses = assemble_in_query_frame(positions)
    np.testing.assert_array_equal(poses[0].matrix, np.eye(4))
    # a (non-unit) identity quaternion stays identity after conjugation by the axis change
    np.testing.assert_allclose(poses[1].rotation_wxyz, [1, 0, 0, 0], atol=1e-12)
    # t' = R_x(90) t: (x, y, z) -> (x, -z, y)
    np.testing.assert_allclose(poses[1].translation, [0.1, -0.3, 0.2], atol=1e-12)
    assert poses[1].scale == 0.5


def test_query_frame_rejects_bad_input():
    with pytest.raises(ValueError, match="non-positive predicted scale"):
        assemble_in_query_frame(np.array([[0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0.0]]))
    clamped = assemble_in_query_frame(np.array([[0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 1, 0, 0, 0, 0.0]]), min_scale=0.05)
    assert clamped[1].scale == 0.05
    with pytest.raises(ValueError, match="zero quaternion"):
        assemble_in_query_frame(np.array([[0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1.0]]))
    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        assemble_in_query_frame(np.zeros((2, 7)))
    with pytest.raises(ValueError, match="NaN"):
        assemble_in_query_frame(np.array([[0, 0, 0, 1, 0, 0, 0, 1], [np.nan, 0, 0, 1, 0, 0, 0, 1.0]]))


def test_export_rejects_bad_permutation(mesh_vertices, golden):
    with pytest.raises(ValueError, match="permutation"):
        official_export_assembly(mesh_vertices, golden["input.positions"], [0, 0, 1])


def test_matrix_to_quaternion_round_trip():
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(200, 4))
    # include rotations near 180 deg (w ~ 0, negative trace), where naive formulas lose precision
    quats[:3] = [[0.01, 1, 0.02, 0.03], [0.01, 0.02, 1, 0.03], [0.01, 0.02, 0.03, 1]]
    for q in quats:
        unit = q / np.linalg.norm(q)
        recovered = rotation_matrix_to_wxyz(quaternion_matrix(q))
        np.testing.assert_allclose(recovered, unit if unit[0] >= 0 else -unit, atol=1e-12)


def test_voxels_to_mesh_bounds_follow_cell_convention(golden):
    """Mesh of each fixture object: bounds = union of cells [c/64 - 0.5, (c+1)/64 - 0.5]."""
    per_object = split_coords_by_object(golden["input.coords"], N_OBJECTS)
    for coords in per_object:
        grid = occupancy_to_voxels(coords.astype(np.int32), RESOLUTION)
        assert grid.sum() == len(coords)
        mesh = voxels_to_mesh(grid)
        lo, hi = mesh.bounds()
        np.testing.assert_allclose(lo, coords.min(0) / RESOLUTION - 0.5, atol=1e-6)
        np.testing.assert_allclose(hi, (coords.max(0) + 1) / RESOLUTION - 0.5, atol=1e-6)


def test_single_voxel_mesh_is_octahedron_on_cell_faces():
    grid = np.zeros((4, 4, 4), bool)
    grid[1, 2, 3] = True
    mesh = voxels_to_mesh(grid)
    # six vertices at the centres of the cell's faces, eight triangles
    assert mesh.vertices.shape == (6, 3) and mesh.faces.shape == (8, 3)
    centre = (np.array([1, 2, 3]) + 0.5) / 4 - 0.5
    offsets = np.sort(np.abs(mesh.vertices - centre).sum(1))
    np.testing.assert_allclose(offsets, np.full(6, 0.125), atol=1e-7)
    # outward winding: each face normal points away from the cell centre
    tri = mesh.vertices[mesh.faces].astype(np.float64)
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert np.all(np.einsum("ij,ij->i", normals, tri.mean(1) - centre) > 0)


def test_occupancy_from_logits():
    logits = np.full((1, 4, 4, 4), -1.0, np.float32)
    logits[0, 0, 1, 2] = 0.5
    logits[0, 3, 3, 3] = 0.0  # official rule is strictly > 0
    grid = occupancy_to_voxels(logits)
    assert grid.shape == (4, 4, 4) and grid.sum() == 1 and grid[0, 1, 2]
    assert not voxels_to_mesh(np.zeros((4, 4, 4), bool)).vertices.size
    with pytest.raises(ValueError, match="resolution"):
        occupancy_to_voxels(np.array([[0, 0, 0]]))
    with pytest.raises(ValueError, match="outside"):
        occupancy_to_voxels(np.array([[0, 0, 4]]), 4)
    with pytest.raises(ValueError, match="cubic"):
        occupancy_to_voxels(np.zeros((4, 4, 3), np.float32))
