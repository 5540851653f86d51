"""Small triangle-mesh utilities on :class:`~scenegen_core.types.Mesh` (frame/units preserved).

Used for collision meshes (repair and face budgets for MoveIt / RViz markers: closed, manifold,
consistently wound), baselines (convex hulls) and metrics (closedness, volume).
"""

from __future__ import annotations

import numpy as np
import open3d as o3d
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from scenegen_core.assembly import voxels_to_mesh
from scenegen_core.types import Mesh

# Grid resolutions (cells across the bounding cube) of the resampled solid, finest first.
_RESAMPLE_RESOLUTIONS = (32, 16, 8, 4)
# Quadric decimation attempts per mesh: an overshoot or an unclean result is retried coarser.
_DECIMATION_TRIES = 3


def empty_mesh() -> Mesh:
    """A mesh with no vertices and no faces."""
    return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))


def _to_open3d(mesh: Mesh) -> o3d.geometry.TriangleMesh:
    out = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices.astype(np.float64)),
        o3d.utility.Vector3iVector(mesh.faces),
    )
    if mesh.vertex_colors is not None:
        out.vertex_colors = o3d.utility.Vector3dVector(mesh.vertex_colors.astype(np.float64))
    return out


def _from_open3d(mesh: o3d.geometry.TriangleMesh, with_colors: bool) -> Mesh:
    colors = np.asarray(mesh.vertex_colors) if with_colors and mesh.has_vertex_colors() else None
    return Mesh(np.asarray(mesh.vertices), np.asarray(mesh.triangles), colors)


def simplify_to_face_budget(mesh: Mesh, max_faces: int) -> Mesh:
    """At most ``max_faces`` triangles, closed and manifold (same frame and units as ``mesh``).

    The result passes :func:`is_closed_manifold`: every edge borders exactly two faces, the winding
    is consistent, there are no duplicate or degenerate faces. Vertex colours follow the vertices.
    A mesh that is already such a mesh and within budget is returned unchanged; an empty mesh stays
    empty. Otherwise, in order, the first candidate that is closed, manifold and within budget:

    1. the repaired mesh (:func:`repair_mesh`) when it is within budget;
    2. quadric-error decimation (open3d) of it, repaired, unless its topology alone rules the budget
       out (quadric decimation keeps every component and handle, see `_min_closed_faces`);
    3. the same on the solid resampled on ever coarser grids (`_resample_solid`: 32, 16, 8, 4 cells
       along each axis of the bounding box, grids whose longest cells are under twice the mean
       edge length skipped as no coarser than the mesh): noisy occupancy from an untrained decoder is a sponge with thousands of handles and
       components that no topology-preserving decimation brings near a few hundred faces;
    4. the convex hull of at most (max_faces + 4) / 2 of its points (farthest-point sampled), which
       has at most max_faces faces; an input with no volume (flat, fewer than 4 points) and a
       budget under 4 (no closed mesh has fewer faces) give an empty mesh.
    """
    if int(max_faces) != max_faces or max_faces < 1:
        raise ValueError(f"max_faces must be a positive integer, got {max_faces}")
    max_faces = int(max_faces)
    if mesh.is_empty or (len(mesh.faces) <= max_faces and is_closed_manifold(mesh)):
        return mesh
    repaired = repair_mesh(mesh)
    if len(repaired.faces) <= max_faces and is_closed_manifold(repaired):
        return repaired
    if is_closed_manifold(repaired):
        candidate = _decimate_closed(repaired, max_faces)
        if candidate is not None:
            return candidate
        lo, hi = repaired.bounds()
        detail = _mean_edge_length(repaired)
        for resolution in _RESAMPLE_RESOLUTIONS:
            if float(np.max(hi - lo)) / resolution < 2.0 * detail:
                continue  # not coarser than the mesh itself: the same topology again
            solid = _resample_solid(repaired, resolution)
            candidate = _decimate_closed(solid, max_faces) if is_closed_manifold(solid) else None
            if candidate is not None:
                return _with_colors_from(candidate, mesh)
    return _with_colors_from(_hull_within_budget(repaired.vertices, max_faces), mesh)


