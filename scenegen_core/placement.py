"""Metric placement: from SceneGen's scene frame (relative to the query object, unitless) to the
first camera's optical frame in metres, using depth.

SceneGen predicts every object's pose relative to the query object, up to an unknown similarity
(scale, rotation, translation) between its scene frame and the world. With depth and intrinsics we
observe each object's visible surface in metres; this module estimates that similarity.

Algorithm (one similarity for the whole scene, so the predicted layout is kept):
  1. Per object k with enough valid depth pixels inside its mask in view 0: back-project them to
     camera-frame points P_k (metres) and take o_k = median(P_k) (robust to mask bleeding).
  2. Generated counterparts: c_k = centre of object k's posed mesh box in the scene frame.
  3. With >= 3 observed objects whose centres are not collinear: Umeyama's closed-form
     least-squares similarity (Umeyama 1991, eqs. 40-42) o_k ~ s R c_k + t.
  4. Otherwise (1-2 objects or degenerate layout) the rotation is not observable from centres: use
     the fixed axis convention R0 (scene z-up -> camera -y, scene y -> camera +z, i.e. a level camera
     looking along the scene's +y), the scale from the ratio of observed to generated box diagonals
     (median over objects), and t from the centroids.
Observed centroids come from visible surfaces only, so they are biased towards the camera by up to
half an object's depth; the next stage (registration of the generated meshes against the depth
points) removes that bias. Without depth the result stays in the scene frame (`metric=False`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from scenegen_core.geometry import backproject_depth
from scenegen_core.types import CameraIntrinsics, Pose, rotation_matrix_to_wxyz

# Scene frame (SceneGen assets are z-up) -> camera optical frame (y down, z forward) for a level camera.
LEVEL_CAMERA_FROM_SCENE = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass(frozen=True)
class PlacementConfig:
    """min_depth_pixels: fewer valid depth pixels in a mask than this and the object is not used
    as an observation. depth_range_m: readings outside (min, max) metres are invalid.
    collinear_tolerance: ratio of the second to first singular value of the centred generated
    centres below which the layout counts as collinear (rotation unobservable)."""

    min_depth_pixels: int = 20
    depth_range_m: tuple[float, float] = (0.05, 20.0)
    collinear_tolerance: float = 0.05

    def __post_init__(self) -> None:
        if self.min_depth_pixels < 1:
            raise ValueError(f"min_depth_pixels must be >= 1, got {self.min_depth_pixels}")
        low, high = self.depth_range_m
        if not 0 <= low < high:
            raise ValueError(f"depth_range_m must be (min, max) with 0 <= min < max, got {self.depth_range_m}")
        if not 0 < self.collinear_tolerance < 1:
            raise ValueError(f"collinear_tolerance must be in (0, 1), got {self.collinear_tolerance}")


class PlacementMethod(enum.Enum):
    """How the scene-to-camera similarity was obtained (module docstring, steps 3 and 4)."""

    UMEYAMA = "umeyama"
    AXIS_CONVENTION = "axis_convention"
    NONE = "none"


@dataclass(frozen=True)
class Placement:
    """camera_from_scene: similarity mapping scene-frame points to camera optical frame, metres.
    observed: [N] bool, which objects contributed depth. method: NONE means no depth (identity,
    not metric). residual_m: RMS distance between placed generated centres and observed
    centroids, metres (NaN when unobserved)."""

    camera_from_scene: Pose
    observed: np.ndarray
    method: PlacementMethod
    residual_m: float

    @property
    def metric(self) -> bool:
        return self.method is not PlacementMethod.NONE


def back_project(depth: np.ndarray, mask: np.ndarray, intrinsics: CameraIntrinsics, depth_range_m=(0.05, 20.0)) -> np.ndarray:
    """Camera-frame points of the valid depth pixels inside `mask`.

    depth: [H, W] float32 metres (0/NaN invalid); mask: [H, W] bool; depth_range_m: readings outside
    (min, max) are invalid. Returns [M, 3] float64, metres, camera optical frame.
    """
    points = backproject_depth(depth, intrinsics)[mask]
    valid = (points[:, 2] > depth_range_m[0]) & (points[:, 2] < depth_range_m[1])
    return points[valid]


def umeyama(source: np.ndarray, target: np.ndarray) -> Pose:
    """Least-squares similarity with target ~ s R source + t (Umeyama 1991).

    source, target: [N, 3] float64 corresponding points, N >= 3 and not collinear.
    """
    source = np.asarray(source, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    mu_s, mu_t = source.mean(0), target.mean(0)
    src, tgt = source - mu_s, target - mu_t
    # Eq. 38: covariance; eqs. 39-40: rotation with the reflection guard S.
    covariance = tgt.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[2, 2] = -1.0
    rotation = u @ sign @ vt
    # Eq. 42: scale from the source variance.
    variance = (src**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular) @ sign) / variance) if variance > 0 else 1.0
    translation = mu_t - scale * rotation @ mu_s
    return Pose(translation, rotation_matrix_to_wxyz(rotation), scale)


def estimate_placement(
    scene_boxes: np.ndarray,
    masks: np.ndarray,
    depth: np.ndarray | None,
    intrinsics: CameraIntrinsics | None,
    config: PlacementConfig = PlacementConfig(),
) -> Placement:
    """Similarity from the generated scene frame to the camera frame of the view.

    scene_boxes: [N, 2, 3] float64 min/max corners of each object's posed mesh in the scene frame.
    masks: [N, H, W] bool in the same object order; depth: [H, W] float32 metres or None;
    intrinsics: that view's CameraIntrinsics or None.
    """
    scene_boxes = np.asarray(scene_boxes, dtype=np.float64)
    count = len(scene_boxes)
    if depth is None or intrinsics is None or count == 0:
        return Placement(Pose(), np.zeros(count, dtype=bool), PlacementMethod.NONE, float("nan"))

    # Step 1: observed centroids and extents.
    observed = np.zeros(count, dtype=bool)
    centroids = np.zeros((count, 3))
    observed_diagonals = np.zeros(count)
    for k in range(count):
        points = back_project(depth, masks[k], intrinsics, config.depth_range_m)
        if len(points) < config.min_depth_pixels:
            continue
        observed[k] = True
        centroids[k] = np.median(points, axis=0)
        lo, hi = np.percentile(points, [2, 98], axis=0)
        observed_diagonals[k] = np.linalg.norm(hi - lo)
    if not observed.any():
        return Placement(Pose(), observed, PlacementMethod.NONE, float("nan"))

    # Step 2: generated centres and sizes.
    generated_centres = scene_boxes.mean(axis=1)
    generated_diagonals = np.linalg.norm(scene_boxes[:, 1] - scene_boxes[:, 0], axis=1)
    src, tgt = generated_centres[observed], centroids[observed]

    # Step 3: full similarity when the layout constrains rotation.
    if len(src) >= 3:
        singular = np.linalg.svd(src - src.mean(0), compute_uv=False)
        if singular[0] > 0 and singular[1] / singular[0] > config.collinear_tolerance:
            pose = umeyama(src, tgt)
            if pose.scale > 0:
                return Placement(pose, observed, PlacementMethod.UMEYAMA, _rms(pose, src, tgt))

    # Step 4: fixed axis convention, scale from sizes.
    usable = generated_diagonals[observed] > 1e-9
    ratios = observed_diagonals[observed][usable] / generated_diagonals[observed][usable]
    scale = float(np.median(ratios)) if len(ratios) else 1.0
    rotation = LEVEL_CAMERA_FROM_SCENE
    translation = tgt.mean(0) - scale * rotation @ src.mean(0)
    pose = Pose(translation, rotation_matrix_to_wxyz(rotation), scale)
    return Placement(pose, observed, PlacementMethod.AXIS_CONVENTION, _rms(pose, src, tgt))


def _rms(pose: Pose, source: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.sum((pose.apply(source) - target) ** 2, axis=1))))


def compose(outer: Pose, inner: Pose) -> Pose:
    """The similarity x -> outer(inner(x))."""
    rotation = outer.rotation_matrix @ inner.rotation_matrix
    return Pose(
        outer.apply(inner.translation[None])[0],
        rotation_matrix_to_wxyz(rotation),
        outer.scale * inner.scale,
    )
