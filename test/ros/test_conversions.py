"""scenegen_core <-> ROS message conversions (pure functions; no node, no DDS)."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np
import pytest
import trimesh

pytest.importorskip("scenegen_ros.msg", reason="scenegen_ros interfaces not built (scripts/build_interfaces.sh)")
from builtin_interfaces.msg import Duration  # noqa: E402
from sensor_msgs.msg import CameraInfo, RegionOfInterest  # noqa: E402
from shape_msgs.msg import MeshTriangle, SolidPrimitive  # noqa: E402
from std_msgs.msg import ColorRGBA, Header  # noqa: E402
from visualization_msgs.msg import Marker  # noqa: E402

from scenegen_core.collision_geometry import CollisionGeometryConfig  # noqa: E402
from scenegen_core.mesh_ops import signed_distance  # noqa: E402
from scenegen_core.types import Mesh, Pose, SceneObject, SceneResult, StageTiming  # noqa: E402
from scenegen_ros.conversions import (  # noqa: E402
    MAX_MARKER_OBJECT_ID,
    camera_info_to_intrinsics,
    collision_object_id,
    collision_object_remove,
    ns_to_stamp,
    object_mesh,
    scene_msg_to_meshes,
    scene_msg_to_result,
    scene_result_to_msg,
    collision_shapes,
    scene_to_collision_objects,
    scene_to_markers,
    stamp_to_ns,
)

pytestmark = pytest.mark.ros


def unit_box_mesh(colored: bool = True) -> Mesh:
    """Axis-aligned box with extents (1, 0.5, 0.8) in the canonical frame (12 faces)."""
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.8))
    colors = np.random.default_rng(1).uniform(0, 1, (len(box.vertices), 3)) if colored else None
    return Mesh(box.vertices, box.faces, colors)


def sphere_mesh() -> Mesh:
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)  # 320 faces
    return Mesh(sphere.vertices, sphere.faces, np.full((len(sphere.vertices), 3), 0.25))


def make_result() -> SceneResult:
    # The query is listed first but was not the caller's first mask: is_query follows the list order.
    query = SceneObject(
        index=1,
        mesh=unit_box_mesh(),
        pose=Pose([0.1, -0.2, 1.5], [np.cos(0.3), 0.0, 0.0, np.sin(0.3)], 0.4),
        pose_relative=Pose(),
        boxes_per_view=np.array([[10.0, 20.0, 49.0, 79.0], [np.nan] * 4]),
        score=0.9,
        label="table",
    )
    other = SceneObject(
        index=0,
        mesh=sphere_mesh(),
        pose=Pose([-0.3, 0.05, 2.0], [0.9, 0.3, -0.2, 0.1], 0.15),
        pose_relative=Pose([0.5, -1.0, 0.25], [0.8, 0.0, 0.6, 0.0], 0.375),
        boxes_per_view=np.array([[100.0, 5.0, 100.0, 9.0], [3.0, 4.0, 30.0, 40.0]]),
        score=0.55,
        label="",
    )
    return SceneResult(
        objects=(query, other),
        frame_id="camera_color_optical_frame",
        stamp_ns=1_700_000_000_123_456_789,
        metric=True,
        timings=(StageTiming("encode", 0.25), StageTiming("sample", 1.5)),
        model_description="tiny untrained test model",
        warnings=("dropped 1 object",),
    )


def result_with_second_mesh(mesh: Mesh) -> SceneResult:
    """make_result() with the second object's mesh replaced."""
    query, other = make_result().objects
    replaced = SceneObject(1, mesh, other.pose, other.pose_relative, other.boxes_per_view)
    return SceneResult((query, replaced), "f", 0, True)


def scene_with_second_mesh(mesh: Mesh):
    """Scene of make_result()'s two objects (ids 0, 1) with the second object's mesh replaced."""
    return scene_result_to_msg(result_with_second_mesh(mesh), None, [0, 1])


