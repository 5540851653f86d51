"""Random tabletop scenes with exact geometry, cameras and rendered views; deterministic by seed.

World frame: metres, z up, origin at the centre of the table's top surface (the table top is
the plane z = 0; the table is a box from z = -thickness to 0). Objects rest on z = 0 in a stable
pose (upright, on their side, or upside down, depending on the shape), with random yaw, and their
footprints (convex hull of the posed mesh projected onto the table) are separated by at least
``WorldConfig.min_gap``; since all objects stand on the same plane, disjoint footprints mean the
solids do not intersect.

Object order: objects are sorted by decreasing visible pixel count in camera 0 (ties keep the
placement order), so object 0 is the largest mask, which is the query object exactly as in
SceneGen's inference (it sorts the masks by area); ``SyntheticScene.query_index`` is therefore 0.

Instance ids in scene renders: object index (0..N-1), TABLE_ID (-2) for the table,
BACKGROUND_ID (-1) for no hit.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull

from scenegen_core.types import CameraIntrinsics, Mesh, Pose, View, rotation_matrix_to_wxyz
from scenegen_core.world.render import BACKGROUND_ID, RenderResult, project_points, render_meshes
from scenegen_core.world.shapes import SHAPE_KINDS, BoxSpec, ShapeSpec, sample_shape
from scenegen_core.world.transforms import look_at, rotation_about, transform_points

TABLE_ID = -2

# Stable resting rotations (object frame -> table frame before yaw) per shape kind; the first
# entry is upright. Spheres instead get a uniformly random rotation.
_RESTING: dict[str, tuple[tuple[str, np.ndarray], ...]] = {
    "box": (("upright", np.eye(3)), ("side_x", rotation_about("x", 90)), ("side_y", rotation_about("y", 90))),
    "cylinder": (("upright", np.eye(3)), ("side", rotation_about("x", 90))),
    "bottle": (("upright", np.eye(3)), ("side", rotation_about("x", 90))),
    "bowl": (("upright", np.eye(3)), ("inverted", rotation_about("x", 180))),
    "mug": (("upright", np.eye(3)), ("inverted", rotation_about("x", 180))),
    "cone": (("upright", np.eye(3)),),
}


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the random tabletop world (lengths in metres, angles in degrees).

    Placement: n ~ U{min_objects..max_objects} objects are tried inside a square of half-size
    cluster_half_size + cluster_half_size_per_object * n around a random table point; an object
    that finds no free spot in max_placement_attempts tries is dropped (at least one always fits).
    lying_probability: chance that a shape with non-upright stable poses is not upright.
    Cameras: look at the objects' centre from elevation_deg_range above the table plane at
    1 to 1.4 times the distance that frames every object whole (clipped to distance_range,
    metres), horizontal field of view fov_deg_range. Camera 0 is re-drawn up to
    max_camera_attempts times until each object shows at least min_visible_fraction of the image
    pixels (33 px at 256 x 256); if no draw achieves that, the draw whose least visible object
    shows most is kept.
    """

    min_objects: int = 1
    max_objects: int = 8
    num_cameras: int = 1
    image_width: int = 256
    image_height: int = 256
    shape_kinds: tuple[str, ...] = SHAPE_KINDS
    object_size_range: tuple[float, float] = (0.03, 0.30)
    table_size_x_range: tuple[float, float] = (0.9, 1.6)
    table_size_y_range: tuple[float, float] = (0.7, 1.0)
    table_thickness: float = 0.04
    cluster_half_size: float = 0.10
    cluster_half_size_per_object: float = 0.035
    min_gap: float = 0.005
    lying_probability: float = 0.3
    elevation_deg_range: tuple[float, float] = (20.0, 70.0)
    distance_range: tuple[float, float] = (0.4, 1.5)
    fov_deg_range: tuple[float, float] = (45.0, 70.0)
    min_visible_fraction: float = 5e-4
    segments: int = 48
    max_placement_attempts: int = 100
    max_camera_attempts: int = 20

    def __post_init__(self) -> None:
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError(f"need 1 <= min_objects <= max_objects, got {self.min_objects}, {self.max_objects}")
        if self.num_cameras < 1:
            raise ValueError(f"num_cameras must be >= 1, got {self.num_cameras}")
        if self.image_width < 8 or self.image_height < 8:
            raise ValueError(f"image size too small: {self.image_width}x{self.image_height}")
        unknown = set(self.shape_kinds) - set(SHAPE_KINDS)
        if not self.shape_kinds or unknown:
            raise ValueError(f"shape_kinds must be a non-empty subset of {SHAPE_KINDS}, got {self.shape_kinds}")
        for name in ("object_size_range", "table_size_x_range", "table_size_y_range", "distance_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < lo <= hi, got {(lo, hi)}")
        if not 0 < self.elevation_deg_range[0] <= self.elevation_deg_range[1] < 90:
            raise ValueError(f"elevation_deg_range must lie in (0, 90), got {self.elevation_deg_range}")
        if not 0 < self.fov_deg_range[0] <= self.fov_deg_range[1] < 180:
            raise ValueError(f"fov_deg_range must lie in (0, 180), got {self.fov_deg_range}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown WorldConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


@dataclass(frozen=True)
class TableSpec:
    """Table top: a box size_x * size_y * thickness metres whose top face is z = 0; color RGB in [0, 1]."""

    size_x: float
    size_y: float
    thickness: float
    color: tuple[float, float, float]

    def mesh(self) -> Mesh:
        """Closed box mesh in the world frame, metres."""
        box = BoxSpec(self.size_x, self.size_y, self.thickness).mesh()
        return box.transformed(Pose(translation=[0.0, 0.0, -self.thickness]))


@dataclass(frozen=True)
class WorldObject:
    """One object: shape (object frame, see shapes.py), albedo, rigid world_from_object (scale 1).

    mesh: [V, 3] float32 metres in the object frame (closed, outward). resting: name of the
    stable pose ("upright", "side", "side_x", "side_y", "inverted", "tumbled" for spheres).
    """

    shape: ShapeSpec
    color: tuple[float, float, float]
    world_from_object: Pose
    resting: str
    mesh: Mesh = field(repr=False)

    @property
    def label(self) -> str:
        return self.shape.kind

    def mesh_world(self) -> Mesh:
        """Mesh in the world frame, metres."""
        return self.mesh.transformed(self.world_from_object)


@dataclass(frozen=True)
class SceneCamera:
    """Pinhole camera: intrinsics and camera_from_world [4, 4] float64 (world -> optical frame, rigid)."""

    intrinsics: CameraIntrinsics
    camera_from_world: np.ndarray

    @property
    def world_from_camera(self) -> np.ndarray:
        return np.linalg.inv(self.camera_from_world)


@dataclass(frozen=True)
class SyntheticScene:
    """A generated (or loaded) scene: geometry, cameras and one render per camera.

    objects are in the pipeline order (object 0 = query, see module docstring); renders[k] is
    camera k's view with scene instance ids (object index, TABLE_ID, BACKGROUND_ID).
    """

    seed: int
    config: WorldConfig
    table: TableSpec
    objects: tuple[WorldObject, ...]
    cameras: tuple[SceneCamera, ...]
    renders: tuple[RenderResult, ...]
    query_index: int = 0

    def __post_init__(self) -> None:
        if len(self.renders) != len(self.cameras):
            raise ValueError(f"{len(self.cameras)} cameras but {len(self.renders)} renders")
        if not self.objects:
            raise ValueError("a scene needs at least one object")
        if not 0 <= self.query_index < len(self.objects):
            raise ValueError(f"query_index {self.query_index} out of range for {len(self.objects)} objects")

    def object_meshes_world(self) -> list[Mesh]:
        return [obj.mesh_world() for obj in self.objects]

    def views(self) -> list[View]:
        """One View per camera; masks [N_objects, H, W] in object order (possibly empty masks).

        frame_id is "cam{k}_optical_frame"; camera_from_reference maps camera-0 coordinates into
        camera k (identity for k = 0).
        """
        reference_from_world = self.cameras[0].camera_from_world
        world_from_reference = np.linalg.inv(reference_from_world)
        views = []
        for k, (camera, render) in enumerate(zip(self.cameras, self.renders)):
            masks = render.instance_ids[None] == np.arange(len(self.objects))[:, None, None]
            views.append(
                View(
                    rgb=render.rgb,
                    depth=render.depth,
                    intrinsics=camera.intrinsics,
                    masks=masks,
                    frame_id=f"cam{k}_optical_frame",
                    stamp_ns=0,
                    camera_from_reference=np.eye(4) if k == 0 else camera.camera_from_world @ world_from_reference,
                )
            )
        return views


def render_scene_camera(
    table: TableSpec, objects: tuple[WorldObject, ...], camera: SceneCamera
) -> RenderResult:
    """Render objects + table into one camera with scene instance ids (object index, TABLE_ID, BACKGROUND_ID)."""
    meshes = [obj.mesh_world() for obj in objects] + [table.mesh()]
    colors = np.array([obj.color for obj in objects] + [table.color])
    result = render_meshes(meshes, colors, camera.intrinsics, camera.camera_from_world)
    ids = np.where(result.instance_ids == len(objects), TABLE_ID, result.instance_ids).astype(np.int32)
    return dataclasses.replace(result, instance_ids=ids)


def _random_color(rng: np.random.Generator) -> tuple[float, float, float]:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(0.45, 0.9), rng.uniform(0.55, 0.95))
    return tuple(float(c) for c in rgb)


