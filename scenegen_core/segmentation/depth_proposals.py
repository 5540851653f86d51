"""Depth-only instance segmentation of tabletop scenes, and Hungarian matching of masks.

Masks straight from depth (the pipeline's segmenter when no masks are given): every view's depth
is back-projected into the reference camera frame (view 0's optical frame, metres), the table is
found among the large planes (`find_table`), points clearly above it and over it are clustered
with DBSCAN (open3d), clusters that are one object in the images are joined (`_link_clusters`:
a cup's rim, its inside seen through the opening), and each cluster becomes one object whose mask
in every view is the set of pixels whose points joined it, plus the pixels without a reading
that the mask encloses.

Robust to sensor noise. Stereo / structured-light depth noise grows with z^2 (z = f b / disparity)
and quantisation adds a constant: sigma_z(z) = sqrt(floor^2 + (at_1m * z^2)^2) (`DepthNoise`).
A height above a plane moves by n . ray per unit of depth along the pixel's ray (unit z), so the
height noise of a point is sigma_z(z) * |n . ray|. `find_table` estimates the depth noise from
each candidate plane's own points (a robust fit over depth bins, `_depth_noise`), and every
height threshold is ``max(fixed floor, noise_sigmas * height sigma)``. With exact depth the
estimate is ~0 and the fixed floors (``plane_distance``, ``min_height``) apply, as before noise
existed. Points whose noise_sigmas height sigmas exceed ``max_noise_band`` (far away) take part
in nothing; clusters need ``min_peak_points`` clearly above the noise.

Which plane is the table: in a room, the floor and the walls are large planes too. The
candidates are the planes found by sequential RANSAC on voxel-downsampled points, each refined by
total least squares on its large connected parts (`_refine_plane`). Among those facing the
camera's "up" (cosine between the normal and the optical frame's -y at least ``min_up_cosine``:
an upright-camera prior that only excludes walls facing the camera) and not parallel to and more
than ``max_height`` below another candidate (a floor under the table), the table is the one that
supports most points: points lifted from the noise threshold to ``max_height`` above it, on no
candidate plane, at least ``table_margin`` inside its region (the convex hull of its surface: the
large connected image regions of its band, `_plane_region`). A wall supports nothing once the
floor's points are set aside, the top of a box only what is stacked on it.

Limits (by design, documented rather than hidden): objects closer than about ``cluster_eps`` to
each other merge into one instance (touching and stacked objects are one cluster); object parts
lower than the height threshold above the table are counted as table; the table must be one of
the ``max_planes`` largest planes in view and within the sensor's useful range.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import ndimage
from scipy.optimize import linear_sum_assignment, nnls
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull, QhullError

from scenegen_core.geometry import backproject_depth, transform_points
from scenegen_core.types import View

_MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation of a Gaussian
_NOISE_ITERATIONS = 3  # noise estimate rounds
_REFINE_ITERATIONS = 10  # at most this many plane refits
_PART_EPS_VOXELS = 4  # neighbourhood radius, in voxels, of a plane's connected parts
_PARALLEL_DEG = 5.0  # planes whose normals differ less are parallel (a floor under a table)
_MIN_NOISE_SAMPLES = 30  # fewest plane points per depth bin for a noise estimate
_NOISE_BAND_SIGMAS = 4.0  # half-width of the band the noise is estimated on, in its standard deviations
_NOISE_BINS = 8  # depth bins of the noise model fit
_MIN_NOISE_SENSITIVITY = 0.3  # points seen more obliquely (|n . ray| below) do not inform the noise estimate
_REGION_FRACTION = 0.1  # image regions of a plane smaller than this share of its largest are not its surface


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

    def in_plane(self, points: np.ndarray) -> np.ndarray:
        """[N, 2] float64 coordinates of [N, 3] points projected onto the plane (basis axes, metres)."""
        origin, e1, e2 = self.basis()
        relative = np.asarray(points, dtype=np.float64) - origin
        return np.stack([relative @ e1, relative @ e2], axis=1)


@dataclass(frozen=True)
class SegmentationConfig:
    """Depth segmentation settings (metres; module docstring).

    plane_distance: smallest half-width of a plane's inlier band (exact depth); the band is
    max(plane_distance, noise_sigmas * height sigma). search_distance: RANSAC inlier distance of
    the candidate planes (loose, so noisy planes are found whole; it also caps the refit bands).
    ransac_iterations: RANSAC trials per plane. voxel_size: downsampling before plane search and
    table scoring. max_planes / min_plane_fraction: at most this many candidates, each with at
    least this share of the downsampled points. min_up_cosine: smallest cosine between a
    candidate's normal and the reference camera's up (-y); -1 disables the prior. min_height:
    smallest height threshold; lower points (than max(min_height, noise_sigmas * height sigma))
    belong to the table. max_height: points higher above the table are not on it (room, walls).
    table_margin: how far beyond the table's region a point may lie and still be over it.
    noise_sigmas: thresholds in standard deviations of the estimated noise. max_noise_band:
    points whose noise_sigmas height sigmas exceed this are too noisy to tell from the table: they
    neither form its region, nor support it, nor become object points (for a D435-like sensor,
    beyond about 2 m). cluster_eps: DBSCAN neighbourhood radius (raised to 3 pixel footprints at
    the median depth when the depth is coarser). cluster_min_points: DBSCAN core-point neighbour
    count. min_link_pairs / link_radius_px: clusters with this many pixel pairs at most
    link_radius_px apart in an image and closer than eps in 3D are merged (0 = never; DBSCAN's
    density rule splits one-pixel-wide structures, and holes in the depth cut them).
    enclosed_fraction: a cluster whose surrounding pixels (within link_radius_px, with a reading)
    belong at least this much to one other cluster, and that lies behind them, is seen through an
    opening of it (the inside of a cup) and joins it. min_object_points: smaller clusters are
    dropped. peak_sigmas / min_peak_points: so are clusters with fewer points higher than
    max(min_height, peak_sigmas height sigmas) above the table (noise that just crossed the
    noise_sigmas threshold; always passed with exact depth). grow_sigmas / grow_px: then each
    object takes the points lower than the threshold, down to max(min_height, grow_sigmas height
    sigmas), that connect to it in the image (up to grow_px pixels away, each step closer than
    eps in 3D): hysteresis, so noise cuts less off the foot of an object (>= noise_sigmas: off).
    fill_holes: add the pixels without a
    reading that a mask encloses (or closes over with a 3 x 3 closing) to it. seed: RANSAC seed
    (open3d's global generator).
    """

    plane_distance: float = 0.004
    search_distance: float = 0.015
    ransac_iterations: int = 500
    voxel_size: float = 0.005
    max_planes: int = 4
    min_plane_fraction: float = 0.05
    min_up_cosine: float = 0.0
    min_height: float = 0.006
    max_height: float = 0.6
    table_margin: float = 0.03
    noise_sigmas: float = 2.5
    max_noise_band: float = 0.04
    cluster_eps: float = 0.015
    cluster_min_points: int = 8
    min_link_pairs: int = 3
    link_radius_px: int = 2
    enclosed_fraction: float = 0.5
    min_object_points: int = 30
    peak_sigmas: float = 5.0
    min_peak_points: int = 5
    grow_sigmas: float = 1.5
    grow_px: int = 8
    fill_holes: bool = True
    seed: int = 0


@dataclass(frozen=True)
class ViewPoints:
    """Back-projected depth of one view.

    points: [H, W, 3] float64 in the reference camera frame, metres; valid: [H, W] bool (depth > 0);
    depth: [H, W] float64 z-depth in this view's own camera, metres (what the sensor noise depends
    on); origin: [3] float64 this camera's centre in the reference frame (zeros for view 0).
    """

    points: np.ndarray
    valid: np.ndarray
    depth: np.ndarray
    origin: np.ndarray


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
        depth = np.nan_to_num(np.asarray(view.depth, dtype=np.float64), nan=0.0)
        points = backproject_depth(depth, view.intrinsics)
        origin = np.zeros(3)
        if k > 0:
            reference_from_camera = np.linalg.inv(view.camera_from_reference)
            points = transform_points(reference_from_camera, points.reshape(-1, 3)).reshape(points.shape)
            origin = reference_from_camera[:3, 3].copy()
        out.append(ViewPoints(points=points, valid=depth > 0, depth=depth, origin=origin))
    return out


@dataclass(frozen=True)
class DepthNoise:
    """Depth noise of the sensor, metres: sigma_z(z) = sqrt(floor^2 + (at_1m * z^2)^2) at z-depth z
    (metres); the z^2 term is the stereo / structured-light error, the floor what does not grow
    with depth (quantisation). Both are 0 for exact depth."""

    at_1m: float = 0.0
    floor: float = 0.0

    def sigma(self, depth: np.ndarray) -> np.ndarray:
        return np.hypot(self.floor, self.at_1m * np.square(np.asarray(depth, dtype=np.float64)))


@dataclass(frozen=True)
class DepthSamples:
    """Depth points with what their noise depends on: points [N, 3] float64 (reference frame,
    metres), depth [N] (z in their own camera, metres), origins [N, 3] (their camera's centre in
    the reference frame)."""

    points: np.ndarray
    depth: np.ndarray
    origins: np.ndarray

    @classmethod
    def of(cls, per_view: Sequence[ViewPoints], masks: Sequence[np.ndarray]) -> "DepthSamples":
        """The points of each view's [H, W] bool mask, views in order."""
        return cls(
            np.concatenate([v.points[m] for v, m in zip(per_view, masks)]),
            np.concatenate([v.depth[m] for v, m in zip(per_view, masks)]),
            np.concatenate([np.broadcast_to(v.origin, (int(m.sum()), 3)) for v, m in zip(per_view, masks)]),
        )

    def subset(self, index: np.ndarray) -> "DepthSamples":
        return DepthSamples(self.points[index], self.depth[index], self.origins[index])

    def sensitivity(self, plane: "TablePlane") -> np.ndarray:
        """[N] |n . ray|: metres of height per metre of depth along each point's ray (unit z)."""
        depth = np.where(self.depth > 0, self.depth, 1.0)
        return np.abs((self.points - self.origins) @ plane.normal) / depth


