"""GLB export round trips: our layout and the official demo/inference layout."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import load_file

from scenegen_core.assembly import assemble_in_query_frame, voxels_to_mesh
from scenegen_core.export import read_glb_meshes, write_official_glb, write_scene_glb
from scenegen_core.types import Mesh, Pose, SceneObject, SceneResult


def box_mesh(lo, hi, resolution=16, colored=True) -> Mesh:
    grid = np.zeros((resolution,) * 3, bool)
    grid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    mesh = voxels_to_mesh(grid)
    colors = (mesh.vertices + 0.5) if colored else None
    return Mesh(mesh.vertices, mesh.faces, colors)


def make_result(poses, meshes) -> SceneResult:
    objects = tuple(
        SceneObject(index=i, mesh=m, pose=p, pose_relative=p, boxes_per_view=np.full((1, 4), np.nan))
        for i, (m, p) in enumerate(zip(meshes, poses))
    )
    return SceneResult(objects=objects, frame_id="camera_optical_frame", stamp_ns=1, metric=True)


def test_scene_glb_round_trip(tmp_path):
    meshes = [box_mesh((2, 3, 4), (9, 7, 12)), box_mesh((5, 5, 5), (11, 13, 8)), box_mesh((0, 0, 0), (16, 2, 16), colored=False)]
    poses = [
        Pose([0.1, -0.2, 1.3], [0.9, 0.1, -0.3, 0.2], 0.25),
        Pose([-0.3, 0.05, 0.8], [0.2, 0.7, 0.1, -0.6], 0.1),
        Pose([0.0, 0.2, 1.0], [1, 0, 0, 0], 1.5),
    ]
    result = make_result(poses, meshes)
    path = tmp_path / "scene.glb"
    names = write_scene_glb(result, path)
    assert names == ("object_0", "object_1", "object_2")
    back = read_glb_meshes(path)
    assert [m.name for m in back] == list(names)
    for obj, read in zip(result.objects, back):
        expected = obj.mesh_in_output_frame()
        np.testing.assert_array_equal(read.local.faces, obj.mesh.faces)
        np.testing.assert_allclose(read.transform, obj.pose.matrix, atol=1e-7)
        np.testing.assert_allclose(read.in_scene_frame().vertices, expected.vertices, atol=1e-6)
        if obj.mesh.vertex_colors is None:
            assert read.local.vertex_colors is None
        else:  # stored as 8-bit: within half a quantisation step
            np.testing.assert_allclose(read.local.vertex_colors, obj.mesh.vertex_colors, atol=0.5 / 255 + 1e-7)


def test_scene_glb_skips_empty_meshes(tmp_path):
    empty = Mesh(np.zeros((0, 3)), np.zeros((0, 3)))
    result = make_result([Pose(), Pose([1.0, 0, 0])], [empty, box_mesh((1, 1, 1), (3, 3, 3))])
    assert write_scene_glb(result, tmp_path / "s.glb") == ("object_1",)
    assert [m.name for m in read_glb_meshes(tmp_path / "s.glb")] == ["object_1"]
    with pytest.raises(ValueError, match="every mesh is empty"):
        write_scene_glb(make_result([Pose()], [empty]), tmp_path / "none.glb")


@pytest.mark.parity
@pytest.mark.parametrize("variant, resorted", [("demo", None), ("inference", [1, 2, 0])])
def test_official_glb_matches_golden(tmp_path, reference_dir, variant, resorted):
    golden = load_file(str(reference_dir / "scene_assembly.safetensors"))
    n = 3
    vertices = [golden[f"input.export.mesh_vertices.{i}"] for i in range(n)]
    # the fixture's meshes chain all vertices into faces [j, j+1, j+2]
    meshes = [Mesh(v, np.stack([np.arange(len(v) - 2) + k for k in range(3)], axis=1)) for v in vertices]
    path = tmp_path / f"{variant}.glb"
    assembly = write_official_glb(meshes, golden["input.positions"], path, resorted)
    back = read_glb_meshes(path)
    assert [m.name for m in back] == [f"geometry_{k}" for k in range(n)]
    for k, i in enumerate(assembly.node_order):
        node = back[k]
        np.testing.assert_allclose(node.transform, golden[f"output.export.{variant}.node_transform.{i}"], atol=1e-9)
        # vertices are stored as float32 in the file
        np.testing.assert_allclose(node.local.vertices, golden[f"output.export.glb_local_vertices.{i}"], atol=1e-7)
        np.testing.assert_allclose(node.in_scene_frame().vertices, golden[f"output.export.{variant}.post_norm.{i}"], atol=1e-6)


@pytest.mark.parity
def test_query_frame_result_glb_equals_official_layout_up_to_fixed_transform(tmp_path, reference_dir):
    """Our GLB (poses from assemble_in_query_frame) and the official demo GLB differ only by the
    official's y-up rotation and 1.96 normalisation of the whole scene."""
    golden = load_file(str(reference_dir / "scene_assembly.safetensors"))
    vertices = [golden[f"input.export.mesh_vertices.{i}"] for i in range(3)]
    meshes = [Mesh(v, np.stack([np.arange(len(v) - 2) + k for k in range(3)], axis=1)) for v in vertices]
    poses = assemble_in_query_frame(golden["input.positions"])
    write_scene_glb(make_result(poses, meshes), tmp_path / "ours.glb")
    ours = read_glb_meshes(tmp_path / "ours.glb")
    normalize = golden["output.export.demo.normalize"]
    to_y_up = np.eye(4)
    to_y_up[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # R_x(-90 deg)
    for i, node in enumerate(ours):
        mapped = node.in_scene_frame().vertices.astype(np.float64) @ (normalize @ to_y_up)[:3, :3].T + normalize[:3, 3]
        np.testing.assert_allclose(mapped, golden[f"output.export.demo.post_norm.{i}"], atol=1e-5)
