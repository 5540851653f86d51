"""Depth-only instance segmentation of tabletop scenes, and Hungarian matching of masks.

Masks straight from depth (the pipeline's segmenter when no masks are given): every view's depth is back-projected
into the reference camera frame (view 0's optical frame, metres), the table is found as the
dominant plane by RANSAC, points clearly above it are clustered with DBSCAN (open3d), and each
cluster becomes one object whose mask in every view is the set of pixels whose points joined it.

Limits (by design, documented rather than hidden): objects closer than about ``cluster_eps`` to
each other merge into one instance; object parts lower than ``min_height`` above the table are
counted as table; the table must be the largest plane in view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from scenegen_core.geometry import backproject_depth, transform_points
from scenegen_core.types import View


@dataclass(frozen=True)
class TablePlane:
    """Plane n·p + offset = 0 in the reference camera frame (metres).

    normal: [3] float64 unit vector pointing to the side the reference camera is on ("up").
    """

    normal: np.ndarray
    offset: float

    def __post_init__(self) -> None:
        normal = np.asarray(self.normal, dtype=np.float64)
        length = np.linalg.norm(normal)
        if normal.shape != (3,) or not length > 0:
            raise ValueError(f"plane normal must be a non-zero [3] vector, got {self.normal}")
        object.__setattr__(self, "normal", normal / length)
        object.__setattr__(self, "offset", float(self.offset) / length)

    def height(self, points: np.ndarray) -> np.ndarray:
        """[N] float64 signed distance of [N, 3] points above the plane, metres."""
        return np.asarray(points, dtype=np.float64) @ self.normal + self.offset

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(origin [3], e1 [3], e2 [3]): a point on the plane and two orthonormal in-plane axes."""
        helper = np.eye(3)[int(np.argmin(np.abs(self.normal)))]
        e1 = np.cross(self.normal, helper)
        e1 /= np.linalg.norm(e1)
        return -self.offset * self.normal, e1, np.cross(self.normal, e1)


@dataclass(frozen=True)
class SegmentationConfig:
    """Depth segmentation settings (metres).

    plane_distance: RANSAC inlier distance. ransac_iterations: RANSAC trials. min_height: points
    lower than this above the table belong to the table. cluster_eps: DBSCAN neighbourhood radius
    (raised to 3 pixel footprints at the median depth when the depth is coarser). cluster_min_points:
    DBSCAN core-point neighbour count. min_object_points: smaller clusters are dropped as noise.
    seed: RANSAC seed (open3d's global generator).
    """

    plane_distance: float = 0.004
    ransac_iterations: int = 500
    min_height: float = 0.006
    cluster_eps: float = 0.015
    cluster_min_points: int = 8
    min_object_points: int = 30
    seed: int = 0


@dataclass(frozen=True)
class ViewPoints:
    """Back-projected depth of one view.

    points: [H, W, 3] float64 in the reference camera frame, metres; valid: [H, W] bool (depth > 0).
    """

    points: np.ndarray
    valid: np.ndarray


def view_points(views: Sequence[View]) -> list[ViewPoints]:
    """Back-project every view's depth into view 0's optical frame.

    Each view needs depth and intrinsics; views after the first need camera_from_reference
    (reference -> this camera, as `SyntheticScene.views` sets it).
    """
    if not views:
        raise ValueError("no views given")
    out = []
    for k, view in enumerate(views):
        if view.depth is None or view.intrinsics is None:
            raise ValueError(f"view {k} needs depth and intrinsics for depth-based methods")
        if k > 0 and view.camera_from_reference is None:
            raise ValueError(f"view {k} has no camera_from_reference: cannot merge it with view 0")
        depth = np.nan_to_num(view.depth, nan=0.0)
        points = backproject_depth(depth, view.intrinsics)
        if k > 0:
            reference_from_camera = np.linalg.inv(view.camera_from_reference)
            points = transform_points(reference_from_camera, points.reshape(-1, 3)).reshape(points.shape)
        out.append(ViewPoints(points=points, valid=depth > 0))
    return out