@dataclass(frozen=True)
class TableEstimate:
    """The table found by `find_table`.

    plane: the table plane (reference frame). noise: the sensor's estimated depth noise (0 for
    exact depth). hull: [P, 2] float64 convex hull of the table's surface in plane.in_plane
    coordinates, metres. inliers / support: inlier and supported downsampled points (module
    docstring). candidates: planes considered.
    """

    plane: TablePlane
    noise: DepthNoise
    hull: np.ndarray
    inliers: int
    support: int
    candidates: int

    def height_sigma(self, samples: DepthSamples) -> np.ndarray:
        """[N] standard deviation (metres) of the samples' heights above the plane from sensor noise."""
        return self.noise.sigma(samples.depth) * samples.sensitivity(self.plane)

    def threshold(self, samples: DepthSamples, floor: float, sigmas: float) -> np.ndarray:
        """[N] height threshold (metres): max(floor, sigmas * height sigma)."""
        return np.maximum(floor, sigmas * self.height_sigma(samples))

    def resolvable(self, samples: DepthSamples, config: "SegmentationConfig") -> np.ndarray:
        """[N] bool: noise_sigmas height sigmas <= max_noise_band, i.e. heights above the table can
        be told from its noise there (always true for exact depth)."""
        return config.noise_sigmas * self.height_sigma(samples) <= config.max_noise_band

    def over_table(self, points: np.ndarray, margin: float) -> np.ndarray:
        """[N] bool: points whose projection onto the plane lies within margin of the table's hull
        (margin < 0: at least -margin inside it)."""
        if len(self.hull) < 3:
            return np.ones(len(points), dtype=bool)
        hull = ConvexHull(self.hull)
        xy = self.plane.in_plane(points)
        return np.all(xy @ hull.equations[:, :2].T + hull.equations[:, 2] <= margin, axis=1)

    def lifted(self, samples: DepthSamples, config: "SegmentationConfig") -> np.ndarray:
        """[N] bool: resolvable samples more than the noise threshold and less than max_height above the table."""
        height = self.plane.height(samples.points)
        return (
            self.resolvable(samples, config)
            & (height > self.threshold(samples, config.min_height, config.noise_sigmas))
            & (height < config.max_height)
        )


