"""Exact per-object ground truth of a synthetic scene in SceneGen's conventions.

Canonical asset (TRELLIS / SceneGen): the object in its own upright frame (z up, see shapes.py),
translated so its axis-aligned bounding box is centred at the origin and uniformly scaled so the
longest box side is 1; it therefore fits the [-0.5, 0.5]^3 box. With e = longest side (metres)
and b = box centre (object frame): v = (p_object - b) / e.

Occupancy grid: R^3 voxels over [-0.5, 0.5]^3, index order [x, y, z] (like the decoder's
[X, Y, Z] output and ``argwhere`` coords), voxel c spans [c/R - 0.5, (c+1)/R - 0.5]; it is
occupied ("solid") when its centre (c + 0.5)/R - 0.5 lies inside the closed mesh. The *surface*
variant marks the voxels a triangle passes through, which is what TRELLIS's sparse-structure
data (open3d ``create_from_triangle_mesh_within_bounds``) contains.

Relative poses (SceneGen's position-head targets). SceneGen places the canonical asset v of
object i, with its pose [t, q, s], in the query's scene frame as

    p = s * R(q) * R_x(-90 deg) * v + t,           (query: t = 0, q = identity, s = 1)

so the scene frame is the query's canonical frame turned z-up -> y-up: p = R_x(-90) v_q.
Let W_i = world_from_canonical_i = [e_i R_i | R_i b_i + t_i] (R_i, t_i: world_from_object).
Then scene_from_world = R_x(-90) W_q^-1 and object i's canonical points land at
p = R_x(-90) W_q^-1 W_i v. Equating with the formula above for all v:

    M_i = [s R(q) | t] = R_x(-90) * W_q^-1 * W_i * R_x(+90)
    =>  s = e_i / e_q,
        R(q) = R_x(-90) R_q^T R_i R_x(+90),
        t = R_x(-90) R_q^T (c_i - c_q) / e_q          (c = R b + t: canonical centre in world)

i.e. translations are in units of the query's longest side. ``world_from_scene`` = W_q R_x(+90)
maps SceneGen's scene frame back into metric world coordinates.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import open3d as o3d

from scenegen_core.types import CameraIntrinsics, Mesh, Pose
from scenegen_core.world.render import render_instance_ids
from scenegen_core.world.scene import SyntheticScene
from scenegen_core.world.transforms import rotation_about, transform_points

DEFAULT_RESOLUTION = 64
_OCCUPANCY_RAYS = 3  # odd ray count: majority vote protects against rays grazing an edge

# R_x(-90 deg) as a 4x4: TRELLIS z-up asset -> glTF y-up scene (x, y, z) -> (x, z, -y).
_Z_UP_TO_Y_UP = np.eye(4)
_Z_UP_TO_Y_UP[:3, :3] = rotation_about("x", -90)
_Z_UP_TO_Y_UP[np.abs(_Z_UP_TO_Y_UP) < 1e-15] = 0.0  # exact 0/+-1 entries


@dataclass(frozen=True)
class ObjectGroundTruth:
    """Ground truth of one object.

    mesh_world: closed mesh, metres, world frame. meshes_camera: the same in each camera's
    optical frame (metres), one per camera. world_from_object: rigid pose of the object frame.
    world_from_canonical: similarity canonical box -> world (scale = longest side e, metres).
    canonical_mesh: the normalised mesh inside [-0.5, 0.5]^3, z up. occupancy / surface:
    [R, R, R] bool, index [x, y, z] (module docstring). relative_pose: SceneGen target
    [t, q (w first), s] relative to the query (identity for the query itself).
    """

    index: int
    label: str
    mesh_world: Mesh
    meshes_camera: tuple[Mesh, ...]
    world_from_object: Pose
    world_from_canonical: Pose
    canonical_mesh: Mesh
    occupancy: np.ndarray
    surface: np.ndarray
    relative_pose: Pose


@dataclass(frozen=True)
class SceneGroundTruth:
    """Per-object ground truth (scene object order) plus the query's scene frame.

    world_from_scene: [4, 4] float64 similarity mapping SceneGen's scene frame (the query's
    normalised y-up frame, where relative poses live) to the world frame, metres.
    """

    query_index: int
    resolution: int
    objects: tuple[ObjectGroundTruth, ...]
    world_from_scene: np.ndarray


def canonical_from_object(mesh: Mesh) -> Pose:
    """Similarity object frame -> canonical [-0.5, 0.5]^3 box: v = (p - box centre) / longest side."""
    lo, hi = mesh.bounds()
    extent = float((hi - lo).max())
    if not extent > 0:
        raise ValueError("cannot normalise a mesh with zero extent")
    return Pose(translation=-(lo + hi) / 2 / extent, scale=1.0 / extent)


def _inverse_similarity(pose: Pose) -> np.ndarray:
    rotation = pose.rotation_matrix
    out = np.eye(4)
    out[:3, :3] = rotation.T / pose.scale
    out[:3, 3] = -rotation.T @ pose.translation / pose.scale
    return out


def world_from_canonical(world_from_object: Pose, mesh_object: Mesh) -> Pose:
    """Similarity canonical box -> world for an object (rotation of the object, scale = longest side)."""
    object_from_canonical = _inverse_similarity(canonical_from_object(mesh_object))
    return Pose.from_matrix(world_from_object.matrix @ object_from_canonical)


def scenegen_placement(pose: Pose) -> np.ndarray:
    """[4, 4] float64 matrix of SceneGen's placement p = s R(q) R_x(-90) v + t (canonical -> scene)."""
    return pose.matrix @ _Z_UP_TO_Y_UP


