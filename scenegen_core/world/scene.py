"""Random tabletop scenes with exact geometry, cameras and rendered views; deterministic by seed.

World frame: metres, z up, origin at the centre of the table's top surface (the table top is
the plane z = 0; the table is a box from z = -thickness to 0). Every object is posed rigidly in a
stable resting rotation (upright, on its side, upside down, ... depending on the shape; see
``_RESTING``) with random yaw, and placed in one of three ways (``WorldObject.placement``):

* ``table``: on the table top (lowest point at z = 0), its footprint (convex hull of the posed
  mesh projected onto the table) at least ``WorldConfig.min_gap`` from every other footprint;
  disjoint footprints of solids standing on one plane mean the solids do not intersect;
* ``beside``: on the table top, slid horizontally towards a neighbour until it touches it;
* ``stacked`` / ``inside``: dropped vertically onto other objects (``inside``: into an open
  container such as a bowl or a cup) until it touches them, and kept only if its centre of mass
  lies over the convex hull of its contact points (it would not tip over).

Touching placements move the object along a straight line by the largest distance that no ray
along that line from a surface sample of one object (vertices, face centroids and points every
5 mm along every edge) to the other object's mesh allows, less ``WorldConfig.contact_gap``
(0.5 mm): the objects end up within about a millimetre of each other. A placement is then
checked for interpenetration (no sample of either object inside the other, by ray parity) and
rejected if any is found, so the objects' meshes, poses, occupancies and instance masks stay
exact. Stacked objects' footprints overlap their supports'; later ``table`` placements keep their
gap to every footprint, which stays a sufficient condition.

Object order: objects are sorted by decreasing visible pixel count in camera 0 (ties keep the
placement order), so object 0 is the largest mask, which is the query object exactly as in
SceneGen's inference (it sorts the masks by area); ``SyntheticScene.query_index`` is therefore 0.

Instance ids in scene renders: object index (0..N-1), TABLE_ID (-2) for the table,
BACKGROUND_ID (-1) for the room (floor, walls) and for no hit. Depth is the true z-depth of
whatever is hit, the room included, and 0 where nothing is; with ``WorldConfig.depth_noise`` the
views carry what a depth sensor would measure instead (sensor.py), the renders stay exact.

Presets. ``WorldConfig()`` is the realistic world: 15 shape kinds in four families (one, the
superquadrics, held out of every split unless ``held_out_variant`` asks for it alone),
per-category sizes, touching and stacked objects, cut-off objects at the image border, procedural
textures, a lamp with cast shadows and a room. ``WorldConfig.idealised()`` is the first world
(7 kinds, one size range, gaps >= 5 mm, every object whole in camera 0, flat colours, head-light,
grey void): the same seed gives the same scene, bit for bit, as before the realistic options
existed (test/core/test_world_realism.py pins fingerprints of it).
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

import numpy as np
import open3d as o3d
from scipy.spatial import ConvexHull, QhullError

from scenegen_core.types import CameraIntrinsics, Mesh, Pose, View, rotation_matrix_to_wxyz
from scenegen_core.world.appearance import (
    Room,
    Texture,
    random_color,
    sample_lamp,
    sample_object_texture,
    sample_room,
    sample_table_texture,
    world_albedo,
)
from scenegen_core.world.render import BACKGROUND_ID, PointLight, RenderResult, project_points, render_instance_ids, render_meshes
from scenegen_core.world.sensor import DepthNoiseConfig, simulate_depth
from scenegen_core.world.shapes import (
    CATEGORY_SIZE_RANGES,
    CONTAINER_KINDS,
    FAMILY_OF_KIND,
    LEGACY_SHAPE_KINDS,
    SHAPE_FAMILIES,
    SHAPE_KINDS,
    BoxSpec,
    ShapeSpec,
    sample_shape,
    volume_centroid,
)
from scenegen_core.world.transforms import look_at, rotation_about, transform_points

TABLE_ID = -2
PLACEMENTS = ("table", "beside", "stacked", "inside")
BACKGROUNDS = ("void", "room")

# Stable resting rotations (object frame -> table frame before yaw) per shape kind; the first
# entry is the shape's own frame ("upright", or "flat" for the tools built lying down). Spheres
# instead get a uniformly random rotation.
_UPRIGHT = ("upright", np.eye(3))
_ON_SIDES = (_UPRIGHT, ("side_x", rotation_about("x", 90)), ("side_y", rotation_about("y", 90)))
_ON_SIDE = (_UPRIGHT, ("side", rotation_about("x", 90)))
_INVERTED = (_UPRIGHT, ("inverted", rotation_about("x", 180)))
_FLAT = (("flat", np.eye(3)),)
_RESTING: dict[str, tuple[tuple[str, np.ndarray], ...]] = {
    "box": _ON_SIDES,
    "cylinder": _ON_SIDE,
    "bottle": _ON_SIDE,
    "bowl": _INVERTED,
    "mug": _INVERTED,
    "cone": (_UPRIGHT,),
    "superquadric": _ON_SIDES,
    "vase": _ON_SIDE,
    "cup": _INVERTED,
    "flask": _ON_SIDE,
    "lidded_box": (_UPRIGHT,),
    "hammer": _FLAT,
    "screwdriver": _FLAT,
    "dumbbell": _FLAT,
}

_SAMPLE_SPACING = 0.005  # metres between surface samples along mesh edges (contact search, checks)
_CONTACT_TOLERANCE = 0.002  # metres: samples this close to a support count as contact points
_STABILITY_MARGIN = 0.002  # metres the centre of mass must lie inside the contact hull
_TABLE_EDGE_MARGIN = 0.01  # metres every footprint keeps from the table's edge
_TOUCH_ATTEMPTS = 8  # tries of a beside / stacked placement before falling back to the table


def _nested_tuple(value):
    """JSON lists -> tuples, recursively (WorldConfig fields are tuples, so configs stay hashable)."""
    return tuple(_nested_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the random tabletop world (lengths in metres, angles in degrees).

    Shapes. Each object's kind is drawn uniformly from ``kinds``: the shape_kinds whose family
    (shapes.FAMILY_OF_KIND) is in shape_families, without the kinds of held_out_family; with
    held_out_variant, only the held-out family's kinds (a test variant: generate it with
    ``generate --held-out``). Sizes (largest bounding-box extent) are drawn from the kind's
    entry in size_ranges ((kind, lo, hi) triples), or from object_size_range for a kind without
    one (size_ranges = () gives every kind object_size_range).

    Placement: n ~ U{min_objects..max_objects} objects are tried inside a square of half-size
    cluster_half_size + cluster_half_size_per_object * n around a random table point. Each one
    after the first is, with beside_probability, slid against a random object standing on the
    table and, with stack_probability, dropped onto a random object (a container among them
    most of the time, if one is upright and wide enough); otherwise, or when that fails, it gets a free table spot
    (module docstring). An object that finds no free spot in max_placement_attempts tries is
    dropped (at least one always fits). lying_probability: chance that a shape with non-upright
    stable poses is not upright.

    Cameras look at the objects' centre from elevation_deg_range above the table plane at 1 to
    1.4 times the distance that frames every object whole (clipped to distance_range, metres),
    horizontal field of view fov_deg_range. With truncation_probability a draw comes closer
    instead (truncation_zoom_range times that distance), so objects may be cut off by the image
    border. A camera is re-drawn up to max_camera_attempts times until each object shows at least
    min_visible_fraction of the image pixels (33 px at 256 x 256), in camera 0 only or, with
    visible_in_all_cameras, in every camera (the last draw never truncates); if no draw achieves
    that, the draw whose least visible object shows most is kept and, with
    visible_in_all_cameras, objects still below the threshold in some camera are removed from the
    scene (unless another object rests on them) and the cameras re-rendered.

    Appearance: texture_probability: chance that an object (and, separately, the table) gets a
    procedural texture (appearance.py) over its random colour; shadows: a lamp above the table
    with cast shadows beside the head-light; background: "void" (flat grey, no depth) or "room"
    (floor and walls around the table).

    Sensor: depth_noise: None (off: views carry the exact rendered depth) or the depth sensor
    model (sensor.py) that ``SyntheticScene.views()`` applies to the exact renders, seeded by the
    scene seed. It draws nothing from the scene's own random streams, so it changes no geometry,
    image or mask; to_dict() leaves it out when off, so the configs of noiseless worlds (dataset
    metas, cache fingerprints) stay what they were.
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
    shape_families: tuple[str, ...] = tuple(SHAPE_FAMILIES)
    held_out_family: Optional[str] = "superquadric"
    held_out_variant: bool = False
    size_ranges: tuple[tuple[str, float, float], ...] = CATEGORY_SIZE_RANGES
    beside_probability: float = 0.25
    stack_probability: float = 0.2
    contact_gap: float = 0.0005
    truncation_probability: float = 0.5
    truncation_zoom_range: tuple[float, float] = (0.45, 0.85)
    visible_in_all_cameras: bool = True
    texture_probability: float = 0.5
    shadows: bool = True
    background: str = "room"
    depth_noise: Optional[DepthNoiseConfig] = None

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
        families = set(self.shape_families) | ({self.held_out_family} - {None})
        if not self.shape_families or families - set(SHAPE_FAMILIES):
            raise ValueError(f"shape families must be among {tuple(SHAPE_FAMILIES)}, got {self.shape_families}, {self.held_out_family}")
        if self.held_out_variant and self.held_out_family is None:
            raise ValueError("held_out_variant needs a held_out_family")
        if not self.kinds:
            raise ValueError(
                f"no shape kind left to draw: shape_kinds {self.shape_kinds}, families {self.shape_families}, "
                f"held_out_family {self.held_out_family!r}, held_out_variant {self.held_out_variant}"
            )
        for name in ("object_size_range", "table_size_x_range", "table_size_y_range", "distance_range", "truncation_zoom_range"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must satisfy 0 < lo <= hi, got {(lo, hi)}")
        for entry in self.size_ranges:
            if len(entry) != 3 or entry[0] not in SHAPE_KINDS or not 0 < entry[1] <= entry[2]:
                raise ValueError(f"size_ranges entries must be (known kind, lo, hi) with 0 < lo <= hi, got {entry}")
        if not 0 < self.elevation_deg_range[0] <= self.elevation_deg_range[1] < 90:
            raise ValueError(f"elevation_deg_range must lie in (0, 90), got {self.elevation_deg_range}")
        if not 0 < self.fov_deg_range[0] <= self.fov_deg_range[1] < 180:
            raise ValueError(f"fov_deg_range must lie in (0, 180), got {self.fov_deg_range}")
        for name in ("beside_probability", "stack_probability", "truncation_probability", "texture_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.beside_probability + self.stack_probability > 1.0:
            raise ValueError("beside_probability + stack_probability must not exceed 1")
        if not 0 < self.contact_gap < 0.01:
            raise ValueError(f"contact_gap must be in (0, 0.01) metres, got {self.contact_gap}")
        if self.background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {self.background!r}")
        if self.depth_noise is not None and not isinstance(self.depth_noise, DepthNoiseConfig):
            raise ValueError(f"depth_noise must be None or a DepthNoiseConfig, got {type(self.depth_noise).__name__}")

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds objects are drawn from, in shape_kinds order (class docstring)."""
        kinds = [k for k in self.shape_kinds if FAMILY_OF_KIND[k] in self.shape_families]
        if self.held_out_family is not None:
            kinds = [k for k in kinds if (FAMILY_OF_KIND[k] == self.held_out_family) == self.held_out_variant]
        return tuple(kinds)

    def size_range(self, kind: str) -> tuple[float, float]:
        """(lo, hi) largest extent in metres of the given kind (class docstring)."""
        for name, lo, hi in self.size_ranges:
            if name == kind:
                return (lo, hi)
        return self.object_size_range

    @classmethod
    def idealised(cls, **overrides) -> "WorldConfig":
        """The first world (module docstring), bit for bit; keyword arguments override fields."""
        return cls(**{**_IDEALISED, **overrides})

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        if self.depth_noise is None:
            del data["depth_noise"]  # off: the dict a world without a sensor model always had
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        """Config from (a subset of) to_dict()'s fields; missing ones keep the realistic defaults,
        or those of ``WorldConfig.idealised()`` when data has "preset": "idealised"."""
        data = dict(data)
        preset = data.pop("preset", "realistic")
        if preset not in ("realistic", "idealised"):
            raise ValueError(f"unknown WorldConfig preset {preset!r}: use 'realistic' or 'idealised'")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown WorldConfig fields: {sorted(unknown)}")
        noise = data.pop("depth_noise", None)
        values = {k: _nested_tuple(v) for k, v in data.items()}
        if noise is not None:
            values["depth_noise"] = noise if isinstance(noise, DepthNoiseConfig) else DepthNoiseConfig.from_dict(noise)
        return cls.idealised(**values) if preset == "idealised" else cls(**values)


