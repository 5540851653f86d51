"""From per-object occupancy and predicted poses to one assembled scene (pure numpy).

Frames and conventions (see ``../shared/reference/README.md``, "Scene assembly"):

* **Asset frame** (TRELLIS): every object is generated in the box ``[-0.5, 0.5]^3``, z up. An
  ``R^3`` occupancy grid cell with integer index ``c = (i, j, k)`` is the cube
  ``[c/R - 0.5, (c+1)/R - 0.5]``; its *lower corner* is the README's ``v = c/R - 0.5``.
* **Model poses**: the SS flow predicts per object ``[tx, ty, tz, qw, qx, qy, qz, s]``
  (``[N, 8]``, quaternion w first and *not* unit length, scale after ReLU). Object ``i``'s
  asset point ``v`` lands at ``p_i = s_i * R(q_i) * R_x(-90 deg) * v + t_i`` in a y-up frame
  in which the query object (index 0) is ``p_0 = R_x(-90 deg) * v``.

Three conventions live here:

(A) :func:`preview_points`: the official voxel preview (``sample_sparse_structure`` with
    ``get_voxel_vis=True``), float32, ``+0.5`` offset and scene normalisation into the unit box.
(B) :func:`official_export_assembly`: the official GLB export (``run_scene`` + ``to_glb``),
    float64, including its reference-frame quirk (transpose instead of inverse) and its
    non-centring normalisation.
(C) :func:`assemble_in_query_frame`: our convention for :class:`~scenegen_core.types.SceneObject`:
    every pose maps the asset frame into the *query object's asset frame* (z up), so the query
    is exactly the identity. It equals path (B)'s scene before the reference-frame move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from skimage.measure import marching_cubes

from scenegen_core.geometry import transform_points
from scenegen_core.types import Mesh, Pose, rotation_matrix_to_wxyz

POSE_DIM = 8
"""Length of one model pose row: translation (3), quaternion w-first (4), scale (1)."""

TO_GLB_AXIS_ROWVEC = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
"""``to_glb``'s z-up -> y-up change for row vectors: ``v_glb = v @ M`` == ``R_x(-90 deg) @ v``."""

GLB_NORMALIZE_EXTENT = 1.96
"""Largest scene extent after the official export's normalisation (1 - 2% margin, times 2)."""