def fit_table_plane(points: np.ndarray, config: SegmentationConfig = SegmentationConfig()) -> TablePlane:
    """RANSAC plane of [N, 3] points (reference frame, metres), oriented towards the camera origin."""
    import open3d as o3d

    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        raise ValueError(f"need at least 3 points to fit the table plane, got {len(points)}")
    o3d.utility.random.seed(config.seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    model, inliers = cloud.segment_plane(config.plane_distance, 3, config.ransac_iterations)
    model = np.asarray(model, dtype=np.float64)
    if len(inliers) < 3:
        raise ValueError("RANSAC found no table plane")
    # Refine on the inliers (total least squares) to remove the 3-point sample's noise.
    inlier_points = points[np.asarray(inliers)]
    centre = inlier_points.mean(0)
    normal = np.linalg.svd(inlier_points - centre, full_matrices=False)[2][2]
    if np.dot(normal, model[:3]) < 0:
        normal = -normal
    plane = TablePlane(normal, -float(normal @ centre))
    # The camera (origin of the reference frame) is above the table.
    return plane if plane.offset > 0 else TablePlane(-plane.normal, -plane.offset)


def table_plane_from_views(
    per_view: Sequence[ViewPoints], exclude_masks: Sequence[np.ndarray | None], config: SegmentationConfig
) -> TablePlane:
    """Table plane from every valid pixel of every view outside the excluded object masks.

    exclude_masks: per view [K, H, W] bool masks of known objects, or None to use every pixel.
    """
    samples = []
    for view, masks in zip(per_view, exclude_masks):
        keep = view.valid.copy()
        if masks is not None and len(masks):
            keep &= ~np.any(masks, axis=0)
        samples.append(view.points[keep])
    return fit_table_plane(np.concatenate(samples), config)


@dataclass(frozen=True)
class DepthSegmentation:
    """Result of `segment_depth`.

    plane: the table. masks: per view [K, H, W] bool, object order shared by all views (largest
    cluster first). points: per object [N_k, 3] float64 reference-frame points (all views), metres.
    """

    plane: TablePlane
    masks: tuple[np.ndarray, ...]
    points: tuple[np.ndarray, ...]

    @property
    def num_objects(self) -> int:
        return len(self.points)


def segment_depth(views: Sequence[View], config: SegmentationConfig = SegmentationConfig()) -> DepthSegmentation:
    """Instance masks from depth alone (see module docstring); ignores any masks in the views."""
    import open3d as o3d

    # 1. Points of all views in the reference frame; table plane from all of them.
    per_view = view_points(views)
    plane = table_plane_from_views(per_view, [None] * len(per_view), config)
    # 2. Candidate object points: valid and clearly above the table.
    above = [v.valid & (plane.height(v.points.reshape(-1, 3)).reshape(v.valid.shape) > config.min_height) for v in per_view]
    candidates = np.concatenate([v.points[a] for v, a in zip(per_view, above)])
    shapes = [v.valid.shape for v in per_view]
    if len(candidates) == 0:
        return DepthSegmentation(plane, tuple(np.zeros((0, *s), bool) for s in shapes), ())
    # 3. DBSCAN; eps never below three pixel footprints at the median depth of view 0.
    footprint = float(np.median(candidates[:, 2])) / views[0].intrinsics.fx
    eps = max(config.cluster_eps, 3.0 * footprint)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(candidates))
    labels = np.asarray(cloud.cluster_dbscan(eps, config.cluster_min_points), dtype=np.int64)
    # 4. Keep clusters big enough; order by size (largest first, like SceneGen's query choice).
    counts = np.bincount(labels[labels >= 0], minlength=1) if np.any(labels >= 0) else np.zeros(0, np.int64)
    kept = [c for c in np.argsort(-counts, kind="stable") if counts[c] >= config.min_object_points]
    remap = np.full(max(len(counts), 1) + 1, -1, dtype=np.int64)
    remap[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    labels = np.where(labels >= 0, remap[labels.clip(0)], -1)
    # 5. Scatter labels back into per-view masks.
    masks, start = [], 0
    for a, shape in zip(above, shapes):
        label_image = np.full(shape, -1, dtype=np.int64)
        label_image[a] = labels[start : start + int(a.sum())]
        start += int(a.sum())
        masks.append(label_image[None] == np.arange(len(kept))[:, None, None])
    points = tuple(candidates[labels == k] for k in range(len(kept)))
    return DepthSegmentation(plane, tuple(masks), points)


def mask_iou_matrix(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """[P, G] float64 IoU between [P, H, W] and [G, H, W] bool masks (0 where both are empty)."""
    pred = np.asarray(pred_masks, dtype=bool)
    gt = np.asarray(gt_masks, dtype=bool)
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"masks must be [K, H, W] of one image size, got {pred.shape} and {gt.shape}")
    pred_flat = pred.reshape(len(pred), -1).astype(np.float64)
    gt_flat = gt.reshape(len(gt), -1).astype(np.float64)
    intersection = pred_flat @ gt_flat.T
    union = pred_flat.sum(1)[:, None] + gt_flat.sum(1)[None, :] - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


@dataclass(frozen=True)
class MaskMatching:
    """One-to-one matches (pred index, gt index) with IoU >= the threshold, and their IoUs."""

    pairs: tuple[tuple[int, int], ...]
    ious: tuple[float, ...]


def match_masks(pred_masks: np.ndarray, gt_masks: np.ndarray, min_iou: float = 0.25) -> MaskMatching:
    """Hungarian matching maximising the total mask IoU; pairs below min_iou are discarded."""
    iou = mask_iou_matrix(pred_masks, gt_masks)
    if iou.size == 0:
        return MaskMatching((), ())
    rows, cols = linear_sum_assignment(-iou)
    keep = [(int(r), int(c)) for r, c in zip(rows, cols) if iou[r, c] >= min_iou]
    return MaskMatching(tuple(keep), tuple(float(iou[r, c]) for r, c in keep))
