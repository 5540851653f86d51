"""Collision geometry for planners (MoveIt / FCL) from a generated object mesh and its depth points.

Kinds (`CollisionGeometryConfig.kind`):

* ``mesh``: the generated surface, closed and simplified to the face budget
  (`mesh_ops.simplify_to_face_budget`). When observed points stick out of it, or a padding is
  asked for, the solid (mesh, grown by the padding, united with balls around the observed points)
  is resampled on a grid and meshed again.
* ``convex_hull``: one convex hull of the mesh vertices and the observed points.
* ``convex_decomposition``: CoACD (PyPI ``coacd``) parts of the mesh, at most ``max_parts``; every
  observed point outside all parts joins the hull of its nearest part.
* ``box``: the oriented bounding box (trimesh's minimum-volume box) of the mesh and the points.

Every kind is a set of closed, consistently wound meshes that contains every observed point,
at least `padding_m` inside: planners must never be told a seen surface is free. Hulls are padded
by moving their face planes out by the padding (the result contains the hull grown by a ball of
that radius, and is convex again).

Units and frame: whatever the mesh and points share (the node passes the object frame, metres).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d
import trimesh
from scipy.spatial import HalfspaceIntersection, cKDTree

from scenegen_core.mesh_ops import (
    convex_hull,
    grid_cell_centres,
    grid_to_mesh,
    points_inside,
    signed_distance,
    simplify_to_face_budget,
)
from scenegen_core.types import Mesh, Pose

COLLISION_KINDS = ("mesh", "convex_hull", "convex_decomposition", "box")
# Attempts of `padded_hull` to meet the face budget, each from a smaller vertex subset.
_HULL_TRIES = 6
# Resampling attempts of the ``mesh`` kind, each with larger balls around the observed points.
_RESAMPLE_TRIES = 4
# Points this close outside a surface (fraction of the object's extent: 0.1 mm on 10 cm) count as
# on it: open3d's float32 distances to sliver faces of hulls are off by up to ~5e-5 m.
_SURFACE_TOLERANCE = 1e-3


@dataclass(frozen=True)
class CollisionGeometryConfig:
    """kind: one of COLLISION_KINDS. max_faces: face budget of each part (>= 4). padding_m: margin
    (mesh units, metres in the node) by which the geometry is grown and by which it contains the
    observed points. max_parts: most convex parts of ``convex_decomposition``. concavity: CoACD's
    concavity threshold (fraction of the object's size; smaller gives more, tighter parts).
    grid_cells: cells along the longest side when the ``mesh`` kind is resampled. search_iterations:
    CoACD's MCTS iterations per cut (its default 150; the search dominates its run time, seconds per
    object). seed: CoACD's seed."""

    kind: str = "mesh"
    max_faces: int = 2000
    padding_m: float = 0.0
    max_parts: int = 8
    concavity: float = 0.05
    grid_cells: int = 48
    search_iterations: int = 60
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in COLLISION_KINDS:
            raise ValueError(f"collision kind must be one of {COLLISION_KINDS}, got {self.kind!r}")
        if self.max_faces < 4:
            raise ValueError(f"max_faces must be >= 4 (a tetrahedron), got {self.max_faces}")
        if not self.padding_m >= 0:
            raise ValueError(f"padding_m must be >= 0, got {self.padding_m}")
        if self.max_parts < 1:
            raise ValueError(f"max_parts must be >= 1, got {self.max_parts}")
        if not 0 < self.concavity <= 1:
            raise ValueError(f"concavity must be in (0, 1], got {self.concavity}")
        if self.grid_cells < 8:
            raise ValueError(f"grid_cells must be >= 8, got {self.grid_cells}")
        if self.search_iterations < 1:
            raise ValueError(f"search_iterations must be >= 1, got {self.search_iterations}")


@dataclass(frozen=True)
class OrientedBox:
    """pose: box frame -> the mesh's frame (rigid, scale 1; the box is centred at its origin and
    aligned with its axes). extents: [3] float64 full side lengths (mesh units)."""

    pose: Pose
    extents: np.ndarray


@dataclass(frozen=True)
class CollisionGeometry:
    """kind: the kind built. parts: closed, consistently wound meshes in the input frame (one for
    ``mesh``, ``convex_hull`` and ``box``, up to max_parts for ``convex_decomposition``). box: the
    box as a primitive for ``box`` (planners check primitives fastest), None otherwise."""

    kind: str
    parts: tuple[Mesh, ...]
    box: OrientedBox | None = None