def _downsample(points: np.ndarray, voxel_size: float) -> np.ndarray:
    """Indices of one point per occupied voxel (the first in input order), sorted."""
    if voxel_size <= 0 or len(points) == 0:
        return np.arange(len(points))
    keys = np.floor(points / voxel_size).astype(np.int64)
    return np.sort(np.unique(keys, axis=0, return_index=True)[1])


def _fit_plane(points: np.ndarray) -> TablePlane:
    """Total-least-squares plane of [N >= 3, 3] points, oriented towards the origin (the camera)."""
    centre = points.mean(0)
    normal = np.linalg.svd(points - centre, full_matrices=False)[2][2]
    plane = TablePlane(normal, -float(normal @ centre))
    return plane if plane.offset > 0 else TablePlane(-plane.normal, -plane.offset)


def _large_parts(points: np.ndarray, eps: float) -> np.ndarray:
    """[N] bool: the points in 3D-connected parts (DBSCAN, eps metres) of at least _REGION_FRACTION
    of the largest part's size; drops e.g. the line where a plane only crosses a wall."""
    import open3d as o3d

    labels = np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(eps, 3), dtype=np.int64)
    sizes = np.bincount(labels[labels >= 0], minlength=1)
    return (labels >= 0) & (sizes[labels.clip(0)] >= _REGION_FRACTION * sizes.max())


