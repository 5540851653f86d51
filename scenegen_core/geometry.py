"""Camera and transform geometry shared by the runtime path and the synthetic world.

Conventions: camera optical frame (x right, y down, z forward), metres, pinhole intrinsics without
distortion (`CameraIntrinsics`), column vectors, [4, 4] homogeneous transforms named
``target_from_source``.
"""

from __future__ import annotations

import numpy as np

from scenegen_core.types import CameraIntrinsics


def pixel_rays(intrinsics: CameraIntrinsics) -> np.ndarray:
    """[H, W, 3] float64 camera-frame ray directions with unit z, one per pixel centre (u, v)."""
    u = (np.arange(intrinsics.width) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(intrinsics.height) - intrinsics.cy) / intrinsics.fy
    uu, vv = np.meshgrid(u, v)
    return np.stack([uu, vv, np.ones_like(uu)], axis=-1)


def backproject_depth(depth: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """[H, W, 3] float64 camera-frame points (metres) of a z-depth image; invalid pixels give 0 * ray."""
    depth = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    if depth.shape != (intrinsics.height, intrinsics.width):
        raise ValueError(f"depth {depth.shape} does not match intrinsics {intrinsics.height}x{intrinsics.width}")
    return pixel_rays(intrinsics) * depth[..., None]


def project_points(points_camera: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """[N, 2] float64 pixel coordinates (u, v) of [N, 3] camera-frame points (z must be > 0)."""
    points = np.asarray(points_camera, dtype=np.float64)
    if np.any(points[:, 2] <= 0):
        raise ValueError("cannot project points at or behind the camera (z <= 0)")
    return np.stack(
        [intrinsics.fx * points[:, 0] / points[:, 2] + intrinsics.cx, intrinsics.fy * points[:, 1] / points[:, 2] + intrinsics.cy],
        axis=1,
    )


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [4, 4] transform (rigid or similarity) to [N, 3] points; returns [N, 3] float64."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]


def depth_discontinuities(depth: np.ndarray, tolerance: np.ndarray | float, width_px: int = 1) -> np.ndarray:
    """[H, W] bool: pixels within width_px of a depth jump between 4-neighbours.

    depth: [H, W] z-depth in metres, 0 (or NaN) = no reading; tolerance: metres, scalar or [H, W].
    Neighbours p, q jump when exactly one has a reading, or both do and |z_p - z_q| exceeds the
    smaller of their tolerances. Both pixels of a jump are marked (width_px = 1), then the marks
    grow by width_px - 1 pixels.
    """
    from scipy import ndimage

    depth = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    tolerance = np.broadcast_to(np.asarray(tolerance, dtype=np.float64), depth.shape)
    marked = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        z, tol, out = (np.moveaxis(a, axis, 0) for a in (depth, tolerance, marked))
        a, b = z[:-1], z[1:]
        jump = ((a > 0) != (b > 0)) | ((a > 0) & (b > 0) & (np.abs(a - b) > np.minimum(tol[:-1], tol[1:])))
        out[:-1] |= jump
        out[1:] |= jump
    if width_px > 1:
        marked = ndimage.binary_dilation(marked, iterations=width_px - 1)
    return marked
