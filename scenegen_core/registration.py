"""Registration of a generated scene to observed depth: one similarity for the scene, then a
correction per object (rigid or a similarity, `RegistrationConfig.per_object`).

The centre fit of `placement` uses visible-surface medians (biased towards the camera by up to half
an object) and trusts the predicted layout's centres, so a noisy layout inflates or shrinks the
metric scale. Here the generated surfaces themselves are fitted to the depth points:

  1. Hypotheses for camera_from_scene: the centre fit, and, when the table plane is known, each of
     the six scene axes pointing along the table normal ("up") at `yaw_steps` yaws (SceneGen's
     scene frame is the query object's asset frame, which is upright only if the query stands
     upright). Their scale is the median ratio of observed to generated object extents, their
     translation matches the centroids of the observed objects.
  2. Coarse score of every hypothesis (truncated distance of the observed points to the generated
     surfaces, exact: open3d ray-casting scene); the best `refine_top` go on.
  3. Scaled ICP (open3d point-to-point with scaling) of the observed points, camera frame, to the
     generated surface points, scene frame, over a shrinking correspondence distance; then rigid
     point-to-plane ICP with a Tukey kernel on the generated surface normals.
  4. Final score = truncated mean distance / inlier_distance_m + free_space_weight x the fraction
     of generated surface points seen in front of the observed depth (a scene placed too large or
     turned the wrong way hides what the camera saw). The lowest score wins.
  5. Per object, a correction of its placement, kept only when it lowers that object's score:
     `per_object="rigid"`: point-to-plane ICP of its own depth points to its own surface at the scene
     fit's scale (right when the predicted layout is good, as with the released weights);
     `"similarity"` (default): steps 1-4 for the object alone (its own asset axes may point up), so
     each object gets its own metric scale and pose even when the predicted relative layout is poor
     (the CPU-trained embedded default). "none" keeps the scene fit.

Distances in the scene frame are in query-asset units; they are divided by the similarity's scale
to report metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from scenegen_core.geometry import project_points, transform_points
from scenegen_core.placement import compose
from scenegen_core.types import CameraIntrinsics, Mesh, Pose, rotation_matrix_to_wxyz

PER_OBJECT_MODES = ("none", "rigid", "similarity")


@dataclass(frozen=True)
class RegistrationConfig:
    """Settings of `register_scene` (module docstring steps).

    enabled: False keeps the centre fit. model_points: surface samples per generated object.
    max_observed_points: depth points per object used (seeded subset). yaw_steps: yaws per up-axis
    hypothesis (step 1). refine_top: hypotheses refined by ICP (step 2; the centre fit always is).
    correspondence_schedule: ICP correspondence distances, scene units (query asset boxes) (step 3).
    iterations: ICP iterations per schedule entry. tukey_scale: Tukey kernel width, scene units.
    inlier_distance_m: an observed point within this of the placed surface counts as explained, and
    distances are truncated there for scoring. free_space_margin_m / free_space_weight: a generated
    point closer to the camera than the observed depth by more than the margin is a violation
    (step 4). per_object: "none", "rigid" or "similarity" (step 5). max_scale_change: ICP results
    whose scale differs from their hypothesis's by more than this factor are discarded. min_points: objects with fewer depth points
    are not used. seed: subsampling seed.
    """

    enabled: bool = True
    model_points: int = 600
    max_observed_points: int = 500
    yaw_steps: int = 8
    refine_top: int = 3
    correspondence_schedule: tuple[float, ...] = (0.6, 0.3, 0.15)
    iterations: int = 20
    tukey_scale: float = 0.05
    inlier_distance_m: float = 0.01
    free_space_margin_m: float = 0.01
    free_space_weight: float = 2.0
    per_object: str = "similarity"
    max_scale_change: float = 2.0
    min_points: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("model_points", "max_observed_points", "yaw_steps", "refine_top", "iterations", "min_points"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.correspondence_schedule or min(self.correspondence_schedule) <= 0:
            raise ValueError(f"correspondence_schedule must be positive distances, got {self.correspondence_schedule}")
        for name in ("tukey_scale", "inlier_distance_m", "free_space_margin_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if not self.max_scale_change > 1:
            raise ValueError(f"max_scale_change must be > 1, got {self.max_scale_change}")
        if self.free_space_weight < 0:
            raise ValueError(f"free_space_weight must be >= 0, got {self.free_space_weight}")
        if self.per_object not in PER_OBJECT_MODES:
            raise ValueError(f"per_object must be one of {PER_OBJECT_MODES}, got {self.per_object!r}")


# Named settings for command lines and node parameters: per-object similarity, per-object rigid at
# the scene's scale, one scene similarity, or none (the centre fit of `placement`).
REGISTRATION_MODES = {
    "similarity": RegistrationConfig(per_object="similarity"),
    "rigid": RegistrationConfig(per_object="rigid"),
    "scene": RegistrationConfig(per_object="none"),
    "off": RegistrationConfig(enabled=False),
}


@dataclass(frozen=True)
class DepthObservation:
    """What the camera saw, for scoring against free space.

    depth: [H, W] float32 metres (0/NaN invalid); intrinsics: that camera's; up: [3] float64 unit
    table normal in the camera optical frame pointing to the camera's side, or None (no table found).
    """

    depth: np.ndarray
    intrinsics: CameraIntrinsics
    up: np.ndarray | None

    @property
    def nearest_depth(self) -> np.ndarray:
        """[H, W] float64: the smallest valid depth in each pixel's 3x3 neighbourhood (inf where none).
        A surface point rounded onto the wrong side of a silhouette is compared with the near side."""
        cached = self.__dict__.get("_nearest_depth")
        if cached is None:
            from scipy.ndimage import minimum_filter

            depth = np.nan_to_num(np.asarray(self.depth, dtype=np.float64), nan=0.0)
            cached = minimum_filter(np.where(depth > 0, depth, np.inf), size=3, mode="nearest")
            object.__setattr__(self, "_nearest_depth", cached)
        return cached


@dataclass(frozen=True)
class ObjectFit:
    """correction: Pose in the scene frame applied after the object's scene pose (identity when not
    refined; rigid for per_object="rigid", a similarity for "similarity"). residual_m: RMS distance of its explained depth points to its placed surface,
    metres (NaN when unobserved). overlap: fraction of its depth points within inlier_distance_m
    of its placed surface (NaN when unobserved)."""

    correction: Pose
    residual_m: float
    overlap: float


@dataclass(frozen=True)
class Registration:
    """camera_from_scene: similarity scene frame -> camera optical frame (metres). objects: one
    ObjectFit per object. free_space_violation: fraction of generated surface points in front of the
    observed depth (step 4). from_centre_fit: the winner started from the centre fit rather than an
    up-axis hypothesis."""

    camera_from_scene: Pose
    objects: tuple[ObjectFit, ...]
    free_space_violation: float
    from_centre_fit: bool


class _Surface:
    """Generated surfaces in one frame: samples (points [P, 3], normals [P, 3], object label [P]) as
    ICP targets and free-space probes, and exact point-to-surface distances (open3d ray-casting
    scene) for scoring, so the score does not depend on the sampling density."""

    def __init__(self, meshes: dict[int, Mesh], points: np.ndarray, normals: np.ndarray, label: np.ndarray) -> None:
        import open3d as o3d

        self.meshes, self.points, self.normals, self.label = meshes, points, normals, label
        self._scene = o3d.t.geometry.RaycastingScene()
        for mesh in meshes.values():
            self._scene.add_triangles(
                o3d.core.Tensor(mesh.vertices.astype(np.float32)), o3d.core.Tensor(mesh.faces.astype(np.uint32))
            )

    @classmethod
    def sampled(cls, meshes: dict[int, Mesh], count: int, seed: int) -> "_Surface":
        """`count` area-uniform samples per mesh (label = its key), seeded per key."""
        import trimesh

        points, normals, label = [], [], []
        for k, mesh in meshes.items():
            tri = trimesh.Trimesh(mesh.vertices.astype(np.float64), mesh.faces, process=False)
            samples, face = trimesh.sample.sample_surface(tri, count, seed=seed + k)
            points.append(samples)
            normals.append(tri.face_normals[face])
            label.append(np.full(len(samples), k))
        return cls(meshes, np.concatenate(points), np.concatenate(normals), np.concatenate(label))

    def only(self, k: int) -> "_Surface":
        """Object k alone (the same samples)."""
        own = self.label == k
        return _Surface({k: self.meshes[k]}, self.points[own], self.normals[own], self.label[own])

    def distance(self, points: np.ndarray) -> np.ndarray:
        """[N] float64 unsigned distance of [N, 3] points (this frame) to the nearest surface."""
        import open3d as o3d

        query = o3d.core.Tensor(np.ascontiguousarray(points, dtype=np.float32))
        return self._scene.compute_distance(query).numpy().astype(np.float64)


def _cloud(points: np.ndarray, normals: np.ndarray | None = None):
    import open3d as o3d

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))
    if normals is not None:
        cloud.normals = o3d.utility.Vector3dVector(np.ascontiguousarray(normals, dtype=np.float64))
    return cloud


def _icp_similarity(observed, surface_cloud, scene_from_camera: np.ndarray, config: RegistrationConfig) -> np.ndarray:
    """Step 3: [4, 4] scene_from_camera after scaled point-to-point then rigid point-to-plane ICP."""
    import open3d as o3d

    reg = o3d.pipelines.registration
    criteria = reg.ICPConvergenceCriteria(relative_fitness=1e-9, relative_rmse=1e-9, max_iteration=config.iterations)
    transform = scene_from_camera
    for distance in config.correspondence_schedule:
        result = reg.registration_icp(
            observed, surface_cloud, distance, transform, reg.TransformationEstimationPointToPoint(with_scaling=True), criteria
        )
        if len(result.correspondence_set) >= 3 and np.all(np.isfinite(result.transformation)):
            transform = result.transformation
    # Point-to-plane is rigid in open3d: refine on the observed points already scaled into the scene.
    scaled = _cloud(transform_points(transform, np.asarray(observed.points)))
    estimation = reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=config.tukey_scale))
    result = reg.registration_icp(scaled, surface_cloud, config.correspondence_schedule[-1], np.eye(4), estimation, criteria)
    if len(result.correspondence_set) >= 3 and np.all(np.isfinite(result.transformation)):
        transform = result.transformation @ transform
    return transform


def _truncated_distance(surface: _Surface, camera_from_model: Pose, points_camera: np.ndarray, config: RegistrationConfig) -> np.ndarray:
    """[N] float64 distance (metres) of camera-frame points to the surface placed by
    camera_from_model, capped at inlier_distance_m."""
    distance = surface.distance(camera_from_model.inverse().apply(points_camera)) * camera_from_model.scale
    return np.minimum(distance, config.inlier_distance_m)


def free_space_violation(points_camera: np.ndarray, observation: DepthObservation, margin_m: float) -> float:
    """Fraction of [N, 3] camera-frame points (metres) that lie more than margin_m in front of the
    valid depth they project onto (nearest in the pixel's 3x3 neighbourhood; the camera would have
    seen them) or behind the camera, among those two kinds and every point that projects onto
    valid depth."""
    k = observation.intrinsics
    pts = points_camera[points_camera[:, 2] > 1e-6]
    u, v = np.round(project_points(pts, k)).astype(np.int64).T
    inside = (u >= 0) & (u < k.width) & (v >= 0) & (v < k.height)
    observed = observation.nearest_depth[v[inside], u[inside]]
    valid = np.isfinite(observed)
    in_front = int(np.sum(pts[inside][valid, 2] < observed[valid] - margin_m))
    # Points behind the camera are as impossible as points in front of the depth: a fit that throws
    # the surface behind the camera must not look free of violations.
    behind = len(points_camera) - len(pts)
    checked = int(valid.sum()) + behind
    return (in_front + behind) / checked if checked else 0.0


def _up_hypotheses(up: np.ndarray, axes: np.ndarray, yaw_steps: int) -> list[np.ndarray]:
    """Rotations camera_from_model mapping each of the six signed `axes` ([3, 3], rows = unit vectors
    in the model frame) onto `up`, at each of `yaw_steps` yaws about it."""
    out = []
    for axis in np.concatenate([axes, -axes]):
        align, _ = Rotation.align_vectors(up[None], axis[None])
        for yaw in np.arange(yaw_steps) * 2 * np.pi / yaw_steps:
            out.append(Rotation.from_rotvec(yaw * up).as_matrix() @ align.as_matrix())
    return out


def _extent(points: np.ndarray) -> float:
    lo, hi = np.percentile(points, [2, 98], axis=0)
    return float(np.linalg.norm(hi - lo))


@dataclass(frozen=True)
class _Fit:
    """camera_from_model similarity, its score (step 4, lower is better), free-space violation,
    and whether it came from the given initial pose."""

    pose: Pose
    score: float
    violation: float
    from_initial: bool


def _fit_similarity(
    observed: np.ndarray,
    groups: Sequence[tuple[np.ndarray, np.ndarray]],
    model: _Surface,
    initial: Pose,
    axes: np.ndarray,
    observation: DepthObservation,
    config: RegistrationConfig,
) -> _Fit | None:
    """Steps 1-4 for one model (the whole scene or one object).

    observed: [M, 3] camera-frame depth points (metres); groups: per observed object (its depth
    points, its model points) for the extent ratio and centroids; model: surface samples in the
    model frame; initial: camera_from_model to start from; axes: [3, 3] model-frame axes that may
    point up. None when every hypothesis diverged.
    """
    def score(camera_from_model: Pose) -> float:
        return float(_truncated_distance(model, camera_from_model, observed, config).mean() / config.inlier_distance_m)

    # Step 1: hypotheses.
    hypotheses = [initial]
    if observation.up is not None:
        scale = float(np.median([_extent(seen) / max(_extent(own), 1e-9) for seen, own in groups]))
        observed_centroid = np.mean([seen.mean(0) for seen, _ in groups], axis=0)
        model_centroid = np.mean([own.mean(0) for _, own in groups], axis=0)
        for rotation in _up_hypotheses(np.asarray(observation.up, dtype=np.float64), axes, config.yaw_steps):
            translation = observed_centroid - scale * rotation @ model_centroid
            hypotheses.append(Pose(translation, rotation_matrix_to_wxyz(rotation), scale))
    # Step 2: coarse scores; the initial pose is always refined.
    coarse = np.array([score(pose) for pose in hypotheses])
    order = [0] + [int(i) for i in np.argsort(coarse, kind="stable") if i != 0][: config.refine_top]
    # Steps 3-4.
    observed_cloud, model_cloud = _cloud(observed), _cloud(model.points, model.normals)
    best = None
    for index in order:
        model_from_camera = _icp_similarity(observed_cloud, model_cloud, hypotheses[index].inverse().matrix, config)
        try:
            candidate = Pose.from_matrix(np.linalg.inv(model_from_camera))
        except (ValueError, np.linalg.LinAlgError):
            continue  # ICP collapsed the scale or diverged: this hypothesis is out
        if not 1.0 / config.max_scale_change <= candidate.scale / hypotheses[index].scale <= config.max_scale_change:
            continue  # scaled ICP can shrink the depth points onto one spot of the surface
        violation = free_space_violation(candidate.apply(model.points), observation, config.free_space_margin_m)
        total = score(candidate) + config.free_space_weight * violation
        if best is None or total < best.score:
            best = _Fit(candidate, total, violation, index == 0)
    return best


def register_scene(
    meshes_scene: Sequence[Mesh],
    observed_camera: Sequence[np.ndarray],
    initial: Pose,
    observation: DepthObservation,
    config: RegistrationConfig = RegistrationConfig(),
    object_axes: Sequence[np.ndarray] | None = None,
) -> Registration:
    """Fit the generated scene to the depth points (module docstring).

    meshes_scene: per object the generated mesh posed in the scene frame (query asset units).
    observed_camera: per object [M_k, 3] float64 depth points inside its mask, camera optical frame,
    metres (M_k may be 0). initial: the centre fit's camera_from_scene (`placement`). object_axes:
    per object [3, 3] its asset axes in the scene frame (rows), the directions that may point up in
    step 5; default the scene axes.
    """
    count = len(meshes_scene)
    rng = np.random.default_rng(config.seed)
    used = [k for k in range(count) if len(observed_camera[k]) >= config.min_points and not meshes_scene[k].is_empty]
    identity_fits = tuple(ObjectFit(Pose(), float("nan"), float("nan")) for _ in range(count))
    if not used:
        return Registration(initial, identity_fits, float("nan"), True)
    subsets = {
        k: observed_camera[k][rng.choice(len(observed_camera[k]), config.max_observed_points, replace=False)]
        if len(observed_camera[k]) > config.max_observed_points
        else np.asarray(observed_camera[k], dtype=np.float64)
        for k in used
    }
    surface = _Surface.sampled({k: meshes_scene[k] for k in used}, config.model_points, config.seed)
    own = {k: surface.only(k) for k in used}

    # Steps 1-4 for the whole scene.
    groups = [(subsets[k], own[k].points) for k in used]
    scene_fit = _fit_similarity(np.concatenate([subsets[k] for k in used]), groups, surface, initial, np.eye(3), observation, config)
    if scene_fit is None:
        return Registration(initial, identity_fits, float("nan"), True)
    camera_from_scene = scene_fit.pose

    # Step 5: per object, a correction in the scene frame, then its fit.
    scene_from_camera = camera_from_scene.inverse()
    fits = list(identity_fits)
    for k in used:
        correction = Pose()
        if config.per_object != "none":
            axes = np.eye(3) if object_axes is None else np.asarray(object_axes[k], dtype=np.float64)
            fit = _fit_object(subsets[k], own[k], camera_from_scene, axes, observation, config)
            correction = compose(scene_from_camera, fit)
        placed = compose(camera_from_scene, correction)
        distance = own[k].distance(placed.inverse().apply(subsets[k])) * placed.scale
        inliers = distance <= config.inlier_distance_m
        residual = float(np.sqrt(np.mean(distance[inliers] ** 2))) if inliers.any() else float("nan")
        fits[k] = ObjectFit(correction, residual, float(inliers.mean()))
    return Registration(camera_from_scene, tuple(fits), scene_fit.violation, scene_fit.from_initial)


def _fit_object(
    observed: np.ndarray, model: _Surface, camera_from_scene: Pose, axes: np.ndarray, observation: DepthObservation, config: RegistrationConfig
) -> Pose:
    """Step 5: camera_from_scene for one object alone: rigid (scale of the scene fit kept, one ICP
    from it) or a similarity searched like the scene (steps 1-4); the scene fit unless better."""
    import open3d as o3d

    def total(pose: Pose) -> float:
        distance = _truncated_distance(model, pose, observed, config)
        violation = free_space_violation(pose.apply(model.points), observation, config.free_space_margin_m)
        return float(distance.mean() / config.inlier_distance_m) + config.free_space_weight * violation

    baseline = total(camera_from_scene)
    if config.per_object == "similarity":
        fit = _fit_similarity(observed, [(observed, model.points)], model, camera_from_scene, axes, observation, config)
        return fit.pose if fit is not None and fit.score < baseline else camera_from_scene
    reg = o3d.pipelines.registration
    inside = camera_from_scene.inverse().apply(observed)
    estimation = reg.TransformationEstimationPointToPlane(reg.TukeyLoss(k=config.tukey_scale))
    criteria = reg.ICPConvergenceCriteria(relative_fitness=1e-9, relative_rmse=1e-9, max_iteration=config.iterations)
    result = reg.registration_icp(
        _cloud(inside), _cloud(model.points, model.normals), config.correspondence_schedule[-1], np.eye(4), estimation, criteria
    )
    try:
        # ICP moved the observed points onto the model; the model moves the other way.
        candidate = compose(camera_from_scene, Pose.from_matrix(result.transformation).inverse())
    except ValueError:
        return camera_from_scene
    return candidate if len(result.correspondence_set) >= 3 and total(candidate) < baseline else camera_from_scene