def _refine_plane(samples: DepthSamples, inliers: np.ndarray, config: SegmentationConfig) -> tuple[TablePlane, np.ndarray]:
    """(plane, inlier mask) from a RANSAC inlier mask: total least squares, repeated on the samples
    within max(plane_distance, noise_sigmas robust sigmas) of the last fit (the sigma from the MAD
    of the last inliers' heights, the band at most search_distance) that form its large connected
    parts. One band for all depths corrects a tilted RANSAC model (whose band holds the whole
    table) and, where far points are noisier, drops their tails on both sides alike; keeping the
    large parts stops far points where the plane crosses other surfaces (walls) from holding a
    tilt in place with their leverage. The depth-dependent noise is estimated afterwards."""
    plane = _fit_plane(samples.points[inliers])
    for _ in range(_REFINE_ITERATIONS):
        height = plane.height(samples.points)
        spread = _MAD_TO_SIGMA * float(np.median(np.abs(height[inliers])))
        band = np.abs(height) <= np.clip(config.noise_sigmas * spread, config.plane_distance, config.search_distance)
        if band.sum() < 3:
            break
        band[band] = _large_parts(samples.points[band], _PART_EPS_VOXELS * max(config.voxel_size, 1e-3))
        if band.sum() < 3 or np.array_equal(band, inliers):
            break
        inliers = band
        plane = _fit_plane(samples.points[inliers])
    return plane, inliers


def fit_table_plane(points: np.ndarray, config: SegmentationConfig = SegmentationConfig()) -> TablePlane:
    """Dominant plane of [N, 3] points (one camera's frame, metres) by RANSAC, refined by total
    least squares on its noise-adapted band, oriented towards the camera origin."""
    import open3d as o3d

    points = np.asarray(points, dtype=np.float64)
    if len(points) < 3:
        raise ValueError(f"need at least 3 points to fit the table plane, got {len(points)}")
    o3d.utility.random.seed(config.seed)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    _, found = cloud.segment_plane(config.search_distance, 3, config.ransac_iterations)
    if len(found) < 3:
        raise ValueError("RANSAC found no table plane")
    inliers = np.zeros(len(points), dtype=bool)
    inliers[np.asarray(found)] = True
    return _refine_plane(DepthSamples(points, np.abs(points[:, 2]), np.zeros_like(points)), inliers, config)[0]


def _depth_noise(plane: TablePlane, samples: DepthSamples, config: SegmentationConfig) -> DepthNoise:
    """The sensor's depth noise from the samples' heights above a plane.

    Iterated from zero noise: take the samples within max(plane_distance, _NOISE_BAND_SIGMAS
    height sigmas) of the plane (a band wide enough not to cut the Gaussian) that it does not see
    at a grazing angle (|n . ray| >= _MIN_NOISE_SENSITIVITY: there a small height is a large depth
    error), turn their heights into depth errors (divide by |n . ray|), split them into
    _NOISE_BINS equal-count depth bins, take each bin's MAD-based sigma and fit
    sigma^2 = floor^2 + at_1m^2 z^4 by non-negative least squares. A plane seen at one depth only
    pins the sum there, which is what its thresholds need.
    """
    noise = DepthNoise()
    sensitivity = np.maximum(samples.sensitivity(plane), 1e-3)
    height = np.abs(plane.height(samples.points))
    for _ in range(_NOISE_ITERATIONS):
        near = height <= np.maximum(config.plane_distance, _NOISE_BAND_SIGMAS * noise.sigma(samples.depth) * sensitivity)
        near &= sensitivity >= _MIN_NOISE_SENSITIVITY
        error, depth = height[near] / sensitivity[near], samples.depth[near]
        if len(error) < _MIN_NOISE_SAMPLES * _NOISE_BINS:
            break
        bins = np.array_split(np.argsort(depth), _NOISE_BINS)
        sigma = np.array([_MAD_TO_SIGMA * np.median(error[b]) for b in bins])
        z = np.array([np.median(depth[b]) for b in bins])
        (floor_sq, slope_sq), _ = nnls(np.stack([np.ones(len(bins)), z**4], axis=1), sigma**2)
        noise = DepthNoise(at_1m=float(np.sqrt(slope_sq)), floor=float(np.sqrt(floor_sq)))
    return noise