# Field values of the first world that differ from the realistic defaults.
_IDEALISED = dict(
    shape_kinds=LEGACY_SHAPE_KINDS,
    held_out_family=None,
    size_ranges=(),
    beside_probability=0.0,
    stack_probability=0.0,
    truncation_probability=0.0,
    visible_in_all_cameras=False,
    texture_probability=0.0,
    shadows=False,
    background="void",
)


@dataclass(frozen=True)
class TableSpec:
    """Table top: a box size_x * size_y * thickness metres whose top face is z = 0; color RGB in [0, 1];
    texture: None (flat color) or a procedural texture in the world frame."""

    size_x: float
    size_y: float
    thickness: float
    color: tuple[float, float, float]
    texture: Optional[Texture] = None

    def mesh(self) -> Mesh:
        """Closed box mesh in the world frame, metres."""
        box = BoxSpec(self.size_x, self.size_y, self.thickness).mesh()
        return box.transformed(Pose(translation=[0.0, 0.0, -self.thickness]))


@dataclass(frozen=True)
class WorldObject:
    """One object: shape (object frame, see shapes.py), albedo, rigid world_from_object (scale 1).

    mesh: [V, 3] float32 metres in the object frame (closed, outward). resting: name of the
    stable rotation ("upright", "side", "side_x", "side_y", "inverted", "flat", "tumbled" for
    spheres). texture: None (flat color) or a procedural texture in the object frame.
    placement: how it was placed, one of PLACEMENTS (module docstring).
    """

    shape: ShapeSpec
    color: tuple[float, float, float]
    world_from_object: Pose
    resting: str
    mesh: Mesh = field(repr=False)
    texture: Optional[Texture] = None
    placement: str = "table"

    @property
    def label(self) -> str:
        return self.shape.kind

    @property
    def family(self) -> str:
        return FAMILY_OF_KIND[self.shape.kind]

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
    camera k's view with scene instance ids (object index, TABLE_ID, BACKGROUND_ID). room: the
    floor and walls (None: grey void); light: the lamp (None: head-light only).
    """

    seed: int
    config: WorldConfig
    table: TableSpec
    objects: tuple[WorldObject, ...]
    cameras: tuple[SceneCamera, ...]
    renders: tuple[RenderResult, ...]
    query_index: int = 0
    room: Optional[Room] = None
    light: Optional[PointLight] = None

    def __post_init__(self) -> None:
        if len(self.renders) != len(self.cameras):
            raise ValueError(f"{len(self.cameras)} cameras but {len(self.renders)} renders")
        if not self.objects:
            raise ValueError("a scene needs at least one object")
        if not 0 <= self.query_index < len(self.objects):
            raise ValueError(f"query_index {self.query_index} out of range for {len(self.objects)} objects")

    def object_meshes_world(self) -> list[Mesh]:
        return [obj.mesh_world() for obj in self.objects]

    def with_depth_noise(self, noise: DepthNoiseConfig | None) -> "SyntheticScene":
        """The same scene seen through another depth sensor model (None: exact depth)."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, depth_noise=noise))

    @functools.cached_property
    def sensor_depths(self) -> tuple[np.ndarray, ...]:
        """Per camera the [H, W] float32 depth (metres, 0 = no reading) the views carry: the
        render's exact depth when config.depth_noise is None (the same array), else the sensor
        model's image (sensor.py), from the depth camera moved by the model's time offset x velocity
        when that is non-zero. Computed once per scene object."""
        noise = self.config.depth_noise
        if noise is None:
            return tuple(render.depth for render in self.renders)
        depths = []
        motion = noise.camera_motion_m
        for k, (camera, render) in enumerate(zip(self.cameras, self.renders)):
            exact = render.depth
            if np.any(motion != 0):
                moved_from_camera = np.eye(4)
                moved_from_camera[:3, 3] = -motion
                moved = SceneCamera(camera.intrinsics, moved_from_camera @ camera.camera_from_world)
                exact = render_scene_camera(self.table, self.objects, moved, self.room, self.light).depth
            sensed = simulate_depth(exact, render.rgb, render.instance_ids, camera.intrinsics, noise, self.seed, k)
            depths.append(sensed.depth)
        return tuple(depths)

    def views(self) -> list[View]:
        """One View per camera; masks [N_objects, H, W] in object order (possibly empty masks).

        depth: ``sensor_depths`` (exact unless config.depth_noise is set). frame_id is
        "cam{k}_optical_frame"; camera_from_reference maps camera-0 coordinates into camera k
        (identity for k = 0).
        """
        reference_from_world = self.cameras[0].camera_from_world
        world_from_reference = np.linalg.inv(reference_from_world)
        views = []
        for k, (camera, render, depth) in enumerate(zip(self.cameras, self.renders, self.sensor_depths)):
            masks = render.instance_ids[None] == np.arange(len(self.objects))[:, None, None]
            views.append(
                View(
                    rgb=render.rgb,
                    depth=depth,
                    intrinsics=camera.intrinsics,
                    masks=masks,
                    frame_id=f"cam{k}_optical_frame",
                    stamp_ns=0,
                    camera_from_reference=np.eye(4) if k == 0 else camera.camera_from_world @ world_from_reference,
                )
            )
        return views


