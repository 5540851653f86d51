"""Small rigid/similarity-transform helpers shared by the world modules (float64, column vectors)."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from scenegen_core.geometry import transform_points  # noqa: F401  (re-exported for world users)


def rotation_about(axis: str, degrees: float) -> np.ndarray:
    """[3, 3] float64 right-handed rotation about the x, y or z axis (column-vector convention)."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis must be 'x', 'y' or 'z', got {axis!r}")
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


def check_rigid(matrix: np.ndarray, name: str = "camera_from_world") -> np.ndarray:
    """[4, 4] float64 copy of a rigid transform; ValueError if it is not one (bad shape, scale, reflection)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be a finite [4, 4] matrix, got shape {matrix.shape}")
    rotation = matrix[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6) or np.linalg.det(rotation) < 0:
        raise ValueError(f"{name} rotation is not orthonormal with det +1 (scaled or mirrored?)")
    if not np.allclose(matrix[3], [0, 0, 0, 1]):
        raise ValueError(f"{name} last row must be [0, 0, 0, 1], got {matrix[3]}")
    return matrix


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """[4, 4] camera_from_world of an optical-frame camera (x right, y down, z forward) at eye looking at target."""
    eye, target = np.asarray(eye, dtype=np.float64), np.asarray(target, dtype=np.float64)
    forward = target - eye
    if np.linalg.norm(forward) < 1e-9:
        raise ValueError("look_at: eye and target coincide")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("look_at: viewing direction is parallel to the up vector")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    world_from_camera = np.eye(4)
    world_from_camera[:3, :3] = np.stack([right, down, forward], axis=1)
    world_from_camera[:3, 3] = eye
    return np.linalg.inv(world_from_camera)