def rotation_x(degrees: float) -> np.ndarray:
    """[3, 3] float64 right-handed rotation about +x (column-vector convention)."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    # Exact zeros/ones at multiples of 90 deg keep the axis change free of 6e-17 residues.
    c, s = float(np.round(c, 15)), float(np.round(s, 15))
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _homogeneous(linear: np.ndarray, translation: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3] = linear
    out[:3, 3] = translation
    return out


def validate_positions(positions) -> np.ndarray:
    """Check a model pose array; returns it as [N, 8] float64 (N >= 1)."""
    array = np.asarray(positions)
    if array.ndim != 2 or array.shape[1] != POSE_DIM or array.shape[0] < 1:
        raise ValueError(f"positions must be [N, {POSE_DIM}] (t, q w-first, s), got shape {array.shape}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError("positions contain NaN or inf")
    norms = np.linalg.norm(array[:, 3:7], axis=1)
    if np.any(norms < 1e-12):
        raise ValueError(f"positions rows {np.flatnonzero(norms < 1e-12).tolist()} have a zero quaternion")
    return array


def quaternion_matrix(q_wxyz) -> np.ndarray:
    """[3, 3] float64 rotation of the quaternion [w, x, y, z] after normalising it (as scipy does)."""
    return Pose(rotation_wxyz=q_wxyz).rotation_matrix


# --------------------------------------------------------------------------------------------
# Occupancy and meshes
# --------------------------------------------------------------------------------------------


def occupancy_to_voxels(logits_or_coords, resolution: int | None = None) -> np.ndarray:
    """One object's occupancy as a dense [R, R, R] bool grid (index order x, y, z).

    Accepts either decoder logits ``[R, R, R]`` or ``[1, R, R, R]`` (floating point; occupied
    where ``> 0`` exactly as the official pipeline) or integer voxel coordinates ``[K, 3]``
    (x, y, z) together with ``resolution``. Torch CPU tensors work (converted via numpy).
    """
    array = np.asarray(logits_or_coords)
    if np.issubdtype(array.dtype, np.floating):
        if array.ndim == 4 and array.shape[0] == 1:
            array = array[0]
        if array.ndim != 3 or len(set(array.shape)) != 1:
            raise ValueError(f"logits must be a cubic [R, R, R] or [1, R, R, R] grid, got {array.shape}")
        if resolution is not None and array.shape[0] != resolution:
            raise ValueError(f"logits grid is {array.shape[0]}^3 but resolution={resolution}")
        return array > 0
    if np.issubdtype(array.dtype, np.integer):
        if resolution is None or resolution < 1:
            raise ValueError("integer voxel coordinates need a positive resolution")
        if array.ndim != 2 or array.shape[1] != 3:
            raise ValueError(f"voxel coordinates must be [K, 3] (x, y, z), got {array.shape}")
        if array.size and (array.min() < 0 or array.max() >= resolution):
            raise ValueError(f"voxel coordinates outside [0, {resolution})")
        grid = np.zeros((resolution,) * 3, dtype=bool)
        grid[array[:, 0], array[:, 1], array[:, 2]] = True
        return grid
    raise ValueError(f"expected float logits or integer coordinates, got dtype {array.dtype}")


def split_coords_by_object(coords, n_objects: int) -> list[np.ndarray]:
    """Split the pipeline's ``[K, 4]`` (object, x, y, z) coordinates into ``n_objects`` [K_i, 3] int64
    arrays, keeping each object's row order (the argwhere order of the decoder output)."""
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[1] != 4 or not np.issubdtype(coords.dtype, np.integer):
        raise ValueError(f"coords must be integer [K, 4] (object, x, y, z), got {coords.shape} {coords.dtype}")
    if coords.size and (coords[:, 0].min() < 0 or coords[:, 0].max() >= n_objects):
        raise ValueError(f"coords reference objects outside [0, {n_objects})")
    return [coords[coords[:, 0] == i, 1:].astype(np.int64) for i in range(n_objects)]


def voxels_to_mesh(occupancy: np.ndarray) -> Mesh:
    """Marching-cubes surface of a bool occupancy grid, in the asset frame.

    occupancy: [R, R, R] bool, index order (x, y, z). Returns a watertight :class:`Mesh`
    (vertices float32 in the asset box [-0.5, 0.5]^3, outward-facing counter-clockwise faces,
    no colours); an all-empty grid gives an empty mesh.

    Where surfaces land: samples sit at voxel *centres* ``(c + 0.5)/R - 0.5`` and the iso level is
    0.5, so on a binary grid every vertex is the midpoint between an occupied and a free centre,
    i.e. it lies on the shared *face* of the two cells. The mesh's bounding box is therefore
    exactly the union of the occupied cells ``[c/R - 0.5, (c+1)/R - 0.5]`` (lower corner = the
    README's ``v = c/R - 0.5`` used by paths A and B); only edges and corners are chamfered.
    """
    occupancy = np.asarray(occupancy)
    if occupancy.ndim != 3 or len(set(occupancy.shape)) != 1:
        raise ValueError(f"occupancy must be a cubic [R, R, R] grid, got {occupancy.shape}")
    if occupancy.dtype != bool:
        raise ValueError(f"occupancy must be bool, got {occupancy.dtype}")
    resolution = occupancy.shape[0]
    if not occupancy.any():
        return Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    # A one-cell free border closes the surface where the object touches the grid boundary.
    padded = np.pad(occupancy, 1).astype(np.float32)
    verts, faces, _, _ = marching_cubes(padded, level=0.5, allow_degenerate=False)
    # Padded index p is voxel index p - 1 whose centre is at (p - 1 + 0.5)/R - 0.5.
    vertices = (verts - 0.5) / resolution - 0.5
    # skimage's "descent" winding is clockwise seen from outside: reverse it to outward CCW.
    return Mesh(vertices.astype(np.float32), faces[:, ::-1].astype(np.int32))


