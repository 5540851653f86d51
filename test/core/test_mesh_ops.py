"""Mesh utilities: repair, decimation to a face budget (closed and manifold), convex hull,
watertightness, volume."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from scenegen_core.assembly import voxels_to_mesh
from scenegen_core.mesh_ops import (
    convex_hull,
    empty_mesh,
    is_closed_manifold,
    is_watertight,
    mesh_volume,
    repair_mesh,
    simplify_to_face_budget,
)
from scenegen_core.types import Mesh

# Unit cube [0, 1]^3, outward counter-clockwise faces.
CUBE_VERTICES = np.array(
    [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [1, 1, 1], [0, 1, 1]], np.float32
)
CUBE_FACES = np.array(
    [
        [0, 2, 1], [0, 3, 2],  # z = 0
        [4, 5, 6], [4, 6, 7],  # z = 1
        [0, 1, 5], [0, 5, 4],  # y = 0
        [2, 3, 7], [2, 7, 6],  # y = 1
        [1, 2, 6], [1, 6, 5],  # x = 1
        [0, 4, 7], [0, 7, 3],  # x = 0
    ]
)


# A 3^3 occupancy on which marching cubes leaves zero-volume fins: a triangle twice, once per side,
# its edges shared by four faces (two here, found by search; noisy decoder output has hundreds).
FIN_GRID = np.array(
    [[[1, 0, 0], [1, 0, 0], [0, 1, 0]], [[1, 0, 1], [0, 1, 0], [0, 0, 1]], [[0, 0, 0], [1, 0, 0], [1, 0, 0]]], bool
)


def assert_clean(mesh: Mesh) -> None:
    """What the node promises for every published mesh, checked with trimesh (not with mesh_ops)."""
    checked = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    assert checked.is_watertight and checked.is_winding_consistent
    assert len(trimesh.grouping.unique_rows(np.sort(mesh.faces, axis=1))[0]) == len(mesh.faces), "duplicate faces"
    assert np.all(checked.area_faces > 0), "degenerate faces"
    assert is_closed_manifold(mesh)


def cube(size: float = 1.0, offset=(0.0, 0.0, 0.0)) -> Mesh:
    return Mesh(CUBE_VERTICES * size + np.asarray(offset, np.float32), CUBE_FACES)


def sphere_mesh(radius: float = 1.0) -> Mesh:
    import open3d as o3d

    sphere = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=40)
    vertices = np.asarray(sphere.vertices)
    colors = 0.5 + 0.5 * vertices / radius  # smooth, position-dependent colours
    return Mesh(vertices, np.asarray(sphere.triangles), colors)


def test_cube_volume_and_watertight():
    assert is_watertight(cube())
    assert mesh_volume(cube(2.0, (10.0, -5.0, 3.0))) == pytest.approx(8.0, abs=1e-6)


def test_inverted_winding_gives_same_volume():
    inverted = Mesh(CUBE_VERTICES, CUBE_FACES[:, ::-1])
    assert is_watertight(inverted)
    assert mesh_volume(inverted) == pytest.approx(1.0, abs=1e-9)


def test_open_or_inconsistent_meshes_are_not_watertight():
    assert not is_watertight(Mesh(CUBE_VERTICES, CUBE_FACES[:-1]))  # a missing triangle
    flipped = CUBE_FACES.copy()
    flipped[0] = flipped[0, ::-1]  # one face wound the wrong way
    assert not is_watertight(Mesh(CUBE_VERTICES, flipped))
    assert not is_watertight(empty_mesh())
    with pytest.raises(ValueError, match="watertight"):
        mesh_volume(Mesh(CUBE_VERTICES, CUBE_FACES[:-1]))


def test_sphere_volume_close_to_analytic():
    mesh = sphere_mesh(0.1)
    assert is_watertight(mesh)
    # an inscribed polyhedron is slightly smaller than the sphere
    analytic = 4.0 / 3.0 * np.pi * 0.1**3
    assert mesh_volume(mesh) == pytest.approx(analytic, rel=0.01)
    assert mesh_volume(mesh) < analytic


def test_marching_cubes_mesh_is_closed_with_expected_volume():
    grid = np.zeros((16, 16, 16), bool)
    grid[3:11, 4:9, 2:14] = True  # 8 x 5 x 12 cells
    mesh = voxels_to_mesh(grid)
    assert is_watertight(mesh)
    # the surface chamfers the box's 12 edges with right prisms of legs 1/2 (area 1/8 per cell
    # of edge length: (a+b+c)/2 in total); at each of the 8 corners the three prisms overlap in a
    # half-cell cube of which only 5/48 is really removed instead of 3 * 1/16, i.e. + 1/12 each:
    # V = a*b*c - (a+b+c)/2 + 2/3 cells (single voxel: 1/6, the octahedron)
    a, b, c = 8, 5, 12
    expected_cells = a * b * c - (a + b + c) / 2 + 2 / 3
    assert mesh_volume(mesh) == pytest.approx(expected_cells / 16**3, rel=1e-6)


def test_simplify_respects_budget_and_keeps_colours():
    mesh = sphere_mesh(0.2)
    assert len(mesh.faces) > 3000
    for budget in (2000, 300, 50, 8):
        simplified = simplify_to_face_budget(mesh, budget)
        assert 0 < len(simplified.faces) <= budget
        assert_clean(simplified)
        assert simplified.vertex_colors is not None and simplified.vertex_colors.shape == simplified.vertices.shape
        # colours stay the smooth function of position they were (interpolated at collapses)
        expected = 0.5 + 0.5 * simplified.vertices / 0.2
        assert np.abs(simplified.vertex_colors - np.clip(expected, 0, 1)).max() < 0.25
        # every vertex is used by some face
        assert len(np.unique(simplified.faces)) == len(simplified.vertices)
    # Quadric decimation keeps vertices on the surface (vertex clustering averages them inwards)
    # and the volume; a closed sphere stays one closed surface.
    coarse = simplify_to_face_budget(mesh, 500)
    np.testing.assert_allclose(np.linalg.norm(coarse.vertices, axis=1), 0.2, rtol=0.02)
    assert np.all(np.abs(coarse.vertices) <= 0.2 + 1e-6)  # inside the input's bounding box
    assert mesh_volume(coarse) == pytest.approx(mesh_volume(mesh), rel=0.05)
    assert trimesh.Trimesh(coarse.vertices, coarse.faces).body_count == 1


def test_simplify_within_budget_and_empty_are_unchanged():
    small = cube()
    assert simplify_to_face_budget(small, 12) is small
    assert simplify_to_face_budget(empty_mesh(), 10).is_empty
    assert simplify_to_face_budget(small, 3).is_empty  # no closed mesh has fewer than 4 faces
    with pytest.raises(ValueError, match="positive integer"):
        simplify_to_face_budget(small, 0)


def test_convex_hull_of_cube_corners_and_interior_points():
    rng = np.random.default_rng(0)
    points = np.concatenate([CUBE_VERTICES.astype(np.float64), rng.uniform(0.1, 0.9, size=(200, 3))])
    hull = convex_hull(points)
    assert is_watertight(hull)
    assert mesh_volume(hull) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(hull.bounds(), [[0, 0, 0], [1, 1, 1]], atol=1e-7)
    # outward orientation: signed volume positive
    tri = hull.vertices[hull.faces].astype(np.float64) - 0.5
    assert np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() > 0


def test_convex_hull_rejects_degenerate_input():
    with pytest.raises(ValueError, match="at least 4"):
        convex_hull(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="coplanar"):
        convex_hull(np.c_[np.random.default_rng(0).uniform(size=(20, 2)), np.zeros(20)])
    with pytest.raises(ValueError, match="NaN"):
        convex_hull(np.full((5, 3), np.nan))


def test_fragmented_mesh_is_simplified_within_budget_and_not_emptied():
    """Noisy occupancy (an untrained decoder) gives a sponge of many components and handles, with
    marching-cubes fins: quadric decimation alone cannot reach the budget; the result must still
    be closed and manifold, within budget, and keep the shape's extent."""
    occupancy = np.random.default_rng(0).random((24, 24, 24)) > 0.5
    mesh = voxels_to_mesh(occupancy)
    assert len(mesh.faces) > 20000
    assert not is_closed_manifold(mesh)  # the fins
    for budget in (5000, 300):
        simplified = simplify_to_face_budget(mesh, budget)
        assert 0 < len(simplified.faces) <= budget
        assert_clean(simplified)
        np.testing.assert_allclose(simplified.bounds(), mesh.bounds(), atol=0.15)
        # never outside the input's box (assets must stay in [-0.5, 0.5]^3)
        lo, hi = mesh.bounds()
        assert np.all(simplified.vertices >= lo - 1e-6) and np.all(simplified.vertices <= hi + 1e-6)