def relative_pose(world_from_canonical_object: Pose, world_from_canonical_query: Pose) -> Pose:
    """SceneGen target [t, q, s] of an object relative to the query (derivation in the module docstring)."""
    scene_from_world = _Z_UP_TO_Y_UP @ _inverse_similarity(world_from_canonical_query)
    placement = scene_from_world @ world_from_canonical_object.matrix @ _Z_UP_TO_Y_UP.T
    return Pose.from_matrix(placement)


def world_from_scene(world_from_canonical_query: Pose) -> np.ndarray:
    """[4, 4] similarity SceneGen scene frame -> world: W_q R_x(+90)."""
    return world_from_canonical_query.matrix @ _Z_UP_TO_Y_UP.T


@functools.lru_cache(maxsize=4)
def voxel_centres(resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """[R, R, R, 3] float32 voxel centres (c + 0.5) / R - 0.5, index [x, y, z] (cached, read-only)."""
    axis = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution - 0.5
    centres = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).astype(np.float32)
    centres.flags.writeable = False
    return centres


def canonical_occupancy(canonical_mesh: Mesh, resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """[R, R, R] bool: voxel centres inside a closed mesh given in the canonical box frame."""
    if canonical_mesh.is_empty:
        raise ValueError("cannot compute the occupancy of an empty mesh")
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(
        o3d.core.Tensor(canonical_mesh.vertices, dtype=o3d.core.float32),
        o3d.core.Tensor(canonical_mesh.faces.astype(np.uint32), dtype=o3d.core.uint32),
    )
    # Only centres inside the mesh's bounding box can be inside the mesh; flat or thin objects
    # touch a small part of the grid, so this skips most of the ray casting.
    centres = voxel_centres(resolution)
    lo, hi = canonical_mesh.bounds()
    candidates = np.all((centres >= lo) & (centres <= hi), axis=-1)
    out = np.zeros((resolution,) * 3, dtype=bool)
    if candidates.any():
        inside = scene.compute_occupancy(o3d.core.Tensor(centres[candidates]), nsamples=_OCCUPANCY_RAYS)
        out[candidates] = inside.numpy() > 0.5
    return out


def canonical_surface_voxels(canonical_mesh: Mesh, resolution: int = DEFAULT_RESOLUTION) -> np.ndarray:
    """[R, R, R] bool: voxels the mesh surface passes through (TRELLIS sparse-structure convention)."""
    vertices = np.clip(canonical_mesh.vertices.astype(np.float64), -0.5 + 1e-6, 0.5 - 1e-6)
    legacy = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(vertices), o3d.utility.Vector3iVector(canonical_mesh.faces))
    grid = o3d.geometry.VoxelGrid.create_from_triangle_mesh_within_bounds(
        legacy, voxel_size=1.0 / resolution, min_bound=np.full(3, -0.5), max_bound=np.full(3, 0.5)
    )
    out = np.zeros((resolution,) * 3, dtype=bool)
    indices = np.array([voxel.grid_index for voxel in grid.get_voxels()], dtype=np.int64).reshape(-1, 3)
    indices = indices[np.all((indices >= 0) & (indices < resolution), axis=1)]
    out[tuple(indices.T)] = True
    return out