def _scene_meshes(table: TableSpec, objects: tuple[WorldObject, ...], room: Room | None):
    """(meshes, colors [M, 3], albedo functions or None) of objects, table and room, in that order."""
    meshes = [obj.mesh_world() for obj in objects] + [table.mesh()]
    colors = [obj.color for obj in objects] + [table.color]
    textures = [world_albedo(obj.texture, obj.world_from_object) if obj.texture else None for obj in objects]
    textures.append(world_albedo(table.texture) if table.texture else None)
    if room is not None:
        meshes += list(room.meshes())
        colors += [room.floor_texture.color, room.wall_texture.color]
        textures += [world_albedo(room.floor_texture), world_albedo(room.wall_texture)]
    return meshes, np.array(colors), textures if any(t is not None for t in textures) else None


def _scene_ids(mesh_ids: np.ndarray, count: int) -> np.ndarray:
    """Mesh indices of _scene_meshes -> scene instance ids (objects, TABLE_ID, BACKGROUND_ID for the room)."""
    return np.where(mesh_ids == count, TABLE_ID, np.where(mesh_ids > count, BACKGROUND_ID, mesh_ids)).astype(np.int32)


def render_scene_camera(
    table: TableSpec,
    objects: tuple[WorldObject, ...],
    camera: SceneCamera,
    room: Room | None = None,
    light: PointLight | None = None,
) -> RenderResult:
    """Render objects + table (+ room) into one camera with scene instance ids (object index,
    TABLE_ID, BACKGROUND_ID); textures and the lamp's shadows included."""
    meshes, colors, textures = _scene_meshes(table, objects, room)
    result = render_meshes(meshes, colors, camera.intrinsics, camera.camera_from_world, albedo_functions=textures, light=light)
    return dataclasses.replace(result, instance_ids=_scene_ids(result.instance_ids, len(objects)))


