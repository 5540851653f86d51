"""Pure conversions between scenegen_core types and ROS messages (no node, no rclpy).

Frames: a Scene's header frame is the frame of every object pose (the first view's camera optical
frame). Each SceneObject's mesh is in its own object frame with the similarity scale already
multiplied into the vertices, so ``p_header = R(pose.orientation) @ v + pose.position`` (see
msg/SceneObject.msg).

MoveIt's CollisionObject class is passed in by the caller, so this module imports without
moveit_msgs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from geometry_msgs.msg import Point, Pose as PoseMsg, Quaternion, Vector3
from sensor_msgs.msg import CameraInfo, RegionOfInterest
from shape_msgs.msg import Mesh as ShapeMesh, MeshTriangle, SolidPrimitive
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from scenegen_core.collision_geometry import CollisionGeometry, CollisionGeometryConfig, collision_geometry
from scenegen_core.mesh_ops import simplify_to_face_budget
from scenegen_core.types import CameraIntrinsics, Mesh, Pose, SceneObject, SceneResult, StageTiming
from scenegen_ros.msg import Scene, SceneObject as SceneObjectMsg, StageTiming as StageTimingMsg

_INT32_MAX = 2**31 - 1
# Marker ids: object id k owns 2k (mesh) and 2k + 1 (label), so ids above this overflow int32.
MAX_MARKER_OBJECT_ID = (_INT32_MAX - 1) // 2
# Label text height as a fraction of the object's largest extent, and its lower bound (header units).
_LABEL_HEIGHT_FRACTION = 0.15
_MIN_LABEL_HEIGHT = 0.02
# Colour per object id (RViz markers without vertex colours, overlay pictures).
_PALETTE = np.array(
    [
        [0.90, 0.30, 0.25], [0.25, 0.60, 0.90], [0.30, 0.80, 0.40], [0.95, 0.75, 0.20],
        [0.65, 0.40, 0.85], [0.20, 0.80, 0.80], [0.95, 0.50, 0.70], [0.60, 0.60, 0.60],
    ]
)


# ----------------------------------------------------------------------------- camera


def camera_info_to_intrinsics(msg: CameraInfo) -> CameraIntrinsics:
    """Pinhole intrinsics of the (rectified) image that `msg` describes.

    Uses the projection matrix P (the intrinsics of the rectified image, REP 104) when it is set,
    else K. Binning divides focal lengths, principal point and size; a non-empty ROI shifts the
    principal point and gives the size. Raises ValueError for an uncalibrated CameraInfo (K and P
    all zero) or a zero image size.
    """
    p = np.asarray(msg.p, dtype=np.float64).reshape(3, 4)
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    if p[0, 0] > 0 and p[1, 1] > 0:
        fx, fy, cx, cy = p[0, 0], p[1, 1], p[0, 2], p[1, 2]
    elif k[0, 0] > 0 and k[1, 1] > 0:
        fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    else:
        raise ValueError("CameraInfo is uncalibrated: K and P have no positive focal length")
    width, height = int(msg.width), int(msg.height)
    roi = msg.roi
    if roi.width > 0 and roi.height > 0:
        cx, cy = cx - roi.x_offset, cy - roi.y_offset
        width, height = int(roi.width), int(roi.height)
    binning_x, binning_y = max(int(msg.binning_x), 1), max(int(msg.binning_y), 1)
    if width <= 0 or height <= 0:
        raise ValueError(f"CameraInfo has zero image size ({width}x{height})")
    return CameraIntrinsics(
        fx=float(fx / binning_x),
        fy=float(fy / binning_y),
        cx=float(cx / binning_x),
        cy=float(cy / binning_y),
        width=width // binning_x,
        height=height // binning_y,
    )


# ----------------------------------------------------------------------------- small helpers


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    if stamp_ns < 0:
        raise ValueError(f"stamp must be >= 0 ns, got {stamp_ns}")
    sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def _pose_to_msg(translation: np.ndarray, rotation_wxyz: np.ndarray) -> PoseMsg:
    w, x, y, z = (float(v) for v in rotation_wxyz)
    tx, ty, tz = (float(v) for v in translation)
    return PoseMsg(position=Point(x=tx, y=ty, z=tz), orientation=Quaternion(x=x, y=y, z=z, w=w))


def _pose_from_msg(pose: PoseMsg, scale: float = 1.0) -> Pose:
    """geometry_msgs/Pose (+ scale) -> Pose; raises ValueError for a zero quaternion."""
    q = pose.orientation
    return Pose(
        translation=np.array([pose.position.x, pose.position.y, pose.position.z]),
        rotation_wxyz=np.array([q.w, q.x, q.y, q.z]),
        scale=scale,
    )


def _mesh_to_shape_msg(mesh: Mesh) -> ShapeMesh:
    return ShapeMesh(
        vertices=[Point(x=x, y=y, z=z) for x, y, z in mesh.vertices.astype(np.float64).tolist()],
        triangles=[MeshTriangle(vertex_indices=face) for face in mesh.faces.tolist()],
    )


def _colors_to_msg(colors: np.ndarray | None) -> list[ColorRGBA]:
    if colors is None:
        return []
    return [ColorRGBA(r=r, g=g, b=b, a=1.0) for r, g, b in colors.astype(np.float64).tolist()]


def _box_to_roi(box: np.ndarray) -> RegionOfInterest:
    """(u_min, v_min, u_max, v_max) inclusive pixel indices -> ROI; NaN row -> all-zero ROI."""
    if not np.all(np.isfinite(box)):
        return RegionOfInterest(do_rectify=False)
    u_min, v_min, u_max, v_max = (int(np.floor(value)) for value in box)
    if u_min < 0 or v_min < 0:
        raise ValueError(f"mask box {box.tolist()} starts outside the image (negative pixel index)")
    if u_max < u_min or v_max < v_min:
        raise ValueError(f"mask box {box.tolist()} has u_max < u_min or v_max < v_min")
    return RegionOfInterest(
        x_offset=u_min, y_offset=v_min, width=u_max - u_min + 1, height=v_max - v_min + 1, do_rectify=False
    )


# ----------------------------------------------------------------------------- SceneResult -> Scene


def _object_frame_mesh(obj: SceneObject) -> Mesh:
    """The object's mesh in its ROS object frame: geometry_msgs/Pose has no scale, so it is baked
    into the vertices (msg/SceneObject.msg)."""
    return Mesh(obj.mesh.vertices * np.float32(obj.pose.scale), obj.mesh.faces, obj.mesh.vertex_colors)


def _object_to_msg(obj: SceneObject, object_id: int, is_query: bool) -> SceneObjectMsg:
    scaled = _object_frame_mesh(obj)
    lo, hi = scaled.bounds()
    size = hi - lo
    boxes = np.asarray(obj.boxes_per_view, dtype=np.float64).reshape(-1, 4)
    if not 0.0 <= obj.score <= 1.0:
        raise ValueError(f"object {object_id}: score must be in [0, 1], got {obj.score}")
    return SceneObjectMsg(
        id=int(object_id),
        label=obj.label,
        score=float(obj.score),
        is_query=is_query,
        pose=_pose_to_msg(obj.pose.translation, obj.pose.rotation_wxyz),
        size=Vector3(x=float(size[0]), y=float(size[1]), z=float(size[2])),
        scale=obj.pose.scale,
        mesh=_mesh_to_shape_msg(scaled),
        vertex_colors=_colors_to_msg(scaled.vertex_colors),
        mask_boxes=[_box_to_roi(box) for box in boxes],
        relative_pose=_pose_to_msg(obj.pose_relative.translation, obj.pose_relative.rotation_wxyz),
        relative_scale=obj.pose_relative.scale,
    )


def scene_result_to_msg(result: SceneResult, header: Header | None, ids: list[int]) -> Scene:
    """SceneResult -> scenegen_ros/Scene.

    header: the input images' header to pass through (stamp + frame of every pose); None builds
    one from result.frame_id / result.stamp_ns. ids: one stable object id per result object
    (e.g. from the tracker), uint32, unique. Raises ValueError on a count mismatch, duplicate or
    out-of-range id, a score outside [0, 1] or an inverted mask box.
    """
    ids = [int(i) for i in ids]
    if len(ids) != len(result.objects):
        raise ValueError(f"got {len(ids)} ids for {len(result.objects)} objects")
    if len(set(ids)) != len(ids):
        raise ValueError(f"object ids must be unique, got {ids}")
    if any(i < 0 or i > 2**32 - 1 for i in ids):
        raise ValueError(f"object ids must fit uint32, got {ids}")
    if header is None:
        header = Header(stamp=ns_to_stamp(result.stamp_ns), frame_id=result.frame_id)
    return Scene(
        header=header,
        metric=bool(result.metric),
        # SceneResult lists the query object first; SceneObject.index is the caller's mask order.
        objects=[_object_to_msg(obj, object_id, k == 0) for k, (obj, object_id) in enumerate(zip(result.objects, ids))],
        timings=[StageTimingMsg(name=t.name, seconds=float(t.seconds)) for t in result.timings],
        model_description=result.model_description,
        warnings=list(result.warnings),
    )


# ----------------------------------------------------------------------------- Scene -> meshes


def object_mesh(obj: SceneObjectMsg) -> Mesh:
    """Mesh of one scenegen_ros/SceneObject in its OBJECT frame (scale applied), colours or None.

    Raises ValueError when triangle indices are out of range or the colour count is neither 0
    nor one per vertex.
    """
    vertices = np.array([(p.x, p.y, p.z) for p in obj.mesh.vertices], dtype=np.float32).reshape(-1, 3)
    faces = np.array([t.vertex_indices for t in obj.mesh.triangles], dtype=np.int64).reshape(-1, 3)
    colors = None
    if obj.vertex_colors:
        if len(obj.vertex_colors) != len(vertices):
            raise ValueError(
                f"object {obj.id}: {len(obj.vertex_colors)} vertex colours for {len(vertices)} vertices"
            )
        colors = np.array([(c.r, c.g, c.b) for c in obj.vertex_colors], dtype=np.float32)
    return Mesh(vertices, faces, colors)


def scene_msg_to_meshes(msg: Scene) -> list[tuple[int, Mesh]]:
    """(id, mesh in the HEADER frame) per object, in message order; vertices float32, units of the
    scene (metres when msg.metric)."""
    return [(int(obj.id), object_mesh(obj).transformed(_pose_from_msg(obj.pose))) for obj in msg.objects]


def _roi_to_box(roi: RegionOfInterest) -> np.ndarray:
    """Inverse of `_box_to_roi`: [4] float64 inclusive pixel box, NaN when the ROI is empty."""
    if roi.width == 0 or roi.height == 0:
        return np.full(4, np.nan)
    return np.array(
        [roi.x_offset, roi.y_offset, roi.x_offset + roi.width - 1, roi.y_offset + roi.height - 1], dtype=np.float64
    )


def scene_msg_to_result(msg: Scene) -> SceneResult:
    """scenegen_ros/Scene -> SceneResult (inverse of `scene_result_to_msg`; the ids stay in `msg`).

    Object k of the message becomes SceneObject(index=k) with its mesh back in the canonical frame
    (vertices divided by `scale`) and pose (position, orientation, scale). Raises ValueError for
    a non-positive scale or inconsistent meshes.
    """
    objects = []
    for index, obj in enumerate(msg.objects):
        if not obj.scale > 0:
            raise ValueError(f"object {obj.id}: scale must be > 0, got {obj.scale}")
        mesh = object_mesh(obj)
        objects.append(
            SceneObject(
                index=index,
                mesh=Mesh(mesh.vertices / np.float32(obj.scale), mesh.faces, mesh.vertex_colors),
                pose=_pose_from_msg(obj.pose, obj.scale),
                pose_relative=_pose_from_msg(obj.relative_pose, obj.relative_scale),
                boxes_per_view=np.array([_roi_to_box(roi) for roi in obj.mask_boxes]).reshape(-1, 4),
                score=float(obj.score),
                label=obj.label,
            )
        )
    return SceneResult(
        objects=tuple(objects),
        frame_id=msg.header.frame_id,
        stamp_ns=stamp_to_ns(msg.header.stamp),
        metric=bool(msg.metric),
        timings=tuple(StageTiming(name=t.name, seconds=float(t.seconds)) for t in msg.timings),
        model_description=msg.model_description,
        warnings=tuple(msg.warnings),
    )


# ----------------------------------------------------------------------------- markers


def object_color(object_id: int) -> np.ndarray:
    """[3] float64 RGB in [0, 1]: a fixed colour per object id, so an object keeps it across scenes."""
    return _PALETTE[object_id % len(_PALETTE)]


def _budget(mesh: Mesh, max_faces: int | None) -> Mesh:
    return mesh if not max_faces else simplify_to_face_budget(mesh, max_faces)


def _mesh_marker(obj: SceneObjectMsg, mesh: Mesh, header: Header, ns: str, lifetime: Duration) -> Marker:
    """TRIANGLE_LIST in the object frame (marker pose = object pose): three points per face."""
    corners = mesh.faces.reshape(-1)
    fallback = object_color(obj.id)
    marker = Marker(
        header=header,
        ns=ns,
        id=2 * int(obj.id),
        type=Marker.TRIANGLE_LIST,
        action=Marker.ADD,
        pose=obj.pose,
        scale=Vector3(x=1.0, y=1.0, z=1.0),
        color=ColorRGBA(r=float(fallback[0]), g=float(fallback[1]), b=float(fallback[2]), a=1.0),
        lifetime=lifetime,
        points=[Point(x=x, y=y, z=z) for x, y, z in mesh.vertices[corners].astype(np.float64).tolist()],
    )
    if mesh.vertex_colors is not None:
        marker.colors = _colors_to_msg(mesh.vertex_colors[corners])
    return marker


def _label_marker(obj: SceneObjectMsg, header: Header, ns: str, lifetime: Duration) -> Marker:
    """TEXT_VIEW_FACING "id: label score" just above the object's box (object z is up)."""
    pose = _pose_from_msg(obj.pose)
    extent = max(obj.size.x, obj.size.y, obj.size.z)
    height = max(_LABEL_HEIGHT_FRACTION * extent, _MIN_LABEL_HEIGHT)
    position = pose.apply(np.array([[0.0, 0.0, 0.5 * obj.size.z + height]]))[0]
    label = obj.label or "object"
    return Marker(
        header=header,
        ns=ns,
        id=2 * int(obj.id) + 1,
        type=Marker.TEXT_VIEW_FACING,
        action=Marker.ADD,
        pose=_pose_to_msg(position, np.array([1.0, 0.0, 0.0, 0.0])),
        scale=Vector3(x=0.0, y=0.0, z=float(height)),
        color=ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0),
        lifetime=lifetime,
        text=f"{obj.id}: {label} {obj.score:.2f}",
    )