# --------------------------------------------------------------------------------------------
# (A) official voxel preview
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PreviewAssembly:
    """Official voxel-preview placement (float32, as the official torch code computes it).

    rotations: [N, 3, 3] float32, ``R(q_i) @ R_x(-90 deg)``. pre_norm[i]: [K_i, 3] float32 placed
    voxel lower corners ``p_i = rotations[i] @ (s_i v) + 0.5 + t_i``. center: [3] float32,
    edge_length: float32 scalar (largest AABB extent of all points). post_norm[i]: [K_i, 3]
    float32 ``(p - center) / edge_length + 0.5`` (the whole scene in the unit box).
    """

    rotations: np.ndarray
    pre_norm: tuple[np.ndarray, ...]
    center: np.ndarray
    edge_length: np.float32
    post_norm: tuple[np.ndarray, ...]


def preview_points(coords, positions, resolution: int = 64) -> PreviewAssembly:
    """Reproduce the official voxel preview (path A) from decoder coordinates and model poses.

    coords: [K, 4] int (object, x, y, z) voxel indices of a ``resolution``^3 grid; positions:
    [N, 8] (t, q w-first, s) exactly as the model returned them (row 0 included as is).

    Steps (official ``sample_sparse_structure``, all float32 except the rotation built in float64):
    1. ``v = c / R - 0.5`` (voxel lower corner); ``v_s = s_i * v``.
    2. ``M_i = R(q_i) @ R_x(-90 deg)`` with q normalised, cast to float32.
    3. ``p = v_s @ M_i^T + 0.5 + t_i``.
    4. Over all objects' points: ``center = (lo + hi) / 2``, ``e = max(hi - lo)``,
       ``p_hat = (p - center) / e + 0.5``.
    """
    pose_rows = np.asarray(positions, dtype=np.float32)
    validate_positions(pose_rows)
    per_object = split_coords_by_object(coords, len(pose_rows))
    axis_change = rotation_x(-90.0)
    rotations, pre_norm = [], []
    for coords_i, row in zip(per_object, pose_rows):
        v = coords_i.astype(np.float32) / np.float32(resolution) - np.float32(0.5)
        scaled = v * row[7]
        rotation = (quaternion_matrix(row[3:7].astype(np.float64)) @ axis_change).astype(np.float32)
        rotations.append(rotation)
        pre_norm.append(scaled @ rotation.T + np.float32(0.5) + row[0:3])
    all_points = np.concatenate(pre_norm, axis=0)
    if len(all_points) == 0:
        raise ValueError("no occupied voxels in any object: nothing to preview")
    lo, hi = all_points.min(axis=0), all_points.max(axis=0)
    edge_length = np.max(hi - lo)
    center = (hi + lo) / np.float32(2)
    post_norm = tuple((p - center) / edge_length + np.float32(0.5) for p in pre_norm)
    return PreviewAssembly(np.stack(rotations), tuple(pre_norm), center, edge_length, post_norm)