def input_header() -> Header:
    return Header(stamp=ns_to_stamp(42_000_000_007), frame_id="input_frame")


# ----------------------------------------------------------------------------- camera


def camera_info(width=640, height=480) -> CameraInfo:
    info = CameraInfo(width=width, height=height)
    info.k = [500.0, 0.0, 320.5, 0.0, 510.0, 240.25, 0.0, 0.0, 1.0]
    return info


def test_camera_info_uses_k_when_p_is_unset():
    intrinsics = camera_info_to_intrinsics(camera_info())
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (500.0, 510.0, 320.5, 240.25)
    assert (intrinsics.width, intrinsics.height) == (640, 480)


def test_camera_info_prefers_rectified_projection():
    info = camera_info()
    info.p = [480.0, 0.0, 300.0, 0.0, 0.0, 490.0, 230.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    intrinsics = camera_info_to_intrinsics(info)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (480.0, 490.0, 300.0, 230.0)


def test_camera_info_roi_and_binning():
    info = camera_info()
    info.roi = RegionOfInterest(x_offset=100, y_offset=40, width=200, height=160)
    info.binning_x, info.binning_y = 2, 2
    intrinsics = camera_info_to_intrinsics(info)
    np.testing.assert_allclose(
        [intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy], [250.0, 255.0, 110.25, 100.125]
    )
    assert (intrinsics.width, intrinsics.height) == (100, 80)


def test_camera_info_errors():
    with pytest.raises(ValueError, match="uncalibrated"):
        camera_info_to_intrinsics(CameraInfo(width=640, height=480))
    with pytest.raises(ValueError, match="zero image size"):
        camera_info_to_intrinsics(camera_info(width=0))


def test_stamp_round_trip():
    assert stamp_to_ns(ns_to_stamp(1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789
    assert (ns_to_stamp(2_500_000_001).sec, ns_to_stamp(2_500_000_001).nanosec) == (2, 500_000_001)
    with pytest.raises(ValueError, match=">= 0"):
        ns_to_stamp(-1)


# ----------------------------------------------------------------------------- SceneResult -> Scene


def test_scene_msg_fields():
    result = make_result()
    msg = scene_result_to_msg(result, input_header(), [7, 3])
    assert msg.header.frame_id == "input_frame" and stamp_to_ns(msg.header.stamp) == 42_000_000_007
    assert msg.metric is True and msg.model_description == "tiny untrained test model"
    assert [(t.name, t.seconds) for t in msg.timings] == [("encode", 0.25), ("sample", 1.5)]
    assert list(msg.warnings) == ["dropped 1 object"]
    query, other = msg.objects
    assert (query.id, query.label, query.is_query, other.id, other.is_query) == (7, "table", True, 3, False)
    assert query.score == pytest.approx(0.9) and other.score == pytest.approx(0.55)
    # Scale is baked into the object-frame vertices: the box extents (1, 0.5, 0.8) x 0.4.
    assert query.scale == pytest.approx(0.4)
    np.testing.assert_allclose([query.size.x, query.size.y, query.size.z], [0.4, 0.2, 0.32], atol=1e-6)
    assert len(query.mesh.vertices) == 8 and len(query.mesh.triangles) == 12
    assert len(query.vertex_colors) == 8
    assert all(0.0 <= c.r <= 1.0 and 0.0 <= c.g <= 1.0 and 0.0 <= c.b <= 1.0 and c.a == 1.0 for c in query.vertex_colors)
    q = query.pose.orientation
    np.testing.assert_allclose([q.w, q.x, q.y, q.z], [np.cos(0.3), 0, 0, np.sin(0.3)], atol=1e-12)
    np.testing.assert_allclose([query.pose.position.x, query.pose.position.y, query.pose.position.z], [0.1, -0.2, 1.5])
    # Relative pose: SceneGen's raw output, verbatim.
    np.testing.assert_allclose([other.relative_pose.position.x, other.relative_pose.position.z], [0.5, 0.25])
    assert other.relative_scale == pytest.approx(0.375)
    assert query.relative_scale == 1.0 and query.relative_pose.orientation.w == 1.0


def test_mask_boxes_are_inclusive_rois_and_empty_when_not_visible():
    msg = scene_result_to_msg(make_result(), input_header(), [0, 1])
    visible, hidden = msg.objects[0].mask_boxes
    assert (visible.x_offset, visible.y_offset, visible.width, visible.height) == (10, 20, 40, 60)
    assert (hidden.x_offset, hidden.y_offset, hidden.width, hidden.height, hidden.do_rectify) == (0, 0, 0, 0, False)
    one_column = msg.objects[1].mask_boxes[0]
    assert (one_column.x_offset, one_column.width, one_column.height) == (100, 1, 5)


def test_header_defaults_to_the_result_frame_and_stamp():
    msg = scene_result_to_msg(make_result(), None, [0, 1])
    assert msg.header.frame_id == "camera_color_optical_frame"
    assert stamp_to_ns(msg.header.stamp) == 1_700_000_000_123_456_789


@pytest.mark.parametrize(
    "ids, message",
    [([1], "got 1 ids for 2 objects"), ([4, 4], "must be unique"), ([1, -2], "fit uint32"), ([0, 2**32], "fit uint32")],
)
def test_bad_ids_are_rejected(ids, message):
    with pytest.raises(ValueError, match=message):
        scene_result_to_msg(make_result(), input_header(), ids)


def test_bad_score_and_box_are_rejected():
    query, other = make_result().objects
    for bad in (SceneObject(0, query.mesh, query.pose, query.pose_relative, query.boxes_per_view, score=1.5),
                SceneObject(0, query.mesh, query.pose, query.pose_relative, query.boxes_per_view, score=float("nan"))):
        with pytest.raises(ValueError, match="score must be in"):
            scene_result_to_msg(SceneResult((bad,), "f", 0, True), None, [0])
    inverted = SceneObject(0, query.mesh, query.pose, query.pose_relative, np.array([[50.0, 0.0, 10.0, 5.0]]))
    with pytest.raises(ValueError, match="u_max < u_min"):
        scene_result_to_msg(SceneResult((inverted,), "f", 0, True), None, [0])
    outside = SceneObject(0, query.mesh, query.pose, query.pose_relative, np.array([[-3.0, 0.0, 10.0, 5.0]]))
    with pytest.raises(ValueError, match="outside the image"):
        scene_result_to_msg(SceneResult((outside,), "f", 0, True), None, [0])


def test_meshes_in_header_frame_match_posed_result_meshes():
    result = make_result()
    meshes = scene_msg_to_meshes(scene_result_to_msg(result, input_header(), [5, 9]))
    assert [object_id for object_id, _ in meshes] == [5, 9]
    for (_, mesh), obj in zip(meshes, result.objects):
        expected = obj.mesh_in_output_frame()
        np.testing.assert_allclose(mesh.vertices, expected.vertices, atol=1e-5)
        np.testing.assert_array_equal(mesh.faces, expected.faces)
        np.testing.assert_allclose(mesh.vertex_colors, expected.vertex_colors, atol=1e-7)


def test_scene_round_trip():
    result = make_result()
    back = scene_msg_to_result(scene_result_to_msg(result, None, [2, 8]))
    assert (back.frame_id, back.stamp_ns, back.metric) == (result.frame_id, result.stamp_ns, result.metric)
    assert back.timings == result.timings and back.warnings == result.warnings
    assert back.model_description == result.model_description
    # The message has no mask-order index: objects come back numbered in list order.
    for k, (got, want) in enumerate(zip(back.objects, result.objects, strict=True)):
        assert (got.index, got.label) == (k, want.label)
        assert got.score == pytest.approx(want.score)
        np.testing.assert_allclose(got.mesh.vertices, want.mesh.vertices, atol=1e-6)
        np.testing.assert_allclose(got.pose.matrix, want.pose.matrix, atol=1e-9)
        np.testing.assert_allclose(got.pose_relative.matrix, want.pose_relative.matrix, atol=1e-9)
        np.testing.assert_array_equal(got.boxes_per_view, want.boxes_per_view)


def test_bad_scene_meshes_raise():
    msg = scene_result_to_msg(make_result(), input_header(), [0, 1])
    obj = msg.objects[0]
    obj.mesh.triangles.append(MeshTriangle(vertex_indices=[0, 1, 8]))  # 8 vertices: index 8 is out of range
    with pytest.raises(ValueError, match="out of range"):
        object_mesh(obj)
    obj.mesh.triangles.pop()
    obj.vertex_colors.append(ColorRGBA())
    with pytest.raises(ValueError, match="9 vertex colours for 8 vertices"):
        object_mesh(obj)
    obj.scale = 0.0
    obj.vertex_colors.pop()
    with pytest.raises(ValueError, match="scale must be > 0"):
        scene_msg_to_result(msg)


# ----------------------------------------------------------------------------- markers


def test_markers_structure():
    result = make_result()
    scene = scene_result_to_msg(result, input_header(), [4, 11])
    markers = scene_to_markers(scene, lifetime=Duration(sec=3)).markers
    assert len(markers) == 1 + 2 * len(result.objects)
    assert markers[0].action == Marker.DELETEALL and markers[0].ns == "scenegen"
    assert all(m.header.frame_id == "input_frame" and m.ns == "scenegen" for m in markers)
    assert len({m.id for m in markers[1:]}) == 4
    meshes = [m for m in markers if m.type == Marker.TRIANGLE_LIST]
    texts = [m for m in markers if m.type == Marker.TEXT_VIEW_FACING]
    assert [m.id for m in meshes] == [8, 22] and [m.id for m in texts] == [9, 23]
    assert [m.text for m in texts] == ["4: table 0.90", "11: object 0.55"]
    assert all(m.lifetime.sec == 3 for m in markers[1:])
    for marker, obj in zip(meshes, scene.objects):
        mesh = object_mesh(obj)
        assert len(marker.points) == 3 * len(mesh.faces) == len(marker.colors)
        points = np.array([(p.x, p.y, p.z) for p in marker.points])
        np.testing.assert_allclose(points, mesh.vertices[mesh.faces.reshape(-1)], atol=1e-6)
        colors = np.array([(c.r, c.g, c.b, c.a) for c in marker.colors])
        assert colors.min() >= 0.0 and colors.max() <= 1.0
        assert marker.pose == obj.pose and (marker.scale.x, marker.scale.y, marker.scale.z) == (1.0, 1.0, 1.0)


def test_label_sits_above_the_object():
    scene = scene_result_to_msg(make_result(), input_header(), [0, 1])
    text = scene_to_markers(scene).markers[2]
    obj = scene.objects[0]
    pose = Pose([obj.pose.position.x, obj.pose.position.y, obj.pose.position.z],
                [obj.pose.orientation.w, obj.pose.orientation.x, obj.pose.orientation.y, obj.pose.orientation.z])
    local = pose.rotation_matrix.T @ (np.array([text.pose.position.x, text.pose.position.y, text.pose.position.z])
                                      - pose.translation)
    # 0.32 m tall box scaled into the object frame: half height + text height above the centre.
    np.testing.assert_allclose(local, [0.0, 0.0, 0.16 + text.scale.z], atol=1e-9)
    assert text.scale.z == pytest.approx(max(0.15 * 0.4, 0.02))


def test_markers_respect_face_budget_and_fall_back_to_palette_colour():
    sphere = sphere_mesh()
    scene = scene_with_second_mesh(Mesh(sphere.vertices, sphere.faces))
    mesh_marker = scene_to_markers(scene, max_faces=50).markers[3]
    assert mesh_marker.type == Marker.TRIANGLE_LIST
    assert 0 < len(mesh_marker.points) <= 150 and len(mesh_marker.points) % 3 == 0
    assert len(mesh_marker.colors) == 0
    assert 0.0 <= mesh_marker.color.r <= 1.0 and mesh_marker.color.a == 1.0


def test_empty_mesh_gets_only_a_label_and_huge_ids_are_rejected():
    scene = scene_with_second_mesh(Mesh(np.zeros((0, 3)), np.zeros((0, 3))))
    types = [m.type for m in scene_to_markers(scene).markers[1:]]
    assert types == [Marker.TRIANGLE_LIST, Marker.TEXT_VIEW_FACING, Marker.TEXT_VIEW_FACING]
    scene.objects[0].id = MAX_MARKER_OBJECT_ID + 1
    with pytest.raises(ValueError, match="too large for marker ids"):
        scene_to_markers(scene)


def test_empty_scene_only_clears():
    scene = scene_result_to_msg(SceneResult((), "cam", 5, False), None, [])
    markers = scene_to_markers(scene, ns="other").markers
    assert [(m.action, m.ns, m.header.frame_id) for m in markers] == [(Marker.DELETEALL, "other", "cam")]


# ----------------------------------------------------------------------------- MoveIt


@pytest.fixture(scope="module")
def collision_object_cls():
    try:
        return importlib.import_module("moveit_msgs.msg").CollisionObject
    except ImportError:
        pytest.skip("moveit_msgs not importable (stand-in built by scripts/build_interfaces.sh)")


def test_collision_objects(collision_object_cls):
    result = make_result()
    scene = scene_result_to_msg(result, input_header(), [6, 2])
    db = "{'type': 'CouchDB', 'root': 'http://localhost:5984'}"
    shapes = collision_shapes(result, CollisionGeometryConfig(kind="mesh", max_faces=100))
    objects = scene_to_collision_objects(scene, shapes, collision_object_cls, db=db)
    assert [c.id for c in objects] == ["scenegen_6", "scenegen_2"] and shapes.skipped == ()
    for collision, obj in zip(objects, scene.objects):
        assert collision.operation == collision_object_cls.ADD
        assert collision.header.frame_id == "input_frame" and collision.pose == obj.pose
        # object_recognition_msgs/ObjectType: key = label, db = the configured database
        assert (collision.type.key, collision.type.db) == (obj.label, db)
        assert len(collision.meshes) == 1 and len(collision.mesh_poses) == 1
        assert collision.mesh_poses[0].orientation.w == 1.0 and collision.mesh_poses[0].position.x == 0.0
        mesh = collision.meshes[0]
        assert 0 < len(mesh.triangles) <= 100
        indices = np.array([t.vertex_indices for t in mesh.triangles])
        assert indices.min() >= 0 and indices.max() < len(mesh.vertices)
    # The 12-face box is within budget: vertices are the scaled object-frame mesh, unchanged.
    box = np.array([(p.x, p.y, p.z) for p in objects[0].meshes[0].vertices])
    np.testing.assert_allclose(box, object_mesh(scene.objects[0]).vertices, atol=1e-7)
    # The 320-face sphere was decimated; its vertices stay on the scaled sphere (radius 0.5 x 0.15).
    sphere = np.array([(p.x, p.y, p.z) for p in objects[1].meshes[0].vertices])
    assert len(objects[1].meshes[0].triangles) < 320
    np.testing.assert_allclose(np.linalg.norm(sphere, axis=1), 0.075, rtol=0.1)


def test_collision_objects_skip_empty_meshes(collision_object_cls):
    result = result_with_second_mesh(Mesh(np.zeros((0, 3)), np.zeros((0, 3))))
    shapes = collision_shapes(result, CollisionGeometryConfig(max_faces=100))
    assert shapes.skipped == ("object 1: empty mesh, no collision object",)
    objects = scene_to_collision_objects(scene_result_to_msg(result, None, [0, 1]), shapes, collision_object_cls)
    assert [c.id for c in objects] == ["scenegen_0"]
    assert (objects[0].type.key, objects[0].type.db) == ("table", "")  # no database by default
    with pytest.raises(ValueError, match="2 collision shapes for 1 objects"):
        scene_to_collision_objects(scene_result_to_msg(SceneResult(result.objects[:1], "f", 0, True), None, [0]), shapes, collision_object_cls)


def _object_frame_vertices(shape_msg, pose_msg) -> np.ndarray:
    """[V, 3] vertices of a shape_msgs/Mesh placed by pose_msg (header frame)."""
    vertices = np.array([(p.x, p.y, p.z) for p in shape_msg.vertices])
    q = pose_msg.orientation
    pose = Pose(np.array([pose_msg.position.x, pose_msg.position.y, pose_msg.position.z]), np.array([q.w, q.x, q.y, q.z]))
    return pose.apply(vertices)


@pytest.mark.parametrize("kind", ["convex_hull", "box", "convex_decomposition"])
def test_collision_kinds_contain_the_observed_points_in_the_header_frame(kind, collision_object_cls):
    result = make_result()
    # Header-frame points around the sphere (object 2): a few sit 1 cm outside its surface.
    sphere = result.objects[1]
    directions = np.random.default_rng(0).normal(size=(40, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radius = 0.5 * sphere.pose.scale
    points = sphere.pose.translation + directions * np.where(np.arange(40) < 5, radius + 0.01, radius * 0.9)[:, None]
    result = dataclasses.replace(result, objects=(result.objects[0], dataclasses.replace(sphere, observed_points=points)))
    scene = scene_result_to_msg(result, input_header(), [6, 2])
    config = CollisionGeometryConfig(kind=kind, max_faces=200, padding_m=0.002, max_parts=3)
    shapes = collision_shapes(result, config)
    assert shapes.skipped == ()
    converted = scene_to_collision_objects(scene, shapes, collision_object_cls)
    collision = converted[1]
    assert collision.id == "scenegen_2" and collision.pose == scene.objects[1].pose
    object_pose = Pose(
        np.array([collision.pose.position.x, collision.pose.position.y, collision.pose.position.z]),
        np.array([collision.pose.orientation.w, collision.pose.orientation.x, collision.pose.orientation.y, collision.pose.orientation.z]),
    )
    if kind == "box":
        assert not collision.meshes and len(collision.primitives) == 1
        primitive, at = collision.primitives[0], collision.primitive_poses[0]
        assert primitive.type == SolidPrimitive.BOX
        q = at.orientation
        box_pose = Pose(np.array([at.position.x, at.position.y, at.position.z]), np.array([q.w, q.x, q.y, q.z]))
        # Points in the box frame lie within half the extents, less the padding.
        local = box_pose.inverse().apply(object_pose.inverse().apply(points))
        assert np.all(np.abs(local) <= np.array(primitive.dimensions) / 2 - 0.002 + 1e-6)
    else:
        assert not collision.primitives and 1 <= len(collision.meshes) <= 3
        parts = []
        for shape_msg, mesh_pose in zip(collision.meshes, collision.mesh_poses):
            assert len(shape_msg.triangles) <= 200 and mesh_pose.orientation.w == 1.0
            faces = np.array([t.vertex_indices for t in shape_msg.triangles])
            parts.append(Mesh(object_pose.apply(_object_frame_vertices(shape_msg, mesh_pose)), faces))
        assert np.min([signed_distance(part, points) for part in parts], axis=0).max() <= -0.002 + 2e-4


def test_collision_object_remove(collision_object_cls):
    header = input_header()
    removal = collision_object_remove(12, header, collision_object_cls)
    assert removal.id == collision_object_id(12) == "scenegen_12"
    assert removal.operation == collision_object_cls.REMOVE
    assert removal.header.frame_id == "input_frame" and not removal.meshes

