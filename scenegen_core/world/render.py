"""Ray-cast rendering of triangle meshes with open3d's ``RaycastingScene`` (CPU, exact geometry).

Camera model: the pinhole of ``CameraIntrinsics`` in the ROS optical frame (x right, y down,
z forward, metres). The ray of pixel (u, v) (column, row; the centre of the top-left pixel is
(0, 0)) has camera-frame direction ((u - cx) / fx, (v - cy) / fy, 1), so the ray parameter at a
hit equals the hit's z in the camera frame: ``depth`` is z-depth (as in ROS depth images), not the
distance along the ray.

Shading: Lambert with a head-light (light at the camera) plus ambient, flat per triangle:
rgb = albedo * (ambient + (1 - ambient) * |n . ray|). It needs no notion of "up", so the same
function renders world-frame scenes and camera-frame overlays. With a ``PointLight`` (a lamp in
the meshes' frame) a share of the non-ambient light comes from the lamp instead, with cast
shadows (one shadow ray per lit pixel): rgb = albedo * (ambient + (1 - ambient) * ((1 - share) *
|n . ray| + share * visible * max(0, n_f . l))), where n_f is the normal turned towards the
camera, l the unit direction to the lamp and visible 0 when another surface lies in between.
Albedo: one colour per mesh, interpolated vertex colours, or a function of the hit point (for
procedural textures, see ``appearance.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import open3d as o3d

from scenegen_core.geometry import backproject_depth, pixel_rays, project_points  # noqa: F401  (re-exported for world users)
from scenegen_core.types import CameraIntrinsics, Mesh
from scenegen_core.world.transforms import check_rigid

BACKGROUND_ID = -1
DEFAULT_BACKGROUND_RGB = (0.62, 0.66, 0.72)
_DEFAULT_ALBEDO = (0.7, 0.7, 0.7)
# Shadow rays start this far (metres) off the surface, towards the camera side, so that a surface
# does not shadow itself through float32 rounding of the hit point ("shadow acne").
_SHADOW_RAY_OFFSET = 2e-4

AlbedoFunction = Callable[[np.ndarray], np.ndarray]
"""Maps [N, 3] float64 hit points (the meshes' frame, metres) to [N, 3] float RGB in [0, 1]."""


@dataclass(frozen=True)
class PointLight:
    """A lamp casting shadows: position [3] in the meshes' frame (metres); share in [0, 1] of the
    non-ambient light that comes from it (the rest stays a head-light fill, see module docstring)."""

    position: tuple[float, float, float]
    share: float = 0.7

    def __post_init__(self) -> None:
        position = tuple(float(c) for c in self.position)
        if len(position) != 3 or not all(np.isfinite(position)):
            raise ValueError(f"light position must be 3 finite numbers, got {self.position}")
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"light share must be in [0, 1], got {self.share}")
        object.__setattr__(self, "position", position)