def _plane_region(per_view: Sequence[ViewPoints], estimate: TableEstimate, config: SegmentationConfig) -> np.ndarray:
    """[M, 3] points of the plane's surface: per view, the resolvable pixels within max(plane_distance,
    noise_sigmas height sigmas) of it, in connected image regions of at least _REGION_FRACTION of
    the largest one's pixels. This drops where the plane only crosses other surfaces, e.g. the
    line of a wall at table height."""
    regions = []
    for v in per_view:
        samples = DepthSamples.of([v], [v.valid])
        near = estimate.resolvable(samples, config)
        limit = estimate.threshold(samples, config.plane_distance, config.noise_sigmas)
        near &= np.abs(estimate.plane.height(samples.points)) <= limit
        band = np.zeros(v.valid.shape, dtype=bool)
        band[v.valid] = near
        labels, count = ndimage.label(band)
        regions.append((v, labels, np.bincount(labels.ravel(), minlength=count + 1)[1:]))
    largest = max((int(sizes.max(initial=0)) for _, _, sizes in regions), default=0)
    points = [v.points[np.isin(labels, np.flatnonzero(sizes >= _REGION_FRACTION * largest) + 1)] for v, labels, sizes in regions]
    return np.concatenate(points)


def find_table(
    per_view: Sequence[ViewPoints], exclude_masks: Sequence[np.ndarray | None], config: SegmentationConfig = SegmentationConfig()
) -> TableEstimate:
    """The table (module docstring): candidate planes from every valid pixel outside the excluded
    masks, support from every valid pixel (objects in the excluded masks stand on the table too).

    exclude_masks: per view [K, H, W] bool masks of known objects, or None to use every pixel.
    """
    import open3d as o3d

    # 1. Voxel-downsampled points: all valid ones (support) and those outside the known objects (planes).
    everything = DepthSamples.of(per_view, [v.valid for v in per_view])
    free = np.concatenate(
        [
            ~np.any(m, axis=0)[v.valid] if m is not None and len(m) else np.ones(int(v.valid.sum()), bool)
            for v, m in zip(per_view, exclude_masks)
        ]
    )
    keep = _downsample(everything.points, config.voxel_size)
    samples, free = everything.subset(keep), free[keep]
    if free.sum() < 3:
        raise ValueError(f"need at least 3 points to fit the table plane, got {int(free.sum())}")

    # 2. Candidate planes by sequential RANSAC on the free points, each refined on its noise band.
    o3d.utility.random.seed(config.seed)
    planes: list[TablePlane] = []
    counts: list[int] = []
    left = np.flatnonzero(free)
    minimum = max(3, int(config.min_plane_fraction * len(left)))
    while len(planes) < config.max_planes and len(left) >= minimum:
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(samples.points[left]))
        _, found = cloud.segment_plane(config.search_distance, 3, config.ransac_iterations)
        if len(found) < minimum:
            break
        seed_inliers = np.zeros(len(left), dtype=bool)
        seed_inliers[np.asarray(found)] = True
        plane, inliers = _refine_plane(samples.subset(left), seed_inliers, config)
        planes.append(plane)
        counts.append(int(inliers.sum()))
        left = left[~(inliers | seed_inliers)]
    if not planes:
        raise ValueError("RANSAC found no table plane")

    # 3. Each candidate's depth noise from its own points (`_depth_noise`): one sensor, but a plane's
    #    own residuals also hold its fit's errors, and the table's are what its thresholds need.
    free_samples = samples.subset(np.flatnonzero(free))
    estimates = [
        TableEstimate(plane, _depth_noise(plane, free_samples, config), np.zeros((0, 2)), count, 0, len(planes))
        for plane, count in zip(planes, counts)
    ]
    on_some_plane = np.zeros(len(samples.depth), dtype=bool)
    for estimate in estimates:
        height = np.abs(estimate.plane.height(samples.points))
        on_some_plane |= height <= estimate.threshold(samples, config.plane_distance, config.noise_sigmas)

    # 4. Score each candidate facing up and not far below a parallel one: samples on no candidate
    #    plane, lifted above it (noise threshold to max_height), at least table_margin inside its
    #    region (so a wall rising from the floor's edge hardly counts for the floor).
    best = None
    for estimate in estimates:
        plane = estimate.plane
        if -plane.normal[1] < config.min_up_cosine or any(_far_below(plane, other.plane, config) for other in estimates):
            continue
        try:
            region = plane.in_plane(_plane_region(per_view, estimate, config))
            hull = region[ConvexHull(region).vertices]
        except (QhullError, ValueError):
            continue
        estimate = dataclasses.replace(estimate, hull=hull)
        lifted = ~on_some_plane & estimate.lifted(samples, config)
        support = int(np.sum(estimate.over_table(samples.points[lifted], -config.table_margin)))
        estimate = dataclasses.replace(estimate, support=support)
        if best is None or estimate.support > best.support:
            best = estimate
    if best is None:
        raise ValueError(f"none of the {len(planes)} planes found faces the camera's up (min_up_cosine {config.min_up_cosine})")
    return best