def scene_to_markers(
    scene_msg: Scene,
    ns: str = "scenegen",
    lifetime: Duration | None = None,
    max_faces: int | None = None,
) -> MarkerArray:
    """RViz markers for a Scene, all in scene_msg.header's frame and namespace `ns`.

    First a DELETEALL (removes the previous scene's markers), then per object a TRIANGLE_LIST
    (id 2k, per-vertex colours, or a palette colour by id when the object has none; omitted for an
    empty mesh) and a TEXT_VIEW_FACING label "k: label score" (id 2k + 1). lifetime: marker
    lifetime (None = forever). max_faces: simplify each mesh to at most this many faces
    (None/0 = full mesh). Raises ValueError for an object id above MAX_MARKER_OBJECT_ID.
    """
    lifetime = lifetime if lifetime is not None else Duration()
    header = scene_msg.header
    markers = [Marker(header=header, ns=ns, id=0, action=Marker.DELETEALL)]
    for obj in scene_msg.objects:
        if obj.id > MAX_MARKER_OBJECT_ID:
            raise ValueError(f"object id {obj.id} is too large for marker ids (max {MAX_MARKER_OBJECT_ID})")
        mesh = _budget(object_mesh(obj), max_faces)
        if not mesh.is_empty:
            markers.append(_mesh_marker(obj, mesh, header, ns, lifetime))
        markers.append(_label_marker(obj, header, ns, lifetime))
    return MarkerArray(markers=markers)