def compute_ground_truth(
    scene: SyntheticScene, query_index: int | None = None, resolution: int = DEFAULT_RESOLUTION
) -> SceneGroundTruth:
    """Ground truth of every object; query_index defaults to scene.query_index (0)."""
    query = scene.query_index if query_index is None else int(query_index)
    if not 0 <= query < len(scene.objects):
        raise ValueError(f"query_index {query} out of range for {len(scene.objects)} objects")
    if resolution < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    canonicals = [world_from_canonical(obj.world_from_object, obj.mesh) for obj in scene.objects]
    objects = []
    for index, (obj, w_from_c) in enumerate(zip(scene.objects, canonicals)):
        mesh_world = obj.mesh_world()
        canonical_mesh = obj.mesh.transformed(canonical_from_object(obj.mesh))
        rel = Pose() if index == query else relative_pose(w_from_c, canonicals[query])
        objects.append(
            ObjectGroundTruth(
                index=index,
                label=obj.label,
                mesh_world=mesh_world,
                meshes_camera=tuple(
                    Mesh(transform_points(cam.camera_from_world, mesh_world.vertices), mesh_world.faces)
                    for cam in scene.cameras
                ),
                world_from_object=obj.world_from_object,
                world_from_canonical=w_from_c,
                canonical_mesh=canonical_mesh,
                occupancy=canonical_occupancy(canonical_mesh, resolution),
                surface=canonical_surface_voxels(canonical_mesh, resolution),
                relative_pose=rel,
            )
        )
    return SceneGroundTruth(
        query_index=query,
        resolution=resolution,
        objects=tuple(objects),
        world_from_scene=world_from_scene(canonicals[query]),
    )


def visible_fractions(scene: SyntheticScene, camera: int = 0) -> np.ndarray:
    """[N] float64, per object (scene order): the share of its whole silhouette in that camera that
    its instance mask shows, in [0, 1] (1 - occlusion - truncation).

    The whole silhouette is the object rendered alone through the same pinhole on an image plane
    extended by the image's width and height on every side (3 x 3 images), so the parts cut off by
    the image border count as hidden; an object reaching beyond that plane is credited with less.
    """
    cam = scene.cameras[camera]
    k = cam.intrinsics
    extended = CameraIntrinsics(k.fx, k.fy, k.cx + k.width, k.cy + k.height, 3 * k.width, 3 * k.height)
    shown = np.bincount(scene.renders[camera].instance_ids.ravel().clip(-1) + 1, minlength=len(scene.objects) + 1)[1:]
    whole = np.array(
        [np.sum(render_instance_ids([mesh], extended, cam.camera_from_world) == 0) for mesh in scene.object_meshes_world()]
    )
    return np.divide(shown, whole, out=np.zeros(len(whole)), where=whole > 0)


__all__ = [
    "visible_fractions",
    "ObjectGroundTruth",
    "SceneGroundTruth",
    "compute_ground_truth",
    "canonical_from_object",
    "world_from_canonical",
    "relative_pose",
    "scenegen_placement",
    "world_from_scene",
    "canonical_occupancy",
    "canonical_surface_voxels",
    "voxel_centres",
    "DEFAULT_RESOLUTION",
]