def _far_below(plane: TablePlane, other: TablePlane, config: SegmentationConfig) -> bool:
    """Whether plane is parallel to other (within _PARALLEL_DEG) and more than max_height below it
    (seen from the camera, both facing it): a floor under a table. Nothing the table holds rests on
    the floor, and the floor's own support (walls, furniture) is not what is looked for."""
    parallel = float(plane.normal @ other.normal) >= np.cos(np.radians(_PARALLEL_DEG))
    return parallel and plane.offset - other.offset > config.max_height


def table_plane_from_views(
    per_view: Sequence[ViewPoints], exclude_masks: Sequence[np.ndarray | None], config: SegmentationConfig
) -> TablePlane:
    """Table plane (`find_table`) from every valid pixel of every view outside the excluded object masks.

    exclude_masks: per view [K, H, W] bool masks of known objects, or None to use every pixel.
    """
    return find_table(per_view, exclude_masks, config).plane


@dataclass(frozen=True)
class DepthSegmentation:
    """Result of `segment_depth`.

    plane: the table. masks: per view [K, H, W] bool, object order shared by all views (largest
    cluster first). points: per object [N_k, 3] float64 reference-frame points (all views), metres.
    table: the full table estimate (noise, extent; None only for results built by hand).
    """

    plane: TablePlane
    masks: tuple[np.ndarray, ...]
    points: tuple[np.ndarray, ...]
    table: TableEstimate | None = None

    @property
    def num_objects(self) -> int:
        return len(self.points)