# --------------------------------------------------------------------------------------------
# (B) official GLB export
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ExportAssembly:
    """Official GLB-export placement (float64). Per-object arrays are indexed by pipeline index.

    reference_index: object whose frame the scene is moved into (``resorted_indices[0]``).
    node_order: order in which objects become GLB nodes ``geometry_0, geometry_1, ...``.
    global_translations [N, 3], global_rotations [N, 3, 3], scales [N]: the query-forced poses
    ``t'_i, R'_i, s'_i``. local_vertices[i]: [V_i, 3] ``to_glb`` vertices (y-up asset frame).
    placements [N, 4, 4]: ``A_i = [s'_i R'_i | t'_i]``. reference_frame_move [4, 4]: ``T``.
    node_transforms_pre_norm [N, 4, 4]: ``T @ A_i``. pre_norm[i]: [V_i, 3] vertices after ``T``.
    scale_factor ``k`` and scene_center ``c`` [3] of the normalisation; normalize [4, 4]
    ``[k I | -c]``. node_transforms [N, 4, 4]: ``normalize @ T @ A_i`` (what the GLB stores).
    post_norm[i]: [V_i, 3] final vertices ``k p - c``.
    """

    reference_index: int
    node_order: tuple[int, ...]
    global_translations: np.ndarray
    global_rotations: np.ndarray
    scales: np.ndarray
    local_vertices: tuple[np.ndarray, ...]
    placements: np.ndarray
    reference_frame_move: np.ndarray
    node_transforms_pre_norm: np.ndarray
    pre_norm: tuple[np.ndarray, ...]
    scale_factor: float
    scene_center: np.ndarray
    normalize: np.ndarray
    node_transforms: np.ndarray
    post_norm: tuple[np.ndarray, ...]


def _check_permutation(order: Sequence[int] | None, n: int) -> tuple[int, ...]:
    if order is None:
        return tuple(range(n))
    order = tuple(int(i) for i in order)
    if sorted(order) != list(range(n)):
        raise ValueError(f"resorted_indices must be a permutation of 0..{n - 1}, got {list(order)}")
    return order


def official_export_assembly(
    asset_vertices: Sequence[np.ndarray],
    positions,
    resorted_indices: Sequence[int] | None = None,
) -> ExportAssembly:
    """Reproduce the official GLB export placement (path B), quirks included.

    asset_vertices: per object [V_i, 3] vertices in the asset frame (z up, [-0.5, 0.5]^3),
    pipeline order. positions: [N, 8] model output (row 0 is ignored, as officially).
    resorted_indices: ``None`` (Gradio demo: reference = query) or the permutation that
    ``inference.py`` passes (reference = ``resorted_indices[0]``, node order = this order).

    Steps (``run_scene`` + ``postprocessing_utils.to_glb``):
    1. Query forced to ``t'_0 = 0, R'_0 = R_x(+90 deg), s'_0 = 1``; for i >= 1
       ``t'_i = R_x(90) t_i``, ``R'_i = R_x(90) R(q_i)``, ``s'_i = s_i``.
    2. ``to_glb``: ``v_glb = v @ M`` (z-up -> y-up, ``M`` = :data:`TO_GLB_AXIS_ROWVEC`).
    3. Node placement ``A_i = [s'_i R'_i | t'_i]``.
    4. Reference move: with ``B = s'_ref R'_ref``, ``T = [B^T | -B^T t'_ref]``. This is the
       *transpose*, not the inverse: for a reference with ``s != 1`` the scene is scaled by
       ``s_ref`` instead of ``1/s_ref`` (reproduced on purpose).
    5. ``normalize``: AABB ``lo, hi`` of all moved vertices, ``c = (lo + hi)/2``,
       ``k = 1.96 / max(hi - lo)``, matrix ``[k I | -c]`` so ``p_final = k p - c``. The translation
       is not scaled, hence the scene is *not* centred at the origin (reproduced on purpose).
    """
    rows = validate_positions(positions)
    n = len(rows)
    if len(asset_vertices) != n:
        raise ValueError(f"{len(asset_vertices)} vertex arrays for {n} pose rows")
    order = _check_permutation(resorted_indices, n)

    # 1. query-forced global poses
    query_rotation = rotation_x(90.0)
    translations = np.zeros((n, 3))
    rotations = np.empty((n, 3, 3))
    scales = np.ones(n)
    rotations[0] = query_rotation
    for i in range(1, n):
        translations[i] = query_rotation @ rows[i, 0:3]
        rotations[i] = query_rotation @ quaternion_matrix(rows[i, 3:7])
        scales[i] = rows[i, 7]

    # 2. to_glb axis change; 3. node placements
    local = tuple(np.asarray(v, dtype=np.float64).reshape(-1, 3) @ TO_GLB_AXIS_ROWVEC for v in asset_vertices)
    placements = np.stack([_homogeneous(scales[i] * rotations[i], translations[i]) for i in range(n)])

    # 4. reference-frame move (transpose quirk)
    ref = order[0]
    linear_ref = placements[ref, :3, :3]
    move = _homogeneous(linear_ref.T, -linear_ref.T @ placements[ref, :3, 3])
    pre_transforms = np.einsum("ij,njk->nik", move, placements)
    pre_norm = tuple(transform_points(pre_transforms[i], local[i]) for i in range(n))

    # 5. non-centring normalisation
    all_points = np.concatenate(pre_norm, axis=0)
    if len(all_points) == 0:
        raise ValueError("all meshes are empty: the export normalisation is undefined")
    lo, hi = all_points.min(axis=0), all_points.max(axis=0)
    extent = float(np.max(hi - lo))
    if extent <= 0:
        raise ValueError("the scene has zero extent: the export normalisation is undefined")
    center = (lo + hi) / 2.0
    k = GLB_NORMALIZE_EXTENT / extent
    normalize = _homogeneous(k * np.eye(3), -center)
    node_transforms = np.einsum("ij,njk->nik", normalize, pre_transforms)
    post_norm = tuple(transform_points(normalize, p) for p in pre_norm)
    return ExportAssembly(
        reference_index=ref,
        node_order=order,
        global_translations=translations,
        global_rotations=rotations,
        scales=scales,
        local_vertices=local,
        placements=placements,
        reference_frame_move=move,
        node_transforms_pre_norm=pre_transforms,
        pre_norm=pre_norm,
        scale_factor=k,
        scene_center=center,
        normalize=normalize,
        node_transforms=node_transforms,
        post_norm=post_norm,
    )