@dataclass(frozen=True)
class RenderResult:
    """One rendered view.

    rgb: [H, W, 3] uint8. depth: [H, W] float32, metres, z in the camera optical frame, 0 where
    the ray hit nothing. instance_ids: [H, W] int32, for ``render_meshes`` the index of the hit
    mesh in its ``meshes`` list and -1 (BACKGROUND_ID) for no hit (scene renders re-label these,
    see ``scene.py``).
    """

    rgb: np.ndarray
    depth: np.ndarray
    instance_ids: np.ndarray

    def __post_init__(self) -> None:
        rgb = np.asarray(self.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        shape = rgb.shape[:2]
        depth = np.asarray(self.depth, dtype=np.float32)
        ids = np.asarray(self.instance_ids)
        if depth.shape != shape or ids.shape != shape:
            raise ValueError(f"depth {depth.shape} / instance_ids {ids.shape} must match rgb {shape}")
        if ids.dtype != np.int32:
            raise ValueError(f"instance_ids must be int32, got {ids.dtype}")
        object.__setattr__(self, "depth", depth)

    def mask(self, instance_id: int) -> np.ndarray:
        """[H, W] bool pixels showing that instance."""
        return self.instance_ids == instance_id


def _cast_pixels(meshes: Sequence[Mesh], intrinsics: CameraIntrinsics, camera_from_world: np.ndarray):
    """Cast one ray per pixel centre into the meshes (world frame).

    Returns (open3d scene, its hits dict, ray origins and directions [H, W, 3] float64 in the
    world frame (unit camera-frame z), instance_ids [H, W] int32: index into meshes or
    BACKGROUND_ID).
    """
    # 1. Build the BVH; remember which open3d geometry id belongs to which input mesh.
    scene = o3d.t.geometry.RaycastingScene()
    mesh_of_geometry: dict[int, int] = {}
    for index, mesh in enumerate(meshes):
        if mesh.is_empty:
            continue
        geometry_id = scene.add_triangles(
            o3d.core.Tensor(mesh.vertices, dtype=o3d.core.float32),
            o3d.core.Tensor(mesh.faces.astype(np.uint32), dtype=o3d.core.uint32),
        )
        mesh_of_geometry[int(geometry_id)] = index

    # 2. One ray per pixel centre, expressed in the world frame.
    world_from_camera = np.linalg.inv(camera_from_world)
    directions = pixel_rays(intrinsics) @ world_from_camera[:3, :3].T
    origins = np.broadcast_to(world_from_camera[:3, 3], directions.shape)
    rays = np.concatenate([origins, directions], axis=-1).astype(np.float32)
    hits = scene.cast_rays(o3d.core.Tensor(rays))
    hit = np.isfinite(hits["t_hit"].numpy())

    geometry_ids = hits["geometry_ids"].numpy().astype(np.int64)
    lookup = np.full(max(mesh_of_geometry, default=-1) + 2, BACKGROUND_ID, dtype=np.int32)
    for geometry_id, index in mesh_of_geometry.items():
        lookup[geometry_id] = index
    instance_ids = np.where(hit, lookup[np.where(hit, geometry_ids, -1)], BACKGROUND_ID).astype(np.int32)
    return scene, hits, origins, directions, instance_ids


def render_instance_ids(meshes: Sequence[Mesh], intrinsics: CameraIntrinsics, camera_from_world: np.ndarray) -> np.ndarray:
    """[H, W] int32 instance ids exactly as ``render_meshes`` gives them, without shading (cheaper)."""
    return _cast_pixels(meshes, intrinsics, check_rigid(camera_from_world))[4]


def render_meshes(
    meshes: Sequence[Mesh],
    colors: np.ndarray | Sequence[Sequence[float]] | None,
    intrinsics: CameraIntrinsics,
    camera_from_world: np.ndarray,
    *,
    background_rgb: Sequence[float] = DEFAULT_BACKGROUND_RGB,
    ambient: float = 0.35,
    albedo_functions: Sequence[AlbedoFunction | None] | None = None,
    light: PointLight | None = None,
) -> RenderResult:
    """Ray-cast meshes given in one common frame ("world") into a pinhole camera.

    meshes: triangle meshes, vertices in metres in the world frame (empty meshes are allowed and
    never hit). colors: [N, 3] float RGB in [0, 1], one albedo per mesh, or None to interpolate
    each mesh's vertex_colors (grey where a mesh has none). camera_from_world: [4, 4] rigid
    transform world -> camera optical frame (use the identity for camera-frame meshes).
    background_rgb: RGB in [0, 1] where nothing is hit. ambient: share of light independent of
    the surface orientation, in [0, 1]. albedo_functions: None, or one entry per mesh: a function
    of the hit points (``AlbedoFunction``) that replaces that mesh's colour, or None to keep it.
    light: None for the head-light alone, or a lamp with cast shadows (module docstring).
    """
    camera_from_world = check_rigid(camera_from_world)
    if colors is not None:
        colors = np.asarray(colors, dtype=np.float64)
        if colors.shape != (len(meshes), 3):
            raise ValueError(f"colors must be [{len(meshes)}, 3] (one RGB per mesh), got {colors.shape}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient must be in [0, 1], got {ambient}")
    if albedo_functions is not None and len(albedo_functions) != len(meshes):
        raise ValueError(f"albedo_functions must have one entry per mesh ({len(meshes)}), got {len(albedo_functions)}")

    # 1-2. BVH and one ray per pixel centre (``_cast_pixels``).
    scene, hits, origins, directions, instance_ids = _cast_pixels(meshes, intrinsics, camera_from_world)
    t_hit = hits["t_hit"].numpy()
    hit = np.isfinite(t_hit)

    # 3. Albedo per pixel: per-mesh colour, or barycentric interpolation of vertex colours.
    albedo = np.empty(hit.shape + (3,), dtype=np.float64)
    albedo[:] = np.asarray(background_rgb, dtype=np.float64)
    if colors is not None:
        albedo[hit] = colors[instance_ids[hit]]
    else:
        primitive_ids = hits["primitive_ids"].numpy().astype(np.int64)
        uvs = hits["primitive_uvs"].numpy().astype(np.float64)
        for index, mesh in enumerate(meshes):
            sel = instance_ids == index
            if not sel.any():
                continue
            if mesh.vertex_colors is None:
                albedo[sel] = _DEFAULT_ALBEDO
                continue
            corners = mesh.vertex_colors[mesh.faces[primitive_ids[sel]]].astype(np.float64)  # [n, 3, 3]
            u, v = uvs[sel, 0:1], uvs[sel, 1:2]
            albedo[sel] = (1 - u - v) * corners[:, 0] + u * corners[:, 1] + v * corners[:, 2]
    if albedo_functions is not None and any(f is not None for f in albedo_functions):
        points = origins + directions * np.where(hit, t_hit, 0.0)[..., None]  # t is the z-depth (unit-z rays)
        for index, function in enumerate(albedo_functions):
            sel = instance_ids == index
            if function is not None and sel.any():
                albedo[sel] = np.clip(function(points[sel]), 0.0, 1.0)

    # 4. Head-light Lambert shading (|cos| so that winding does not matter).
    normals = hits["primitive_normals"].numpy().astype(np.float64)
    unit_dirs = directions / np.linalg.norm(directions, axis=-1, keepdims=True)
    cosine = np.abs(np.einsum("hwc,hwc->hw", normals, unit_dirs))
    if light is None:
        shade = np.where(hit, ambient + (1 - ambient) * np.nan_to_num(cosine), 1.0)
    else:
        lamp = _lamp_term(scene, light, origins + directions * np.where(hit, t_hit, 0.0)[..., None], normals, unit_dirs, hit)
        diffuse = (1 - light.share) * np.nan_to_num(cosine) + light.share * lamp
        shade = np.where(hit, ambient + (1 - ambient) * diffuse, 1.0)
    rgb = np.clip(np.round(255.0 * albedo * shade[..., None]), 0, 255).astype(np.uint8)

    depth = np.where(hit, t_hit, 0.0).astype(np.float32)
    return RenderResult(rgb=rgb, depth=depth, instance_ids=instance_ids)


def _lamp_term(
    scene: "o3d.t.geometry.RaycastingScene",
    light: PointLight,
    points: np.ndarray,
    normals: np.ndarray,
    unit_dirs: np.ndarray,
    hit: np.ndarray,
) -> np.ndarray:
    """[H, W] float64 max(0, n_f . l) where the lamp is visible from the hit point, else 0.

    points / normals / unit_dirs: [H, W, 3] hit points (metres), surface normals and unit view
    rays; hit: [H, W] bool. n_f is the normal flipped to face the camera, so the result does not
    depend on the winding. One shadow ray per pixel that faces the lamp, cast towards it.
    """
    # 1. Facing normal and the (unnormalised) vector to the lamp.
    normals = np.nan_to_num(normals)
    facing = np.where((np.einsum("hwc,hwc->hw", normals, unit_dirs) > 0)[..., None], -normals, normals)
    to_light = np.asarray(light.position, dtype=np.float64) - points
    distance = np.linalg.norm(to_light, axis=-1)
    cosine = np.einsum("hwc,hwc->hw", facing, to_light) / np.maximum(distance, 1e-12)
    lit = hit & (cosine > 0)
    out = np.zeros(hit.shape, dtype=np.float64)
    if not lit.any():
        return out
    # 2. Shadow rays from just off the surface to the lamp: with the unnormalised direction the
    #    lamp sits at t = 1, so anything hit with t < 1 is in between.
    start = points[lit] + _SHADOW_RAY_OFFSET * facing[lit]
    rays = np.concatenate([start, to_light[lit] - _SHADOW_RAY_OFFSET * facing[lit]], axis=-1).astype(np.float32)
    blocked = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy() < 1.0
    out[lit] = np.where(blocked, 0.0, cosine[lit])
    return out


__all__ = [
    "RenderResult",
    "render_meshes",
    "render_instance_ids",
    "PointLight",
    "AlbedoFunction",
    "backproject_depth",
    "project_points",
    "pixel_rays",
    "BACKGROUND_ID",
    "DEFAULT_BACKGROUND_RGB",
]