def test_repair_removes_marching_cubes_fins_without_moving_vertices():
    mesh = voxels_to_mesh(FIN_GRID)
    duplicates = len(mesh.faces) - len(np.unique(np.sort(mesh.faces, axis=1), axis=0))
    assert duplicates == 2 and not is_watertight(mesh)
    repaired = repair_mesh(mesh)
    assert_clean(repaired)
    assert len(repaired.faces) == len(mesh.faces) - 2 * duplicates  # both sides of each fin go
    # Only removals: every vertex is an original vertex.
    assert {tuple(v) for v in repaired.vertices.tolist()} <= {tuple(v) for v in mesh.vertices.tolist()}
    # Within budget but not clean: simplify_to_face_budget repairs it rather than passing it on.
    assert_clean(simplify_to_face_budget(mesh, 10_000))


def test_repair_merges_vertices_drops_duplicates_and_degenerates_and_fixes_winding():
    # The cube with vertex 6 split in two copies, face 2 given twice, a face with a repeated
    # vertex, and face 5 wound the wrong way.
    vertices = np.concatenate([CUBE_VERTICES, CUBE_VERTICES[6:7]])
    faces = CUBE_FACES.copy()
    faces[faces == 6] = np.where(np.arange(12) < 6, 6, 8)[np.nonzero(faces == 6)[0]]
    faces[5] = faces[5, ::-1]
    faces = np.concatenate([faces, faces[2:3], [[0, 0, 1]]])
    broken = Mesh(vertices, faces, np.tile([0.1, 0.5, 0.9], (9, 1)))
    assert not is_closed_manifold(broken)
    repaired = repair_mesh(broken)
    assert_clean(repaired)
    assert (len(repaired.vertices), len(repaired.faces)) == (8, 12)
    assert mesh_volume(repaired) == pytest.approx(1.0)
    np.testing.assert_allclose(repaired.vertex_colors, np.tile([0.1, 0.5, 0.9], (8, 1)), atol=1e-7)