def is_closed_manifold(mesh: Mesh) -> bool:
    """True for a mesh fit for collision checking: closed, every edge bordered by exactly two faces
    wound in opposite directions (:func:`is_watertight`), no two faces on the same three vertices
    and no face of zero area. An empty mesh is not."""
    if not is_watertight(mesh):
        return False
    if len(np.unique(_triple_keys(mesh.faces, len(mesh.vertices)))) != len(mesh.faces):
        return False
    return bool(np.all(trimesh.triangles.area(mesh.vertices.astype(np.float64)[mesh.faces]) > 0.0))


def repair_mesh(mesh: Mesh) -> Mesh:
    """Clean-up that never moves a vertex (trimesh), vertex colours kept.

    Merges coincident vertices; drops faces with a repeated vertex; of faces on the same three
    vertices keeps one (wound as the majority) and drops all when they cancel out: marching cubes
    on binary grids leaves zero-volume fins, the same triangle once per side, whose edges are shared
    by four faces; drops unreferenced vertices; makes the winding consistent per component.
    Zero-area faces on three distinct vertices are left alone (removing them would open cracks).
    """
    if mesh.is_empty:
        return mesh
    vertices = mesh.vertices
    unique, inverse = trimesh.grouping.unique_rows(vertices)
    faces = np.asarray(inverse).reshape(-1)[mesh.faces]
    colors = None if mesh.vertex_colors is None else mesh.vertex_colors[unique]
    vertices = vertices[unique]
    faces = faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])]
    # Orientation of each face relative to its sorted vertex triple: +1 for an even permutation.
    rolled = np.take_along_axis(faces, (np.argmin(faces, axis=1)[:, None] + np.arange(3)) % 3, axis=1)
    orientation = np.where(rolled[:, 1] < rolled[:, 2], 1, -1)
    _, group = np.unique(_triple_keys(faces, len(vertices)), return_inverse=True)
    group = group.reshape(-1)
    net = np.sign(np.bincount(group, weights=orientation)).astype(np.int64)[group]
    # Per group, the first face wound like the majority; none where the windings cancel out.
    winners = np.nonzero((net != 0) & (orientation == net))[0]
    faces = faces[np.sort(winners[np.unique(group[winners], return_index=True)[1]])]
    used, faces = np.unique(faces, return_inverse=True)
    faces = faces.reshape(-1, 3)
    out = trimesh.Trimesh(vertices[used].astype(np.float64), faces, process=False)
    if len(faces) and not out.is_winding_consistent:
        trimesh.repair.fix_winding(out)
    return Mesh(vertices[used], np.asarray(out.faces), None if colors is None else colors[used])


def _triple_keys(faces: np.ndarray, vertex_count: int) -> np.ndarray:
    """[F] one key per face, equal for faces on the same three vertices in any order: int64 when
    vertex_count^3 fits, else the rows of the sorted [F, 3] faces as bytes."""
    ordered = np.sort(np.asarray(faces, dtype=np.int64), axis=1)
    if vertex_count < 2**21:
        return (ordered[:, 0] * vertex_count + ordered[:, 1]) * vertex_count + ordered[:, 2]
    return np.ascontiguousarray(ordered).view(np.dtype((np.void, 24))).reshape(-1)


def _min_closed_faces(mesh: Mesh) -> int:
    """Fewest triangles of any closed mesh with the topology of the closed manifold ``mesh``.

    A closed triangulated component with V vertices and Euler characteristic chi has F = 2V - 2chi
    faces and V >= 4, so F >= 8 - 2chi; over c components F >= 8c - 2chi, where chi = V - F/2
    (every edge borders two faces). Quadric decimation keeps the topology, so it cannot go below.
    """
    used, faces = np.unique(mesh.faces, return_inverse=True)
    faces = faces.reshape(-1, 3)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    adjacency = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(used), len(used)))
    components, _ = connected_components(adjacency, directed=False)
    chi = len(used) - len(faces) // 2
    return 8 * components - 2 * chi


