"""Synthetic tabletop world: geometry, rendering, SceneGen ground truth and the dataset format."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import open3d as o3d
import pytest

from scenegen_core.types import Pose
from scenegen_core.world import dataset, generate
from scenegen_core.world.ground_truth import (
    canonical_occupancy,
    canonical_surface_voxels,
    compute_ground_truth,
    scenegen_placement,
)
from scenegen_core.world.render import backproject_depth, pixel_rays, project_points, render_meshes
from scenegen_core.world.scene import TABLE_ID, WorldConfig, generate_scene, render_scene_camera
from scenegen_core.world.shapes import (
    SHAPE_KINDS,
    BoxSpec,
    MugSpec,
    SphereSpec,
    is_closed,
    sample_shape,
    signed_volume,
)
from scenegen_core.world.transforms import rotation_about, transform_points

SMALL = WorldConfig(image_width=96, image_height=80, num_cameras=2, segments=32)
CROWDED = dataclasses.replace(SMALL, min_objects=6, max_objects=8)
# The idealised world keeps every object on the table with footprint gaps >= min_gap (the
# realistic default stacks and touches them: test_world_realism.py checks those scenes).
IDEAL_CROWDED = WorldConfig.idealised(image_width=96, image_height=80, num_cameras=2, segments=32, min_objects=6, max_objects=8)


def _raycaster(mesh) -> o3d.t.geometry.RaycastingScene:
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(mesh.vertices), o3d.core.Tensor(mesh.faces.astype(np.uint32)))
    return scene


def _distance_to(mesh, points: np.ndarray) -> np.ndarray:
    return _raycaster(mesh).compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def _inside(mesh, points: np.ndarray) -> np.ndarray:
    return _raycaster(mesh).compute_occupancy(o3d.core.Tensor(points.astype(np.float32)), nsamples=3).numpy() > 0.5


# --- shapes -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", SHAPE_KINDS)
def test_every_shape_is_watertight_outward_and_sized(kind):
    rng = np.random.default_rng(7)
    for _ in range(6):
        spec = sample_shape(rng, kind, (0.03, 0.30))
        mesh = spec.mesh(32)
        legacy = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)), o3d.utility.Vector3iVector(mesh.faces)
        )
        assert is_closed(mesh), spec
        assert legacy.is_watertight(), spec  # edge/vertex manifold and no self-intersection
        assert signed_volume(mesh) > 0, spec
        lo, hi = mesh.bounds()
        assert lo[2] == pytest.approx(0.0, abs=1e-7)  # origin at the bottom centre
        np.testing.assert_allclose((lo + hi)[:2] / 2, 0.0, atol=0.6 * (hi - lo).max())
        assert 0.029 <= (hi - lo).max() <= 0.301, (spec, hi - lo)


def test_sphere_volume_matches_analytic():
    radius = 0.07
    volume = signed_volume(SphereSpec(radius).mesh())
    assert volume == pytest.approx(4.0 / 3.0 * math.pi * radius**3, rel=0.01)


def test_mug_handle_keeps_its_gap_from_the_body():
    mug = MugSpec(radius=0.04, height=0.1, wall=0.004, bottom=0.006, handle_radius=0.025, handle_tube=0.006)
    mesh = mug.mesh(32)
    handle_vertices = mesh.vertices[mesh.vertices[:, 0] > mug.radius * 0.5]
    outside_body = np.hypot(handle_vertices[:, 0], handle_vertices[:, 1]) > mug.radius + 1e-6
    handle_only = handle_vertices[outside_body]
    assert np.hypot(handle_only[:, 0], handle_only[:, 1]).min() >= mug.radius + mug.handle_gap - 1e-6
    # body (open cup) volume = outer cylinder - cavity, plus a positive handle volume
    body = math.pi * (mug.radius**2 * mug.height - (mug.radius - mug.wall) ** 2 * (mug.height - mug.bottom))
    assert body < signed_volume(mesh) < body * 1.5


def test_bad_shape_dimensions_raise():
    with pytest.raises(ValueError, match="positive"):
        BoxSpec(0.1, -0.2, 0.1)
    with pytest.raises(ValueError, match="unknown shape kind"):
        sample_shape(np.random.default_rng(0), "teapot", (0.03, 0.3))


# --- scenes -------------------------------------------------------------------------------------


def test_generate_scene_is_deterministic_by_seed():
    a, b, c = generate_scene(11, SMALL), generate_scene(11, SMALL), generate_scene(12, SMALL)
    assert len(a.objects) == len(b.objects)
    for oa, ob in zip(a.objects, b.objects):
        assert oa.shape == ob.shape and oa.color == ob.color and oa.resting == ob.resting
        np.testing.assert_array_equal(oa.world_from_object.matrix, ob.world_from_object.matrix)
    for ra, rb in zip(a.renders, b.renders):
        np.testing.assert_array_equal(ra.rgb, rb.rgb)
        np.testing.assert_array_equal(ra.depth, rb.depth)
        np.testing.assert_array_equal(ra.instance_ids, rb.instance_ids)
    assert not np.array_equal(a.renders[0].rgb, c.renders[0].rgb)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_objects_rest_on_the_table_without_interpenetration(seed):
    scene = generate_scene(seed, IDEAL_CROWDED)
    meshes = scene.object_meshes_world()
    assert len(meshes) >= 2
    half = np.array([scene.table.size_x, scene.table.size_y]) / 2
    for mesh in meshes:
        lo, hi = mesh.bounds()
        assert lo[2] == pytest.approx(0.0, abs=1e-6)  # touches the table top z = 0
        assert np.all(np.abs(mesh.vertices[:, :2]) <= half)
    for i, a in enumerate(meshes):
        for j, b in enumerate(meshes):
            if i == j:
                continue
            assert not _inside(b, a.vertices).any(), (i, j)
            assert _distance_to(b, a.vertices).min() >= 0.9 * IDEAL_CROWDED.min_gap, (i, j)


def test_cameras_respect_config_and_see_every_object():
    for seed in range(3):
        scene = generate_scene(seed, SMALL)
        counts = np.bincount(scene.renders[0].instance_ids[scene.renders[0].instance_ids >= 0])
        assert len(counts) == len(scene.objects)
        assert np.all(np.diff(counts) <= 0)  # pipeline order: decreasing mask area in camera 0
        assert counts.min() >= SMALL.min_visible_fraction * 96 * 80
        for camera in scene.cameras:
            eye = camera.world_from_camera[:3, 3]
            forward = camera.world_from_camera[:3, 2]
            elevation = math.degrees(math.asin(-forward[2]))
            assert SMALL.elevation_deg_range[0] - 1e-6 <= elevation <= SMALL.elevation_deg_range[1] + 1e-6
            fov = math.degrees(2 * math.atan(camera.intrinsics.width / 2 / camera.intrinsics.fx))
            assert SMALL.fov_deg_range[0] - 1e-6 <= fov <= SMALL.fov_deg_range[1] + 1e-6
            assert eye[2] > 0


# --- rendering ----------------------------------------------------------------------------------


def test_table_depth_equals_ray_plane_distance():
    scene = generate_scene(21, SMALL)
    camera, render = scene.cameras[0], scene.renders[0]
    world_from_camera = camera.world_from_camera
    rays_world = pixel_rays(camera.intrinsics) @ world_from_camera[:3, :3].T
    # plane z = 0: eye_z + t * ray_z = 0, and t is the z-depth because the camera ray has unit z
    analytic = -world_from_camera[2, 3] / rays_world[..., 2]
    hit_xy = world_from_camera[:2, 3] + analytic[..., None] * rays_world[..., :2]
    on_top = np.all(np.abs(hit_xy) < np.array([scene.table.size_x, scene.table.size_y]) / 2 - 1e-4, axis=-1)
    table = (render.instance_ids == TABLE_ID) & on_top  # (elsewhere a ray may graze the table's side)
    assert table.sum() > 100
    np.testing.assert_allclose(render.depth[table], analytic[table], rtol=1e-5)
    v, u = np.argwhere(table)[len(np.argwhere(table)) // 2]
    assert render.depth[v, u] == pytest.approx(analytic[v, u], rel=1e-5)


def test_sphere_mask_matches_its_projection():
    config = dataclasses.replace(SMALL, shape_kinds=("sphere",), min_objects=1, max_objects=1, num_cameras=1)
    scene = generate_scene(2, config)
    camera, render = scene.cameras[0], scene.renders[0]
    obj = scene.objects[0]
    radius = obj.shape.radius
    centre_world = obj.world_from_object.apply(np.array([[0.0, 0.0, radius]]))[0]
    centre_cam = transform_points(camera.camera_from_world, centre_world[None])[0]
    mask = render.mask(0)
    # Independent check: a pixel sees the sphere iff its ray passes within `radius` of the centre.
    rays = pixel_rays(camera.intrinsics)
    unit = rays / np.linalg.norm(rays, axis=-1, keepdims=True)
    miss = np.linalg.norm(np.cross(unit, centre_cam), axis=-1)
    assert np.all(mask[miss < radius * 0.98])  # inside (tessellated sphere is slightly smaller)
    assert not np.any(mask[miss > radius * 1.001])
    uv = project_points(transform_points(camera.camera_from_world, obj.mesh_world().vertices), camera.intrinsics)
    rows, cols = np.nonzero(mask)
    np.testing.assert_allclose([cols.min(), rows.min()], uv.min(0), atol=1.0)
    np.testing.assert_allclose([cols.max(), rows.max()], uv.max(0), atol=1.0)


def test_masks_are_the_unoccluded_render_minus_occlusion():
    scene = generate_scene(4, CROWDED)
    camera, render = scene.cameras[0], scene.renders[0]
    for index, obj in enumerate(scene.objects):
        alone = render_meshes([obj.mesh_world()], [obj.color], camera.intrinsics, camera.camera_from_world)
        mask = render.mask(index)
        assert mask.any()
        assert np.all(alone.instance_ids[mask] == 0)  # visible pixels are a subset of the silhouette
        hidden = (alone.instance_ids == 0) & ~mask  # there something else is in front
        assert np.all(render.depth[hidden] <= alone.depth[hidden] + 1e-6)


def test_backprojected_object_depth_lies_on_the_mesh():
    scene = generate_scene(6, CROWDED)
    for camera, render in zip(scene.cameras, scene.renders):
        points_world = transform_points(
            camera.world_from_camera, backproject_depth(render.depth, camera.intrinsics).reshape(-1, 3)
        ).reshape(render.depth.shape + (3,))
        for index, mesh in enumerate(scene.object_meshes_world()):
            mask = render.mask(index)
            if mask.any():
                assert _distance_to(mesh, points_world[mask]).max() < 1e-3


def test_render_meshes_validates_inputs_and_uses_vertex_colours():
    mesh = BoxSpec(0.2, 0.2, 0.2).mesh()
    intrinsics = generate_scene(0, SMALL).cameras[0].intrinsics
    camera_from_world = np.eye(4)
    camera_from_world[:3, 3] = [0, 0, 0.9]  # box centred 1 m in front of the camera, base towards it
    with pytest.raises(ValueError, match="colors"):
        render_meshes([mesh], [[1, 0, 0], [0, 1, 0]], intrinsics, camera_from_world)
    with pytest.raises(ValueError, match="orthonormal"):
        render_meshes([mesh], None, intrinsics, np.diag([2.0, 2.0, 2.0, 1.0]))
    red = dataclasses.replace(mesh, vertex_colors=np.tile([1.0, 0.0, 0.0], (len(mesh.vertices), 1)))
    result = render_meshes([red], None, intrinsics, camera_from_world)
    hit = result.instance_ids == 0
    assert hit.sum() > 50
    assert np.all(result.rgb[hit][:, 1:] == 0) and np.all(result.rgb[hit][:, 0] > 80)
    # the base (z = 0.9 m after the shift) faces the camera squarely: exact depth, near full brightness
    v, u = int(round(intrinsics.cy)), int(round(intrinsics.cx))
    assert result.depth[v, u] == pytest.approx(0.9, abs=1e-6)
    assert result.rgb[v, u, 0] >= 250


# --- ground truth -------------------------------------------------------------------------------


def test_box_occupancy_fills_the_expected_voxels():
    box = BoxSpec(0.30, 0.17, 0.11)
    mesh = box.mesh()
    canonical = mesh.transformed(Pose(translation=[0, 0, -0.055 / 0.30], scale=1 / 0.30))  # centred, longest side 1
    occupancy = canonical_occupancy(canonical, 64)
    centres = (np.arange(64) + 0.5) / 64 - 0.5
    expected_axes = [np.abs(centres) <= half for half in (0.5, 0.17 / 0.6, 0.11 / 0.6)]
    expected = expected_axes[0][:, None, None] & expected_axes[1][None, :, None] & expected_axes[2][None, None, :]
    np.testing.assert_array_equal(occupancy, expected)
    assert occupancy.mean() == pytest.approx(1.0 * (36 / 64) * (24 / 64))
    surface = canonical_surface_voxels(canonical, 64)
    assert surface.any() and not surface[32, 32, 32]  # a shell, hollow in the middle
    assert np.all(occupancy[surface] | ~occupancy[surface])  # same grid indexing (sanity)
    assert surface[0].any() and surface[63].any()  # longest side spans the full x range


def test_relative_poses_reproduce_the_true_placement():
    scene = generate_scene(8, CROWDED)
    truth = compute_ground_truth(scene)
    query = truth.objects[truth.query_index]
    np.testing.assert_array_equal(query.relative_pose.matrix, np.eye(4))
    ex_down = rotation_about("x", -90)
    for obj in truth.objects:
        # 1. SceneGen's formula p = s R(q) R_x(-90) v + t, then scene -> world: the true mesh.
        placed = transform_points(truth.world_from_scene @ scenegen_placement(obj.relative_pose), obj.canonical_mesh.vertices)
        np.testing.assert_allclose(placed, obj.mesh_world.vertices, atol=1e-6)
        # 2. The closed form of the derivation, from independent quantities.
        e_i, e_q = obj.world_from_canonical.scale, query.world_from_canonical.scale
        r_i, r_q = obj.world_from_canonical.rotation_matrix, query.world_from_canonical.rotation_matrix
        c_i, c_q = obj.world_from_canonical.translation, query.world_from_canonical.translation
        assert obj.relative_pose.scale == pytest.approx(e_i / e_q, rel=1e-12)
        np.testing.assert_allclose(obj.relative_pose.rotation_matrix, ex_down @ r_q.T @ r_i @ ex_down.T, atol=1e-12)
        np.testing.assert_allclose(obj.relative_pose.translation, ex_down @ r_q.T @ (c_i - c_q) / e_q, atol=1e-12)
        # 3. Occupied canonical voxels, placed by the pose, fall inside the true world mesh.
        resolution = truth.resolution
        v = (np.argwhere(obj.occupancy) + 0.5) / resolution - 0.5
        in_world = transform_points(truth.world_from_scene @ scenegen_placement(obj.relative_pose), v)
        assert _inside(obj.mesh_world, in_world).mean() > 0.99
    # extents: canonical meshes fill the box with their longest side
    for obj in truth.objects:
        lo, hi = obj.canonical_mesh.bounds()
        assert (hi - lo).max() == pytest.approx(1.0, abs=1e-6)
        np.testing.assert_allclose((lo + hi) / 2, 0.0, atol=1e-6)


def test_scenegen_placement_matches_official_scene_assembly(reference_dir):
    from safetensors.numpy import load_file

    data = load_file(str(reference_dir / "scene_assembly.safetensors"))
    positions = data["input.positions"].astype(np.float64)
    for i in range(positions.shape[0]):
        pose = Pose(positions[i, 0:3], positions[i, 3:7], positions[i, 7])
        placed = transform_points(scenegen_placement(pose), data[f"input.export.mesh_vertices.{i}"])
        np.testing.assert_allclose(placed, data[f"output.export.demo.pre_norm.{i}"], atol=1e-6)


def test_ground_truth_in_camera_frames_and_query_choice():
    scene = generate_scene(9, SMALL)
    truth = compute_ground_truth(scene, query_index=len(scene.objects) - 1)
    assert truth.query_index == len(scene.objects) - 1
    assert truth.objects[-1].relative_pose.scale == 1.0
    for obj in truth.objects:
        for camera, mesh_camera in zip(scene.cameras, obj.meshes_camera):
            back = transform_points(camera.world_from_camera, mesh_camera.vertices)
            np.testing.assert_allclose(back, obj.mesh_world.vertices, atol=1e-6)
    with pytest.raises(ValueError, match="query_index"):
        compute_ground_truth(scene, query_index=len(scene.objects))


# --- dataset ------------------------------------------------------------------------------------


def test_dataset_round_trip_is_exact(tmp_path):
    scene = generate_scene(1_000_003, SMALL)
    truth = compute_ground_truth(scene)
    folder = dataset.write_scene(scene, tmp_path, truth)
    assert folder.name == "scene_1000003"
    assert json.loads((folder / "meta.json").read_text())["split"] == "val"
    loaded = dataset.load_scene(folder)
    assert loaded.seed == scene.seed and loaded.config == scene.config and loaded.table == scene.table
    assert loaded.query_index == scene.query_index
    for a, b in zip(scene.objects, loaded.objects):
        assert a.shape == b.shape and a.color == b.color and a.resting == b.resting
        np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
        np.testing.assert_array_equal(a.mesh.faces, b.mesh.faces)
        np.testing.assert_allclose(a.world_from_object.matrix, b.world_from_object.matrix, rtol=0, atol=1e-15)
    for a, b in zip(scene.cameras, loaded.cameras):
        assert a.intrinsics == b.intrinsics
        np.testing.assert_array_equal(a.camera_from_world, b.camera_from_world)
    for a, b in zip(scene.renders, loaded.renders):
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.instance_ids, b.instance_ids)
    for original, read in zip(scene.views(), loaded.views()):
        np.testing.assert_array_equal(original.masks, read.masks)
        np.testing.assert_array_equal(original.camera_from_reference, read.camera_from_reference)
    for index, obj in enumerate(truth.objects):
        grids = dataset.load_occupancy(folder, index)
        np.testing.assert_array_equal(grids.occupancy, obj.occupancy)
        np.testing.assert_array_equal(grids.surface, obj.surface)
    for stored, obj in zip(dataset.load_relative_poses(folder), truth.objects):
        np.testing.assert_allclose(stored.matrix, obj.relative_pose.matrix, rtol=0, atol=1e-15)
    assert dataset.list_scenes(tmp_path) == [folder]


def test_views_are_consistent_pipeline_inputs():
    scene = generate_scene(13, SMALL)
    views = scene.views()
    assert len(views) == SMALL.num_cameras
    np.testing.assert_array_equal(views[0].camera_from_reference, np.eye(4))
    cam0, cam1 = scene.cameras
    point_world = scene.objects[0].world_from_object.translation
    in0 = transform_points(cam0.camera_from_world, point_world[None])
    in1 = transform_points(cam1.camera_from_world, point_world[None])
    np.testing.assert_allclose(transform_points(views[1].camera_from_reference, in0), in1, atol=1e-9)
    for view, render in zip(views, scene.renders):
        assert view.masks.shape == (len(scene.objects),) + render.depth.shape
        np.testing.assert_array_equal(view.masks.any(0), render.instance_ids >= 0)


def test_splits_are_disjoint_and_checked():
    assert dataset.split_seeds("val", 3) == range(1_000_000, 1_000_003)
    assert dataset.split_of_seed(1_150_000) == "test"
    with pytest.raises(ValueError, match="does not fit"):
        dataset.split_seeds("val", 100_001)
    with pytest.raises(ValueError, match="unknown split"):
        dataset.split_seeds("holdout", 1)


def test_generate_cli_writes_and_resumes(tmp_path, capsys):
    args = ["--out", str(tmp_path), "--split", "test", "--count", "2", "--size", "48", "--max-objects", "2"]
    assert generate.main(args) == 0
    scenes = dataset.list_scenes(tmp_path / "test")
    assert [p.name for p in scenes] == ["scene_1100000", "scene_1100001"]
    loaded = dataset.load_scene(scenes[1])
    assert loaded.renders[0].rgb.shape == (48, 48, 3) and 1 <= len(loaded.objects) <= 2
    assert generate.main(args) == 0
    assert "2 of 2 scenes already present" in capsys.readouterr().out