def _footprint(points_xy: np.ndarray) -> np.ndarray:
    """[P, 2] counter-clockwise convex hull of [N, 2] points."""
    return points_xy[ConvexHull(points_xy).vertices]


def _separation(a: np.ndarray, b: np.ndarray) -> float:
    """Lower bound of the distance between convex polygons a, b (largest separating-axis gap, < 0 if overlapping)."""
    best = -math.inf
    for poly in (a, b):
        edges = np.roll(poly, -1, axis=0) - poly
        normals = np.stack([edges[:, 1], -edges[:, 0]], axis=1)
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        pa, pb = a @ normals.T, b @ normals.T
        gaps = np.maximum(pb.min(0) - pa.max(0), pa.min(0) - pb.max(0))
        best = max(best, float(gaps.max()))
    return best


def rotation_from_quaternion(q_wxyz: np.ndarray) -> np.ndarray:
    """[3, 3] rotation of a (not necessarily unit) quaternion, w first."""
    return Pose(rotation_wxyz=q_wxyz).rotation_matrix


def _resting_rotation(rng: np.random.Generator, kind: str, lying_probability: float) -> tuple[str, np.ndarray]:
    if kind == "sphere":
        return "tumbled", rotation_from_quaternion(rng.normal(size=4))
    options = _RESTING[kind]
    if len(options) == 1 or rng.random() >= lying_probability:
        return options[0]
    return options[int(rng.integers(1, len(options)))]