# ----------------------------------------------------------------------------- MoveIt


def collision_object_id(object_id: int) -> str:
    """MoveIt object name of a SceneGen object id."""
    return f"scenegen_{int(object_id)}"


@dataclass(frozen=True)
class CollisionShapes:
    """shapes: per SceneResult object (result order), its collision geometry in the OBJECT frame of
    its scenegen_ros/SceneObject (metres, scale applied), or None when it has none. skipped: one line
    per None (empty mesh, or geometry that could not be built), for the node's log and diagnostics."""

    shapes: tuple[CollisionGeometry | None, ...]
    skipped: tuple[str, ...]


def collision_shapes(result: SceneResult, geometry: CollisionGeometryConfig) -> CollisionShapes:
    """`collision_geometry` of every object of a metric result, holding its depth points
    (SceneObject.observed_points) `geometry.padding_m` deep. The slow part of the collision objects
    (convex decomposition takes seconds): the node runs it before tracking, so no track can expire
    while its geometry is being built."""
    shapes, skipped = [], []
    for obj in result.objects:
        mesh = _object_frame_mesh(obj)
        if mesh.is_empty:
            shapes.append(None)
            skipped.append(f"object {obj.index}: empty mesh, no collision object")
            continue
        points = None
        if obj.observed_points is not None:
            points = Pose(obj.pose.translation, obj.pose.rotation_wxyz).inverse().apply(obj.observed_points)
        try:
            shapes.append(collision_geometry(Mesh(mesh.vertices, mesh.faces), points, geometry))
        except ValueError as error:
            shapes.append(None)
            skipped.append(f"object {obj.index}: no {geometry.kind} collision geometry: {error}")
    return CollisionShapes(tuple(shapes), tuple(skipped))


