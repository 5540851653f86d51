"""Geometric baselines that turn depth + masks into closed collision meshes, no learning.

* hull: convex hull of the object's back-projected depth points (all views merged in view 0's
  frame). It only covers the visible surface, so it misses the hidden back of every object.
* box: an oriented box whose footprint is the minimum-area rectangle (rotating calipers over the
  2D convex hull) of the object's points projected onto the table plane, extruded from the table
  plane up to the highest point. Hidden parts inside that prism are covered.

Table plane: always estimated from depth (`depth_proposals.find_table`: RANSAC candidates, the
one supporting the objects, noise-adapted bands), over the pixels outside the object masks (GT
masks) or over every pixel (predicted masks); the known table height is never used, so the
baselines see exactly what a robot would.

Masks: ``gt`` uses the views' masks (object order = truth order, so correspondence is known);
``pred`` ignores them and segments depth (`depth_proposals.segment_depth`), so predictions must
be matched to the truth by mask IoU.

Output: `PredictedObject`s with the mesh in view 0's camera optical frame, metres — the same
contract any other method (e.g. the SceneGen pipeline) must meet to be evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from scenegen_core.segmentation.depth_proposals import (
    SegmentationConfig,
    TablePlane,
    segment_depth,
    table_plane_from_views,
    view_points,
)
from scenegen_core.mesh_ops import convex_hull
from scenegen_core.types import Mesh, Pose, View


@dataclass(frozen=True)
class PredictedObject:
    """One predicted object.

    mesh: closed mesh in view 0's camera optical frame, metres. mask: [H, W] bool in view 0 (used
    to match predictions to the truth). gt_index: the true object it stands for when the method
    was given the true masks (known correspondence), else None. pose: the similarity mapping the
    object's canonical asset box ([-0.5, 0.5]^3, z up, TRELLIS convention) into view 0's optical
    frame, metres (SceneGen's ``SceneObject.pose``), or None for methods without one (these
    baselines); only relative-pose errors use it (`metrics.relative_pose_errors`).
    """

    mesh: Mesh
    mask: np.ndarray
    gt_index: int | None = None
    pose: Pose | None = None


@dataclass(frozen=True)
class ObjectPoints:
    """Depth points of one object: [N, 3] float64 in view 0's frame, metres, its view-0 mask, gt index."""

    points: np.ndarray
    mask: np.ndarray
    gt_index: int | None


@dataclass(frozen=True)
class BaselineConfig:
    """Baseline settings. min_points: objects with fewer depth points are skipped (no prediction).
    segmentation: table RANSAC and clustering settings (metres)."""

    min_points: int = 10
    segmentation: SegmentationConfig = field(default_factory=SegmentationConfig)


def object_points(
    views: Sequence[View], use_gt_masks: bool, config: BaselineConfig = BaselineConfig()
) -> tuple[TablePlane, list[ObjectPoints]]:
    """Table plane and per-object points from the true masks (use_gt_masks) or depth segmentation."""
    if not use_gt_masks:
        segmentation = segment_depth(views, config.segmentation)
        objects = [ObjectPoints(p, segmentation.masks[0][k], None) for k, p in enumerate(segmentation.points)]
        return segmentation.plane, objects
    if any(view.masks is None for view in views):
        raise ValueError("use_gt_masks=True needs masks in every view")
    counts = {len(view.masks) for view in views}
    if len(counts) != 1:
        raise ValueError(f"views disagree on the number of objects: {sorted(counts)}")
    per_view = view_points(views)
    plane = table_plane_from_views(per_view, [view.masks for view in views], config.segmentation)
    objects = []
    for k in range(counts.pop()):
        points = np.concatenate([v.points[v.valid & view.masks[k]] for v, view in zip(per_view, views)])
        objects.append(ObjectPoints(points, views[0].masks[k], k))
    return plane, objects