def _place_objects(rng: np.random.Generator, config: WorldConfig, table: TableSpec) -> list[WorldObject]:
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    half = config.cluster_half_size + config.cluster_half_size_per_object * count
    table_half = np.array([table.size_x, table.size_y]) / 2
    edge_margin = 0.01
    centre = rng.uniform(-(table_half - half).clip(0), (table_half - half).clip(0))
    placed: list[WorldObject] = []
    footprints: list[np.ndarray] = []
    for _ in range(count):
        kind = str(rng.choice(config.shape_kinds))
        shape = sample_shape(rng, kind, config.object_size_range)
        color = _random_color(rng)
        resting, rest_rotation = _resting_rotation(rng, kind, config.lying_probability)
        mesh = shape.mesh(config.segments)
        for _attempt in range(config.max_placement_attempts):
            rotation = rotation_about("z", float(rng.uniform(0, 360))) @ rest_rotation
            # The Pose's own matrix (from the stored quaternion) places the mesh, so the stored
            # pose and the rendered geometry agree to float precision.
            q = rotation_matrix_to_wxyz(rotation)
            posed = mesh.vertices.astype(np.float64) @ Pose(rotation_wxyz=q).rotation_matrix.T
            xy = centre + rng.uniform(-half, half, size=2)
            hull = _footprint(posed[:, :2]) + xy
            if np.any(np.abs(hull) > table_half - edge_margin):
                continue
            if any(_separation(hull, other) < config.min_gap for other in footprints):
                continue
            translation = np.array([xy[0], xy[1], -posed[:, 2].min()])
            placed.append(WorldObject(shape, color, Pose(translation, q, 1.0), resting, mesh))
            footprints.append(hull)
            break
    if not placed:  # the first object always fits (empty table, cluster inside the table); guard anyway
        raise RuntimeError(f"could not place any object (table {table}, cluster half-size {half:.3f} m)")
    return placed