def scene_instance_ids(table: TableSpec, objects: tuple[WorldObject, ...], camera: SceneCamera, room: Room | None = None) -> np.ndarray:
    """[H, W] int32 scene instance ids exactly as render_scene_camera gives them, without shading."""
    meshes, _, _ = _scene_meshes(table, objects, room)
    return _scene_ids(render_instance_ids(meshes, camera.intrinsics, camera.camera_from_world), len(objects))


def _random_table_color(rng: np.random.Generator) -> tuple[float, float, float]:
    rgb = colorsys.hsv_to_rgb(rng.uniform(0.05, 0.12), rng.uniform(0.3, 0.6), rng.uniform(0.45, 0.75))
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


def _posed_vertices(mesh: Mesh, rotation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(q_wxyz [4], [V, 3] float64 rotated vertices). The Pose's own matrix (from the stored
    quaternion) rotates the mesh, so the stored pose and the rendered geometry agree to float precision."""
    q = rotation_matrix_to_wxyz(rotation)
    return q, mesh.vertices.astype(np.float64) @ Pose(rotation_wxyz=q).rotation_matrix.T


def surface_samples(vertices: np.ndarray, faces: np.ndarray, spacing: float = _SAMPLE_SPACING) -> np.ndarray:
    """[P, 3] float64 points on a triangle mesh: its vertices, face centroids and points at most
    ``spacing`` metres apart along every edge (deterministic, so placements are reproducible)."""
    vertices = np.asarray(vertices, dtype=np.float64)
    edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    edges = np.unique(edges, axis=0)
    a, b = vertices[edges[:, 0]], vertices[edges[:, 1]]
    pieces = np.maximum(np.ceil(np.linalg.norm(b - a, axis=1) / spacing).astype(np.int64), 1)
    owner = np.repeat(np.arange(len(edges)), pieces - 1)  # interior points of each edge
    step = np.arange(len(owner)) - np.repeat(np.cumsum(pieces - 1) - (pieces - 1), pieces - 1) + 1
    fraction = (step / pieces[owner])[:, None]
    along = a[owner] * (1 - fraction) + b[owner] * fraction
    return np.concatenate([vertices, vertices[faces].mean(axis=1), along])


def _raycaster(meshes: list[tuple[np.ndarray, np.ndarray]]) -> tuple[o3d.t.geometry.RaycastingScene, list[int]]:
    """Ray-casting scene of (vertices, faces) meshes and the open3d geometry id of each."""
    scene = o3d.t.geometry.RaycastingScene()
    ids = [
        int(scene.add_triangles(o3d.core.Tensor(v.astype(np.float32)), o3d.core.Tensor(f.astype(np.uint32))))
        for v, f in meshes
    ]
    return scene, ids


def _cast(scene: o3d.t.geometry.RaycastingScene, points: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(t [P] metres to the first hit along the unit direction, inf for none; geometry id [P])."""
    if len(points) == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    rays = np.concatenate([points, np.broadcast_to(direction, points.shape)], axis=1).astype(np.float32)
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    return hits["t_hit"].numpy().astype(np.float64), hits["geometry_ids"].numpy().astype(np.int64)