def box_mesh_from_corners(corners: np.ndarray) -> Mesh:
    """Closed 12-triangle box from [8, 3] corners ordered bottom (0-3, counter-clockwise seen from
    above the top) then top (4-7, above 0-3). Faces wound outward when the bottom ring is
    counter-clockwise about the box's up axis."""
    faces = np.array(
        [
            [0, 2, 1], [0, 3, 2],  # bottom
            [4, 5, 6], [4, 6, 7],  # top
            [0, 1, 5], [0, 5, 4],
            [1, 2, 6], [1, 6, 5],
            [2, 3, 7], [2, 7, 6],
            [3, 0, 4], [3, 4, 7],
        ]
    )  # fmt: skip
    return Mesh(corners, faces)


def min_area_rectangle(points_2d: np.ndarray) -> np.ndarray:
    """[4, 2] corners (counter-clockwise) of the minimum-area rectangle enclosing [N, 2] points.

    Rotating calipers: the optimal rectangle has a side collinear with an edge of the convex hull,
    so every hull-edge direction is tried. Raises ValueError for collinear points.
    """
    try:
        hull = points_2d[ConvexHull(points_2d).vertices]
    except QhullError as error:
        raise ValueError(f"points span no area: {error}") from error
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.arctan2(edges[:, 1], edges[:, 0])
    best = None
    for angle in np.unique(np.mod(angles, np.pi / 2)):
        axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])  # rows: u, v
        local = hull @ axes.T
        lo, hi = local.min(0), local.max(0)
        area = float(np.prod(hi - lo))
        if best is None or area < best[0]:
            best = (area, axes, lo, hi)
    _, axes, lo, hi = best
    local_corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    return local_corners @ axes


def hull_prediction(points: np.ndarray) -> Mesh:
    """Convex hull of [N, 3] object points (metres); ValueError when they span no volume."""
    return convex_hull(points)


def box_prediction(points: np.ndarray, plane: TablePlane) -> Mesh:
    """Table-extruded oriented box around [N, 3] object points (metres, plane in the same frame).

    1. Project the points into the plane's 2D frame; 2. minimum-area rectangle (rotating
    calipers); 3. extrude from the plane (height 0) to the highest point. ValueError when the
    points are all below the plane or their footprint has no area.
    """
    top = float(plane.height(points).max())
    if not top > 0:
        raise ValueError("object points are not above the table plane")
    origin, e1, e2 = plane.basis()
    relative = np.asarray(points, dtype=np.float64) - origin
    footprint = min_area_rectangle(np.stack([relative @ e1, relative @ e2], axis=1))
    # basis() is right-handed (e1 × e2 = normal), so a counter-clockwise footprint in (e1, e2) is
    # counter-clockwise about the up normal, as box_mesh_from_corners expects.
    bottom = origin + footprint[:, :1] * e1 + footprint[:, 1:] * e2
    return box_mesh_from_corners(np.concatenate([bottom, bottom + top * plane.normal]))


def _predict(views: Sequence[View], use_gt_masks: bool, kind: str, config: BaselineConfig) -> list[PredictedObject]:
    plane, objects = object_points(views, use_gt_masks, config)
    predictions = []
    for obj in objects:
        if len(obj.points) < config.min_points:
            continue
        try:
            mesh = hull_prediction(obj.points) if kind == "hull" else box_prediction(obj.points, plane)
        except ValueError:
            continue  # degenerate point set (flat or a few pixels): no prediction for this object
        predictions.append(PredictedObject(mesh, obj.mask, obj.gt_index))
    return predictions


def hull_baseline(
    views: Sequence[View], use_gt_masks: bool, config: BaselineConfig = BaselineConfig()
) -> list[PredictedObject]:
    """Convex hulls of each object's depth points (view 0 frame, metres); see module docstring."""
    return _predict(views, use_gt_masks, "hull", config)


def box_baseline(
    views: Sequence[View], use_gt_masks: bool, config: BaselineConfig = BaselineConfig()
) -> list[PredictedObject]:
    """Table-extruded minimum-area boxes of each object (view 0 frame, metres); see module docstring."""
    return _predict(views, use_gt_masks, "box", config)
