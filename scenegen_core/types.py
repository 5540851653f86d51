"""Typed data passed between the stages of the pipeline and out to the ROS node.

Conventions used everywhere in `scenegen_core`:

* Camera frame: the ROS *optical* frame (x right, y down, z forward), metres.
* Quaternions are ``[w, x, y, z]`` (SceneGen's order), float64 unless stated otherwise.
* Images are ``[H, W, 3] uint8`` RGB; depth is ``[H, W] float32`` metres, 0 or NaN = no reading.
* Masks are ``[H, W] bool``.

Nothing in this module imports torch: the ROS node and the synthetic world use it too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np


def _as_float64(values, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array}")
    return array


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of one view (no distortion; rectified images expected).

    fx, fy, cx, cy in pixels; width, height in pixels. Pixel (u, v) = (column, row), the
    centre of the top-left pixel is (0, 0) as in ROS CameraInfo.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        if not (self.fx > 0 and self.fy > 0):
            raise ValueError(f"focal lengths must be positive, got fx={self.fx}, fy={self.fy}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def matrix(self) -> np.ndarray:
        """[3, 3] float64 K matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @classmethod
    def from_matrix(cls, k: np.ndarray, width: int, height: int) -> "CameraIntrinsics":
        k = np.asarray(k, dtype=np.float64).reshape(3, 3)
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))