def _inside(scene: o3d.t.geometry.RaycastingScene, points: np.ndarray) -> np.ndarray:
    """[P] bool: points inside the scene's closed meshes (ray parity, majority of 3 rays)."""
    if len(points) == 0:
        return np.zeros(0, dtype=bool)
    return scene.compute_occupancy(o3d.core.Tensor(points.astype(np.float32)), nsamples=3).numpy() > 0.5


@dataclass
class _Placed:
    """Bookkeeping of one placed object: world vertices (float64), samples, footprint, the indices
    of the placed objects it rests on (supports) and of those it touches when placed."""

    obj: WorldObject
    vertices: np.ndarray
    faces: np.ndarray
    samples: np.ndarray
    footprint: np.ndarray
    supports: tuple[int, ...] = ()
    touches: tuple[int, ...] = ()

    @property
    def on_table(self) -> bool:
        return self.vertices[:, 2].min() < 1e-6


class _Travel(NamedTuple):
    """Result of _Candidate.travel: the free distance (metres, inf if nothing is in the way) and,
    per sample, how far it could go: the candidate's samples [P, 3] (at the start) with t_own [P]
    and the index into ``placed`` of what they hit (-1 none); the placed objects' samples with
    t_other (towards the candidate) and their owners."""

    distance: float
    own_points: np.ndarray
    t_own: np.ndarray
    own_owner: np.ndarray
    other_points: np.ndarray
    t_other: np.ndarray
    other_owner: np.ndarray

    def contacts(self, tolerance: float) -> tuple[np.ndarray, set[int]]:
        """Samples (both sides, [C, 3] at the start position) within tolerance of the first contact
        and the placed objects they belong to or hit."""
        own, other = self.t_own <= self.distance + tolerance, self.t_other <= self.distance + tolerance
        owners = {int(o) for o in self.own_owner[own] if o >= 0} | {int(o) for o in self.other_owner[other]}
        return np.concatenate([self.own_points[own], self.other_points[other]]), owners