def _fill_mask_holes(masks: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """[K, H, W] masks plus the pixels without a reading that each encloses or closes over (3 x 3
    closing); a pixel claimed by several masks stays with none of the new claimants."""
    grown = np.array([m | ((ndimage.binary_fill_holes(m) | ndimage.binary_closing(m)) & ~valid) for m in masks])
    contested = (grown & ~masks).sum(0) > 1
    return grown & ~(contested & ~masks)


def segment_depth(views: Sequence[View], config: SegmentationConfig = SegmentationConfig()) -> DepthSegmentation:
    """Instance masks from depth alone (see module docstring); ignores any masks in the views."""
    import open3d as o3d

    # 1. Points of all views in the reference frame; the table among the large planes.
    per_view = view_points(views)
    table = find_table(per_view, [None] * len(per_view), config)
    plane = table.plane
    # 2. Candidate object points: lifted above the table (noise-adapted, below max_height) and over it.
    above = []
    for v in per_view:
        lifted = np.zeros(v.valid.shape, dtype=bool)
        lifted[v.valid] = table.lifted(DepthSamples.of([v], [v.valid]), config)
        lifted[lifted] = table.over_table(v.points[lifted], config.table_margin)
        above.append(lifted)
    candidates = np.concatenate([v.points[a] for v, a in zip(per_view, above)])
    shapes = [v.valid.shape for v in per_view]
    if len(candidates) == 0:
        return DepthSegmentation(plane, tuple(np.zeros((0, *s), bool) for s in shapes), (), table)
    # 3. DBSCAN; eps never below three pixel footprints at the median depth of view 0.
    footprint = float(np.median(candidates[:, 2])) / views[0].intrinsics.fx
    eps = max(config.cluster_eps, 3.0 * footprint)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(candidates))
    labels = np.asarray(cloud.cluster_dbscan(eps, config.cluster_min_points), dtype=np.int64)
    # 4. Clusters that are one object in the images are joined (`_link_clusters`): DBSCAN's density
    #    rule splits thin structures (a mug's rim), and a cup's inside is seen through its opening.
    labels = _link_clusters(labels, above, per_view, eps, config)
    # 5. Keep clusters big enough that stand out of the noise (min_peak_points clearly above the
    #    table: noise only just crosses the threshold); order by size (largest first, like
    #    SceneGen's query choice).
    counts = np.bincount(labels[labels >= 0], minlength=1) if np.any(labels >= 0) else np.zeros(0, np.int64)
    samples = DepthSamples.of(per_view, above)
    peak = plane.height(candidates) > table.threshold(samples, config.min_height, config.peak_sigmas)
    peaks = np.bincount(labels[(labels >= 0) & peak], minlength=len(counts))
    big = (counts >= config.min_object_points) & (peaks >= config.min_peak_points)
    kept = [c for c in np.argsort(-counts, kind="stable") if big[c]]
    remap = np.full(max(len(counts), 1) + 1, -1, dtype=np.int64)
    remap[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    labels = np.where(labels >= 0, remap[labels.clip(0)], -1)
    # 6. Scatter labels back into per-view masks; lower points next to an object join it
    #    (`_grow_labels`), and holes without a reading join the mask around them.
    masks = []
    for image, v in zip(_label_images(labels, above), per_view):
        if config.grow_sigmas < config.noise_sigmas and len(kept):
            samples = DepthSamples.of([v], [v.valid])
            weak = np.zeros(v.valid.shape, dtype=bool)
            weak[v.valid] = table.resolvable(samples, config) & (plane.height(samples.points) < config.max_height)
            weak[v.valid] &= plane.height(samples.points) > table.threshold(samples, config.min_height, config.grow_sigmas)
            weak[weak] = table.over_table(v.points[weak], config.table_margin)
            image = _grow_labels(image, weak, v.points, eps, config.grow_px)
        view_masks = image[None] == np.arange(len(kept))[:, None, None]
        masks.append(_fill_mask_holes(view_masks, v.valid) if config.fill_holes and len(kept) else view_masks)
    points = tuple(candidates[labels == k] for k in range(len(kept)))
    return DepthSegmentation(plane, tuple(masks), points, table)


def _grow_labels(image: np.ndarray, weak: np.ndarray, points: np.ndarray, eps: float, steps: int) -> np.ndarray:
    """[H, W] label image (-1 = none) grown into the unlabelled weak pixels (hysteresis): up to
    steps times, a weak pixel takes the label of a labelled 8-neighbour closer than eps in 3D
    (points [H, W, 3]); the first label found wins."""
    image = image.copy()
    offsets = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
    for _ in range(steps):
        grown = False
        for dy, dx in offsets:
            (target, source), (p_target, p_source) = _offset_pairs(image, dy, dx), _offset_pairs(points, dy, dx)
            free = _offset_pairs(weak, dy, dx)[0] & (target < 0) & (source >= 0)
            free[free] = np.linalg.norm(p_target[free] - p_source[free], axis=-1) < eps
            if free.any():
                target[free] = source[free]  # a view into image: writes through
                grown = True
        if not grown:
            break
    return image


def _label_images(labels: np.ndarray, above: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Per view [H, W] int64 label images (-1 elsewhere) of labels [N] given in the order of the
    views' `above` masks."""
    images, start = [], 0
    for a in above:
        image = np.full(a.shape, -1, dtype=np.int64)
        image[a] = labels[start : start + int(a.sum())]
        start += int(a.sum())
        images.append(image)
    return images


def _offset_pairs(array: np.ndarray, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray]:
    """The overlapping parts of an [H, W, ...] array and of itself shifted by (dy, dx): element
    [i, j] of the first is pixel (i, j) of a pair, of the second pixel (i + dy, j + dx)."""
    height, width = array.shape[:2]
    rows_a, rows_b = slice(max(0, -dy), height - max(0, dy)), slice(max(0, dy), height - max(0, -dy))
    cols_a, cols_b = slice(max(0, -dx), width - max(0, dx)), slice(max(0, dx), width - max(0, -dx))
    return array[rows_a, cols_a], array[rows_b, cols_b]


def _link_clusters(
    labels: np.ndarray, above: Sequence[np.ndarray], per_view: Sequence[ViewPoints], eps: float, config: SegmentationConfig
) -> np.ndarray:
    """labels [N] (DBSCAN, -1 = noise) with clusters merged (connected components of a cluster
    graph) that are one object in the images, summed over the views:

    * touching: at least min_link_pairs pairs of pixels at most link_radius_px apart, one in each
      cluster, lie closer than eps in 3D (DBSCAN's density rule splits one-pixel-wide structures,
      and holes in the depth cut them);
    * seen through an opening (`_enclosed_behind`): the inside of a cup seen through its rim.
    """
    count = int(labels.max(initial=-1)) + 1
    if count < 2 or config.min_link_pairs <= 0:
        return labels
    radius = config.link_radius_px
    offsets = [(dy, dx) for dy in range(radius + 1) for dx in range(-radius, radius + 1) if (dy, dx) > (0, 0)]
    images = _label_images(labels, above)
    pairs = np.zeros((count, count), dtype=np.int64)
    for image, v in zip(images, per_view):
        for dy, dx in offsets:
            (a, b), (pa, pb) = _offset_pairs(image, dy, dx), _offset_pairs(v.points, dy, dx)
            link = (a >= 0) & (b >= 0) & (a != b)
            link[link] = np.linalg.norm(pa[link] - pb[link], axis=-1) < eps
            np.add.at(pairs, (np.minimum(a[link], b[link]), np.maximum(a[link], b[link])), 1)
    graph = (pairs >= config.min_link_pairs) | _enclosed_behind(images, per_view, count, radius, config.enclosed_fraction)
    _, component = connected_components(csr_matrix(graph), directed=False)
    return np.where(labels >= 0, component[labels.clip(0)], -1)


def _enclosed_behind(
    images: Sequence[np.ndarray], per_view: Sequence[ViewPoints], count: int, radius: int, fraction: float
) -> np.ndarray:
    """[count, count] bool, (k, j) set when at least fraction of the pixels with a reading within
    radius pixels around cluster k (all views) belong to cluster j, and k lies behind them (its
    median depth is larger than theirs): k is seen through an opening of j, like the inside of a
    cup through its rim. An object in front of another is nearer than what surrounds it."""
    structure = np.ones((2 * radius + 1, 2 * radius + 1), dtype=bool)
    own_depths: list[list[np.ndarray]] = [[] for _ in range(count)]
    ring_labels: list[list[np.ndarray]] = [[] for _ in range(count)]
    ring_depths: list[list[np.ndarray]] = [[] for _ in range(count)]
    for image, v in zip(images, per_view):
        for k in np.unique(image[image >= 0]):
            own = image == k
            around = ndimage.binary_dilation(own, structure) & ~own & v.valid
            own_depths[k].append(v.depth[own])
            ring_labels[k].append(image[around])
            ring_depths[k].append(v.depth[around])
    out = np.zeros((count, count), dtype=bool)
    for k in range(count):
        if not ring_labels[k]:
            continue
        neighbours, depths = np.concatenate(ring_labels[k]), np.concatenate(ring_depths[k])
        clustered = neighbours[neighbours >= 0]
        if len(clustered) == 0:
            continue
        j = int(np.bincount(clustered).argmax())
        behind = np.median(np.concatenate(own_depths[k])) > np.median(depths[neighbours == j])
        out[k, j] = behind and np.sum(neighbours == j) >= fraction * len(neighbours)
    return out


def mask_iou_matrix(pred_masks: np.ndarray, gt_masks: np.ndarray) -> np.ndarray:
    """[P, G] float64 IoU between [P, H, W] and [G, H, W] bool masks (0 where both are empty)."""
    pred = np.asarray(pred_masks, dtype=bool)
    gt = np.asarray(gt_masks, dtype=bool)
    if pred.ndim != 3 or gt.ndim != 3 or pred.shape[1:] != gt.shape[1:]:
        raise ValueError(f"masks must be [K, H, W] of one image size, got {pred.shape} and {gt.shape}")
    pixels = pred.shape[1] * pred.shape[2]  # explicit: reshape(0, -1) is ambiguous for empty stacks
    pred_flat = pred.reshape(len(pred), pixels).astype(np.float64)
    gt_flat = gt.reshape(len(gt), pixels).astype(np.float64)
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
