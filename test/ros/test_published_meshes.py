"""Every mesh the node publishes is closed and manifold: the Scene's object meshes (~/scene), the
RViz TRIANGLE_LIST markers (~/markers) and the MoveIt collision meshes (/collision_object).

The meshes are built as the node builds them (`SceneGenNode._publish`): the real pipeline with the
node's default settings (only the sampler steps cut) on synthetic tabletop scenes, then the pure
conversion functions with the budgets of config/scenegen.yaml, every collision-geometry kind, and
the objects' depth points for the geometry to contain. Checked with trimesh, independently of
scenegen_core.mesh_ops (the depth points' containment uses its open3d distances).
"""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import trimesh

pytest.importorskip("scenegen_ros.msg", reason="scenegen_ros interfaces not built (scripts/build_interfaces.sh)")
from visualization_msgs.msg import Marker  # noqa: E402

from scenegen_core.mesh_ops import signed_distance  # noqa: E402
from scenegen_core.pipeline import SceneGenPipeline  # noqa: E402
from scenegen_core.types import Mesh  # noqa: E402
from scenegen_core.world import WorldConfig, generate_scene  # noqa: E402
from scenegen_ros.conversions import (  # noqa: E402
    object_mesh,
    scene_result_to_msg,
    collision_shapes,
    scene_to_collision_objects,
    scene_to_markers,
)
from scenegen_ros.parameters import config_from_values, load_defaults  # noqa: E402

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SEEDS = (3, 11, 21)


@pytest.fixture(scope="module")
def node_config():
    return config_from_values(load_defaults())


@pytest.fixture(scope="module")
def results(node_config):
    """(pipeline SceneResult, its scenegen_ros/Scene message) on a few synthetic scenes."""
    pipeline = SceneGenPipeline(dataclasses.replace(node_config.pipeline_config(), steps=2))
    out = []
    for seed in SEEDS:
        world = generate_scene(seed, WorldConfig(min_objects=2, max_objects=4, image_width=96, image_height=96))
        result = pipeline.run([world.views()[0]])
        assert result.objects, f"scene {seed}: no objects"
        out.append((result, scene_result_to_msg(result, None, list(range(len(result.objects))))))
    return out


@pytest.fixture(scope="module")
def scenes(results):
    return [message for _, message in results]


def assert_closed_manifold(vertices: np.ndarray, faces: np.ndarray, what: str) -> None:
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    assert len(faces) > 0, f"{what}: empty"
    assert mesh.is_watertight, f"{what}: not watertight (an edge not shared by exactly two faces)"
    assert mesh.is_winding_consistent, f"{what}: inconsistent winding"
    assert len(np.unique(np.sort(faces, axis=1), axis=0)) == len(faces), f"{what}: duplicate faces"
    assert np.all(mesh.area_faces > 0), f"{what}: degenerate faces"


def test_scene_meshes_are_closed_manifold(scenes):
    for scene in scenes:
        for obj in scene.objects:
            mesh = object_mesh(obj)
            assert len(mesh.faces) <= 5000  # PipelineConfig.mesh_max_faces
            assert_closed_manifold(mesh.vertices, mesh.faces, f"~/scene object {obj.id}")


def test_marker_meshes_are_closed_manifold(scenes, node_config):
    for scene in scenes:
        triangle_lists = [
            m for m in scene_to_markers(scene, max_faces=node_config.marker_max_faces).markers
            if m.type == Marker.TRIANGLE_LIST
        ]
        assert len(triangle_lists) == len(scene.objects)
        for marker in triangle_lists:
            # A TRIANGLE_LIST is a triangle soup: three points per face; weld equal points.
            points = np.array([(p.x, p.y, p.z) for p in marker.points])
            unique, inverse = trimesh.grouping.unique_rows(points)
            faces = np.asarray(inverse).reshape(-1, 3)
            assert len(faces) <= node_config.marker_max_faces
            assert_closed_manifold(points[unique], faces, f"marker {marker.id}")


@pytest.mark.parametrize("kind", ["mesh", "convex_hull", "box", "convex_decomposition"])
def test_collision_geometry_is_closed_manifold_and_holds_the_depth_points(kind, results, node_config):
    try:
        collision_object_cls = importlib.import_module("moveit_msgs.msg").CollisionObject
    except ImportError:
        pytest.skip("moveit_msgs not importable (stand-in built by scripts/build_interfaces.sh)")
    config = dataclasses.replace(node_config.collision_geometry_config(), kind=kind, padding_m=0.003)
    # CoACD takes seconds per object: one scene is enough for it.
    for result, scene in results[:1] if kind == "convex_decomposition" else results:
        shapes = collision_shapes(result, config)
        objects = scene_to_collision_objects(scene, shapes, collision_object_cls)
        assert shapes.skipped == () and len(objects) == len(scene.objects)
        for collision, obj, source in zip(objects, scene.objects, result.objects):
            if kind == "box":
                assert len(collision.primitives) == 1 and not collision.meshes
                continue
            parts = []
            for mesh in collision.meshes:
                vertices = np.array([(p.x, p.y, p.z) for p in mesh.vertices])
                faces = np.array([t.vertex_indices for t in mesh.triangles]).reshape(-1, 3)
                assert len(faces) <= config.max_faces
                assert_closed_manifold(vertices, faces, f"collision object {collision.id}")
                parts.append(Mesh(vertices, faces))
            # Depth points (object frame) inside some part, the padding deep (0.2 mm float slack).
            q, t = obj.pose.orientation, obj.pose.position
            rotation = trimesh.transformations.quaternion_matrix([q.w, q.x, q.y, q.z])[:3, :3]
            local = (source.observed_points - [t.x, t.y, t.z]) @ rotation
            # (open3d distances: trimesh's need rtree, which is not installed)
            depth = -np.min([signed_distance(part, local) for part in parts], axis=0)
            assert depth.min() >= config.padding_m - 2e-4, f"collision object {collision.id}: a depth point sticks out"