class _Candidate:
    """An object being placed: rotated vertices (object origin at the world origin) and samples."""

    def __init__(self, mesh: Mesh, q: np.ndarray, rotated: np.ndarray, samples=None, centre_of_mass=None) -> None:
        self.mesh, self.q, self.rotated = mesh, q, rotated
        self.samples = surface_samples(rotated, mesh.faces) if samples is None else samples
        self.centre_of_mass = volume_centroid(Mesh(rotated, mesh.faces)) if centre_of_mass is None else centre_of_mass
        self.radius = float(np.linalg.norm(rotated[:, :2], axis=1).max())

    def perturbed(self, rotation: np.ndarray | None = None, shift: np.ndarray | None = None) -> "_Candidate":
        """The candidate turned by a [3, 3] rotation about its centre of mass and / or shifted by [3]
        metres (a probe for the stability test; its q is not updated)."""
        com = self.centre_of_mass
        rotation = np.eye(3) if rotation is None else rotation
        shift = np.zeros(3) if shift is None else shift
        move = lambda points: (points - com) @ rotation.T + com + shift  # noqa: E731
        return _Candidate(self.mesh, self.q, move(self.rotated), move(self.samples), com + shift)

    def moved(self, translation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(vertices, samples) in the world at the given translation."""
        return self.rotated + translation, self.samples + translation

    def travel(self, translation: np.ndarray, direction: np.ndarray, placed: list[_Placed], obstacles) -> "_Travel":
        """How far the candidate, at the given translation, can move along the unit direction
        before it touches a placed object (obstacles: _raycaster of the placed meshes)."""
        scene, geometry_ids = obstacles
        vertices, samples = self.moved(translation)
        t_own, hit_geometry = _cast(scene, samples, direction)
        lookup = np.full(max(geometry_ids) + 2, -1, dtype=np.int64)
        lookup[geometry_ids] = np.arange(len(geometry_ids))
        own_owner = np.where(hit_geometry < len(lookup) - 1, lookup[np.minimum(hit_geometry, len(lookup) - 1)], -1)
        own_scene, _ = _raycaster([(vertices, self.mesh.faces)])
        other_points = np.concatenate([p.samples for p in placed])
        other_owner = np.concatenate([np.full(len(p.samples), i) for i, p in enumerate(placed)])
        t_other, _ = _cast(own_scene, other_points, -direction)
        distance = min(t_own.min(initial=math.inf), t_other.min(initial=math.inf))
        return _Travel(distance, samples, t_own, own_owner, other_points, t_other, other_owner)

    def penetrates(self, translation: np.ndarray, placed: list[_Placed], obstacles) -> bool:
        """True if a sample of the candidate lies inside a placed object or vice versa."""
        vertices, samples = self.moved(translation)
        if _inside(obstacles[0], samples).any():
            return True
        own_scene, _ = _raycaster([(vertices, self.mesh.faces)])
        lo, hi = vertices.min(0) - 1e-3, vertices.max(0) + 1e-3
        near = [p.samples[np.all((p.samples >= lo) & (p.samples <= hi), axis=1)] for p in placed]
        return bool(_inside(own_scene, np.concatenate(near)).any()) if near else False


def _inside_table(footprint: np.ndarray, table_half: np.ndarray) -> bool:
    return not np.any(np.abs(footprint) > table_half - _TABLE_EDGE_MARGIN)


def _place_beside(rng, config, candidate: _Candidate, placed: list[_Placed], obstacles, table_half) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """Translation [3] sliding the candidate (on the table) against a random table-standing object
    and the objects it then touches, or None."""
    neighbours = [i for i, p in enumerate(placed) if p.on_table]
    if not neighbours:
        return None
    lift = -candidate.rotated[:, 2].min()
    for _ in range(_TOUCH_ATTEMPTS):
        # 1. Start on a circle around the neighbour that clears it, with a free footprint.
        target = placed[int(rng.choice(neighbours))]
        centre = (target.footprint.min(0) + target.footprint.max(0)) / 2
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([math.cos(angle), math.sin(angle), 0.0])
        reach = float(np.linalg.norm(target.footprint - centre, axis=1).max()) + candidate.radius + 0.01
        start = np.array([centre[0], centre[1], lift]) + reach * direction
        hull = _footprint(candidate.rotated[:, :2]) + start[:2]
        if any(_separation(hull, p.footprint) <= 0 for p in placed):
            continue
        # 2. Slide back towards it until the first contact, less the contact gap.
        slide = candidate.travel(start, -direction, placed, obstacles)
        if not math.isfinite(slide.distance) or slide.distance < config.contact_gap:
            continue
        translation = start - (slide.distance - config.contact_gap) * direction
        if not _inside_table(_footprint(candidate.rotated[:, :2]) + translation[:2], table_half):
            continue
        if candidate.penetrates(translation, placed, obstacles):
            continue
        return translation, tuple(sorted(slide.contacts(_CONTACT_TOLERANCE)[1]))
    return None


def _drop(candidate: _Candidate, xy: np.ndarray, top: float, placed: list[_Placed], obstacles) -> tuple[np.ndarray, _Travel, float]:
    """Drop the candidate from just above ``top`` (metres) at horizontal offset xy onto the placed
    objects. Returns (start translation [3], the fall until the first contact with an object,
    the fall until the table)."""
    start = np.array([xy[0], xy[1], top + 0.01 - candidate.rotated[:, 2].min()])
    fall = candidate.travel(start, np.array([0.0, 0.0, -1.0]), placed, obstacles)
    return start, fall, float(start[2] + candidate.rotated[:, 2].min())


def _settled_height(candidate: _Candidate, xy: np.ndarray, top: float, placed: list[_Placed], obstacles) -> float:
    """Height (metres) of the centre of mass once the candidate, dropped at xy, lands on anything."""
    start, fall, to_table = _drop(candidate, xy, top, placed, obstacles)
    return float(start[2] - min(fall.distance, to_table) + candidate.centre_of_mass[2])


def _rests_stably(candidate: _Candidate, xy: np.ndarray, top: float, placed: list[_Placed], obstacles) -> bool:
    """True if no small tilt (4 deg about its centre of mass) or shift (4 mm) of the dropped candidate
    lets it settle lower: its pose is a local minimum of potential energy, so it would neither tip
    over nor roll off (a tall object balanced on a ball fails; a ball in a bowl passes)."""
    rest = _settled_height(candidate, xy, top, placed, obstacles)
    probes = [candidate.perturbed(rotation=rotation_about(axis, sign * 4.0)) for axis in "xy" for sign in (-1, 1)]
    probes += [candidate.perturbed(shift=0.004 * np.array([math.cos(a), math.sin(a), 0.0])) for a in np.arange(4) * np.pi / 2]
    return all(_settled_height(probe, xy, top, placed, obstacles) >= rest - 2e-4 for probe in probes)


def _place_on_top(rng, config, candidate: _Candidate, placed: list[_Placed], obstacles, table_half) -> tuple[np.ndarray, tuple[int, ...], bool] | None:
    """Translation dropping the candidate onto a random placed object (mostly into a container that fits),
    its supports and whether it ended inside a container; None if no stable spot was found."""
    # Upright open containers wide enough for the candidate (its footprint within 80 % of theirs).
    containers = [
        i
        for i, p in enumerate(placed)
        if p.obj.shape.kind in CONTAINER_KINDS
        and p.obj.resting == "upright"
        and candidate.radius < 0.4 * float((p.footprint.max(0) - p.footprint.min(0)).min())
    ]
    top = max(p.vertices[:, 2].max() for p in placed)
    for _ in range(_TOUCH_ATTEMPTS):
        # 1. Above a random support, a little off its centre (right over an open container's middle).
        use_container = containers and rng.random() < 0.7
        index = int(rng.choice(containers)) if use_container else int(rng.integers(len(placed)))
        support = placed[index]
        if support.obj.shape.kind in CONTAINER_KINDS:
            axis = support.obj.world_from_object.apply(np.zeros((1, 3)))[0, :2]  # body axis (a mug's handle is off-centre)
            xy = axis + rng.normal(0, 0.003, size=2)
        else:
            centre = (support.footprint.min(0) + support.footprint.max(0)) / 2
            xy = centre + rng.uniform(-0.25, 0.25, size=2) * (support.footprint.max(0) - support.footprint.min(0)) / 2
        xy = xy - candidate.centre_of_mass[:2]
        # 2. Drop it: first contact with an object, unless the table comes first.
        start, fall, to_table = _drop(candidate, xy, top, placed, obstacles)
        if not math.isfinite(fall.distance) or fall.distance >= to_table - _CONTACT_TOLERANCE:
            continue
        translation = start - np.array([0.0, 0.0, fall.distance - config.contact_gap])
        if not _inside_table(_footprint(candidate.rotated[:, :2]) + translation[:2], table_half):
            continue
        # 3. Supported: the centre of mass lies over the hull of the contact points (both sides'),
        #    and no small tilt or shift would let it settle lower.
        contacts, owners = fall.contacts(_CONTACT_TOLERANCE)
        if not _supported((candidate.centre_of_mass + translation)[:2], contacts[:, :2]):
            continue
        if candidate.penetrates(translation, placed, obstacles) or not _rests_stably(candidate, xy, top, placed, obstacles):
            continue
        lowest = translation[2] + candidate.rotated[:, 2].min()
        inside = any(
            placed[o].obj.shape.kind in CONTAINER_KINDS and lowest < placed[o].vertices[:, 2].max() - _CONTACT_TOLERANCE
            for o in owners
        )
        return translation, tuple(sorted(owners)), inside
    return None


def _supported(centre_xy: np.ndarray, contacts_xy: np.ndarray) -> bool:
    """Centre of mass at least _STABILITY_MARGIN inside the convex hull of the contact points."""
    if len(contacts_xy) < 3:
        return False
    try:
        hull = ConvexHull(contacts_xy)
    except QhullError:  # collinear contacts: a line cannot hold an object up
        return False
    return bool(np.all(hull.equations[:, :2] @ centre_xy + hull.equations[:, 2] <= -_STABILITY_MARGIN))


def _place_objects(rng: np.random.Generator, config: WorldConfig, table: TableSpec) -> list[_Placed]:
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    half = config.cluster_half_size + config.cluster_half_size_per_object * count
    table_half = np.array([table.size_x, table.size_y]) / 2
    centre = rng.uniform(-(table_half - half).clip(0), (table_half - half).clip(0))
    touching = config.beside_probability + config.stack_probability > 0
    kinds = config.kinds
    placed: list[_Placed] = []
    for _ in range(count):
        kind = str(rng.choice(kinds))
        shape = sample_shape(rng, kind, config.size_range(kind))
        color = random_color(rng)
        resting, rest_rotation = _resting_rotation(rng, kind, config.lying_probability)
        mesh = shape.mesh(config.segments)
        result = None
        # 1. Touching placements (realistic world only: the idealised one draws no extra numbers).
        if touching and placed:
            choice = rng.random()
            mode = None
            if choice < config.beside_probability:
                mode = "beside"
            elif choice < config.beside_probability + config.stack_probability:
                mode = "stacked"
            if mode is not None:
                q, rotated = _posed_vertices(mesh, rotation_about("z", float(rng.uniform(0, 360))) @ rest_rotation)
                candidate = _Candidate(mesh, q, rotated)
                obstacles = _raycaster([(p.vertices, p.faces) for p in placed])
                if mode == "beside":
                    found = _place_beside(rng, config, candidate, placed, obstacles, table_half)
                    result = None if found is None else (q, rotated, found[0], (), "beside", found[1])
                else:
                    found = _place_on_top(rng, config, candidate, placed, obstacles, table_half)
                    result = None if found is None else (q, rotated, found[0], found[1], "inside" if found[2] else "stacked", found[1])
        # 2. A free spot on the table, at least min_gap from every footprint.
        if result is None:
            for _attempt in range(config.max_placement_attempts):
                q, posed = _posed_vertices(mesh, rotation_about("z", float(rng.uniform(0, 360))) @ rest_rotation)
                xy = centre + rng.uniform(-half, half, size=2)
                hull = _footprint(posed[:, :2]) + xy
                if np.any(np.abs(hull) > table_half - _TABLE_EDGE_MARGIN):
                    continue
                if any(_separation(hull, other.footprint) < config.min_gap for other in placed):
                    continue
                result = (q, posed, np.array([xy[0], xy[1], -posed[:, 2].min()]), (), "table", ())
                break
        if result is None:
            continue
        q, rotated, translation, supports, placement, touches = result
        obj = WorldObject(shape, color, Pose(translation, q, 1.0), resting, mesh, placement=placement)
        vertices = rotated + translation
        samples = surface_samples(vertices, mesh.faces) if touching else np.zeros((0, 3))
        placed.append(_Placed(obj, vertices, mesh.faces, samples, _footprint(vertices[:, :2]), supports, touches))
    if not placed:  # the first object always fits (empty table, cluster inside the table); guard anyway
        raise RuntimeError(f"could not place any object (table {table}, cluster half-size {half:.3f} m)")
    return placed


def _sample_camera(
    rng: np.random.Generator, config: WorldConfig, corners_world: np.ndarray, target: np.ndarray, truncate: bool = False
) -> tuple[SceneCamera, bool, bool]:
    """A random look-at camera, whether every object corner projects inside the image and whether
    every corner lies in front of it. truncate: come closer than the distance that frames all."""
    fov_x = math.radians(rng.uniform(*config.fov_deg_range))
    width, height = config.image_width, config.image_height
    fx = (width / 2) / math.tan(fov_x / 2)
    intrinsics = CameraIntrinsics(fx, fx, (width - 1) / 2, (height - 1) / 2, width, height)
    half_fov = min(fov_x, 2 * math.atan((height / 2) / fx)) / 2
    radius = float(np.linalg.norm(corners_world - target, axis=1).max())
    near, far = config.distance_range
    needed = 1.05 * radius / math.sin(half_fov)
    zoom = rng.uniform(*config.truncation_zoom_range) if truncate else rng.uniform(1.0, 1.4)
    distance = float(np.clip(needed * zoom, near, far))
    elevation = math.radians(rng.uniform(*config.elevation_deg_range))
    azimuth = rng.uniform(0, 2 * math.pi)
    direction = np.array([math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)])
    camera = SceneCamera(intrinsics, look_at(target + distance * direction, target))
    corners_camera = transform_points(camera.camera_from_world, corners_world)
    if np.any(corners_camera[:, 2] < 0.05):
        return camera, False, False
    uv = project_points(corners_camera, intrinsics)
    inside = np.all((uv >= -0.5) & (uv <= np.array([width - 0.5, height - 0.5])))
    return camera, bool(inside), True


def _object_corners(objects: list[WorldObject]) -> np.ndarray:
    """[8 * N, 3] world corners of the objects' object-frame bounding boxes."""
    corners = []
    for obj in objects:
        lo, hi = obj.mesh.bounds()
        box = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])])
        corners.append(obj.world_from_object.apply(box))
    return np.concatenate(corners)