def test_open_and_flat_meshes_fall_back_to_the_convex_hull_or_nothing():
    # An open box (a face missing) cannot be closed by repair: its convex hull is the box.
    open_box = Mesh(CUBE_VERTICES, CUBE_FACES[:-1], np.tile([0.2, 0.4, 0.6], (8, 1)))
    closed = simplify_to_face_budget(open_box, 100)
    assert_clean(closed)
    assert mesh_volume(closed) == pytest.approx(1.0)
    np.testing.assert_allclose(closed.vertex_colors, 0.2 + 0.2 * np.arange(3)[None].repeat(len(closed.vertices), 0))
    # A flat square has no closed counterpart: nothing is published rather than a broken mesh.
    square = Mesh(CUBE_VERTICES[:4], CUBE_FACES[:2])
    assert simplify_to_face_budget(square, 100).is_empty


def test_budget_below_what_the_topology_allows_still_gives_a_closed_mesh():
    """A solid torus needs more faces than a few to stay a torus (Euler characteristic): a tiny
    budget gives a closed genus-0 stand-in within budget (resampled solid or convex hull)."""
    axis = (np.arange(32) + 0.5) / 32 - 0.5
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    torus = voxels_to_mesh((np.sqrt(x**2 + y**2) - 0.28) ** 2 + z**2 < 0.12**2)
    assert trimesh.Trimesh(torus.vertices, torus.faces).euler_number == 0
    moderate = simplify_to_face_budget(torus, 300)
    assert_clean(moderate)
    assert len(moderate.faces) <= 300 and trimesh.Trimesh(moderate.vertices, moderate.faces).euler_number == 0
    for budget in (12, 4):
        tiny = simplify_to_face_budget(torus, budget)
        assert 4 <= len(tiny.faces) <= budget
        assert_clean(tiny)
        np.testing.assert_allclose(tiny.bounds(), torus.bounds(), atol=0.25)