def _sample_camera(
    rng: np.random.Generator, config: WorldConfig, corners_world: np.ndarray, target: np.ndarray
) -> tuple[SceneCamera, bool]:
    """A random look-at camera and whether every object corner projects inside the image."""
    fov_x = math.radians(rng.uniform(*config.fov_deg_range))
    width, height = config.image_width, config.image_height
    fx = (width / 2) / math.tan(fov_x / 2)
    intrinsics = CameraIntrinsics(fx, fx, (width - 1) / 2, (height - 1) / 2, width, height)
    half_fov = min(fov_x, 2 * math.atan((height / 2) / fx)) / 2
    radius = float(np.linalg.norm(corners_world - target, axis=1).max())
    near, far = config.distance_range
    needed = 1.05 * radius / math.sin(half_fov)
    distance = float(np.clip(needed * rng.uniform(1.0, 1.4), near, far))
    elevation = math.radians(rng.uniform(*config.elevation_deg_range))
    azimuth = rng.uniform(0, 2 * math.pi)
    direction = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    camera = SceneCamera(intrinsics, look_at(target + distance * direction, target))
    corners_camera = transform_points(camera.camera_from_world, corners_world)
    if np.any(corners_camera[:, 2] < 0.05):
        return camera, False
    uv = project_points(corners_camera, intrinsics)
    inside = np.all((uv >= -0.5) & (uv <= np.array([width - 0.5, height - 0.5])))
    return camera, bool(inside)


def _object_corners(objects: list[WorldObject]) -> np.ndarray:
    """[8 * N, 3] world corners of the objects' object-frame bounding boxes."""
    corners = []
    for obj in objects:
        lo, hi = obj.mesh.bounds()
        box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners.append(obj.world_from_object.apply(box))
    return np.concatenate(corners)


def generate_scene(seed: int, config: WorldConfig = WorldConfig()) -> SyntheticScene:
    """Build, place, photograph and order one random scene; the same (seed, config) gives the same scene."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    rng = np.random.default_rng(seed)
    # 1. Table and objects.
    table = TableSpec(
        size_x=float(rng.uniform(*config.table_size_x_range)),
        size_y=float(rng.uniform(*config.table_size_y_range)),
        thickness=config.table_thickness,
        color=tuple(float(c) for c in colorsys.hsv_to_rgb(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.75))),
    )
    objects = _place_objects(rng, config, table)
    corners = _object_corners(objects)
    # Aim at the objects' middle with a little jitter so the cluster is not always centred.
    target = (corners.min(0) + corners.max(0)) / 2 + np.append(rng.normal(0, 0.02, size=2), 0.0)

    # 2. Cameras; camera 0 must see every object (whole in the frame, >= min_visible_pixels).
    cameras, renders = [], []
    min_pixels = config.min_visible_fraction * config.image_width * config.image_height
    for k in range(config.num_cameras):
        best: tuple[int, SceneCamera, RenderResult] | None = None
        for attempt in range(config.max_camera_attempts):
            camera, in_frame = _sample_camera(rng, config, corners, target)
            if not in_frame and attempt < config.max_camera_attempts - 1:
                continue
            render = render_scene_camera(table, tuple(objects), camera)
            if k > 0:
                best = (0, camera, render)
                break
            counts = np.bincount(render.instance_ids[render.instance_ids >= 0], minlength=len(objects))
            if best is None or counts.min() > best[0]:
                best = (int(counts.min()), camera, render)
            if counts.min() >= min_pixels:
                break
        cameras.append(best[1])
        renders.append(best[2])

    # 3. Pipeline order: decreasing mask area in camera 0 (stable), instance ids relabelled.
    areas = np.bincount(renders[0].instance_ids[renders[0].instance_ids >= 0], minlength=len(objects))
    order = np.argsort(-areas, kind="stable")
    new_index = np.empty(len(objects), dtype=np.int32)
    new_index[order] = np.arange(len(objects), dtype=np.int32)
    relabelled = []
    for render in renders:
        ids = render.instance_ids
        ids = np.where(ids >= 0, new_index[ids.clip(0)], ids).astype(np.int32)
        relabelled.append(dataclasses.replace(render, instance_ids=ids))
    return SyntheticScene(
        seed=int(seed),
        config=config,
        table=table,
        objects=tuple(objects[i] for i in order),
        cameras=tuple(cameras),
        renders=tuple(relabelled),
        query_index=0,
    )


__all__ = [
    "WorldConfig",
    "TableSpec",
    "WorldObject",
    "SceneCamera",
    "SyntheticScene",
    "generate_scene",
    "render_scene_camera",
    "TABLE_ID",
    "BACKGROUND_ID",
]