def _visible_counts(ids: np.ndarray, count: int) -> np.ndarray:
    """[count] int pixels of each object in [H, W] scene instance ids."""
    return np.bincount(ids[ids >= 0], minlength=count)


def _choose_cameras(rng, config, table, objects, corners, target, room) -> list[SceneCamera]:
    """Draw every camera (WorldConfig docstring); candidates are judged on instance ids alone."""
    cameras = []
    min_pixels = config.min_visible_fraction * config.image_width * config.image_height
    for k in range(config.num_cameras):
        best: tuple[int, SceneCamera] | None = None
        for attempt in range(config.max_camera_attempts):
            last = attempt == config.max_camera_attempts - 1
            truncate = config.truncation_probability > 0 and not last and rng.random() < config.truncation_probability
            camera, in_frame, in_front = _sample_camera(rng, config, corners, target, truncate)
            if not (in_frame or (truncate and in_front)) and not last:
                continue
            if k > 0 and not config.visible_in_all_cameras:
                best = (0, camera)
                break
            counts = _visible_counts(scene_instance_ids(table, tuple(objects), camera, room), len(objects))
            if best is None or counts.min() > best[0]:
                best = (int(counts.min()), camera)
            if counts.min() >= min_pixels:
                break
        cameras.append(best[1])
    return cameras