def _decimate_closed(mesh: Mesh, max_faces: int) -> Mesh | None:
    """Quadric decimation (open3d) of the closed manifold ``mesh`` to at most ``max_faces``, inside
    its bounding box, repaired; None when no attempt is closed and manifold within budget, or the
    topology rules it out. open3d may stop a few faces above its target, and a collapse may leave the repaired result
    open: the next attempt aims lower by the overshoot, or at 80 % of the last target."""
    if len(mesh.faces) <= max_faces:
        return mesh
    floor = _min_closed_faces(mesh)
    target, previous = max_faces, None
    for _ in range(_DECIMATION_TRIES):
        if target < floor:
            return None
        decimated = _to_open3d(mesh).simplify_quadric_decimation(target_number_of_triangles=target)
        decimated.remove_unreferenced_vertices()
        if len(decimated.triangles) == previous:
            return None  # stalled: no collapse left that open3d accepts
        previous = len(decimated.triangles)
        # Quadric placement may overshoot the bounding box a little (an asset box must hold).
        decimated.vertices = o3d.utility.Vector3dVector(np.clip(np.asarray(decimated.vertices), *mesh.bounds()))
        candidate = repair_mesh(_from_open3d(decimated, mesh.vertex_colors is not None))
        overshoot = len(candidate.faces) - max_faces
        if overshoot <= 0 and is_closed_manifold(candidate):
            return candidate
        target = target - overshoot if overshoot > 0 else int(0.8 * target)
    return None


def _mean_edge_length(mesh: Mesh) -> float:
    """Mean length of the face edges (units of the vertices)."""
    corners = mesh.vertices.astype(np.float64)[mesh.faces]
    return float(np.linalg.norm(corners - np.roll(corners, 1, axis=1), axis=2).mean())


def _resample_solid(mesh: Mesh, resolution: int) -> Mesh:
    """The closed ``mesh``'s solid sampled at the cell centres of a resolution^3 grid over its
    bounding box (resolution cells along each axis), meshed by marching cubes
    (`assembly.voxels_to_mesh`) and repaired: a closed manifold mesh (no colours) inside the same
    bounding box, whose features thinner than a cell are gone; empty when no cell centre lies
    inside."""
    lo, hi = mesh.bounds()
    centre, size = (lo + hi) / 2.0, np.maximum(hi - lo, 1e-9)
    cells = grid_cell_centres(centre, size, resolution)
    return grid_to_mesh(points_inside(mesh, cells).reshape((resolution,) * 3), centre, size)


def grid_cell_centres(centre: np.ndarray, size: np.ndarray, resolution: int) -> np.ndarray:
    """[R^3, 3] float64 cell centres of a resolution^3 grid spanning the box `centre` +- `size`/2
    (same units as the box), in `grid_to_mesh`'s index order (x, y, z)."""
    axis = (np.arange(resolution) + 0.5) / resolution - 0.5
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3) * size + centre


def grid_to_mesh(inside: np.ndarray, centre: np.ndarray, size: np.ndarray) -> Mesh:
    """Closed manifold surface (marching cubes, repaired) of a [R, R, R] bool grid laid over the box
    `centre` +- `size`/2 as in `grid_cell_centres`; empty when nothing is inside."""
    surface = voxels_to_mesh(inside)
    if surface.is_empty:
        return surface
    return repair_mesh(Mesh(surface.vertices.astype(np.float64) * size + centre, surface.faces))


def _raycasting_scene(mesh: Mesh, points: np.ndarray) -> tuple[o3d.t.geometry.RaycastingScene, o3d.core.Tensor]:
    """Ray-casting scene of the mesh and the points as its query, both moved to the mesh's centre
    first: open3d works in float32, and objects a metre from the camera origin would otherwise
    lose their last ~1e-7 m of precision in every coordinate."""
    origin = mesh.vertices.astype(np.float64).mean(axis=0)
    local = Mesh(mesh.vertices.astype(np.float64) - origin, mesh.faces)
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(_to_open3d(local)))
    query = o3d.core.Tensor(np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3) - origin, dtype=np.float32))
    return scene, query