# --------------------------------------------------------------------------------------------
# (C) our convention: poses in the query object's asset frame
# --------------------------------------------------------------------------------------------


def assemble_in_query_frame(positions, min_scale: float | None = None) -> list[Pose]:
    """Every object's pose (asset frame -> query object's asset frame), query = identity.

    positions: [N, 8] model output (t, q w-first not normalised, s). Returns N :class:`Pose`
    (float64, unit quaternions). Row 0 is ignored: the query is the identity by definition (the
    official code ignores it too; in train mode the model predicts something there).

    Derivation: the model places object i at ``p_i = s_i R(q_i) R_x(-90) v + t_i`` in a y-up
    frame where the query sits at ``p_0 = R_x(-90) v``. Undoing the query's fixed axis change,
    ``x = R_x(+90) p``, makes the query exactly the identity and gives for i >= 1::

        x = s_i [R_x(90) R(q_i) R_x(-90)] v + R_x(90) t_i

    i.e. ``Pose(t = R_x(90) t_i, R = R_x(90) R(q_i) R_x(-90), s = s_i)``. This is identical to
    path (B)'s scene before its reference-frame move (``A_i`` applied to the ``to_glb``
    vertices), and it is metric-agnostic: units are "query asset boxes".

    Scales must be > 0 (a ReLU output of 0 collapses the object): by default a non-positive
    scale raises ``ValueError``; pass ``min_scale`` to clamp such scales to it instead.
    """
    rows = validate_positions(positions)
    to_query = rotation_x(90.0)
    from_query = rotation_x(-90.0)
    poses = [Pose()]
    for i in range(1, len(rows)):
        scale = float(rows[i, 7])
        if scale <= 0.0 or (min_scale is not None and scale < min_scale):
            if min_scale is None:
                raise ValueError(f"object {i} has non-positive predicted scale {scale}")
            scale = float(min_scale)
        rotation = to_query @ quaternion_matrix(rows[i, 3:7]) @ from_query
        poses.append(Pose(translation=to_query @ rows[i, 0:3], rotation_wxyz=rotation_matrix_to_wxyz(rotation), scale=scale))
    return poses