def collision_geometry(mesh: Mesh, observed_points: np.ndarray | None, config: CollisionGeometryConfig) -> CollisionGeometry:
    """Collision geometry of one object (module docstring).

    mesh: closed generated surface; observed_points: [M, 3] depth points of the object in the same
    frame and units, or None. Raises ValueError for an empty mesh or non-finite points.
    """
    if mesh.is_empty:
        raise ValueError("cannot build collision geometry from an empty mesh")
    points = np.zeros((0, 3)) if observed_points is None else np.asarray(observed_points, dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(points)):
        raise ValueError("observed points contain NaN or inf")
    cloud = np.concatenate([mesh.vertices.astype(np.float64), points])
    if config.kind == "mesh":
        return CollisionGeometry("mesh", (_padded_mesh(mesh, points, config),))
    if config.kind == "convex_hull":
        return CollisionGeometry("convex_hull", (padded_hull(cloud, config.max_faces, config.padding_m),))
    if config.kind == "box":
        box = oriented_box(cloud, config.padding_m)
        return CollisionGeometry("box", (box_mesh(box),), box)
    return CollisionGeometry("convex_decomposition", _decomposition(mesh, points, config))


def contains_points(geometry: CollisionGeometry, points: np.ndarray, margin: float = 0.0) -> bool:
    """True when every [N, 3] point lies at least `margin` inside some part, up to float32 rounding
    of the vertices and open3d's float32 distances (1e-3 of the parts' extent)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(points) == 0:
        return True
    corners = np.concatenate([part.vertices for part in geometry.parts]).astype(np.float64)
    tolerance = _SURFACE_TOLERANCE * float((corners.max(axis=0) - corners.min(axis=0)).max())
    deepest = np.min([signed_distance(part, points) for part in geometry.parts], axis=0)
    return bool(deepest.max() <= -margin + tolerance)


def oriented_box(points: np.ndarray, padding: float = 0.0) -> OrientedBox:
    """Minimum-volume oriented box (trimesh) of [N, 3] points, each side grown by 2 x padding."""
    to_box, extents = trimesh.bounds.oriented_bounds(np.asarray(points, dtype=np.float64))
    return OrientedBox(Pose.from_matrix(np.linalg.inv(to_box)), np.asarray(extents, dtype=np.float64) + 2.0 * padding)


def box_mesh(box: OrientedBox) -> Mesh:
    """The box as a closed 12-triangle mesh in the frame of box.pose."""
    solid = trimesh.creation.box(extents=box.extents, transform=box.pose.matrix)
    return Mesh(solid.vertices, solid.faces)


def padded_hull(points: np.ndarray, max_faces: int, padding: float) -> Mesh:
    """Closed convex mesh of at most max_faces faces containing every [N, 3] point at least
    `padding` inside.

    1. The convex hull; over budget, the hull of a farthest-point subset of its vertices.
    2. Each face plane n.x <= b moves out to the farthest point (the subset dropped some) plus the
       padding: the halfspaces then contain each point's ball of radius `padding`.
    3. The halfspace intersection's corners, snapped to a grid of 1e-3 of the points' extent (so the
       nearly coincident corners of nearly coplanar planes merge; the planes move out by that much
       more to keep the margin), give the hull. Its faces can outnumber the planes, so an
       over-budget result is redone from a smaller subset.
    """
    points = np.asarray(points, dtype=np.float64)
    hull = trimesh.convex.convex_hull(points)
    if padding == 0 and len(hull.faces) <= max_faces:
        return Mesh(hull.vertices, hull.faces)
    snap = 1e-3 * float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    vertices = np.asarray(hull.vertices)
    target = max_faces
    for _ in range(_HULL_TRIES):
        subset = vertices
        if target < len(hull.faces):
            subset = _farthest_points(vertices, max(4, target // 2 + 2))
        planes = trimesh.convex.convex_hull(subset)
        normals = planes.face_normals
        offsets = np.maximum(np.einsum("ij,ij->i", normals, planes.triangles[:, 0]), (points @ normals.T).max(axis=0))
        offsets = offsets + padding + np.sqrt(3.0) * snap
        halfspaces = np.concatenate([normals, -offsets[:, None]], axis=1)
        corners = HalfspaceIntersection(halfspaces, subset.mean(axis=0)).intersections
        result = convex_hull(np.unique(np.round(corners / snap), axis=0) * snap)
        if len(result.faces) <= max_faces:
            return result
        target = max(4, int(target * 0.8 * max_faces / len(result.faces)))
    raise ValueError(f"could not pad a convex hull within {max_faces} faces")


def _farthest_points(points: np.ndarray, count: int) -> np.ndarray:
    """[count, 3] of the points chosen by farthest-point sampling (open3d, deterministic)."""
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))
    return np.asarray(cloud.farthest_point_down_sample(min(count, len(points))).points)


def _padded_mesh(mesh: Mesh, points: np.ndarray, config: CollisionGeometryConfig) -> Mesh:
    """The ``mesh`` kind (module docstring)."""
    closed = simplify_to_face_budget(mesh, config.max_faces)
    cloud = np.concatenate([closed.vertices.astype(np.float64), points])
    lo, hi = cloud.min(axis=0), cloud.max(axis=0)
    # Depth points on the surface itself are inside up to float32 rounding of the vertices.
    tolerance = _SURFACE_TOLERANCE * float((hi - lo).max())
    if config.padding_m == 0 and (len(points) == 0 or signed_distance(closed, points).max() <= tolerance):
        return closed
    # Resample: cells inside the mesh grown by the padding, or within padding + half a cell diagonal
    # of an observed point (so the point's own cell is solid and the point inside the new surface).
    # Decimation can cut a corner off; then the balls grow by what stuck out plus a cell, and again.
    cell = float((hi - lo).max()) / config.grid_cells
    reach = config.padding_m + 0.5 * np.sqrt(3.0) * cell
    for _ in range(_RESAMPLE_TRIES):
        border = reach + 2.0 * cell
        size = np.full(3, (hi - lo).max() + 2.0 * border)
        resolution = config.grid_cells + int(np.ceil(2.0 * border / cell))
        centres = grid_cell_centres((lo + hi) / 2.0, size, resolution)
        solid = signed_distance(closed, centres) <= config.padding_m
        if len(points):
            solid |= cKDTree(points).query(centres, distance_upper_bound=reach)[0] <= reach
        result = simplify_to_face_budget(grid_to_mesh(solid.reshape((resolution,) * 3), (lo + hi) / 2.0, size), config.max_faces)
        excess = signed_distance(result, points).max() + config.padding_m if len(points) else 0.0
        if excess <= tolerance:
            return result
        reach += excess + cell
    raise ValueError(f"could not enclose the observed points within {config.max_faces} faces")


def _decomposition(mesh: Mesh, points: np.ndarray, config: CollisionGeometryConfig) -> tuple[Mesh, ...]:
    """The ``convex_decomposition`` kind (module docstring)."""
    # Imported here: coacd loaded before open3d makes open3d's import fail (std::bad_cast); by now
    # mesh_ops has imported open3d.
    import coacd

    closed = simplify_to_face_budget(mesh, config.max_faces)
    coacd.set_log_level("error")
    parts = coacd.run_coacd(
        coacd.Mesh(closed.vertices.astype(np.float64), closed.faces.astype(np.int64)),
        threshold=config.concavity,
        max_convex_hull=config.max_parts,
        mcts_iterations=config.search_iterations,
        seed=config.seed,
    )
    # Points inside a part's hull end up `padding` inside its padded hull (`padded_hull` step 2),
    # so only the points outside every part need a home.
    part_points = [np.asarray(vertices, dtype=np.float64) for vertices, _ in parts]
    if len(points):
        hulls = [convex_hull(p) for p in part_points]
        outside = ~np.any([points_inside(h, points) for h in hulls], axis=0)
        if outside.any():
            # Nearest part by distance to its surface, so a point joins the part it sticks out of.
            distance = np.stack([np.abs(signed_distance(h, points[outside])) for h in hulls])
            nearest = distance.argmin(axis=0)
            for k in np.unique(nearest):
                part_points[k] = np.concatenate([part_points[k], points[outside][nearest == k]])
    return tuple(padded_hull(p, config.max_faces, config.padding_m) for p in part_points)