def generate_scene(seed: int, config: WorldConfig = WorldConfig()) -> SyntheticScene:
    """Build, place, photograph and order one random scene; the same (seed, config) gives the same scene."""
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    rng = np.random.default_rng(seed)
    # Textures, room and lamp come from their own stream, so they change no geometry draw.
    looks = np.random.default_rng([seed, 1])
    # 1. Table and objects.
    table = TableSpec(
        size_x=float(rng.uniform(*config.table_size_x_range)),
        size_y=float(rng.uniform(*config.table_size_y_range)),
        thickness=config.table_thickness,
        color=_random_table_color(rng),
    )
    placed = _place_objects(rng, config, table)
    objects = [p.obj for p in placed]
    corners = _object_corners(objects)
    # Aim at the objects' middle with a little jitter so the cluster is not always centred.
    target = (corners.min(0) + corners.max(0)) / 2 + np.append(rng.normal(0, 0.02, size=2), 0.0)

    # 2. Appearance: textures, room, lamp.
    if config.texture_probability > 0:
        table = dataclasses.replace(table, texture=sample_table_texture(looks, table.color, config.texture_probability))
        objects = [dataclasses.replace(o, texture=sample_object_texture(looks, o.color, config.texture_probability)) for o in objects]
    room = sample_room(looks, np.array([table.size_x, table.size_y]) / 2) if config.background == "room" else None
    light = sample_lamp(looks, target) if config.shadows else None

    # 3. Cameras; every object must show (WorldConfig docstring).
    cameras = _choose_cameras(rng, config, table, objects, corners, target, room)
    if config.visible_in_all_cameras:
        min_pixels = config.min_visible_fraction * config.image_width * config.image_height
        seen = np.min([_visible_counts(scene_instance_ids(table, tuple(objects), c, room), len(objects)) for c in cameras], axis=0)
        carrying = {s for p in placed for s in p.supports}
        keep = [i for i in range(len(objects)) if seen[i] >= min_pixels or i in carrying]
        if 0 < len(keep) < len(objects):
            # Hidden objects leave the scene; nothing rests on them, and without them the others
            # only become more visible. An object slid against removed ones alone now just stands.
            objects = [
                dataclasses.replace(objects[i], placement="table")
                if objects[i].placement == "beside" and not set(placed[i].touches) & set(keep)
                else objects[i]
                for i in keep
            ]
    renders = [render_scene_camera(table, tuple(objects), c, room, light) for c in cameras]

    # 4. Pipeline order: decreasing mask area in camera 0 (stable), instance ids relabelled.
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
        room=room,
        light=light,
    )


__all__ = [
    "WorldConfig",
    "TableSpec",
    "WorldObject",
    "SceneCamera",
    "SyntheticScene",
    "generate_scene",
    "render_scene_camera",
    "scene_instance_ids",
    "surface_samples",
    "PLACEMENTS",
    "BACKGROUNDS",
    "TABLE_ID",
    "BACKGROUND_ID",
]