def points_inside(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """[N] bool: which of the [N, 3] points (mesh units and frame) lie inside the closed mesh."""
    scene, query = _raycasting_scene(mesh, points)
    return scene.compute_occupancy(query, nsamples=3).numpy() > 0.5


def signed_distance(mesh: Mesh, points: np.ndarray) -> np.ndarray:
    """[N] float64 distance of [N, 3] points to the closed mesh's surface, negative inside (units
    of the mesh)."""
    scene, query = _raycasting_scene(mesh, points)
    distance = scene.compute_distance(query).numpy().astype(np.float64)
    return np.where(scene.compute_occupancy(query, nsamples=3).numpy() > 0.5, -distance, distance)


def _hull_within_budget(points: np.ndarray, max_faces: int) -> Mesh:
    """Convex hull (closed, outward) of [N, 3] ``points``, or when it has more than max_faces faces
    of (max_faces + 4) // 2 of its vertices chosen by farthest-point sampling (a hull of n points
    has at most 2n - 4 faces); empty when the points span no volume or max_faces < 4."""
    if max_faces < 4:
        return empty_mesh()
    try:
        hull = convex_hull(points)
    except ValueError:
        return empty_mesh()
    if len(hull.faces) <= max_faces:
        return hull
    keep = (max_faces + 4) // 2
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(hull.vertices.astype(np.float64)))
    try:
        return convex_hull(np.asarray(cloud.farthest_point_down_sample(keep).points))
    except ValueError:
        return empty_mesh()


def _with_colors_from(mesh: Mesh, source: Mesh) -> Mesh:
    """``mesh`` with each vertex given the colour of the nearest ``source`` vertex (none when
    ``source`` has none)."""
    if source.vertex_colors is None or mesh.is_empty:
        return mesh
    if mesh.vertex_colors is not None:
        return mesh
    _, nearest = cKDTree(source.vertices).query(mesh.vertices)
    return Mesh(mesh.vertices, mesh.faces, source.vertex_colors[nearest])


def convex_hull(points) -> Mesh:
    """Convex hull of [N, 3] points (float, any units) as a closed, outward-oriented mesh.

    Raises ValueError for fewer than 4 points or points that span no volume (coplanar).
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f"points must be [N, 3], got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("points contain NaN or inf")
    if len(points) < 4:
        raise ValueError(f"a 3D convex hull needs at least 4 points, got {len(points)}")
    centred = points - points.mean(axis=0)
    singular = np.linalg.svd(centred, compute_uv=False)
    if singular[-1] <= 1e-9 * max(singular[0], 1e-300):
        raise ValueError("points are coplanar or collinear: their convex hull has no volume")
    hull = trimesh.convex.convex_hull(points)
    return Mesh(hull.vertices, hull.faces)


def is_watertight(mesh: Mesh) -> bool:
    """True when the mesh is closed and consistently wound.

    Every directed edge (a -> b) must occur exactly once and its reverse (b -> a) exactly once,
    i.e. every edge borders exactly two faces that traverse it in opposite directions. Vertices
    are compared by index, so unmerged duplicate vertices make a mesh non-watertight. An empty
    mesh is not watertight.
    """
    faces = mesh.faces.astype(np.int64)
    if len(faces) == 0:
        return False
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], axis=0)
    if np.any(edges[:, 0] == edges[:, 1]):
        return False
    n = int(faces.max()) + 1
    keys = np.sort(edges[:, 0] * n + edges[:, 1])
    if np.any(keys[1:] == keys[:-1]):
        return False
    # Directed edges all distinct, so their reverses are too: every reverse is present iff the two
    # sets are equal.
    return bool(np.array_equal(keys, np.sort(edges[:, 1] * n + edges[:, 0])))


def mesh_volume(mesh: Mesh) -> float:
    """Enclosed volume (units^3, float64) of a watertight mesh, by the divergence theorem.

    ``V = |sum_f v0 . (v1 x v2)| / 6``; the absolute value makes it independent of whether the
    faces are wound outward or inward. Raises ValueError when the mesh is not watertight (the
    sum would then depend on the origin and be meaningless).
    """
    if not is_watertight(mesh):
        raise ValueError("mesh_volume needs a watertight mesh (closed, consistently wound)")
    tri = mesh.vertices.astype(np.float64)[mesh.faces]
    # Shifting to the centroid reduces cancellation for meshes far from the origin.
    tri = tri - mesh.vertices.astype(np.float64).mean(axis=0)
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    return float(abs(signed))