def rotation_matrix_to_wxyz(rotation: np.ndarray) -> np.ndarray:
    """[3, 3] rotation matrix -> [4] float64 unit quaternion, w first, w >= 0 (Shepperd's method)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.asarray(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


@dataclass(frozen=True)
class Pose:
    """Similarity transform x' = s * R(q) @ x + t.

    translation: [3] float64 (metres when the frame is metric); rotation_wxyz: [4] float64 unit
    quaternion, w first; scale: float (dimensionless, uniform).
    """

    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation_wxyz: np.ndarray = field(default_factory=lambda: np.array([1.0, 0.0, 0.0, 0.0]))
    scale: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "translation", _as_float64(self.translation, (3,), "translation"))
        q = _as_float64(self.rotation_wxyz, (4,), "rotation_wxyz")
        norm = np.linalg.norm(q)
        if norm < 1e-12:
            raise ValueError("rotation quaternion has zero length")
        object.__setattr__(self, "rotation_wxyz", q / norm)
        if not np.isfinite(self.scale):
            raise ValueError(f"scale must be finite, got {self.scale}")
        object.__setattr__(self, "scale", float(self.scale))

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "Pose":
        """Pose of a [4, 4] similarity [s R | t] (uniform s > 0, proper rotation); ValueError otherwise."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise ValueError(f"expected a [4, 4] matrix, got {matrix.shape}")
        linear = matrix[:3, :3]
        scale = float(np.cbrt(np.linalg.det(linear)))
        if not scale > 0:
            raise ValueError("matrix is singular or mirrored; not a similarity with positive scale")
        rotation = linear / scale
        if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-6):
            raise ValueError("matrix is not a uniform-scale similarity (shear or anisotropic scale)")
        return cls(matrix[:3, 3], rotation_matrix_to_wxyz(rotation), scale)

    @property
    def rotation_matrix(self) -> np.ndarray:
        """[3, 3] float64 rotation matrix of the (normalised) quaternion."""
        w, x, y, z = self.rotation_wxyz
        return np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )

    @property
    def matrix(self) -> np.ndarray:
        """[4, 4] float64 homogeneous matrix [s*R | t]."""
        out = np.eye(4)
        out[:3, :3] = self.scale * self.rotation_matrix
        out[:3, 3] = self.translation
        return out

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform [N, 3] points; returns [N, 3] float64."""
        points = np.asarray(points, dtype=np.float64)
        return points @ (self.scale * self.rotation_matrix).T + self.translation

    def inverse(self) -> "Pose":
        """The similarity x' -> R^T (x' - t) / s (scale must be non-zero)."""
        if self.scale == 0:
            raise ValueError("a pose with scale 0 has no inverse")
        rotation_t = self.rotation_matrix.T
        conjugate = self.rotation_wxyz * np.array([1.0, -1.0, -1.0, -1.0])
        return Pose(-(rotation_t @ self.translation) / self.scale, conjugate, 1.0 / self.scale)


@dataclass(frozen=True)
class Mesh:
    """Triangle mesh.

    vertices: [V, 3] float32 (units and frame given by the owner); faces: [F, 3] int32 indices
    into vertices; vertex_colors: [V, 3] float32 RGB in [0, 1] or None.
    """

    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray | None = None

    def __post_init__(self) -> None:
        vertices = np.ascontiguousarray(self.vertices, dtype=np.float32).reshape(-1, 3)
        faces = np.ascontiguousarray(self.faces, dtype=np.int32).reshape(-1, 3)
        if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
            raise ValueError(f"face indices out of range for {len(vertices)} vertices")
        object.__setattr__(self, "vertices", vertices)
        object.__setattr__(self, "faces", faces)
        if self.vertex_colors is not None:
            colors = np.ascontiguousarray(self.vertex_colors, dtype=np.float32).reshape(-1, 3)
            if len(colors) != len(vertices):
                raise ValueError("vertex_colors must have one row per vertex")
            object.__setattr__(self, "vertex_colors", np.clip(colors, 0.0, 1.0))

    @property
    def is_empty(self) -> bool:
        return len(self.faces) == 0

    def transformed(self, pose: Pose) -> "Mesh":
        return dataclasses.replace(self, vertices=pose.apply(self.vertices).astype(np.float32))

    def bounds(self) -> np.ndarray:
        """[2, 3] float64 axis-aligned min/max corners (zeros for an empty mesh)."""
        if len(self.vertices) == 0:
            return np.zeros((2, 3))
        return np.stack([self.vertices.min(0), self.vertices.max(0)]).astype(np.float64)


@dataclass(frozen=True)
class View:
    """One camera viewpoint as handed to the pipeline.

    rgb: [H, W, 3] uint8. depth: [H, W] float32 metres or None (0/NaN = invalid).
    intrinsics: CameraIntrinsics or None. masks: [K, H, W] bool, one per object in a fixed
    object order shared by all views (object k in view 0 is object k in every view), or None
    when the pipeline must segment. frame_id / stamp_ns: passed through from the source.
    camera_from_reference: [4, 4] float64 rigid transform mapping points from the first view's
    camera frame into this view's camera frame (identity for view 0), or None when unknown.
    """

    rgb: np.ndarray
    depth: np.ndarray | None = None
    intrinsics: CameraIntrinsics | None = None
    masks: np.ndarray | None = None
    frame_id: str = "camera_optical_frame"
    stamp_ns: int = 0
    camera_from_reference: np.ndarray | None = None

    def __post_init__(self) -> None:
        rgb = np.asarray(self.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be [H, W, 3] uint8, got {rgb.shape} {rgb.dtype}")
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise ValueError("rgb image is empty (zero width or height)")
        height, width = rgb.shape[:2]
        if self.depth is not None:
            depth = np.asarray(self.depth, dtype=np.float32)
            if depth.shape != (height, width):
                raise ValueError(f"depth shape {depth.shape} does not match rgb {(height, width)}")
            object.__setattr__(self, "depth", depth)
        if self.masks is not None:
            masks = np.asarray(self.masks, dtype=bool)
            if masks.ndim != 3 or masks.shape[1:] != (height, width):
                raise ValueError(f"masks must be [K, {height}, {width}] bool, got {masks.shape}")
            object.__setattr__(self, "masks", masks)
        if self.intrinsics is not None and (self.intrinsics.width, self.intrinsics.height) != (width, height):
            raise ValueError(
                f"intrinsics are for {self.intrinsics.width}x{self.intrinsics.height}, image is {width}x{height}"
            )

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


@dataclass(frozen=True)
class StageTiming:
    """Wall-clock duration of one pipeline stage, seconds."""

    name: str
    seconds: float


@dataclass(frozen=True)
class SceneObject:
    """One generated object.

    index: the object's position in the caller's mask order (objects of a SceneResult are listed
    query object first).
    mesh: in the object's canonical asset frame, the box [-0.5, 0.5]^3, z up (TRELLIS convention).
    pose: asset frame -> the SceneResult's frame (metres, camera optical frame when
    SceneResult.metric); includes the similarity scale.
    pose_relative: asset frame -> the query object's asset frame (units: query asset boxes), i.e.
    SceneGen's predicted (t, q, s) after `assembly.assemble_in_query_frame` (the query has the
    identity; the quaternion is normalised and the scale floored at PipelineConfig.min_scale).
    boxes_per_view: [V, 4] float64 (u_min, v_min, u_max, v_max) of the object's mask in each view
    given to the pipeline (dropped views included), inclusive pixel indices (u_max is the last mask
    column); NaN rows where the object is not visible.
    score: confidence in [0, 1] (mean decoder occupancy probability over the object's voxels).
    observed_points: [M, 3] float32 depth points of the object's view-0 mask, in the SceneResult's
    frame, metres (what collision geometry must contain); None when the result is not metric.
    """

    index: int
    mesh: Mesh
    pose: Pose
    pose_relative: Pose
    boxes_per_view: np.ndarray
    score: float = 1.0
    label: str = ""
    observed_points: np.ndarray | None = None

    def mesh_in_output_frame(self) -> Mesh:
        return self.mesh.transformed(self.pose)

    @property
    def size(self) -> np.ndarray:
        """[3] float64 extent of the posed mesh's axis-aligned box in the output frame."""
        lo, hi = self.mesh_in_output_frame().bounds()
        return hi - lo


@dataclass(frozen=True)
class SceneResult:
    """Everything one pipeline run produced.

    frame_id: the first view's camera frame (as its image header said). metric: True when every
    pose is in metres in frame_id; False when no depth was usable: poses are then in the query
    object's unitless frame and must not be used as geometry in frame_id (no markers, no
    collision objects).
    timings: per-stage wall-clock times in execution order.
    model_description: one human-readable line saying which weights produced this result.
    """

    objects: tuple[SceneObject, ...]
    frame_id: str
    stamp_ns: int
    metric: bool
    timings: tuple[StageTiming, ...] = ()
    model_description: str = ""
    warnings: tuple[str, ...] = ()

    @property
    def total_seconds(self) -> float:
        return float(sum(t.seconds for t in self.timings))