def scene_to_collision_objects(scene_msg: Scene, shapes: CollisionShapes, collision_object_cls, db: str = "") -> list:
    """One moveit_msgs/CollisionObject (operation ADD, which replaces an existing object of the same
    id) per object of `scene_msg` with a shape (`collision_shapes` of the result the message was
    made from: same order).

    header = scene header; pose = object pose (header frame, metres when the scene is metric);
    meshes (every part) in the object frame with identity mesh poses, or for ``box`` one
    SolidPrimitive BOX at its pose in the object frame; type (object_recognition_msgs/ObjectType):
    key = label, db = `db` (the object database the keys refer to; "" = none).
    collision_object_cls: the CollisionObject class (moveit_msgs.msg.CollisionObject).
    Raises ValueError when the shapes do not belong to the message (count mismatch).
    """
    if len(shapes.shapes) != len(scene_msg.objects):
        raise ValueError(f"{len(shapes.shapes)} collision shapes for {len(scene_msg.objects)} objects")
    objects = []
    for obj, shape in zip(scene_msg.objects, shapes.shapes):
        if shape is None:
            continue
        collision = collision_object_cls(
            header=scene_msg.header, pose=obj.pose, id=collision_object_id(obj.id), operation=collision_object_cls.ADD
        )
        if shape.box is not None:
            collision.primitives = [SolidPrimitive(type=SolidPrimitive.BOX, dimensions=[float(v) for v in shape.box.extents])]
            collision.primitive_poses = [_pose_to_msg(shape.box.pose.translation, shape.box.pose.rotation_wxyz)]
        else:
            collision.meshes = [_mesh_to_shape_msg(part) for part in shape.parts]
            collision.mesh_poses = [PoseMsg() for _ in shape.parts]
        collision.type.key = obj.label
        collision.type.db = db
        objects.append(collision)
    return objects


def collision_object_remove(object_id: int, header: Header, collision_object_cls):
    """moveit_msgs/CollisionObject that removes the object `object_id` (operation REMOVE)."""
    return collision_object_cls(
        header=header, id=collision_object_id(object_id), operation=collision_object_cls.REMOVE
    )
